use moai_proto::v1::{self, project_service_server::ProjectService};
use tonic::{Request, Response, Status};

use super::{page_cursor, page_size, principal};
use crate::config::Limits;
use crate::domain::{BoundedText, Fallbacks, InvalidInput, ModelId, ModelList, ProjectName};
use crate::engine::{Engine, EngineError};
use crate::store::{NewProject, PageCursor, Store};
use crate::wire;

/// `moai.v1.ProjectService`.
pub struct ProjectApi {
    engine: Engine,
}

impl ProjectApi {
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }

    fn store(&self) -> &Store {
        self.engine.store()
    }

    fn limits(&self) -> &Limits {
        self.engine.limits()
    }

    fn summarizer(raw: &str) -> Result<String, Status> {
        if raw.trim().is_empty() {
            Ok(String::new())
        } else {
            Ok(ModelId::parse(raw)?.as_str().to_owned())
        }
    }

    /// Checks the model ids new to a project against the providers'
    /// catalogue; returns the notes on those that could not be checked.
    async fn check_new_models(&self, ids: Vec<String>) -> Result<Vec<String>, Status> {
        let mut ids = ids;
        ids.sort();
        ids.dedup();
        ids.retain(|id| !id.is_empty());
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let check = self.engine.llm().check_models(&ids).await;
        if let Some(refusal) = check.refusal() {
            return Err(InvalidInput::new(refusal).into());
        }
        Ok(check.unchecked)
    }

    fn fallbacks(
        raw: &std::collections::HashMap<String, v1::ModelList>,
        seats: &ModelList,
    ) -> Result<Fallbacks, Status> {
        Ok(Fallbacks::parse(
            raw.iter()
                .map(|(seat, list)| (seat.as_str(), list.models.clone())),
            seats,
        )?)
    }

    fn model_ids(raw: &[String]) -> Result<Vec<ModelId>, Status> {
        Ok(raw
            .iter()
            .map(|m| ModelId::parse(m))
            .collect::<Result<Vec<_>, _>>()?)
    }
}

#[tonic::async_trait]
impl ProjectService for ProjectApi {
    #[tracing::instrument(skip_all)]
    async fn create_project(
        &self,
        req: Request<v1::CreateProjectRequest>,
    ) -> Result<Response<v1::CreateProjectResponse>, Status> {
        let owner = principal(&req)?;
        let r = req.into_inner();
        let models = ModelList::parse(&r.models, self.limits().max_models)?;
        let fallbacks = Self::fallbacks(&r.fallbacks, &models)?;
        let new = NewProject {
            name: ProjectName::parse(&r.name)?,
            fallbacks,
            models,
            system_prompt: BoundedText::parse_optional(
                &r.system_prompt,
                "system prompt",
                self.limits().max_system_prompt_bytes,
            )?
            .into_string(),
            summarizer_model: Self::summarizer(&r.summarizer_model)?,
        };
        let mut ids = new.models.to_strings();
        ids.extend(new.fallbacks.models().into_iter().map(str::to_owned));
        ids.push(new.summarizer_model.clone());
        let warnings = self.check_new_models(ids).await?;
        let project = self.store().create_project(owner.as_str(), &new).await?;
        Ok(Response::new(v1::CreateProjectResponse {
            project: Some(wire::project(&project)),
            warnings,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_project(
        &self,
        req: Request<v1::GetProjectRequest>,
    ) -> Result<Response<v1::GetProjectResponse>, Status> {
        let owner = principal(&req)?;
        let id = req.into_inner().project_id;
        let project = self
            .store()
            .get_project(owner.as_str(), &id)
            .await?
            .ok_or_else(|| EngineError::project_not_found(&id))?;
        Ok(Response::new(v1::GetProjectResponse {
            project: Some(wire::project(&project)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_projects(
        &self,
        req: Request<v1::ListProjectsRequest>,
    ) -> Result<Response<v1::ListProjectsResponse>, Status> {
        let owner = principal(&req)?;
        let r = req.into_inner();
        let limit = page_size(r.page_size)?;
        let cursor = page_cursor(&r.page_token)?;
        let mut projects = self
            .store()
            .list_projects(owner.as_str(), limit + 1, cursor.as_ref())
            .await?;
        let next_page_token = if projects.len() > limit {
            projects.truncate(limit);
            projects
                .last()
                .map(|p| {
                    PageCursor {
                        time: p.create_time,
                        id: p.id.clone(),
                    }
                    .encode()
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(v1::ListProjectsResponse {
            projects: projects.iter().map(wire::project).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_project(
        &self,
        req: Request<v1::UpdateProjectRequest>,
    ) -> Result<Response<v1::UpdateProjectResponse>, Status> {
        let owner = principal(&req)?;
        let r = req.into_inner();
        let mut project = self
            .store()
            .get_project(owner.as_str(), &r.project_id)
            .await?
            .ok_or_else(|| EngineError::project_not_found(&r.project_id))?;
        // Ids already in the project were checked when they came in.
        let mut before: Vec<String> = project.models.clone();
        before.extend(project.fallbacks.values().flatten().cloned());
        before.push(project.summarizer_model.clone());
        if let Some(name) = &r.name {
            project.name = ProjectName::parse(name)?.as_str().to_owned();
        }
        let max = self.limits().max_models;
        let mut models = match &r.models {
            Some(list) => ModelList::parse(&list.models, max)?,
            None => ModelList::parse(&project.models, usize::MAX)?,
        };
        models.remove(&Self::model_ids(&r.remove_models)?)?;
        models.add(Self::model_ids(&r.add_models)?, max)?;
        project.models = models.to_strings();
        if let Some(prompt) = &r.system_prompt {
            project.system_prompt = BoundedText::parse_optional(
                prompt,
                "system prompt",
                self.limits().max_system_prompt_bytes,
            )?
            .into_string();
        }
        if let Some(s) = &r.summarizer_model {
            project.summarizer_model = Self::summarizer(s)?;
        }
        let mut fallbacks = match &r.fallbacks {
            Some(map) => Self::fallbacks(&map.fallbacks, &models)?,
            None => Fallbacks::from_stored(project.fallbacks.clone()),
        };
        // A removed seat takes its fallbacks with it.
        fallbacks.retain_seats(&project.models);
        project.fallbacks = fallbacks.as_map().clone();
        let mut new_ids: Vec<String> = project.models.clone();
        new_ids.extend(fallbacks.models().into_iter().map(str::to_owned));
        new_ids.push(project.summarizer_model.clone());
        new_ids.retain(|id| !before.contains(id));
        let warnings = self.check_new_models(new_ids).await?;
        let project = self
            .store()
            .update_project(&project)
            .await?
            .ok_or_else(|| EngineError::project_not_found(&r.project_id))?;
        Ok(Response::new(v1::UpdateProjectResponse {
            project: Some(wire::project(&project)),
            warnings,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_project(
        &self,
        req: Request<v1::DeleteProjectRequest>,
    ) -> Result<Response<v1::DeleteProjectResponse>, Status> {
        let owner = principal(&req)?;
        let id = req.into_inner().project_id;
        self.engine.delete_project(&owner, &id).await?;
        Ok(Response::new(v1::DeleteProjectResponse {}))
    }
}
