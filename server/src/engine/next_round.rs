//! NextRound: one more round in turns.

use super::{Engine, EngineError, Plan, Subscription};
use crate::auth::Principal;

impl Engine {
    /// One more sequential round.
    #[tracing::instrument(skip(self), fields(principal = %owner))]
    pub async fn next_round(
        &self,
        owner: &Principal,
        discussion_id: &str,
    ) -> Result<Subscription, EngineError> {
        self.launch_continued(
            owner,
            discussion_id,
            Plan::Sequential {
                rounds: 1,
                until_consensus: false,
            },
            None,
        )
        .await
    }
}
