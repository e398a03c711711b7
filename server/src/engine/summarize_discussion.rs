//! SummarizeDiscussion: a consensus summary by one model.

use super::{Engine, EngineError, Plan, Subscription};
use crate::auth::Principal;
use crate::domain::ModelId;

impl Engine {
    /// A consensus summary by `model`, the project's summarizer, or its first model.
    #[tracing::instrument(skip(self), fields(principal = %owner))]
    pub async fn summarize(
        &self,
        owner: &Principal,
        discussion_id: &str,
        model: Option<ModelId>,
    ) -> Result<Subscription, EngineError> {
        let plan = Plan::Summary {
            model: model.map(|m| m.as_str().to_owned()),
        };
        self.launch_continued(owner, discussion_id, plan, None)
            .await
    }
}
