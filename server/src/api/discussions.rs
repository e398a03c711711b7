use moai_proto::v1::{self, discussion_service_server::DiscussionService};
use tonic::{Request, Response, Status};

use super::error::ExportFailed;
use super::{EventStream, event_stream, page_cursor, page_size, principal};
use crate::domain::{BoundedText, DiscussionId, InvalidInput, ModelId, ProjectId};
use crate::engine::export::{self, Format};
use crate::engine::{DiscussionView, Engine, StartTarget};
use crate::store::PageCursor;
use crate::wire;

/// `moai.v1.DiscussionService`.
pub struct DiscussionApi {
    engine: Engine,
}

impl DiscussionApi {
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }

    fn text(&self, raw: &str, what: &str) -> Result<BoundedText, Status> {
        Ok(BoundedText::parse(
            raw,
            what,
            self.engine.limits().max_text_bytes,
        )?)
    }
}

/// Longest `author_name` accepted: a name, not a text.
const MAX_AUTHOR_NAME_BYTES: usize = 512;

fn view(v: &DiscussionView) -> v1::Discussion {
    wire::discussion(&v.discussion, &v.rounds, v.usage, v.last_seq)
}

#[tonic::async_trait]
impl DiscussionService for DiscussionApi {
    type OpenDiscussionStream = EventStream<v1::OpenDiscussionResponse>;
    type StartDiscussionStream = EventStream<v1::StartDiscussionResponse>;
    type NextRoundStream = EventStream<v1::NextRoundResponse>;
    type MentionStream = EventStream<v1::MentionResponse>;
    type SummarizeDiscussionStream = EventStream<v1::SummarizeDiscussionResponse>;
    type WatchDiscussionStream = EventStream<v1::WatchDiscussionResponse>;
    type ReviewDiscussionStream = EventStream<v1::ReviewDiscussionResponse>;

    #[tracing::instrument(skip_all)]
    async fn open_discussion(
        &self,
        req: Request<v1::OpenDiscussionRequest>,
    ) -> Result<Response<Self::OpenDiscussionStream>, Status> {
        let owner = principal(&req)?;
        let r = req.into_inner();
        let project_id = ProjectId::parse(&r.project_id, "project_id")?;
        let question = self.text(&r.question, "question")?;
        let sub = self
            .engine
            .open(&owner, project_id.as_str(), question)
            .await?;
        Ok(Response::new(event_stream(sub, |e| {
            v1::OpenDiscussionResponse { event: Some(e) }
        })))
    }

    #[tracing::instrument(skip_all)]
    async fn start_discussion(
        &self,
        req: Request<v1::StartDiscussionRequest>,
    ) -> Result<Response<Self::StartDiscussionStream>, Status> {
        let owner = principal(&req)?;
        let r = req.into_inner();
        let target = if !r.discussion_id.trim().is_empty() {
            if !r.topic.trim().is_empty() {
                return Err(InvalidInput::new(
                    "give either discussion_id (to continue) or project_id with topic (to begin), not both",
                )
                .into());
            }
            StartTarget::Existing {
                discussion_id: DiscussionId::parse(&r.discussion_id)?.as_str().to_owned(),
            }
        } else {
            StartTarget::New {
                project_id: ProjectId::parse(&r.project_id, "project_id (or discussion_id)")?
                    .into_string(),
                topic: self.text(&r.topic, "topic")?,
            }
        };
        let sub = self
            .engine
            .start(&owner, target, r.rounds, r.until_consensus)
            .await?;
        Ok(Response::new(event_stream(sub, |e| {
            v1::StartDiscussionResponse { event: Some(e) }
        })))
    }

    #[tracing::instrument(skip_all)]
    async fn next_round(
        &self,
        req: Request<v1::NextRoundRequest>,
    ) -> Result<Response<Self::NextRoundStream>, Status> {
        let owner = principal(&req)?;
        let r = req.into_inner();
        let sub = self
            .engine
            .next_round(&owner, DiscussionId::parse(&r.discussion_id)?.as_str())
            .await?;
        Ok(Response::new(event_stream(sub, |e| {
            v1::NextRoundResponse { event: Some(e) }
        })))
    }

