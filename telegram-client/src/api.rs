//! The moai gRPC API as the bot uses it: every call carries the gateway key
//! and names whom it acts for (a user in a private chat, the group in a
//! group; see [`crate::actor`]).

use std::{pin::Pin, time::Duration};

use futures::{Stream, StreamExt};
use moai_proto::tls::{ClientTls, ClientTlsError};
use moai_proto::v1::{
    CreateProjectRequest, DeleteProjectRequest, Discussion, DiscussionEvent,
    ExportDiscussionRequest, ExportDiscussionResponse, ExportFormat, GetDiscussionRequest,
    GetProjectRequest, ListModelsRequest, ListProjectsRequest, MentionRequest, Model,
    NextRoundRequest, OpenDiscussionRequest, Project, ReviewDiscussionRequest,
    StartDiscussionRequest, StopDiscussionRequest, SummarizeDiscussionRequest,
    UpdateProjectRequest, WatchDiscussionRequest,
    discussion_service_client::DiscussionServiceClient, model_service_client::ModelServiceClient,
    project_service_client::ProjectServiceClient,
};
use moai_proto::v1::{GetUsageRequest, PrincipalUsage, usage_service_client::UsageServiceClient};
use secrecy::{ExposeSecret, SecretString};
use tonic::{
    Request, Status,
    metadata::AsciiMetadataValue,
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

use crate::{actor::Actor, error::ConfigError};

/// How long a unary call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest response accepted (exports of long discussions are big).
const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// The events of one run, as a stream.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<DiscussionEvent, Status>> + Send>>;

/// A connection to the moai server with the bot's gateway key.
#[derive(Clone)]
pub struct Moai {
    channel: Channel,
    bearer: AsciiMetadataValue,
}

impl std::fmt::Debug for Moai {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Moai").finish_non_exhaustive()
    }
}

impl Moai {
    /// Prepares a connection to `server`; it is made on first use and remade
    /// after a failure, so the bot starts even while the server is down.
    ///
    /// # Errors
    /// A server address that is not a URI, TLS files that cannot be read, or
    /// a key that cannot be a header.
    pub fn connect_lazy(
        server: &str,
        key: &SecretString,
        tls: &ClientTls,
    ) -> Result<Self, ConfigError> {
        let endpoint = tls
            .endpoint(server)
            .map_err(|e| match e {
                ClientTlsError::Transport(e) => ConfigError::BadServer(e.to_string()),
                e => ConfigError::Tls(e.to_string()),
            })?
            .connect_timeout(Duration::from_secs(5))
            .tcp_keepalive(Some(Duration::from_secs(30)))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        let mut bearer: AsciiMetadataValue = format!("Bearer {}", key.expose_secret())
            .parse()
            .map_err(|_| ConfigError::BadApiKey)?;
        bearer.set_sensitive(true);
        Ok(Moai {
            channel: endpoint.connect_lazy(),
            bearer,
        })
    }

    /// The API acting for a user or a group.
    #[must_use]
    pub fn acting_for(&self, actor: Actor) -> UserApi {
        // A principal is digits, letters and dashes: always a valid header.
        let user: AsciiMetadataValue = actor
            .principal()
            .parse()
            .unwrap_or_else(|_| AsciiMetadataValue::from_static("telegram:0"));
        let auth = ActAs {
            bearer: self.bearer.clone(),
            user,
        };
        UserApi {
            projects: ProjectServiceClient::with_interceptor(self.channel.clone(), auth.clone()),
            discussions: DiscussionServiceClient::with_interceptor(
                self.channel.clone(),
                auth.clone(),
            )
            .max_decoding_message_size(MAX_MESSAGE_SIZE),
            models: ModelServiceClient::with_interceptor(self.channel.clone(), auth.clone()),
            usage: UsageServiceClient::with_interceptor(self.channel.clone(), auth),
        }
    }
}

/// Adds the gateway key and the acted-for user to every call.
#[derive(Clone)]
struct ActAs {
    bearer: AsciiMetadataValue,
    user: AsciiMetadataValue,
}

