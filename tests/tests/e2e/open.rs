//! OpenDiscussion: every model at once, streamed, persisted, failure-tolerant.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use moai_proto::v1::{self, discussion_event::Payload};
use moai_server::config::Limits;
use moai_tests::events::{collect, kind, payloads};
use moai_tests::fake_llm::Script;
use moai_tests::server::{Backend, TestOptions, TestServer};
use tonic::Code;

use crate::on_both_backends;
use crate::support::*;

#[tokio::test]
async fn answers_arrive_in_latency_order_and_the_round_takes_the_slowest_not_the_sum() {
    let ts = TestServer::spawn().await;
    let pace = Duration::from_millis(5);
    ts.llm.script(
        "v/fast",
        Script::new()
            .first_token_delay(Duration::from_millis(50))
            .token_pace(pace),
    );
    ts.llm.script(
        "v/mid",
        Script::new()
            .first_token_delay(Duration::from_millis(300))
            .token_pace(pace),
    );
    ts.llm.script(
        "v/slow",
        Script::new()
            .first_token_delay(Duration::from_millis(800))
            .token_pace(pace),
    );
    let p = project(&ts, "latency", &["v/slow", "v/mid", "v/fast"]).await;

    let started = Instant::now();
    let events = open(&ts, &p.id, "Which is fastest?").await;
    let elapsed = started.elapsed();

    let order: Vec<String> = completed(&events).into_iter().map(|(m, _)| m).collect();
    assert_eq!(order, ["v/fast", "v/mid", "v/slow"]);
    assert!(
        elapsed >= Duration::from_millis(800),
        "cannot beat the slowest model: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(1_150),
        "the round took {elapsed:?}, not well under the 1150 ms sum of latencies"
    );
    let at = |model: &str| {
        events
            .iter()
            .find(|t| matches!(&t.event.payload, Some(Payload::MessageCompleted(c)) if c.message.as_ref().is_some_and(|m| m.model == model)))
            .map(|t| t.at.duration_since(started))
            .expect("completed")
    };
    assert!(
        at("v/fast") < Duration::from_millis(300),
        "fast answer streamed as soon as it was done: {:?}",
        at("v/fast")
    );
}

async fn deltas_rebuild_each_answer_seq_increases_and_get_returns_every_completed_message(
    backend: Backend,
) {
    let ts = TestServer::spawn_on(backend).await;
    ts.llm.script(
        "a/one",
        Script::new()
            .text("Alpha says: **bold** and a list\n- x\n- y")
            .usage(11, 22, 0.0033),
    );
    ts.llm
        .script("b/two", Script::new().text("Beta disagrees, politely."));
    let p = project(&ts, "deltas", &["a/one", "b/two"]).await;
    let events = open(&ts, &p.id, "What do you think?").await;

    let kinds: Vec<&str> = payloads(&events).into_iter().map(kind).collect();
    assert_eq!(kinds.first(), Some(&"discussion_started"));
    assert_eq!(kinds.get(1), Some(&"round_started"));
    assert_eq!(
        kinds[kinds.len() - 2..],
        ["round_completed", "status_changed"]
    );
    assert_eq!(last_status(&events), v1::DiscussionStatus::Idle as i32);

    let seqs: Vec<u64> = events.iter().map(|t| t.event.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seq strictly increases: {seqs:?}"
    );

    let mut rebuilt: HashMap<String, String> = HashMap::new();
    for t in &events {
        if let Some(Payload::MessageDelta(d)) = &t.event.payload {
            rebuilt
                .entry(d.message_id.clone())
                .or_default()
                .push_str(&d.text);
        }
    }
    let id = discussion_id(&events);
    let stored = get(&ts, &id).await;
    let stored_messages = all_messages(&stored);
    let mut completed_count = 0;
    for t in &events {
        if let Some(Payload::MessageCompleted(c)) = &t.event.payload {
            let m = c.message.as_ref().expect("message");
            completed_count += 1;
            assert_eq!(
                rebuilt.get(&m.id),
                Some(&m.content),
                "deltas of {} concatenate to its content",
                m.model
            );
            let s = stored_messages
                .iter()
                .find(|s| s.id == m.id)
                .expect("GetDiscussion returns it");
            assert_eq!(s.content, m.content);
            assert_eq!(s.status, v1::MessageStatus::Complete as i32);
        }
    }
    assert_eq!(completed_count, 2);
    assert_eq!(stored.status, v1::DiscussionStatus::Idle as i32);
    assert_eq!(stored.question, "What do you think?");
    let alpha = stored_messages
        .iter()
        .find(|m| m.model == "a/one")
        .expect("alpha");
    let usage = alpha.usage.expect("usage");
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (11, 22));
    assert!((usage.cost_usd - 0.0033).abs() < 1e-9);
    let total = stored.usage.expect("totals");
    assert!(total.prompt_tokens >= 11 && total.cost_usd >= 0.0033);
    assert_eq!(stored.last_seq, events.last().expect("last").event.seq);
}
on_both_backends!(
    deltas_and_persistence,
    deltas_rebuild_each_answer_seq_increases_and_get_returns_every_completed_message
);

