use moai_proto::v1::{self, model_service_server::ModelService};
use tonic::{Request, Response, Status};

use super::principal;
use crate::llm::LlmClient;

/// `moai.v1.ModelService`.
pub struct ModelApi {
    llm: LlmClient,
}

impl ModelApi {
    pub fn new(llm: LlmClient) -> Self {
        Self { llm }
    }
}

#[tonic::async_trait]
impl ModelService for ModelApi {
    #[tracing::instrument(skip_all)]
    async fn list_models(
        &self,
        req: Request<v1::ListModelsRequest>,
    ) -> Result<Response<v1::ListModelsResponse>, Status> {
        principal(&req)?;
        let models = self
            .llm
            .list_models()
            .await
            .into_iter()
            .map(|m| v1::Model {
                id: m.id,
                provider: m.provider,
                name: m.name,
                context_length: m.context_length,
            })
            .collect();
        Ok(Response::new(v1::ListModelsResponse { models }))
    }
}