impl Interceptor for ActAs {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let metadata = request.metadata_mut();
        metadata.insert("authorization", self.bearer.clone());
        metadata.insert("x-moai-user", self.user.clone());
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, ActAs>;

fn unary<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(CALL_TIMEOUT);
    request
}

/// Turns a server stream of `XResponse { event }` into a stream of events.
fn events<R, F>(stream: tonic::Streaming<R>, event: F) -> EventStream
where
    R: Send + 'static,
    F: Fn(R) -> Option<DiscussionEvent> + Send + 'static,
{
    Box::pin(stream.filter_map(move |item| {
        let item = item.map(&event).transpose();
        futures::future::ready(item)
    }))
}

/// The moai API acting for one user or group.
#[derive(Clone)]
pub struct UserApi {
    projects: ProjectServiceClient<Authed>,
    discussions: DiscussionServiceClient<Authed>,
    models: ModelServiceClient<Authed>,
    usage: UsageServiceClient<Authed>,
}

impl UserApi {
    /// All of the user's projects, oldest first.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn list_projects(&mut self) -> Result<Vec<Project>, Status> {
        let mut projects = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = ListProjectsRequest {
                page_size: 200,
                page_token,
            };
            let page = self
                .projects
                .list_projects(unary(request))
                .await?
                .into_inner();
            projects.extend(page.projects);
            if page.next_page_token.is_empty() {
                return Ok(projects);
            }
            page_token = page.next_page_token;
        }
    }

    /// One of the user's projects.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn get_project(&mut self, project_id: &str) -> Result<Project, Status> {
        let request = GetProjectRequest {
            project_id: project_id.to_owned(),
        };
        let response = self
            .projects
            .get_project(unary(request))
            .await?
            .into_inner();
        response
            .project
            .ok_or_else(|| Status::internal("no project in the response"))
    }

    /// Creates a project.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn create_project(
        &mut self,
        name: &str,
        models: Vec<String>,
    ) -> Result<Project, Status> {
        let request = CreateProjectRequest {
            name: name.to_owned(),
            models,
            ..Default::default()
        };
        let response = self
            .projects
            .create_project(unary(request))
            .await?
            .into_inner();
        response
            .project
            .ok_or_else(|| Status::internal("no project in the response"))
    }

    /// Changes a project.
    #[tracing::instrument(skip(self), fields(project_id = %request.project_id), err(level = "debug"))]
    pub async fn update_project(
        &mut self,
        request: UpdateProjectRequest,
    ) -> Result<Project, Status> {
        let response = self
            .projects
            .update_project(unary(request))
            .await?
            .into_inner();
        response
            .project
            .ok_or_else(|| Status::internal("no project in the response"))
    }

    /// Deletes a project with its discussions.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn delete_project(&mut self, project_id: &str) -> Result<(), Status> {
        let request = DeleteProjectRequest {
            project_id: project_id.to_owned(),
        };
        self.projects.delete_project(unary(request)).await?;
        Ok(())
    }

    /// The models the server's providers offer.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn list_models(&mut self) -> Result<Vec<Model>, Status> {
        let response = self
            .models
            .list_models(unary(ListModelsRequest {}))
            .await?
            .into_inner();
        Ok(response.models)
    }

    /// What this user spent today and this month, and their budgets.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn usage(&mut self) -> Result<Option<PrincipalUsage>, Status> {
        let response = self
            .usage
            .get_usage(unary(GetUsageRequest::default()))
            .await?
            .into_inner();
        Ok(response.usages.into_iter().next())
    }

    /// A discussion with its rounds.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn get_discussion(&mut self, discussion_id: &str) -> Result<Discussion, Status> {
        let request = GetDiscussionRequest {
            discussion_id: discussion_id.to_owned(),
        };
        let response = self
            .discussions
            .get_discussion(unary(request))
            .await?
            .into_inner();
        response
            .discussion
            .ok_or_else(|| Status::internal("no discussion in the response"))
    }

    /// Stops the running round of a discussion.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn stop_discussion(
        &mut self,
        discussion_id: &str,
    ) -> Result<Option<Discussion>, Status> {
        let request = StopDiscussionRequest {
            discussion_id: discussion_id.to_owned(),
        };
        Ok(self
            .discussions
            .stop_discussion(unary(request))
            .await?
            .into_inner()
            .discussion)
    }

    /// Renders a discussion as a document.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn export_discussion(
        &mut self,
        discussion_id: &str,
        format: ExportFormat,
    ) -> Result<ExportDiscussionResponse, Status> {
        let request = ExportDiscussionRequest {
            discussion_id: discussion_id.to_owned(),
            format: format.into(),
        };
        Ok(self
            .discussions
            .export_discussion(unary(request))
            .await?
            .into_inner())
    }

    /// Asks all of a project's models one question at once.
    #[tracing::instrument(skip(self, question), err(level = "debug"))]
    pub async fn open_discussion(
        &mut self,
        project_id: &str,
        question: &str,
    ) -> Result<EventStream, Status> {
        let request = OpenDiscussionRequest {
            project_id: project_id.to_owned(),
            question: question.to_owned(),
        };
        let stream = self
            .discussions
            .open_discussion(request)
            .await?
            .into_inner();
        Ok(events(stream, |r| r.event))
    }

    /// Starts a discussion in turns on a topic, or continues one.
    #[tracing::instrument(skip(self), fields(project_id = %request.project_id, discussion_id = %request.discussion_id), err(level = "debug"))]
    pub async fn start_discussion(
        &mut self,
        request: StartDiscussionRequest,
    ) -> Result<EventStream, Status> {
        let stream = self
            .discussions
            .start_discussion(request)
            .await?
            .into_inner();
        Ok(events(stream, |r| r.event))
    }

    /// Runs one more round.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn next_round(&mut self, discussion_id: &str) -> Result<EventStream, Status> {
        let request = NextRoundRequest {
            discussion_id: discussion_id.to_owned(),
        };
        let stream = self.discussions.next_round(request).await?.into_inner();
        Ok(events(stream, |r| r.event))
    }

    /// Talks to one model with the discussion as context; `author_name` is
    /// who says it (kept with the message, so a group knows who asked).
    #[tracing::instrument(skip(self, content, author_name), err(level = "debug"))]
    pub async fn mention(
        &mut self,
        discussion_id: &str,
        model: &str,
        content: &str,
        author_name: &str,
    ) -> Result<EventStream, Status> {
        let request = MentionRequest {
            discussion_id: discussion_id.to_owned(),
            model: model.to_owned(),
            content: content.to_owned(),
            author_name: author_name.to_owned(),
        };
        let stream = self.discussions.mention(request).await?.into_inner();
        Ok(events(stream, |r| r.event))
    }

    /// Has one model write the consensus summary.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn summarize(
        &mut self,
        discussion_id: &str,
        model: &str,
    ) -> Result<EventStream, Status> {
        let request = SummarizeDiscussionRequest {
            discussion_id: discussion_id.to_owned(),
            model: model.to_owned(),
        };
        let stream = self
            .discussions
            .summarize_discussion(request)
            .await?
            .into_inner();
        Ok(events(stream, |r| r.event))
    }

    /// Has the models rank each other's answers of `round` (default: the latest) anonymously.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn review(
        &mut self,
        discussion_id: &str,
        round: Option<u32>,
    ) -> Result<EventStream, Status> {
        let request = ReviewDiscussionRequest {
            discussion_id: discussion_id.to_owned(),
            round,
        };
        let stream = self
            .discussions
            .review_discussion(request)
            .await?
            .into_inner();
        Ok(events(stream, |r| r.event))
    }

    /// Follows a discussion's events after `after_seq` until its run is idle.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn watch(
        &mut self,
        discussion_id: &str,
        after_seq: u64,
    ) -> Result<EventStream, Status> {
        let request = WatchDiscussionRequest {
            discussion_id: discussion_id.to_owned(),
            after_seq,
        };
        let stream = self
            .discussions
            .watch_discussion(request)
            .await?
            .into_inner();
        Ok(events(stream, |r| r.event))
    }
}
