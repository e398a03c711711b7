//! Where a follower on another replica takes a run's events from: the run's
//! stream when it can vouch for every event, the store otherwise. Plain
//! synchronous state, unit-tested without Redis; [`super::follower`] drives it.
//!
//! A follower has a *base*: the seq after which it delivers every event of
//! the run, once (a watcher gets the stored events up to the base first).
//! The base is the seq before the run's first event when the stream still
//! holds the run from its start, so a watcher joining mid-answer also gets
//! the deltas written so far; otherwise it is the store's last seq. From the
//! base on, an entry is taken when it follows on from what was delivered
//! (its `prev` is at most the last seq delivered), and skipping what was
//! delivered already; an entry that does not follow on (Redis lost entries,
//! a stream trimmed) switches to the store, which fills in durable events
//! until the waiting entries follow on again.

use std::collections::VecDeque;
use std::sync::Arc;

use moai_proto::v1::{DiscussionEvent, DiscussionStatus, discussion_event::Payload};

use super::Entry;

/// Whether an event ends a run (the engine's hub has the same rule; the
/// relay sits below the engine, so it states it here too).
fn is_terminal(event: &DiscussionEvent) -> bool {
    matches!(&event.payload, Some(Payload::StatusChanged(s)) if s.status != DiscussionStatus::Running as i32)
}

/// Where events come from at the moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Entries of the stream, as they arrive.
    Stream,
    /// The store, polled, until the stream follows on again.
    Store,
}

/// One follower's place in a run.
#[derive(Debug)]
pub struct Follow {
    token: String,
    base: Option<u64>,
    last: u64,
    pending: VecDeque<Entry>,
    source: Source,
    ended: bool,
}

impl Follow {
    /// Follows the run named `token`.
    pub fn new(token: &str) -> Self {
        Self {
            token: token.to_owned(),
            base: None,
            last: 0,
            pending: VecDeque::new(),
            source: Source::Stream,
            ended: false,
        }
    }

    /// The base, once there is one.
    pub fn base(&self) -> Option<u64> {
        self.base
    }

    /// The last seq delivered.
    pub fn last(&self) -> u64 {
        self.last
    }

    pub fn source(&self) -> Source {
        self.source
    }

    /// The run's last event was delivered, or the run is over.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The stream cannot give a base: the store must.
    pub fn needs_base(&self) -> bool {
        self.base.is_none() && (self.source == Source::Store || !self.pending.is_empty())
    }

