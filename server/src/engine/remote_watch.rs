//! Watching a run that another replica owns: its events reach this replica
//! only through the shared store, so they are polled from there (deltas are
//! never stored; each message arrives whole in its completed or failed event).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use moai_proto::v1::DiscussionEvent;

use super::subscription::{SubscriptionError, decode_stored};
use crate::domain::DiscussionStatus;
use crate::store::Store;

/// How often a remote run's new events are looked for.
const POLL: Duration = Duration::from_millis(250);

struct State {
    store: Store,
    owner: String,
    id: String,
    last_seq: u64,
    buffer: VecDeque<Arc<DiscussionEvent>>,
    finished: bool,
}

/// Events after `after_seq` from the store, following new ones until the
/// discussion is no longer RUNNING.
pub(super) fn follow(
    closing: tokio_util::sync::CancellationToken,
    store: Store,
    owner: String,
    id: String,
    after_seq: u64,
) -> BoxStream<'static, Result<Arc<DiscussionEvent>, SubscriptionError>> {
    let state = State {
        store,
        owner,
        id,
        last_seq: after_seq,
        buffer: VecDeque::new(),
        finished: false,
    };
    Box::pin(futures::stream::unfold(state, move |mut s| {
        let closing = closing.clone();
        async move {
            loop {
                if let Some(event) = s.buffer.pop_front() {
                    s.last_seq = event.seq;
                    return Some((Ok(event), s));
                }
                if s.finished {
                    return None;
                }
                // Read the status before the events, so events stored just before
                // the run ended are still picked up by this fetch.
                let running = match s.store.get_discussion(&s.owner, &s.id).await {
                    Ok(Some(d)) => d.status == DiscussionStatus::Running,
                    Ok(None) => false,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not read the discussion while following it");
                        true
                    }
                };
                match s.store.events_between(&s.id, s.last_seq, u64::MAX).await {
                    Ok(rows) => s.buffer.extend(decode_stored(rows)),
                    Err(e) => tracing::warn!(error = %e, "could not read events while following"),
                }
                if !running {
                    s.finished = true;
                } else if s.buffer.is_empty() {
                    tokio::select! {
                        // This server is shutting down: the client re-attaches elsewhere.
                        () = closing.cancelled() => return None,
                        () = tokio::time::sleep(POLL) => {}
                    }
                }
            }
        }
    }))
}
