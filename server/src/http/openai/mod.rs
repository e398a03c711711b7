//! The OpenAI-compatible API: a project is the model `moai/<project name>`.

pub mod chat;
pub mod models;
mod relay;
mod wire;

use crate::auth::Principal;
use crate::engine::Engine;
use crate::store::{PageCursor, ProjectRecord, StoreError};

use super::ApiError;

/// Prefix of the model names moai lists and accepts.
pub const MODEL_PREFIX: &str = "moai/";

/// Every project of `owner`, oldest first.
pub async fn all_projects(
    engine: &Engine,
    owner: &Principal,
) -> Result<Vec<ProjectRecord>, StoreError> {
    const PAGE: usize = 200;
    let mut out = Vec::new();
    let mut cursor: Option<PageCursor> = None;
    loop {
        let page = engine
            .store()
            .list_projects(owner.as_str(), PAGE, cursor.as_ref())
            .await?;
        let full = page.len() == PAGE;
        cursor = page.last().map(|p| PageCursor {
            time: p.create_time,
            id: p.id.clone(),
        });
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

/// The project a model name such as `moai/research` names (the prefix may
/// be left out; a project id works too).
pub async fn project_for_model(
    engine: &Engine,
    owner: &Principal,
    model: &str,
) -> Result<ProjectRecord, ApiError> {
    let wanted = model.trim();
    let name = wanted.strip_prefix(MODEL_PREFIX).unwrap_or(wanted);
    all_projects(engine, owner)
        .await?
        .into_iter()
        .find(|p| p.name == name || p.id == name)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "the model {wanted:?} does not exist: use moai/<project name> (GET /v1/models lists yours)"
            ))
        })
}
