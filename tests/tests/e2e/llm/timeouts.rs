//! Time limits: first token, idle gap, total.

use std::time::{Duration, Instant};

use moai_server::llm::{LlmClient, LlmError, LlmSettings, TimeoutKind, Timeouts};
use moai_tests::fake_llm::{FakeLlm, Script};

use super::{ask, client, run, settings_for};

fn with_timeouts(fake: &FakeLlm, timeouts: Timeouts) -> LlmClient {
    client(LlmSettings {
        timeouts,
        ..settings_for(fake)
    })
}

#[tokio::test]
async fn hanging_upstream_hits_the_first_token_timeout() {
    let fake = FakeLlm::start().await;
    fake.script("m", Script::new().hang());
    let llm = with_timeouts(
        &fake,
        Timeouts {
            first_token_ms: 300,
            ..Timeouts::default()
        },
    );
    let started = Instant::now();

    let outcome = run(&llm, ask("m", "hi")).await;

    let elapsed = started.elapsed();
    assert_eq!(
        outcome.error,
        Some(LlmError::Timeout {
            kind: TimeoutKind::FirstToken,
            limit: Duration::from_millis(300)
        })
    );
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert_eq!(fake.requests().len(), 1, "a timeout is not retried");
}

#[tokio::test]
async fn slow_first_token_after_the_headers_hits_the_first_token_timeout() {
    let fake = FakeLlm::start().await;
    fake.script("m", Script::new().first_token_delay(Duration::from_secs(5)));
    let llm = with_timeouts(
        &fake,
        Timeouts {
            first_token_ms: 300,
            ..Timeouts::default()
        },
    );

    let outcome = run(&llm, ask("m", "hi")).await;

    assert!(outcome.deltas.is_empty());
    assert!(
        matches!(
            outcome.error,
            Some(LlmError::Timeout {
                kind: TimeoutKind::FirstToken,
                ..
            })
        ),
        "{:?}",
        outcome.error
    );
    assert_eq!(
        outcome.error.map(|e| e.to_string()).as_deref(),
        Some("timed out waiting for the first token (300ms)")
    );
}

#[tokio::test]
async fn silence_between_chunks_hits_the_idle_timeout() {
    let fake = FakeLlm::start().await;
    fake.script(
        "m",
        Script::new()
            .text(FakeLlm::text_of_tokens(5))
            .token_pace(Duration::from_secs(2)),
    );
    let llm = with_timeouts(
        &fake,
        Timeouts {
            idle_ms: 200,
            ..Timeouts::default()
        },
    );

    let outcome = run(&llm, ask("m", "hi")).await;

    assert_eq!(outcome.deltas, ["w0"]);
    assert!(
        matches!(
            outcome.error,
            Some(LlmError::Timeout {
                kind: TimeoutKind::Idle,
                ..
            })
        ),
        "{:?}",
        outcome.error
    );
}

#[tokio::test]
async fn a_long_answer_hits_the_total_timeout() {
    let fake = FakeLlm::start().await;
    fake.script(
        "m",
        Script::new()
            .text(FakeLlm::text_of_tokens(100))
            .token_pace(Duration::from_millis(20)),
    );
    let llm = with_timeouts(
        &fake,
        Timeouts {
            total_ms: 300,
            ..Timeouts::default()
        },
    );

    let outcome = run(&llm, ask("m", "hi")).await;

    assert!(!outcome.deltas.is_empty() && outcome.deltas.len() < 100);
    assert!(
        matches!(
            outcome.error,
            Some(LlmError::Timeout {
                kind: TimeoutKind::Total,
                ..
            })
        ),
        "{:?}",
        outcome.error
    );
}
