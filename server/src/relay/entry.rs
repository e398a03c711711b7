//! One stream entry: the events a run published in one window, with what a
//! follower needs to know it missed nothing. Its id is `<last seq>-0`, so
//! entry ids grow with seq, a re-sent window cannot land twice, and reading
//! "after seq N" is reading after id `N-0`.

use std::sync::Arc;

use moai_proto::v1::DiscussionEvent;
use prost::Message as _;
use redis::streams::StreamId;

/// A window of a run's events.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The token of the run that published it.
    pub run: String,
    /// The seq of that run's first event.
    pub first: u64,
    /// Every event of the run with a seq in `(prev, last]` is in this entry.
    pub prev: u64,
    /// The events, in seq order.
    pub events: Vec<Arc<DiscussionEvent>>,
}

impl Entry {
    /// The seq of the last event (`prev` when empty).
    pub fn last(&self) -> u64 {
        self.events.last().map_or(self.prev, |e| e.seq)
    }

    /// Whether this is the first entry of its run: nothing before it is missing.
    pub fn starts_run(&self) -> bool {
        self.prev + 1 == self.first
    }

    /// The stream id this entry is added under.
    pub fn id(&self) -> String {
        format!("{}-0", self.last())
    }

    /// The entry's fields for `XADD`.
    pub fn fields(&self) -> [(&'static str, Vec<u8>); 4] {
        let mut events = Vec::new();
        for e in &self.events {
            // Writing into a Vec cannot fail.
            let _ = e.encode_length_delimited(&mut events);
        }
        [
            ("run", self.run.clone().into_bytes()),
            ("first", self.first.to_string().into_bytes()),
            ("prev", self.prev.to_string().into_bytes()),
            ("events", events),
        ]
    }

    /// Reads an entry back; `None` (logged) when it is not one of ours.
    pub fn parse(raw: &StreamId) -> Option<Self> {
        let number =
            |field: &str| -> Option<u64> { raw.get::<String>(field).and_then(|s| s.parse().ok()) };
        let parsed = (|| {
            let run = raw.get::<String>("run")?;
            let first = number("first")?;
            let prev = number("prev")?;
            let bytes = raw.get::<Vec<u8>>("events")?;
            let mut buf = bytes.as_slice();
            let mut events = Vec::new();
            while !buf.is_empty() {
                let event = DiscussionEvent::decode_length_delimited(&mut buf).ok()?;
                events.push(Arc::new(event));
            }
            Some(Entry {
                run,
                first,
                prev,
                events,
            })
        })();
        if parsed.is_none() {
            tracing::warn!(id = %raw.id, "skipping a stream entry that does not decode");
        }
        parsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moai_proto::v1::{self, discussion_event::Payload};
    use redis::Value;

    fn delta(seq: u64, text: &str) -> Arc<DiscussionEvent> {
        Arc::new(DiscussionEvent {
            discussion_id: "d".into(),
            seq,
            time: None,
            payload: Some(Payload::MessageDelta(v1::MessageDelta {
                message_id: "m".into(),
                model: "a/b".into(),
                text: text.into(),
                ..Default::default()
            })),
        })
    }

    #[test]
    fn an_entry_reads_back_as_it_was_written() {
        let entry = Entry {
            run: "tok".into(),
            first: 3,
            prev: 4,
            events: vec![delta(5, "he"), delta(6, "llo")],
        };
        assert_eq!(entry.id(), "6-0");
        assert!(!entry.starts_run());
        let raw = StreamId {
            id: entry.id(),
            map: entry
                .fields()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::BulkString(v)))
                .collect(),
            milliseconds_elapsed_from_delivery: None,
            delivered_count: None,
        };
        assert_eq!(Entry::parse(&raw), Some(entry));
    }

    #[test]
    fn a_foreign_entry_is_skipped() {
        let raw = StreamId {
            id: "1-0".into(),
            map: [("run".to_owned(), Value::BulkString(b"x".to_vec()))].into(),
            milliseconds_elapsed_from_delivery: None,
            delivered_count: None,
        };
        assert_eq!(Entry::parse(&raw), None);
    }
}