#[tokio::test]
async fn failing_models_fail_alone_with_their_reasons() {
    let ts = TestServer::spawn_with(TestOptions {
        llm: Box::new(|l| {
            l.timeouts.first_token_ms = 600;
            l.retry.max_retries = 1;
        }),
        ..Default::default()
    })
    .await;
    let long = "one two three four five six seven eight nine ten eleven twelve";
    ts.llm.script("x/error", Script::new().fail(500));
    ts.llm
        .script("x/cut", Script::new().text(long).cut_after(3));
    ts.llm.script("x/hang", Script::new().hang());
    ts.llm.script("x/ok", Script::new().text("I am fine."));
    let p = project(&ts, "failures", &["x/error", "x/cut", "x/hang", "x/ok"]).await;
    let events = open(&ts, &p.id, "Anyone there?").await;

    let ok = completed(&events);
    assert_eq!(ok, [("x/ok".to_owned(), "I am fine.".to_owned())]);
    let failed = failed(&events);
    let reason = |model: &str| {
        failed
            .iter()
            .find(|f| f.model == model)
            .unwrap_or_else(|| panic!("{model} failed: {failed:?}"))
            .clone()
    };
    assert!(
        reason("x/error").error.contains("500"),
        "{:?}",
        reason("x/error")
    );
    let cut = reason("x/cut");
    assert!(cut.error.to_lowercase().contains("stream"), "{cut:?}");
    assert!(
        !cut.content.is_empty() && long.starts_with(&cut.content),
        "cut answer keeps its text: {cut:?}"
    );
    assert!(
        reason("x/hang").error.to_lowercase().contains("timed out"),
        "{:?}",
        reason("x/hang")
    );
    assert_eq!(last_status(&events), v1::DiscussionStatus::Idle as i32);

    let stored = all_messages(&get(&ts, &discussion_id(&events)).await);
    for model in ["x/error", "x/cut", "x/hang"] {
        let m = stored.iter().find(|m| m.model == model).expect("stored");
        assert_eq!(m.status, v1::MessageStatus::Failed as i32, "{model}");
        assert!(!m.error.is_empty());
    }
    let cut_stored = stored.iter().find(|m| m.model == "x/cut").expect("cut");
    assert_eq!(
        cut_stored.content, cut.content,
        "the store keeps the partial text"
    );
}

#[tokio::test]
async fn rate_limit_with_retry_after_is_retried_once_then_completes() {
    let ts = TestServer::spawn().await;
    ts.llm.script(
        "r/limited",
        Script::new()
            .text("made it")
            .fail(429)
            .retry_after(1)
            .fail_times(1),
    );
    let p = project(&ts, "retry", &["r/limited"]).await;
    let started = Instant::now();
    let events = open(&ts, &p.id, "Please?").await;
    assert_eq!(
        completed(&events),
        [("r/limited".to_owned(), "made it".to_owned())]
    );
    assert_eq!(
        ts.llm.requests_for("r/limited").len(),
        2,
        "exactly one retry"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After was honoured"
    );
}

