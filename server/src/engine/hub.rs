//! The per-discussion event hub: the one producer of a run's events. It
//! numbers them, queues every durable one for the event log, keeps the
//! run's log so late subscribers replay it without a gap, and fans out through
//! a broadcast channel so a slow subscriber only ever hurts itself.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::Stream;
use moai_proto::v1::{DiscussionEvent, DiscussionStatus, discussion_event::Payload};
use prost::Message as _;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::store::{Store, StoredEvent, now_ms};
use crate::wire;

/// Why a subscription ended early.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubscriptionError {
    #[error(
        "this client fell too far behind the discussion and was dropped; re-attach with WatchDiscussion(after_seq = {last_seq})"
    )]
    Lagged { last_seq: u64 },
}

/// The hub of one run.
pub struct Hub {
    discussion_id: String,
    store: Store,
    first_seq: u64,
    next_seq: tokio::sync::Mutex<u64>,
    log: Mutex<Vec<Arc<DiscussionEvent>>>,
    tx: broadcast::Sender<Arc<DiscussionEvent>>,
}

impl Hub {
    /// A hub whose first event gets `first_seq`.
    pub fn new(discussion_id: String, store: Store, first_seq: u64, buffer: usize) -> Self {
        let (tx, _) = broadcast::channel(buffer.max(16));
        Self {
            discussion_id,
            store,
            first_seq,
            next_seq: tokio::sync::Mutex::new(first_seq),
            log: Mutex::new(Vec::new()),
            tx,
        }
    }

    /// The seq of this run's first event; earlier ones are in the store.
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// The seq of the latest event published (0 before the first).
    pub async fn last_seq(&self) -> u64 {
        self.next_seq.lock().await.saturating_sub(1)
    }

    /// Waits until every durable event published so far is stored.
    pub async fn flush(&self) {
        self.store.flush_events().await;
    }

    /// Numbers, queues for the store (all but deltas) and delivers one event. Events are
    /// published one at a time, so seq order, store order and delivery order agree.
    pub async fn publish(&self, payload: Payload) -> u64 {
        let mut next = self.next_seq.lock().await;
        let seq = *next;
        let time = now_ms();
        let event = DiscussionEvent {
            discussion_id: self.discussion_id.clone(),
            seq,
            time: Some(wire::timestamp(time)),
            payload: Some(payload),
        };
        if !matches!(event.payload, Some(Payload::MessageDelta(_))) {
            self.store
                .append_event(StoredEvent {
                    discussion_id: self.discussion_id.clone(),
                    seq,
                    time,
                    payload: event.encode_to_vec(),
                })
                .await;
        }
        *next += 1;
        let event = Arc::new(event);
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        // Once a message is complete (or failed) its own event carries the
        // whole text, so its deltas need not be kept for late subscribers.
        let finished = match &event.payload {
            Some(Payload::MessageCompleted(c)) => c.message.as_ref().map(|m| m.id.as_str()),
            Some(Payload::MessageFailed(f)) => Some(f.message_id.as_str()),
            _ => None,
        };
        if let Some(id) = finished {
            log.retain(
                |e| !matches!(&e.payload, Some(Payload::MessageDelta(d)) if d.message_id == id),
            );
        }
        log.push(event.clone());
        // No receivers is fine: nobody is watching right now.
        let _ = self.tx.send(event);
        seq
    }

    /// This run's events after `after_seq`, and a receiver for the ones still
    /// to come, taken under one lock so nothing falls between them.
    pub fn subscribe(
        &self,
        after_seq: u64,
    ) -> (
        Vec<Arc<DiscussionEvent>>,
        broadcast::Receiver<Arc<DiscussionEvent>>,
    ) {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let backlog = log.iter().filter(|e| e.seq > after_seq).cloned().collect();
        (backlog, self.tx.subscribe())
    }
}

/// Stored events as the hub delivers them; one that does not decode is
/// logged and skipped rather than failing the whole replay.
pub fn decode_stored(payloads: Vec<Vec<u8>>) -> Vec<Arc<DiscussionEvent>> {
    payloads
        .iter()
        .filter_map(
            |p| match <DiscussionEvent as prost::Message>::decode(p.as_slice()) {
                Ok(event) => Some(Arc::new(event)),
                Err(e) => {
                    tracing::error!(error = %e, "undecodable stored event");
                    None
                }
            },
        )
        .collect()
}

/// Whether an event ends a run (its status is no longer RUNNING).
pub fn is_terminal(event: &DiscussionEvent) -> bool {
    matches!(&event.payload, Some(Payload::StatusChanged(s)) if s.status != DiscussionStatus::Running as i32)
}

/// A stream of a discussion's events: a replayed backlog, then live events
/// until the run ends. Ends with [`SubscriptionError::Lagged`] if it falls
/// further behind than the hub's buffer.
pub struct Subscription {
    backlog: VecDeque<Arc<DiscussionEvent>>,
    live: Option<BroadcastStream<Arc<DiscussionEvent>>>,
    last_seq: u64,
    /// Only a terminal event of the current run (seq from here on) ends the
    /// stream; earlier runs' terminal events are just history.
    terminal_from: u64,
    done: bool,
}

impl Subscription {
    /// Replays `backlog`, then follows `live` (if any), whose run began at `run_first_seq`.
    pub fn new(
        backlog: Vec<Arc<DiscussionEvent>>,
        live: Option<(broadcast::Receiver<Arc<DiscussionEvent>>, u64)>,
        after_seq: u64,
    ) -> Self {
        let terminal_from = live.as_ref().map_or(u64::MAX, |(_, first)| *first);
        Self {
            backlog: backlog.into(),
            live: live.map(|(rx, _)| BroadcastStream::new(rx)),
            last_seq: after_seq,
            terminal_from,
            done: false,
        }
    }
}

impl Stream for Subscription {
    type Item = Result<Arc<DiscussionEvent>, SubscriptionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            let next = if let Some(event) = this.backlog.pop_front() {
                event
            } else if let Some(live) = this.live.as_mut() {
                match Pin::new(live).poll_next(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => {
                        this.done = true;
                        return Poll::Ready(None);
                    }
                    Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(_)))) => {
                        this.done = true;
                        return Poll::Ready(Some(Err(SubscriptionError::Lagged {
                            last_seq: this.last_seq,
                        })));
                    }
                    Poll::Ready(Some(Ok(event))) => event,
                }
            } else {
                this.done = true;
                return Poll::Ready(None);
            };
            if next.seq <= this.last_seq {
                continue;
            }
            this.last_seq = next.seq;
            if next.seq >= this.terminal_from && is_terminal(&next) {
                this.done = true;
            }
            return Poll::Ready(Some(Ok(next)));
        }
    }
}
