//! `moai mcp`: moai's MCP tools on stdin/stdout, each call made to the
//! server over gRPC with the CLI's key. Nothing else may write to stdout.

use futures::StreamExt as _;
use moai_mcp::{Council, Events, MoaiMcp};
use moai_proto::v1;
use rmcp::ServiceExt as _;
use rmcp::model::Extensions;
use tonic::Status;

use crate::client::Client;
use crate::errors::{CliError, ExitCode};
use crate::session::Session;

/// Serves the tools until the assistant closes stdin.
///
/// # Errors
/// No key, an unreachable server, or a broken MCP handshake.
pub async fn run(session: &mut Session) -> Result<ExitCode, CliError> {
    let client = session.client().await?;
    let running = MoaiMcp::new(GrpcCouncil(client))
        .with_default_project(session.global.project.clone())
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| CliError::Internal(format!("MCP handshake failed: {e}")))?;
    running
        .waiting()
        .await
        .map_err(|e| CliError::Internal(format!("the MCP session failed: {e}")))?;
    Ok(ExitCode::Success)
}

/// The tools' calls as gRPC calls to the server.
struct GrpcCouncil(Client);

fn events<R: moai_proto::EventResponse + Send + 'static>(stream: tonic::Streaming<R>) -> Events {
    stream
        .filter_map(|item| async move {
            match item {
                Ok(response) => response.into_event().map(Ok),
                Err(status) => Some(Err(status)),
            }
        })
        .boxed()
}

impl Council for GrpcCouncil {
    async fn list_projects(&self, _: &Extensions) -> Result<Vec<v1::Project>, Status> {
        let mut projects = self.0.projects.clone();
        let mut out = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = projects
                .list_projects(v1::ListProjectsRequest {
                    page_size: 200,
                    page_token,
                })
                .await?
                .into_inner();
            out.extend(page.projects);
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            page_token = page.next_page_token;
        }
    }

    async fn open(
        &self,
        _: &Extensions,
        project_id: &str,
        question: &str,
    ) -> Result<Events, Status> {
        let stream = self
            .0
            .discussions
            .clone()
            .open_discussion(v1::OpenDiscussionRequest {
                project_id: project_id.to_owned(),
                question: question.to_owned(),
            })
            .await?
            .into_inner();
        Ok(events(stream))
    }

    async fn start(
        &self,
        _: &Extensions,
        project_id: &str,
        topic: &str,
        rounds: u32,
    ) -> Result<Events, Status> {
        let stream = self
            .0
            .discussions
            .clone()
            .start_discussion(v1::StartDiscussionRequest {
                project_id: project_id.to_owned(),
                topic: topic.to_owned(),
                rounds,
                ..Default::default()
            })
            .await?
            .into_inner();
        Ok(events(stream))
    }

    async fn summarize(&self, _: &Extensions, discussion_id: &str) -> Result<Events, Status> {
        let stream = self
            .0
            .discussions
            .clone()
            .summarize_discussion(v1::SummarizeDiscussionRequest {
                discussion_id: discussion_id.to_owned(),
                ..Default::default()
            })
            .await?
            .into_inner();
        Ok(events(stream))
    }

    async fn get_discussion(
        &self,
        _: &Extensions,
        discussion_id: &str,
    ) -> Result<v1::Discussion, Status> {
        self.0
            .discussions
            .clone()
            .get_discussion(v1::GetDiscussionRequest {
                discussion_id: discussion_id.to_owned(),
            })
            .await?
            .into_inner()
            .discussion
            .ok_or_else(|| Status::internal("the server sent no discussion"))
    }
}