async fn a_client_that_leaves_does_not_stop_the_run_and_watch_replays_exactly_the_rest(
    backend: Backend,
) {
    let ts = TestServer::spawn_on(backend).await;
    ts.llm.script(
        "s/slow",
        Script::new()
            .text("slow but sure answer")
            .first_token_delay(Duration::from_millis(300)),
    );
    ts.llm.script("s/quick", Script::new().text("quick answer"));
    let p = project(&ts, "leaver", &["s/slow", "s/quick"]).await;
    let mut stream = open_stream(&ts, &p.id, "Q?").await;
    let first = stream
        .next()
        .await
        .expect("first event")
        .expect("ok")
        .event
        .expect("event");
    drop(stream);

    let done = wait_idle(&ts, &first.discussion_id).await;
    let contents: Vec<String> = all_messages(&done).into_iter().map(|m| m.content).collect();
    assert!(
        contents.contains(&"slow but sure answer".to_owned()),
        "run finished and persisted: {contents:?}"
    );

    let rest = ts
        .discussions()
        .await
        .watch_discussion(v1::WatchDiscussionRequest {
            discussion_id: first.discussion_id.clone(),
            after_seq: first.seq,
        })
        .await
        .expect("watch")
        .into_inner();
    let rest = collect(rest, LIMIT).await;
    assert!(
        rest.iter().all(|t| t.event.seq > first.seq),
        "nothing at or before the seq given"
    );
    let seqs: Vec<u64> = rest.iter().map(|t| t.event.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert!(
        !rest
            .iter()
            .any(|t| matches!(t.event.payload, Some(Payload::DiscussionStarted(_))))
    );
    let mut answers = completed(&rest);
    answers.sort();
    assert_eq!(
        answers,
        [
            ("s/quick".to_owned(), "quick answer".to_owned()),
            ("s/slow".to_owned(), "slow but sure answer".to_owned())
        ]
    );
    assert_eq!(last_status(&rest), v1::DiscussionStatus::Idle as i32);
    assert_eq!(rest.last().expect("last").event.seq, done.last_seq);
}
on_both_backends!(
    leave_and_rewatch,
    a_client_that_leaves_does_not_stop_the_run_and_watch_replays_exactly_the_rest
);

#[tokio::test]
async fn watch_mid_run_has_no_gap_and_no_duplicate_at_the_seam() {
    let ts = TestServer::spawn().await;
    ts.llm.script(
        "w/paced",
        Script::new()
            .text("one two three four five six seven eight")
            .token_pace(Duration::from_millis(60)),
    );
    let p = project(&ts, "seam", &["w/paced"]).await;
    let mut stream = open_stream(&ts, &p.id, "Count").await;
    // Read until the first delta, then leave.
    let mut seen = Vec::new();
    loop {
        let e = next_event(&mut stream).await;
        let is_delta = matches!(e.payload, Some(Payload::MessageDelta(_)));
        seen.push(e);
        if is_delta {
            break;
        }
    }
    drop(stream);
    let after = seen.last().expect("seen").seq;
    let watched = ts
        .discussions()
        .await
        .watch_discussion(v1::WatchDiscussionRequest {
            discussion_id: seen[0].discussion_id.clone(),
            after_seq: after,
        })
        .await
        .expect("watch")
        .into_inner();
    let watched = collect(watched, LIMIT).await;
    let seqs: Vec<u64> = watched.iter().map(|t| t.event.seq).collect();
    let expected: Vec<u64> = (after + 1..after + 1 + seqs.len() as u64).collect();
    assert_eq!(
        seqs, expected,
        "consecutive from after_seq + 1: no gap, no duplicate"
    );
    let text: String = seen
        .iter()
        .chain(watched.iter().map(|t| &t.event))
        .filter_map(|e| match &e.payload {
            Some(Payload::MessageDelta(d)) => Some(d.text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "one two three four five six seven eight");
}

#[tokio::test]
async fn a_subscriber_that_never_reads_does_not_hold_up_the_others() {
    let ts = TestServer::spawn_with(TestOptions {
        limits: Limits {
            subscriber_buffer: 64,
            ..Limits::default()
        },
        ..Default::default()
    })
    .await;
    let text = moai_tests::fake_llm::text_of_tokens(20_000);
    ts.llm.script(
        "big/talker",
        Script::new()
            .text(text.clone())
            .first_token_delay(Duration::from_millis(200)),
    );
    let p = project(&ts, "stall", &["big/talker"]).await;

    let mut reader = open_stream(&ts, &p.id, "Talk").await;
    let first = reader
        .next()
        .await
        .expect("first")
        .expect("ok")
        .event
        .expect("event");
    // A second subscriber on its own connection (with small HTTP/2 windows, as
    // a slow client would have) that never reads.
    let small = tonic::transport::Endpoint::from_shared(ts.url.clone())
        .expect("url")
        .initial_stream_window_size(Some(16 * 1024))
        .initial_connection_window_size(Some(16 * 1024))
        .connect()
        .await
        .expect("connect");
    let stalled = v1::discussion_service_client::DiscussionServiceClient::new(
        tonic::service::interceptor::InterceptedService::new(
            small,
            moai_tests::server::KeyAuth::new(&ts.key, None),
        ),
    )
    .watch_discussion(v1::WatchDiscussionRequest {
        discussion_id: first.discussion_id.clone(),
        after_seq: 0,
    })
    .await
    .expect("watch")
    .into_inner();

    // A hub that waited for the stalled subscriber would hold the reader up for
    // as long as that one does not read: forever here. The deadline only bounds
    // a failure; a debug build on a busy machine streams 20,000 tokens slowly.
    let started = Instant::now();
    let rest = collect(reader, LIMIT * 4).await;
    eprintln!(
        "the reader had the whole answer after {:?}",
        started.elapsed()
    );
    assert_eq!(completed(&rest), [("big/talker".to_owned(), text)]);

    // The stalled one was dropped with a clear status telling it how to re-attach.
    let outcome = tokio::time::timeout(LIMIT, async {
        let mut stalled = stalled;
        loop {
            match stalled.next().await {
                Some(Ok(_)) => continue,
                Some(Err(status)) => return Some(status),
                None => return None,
            }
        }
    })
    .await
    .expect("the stalled stream ends");
    let status = outcome.expect("dropped with an error status, not a silent end");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.message().contains("WatchDiscussion"), "{status:?}");
}

#[tokio::test]
async fn each_model_is_sent_the_roundtable_prompt_the_others_the_topic_and_the_question() {
    let ts = TestServer::spawn().await;
    let models = ["a/one", "b/two", "c/three"];
    let p = project(&ts, "Tabs versus spaces", &models).await;
    open(&ts, &p.id, "Which should a new project use?").await;
    for me in models {
        let reqs = ts.llm.requests_for(me);
        assert_eq!(reqs.len(), 1, "{me} called once");
        let system = &reqs[0].messages[0];
        assert_eq!(system.role, "system");
        assert!(
            system.content.contains(&format!("You are {me}")),
            "{}",
            system.content
        );
        assert!(system.content.contains("roundtable"));
        assert!(
            system.content.contains("Tabs versus spaces"),
            "topic is the project name"
        );
        for other in models.iter().filter(|m| **m != me) {
            assert!(system.content.contains(other), "{me} is told about {other}");
        }
        let user = reqs[0].messages.last().expect("user message");
        assert_eq!(user.role, "user");
        assert!(user.content.contains("Which should a new project use?"));
    }
}

#[tokio::test]
async fn bad_questions_and_modelless_projects_are_refused_clearly() {
    let ts = TestServer::spawn().await;
    let p = project(&ts, "valid", &["a/one"]).await;
    let empty = project(&ts, "empty", &[]).await;
    let mut d = ts.discussions().await;
    let cases = [
        (p.id.clone(), "   ".to_owned(), Code::InvalidArgument),
        (p.id.clone(), "x".repeat(33 * 1024), Code::InvalidArgument),
        (empty.id.clone(), "Q?".to_owned(), Code::FailedPrecondition),
        (
            "no-such-project".to_owned(),
            "Q?".to_owned(),
            Code::NotFound,
        ),
    ];
    for (project_id, question, code) in cases {
        let err = d
            .open_discussion(v1::OpenDiscussionRequest {
                project_id,
                question,
            })
            .await
            .expect_err("refused");
        assert_eq!(err.code(), code, "{err:?}");
    }
    assert!(ts.llm.requests().is_empty(), "no model was called");
}

#[tokio::test]
async fn discussions_list_newest_first_with_pages() {
    let ts = TestServer::spawn().await;
    let p = project(&ts, "many", &["a/one"]).await;
    let other = project(&ts, "other", &["a/one"]).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(discussion_id(
            &open(&ts, &p.id, &format!("question {i}")).await,
        ));
    }
    open(&ts, &other.id, "elsewhere").await;
    let mut d = ts.discussions().await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = d
            .list_discussions(v1::ListDiscussionsRequest {
                project_id: p.id.clone(),
                page_size: 2,
                page_token: token,
            })
            .await
            .expect("list")
            .into_inner();
        seen.extend(page.discussions.into_iter().map(|x| x.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, each once, only this project's");
}

#[tokio::test]
async fn list_models_comes_from_the_providers() {
    let ts = TestServer::spawn().await;
    ts.llm.script("vendor/listed-model", Script::new());
    let models = ts
        .models()
        .await
        .list_models(v1::ListModelsRequest {})
        .await
        .expect("list models")
        .into_inner()
        .models;
    assert!(
        models.iter().any(|m| m.id == "vendor/listed-model"),
        "{models:?}"
    );
}

#[tokio::test]
#[cfg_attr(
    moai_no_postgres,
    ignore = "MOAI_TEST_POSTGRES_URL was not set when the tests were compiled (.ci/run sets it)"
)]
async fn open_round_on_postgres_persists_like_on_sqlite() {
    let ts = TestServer::spawn_on(Backend::Postgres).await;
    let p = project(&ts, "pg", &["a/one", "b/two"]).await;
    let events = open(&ts, &p.id, "Stored in PostgreSQL?").await;
    let id = discussion_id(&events);
    let stored = get(&ts, &id).await;
    assert_eq!(all_messages(&stored).len(), 2);
    assert_eq!(stored.status, v1::DiscussionStatus::Idle as i32);
    let replay = ts
        .discussions()
        .await
        .watch_discussion(v1::WatchDiscussionRequest {
            discussion_id: id,
            after_seq: 0,
        })
        .await
        .expect("watch")
        .into_inner();
    let replay = collect(replay, LIMIT).await;
    assert_eq!(completed(&replay).len(), 2);
}
