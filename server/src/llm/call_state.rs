//! What one model call shares with its retry layer: when the current attempt
//! started, how long the call waited for provider slots, and the slot it
//! holds once an attempt is accepted.
//!
//! Deadlines are read from here because they move: the first-token limit
//! counts from the start of the current attempt (a `Retry-After` wait is not
//! a slow model), and no limit counts time spent queued for a slot.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::limiter::Slot;

/// The call's clock at one moment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    /// When the call began (before any queueing).
    pub began: Instant,
    /// When the current attempt started (or will, after a backoff); `None`
    /// while the call waits for a slot.
    pub attempt: Option<Instant>,
    /// Since when the call has been waiting for a slot, if it is.
    pub queued_since: Option<Instant>,
    /// Time spent waiting for slots in finished waits.
    pub queued: Duration,
}

impl Clock {
    /// All the time spent waiting for slots, the current wait included.
    pub fn queued_total(&self, now: Instant) -> Duration {
        self.queued
            + self
                .queued_since
                .map_or(Duration::ZERO, |since| now.saturating_duration_since(since))
    }
}

#[derive(Debug)]
pub(crate) struct CallState {
    clock: watch::Sender<Clock>,
    slot: Mutex<Option<Slot>>,
}

impl CallState {
    /// A call beginning at `now`, its first attempt starting at once.
    pub fn new(now: Instant) -> Arc<Self> {
        Arc::new(Self {
            clock: watch::Sender::new(Clock {
                began: now,
                attempt: Some(now),
                queued_since: None,
                queued: Duration::ZERO,
            }),
            slot: Mutex::new(None),
        })
    }

    pub fn clock(&self) -> Clock {
        *self.clock.borrow()
    }

    /// Changes of the clock, for deadlines that must move with it.
    pub fn subscribe(&self) -> watch::Receiver<Clock> {
        self.clock.subscribe()
    }

    /// When the current attempt started; `None` while queued.
    pub fn attempt_started(&self) -> Option<Instant> {
        self.clock.borrow().attempt
    }

    /// The next attempt starts at `at` (now, or after a backoff).
    pub fn start_attempt(&self, at: Instant) {
        self.clock.send_modify(|c| c.attempt = Some(at));
    }

    /// The call waits for a slot from `now`.
    pub fn start_queue(&self, now: Instant) {
        self.clock.send_modify(|c| {
            c.attempt = None;
            c.queued_since = Some(now);
        });
    }

    /// The call got its slot at `now`; `waited` false when one was free
    /// at once (the time it took is then no queueing).
    pub fn end_queue(&self, now: Instant, waited: bool) {
        self.clock.send_modify(|c| {
            if let Some(since) = c.queued_since.take()
                && waited
            {
                c.queued += now.saturating_duration_since(since);
            }
        });
    }

    fn slot(&self) -> MutexGuard<'_, Option<Slot>> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `slot` for the call (until it ends or the attempt fails).
    pub fn hold(&self, slot: Slot) {
        *self.slot() = Some(slot);
    }

    /// Tells the held slot's limiter how the attempt went: accepted, or
    /// refused as overloaded (429/503, with the provider's `Retry-After`).
    pub fn report(&self, accepted: bool, overloaded: bool, retry_after: Option<Duration>) {
        if let Some(slot) = self.slot().as_ref() {
            if accepted {
                slot.succeeded();
            } else if overloaded {
                slot.overloaded(retry_after);
            }
        }
    }

    /// Frees the held slot (an attempt failed: a retry queues anew).
    pub fn release(&self) {
        self.slot().take();
    }

    /// The held slot, for the stream to keep while it reads the answer.
    pub fn take_slot(&self) -> Option<Slot> {
        self.slot().take()
    }
}
