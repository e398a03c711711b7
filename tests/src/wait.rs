//! Waiting in tests for a condition, not for a time: the condition is polled,
//! and the deadline only bounds a failure.

use std::time::Duration;

use tokio::time::Instant;

/// How often a condition is looked at again.
pub const POLL: Duration = Duration::from_millis(20);

/// Polls `check` until it gives a value.
///
/// # Panics
/// If `within` passes first, naming `what` was awaited.
pub async fn until_some<T>(
    within: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `check` until it holds.
///
/// # Panics
/// If `within` passes first, naming `what` was awaited.
pub async fn until(within: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    until_some(within, what, async || check().await.then_some(())).await;
}
