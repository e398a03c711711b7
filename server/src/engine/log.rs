//! A run's log of events, which is also what its subscribers read from:
//! each keeps its own place in it, so a slow subscriber only ever hurts
//! itself, and a run's memory is its events, not a buffer per subscriber.
//! Plain synchronous code, unit-tested without a runtime.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use moai_proto::v1::{DiscussionEvent, discussion_event::Payload};
use tokio::sync::watch;

pub(super) fn lock(log: &Mutex<Log>) -> MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(|p| p.into_inner())
}

/// One subscriber's hold on the log.
pub struct Live {
    log: Arc<Mutex<Log>>,
    id: u64,
    head: watch::Receiver<u64>,
    _active: crate::metrics::Active,
}

impl Live {
    /// A place in `log` just after `after_seq`; `head` signals new events.
    pub(super) fn attach(log: Arc<Mutex<Log>>, after_seq: u64, head: watch::Receiver<u64>) -> Self {
        let id = lock(&log).attach(after_seq);
        Self {
            log,
            id,
            head,
            _active: crate::metrics::Active::new(crate::metrics::SUBSCRIBERS_ACTIVE),
        }
    }
}

/// The subscriber fell more than the limit behind and was let go.
#[derive(Debug)]
pub struct Lagged;

impl Live {
    /// Moves up to a batch of the events after `after_seq` into `out`.
    pub fn take(
        &self,
        after_seq: u64,
        out: &mut impl Extend<Arc<DiscussionEvent>>,
    ) -> Result<(), Lagged> {
        lock(&self.log).take(self.id, after_seq, out)
    }

    /// The signal of new events; its sender closes when the run ends.
    pub fn head(&mut self) -> &mut watch::Receiver<u64> {
        &mut self.head
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        lock(&self.log).detach(self.id);
    }
}

/// Most events a subscriber takes per lock.
const BATCH: usize = 64;

/// A run's events, and where each live subscriber is in them.
pub(super) struct Log {
    events: Vec<Arc<DiscussionEvent>>,
    limit: u64,
    subscribers: HashMap<u64, Place>,
    /// Subscribers let go for lagging, until they notice.
    lagged: HashSet<u64>,
    next_id: u64,
    /// Finished messages whose deltas are still kept, with the seq of the
    /// event that finished them.
    finished: Vec<(String, u64)>,
}

struct Place {
    /// The last seq taken.
    taken: u64,
    /// Lag counts from here: a subscriber replaying history is not behind
    /// for the events that were there when it came.
    since: u64,
}

impl Log {
    pub(super) fn new(limit: u64) -> Self {
        Self {
            events: Vec::new(),
            limit,
            subscribers: HashMap::new(),
            lagged: HashSet::new(),
            next_id: 0,
            finished: Vec::new(),
        }
    }

    fn head(&self) -> u64 {
        self.events.last().map_or(0, |e| e.seq)
    }

