//! Capacity on the server's default provider configuration: no fixed
//! ceiling under load, and a provider's own limit found from its 429s.

use std::time::Duration;

use moai_proto::v1::{self, discussion_event::Payload};
use moai_tests::events::{Timed, payloads};
use moai_tests::fake_llm::Script;
use moai_tests::server::TestServer;

use crate::support::*;

async fn rounds_at_once(ts: &TestServer, n: usize, models: &[&str]) -> Vec<Vec<Timed>> {
    let p = project(ts, "load", models).await;
    let rounds = (0..n).map(|i| {
        let id = p.id.clone();
        async move { open(ts, &id, &format!("question {i}")).await }
    });
    futures::future::join_all(rounds).await
}

fn stored_messages<'a>(events: &'a [Timed]) -> impl Iterator<Item = &'a v1::Message> + 'a {
    events.iter().filter_map(|t| match &t.event.payload {
        Some(Payload::MessageCompleted(c)) => c.message.as_ref(),
        _ => None,
    })
}

#[tokio::test]
async fn forty_four_model_rounds_at_once_never_wait_for_a_slot() {
    let ts = TestServer::spawn().await;
    ts.llm.default_script(
        Script::new()
            .first_token_delay(Duration::from_millis(1_500))
            .text("fine"),
    );

    let all = rounds_at_once(&ts, 40, &["v/a", "v/b", "v/c", "v/d"]).await;

    let mut answers = 0;
    for events in &all {
        assert!(failed(events).is_empty(), "{:?}", failed(events));
        assert!(
            !payloads(events)
                .iter()
                .any(|p| matches!(p, Payload::MessageQueued(_))),
            "a call was queued"
        );
        for m in stored_messages(events) {
            answers += 1;
            assert_eq!(m.queue_ms, 0, "{} waited for a slot", m.model);
        }
    }
    assert_eq!(answers, 160);
    // Far more at once than the old fixed ceiling of 32 allowed.
    let peak = ts.llm.peak_in_flight();
    assert!(peak > 32, "only {peak} calls in flight at once");
}

#[tokio::test]
async fn a_provider_that_takes_eight_at_once_is_found_and_no_answer_fails() {
    let ts = TestServer::spawn().await;
    ts.llm.limit_concurrency(8, 1);
    ts.llm.default_script(
        Script::new()
            .text(moai_tests::fake_llm::FakeLlm::text_of_tokens(8))
            .token_pace(Duration::from_millis(100)),
    );

    let all = rounds_at_once(&ts, 16, &["v/a", "v/b", "v/c", "v/d"]).await;

    let mut queued = 0;
    for events in &all {
        assert!(failed(events).is_empty(), "{:?}", failed(events));
        for m in stored_messages(events) {
            assert!(m.content.starts_with("w0 w1"));
            queued += usize::from(m.queue_ms > 0);
        }
    }
    let rejected = ts.llm.rate_limited_count();
    assert!(rejected >= 8, "the storm happened: {rejected}");
    assert!(rejected <= 56 + 16, "429s kept bounded: {rejected}");
    assert!(
        queued > 0,
        "calls waited for the limit instead of retrying blindly"
    );
}
