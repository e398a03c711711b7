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

#[cfg(test)]
mod tests {
    //! Lease keeping on paused time: renewals land exactly every third of
    //! the lease, without a test that sleeps for it.

    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;

    const LEASE: Duration = Duration::from_secs(30);

    /// A renew that notes when it ran and answers from `answers` in turn
    /// (`Ok(true)` once they run out).
    fn renew(
        calls: Arc<Mutex<Vec<Duration>>>,
        answers: Vec<Result<bool, StoreError>>,
    ) -> impl FnMut(i64) -> std::future::Ready<Result<bool, StoreError>> {
        let start = Instant::now();
        let mut answers = answers.into_iter();
        move |_until| {
            calls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(start.elapsed());
            std::future::ready(answers.next().unwrap_or(Ok(true)))
        }
    }

    fn taken(calls: &Arc<Mutex<Vec<Duration>>>) -> Vec<u64> {
        calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(Duration::as_secs)
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn renews_every_third_of_the_lease_until_the_run_is_done() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let done = CancellationToken::new();
        let keeping = tokio::spawn({
            let done = done.clone();
            let renew = renew(calls.clone(), Vec::new());
            async move { keep(LEASE, &done, renew).await }
        });
        tokio::time::sleep(Duration::from_secs(35)).await;
        done.cancel();
        assert_eq!(keeping.await.expect("joined"), LeaseEnd::Done);
        assert_eq!(taken(&calls), [10, 20, 30]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_the_store_no_longer_grants_is_lost_at_once() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let done = CancellationToken::new();
        let end = keep(
            LEASE,
            &done,
            renew(calls.clone(), vec![Ok(true), Ok(false)]),
        )
        .await;
        assert_eq!(end, LeaseEnd::Lost);
        assert_eq!(taken(&calls), [10, 20]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_renewal_is_tried_again_at_the_next_tick() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let done = CancellationToken::new();
        let answers = vec![
            Err(StoreError::Write("database unreachable".into())),
            Ok(false),
        ];
        let end = keep(LEASE, &done, renew(calls.clone(), answers)).await;
        assert_eq!(end, LeaseEnd::Lost, "the error did not end the keeping");
        assert_eq!(taken(&calls), [10, 20]);
    }

    #[test]
    fn a_lease_ends_its_length_from_now() {
        let before = now_ms();
        let until = lease_until(LEASE);
        let after = now_ms();
        assert!((before + 30_000..=after + 30_000).contains(&until));
    }
}