    pub(super) fn attach(&mut self, after_seq: u64) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let since = after_seq.max(self.head());
        self.subscribers.insert(
            id,
            Place {
                taken: after_seq,
                since,
            },
        );
        id
    }

    fn detach(&mut self, id: u64) {
        self.subscribers.remove(&id);
        self.lagged.remove(&id);
        self.prune();
    }

    pub(super) fn push(&mut self, event: Arc<DiscussionEvent>) {
        let seq = event.seq;
        let finished = match &event.payload {
            Some(Payload::MessageCompleted(c)) => c.message.as_ref().map(|m| m.id.clone()),
            Some(Payload::MessageFailed(f)) => Some(f.message_id.clone()),
            _ => None,
        };
        self.events.push(event);
        let limit = self.limit;
        let lagged = &mut self.lagged;
        let events = &self.events;
        self.subscribers.retain(|id, place| {
            // Events, not seqs, behind: seq jumps after a crash recovery
            // (a followed run's INTERRUPTED event arrives that way).
            let from = place.taken.max(place.since);
            let unread = events.len() - events.partition_point(|e| e.seq <= from);
            let behind = u64::try_from(unread).unwrap_or(u64::MAX);
            if behind > limit {
                lagged.insert(*id);
            }
            behind <= limit
        });
        if let Some(id) = finished {
            self.finished.push((id, seq));
        }
        self.prune();
    }

    fn take(
        &mut self,
        id: u64,
        after_seq: u64,
        out: &mut impl Extend<Arc<DiscussionEvent>>,
    ) -> Result<(), Lagged> {
        if self.lagged.remove(&id) {
            return Err(Lagged);
        }
        let start = self.events.partition_point(|e| e.seq <= after_seq);
        let end = self.events.len().min(start + BATCH);
        let batch = &self.events[start..end];
        if let (Some(last), Some(place)) = (batch.last(), self.subscribers.get_mut(&id)) {
            place.taken = last.seq;
        }
        out.extend(batch.iter().cloned());
        if !batch.is_empty() {
            self.prune();
        }
        Ok(())
    }

    /// Drops the deltas of finished messages that every live subscriber has
    /// read past: the event that finished each carries its whole text, so
    /// whoever comes later replays that instead.
    fn prune(&mut self) {
        if self.finished.is_empty() {
            return;
        }
        let low = self
            .subscribers
            .values()
            .map(|p| p.taken)
            .min()
            .unwrap_or(u64::MAX);
        if self.finished.iter().all(|(_, seq)| *seq > low) {
            return;
        }
        let mut done = HashSet::new();
        self.finished.retain(|(id, seq)| {
            if *seq <= low {
                done.insert(id.clone());
                false
            } else {
                true
            }
        });
        self.events.retain(
            |e| !matches!(&e.payload, Some(Payload::MessageDelta(d)) if done.contains(&d.message_id)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moai_proto::v1;

    fn event(seq: u64, payload: Payload) -> Arc<DiscussionEvent> {
        Arc::new(DiscussionEvent {
            discussion_id: "d".into(),
            seq,
            time: None,
            payload: Some(payload),
        })
    }

    fn delta(seq: u64, message: &str) -> Arc<DiscussionEvent> {
        event(
            seq,
            Payload::MessageDelta(v1::MessageDelta {
                message_id: message.into(),
                model: "m".into(),
                text: format!("t{seq}"),
                ..Default::default()
            }),
        )
    }

    fn failed(seq: u64, message: &str) -> Arc<DiscussionEvent> {
        event(
            seq,
            Payload::MessageFailed(v1::MessageFailed {
                message_id: message.into(),
                ..Default::default()
            }),
        )
    }

    fn seqs(events: &[Arc<DiscussionEvent>]) -> Vec<u64> {
        events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn a_subscriber_behind_keeps_the_deltas_it_has_not_read() {
        let mut log = Log::new(100);
        let slow = log.attach(0);
        log.push(delta(1, "a"));
        log.push(delta(2, "a"));
        log.push(failed(3, "a"));
        let mut got = Vec::new();
        log.take(slow, 0, &mut got).expect("not lagged");
        assert_eq!(
            seqs(&got),
            [1, 2, 3],
            "every delta, though the message ended"
        );
        assert_eq!(seqs(&log.events), [3], "read past by all: pruned");
        let late = log.attach(0);
        let mut replay = Vec::new();
        log.take(late, 0, &mut replay).expect("not lagged");
        assert_eq!(
            seqs(&replay),
            [3],
            "a late subscriber replays the finished message whole"
        );
    }

    #[test]
    fn with_nobody_watching_finished_deltas_go_at_once() {
        let mut log = Log::new(100);
        log.push(delta(1, "a"));
        log.push(delta(2, "b"));
        log.push(failed(3, "a"));
        assert_eq!(seqs(&log.events), [2, 3]);
    }

    #[test]
    fn a_subscriber_too_far_behind_is_let_go_and_holds_nothing_back() {
        let mut log = Log::new(16);
        let stalled = log.attach(0);
        let reader = log.attach(0);
        let mut got = Vec::new();
        for seq in 1..=20 {
            log.push(delta(seq, "a"));
            log.take(reader, seq - 1, &mut got).expect("keeps up");
        }
        log.push(failed(21, "a"));
        log.take(reader, 20, &mut got).expect("keeps up");
        assert_eq!(seqs(&got), (1..=21).collect::<Vec<_>>());
        assert!(log.take(stalled, 0, &mut Vec::new()).is_err(), "lagged");
        assert_eq!(
            seqs(&log.events),
            [21],
            "the stalled one no longer pins the deltas"
        );
    }

    #[test]
    fn a_jump_in_seq_is_not_lagging() {
        let mut log = Log::new(16);
        let reader = log.attach(0);
        log.push(delta(1, "a"));
        log.push(failed(10_000_002, "a"));
        let mut got = Vec::new();
        log.take(reader, 0, &mut got)
            .expect("two events behind is not lagging");
        assert_eq!(seqs(&got), [1, 10_000_002]);
    }

    #[test]
    fn replaying_history_is_not_lagging() {
        let mut log = Log::new(16);
        for seq in 1..=40 {
            log.push(delta(seq, "a"));
        }
        let late = log.attach(0);
        log.push(delta(41, "a"));
        let mut got: Vec<Arc<DiscussionEvent>> = Vec::new();
        loop {
            let before = got.len();
            let after = got.last().map_or(0, |e| e.seq);
            log.take(late, after, &mut got)
                .expect("not lagged while replaying");
            if got.len() == before {
                break;
            }
        }
        assert_eq!(seqs(&got), (1..=41).collect::<Vec<_>>());
    }
}
