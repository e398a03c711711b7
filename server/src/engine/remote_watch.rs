//! Watching a run that another replica owns: its events reach this replica
//! only through the shared store, so they are polled from there (deltas are
//! never stored; each message arrives whole in its completed or failed event).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use moai_proto::v1::DiscussionEvent;
use tokio_util::sync::CancellationToken;

use super::subscription::{SubscriptionError, decode_stored};
use crate::domain::DiscussionStatus;
use crate::store::{Store, StoreError};

/// How often a remote run's new events are looked for.
const POLL: Duration = Duration::from_millis(250);

/// What following a remote run reads: the discussion's status and its
/// stored events. The store is the one source; the poll is written against
/// this so its timing can be tested on paused time.
trait RunSource: Send + 'static {
    /// Whether the discussion is still RUNNING (gone counts as not).
    fn running(&self) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Encoded events after `seq`, in order.
    fn events_after(
        &self,
        seq: u64,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, StoreError>> + Send;
}

/// One of `owner`'s discussions in the store.
struct Stored {
    store: Store,
    owner: String,
    id: String,
}

impl RunSource for Stored {
    async fn running(&self) -> Result<bool, StoreError> {
        Ok(self
            .store
            .get_discussion(&self.owner, &self.id)
            .await?
            .is_some_and(|d| d.status == DiscussionStatus::Running))
    }

    async fn events_after(&self, seq: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.store.events_between(&self.id, seq, u64::MAX).await
    }
}

/// Events after `after_seq` from the store, following new ones until the
/// discussion is no longer RUNNING or this server shuts down (`closing`).
pub(super) fn follow(
    closing: CancellationToken,
    store: Store,
    owner: String,
    id: String,
    after_seq: u64,
) -> BoxStream<'static, Result<Arc<DiscussionEvent>, SubscriptionError>> {
    poll(closing, Stored { store, owner, id }, after_seq, POLL)
}

struct State<S> {
    source: S,
    last_seq: u64,
    buffer: VecDeque<Arc<DiscussionEvent>>,
    finished: bool,
}

fn poll<S: RunSource>(
    closing: CancellationToken,
    source: S,
    after_seq: u64,
    every: Duration,
) -> BoxStream<'static, Result<Arc<DiscussionEvent>, SubscriptionError>> {
    let state = State {
        source,
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
                let running = match s.source.running().await {
                    Ok(running) => running,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not read the discussion while following it");
                        true
                    }
                };
                match s.source.events_after(s.last_seq).await {
                    Ok(rows) => s.buffer.extend(decode_stored(rows)),
                    Err(e) => tracing::warn!(error = %e, "could not read events while following"),
                }
                if !running {
                    s.finished = true;
                } else if s.buffer.is_empty() {
                    tokio::select! {
                        // This server is shutting down: the client re-attaches elsewhere.
                        () = closing.cancelled() => return None,
                        () = tokio::time::sleep(every) => {}
                    }
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    //! The poll on paused time: when new events show up, and when it ends.

    use std::sync::Mutex;

    use futures::StreamExt as _;
    use prost::Message as _;
    use tokio::time::Instant;

    use super::*;

    /// A discussion whose stored events and status the test changes.
    #[derive(Clone, Default)]
    struct Fake(Arc<Mutex<(Vec<Vec<u8>>, bool)>>);

    impl Fake {
        fn running() -> Self {
            let fake = Self::default();
            fake.lock().1 = true;
            fake
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, (Vec<Vec<u8>>, bool)> {
            self.0.lock().unwrap_or_else(|p| p.into_inner())
        }

        fn store(&self, seq: u64) {
            let event = DiscussionEvent {
                discussion_id: "d".into(),
                seq,
                ..Default::default()
            };
            self.lock().0.push(event.encode_to_vec());
        }

        fn end(&self) {
            self.lock().1 = false;
        }
    }

    impl RunSource for Fake {
        async fn running(&self) -> Result<bool, StoreError> {
            Ok(self.lock().1)
        }

        async fn events_after(&self, seq: u64) -> Result<Vec<Vec<u8>>, StoreError> {
            Ok(self
                .lock()
                .0
                .iter()
                .filter(|p| DiscussionEvent::decode(p.as_slice()).is_ok_and(|e| e.seq > seq))
                .cloned()
                .collect())
        }
    }

    async fn next_seq(
        events: &mut BoxStream<'static, Result<Arc<DiscussionEvent>, SubscriptionError>>,
    ) -> Option<u64> {
        events.next().await.and_then(Result::ok).map(|e| e.seq)
    }

    #[tokio::test(start_paused = true)]
    async fn new_events_show_up_at_the_next_poll_until_the_run_ends() {
        let start = Instant::now();
        let fake = Fake::running();
        fake.store(1);
        let mut events = poll(CancellationToken::new(), fake.clone(), 0, POLL);
        assert_eq!(next_seq(&mut events).await, Some(1));
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "what is stored comes at once"
        );

        let later = fake.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            later.store(2);
        });
        assert_eq!(next_seq(&mut events).await, Some(2));
        assert_eq!(start.elapsed(), POLL, "found at the next poll, not before");

        // The run ends with its last event stored just before: not missed.
        fake.store(3);
        fake.end();
        assert_eq!(next_seq(&mut events).await, Some(3));
        assert_eq!(
            next_seq(&mut events).await,
            None,
            "a run that ended ends the stream"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutting_down_ends_the_follow_without_waiting_for_the_poll() {
        let start = Instant::now();
        let closing = CancellationToken::new();
        let mut events = poll(closing.clone(), Fake::running(), 0, POLL);
        let cancel = closing.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            cancel.cancel();
        });
        assert_eq!(next_seq(&mut events).await, None);
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn events_after_the_seq_asked_for_only() {
        let fake = Fake::default();
        for seq in 1..=3 {
            fake.store(seq);
        }
        let events = poll(CancellationToken::new(), fake, 1, POLL);
        let seqs: Vec<u64> = events
            .filter_map(|e| async { e.ok().map(|e| e.seq) })
            .collect()
            .await;
        assert_eq!(seqs, [2, 3]);
    }
}
