//! The adaptive concurrency limit against a provider that limits how many
//! calls it serves at once, and the queue notice of a call kept waiting.

use std::time::Duration;

use super::*;

/// 64 calls at once against a provider that serves 8 and answers 429 with
/// `Retry-After: 1` above that: every call gets its answer, the limit settles
/// near 8, and the 429s stay close to the first wave's 56.
#[tokio::test]
async fn a_429_storm_converges_near_the_providers_limit_and_every_call_answers() {
    let fake = FakeLlm::start().await;
    fake.limit_concurrency(8, 1);
    fake.default_script(
        Script::new()
            .text(FakeLlm::text_of_tokens(10))
            .token_pace(Duration::from_millis(30)),
    );
    let mut settings = settings_for(&fake);
    settings.retry = RetrySettings {
        max_retries: 3,
        base_delay_ms: 100,
        max_delay_ms: 5_000,
    };
    let llm = client(settings);

    let calls = (0..64).map(|i| run(&llm, ask(&format!("m/{}", i % 4), &format!("q{i}"))));
    let outcomes = futures::future::join_all(calls).await;

    let failed: Vec<_> = outcomes.iter().filter_map(|o| o.error.clone()).collect();
    assert_eq!(failed, Vec::new(), "every call answers");
    assert!(outcomes.iter().all(|o| o.text().starts_with("w0 w1")));
    let limit = llm.concurrency_limit("fake").unwrap_or(0);
    assert!((4..=12).contains(&limit), "the limit settled at {limit}");
    let rejected = fake.rate_limited_count();
    // The first wave meets 56 refusals at most; after that the limiter keeps
    // the calls near what the provider takes (a fixed window would meet
    // 48 + 40 + 32 … more, and run out of retries).
    assert!(rejected >= 40, "the storm happened: {rejected}");
    assert!(rejected <= 56 + 16, "429s kept bounded: {rejected}");
    assert!(fake.peak_in_flight() <= 8);
}

/// With the only slot taken for a while, the next call says it is queued
/// after a second, then reports the time it waited when it is accepted.
#[tokio::test]
async fn a_call_kept_waiting_for_a_slot_says_so_and_reports_its_queue_time() {
    let fake = FakeLlm::start().await;
    fake.script(
        "slow",
        Script::new()
            .text(FakeLlm::text_of_tokens(15))
            .token_pace(Duration::from_millis(100)),
    );
    // 1.5 s queued plus 0.7 s to its first token: within the limits only
    // because queue time never counts against them.
    fake.script(
        "fast",
        Script::new().first_token_delay(Duration::from_millis(700)),
    );
    let mut settings = settings_for(&fake);
    settings.providers[0].max_concurrency = Some(1);
    settings.timeouts.first_token_ms = 1_000;
    settings.timeouts.total_ms = 2_000;
    let llm = client(settings);

    let (slow, waiting) = tokio::join!(run(&llm, ask("slow", "a")), async {
        // Make sure "slow" holds the slot first.
        let deadline = Instant::now() + Duration::from_secs(5);
        while fake.requests_for("slow").is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        run(&llm, ask("fast", "b")).await
    });

    assert_eq!((slow.error, &waiting.error), (None, &None));
    assert_eq!(waiting.queued.len(), 1, "one notice: {:?}", waiting.queued);
    assert!(waiting.queued[0] >= QUEUE_NOTICE);
    let queued = waiting.accepted.unwrap_or_default();
    assert!(queued >= Duration::from_millis(1_300), "queued {queued:?}");
    assert_eq!(
        slow.accepted,
        Some(Duration::ZERO),
        "a free slot is no queueing"
    );
    assert!(slow.queued.is_empty());
}
