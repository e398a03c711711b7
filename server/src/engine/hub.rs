//! The per-discussion event hub: the one producer of a run's events. It
//! numbers them, queues every durable one for the store's event log, and
//! appends them to the run's [`Log`], which subscribers read from.

use std::sync::{Arc, Mutex};

use moai_proto::v1::{DiscussionEvent, discussion_event::Payload};
use prost::Message as _;
use tokio::sync::watch;

use crate::store::{Store, StoredEvent, now_ms};
use crate::wire;

use super::log::{Live, Log, lock};

/// The hub of one run.
pub struct Hub {
    discussion_id: String,
    store: Store,
    first_seq: u64,
    next_seq: tokio::sync::Mutex<u64>,
    log: Arc<Mutex<Log>>,
    /// The seq of the latest event, for subscribers waiting for more.
    head: watch::Sender<u64>,
}

impl Hub {
    /// A hub whose first event gets `first_seq`; a subscriber more than
    /// `limit` events behind is dropped.
    pub fn new(discussion_id: String, store: Store, first_seq: u64, limit: usize) -> Self {
        let (head, _) = watch::channel(first_seq.saturating_sub(1));
        Self {
            discussion_id,
            store,
            first_seq,
            next_seq: tokio::sync::Mutex::new(first_seq),
            log: Arc::new(Mutex::new(Log::new(
                u64::try_from(limit.max(16)).unwrap_or(u64::MAX),
            ))),
            head,
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

    /// Numbers, queues for the store (all but deltas) and delivers one event. Events are
    /// published one at a time, so seq order, store order and delivery order agree.
    pub async fn publish(&self, payload: Payload) -> u64 {
        let mut next = self.next_seq.lock().await;
        let event = self.record(&mut next, payload).await;
        self.deliver(event)
    }

    /// The run's last event: numbered and queued for the store like any
    /// other, but delivered only once `commit` (writing the run's final
    /// status) is done, so a client that acts on it finds the discussion in
    /// that status already, and whoever finds the status finds the event.
    pub async fn publish_last<T>(
        &self,
        payload: Payload,
        commit: impl std::future::Future<Output = T>,
    ) -> T {
        let mut next = self.next_seq.lock().await;
        let event = self.record(&mut next, payload).await;
        let out = commit.await;
        self.deliver(event);
        out
    }

    /// Numbers an event and queues it for the store (all but deltas).
    async fn record(&self, next: &mut u64, payload: Payload) -> Arc<DiscussionEvent> {
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
        Arc::new(event)
    }

    /// Delivers an event numbered elsewhere: another replica's run, which
    /// this hub relays to watchers here (and stores nothing of).
    pub fn deliver_relayed(&self, event: Arc<DiscussionEvent>) {
        self.deliver(event);
    }

    fn deliver(&self, event: Arc<DiscussionEvent>) -> u64 {
        let seq = event.seq;
        lock(&self.log).push(event);
        self.head.send_replace(seq);
        seq
    }

    /// A place in this run's log just after `after_seq`, and the signal of
    /// new events.
    pub fn subscribe(&self, after_seq: u64) -> Live {
        Live::attach(self.log.clone(), after_seq, self.head.subscribe())
    }
}
