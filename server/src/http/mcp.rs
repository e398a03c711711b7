//! `/mcp`: the MCP tools over streamable HTTP, backed by the engine. The
//! auth middleware has put the caller's principal in the request; rmcp
//! hands each tool the request's parts, where the principal is found.

use std::sync::Arc;

use futures::StreamExt as _;
use moai_mcp::{Council, Events, MoaiMcp};
use moai_proto::v1;
use rmcp::model::Extensions;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::auth::{AuthError, Principal};
use crate::domain::BoundedText;
use crate::engine::{Engine, StartTarget, Subscription};
use crate::wire;

/// The MCP service mounted at `/mcp`; `stop` ends its sessions.
pub fn service(
    engine: Engine,
    max_body: usize,
    stop: CancellationToken,
) -> StreamableHttpService<MoaiMcp<EngineCouncil>, LocalSessionManager> {
    // Every request carries a moai key, so a page that rebinds a name to
    // this address cannot use it: any Host may reach the listener.
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_max_request_body_bytes(max_body)
        .with_cancellation_token(stop);
    StreamableHttpService::new(
        move || Ok(MoaiMcp::new(EngineCouncil(engine.clone()))),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

/// The engine as the MCP tools call it.
pub struct EngineCouncil(Engine);

fn caller(ext: &Extensions) -> Result<Principal, Status> {
    ext.get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Principal>())
        .cloned()
        .ok_or_else(|| Status::from(AuthError::Missing))
}

fn events(sub: Subscription) -> Events {
    sub.map(|item| match item {
        Ok(event) => Ok(Arc::unwrap_or_clone(event)),
        Err(e) => Err(Status::from(e)),
    })
    .boxed()
}

impl EngineCouncil {
    fn text(&self, raw: &str, what: &str) -> Result<BoundedText, Status> {
        Ok(BoundedText::parse(
            raw,
            what,
            self.0.limits().max_text_bytes,
        )?)
    }
}

impl Council for EngineCouncil {
    async fn list_projects(&self, ext: &Extensions) -> Result<Vec<v1::Project>, Status> {
        let owner = caller(ext)?;
        let projects = super::openai::all_projects(&self.0, &owner)
            .await
            .map_err(Status::from)?;
        Ok(projects.iter().map(wire::project).collect())
    }

    async fn open(
        &self,
        ext: &Extensions,
        project_id: &str,
        question: &str,
    ) -> Result<Events, Status> {
        let owner = caller(ext)?;
        let question = self.text(question, "question")?;
        Ok(events(self.0.open(&owner, project_id, question).await?))
    }

    async fn start(
        &self,
        ext: &Extensions,
        project_id: &str,
        topic: &str,
        rounds: u32,
    ) -> Result<Events, Status> {
        let owner = caller(ext)?;
        let target = StartTarget::New {
            project_id: project_id.to_owned(),
            topic: self.text(topic, "topic")?,
        };
        Ok(events(self.0.start(&owner, target, rounds).await?))
    }

    async fn summarize(&self, ext: &Extensions, discussion_id: &str) -> Result<Events, Status> {
        let owner = caller(ext)?;
        Ok(events(self.0.summarize(&owner, discussion_id, None).await?))
    }

    async fn get_discussion(
        &self,
        ext: &Extensions,
        discussion_id: &str,
    ) -> Result<v1::Discussion, Status> {
        let owner = caller(ext)?;
        let v = self.0.get(&owner, discussion_id).await?;
        Ok(wire::discussion(
            &v.discussion,
            &v.rounds,
            v.usage,
            v.last_seq,
        ))
    }
}
