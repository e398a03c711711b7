//! Helpers to read event streams in tests.

use std::time::{Duration, Instant};

use futures::{Stream, StreamExt as _};
use moai_proto::EventResponse;
use moai_proto::v1::{DiscussionEvent, discussion_event::Payload};

/// An event with the moment it arrived.
#[derive(Clone, Debug)]
pub struct Timed {
    pub event: DiscussionEvent,
    pub at: Instant,
}

/// Reads every event of a streaming response until it ends (or `limit` passes).
pub async fn collect<S, R>(mut stream: S, limit: Duration) -> Vec<Timed>
where
    S: Stream<Item = Result<R, tonic::Status>> + Unpin,
    R: EventResponse,
{
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => panic!(
                "stream did not end within {limit:?}; got {} events",
                out.len()
            ),
            Ok(None) => return out,
            Ok(Some(Err(status))) => panic!("stream failed: {status:?}"),
            Ok(Some(Ok(r))) => {
                if let Some(event) = r.into_event() {
                    out.push(Timed {
                        event,
                        at: Instant::now(),
                    });
                }
            }
        }
    }
}

/// The payloads, in order.
pub fn payloads(events: &[Timed]) -> Vec<&Payload> {
    events
        .iter()
        .filter_map(|t| t.event.payload.as_ref())
        .collect()
}

/// A short name of each event's kind, for readable assertions.
pub fn kind(p: &Payload) -> &'static str {
    match p {
        Payload::DiscussionStarted(_) => "discussion_started",
        Payload::RoundStarted(_) => "round_started",
        Payload::MessageStarted(_) => "message_started",
        Payload::MessageDelta(_) => "message_delta",
        Payload::MessageCompleted(_) => "message_completed",
        Payload::MessageFailed(_) => "message_failed",
        Payload::RoundCompleted(_) => "round_completed",
        Payload::StatusChanged(_) => "status_changed",
        Payload::MessageQueued(_) => "message_queued",
        Payload::MessageFallback(_) => "message_fallback",
    }
}
