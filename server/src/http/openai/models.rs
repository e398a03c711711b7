//! `GET /v1/models`: the caller's projects.

use axum::Json;
use axum::extract::{Extension, State};

use super::wire::{Model, ModelList};
use super::{MODEL_PREFIX, all_projects};
use crate::auth::Principal;
use crate::http::{ApiError, HttpState};

/// Lists the caller's projects as `moai/<name>` models.
#[tracing::instrument(skip_all, fields(principal = %owner))]
pub async fn list(
    State(state): State<HttpState>,
    Extension(owner): Extension<Principal>,
) -> Result<Json<ModelList>, ApiError> {
    let projects = all_projects(&state.engine, &owner).await?;
    Ok(Json(ModelList {
        object: "list",
        data: projects
            .into_iter()
            .map(|p| Model {
                id: format!("{MODEL_PREFIX}{}", p.name),
                object: "model",
                created: p.create_time / 1000,
                owned_by: "moai".into(),
            })
            .collect(),
    }))
}
