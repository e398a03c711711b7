//! OpenDiscussion: every model of the project answers one question at once.

use super::{Engine, EngineError, Plan, Subscription};
use crate::auth::Principal;
use crate::domain::{BoundedText, DiscussionKind};

impl Engine {
    /// Asks every model of the project `question` at once, in a new discussion.
    #[tracing::instrument(skip(self, question), fields(principal = %owner))]
    pub async fn open(
        &self,
        owner: &Principal,
        project_id: &str,
        question: BoundedText,
    ) -> Result<Subscription, EngineError> {
        let project = self.runnable_project(owner, project_id).await?;
        self.launch_new(
            owner,
            project,
            DiscussionKind::Open,
            question.into_string(),
            Plan::Parallel,
        )
        .await
    }
}
