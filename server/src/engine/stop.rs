//! StopDiscussion: cancel the running round and mark the discussion STOPPED.

use super::{CancelReason, DiscussionView, Engine, EngineError};
use crate::auth::Principal;
use crate::domain::DiscussionStatus;

impl Engine {
    /// Cancels the running round (if this process runs it) and marks the
    /// discussion STOPPED; a run on another replica is told at once (Redis
    /// or NOTIFY), and would see it at its next lease renewal anyway.
    #[tracing::instrument(skip(self), fields(principal = %owner))]
    pub async fn stop(
        &self,
        owner: &Principal,
        discussion_id: &str,
    ) -> Result<DiscussionView, EngineError> {
        let discussion = self.discussion(owner, discussion_id).await?;
        match self.active(&discussion.id) {
            Some(run) => {
                let wait = self.inner.limits.stop_wait();
                if !run.cancel_and_wait(CancelReason::Stop, wait).await {
                    tracing::warn!(discussion = %discussion.id, ?wait, "run did not close in time after stop");
                }
                // A stop that came as the run was already closing (it
                // ended IDLE) still stops.
                let now = self.discussion(owner, discussion_id).await?;
                if now.status != DiscussionStatus::Stopped {
                    self.inner.store.mark_stopped(&now.id).await?;
                }
            }
            None => {
                // Another replica may run it: the store says STOPPED (which
                // its lease heartbeat would find), and the stop tells it now.
                let last_seq = self.inner.store.last_seq(&discussion.id).await?;
                self.inner.store.mark_stopped(&discussion.id).await?;
                if discussion.status == DiscussionStatus::Running {
                    self.stop_remote(&discussion.id, last_seq).await;
                }
            }
        }
        self.get(owner, discussion_id).await
    }
}
