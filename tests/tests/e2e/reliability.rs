//! Model calls a shared server can live with: fallbacks per seat, failure
//! reasons, model ids checked against the catalogue, reasoning kept apart,
//! and capacity under load (issue 12).

mod capacity;
mod catalogue;
mod failures;
mod fallbacks;
mod reasoning;

use std::collections::HashMap;

use moai_proto::v1;
use moai_tests::server::TestServer;

/// `seat -> fallbacks` as the API takes it.
pub fn fallback_map(pairs: &[(&str, &[&str])]) -> HashMap<String, v1::ModelList> {
    pairs
        .iter()
        .map(|(seat, models)| {
            (
                (*seat).to_owned(),
                v1::ModelList {
                    models: models.iter().map(|m| (*m).to_owned()).collect(),
                },
            )
        })
        .collect()
}

/// Creates a project with fallbacks.
pub async fn project_with_fallbacks(
    ts: &TestServer,
    name: &str,
    models: &[&str],
    fallbacks: &[(&str, &[&str])],
) -> Result<v1::CreateProjectResponse, tonic::Status> {
    ts.projects()
        .await
        .create_project(v1::CreateProjectRequest {
            name: name.into(),
            models: models.iter().map(|m| (*m).to_owned()).collect(),
            fallbacks: fallback_map(fallbacks),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}
