//! The MCP server: four tools over a [`Council`], with a progress
//! notification as each member finishes.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt as _;
use moai_proto::v1::{self, MessageRole, discussion_event::Payload};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Extensions, Implementation, ProgressNotificationParam,
    ProgressToken, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use tonic::Status;

use crate::council::{Council, Events};
use crate::render::discussion_text;

/// `ask_council`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AskCouncil {
    /// The question every model of the project answers at once.
    pub question: String,
    /// Project name or id; the default project (else your first) when left out.
    #[serde(default)]
    pub project: Option<String>,
}

/// `discuss`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Discuss {
    /// What the models discuss, in turns, each seeing what was said before.
    pub topic: String,
    /// Project name or id; the default project (else your first) when left out.
    #[serde(default)]
    pub project: Option<String>,
    /// How many rounds; the server's default when left out.
    #[serde(default)]
    pub rounds: Option<u32>,
}

/// `get_discussion`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetDiscussion {
    /// The discussion id (as `ask_council` and `discuss` report it).
    pub id: String,
}

/// moai's MCP server over `council`.
pub struct MoaiMcp<C: Council> {
    council: Arc<C>,
    /// The project a tool uses when it names none; else the caller's first.
    default_project: Option<String>,
    tool_router: ToolRouter<Self>,
}

impl<C: Council> Clone for MoaiMcp<C> {
    fn clone(&self) -> Self {
        Self {
            council: self.council.clone(),
            default_project: self.default_project.clone(),
            tool_router: self.tool_router.clone(),
        }
    }
}

/// A tool's failure as the assistant reads it: moai's own message.
fn failed(status: &Status) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(status.message().to_owned())])
}

fn done(text: String) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

/// Sends progress notifications when the client asked for them.
struct Progress<'a> {
    ctx: &'a RequestContext<RoleServer>,
    token: Option<ProgressToken>,
    done: u32,
    total: u32,
}

impl Progress<'_> {
    async fn step(&mut self, message: String) {
        self.done += 1;
        let Some(token) = self.token.clone() else {
            return;
        };
        let param = ProgressNotificationParam::new(token, f64::from(self.done))
            .with_total(f64::from(self.total.max(self.done)))
            .with_message(message);
        if let Err(e) = self.ctx.peer.notify_progress(param).await {
            tracing::debug!(error = %e, "could not send a progress notification");
        }
    }
}

/// Reads a run's events to its end, reporting each finished member.
/// Returns the discussion id and how many members answered.
async fn follow(mut events: Events, progress: &mut Progress<'_>) -> Result<(String, u32), Status> {
    let mut id = String::new();
    let mut answered = 0;
    let mut roles = HashMap::new();
    while let Some(event) = events.next().await {
        let event = event?;
        if id.is_empty() {
            id.clone_from(&event.discussion_id);
        }
        match event.payload {
            Some(Payload::MessageStarted(s)) => {
                roles.insert(s.message_id, s.role);
            }
            Some(Payload::MessageCompleted(v1::MessageCompleted { message: Some(m) }))
                if m.role != MessageRole::User as i32 =>
            {
                answered += 1;
                progress.step(format!("{} answered", m.model)).await;
            }
            Some(Payload::MessageFailed(f)) => {
                let _ = roles.remove(&f.message_id);
                progress
                    .step(format!("{} failed: {}", f.model, f.error))
                    .await;
            }
            _ => {}
        }
    }
    Ok((id, answered))
}

#[tool_router]
impl<C: Council> MoaiMcp<C> {
    /// The tools over `council`.
    pub fn new(council: C) -> Self {
        Self {
            council: Arc::new(council),
            default_project: None,
            tool_router: Self::tool_router(),
        }
    }

    /// Tools that name no project use `project` (a name or id).
    pub fn with_default_project(mut self, project: Option<String>) -> Self {
        self.default_project = project;
        self
    }

    /// The project a tool names (name or id), or the caller's first.
    async fn project(&self, ext: &Extensions, wanted: Option<&str>) -> Result<v1::Project, Status> {
        let projects = self.council.list_projects(ext).await?;
        let wanted = wanted
            .or(self.default_project.as_deref())
            .map(str::trim)
            .filter(|w| !w.is_empty());
        let found = match wanted {
            Some(w) => projects.into_iter().find(|p| p.name == w || p.id == w),
            None => projects.into_iter().next(),
        };
        found.ok_or_else(|| match wanted {
            Some(w) => Status::not_found(format!("no project {w:?}: list_projects shows yours")),
            None => Status::not_found(
                "you have no project yet: create one first (moai project create NAME --models ...)",
            ),
        })
    }

