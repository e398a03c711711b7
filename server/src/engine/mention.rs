//! Mention: the user speaks to one of the project's models.

use super::{Engine, EngineError, Plan, Subscription};
use crate::auth::Principal;
use crate::domain::{BoundedText, ModelId};
use crate::store::ProjectRecord;

impl Engine {
    /// The user speaks to one of the project's models.
    #[tracing::instrument(skip(self, content, author_name), fields(principal = %owner, model = %model))]
    pub async fn mention(
        &self,
        owner: &Principal,
        discussion_id: &str,
        model: ModelId,
        content: BoundedText,
        author_name: BoundedText,
    ) -> Result<Subscription, EngineError> {
        let check = |project: &ProjectRecord| {
            if project.models.iter().any(|m| m == model.as_str()) {
                Ok(())
            } else {
                Err(EngineError::InvalidArgument(format!(
                    "{model} is not one of this project's models ({})",
                    project.models.join(", ")
                )))
            }
        };
        let plan = Plan::Mention {
            model: model.as_str().to_owned(),
            content: content.into_string(),
            author_name: author_name.into_string(),
        };
        self.launch_continued(owner, discussion_id, plan, Some(&check))
            .await
    }
}
