//! A stream of a discussion's events for one caller: a replayed backlog,
//! then the run's events as the hub logs them, until the run ends.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use moai_proto::v1::{DiscussionEvent, DiscussionStatus, discussion_event::Payload};
use tokio_util::sync::ReusableBoxFuture;

use super::log::Live;

/// Why a subscription ended early.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubscriptionError {
    #[error(
        "this client fell too far behind the discussion and was dropped; re-attach with WatchDiscussion(after_seq = {last_seq})"
    )]
    Lagged { last_seq: u64 },
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

/// Events of a discussion: a replayed backlog, then live events until the
/// run ends. Ends with [`SubscriptionError::Lagged`] if it falls further
/// behind than the hub allows.
pub struct Subscription {
    backlog: VecDeque<Arc<DiscussionEvent>>,
    live: Option<Follow>,
    last_seq: u64,
    /// Only a terminal event of the current run (seq from here on) ends the
    /// stream; earlier runs' terminal events are just history.
    terminal_from: u64,
    done: bool,
}

struct Follow {
    live: Live,
    /// The run's hub is gone: what is left in the log is all there is.
    closed: bool,
    /// Resolves when an event is published (false: the hub is gone).
    changed: ReusableBoxFuture<'static, bool>,
    waiting: bool,
}

impl Subscription {
    /// Replays `backlog`, then follows `live` (if any), whose run began at `run_first_seq`.
    pub fn new(
        backlog: Vec<Arc<DiscussionEvent>>,
        live: Option<(Live, u64)>,
        after_seq: u64,
    ) -> Self {
        let terminal_from = live.as_ref().map_or(u64::MAX, |(_, first)| *first);
        Self {
            backlog: backlog.into(),
            live: live.map(|(live, _)| Follow {
                live,
                closed: false,
                changed: ReusableBoxFuture::new(async { true }),
                waiting: false,
            }),
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
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(next) = this.backlog.pop_front() {
                if next.seq <= this.last_seq {
                    continue;
                }
                this.last_seq = next.seq;
                if next.seq >= this.terminal_from && is_terminal(&next) {
                    this.done = true;
                }
                return Poll::Ready(Some(Ok(next)));
            }
            let Some(follow) = this.live.as_mut() else {
                this.done = true;
                return Poll::Ready(None);
            };
            if follow.waiting {
                match follow.changed.poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(open) => {
                        follow.waiting = false;
                        follow.closed |= !open;
                    }
                }
            }
            // Seen before the log is read, so an event published after the
            // read still wakes the wait below.
            follow.live.head().borrow_and_update();
            if follow.live.take(this.last_seq, &mut this.backlog).is_err() {
                this.done = true;
                return Poll::Ready(Some(Err(SubscriptionError::Lagged {
                    last_seq: this.last_seq,
                })));
            }
            if !this.backlog.is_empty() {
                continue;
            }
            if follow.closed {
                this.done = true;
                return Poll::Ready(None);
            }
            let mut head = follow.live.head().clone();
            follow
                .changed
                .set(async move { head.changed().await.is_ok() });
            follow.waiting = true;
        }
    }
}
