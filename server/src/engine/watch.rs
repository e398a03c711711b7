//! WatchDiscussion: a discussion's events after a seq, stored then live.

use std::sync::Arc;

use super::subscription::decode_stored;
use super::{Engine, EngineError, EventSource, Subscription, remote_watch};
use crate::auth::Principal;
use crate::domain::DiscussionStatus;

impl Engine {
    /// Events after `after_seq`: stored ones, then the current run's live
    /// (relayed through Redis when another replica runs it, or polled from
    /// the store without Redis).
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
                return Ok(remote_watch::follow(
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
        Ok(decode_stored(payloads))
    }
}