    /// Summarizes a discussion and renders it whole; a discussion where
    /// no member answered is not summarized but reported as failed.
    async fn conclude(
        &self,
        ext: &Extensions,
        (id, answered): (String, u32),
        project: &v1::Project,
        progress: &mut Progress<'_>,
    ) -> Result<String, Status> {
        let id = id.as_str();
        if answered == 0 {
            let d = self.council.get_discussion(ext, id).await?;
            return Err(Status::unavailable(format!(
                "no model of project {} answered:\n\n{}",
                project.name,
                discussion_text(&d, &project.name)
            )));
        }
        let summary = self.council.summarize(ext, id).await?;
        follow(summary, progress).await?;
        let d = self.council.get_discussion(ext, id).await?;
        Ok(discussion_text(&d, &project.name))
    }

    async fn run_ask(
        &self,
        ctx: &RequestContext<RoleServer>,
        args: AskCouncil,
    ) -> Result<String, Status> {
        let project = self
            .project(&ctx.extensions, args.project.as_deref())
            .await?;
        let mut progress = Progress {
            ctx,
            token: ctx.meta.get_progress_token(),
            done: 0,
            total: u32::try_from(project.models.len())
                .unwrap_or(u32::MAX)
                .saturating_add(1),
        };
        let events = self
            .council
            .open(&ctx.extensions, &project.id, &args.question)
            .await?;
        let followed = follow(events, &mut progress).await?;
        self.conclude(&ctx.extensions, followed, &project, &mut progress)
            .await
    }

    async fn run_discuss(
        &self,
        ctx: &RequestContext<RoleServer>,
        args: Discuss,
    ) -> Result<String, Status> {
        let project = self
            .project(&ctx.extensions, args.project.as_deref())
            .await?;
        let rounds = args.rounds.unwrap_or(0);
        let models = u32::try_from(project.models.len()).unwrap_or(u32::MAX);
        let mut progress = Progress {
            ctx,
            token: ctx.meta.get_progress_token(),
            done: 0,
            // Unknown rounds (the server's default) grow the total as it goes.
            total: models.saturating_mul(rounds.max(1)).saturating_add(1),
        };
        let events = self
            .council
            .start(&ctx.extensions, &project.id, &args.topic, rounds)
            .await?;
        let followed = follow(events, &mut progress).await?;
        self.conclude(&ctx.extensions, followed, &project, &mut progress)
            .await
    }

    /// Asks every model of a project at once, then returns each answer
    /// labelled with its model and the consensus summary.
    #[tool(
        description = "Ask a moai council: every model of the project answers the question at once, then one summarizes the consensus. Returns each member's answer labelled with its model, the consensus, and the discussion id."
    )]
    async fn ask_council(
        &self,
        Parameters(args): Parameters<AskCouncil>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match self.run_ask(&ctx, args).await {
            Ok(text) => done(text),
            Err(status) => failed(&status),
        })
    }

    /// The project's models discuss a topic in turns, then summarize.
    #[tool(
        description = "Run a moai discussion: the project's models discuss the topic in turns over several rounds, each seeing everything said before, then one summarizes the consensus. Returns the whole discussion and its id."
    )]
    async fn discuss(
        &self,
        Parameters(args): Parameters<Discuss>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match self.run_discuss(&ctx, args).await {
            Ok(text) => done(text),
            Err(status) => failed(&status),
        })
    }

    /// The caller's projects with their models.
    #[tool(description = "List your moai projects: name, id and models of each.")]
    async fn list_projects(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match self.council.list_projects(&ctx.extensions).await {
            Ok(projects) if projects.is_empty() => done("You have no projects yet.".into()),
            Ok(projects) => done(
                projects
                    .iter()
                    .map(|p| format!("- {} (id {}): {}", p.name, p.id, p.models.join(", ")))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            Err(status) => failed(&status),
        })
    }

    /// A stored discussion, rendered whole.
    #[tool(
        description = "Show a moai discussion by id: every round, each answer labelled with its model, and the consensus."
    )]
    async fn get_discussion(
        &self,
        Parameters(args): Parameters<GetDiscussion>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let found = self
            .council
            .get_discussion(&ctx.extensions, args.id.trim())
            .await;
        Ok(match found {
            Ok(d) => {
                let project = self
                    .council
                    .list_projects(&ctx.extensions)
                    .await
                    .ok()
                    .and_then(|ps| ps.into_iter().find(|p| p.id == d.project_id))
                    .map_or_else(|| d.project_id.clone(), |p| p.name);
                done(discussion_text(&d, &project))
            }
            Err(status) => failed(&status),
        })
    }
}

#[tool_handler]
impl<C: Council> ServerHandler for MoaiMcp<C> {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("moai", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "moai runs roundtable discussions between AI models. ask_council asks all of a \
                 project's models at once and returns their answers and a consensus; discuss \
                 lets them talk in turns; list_projects shows the projects; get_discussion \
                 shows a stored discussion."
                    .to_owned(),
            )
    }
}
