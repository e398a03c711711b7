//! How many answers the fake has in flight, and an optional limit on them:
//! above it the fake answers 429 with `Retry-After`, as a provider under a
//! concurrency limit does (a "429 storm" for a client that does not adapt).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::{FakeLlm, lock};

#[derive(Default)]
pub(crate) struct Concurrency {
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    /// `(most in flight, Retry-After seconds)`.
    limit: Mutex<Option<(usize, u64)>>,
    rejected: AtomicU64,
    /// Answers in flight right after each admission, in order.
    admissions: Mutex<Vec<usize>>,
}

/// One admitted answer; dropping it (when its body ends or is dropped)
/// frees its place.
pub(crate) struct Slot(Arc<Shared>);

type Shared = super::Shared;

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.concurrency.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Admits a request, or says how long to wait (the limit is reached).
pub(crate) fn admit(shared: &Arc<Shared>) -> Result<Slot, u64> {
    let c = &shared.concurrency;
    let limit = *lock(&c.limit);
    let now = c.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some((most, retry_after)) = limit
        && now > most
    {
        c.in_flight.fetch_sub(1, Ordering::SeqCst);
        c.rejected.fetch_add(1, Ordering::SeqCst);
        return Err(retry_after);
    }
    c.peak.fetch_max(now, Ordering::SeqCst);
    lock(&c.admissions).push(now);
    Ok(Slot(shared.clone()))
}

impl FakeLlm {
    /// Answers at most `most` chat requests at once; the others get 429
    /// with `Retry-After: retry_after_secs` and an OpenRouter-style body.
    pub fn limit_concurrency(&self, most: usize, retry_after_secs: u64) {
        *lock(&self.shared.concurrency.limit) = Some((most, retry_after_secs));
    }

    /// How many requests the concurrency limit turned away (429).
    pub fn rate_limited_count(&self) -> u64 {
        self.shared.concurrency.rejected.load(Ordering::SeqCst)
    }

    /// The most answers that were in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.shared.concurrency.peak.load(Ordering::SeqCst)
    }

    /// Answers in flight right after each admitted request, in order.
    pub fn admissions(&self) -> Vec<usize> {
        lock(&self.shared.concurrency.admissions).clone()
    }
}