    /// Entries are waiting for the store to catch up with them.
    pub fn waiting(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Takes entries in stream order; returns the events to deliver.
    pub fn on_entries(&mut self, entries: Vec<Entry>) -> Vec<Arc<DiscussionEvent>> {
        let mut out = Vec::new();
        for entry in entries {
            if self.ended {
                break;
            }
            if entry.run != self.token {
                // Another run's entry after this run's began: this run is
                // over, or was recovered elsewhere. The store says which.
                self.source = Source::Store;
                continue;
            }
            if self.base.is_none() && entry.starts_run() && self.pending.is_empty() {
                self.base = Some(entry.prev);
                self.last = entry.prev;
            }
            if self.base.is_some() && self.source == Source::Stream && entry.prev <= self.last {
                self.take(entry, &mut out);
            } else {
                self.pending.push_back(entry);
                self.source = Source::Store;
            }
        }
        out
    }

    /// Bases the follower on the store's last seq (when the stream cannot).
    pub fn base_on_store(&mut self, last_stored: u64) -> Vec<Arc<DiscussionEvent>> {
        if self.base.is_none() {
            self.base = Some(last_stored);
            self.last = last_stored;
        }
        self.resume(false)
    }

    /// Takes events read from the store (after [`Follow::last`]); returns those to deliver.
    pub fn on_stored(&mut self, events: Vec<Arc<DiscussionEvent>>) -> Vec<Arc<DiscussionEvent>> {
        let mut out = Vec::new();
        if self.base.is_none() {
            return out;
        }
        for event in events {
            if self.ended {
                break;
            }
            if event.seq > self.last {
                self.push(event, &mut out);
            }
        }
        out.extend(self.resume(false));
        out
    }

    /// Goes back to the stream from the first waiting entry even though it
    /// does not follow on: the store had nothing more for a while, so what
    /// lies between is deltas only, lost with the entries that held them.
    pub fn skip_to_stream(&mut self) -> Vec<Arc<DiscussionEvent>> {
        self.resume(true)
    }

    /// Redis went away: the store it is, until the stream follows on again.
    pub fn stream_lost(&mut self) {
        self.source = Source::Store;
    }

    /// The store says the run no longer holds the discussion, and every
    /// stored event was delivered.
    pub fn run_over(&mut self) {
        self.ended = true;
    }

    fn resume(&mut self, force: bool) -> Vec<Arc<DiscussionEvent>> {
        let mut out = Vec::new();
        if self.base.is_none() {
            return out;
        }
        while let Some(front) = self.pending.front() {
            if self.ended {
                break;
            }
            if front.last() <= self.last {
                self.pending.pop_front();
                continue;
            }
            if front.prev > self.last && !force {
                return out;
            }
            if let Some(entry) = self.pending.pop_front() {
                self.take(entry, &mut out);
            }
        }
        if self.pending.is_empty() {
            self.source = Source::Stream;
        }
        out
    }

    fn take(&mut self, entry: Entry, out: &mut Vec<Arc<DiscussionEvent>>) {
        for event in entry.events {
            if self.ended {
                return;
            }
            if event.seq > self.last {
                self.push(event, out);
            }
        }
    }

    fn push(&mut self, event: Arc<DiscussionEvent>, out: &mut Vec<Arc<DiscussionEvent>>) {
        self.last = event.seq;
        if is_terminal(&event) {
            self.ended = true;
        }
        out.push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moai_proto::v1::{self, discussion_event::Payload};

    fn event(seq: u64, payload: Payload) -> Arc<DiscussionEvent> {
        Arc::new(DiscussionEvent {
            discussion_id: "d".into(),
            seq,
            time: None,
            payload: Some(payload),
        })
    }

    fn delta(seq: u64) -> Arc<DiscussionEvent> {
        event(
            seq,
            Payload::MessageDelta(v1::MessageDelta {
                message_id: "m".into(),
                model: "a/b".into(),
                text: format!("t{seq}"),
                ..Default::default()
            }),
        )
    }

    fn status(seq: u64, status: v1::DiscussionStatus) -> Arc<DiscussionEvent> {
        event(
            seq,
            Payload::StatusChanged(v1::StatusChanged {
                status: status as i32,
            }),
        )
    }

    fn entry(run: &str, first: u64, prev: u64, events: Vec<Arc<DiscussionEvent>>) -> Entry {
        Entry {
            run: run.into(),
            first,
            prev,
            events,
        }
    }

    fn seqs(events: &[Arc<DiscussionEvent>]) -> Vec<u64> {
        events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn a_stream_holding_the_run_from_its_start_gives_every_event_once() {
        let mut f = Follow::new("r");
        let got = f.on_entries(vec![
            entry(
                "r",
                5,
                4,
                vec![status(5, v1::DiscussionStatus::Running), delta(6)],
            ),
            entry("r", 5, 6, vec![delta(7), delta(8)]),
        ]);
        assert_eq!(f.base(), Some(4), "based before the run's first event");
        assert_eq!(seqs(&got), [5, 6, 7, 8]);
        // The same window sent twice (a retried XADD) adds nothing.
        assert!(
            f.on_entries(vec![entry("r", 5, 6, vec![delta(7), delta(8)])])
                .is_empty()
        );
        let end = f.on_entries(vec![entry(
            "r",
            5,
            8,
            vec![status(9, v1::DiscussionStatus::Idle)],
        )]);
        assert_eq!(seqs(&end), [9]);
        assert!(f.ended());
    }

    #[test]
    fn entries_of_older_runs_are_not_followed_and_a_newer_run_sends_to_the_store() {
        let mut f = Follow::new("r");
        assert!(
            f.on_entries(vec![entry("other", 1, 0, vec![delta(1)])])
                .is_empty()
        );
        assert_eq!(f.source(), Source::Store);
        assert!(f.needs_base());
    }

    #[test]
    fn a_gap_in_the_stream_is_filled_from_the_store_then_the_stream_resumes() {
        let mut f = Follow::new("r");
        f.on_entries(vec![entry("r", 1, 0, vec![delta(1), delta(2)])]);
        // Entries 3..=5 were lost with Redis; the next one does not follow on.
        let got = f.on_entries(vec![entry("r", 1, 5, vec![delta(6), delta(7)])]);
        assert!(got.is_empty());
        assert_eq!(f.source(), Source::Store);
        assert!(f.waiting());
        // The store has the durable event in the gap (4); it is not enough yet.
        let got = f.on_stored(vec![status(4, v1::DiscussionStatus::Running)]);
        assert_eq!(seqs(&got), [4]);
        assert_eq!(f.source(), Source::Store);
        // A later durable event reaches into the waiting entry's range.
        let got = f.on_stored(vec![event(
            6,
            Payload::RoundCompleted(v1::RoundCompleted { number: 1 }),
        )]);
        assert_eq!(
            seqs(&got),
            [6, 7],
            "the stream resumes after what the store gave"
        );
        assert_eq!(f.source(), Source::Stream);
        let got = f.on_entries(vec![entry("r", 1, 7, vec![delta(8)])]);
        assert_eq!(seqs(&got), [8]);
    }

    #[test]
    fn without_the_runs_start_in_the_stream_the_store_gives_the_base() {
        let mut f = Follow::new("r");
        // The run's first entries were trimmed away.
        assert!(
            f.on_entries(vec![entry("r", 1, 40, vec![delta(41)])])
                .is_empty()
        );
        assert!(f.needs_base());
        let got = f.base_on_store(40);
        assert_eq!(f.base(), Some(40));
        assert_eq!(seqs(&got), [41]);
        assert_eq!(f.source(), Source::Stream);
    }

    #[test]
    fn a_stalled_gap_of_deltas_is_skipped_when_the_store_has_nothing_more() {
        let mut f = Follow::new("r");
        f.on_entries(vec![entry("r", 1, 0, vec![delta(1)])]);
        f.on_entries(vec![entry("r", 1, 9, vec![delta(10)])]);
        assert!(f.on_stored(Vec::new()).is_empty());
        assert_eq!(seqs(&f.skip_to_stream()), [10]);
        assert_eq!(f.source(), Source::Stream);
    }

    #[test]
    fn the_stores_terminal_event_ends_the_follower() {
        let mut f = Follow::new("r");
        f.base_on_store(3);
        f.stream_lost();
        let got = f.on_stored(vec![
            status(4, v1::DiscussionStatus::Running),
            status(5, v1::DiscussionStatus::Interrupted),
            status(6, v1::DiscussionStatus::Running),
        ]);
        assert_eq!(seqs(&got), [4, 5], "nothing after the run's end");
        assert!(f.ended());
    }
}
