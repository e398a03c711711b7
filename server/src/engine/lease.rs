//! A run's lease: its claim on the discussion in the store, renewed while it
//! runs so other replicas do not take it for dead, and lost when the
//! discussion was stopped or recovered elsewhere.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::{StoreError, now_ms};

/// The stored lease end of a claim taken or renewed now.
pub(super) fn lease_until(lease: Duration) -> i64 {
    now_ms().saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

/// How keeping a lease ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LeaseEnd {
    /// The run ended (`done` fired).
    Done,
    /// The store no longer names this run: it must not go on.
    Lost,
}

/// Renews the lease every third of `lease` until `done` fires. `renew`
/// stores a new lease end and says whether the run still holds the
/// discussion; a renewal that fails is logged and tried again next time,
/// since one missed renewal leaves two more before the lease lapses.
pub(super) async fn keep<F, Fut>(
    lease: Duration,
    done: &CancellationToken,
    mut renew: F,
) -> LeaseEnd
where
    F: FnMut(i64) -> Fut,
    Fut: Future<Output = Result<bool, StoreError>>,
{
    let mut tick = tokio::time::interval(lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = done.cancelled() => return LeaseEnd::Done,
            _ = tick.tick() => match renew(lease_until(lease)).await {
                Ok(true) => {}
                Ok(false) => return LeaseEnd::Lost,
                Err(e) => tracing::warn!(error = %e, "could not extend the run lease"),
            },
        }
    }
}
