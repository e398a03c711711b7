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
    assert!(
        fake.wait_dropped("m", Duration::from_secs(2)).await,
        "the hanging request was not closed"
    );
}

#[tokio::test]
async fn waiting_out_retry_after_does_not_count_against_the_first_token() {
    let fake = FakeLlm::start().await;
    fake.script(
        "m",
        Script::new()
            .text("worth the wait")
            .fail(429)
            .retry_after(1)
            .fail_times(1),
    );
    // The 1 s Retry-After wait is longer than the first-token limit.
    let llm = with_timeouts(
        &fake,
        Timeouts {
            first_token_ms: 600,
            ..Timeouts::default()
        },
    );

    let outcome = run(&llm, ask("m", "hi")).await;

    assert_eq!(outcome.error, None);
    assert_eq!(outcome.text(), "worth the wait");
    assert_eq!(fake.requests_for("m").len(), 2);
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

#[tokio::test]
async fn provider_that_never_accepts_hits_the_connect_timeout() {
    // A listener whose accept queue is full: the kernel drops further SYNs,
    // so connecting hangs until the connect timeout.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let listener = socket.listen(1).expect("listen");
    let addr = listener.local_addr().expect("addr");
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(stream)) = tokio::time::timeout(
            Duration::from_millis(100),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            fillers.push(stream);
        }
    }
    let mut settings = LlmSettings {
        providers: vec![super::provider("full", format!("http://{addr}/v1"), &[])],
        timeouts: Timeouts {
            connect_ms: 200,
            ..Timeouts::default()
        },
        ..LlmSettings::default()
    };
    settings.retry.max_retries = 1;
    settings.retry.base_delay_ms = 10;
    let llm = client(settings);
    let started = Instant::now();

    let outcome = run(&llm, ask("m", "hi")).await;

    assert_eq!(
        outcome.error,
        Some(LlmError::Timeout {
            kind: TimeoutKind::Connect,
            limit: Duration::from_millis(200)
        })
    );
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "a connect timeout is retried (max_retries 1)"
    );
    drop(fillers);
}
