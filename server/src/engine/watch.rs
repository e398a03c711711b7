//! Following and stopping discussions.

use std::sync::Arc;
use std::time::Duration;

use super::{CancelReason, DiscussionView, Engine, EngineError, EventSource, Subscription, follow};
use crate::auth::Principal;
use crate::domain::DiscussionStatus;

impl Engine {
    /// Cancels the running round and marks the discussion STOPPED.
    #[tracing::instrument(skip(self), fields(principal = %owner))]
    pub async fn stop(
        &self,
        owner: &Principal,
        discussion_id: &str,
    ) -> Result<DiscussionView, EngineError> {
        let discussion = self.discussion(owner, discussion_id).await?;
        let active = self.active(&discussion.id);
        match active {
            Some(run) => {
                run.cancel(CancelReason::Stop);
                if tokio::time::timeout(Duration::from_secs(10), run.done.cancelled())
                    .await
                    .is_err()
                {
                    tracing::warn!(discussion = %discussion.id, "run did not end within 10s of stop");
                }
                // A stop that came as the run was already closing still stops.
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

    /// Events after `after_seq`: stored ones, then the current run's live
    /// (polled from the store when another replica runs it).
    #[tracing::instrument(skip(self), fields(principal = %owner))]
    pub async fn watch(
        &self,
        owner: &Principal,
        discussion_id: &str,
        after_seq: u64,
    ) -> Result<EventSource, EngineError> {
        let discussion = self.discussion(owner, discussion_id).await?;
        let Some(run) = self.active(&discussion.id) else {
            if discussion.status == DiscussionStatus::Running {
                if let Some(events) = self.watch_remote(&discussion.id, after_seq).await? {
                    return Ok(events);
                }
                return Ok(follow::follow_store(
                    self.inner.closing.clone(),
                    self.inner.store.clone(),
                    owner.as_str().to_owned(),
                    discussion.id,
                    after_seq,
                ));
            }
            let events = self
                .stored_events(&discussion.id, after_seq, u64::MAX)
                .await?;
            return Ok(Box::pin(Subscription::new(events, None, after_seq)));
        };
        let live = run.hub.subscribe(after_seq);
        let first = run.hub.first_seq();
        let events = self.stored_events(&discussion.id, after_seq, first).await?;
        Ok(Box::pin(Subscription::new(
            events,
            Some((live, first)),
            after_seq,
        )))
    }

    pub(super) async fn stored_events(
        &self,
        discussion_id: &str,
        after_seq: u64,
        before: u64,
    ) -> Result<Vec<Arc<moai_proto::v1::DiscussionEvent>>, EngineError> {
        let payloads = self
            .inner
            .store
            .events_between(discussion_id, after_seq, before)
            .await?;
        Ok(super::hub::decode_stored(payloads))
    }
}
