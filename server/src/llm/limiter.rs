//! An adaptive concurrency limit (AIMD) for one provider, or one model of a
//! provider: how many calls may be in flight at once.
//!
//! A fixed small ceiling makes a shared server queue its own users behind
//! each other while the provider has room to spare; real providers limit by
//! rate and say so with 429 (or 503) and `Retry-After`. So the window starts
//! at a generous ceiling and follows what the provider says, as TCP and
//! Netflix's concurrency-limits do:
//!
//! - an overload answer (429/503) cuts the window multiplicatively, once per
//!   congestion event: only a call admitted after the last cut can cut again
//!   (TCP's rule), so a burst of rejections from one wave does not collapse
//!   the window to 1. Every rejection also bounds the window below the
//!   number of calls that were in flight when it came: the provider just
//!   showed it takes fewer;
//! - the window holds (does not grow) for the provider's `Retry-After`;
//! - each success grows it by `1/window`, about one slot per window's worth
//!   of successes (additive increase), up to the ceiling.
//!
//! Waiting calls are served first come, first served. A call that stops
//! waiting (its stream was dropped) gives back a slot it was just granted.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

/// The multiplicative cut of an overload (Netflix's AIMD uses 0.9 too).
const BACKOFF_RATIO: f64 = 0.9;

/// How long the window holds after an overload answer without `Retry-After`.
const DEFAULT_HOLD: Duration = Duration::from_secs(1);

/// One adaptive window. Shared as `Arc<Limiter>`.
#[derive(Debug)]
pub(crate) struct Limiter {
    /// What logs call it: the provider's name, or `provider/model`.
    name: String,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The current window, `1..=ceiling`.
    limit: usize,
    ceiling: usize,
    /// Growth earned by successes but not yet a whole slot.
    growth: f64,
    in_flight: usize,
    /// Counts the cuts: a permit remembers the epoch it was granted in.
    epoch: u64,
    /// No growth before this moment (the provider's `Retry-After`).
    hold_until: Option<Instant>,
    /// Calls waiting for a slot, oldest first; each is sent the epoch of
    /// the slot it is granted.
    waiters: VecDeque<oneshot::Sender<u64>>,
}

/// A slot in the window; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct Permit {
    limiter: Arc<Limiter>,
    epoch: u64,
}