    #[tracing::instrument(skip_all)]
    async fn stop_discussion(
        &self,
        req: Request<v1::StopDiscussionRequest>,
    ) -> Result<Response<v1::StopDiscussionResponse>, Status> {
        let owner = principal(&req)?;
        let r = req.into_inner();
        let v = self
            .engine
            .stop(&owner, DiscussionId::parse(&r.discussion_id)?.as_str())
            .await?;
        Ok(Response::new(v1::StopDiscussionResponse {
            discussion: Some(view(&v)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn mention(
        &self,
        req: Request<v1::MentionRequest>,
    ) -> Result<Response<Self::MentionStream>, Status> {
        let owner = principal(&req)?;
        let r = req.into_inner();
        let id = DiscussionId::parse(&r.discussion_id)?;
        if r.model.trim().is_empty() {
            return Err(InvalidInput::new("model is required").into());
        }
        let model = ModelId::parse(&r.model)?;
        let content = self.text(&r.content, "content")?;
        let author_name =
            BoundedText::parse_optional(&r.author_name, "author_name", MAX_AUTHOR_NAME_BYTES)?;
        let sub = self
            .engine
            .mention(&owner, id.as_str(), model, content, author_name)
            .await?;
        Ok(Response::new(event_stream(sub, |e| v1::MentionResponse {
            event: Some(e),
        })))
    }

    #[tracing::instrument(skip_all)]
    async fn summarize_discussion(
        &self,
        req: Request<v1::SummarizeDiscussionRequest>,
    ) -> Result<Response<Self::SummarizeDiscussionStream>, Status> {
        let owner = principal(&req)?;
        let r = req.into_inner();
        let id = DiscussionId::parse(&r.discussion_id)?;
        let model = if r.model.trim().is_empty() {
            None
        } else {
            Some(ModelId::parse(&r.model)?)
        };
        let sub = self.engine.summarize(&owner, id.as_str(), model).await?;
        Ok(Response::new(event_stream(sub, |e| {
            v1::SummarizeDiscussionResponse { event: Some(e) }
        })))
    }

    #[tracing::instrument(skip_all)]
    async fn watch_discussion(
        &self,
        req: Request<v1::WatchDiscussionRequest>,
    ) -> Result<Response<Self::WatchDiscussionStream>, Status> {
        let owner = principal(&req)?;
        let r = req.into_inner();
        let sub = self
            .engine
            .watch(
                &owner,
                DiscussionId::parse(&r.discussion_id)?.as_str(),
                r.after_seq,
            )
            .await?;
        Ok(Response::new(event_stream(sub, |e| {
            v1::WatchDiscussionResponse { event: Some(e) }
        })))
    }

    #[tracing::instrument(skip_all)]
    async fn get_discussion(
        &self,
        req: Request<v1::GetDiscussionRequest>,
    ) -> Result<Response<v1::GetDiscussionResponse>, Status> {
        let owner = principal(&req)?;
        let r = req.into_inner();
        let v = self
            .engine
            .get(&owner, DiscussionId::parse(&r.discussion_id)?.as_str())
            .await?;
        Ok(Response::new(v1::GetDiscussionResponse {
            discussion: Some(view(&v)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_discussions(
        &self,
        req: Request<v1::ListDiscussionsRequest>,
    ) -> Result<Response<v1::ListDiscussionsResponse>, Status> {
        let owner = principal(&req)?;
        let r = req.into_inner();
        let limit = page_size(r.page_size)?;
        let cursor = page_cursor(&r.page_token)?;
        let project = Some(r.project_id.trim()).filter(|p| !p.is_empty());
        let mut found = self
            .engine
            .list(&owner, project, limit + 1, cursor.as_ref())
            .await?;
        let next_page_token = if found.len() > limit {
            found.truncate(limit);
            found
                .last()
                .map(|d| {
                    PageCursor {
                        time: d.create_time,
                        id: d.id.clone(),
                    }
                    .encode()
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        let discussions = found
            .iter()
            .map(|d| wire::discussion(d, &[], Default::default(), 0))
            .collect();
        Ok(Response::new(v1::ListDiscussionsResponse {
            discussions,
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn export_discussion(
        &self,
        req: Request<v1::ExportDiscussionRequest>,
    ) -> Result<Response<v1::ExportDiscussionResponse>, Status> {
        let owner = principal(&req)?;
        let r = req.into_inner();
        let format = match v1::ExportFormat::try_from(r.format) {
            Ok(v1::ExportFormat::Unspecified | v1::ExportFormat::Markdown) => Format::Markdown,
            Ok(v1::ExportFormat::Json) => Format::Json,
            Err(_) => {
                return Err(
                    InvalidInput::new(format!("unknown export format {}", r.format)).into(),
                );
            }
        };
        let v = self
            .engine
            .get(&owner, DiscussionId::parse(&r.discussion_id)?.as_str())
            .await?;
        let project = self
            .engine
            .project(&owner, &v.discussion.project_id)
            .await?;
        let doc = export::render(&v, &project, format).map_err(ExportFailed)?;
        Ok(Response::new(v1::ExportDiscussionResponse {
            content: doc.content,
            file_name: doc.file_name,
            media_type: doc.media_type.to_owned(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn review_discussion(
        &self,
        req: Request<v1::ReviewDiscussionRequest>,
    ) -> Result<Response<Self::ReviewDiscussionStream>, Status> {
        let owner = principal(&req)?;
        let r = req.into_inner();
        let id = DiscussionId::parse(&r.discussion_id)?;
        let sub = self.engine.review(&owner, id.as_str(), r.round).await?;
        Ok(Response::new(event_stream(sub, |e| {
            v1::ReviewDiscussionResponse { event: Some(e) }
        })))
    }
}