impl Limiter {
    /// A window that starts at (and never grows past) `ceiling`, at least 1.
    pub fn new(name: impl Into<String>, ceiling: usize) -> Arc<Self> {
        let ceiling = ceiling.max(1);
        Arc::new(Self {
            name: name.into(),
            state: Mutex::new(State {
                limit: ceiling,
                ceiling,
                growth: 0.0,
                in_flight: 0,
                epoch: 0,
                hold_until: None,
                waiters: VecDeque::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current window.
    pub fn limit(&self) -> usize {
        self.lock().limit
    }

    /// Calls holding a slot now.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    #[cfg(test)]
    /// Waits for a slot, in arrival order.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        self.acquire_noting_wait().await.0
    }

    /// A slot, and whether the caller had to wait for it.
    async fn acquire_noting_wait(self: &Arc<Self>) -> (Permit, bool) {
        let receiver = {
            let mut state = self.lock();
            if state.waiters.is_empty() && state.in_flight < state.limit {
                state.in_flight += 1;
                let permit = Permit {
                    limiter: self.clone(),
                    epoch: state.epoch,
                };
                return (permit, false);
            }
            let (sender, receiver) = oneshot::channel();
            state.waiters.push_back(sender);
            receiver
        };
        let mut waiting = Waiting {
            limiter: self.clone(),
            receiver: Some(receiver),
        };
        let epoch = match waiting.receiver.as_mut() {
            // The limiter holds the sender until it grants the slot.
            Some(receiver) => receiver.await.unwrap_or(0),
            None => 0,
        };
        waiting.receiver = None;
        let permit = Permit {
            limiter: self.clone(),
            epoch,
        };
        (permit, true)
    }

    fn release(&self) {
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        state.grant();
    }
}

impl State {
    /// Hands free slots to the oldest waiters still waiting.
    fn grant(&mut self) {
        while self.in_flight < self.limit {
            let Some(waiter) = self.waiters.pop_front() else {
                return;
            };
            if waiter.send(self.epoch).is_ok() {
                self.in_flight += 1;
            }
        }
    }
}

impl Permit {
    /// The provider accepted the call: grow the window a little, unless it
    /// is held.
    pub fn succeeded(&self) {
        let mut state = self.limiter.lock();
        if state.hold_until.is_some_and(|until| Instant::now() < until) {
            return;
        }
        state.hold_until = None;
        if state.limit >= state.ceiling {
            state.growth = 0.0;
            return;
        }
        state.growth += 1.0 / state.limit as f64;
        if state.growth >= 1.0 {
            state.growth -= 1.0;
            state.limit += 1;
            state.grant();
        }
    }

    /// The provider answered 429 or 503: cut the window and hold it for
    /// `retry_after` (a second when it said nothing).
    pub fn overloaded(&self, retry_after: Option<Duration>) {
        let mut state = self.limiter.lock();
        let before = state.limit;
        // This call was one of those in flight; the provider took fewer.
        let observed = state.in_flight.saturating_sub(1).max(1);
        let mut limit = state.limit.min(observed);
        if self.epoch == state.epoch {
            state.epoch += 1;
            let cut = (before as f64 * BACKOFF_RATIO).floor() as usize;
            limit = limit.min(cut);
        }
        state.limit = limit.max(1);
        state.growth = 0.0;
        let until = Instant::now() + retry_after.unwrap_or(DEFAULT_HOLD);
        state.hold_until = Some(state.hold_until.map_or(until, |held| held.max(until)));
        if state.limit < before {
            tracing::info!(
                limiter = %self.limiter.name,
                from = before,
                to = state.limit,
                in_flight = state.in_flight,
                "provider overloaded; concurrency limit cut"
            );
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limiter.release();
    }
}

/// The limits of one provider: its own window, and one per model when the
/// provider limits each model on its own.
#[derive(Debug)]
pub(crate) struct Limits {
    provider: Arc<Limiter>,
    ceiling: usize,
    per_model: Option<Mutex<HashMap<String, Arc<Limiter>>>>,
}

/// The slots one call holds: its model's (if limited per model) and its
/// provider's. Dropping it frees both.
#[derive(Debug)]
pub(crate) struct Slot {
    model: Option<Permit>,
    provider: Permit,
    /// The call had to wait for it (a free slot is not queueing).
    pub waited: bool,
}

impl Limits {
    /// Windows of at most `ceiling` for provider `name`.
    pub fn new(name: &str, ceiling: usize, per_model: bool) -> Self {
        Self {
            provider: Limiter::new(name, ceiling),
            ceiling,
            per_model: per_model.then(|| Mutex::new(HashMap::new())),
        }
    }

    /// The provider's current window.
    pub fn limit(&self) -> usize {
        self.provider.limit()
    }

    /// Waits for a slot for `model`: first its model's, then the
    /// provider's, so a model held back does not block the others.
    pub async fn acquire(&self, model: &str) -> Slot {
        let model_limiter = self.per_model.as_ref().map(|models| {
            models
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(model.to_owned())
                .or_insert_with(|| {
                    Limiter::new(format!("{}/{model}", self.provider.name), self.ceiling)
                })
                .clone()
        });
        let (model, waited_for_model) = match model_limiter {
            Some(limiter) => {
                let (permit, waited) = limiter.acquire_noting_wait().await;
                (Some(permit), waited)
            }
            None => (None, false),
        };
        let (provider, waited) = self.provider.acquire_noting_wait().await;
        Slot {
            model,
            provider,
            waited: waited || waited_for_model,
        }
    }
}

impl Slot {
    /// The narrowest window the call holds: the one a 429 is about.
    fn narrowest(&self) -> &Permit {
        self.model.as_ref().unwrap_or(&self.provider)
    }

    /// The provider accepted the call.
    pub fn succeeded(&self) {
        if let Some(model) = &self.model {
            model.succeeded();
        }
        self.provider.succeeded();
    }

    /// The provider answered 429/503.
    pub fn overloaded(&self, retry_after: Option<Duration>) {
        self.narrowest().overloaded(retry_after);
    }
}

/// A caller waiting for a slot. If it stops waiting after the slot was
/// granted but before it saw it, the slot goes back.
struct Waiting {
    limiter: Arc<Limiter>,
    receiver: Option<oneshot::Receiver<u64>>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(mut receiver) = self.receiver.take() {
            receiver.close();
            if receiver.try_recv().is_ok() {
                self.limiter.release();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt as _;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// Takes `n` slots that are free now.
    fn take(limiter: &Arc<Limiter>, n: usize) -> Vec<Permit> {
        (0..n)
            .map(|_| limiter.acquire().now_or_never().expect("a free slot"))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn starts_at_the_ceiling_and_queues_beyond_it_in_order() {
        let limiter = Limiter::new("p", 2);
        let held = take(&limiter, 2);
        let first = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.acquire().await }
        });
        tokio::task::yield_now().await;
        let second = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.acquire().await }
        });
        tokio::task::yield_now().await;
        assert!(!first.is_finished() && !second.is_finished());
        drop(held);
        let first = first.await.expect("first waiter");
        let second = second.await.expect("second waiter");
        assert_eq!(limiter.in_flight(), 2);
        drop((first, second));
        assert_eq!(limiter.in_flight(), 0);
        assert_eq!(limiter.limit(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_leaves_does_not_keep_a_slot() {
        let limiter = Limiter::new("p", 1);
        let held = take(&limiter, 1);
        let waiter = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.acquire().await }
        });
        tokio::task::yield_now().await;
        waiter.abort();
        let _ = waiter.await;
        drop(held);
        assert_eq!(limiter.in_flight(), 0);
        assert!(limiter.acquire().now_or_never().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn one_wave_of_rejections_converges_on_what_the_provider_took() {
        // 64 calls at once against a provider that takes 8: 56 come back 429.
        let limiter = Limiter::new("p", 1024);
        let mut wave = take(&limiter, 64);
        let rejected = wave.split_off(8);
        for permit in rejected {
            permit.overloaded(Some(secs(1)));
            drop(permit);
        }
        assert_eq!(limiter.limit(), 8);
        assert_eq!(limiter.in_flight(), 8);
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_call_admitted_after_a_cut_cuts_again() {
        let limiter = Limiter::new("p", 100);
        let old = take(&limiter, 2);
        old[0].overloaded(None);
        assert_eq!(limiter.limit(), 1, "bounded by what was in flight");
        let limiter = Limiter::new("p", 100);
        let mut permits = take(&limiter, 50);
        // The first rejection cuts by the ratio (and by what was in flight).
        permits[0].overloaded(None);
        assert_eq!(limiter.limit(), 49);
        // Another from the same wave, with as many in flight: no second cut.
        permits[1].overloaded(None);
        assert_eq!(limiter.limit(), 49);
        permits.truncate(45);
        let new = limiter.acquire().now_or_never().expect("a slot");
        new.overloaded(None);
        assert_eq!(limiter.limit(), 44, "min(49 * 0.9, 46 - 1)");
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_holds_for_retry_after_then_grows_additively() {
        let limiter = Limiter::new("p", 16);
        let permits = take(&limiter, 9);
        permits[8].overloaded(Some(secs(5)));
        drop(permits);
        assert_eq!(limiter.limit(), 8);
        // Held: successes do not grow it.
        for _ in 0..20 {
            take(&limiter, 1)[0].succeeded();
        }
        assert_eq!(limiter.limit(), 8);
        tokio::time::advance(secs(5)).await;
        // Then about one slot per window's worth of successes.
        for _ in 0..8 {
            take(&limiter, 1)[0].succeeded();
        }
        assert_eq!(limiter.limit(), 9);
        for _ in 0..9 {
            take(&limiter, 1)[0].succeeded();
        }
        assert_eq!(limiter.limit(), 10);
        // Never past the ceiling.
        for _ in 0..1000 {
            take(&limiter, 1)[0].succeeded();
        }
        assert_eq!(limiter.limit(), 16);
    }

    #[tokio::test(start_paused = true)]
    async fn growth_admits_a_waiter_at_once() {
        let limiter = Limiter::new("p", 4);
        let mut permits = take(&limiter, 2);
        permits[1].overloaded(Some(Duration::ZERO));
        assert_eq!(limiter.limit(), 1);
        drop(permits.pop());
        let waiter = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.acquire().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "window 1, one in flight");
        // One success at window 1 earns a whole slot, granted at once.
        permits[0].succeeded();
        assert_eq!(limiter.limit(), 2);
        let admitted = waiter.await.expect("waiter");
        assert_eq!(limiter.in_flight(), 2);
        drop((admitted, permits));
        assert_eq!(limiter.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn per_model_limits_slow_only_the_model_that_was_refused() {
        let limits = Limits::new("p", 64, true);
        let mut busy = Vec::new();
        for _ in 0..4 {
            busy.push(limits.acquire("a/busy").await);
        }
        busy[3].overloaded(None);
        drop(busy.pop());
        // "a/busy" is held at 3; "b/other" and the provider are not.
        let blocked = limits.acquire("a/busy").now_or_never();
        assert!(blocked.is_none(), "a/busy is at its window");
        let other = limits.acquire("b/other").now_or_never();
        assert!(other.is_some(), "another model goes ahead");
        assert_eq!(limits.limit(), 64);
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_never_drops_below_one() {
        let limiter = Limiter::new("p", 3);
        for _ in 0..10 {
            let permit = limiter.acquire().await;
            permit.overloaded(None);
        }
        assert_eq!(limiter.limit(), 1);
        assert!(limiter.acquire().now_or_never().is_some());
    }
}
