//! Scale-out with Redis: replicas on one PostgreSQL relay each run's live
//! events (deltas included) through a per-discussion Redis stream, and a
//! stop sent to any replica reaches the run at once (through Redis, or
//! PostgreSQL's NOTIFY without it). Redis going away degrades watchers to the
//! store and loses nothing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use moai_proto::v1::{self, discussion_event::Payload};
use moai_server::config::Limits;
use moai_tests::events::{Timed, collect};
use moai_tests::fake_llm::{FakeLlm, Script};
use moai_tests::process::{ProcessOptions, ServerProcess, free_port, server_binary};
use moai_tests::redis::{RedisServer, TestRedis};
use moai_tests::server::{ALICE_KEY, Backend, TestOptions, TestServer, postgres_url};

use crate::support::{LIMIT, all_messages, get, last_status, next_event, open_stream, project};

/// PostgreSQL and Redis both, or say why the test does not run.
fn services() -> Option<TestRedis> {
    if postgres_url().is_none() {
        eprintln!(
            "MOAI_TEST_POSTGRES_URL is not set: scale-out tests not run here (.ci/run sets it)"
        );
        return None;
    }
    let redis = TestRedis::shared();
    if redis.is_none() {
        eprintln!("MOAI_TEST_REDIS_URL is not set: scale-out tests not run here (.ci/run sets it)");
    }
    redis
}

/// A replica on `database_url` (a fresh PostgreSQL database when `None`).
async fn replica(
    database_url: Option<String>,
    redis: Option<TestRedis>,
    limits: Limits,
) -> TestServer {
    TestServer::spawn_with(TestOptions {
        backend: Backend::Postgres,
        database_url,
        redis,
        limits,
        ..Default::default()
    })
    .await
}

async fn watch_stream(
    ts: &TestServer,
    id: &str,
    after_seq: u64,
) -> tonic::Streaming<v1::WatchDiscussionResponse> {
    ts.discussions()
        .await
        .watch_discussion(v1::WatchDiscussionRequest {
            discussion_id: id.into(),
            after_seq,
        })
        .await
        .expect("watch")
        .into_inner()
}

fn seqs(events: &[Timed]) -> Vec<u64> {
    events.iter().map(|t| t.event.seq).collect()
}

fn deltas(events: &[Timed]) -> usize {
    events
        .iter()
        .filter(|t| matches!(t.event.payload, Some(Payload::MessageDelta(_))))
        .count()
}

/// Each message's deltas, concatenated, by message id.
fn delta_texts(events: &[Timed]) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = HashMap::new();
    for t in events {
        if let Some(Payload::MessageDelta(d)) = &t.event.payload {
            out.entry(d.message_id.clone())
                .or_default()
                .push_str(&d.text);
        }
    }
    out
}

/// (id, content) of each completed message.
fn contents(events: &[Timed]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|t| match &t.event.payload {
            Some(Payload::MessageCompleted(c)) => c.message.as_ref(),
            _ => None,
        })
        .map(|m| (m.id.clone(), m.content.clone()))
        .collect()
}

#[tokio::test]
async fn a_run_on_one_replica_is_live_on_two_others() {
    let Some(redis) = services() else { return };
    let a = replica(None, Some(redis.clone()), Limits::default()).await;
    let b = replica(
        a.database_url.clone(),
        Some(redis.clone()),
        Limits::default(),
    )
    .await;
    let c = replica(a.database_url.clone(), Some(redis), Limits::default()).await;
    for model in ["slow/one", "slow/two"] {
        a.llm.script(
            model,
            Script::new()
                .text(FakeLlm::text_of_tokens(60))
                .first_token_delay(Duration::from_millis(300))
                .token_pace(Duration::from_millis(5)),
        );
    }
    let p = project(&a, "live elsewhere", &["slow/one", "slow/two"]).await;
    let mut on_a = open_stream(&a, &p.id, "Q").await;
    let first = next_event(&mut on_a).await;
    let on_b = watch_stream(&b, &first.discussion_id, 0).await;
    let on_c = watch_stream(&c, &first.discussion_id, 0).await;

    let (rest_a, seen_b, seen_c) = tokio::join!(
        collect(on_a, LIMIT),
        collect(on_b, LIMIT),
        collect(on_c, LIMIT)
    );
    let mut seen_a = vec![Timed {
        event: first,
        at: Instant::now(),
    }];
    seen_a.extend(rest_a);
    assert!(deltas(&seen_a) >= 100, "the run streamed deltas");
    let events = |ts: &[Timed]| ts.iter().map(|t| t.event.clone()).collect::<Vec<_>>();
    assert_eq!(
        events(&seen_b),
        events(&seen_a),
        "B sees exactly A's events"
    );
    assert_eq!(
        events(&seen_c),
        events(&seen_a),
        "C sees exactly A's events"
    );
    let texts = delta_texts(&seen_b);
    let done = contents(&seen_b);
    assert_eq!(done.len(), 2);
    for (id, content) in done {
        assert_eq!(
            texts.get(&id),
            Some(&content),
            "B's deltas make up the message"
        );
    }
    assert_eq!(last_status(&seen_b), v1::DiscussionStatus::Idle as i32);
}

#[tokio::test]
async fn a_watcher_joining_mid_answer_on_another_replica_misses_and_repeats_nothing() {
    let Some(redis) = services() else { return };
    let a = replica(None, Some(redis.clone()), Limits::default()).await;
    let b = replica(a.database_url.clone(), Some(redis), Limits::default()).await;
    a.llm.script(
        "slow/one",
        Script::new()
            .text(FakeLlm::text_of_tokens(200))
            .token_pace(Duration::from_millis(10)),
    );
    let p = project(&a, "join mid answer", &["slow/one"]).await;
    let mut on_a = open_stream(&a, &p.id, "Q").await;
    let mut seen_a = Vec::new();
    while deltas(&seen_a) < 30 {
        seen_a.push(Timed {
            event: next_event(&mut on_a).await,
            at: Instant::now(),
        });
    }
    let joined_after = seen_a.last().map(|t| t.event.seq).expect("events");
    let id = seen_a[0].event.discussion_id.clone();
    let on_b = watch_stream(&b, &id, joined_after).await;
    let (rest_a, seen_b) = tokio::join!(collect(on_a, LIMIT), collect(on_b, LIMIT));
    seen_a.extend(rest_a);

    let after: Vec<_> = seen_a
        .iter()
        .filter(|t| t.event.seq > joined_after)
        .map(|t| t.event.clone())
        .collect();
    let on_b: Vec<_> = seen_b.iter().map(|t| t.event.clone()).collect();
    assert_eq!(on_b, after, "B gives every event after after_seq, once");
    // What the client had before re-attaching, plus what B gave, is the answer.
    let before: Vec<Timed> = seen_a
        .iter()
        .filter(|t| t.event.seq <= joined_after)
        .cloned()
        .collect();
    let mut rebuilt = delta_texts(&before);
    for (id, text) in delta_texts(&seen_b) {
        rebuilt.entry(id).or_default().push_str(&text);
    }
    let done = contents(&seen_b);
    assert_eq!(done.len(), 1);
    assert_eq!(rebuilt.get(&done[0].0), Some(&done[0].1));
}

/// Stops through B the run A is streaming; returns how long until A's
/// upstream call was dropped, after checking the partial answer was kept.
async fn stop_through_b(a: &TestServer, b: &TestServer) -> Duration {
    a.llm.script(
        "slow/one",
        Script::new()
            .text(FakeLlm::text_of_tokens(2000))
            .token_pace(Duration::from_millis(20)),
    );
    let p = project(a, "stop elsewhere", &["slow/one"]).await;
    let mut on_a = open_stream(a, &p.id, "Q").await;
    let first = next_event(&mut on_a).await;
    let mut deltas_seen = 0;
    while deltas_seen < 10 {
        if let Some(Payload::MessageDelta(_)) = next_event(&mut on_a).await.payload {
            deltas_seen += 1;
        }
    }
    let sent = Instant::now();
    let stopped = b
        .discussions()
        .await
        .stop_discussion(v1::StopDiscussionRequest {
            discussion_id: first.discussion_id.clone(),
        })
        .await
        .expect("stop on B")
        .into_inner()
        .discussion
        .expect("discussion");
    assert_eq!(stopped.status, v1::DiscussionStatus::Stopped as i32);
    assert!(
        a.llm.wait_dropped("slow/one", Duration::from_secs(5)).await,
        "replica A dropped its upstream request"
    );
    let took = sent.elapsed();
    let rest = collect(on_a, LIMIT).await;
    assert_eq!(last_status(&rest), v1::DiscussionStatus::Stopped as i32);
    let d = get(b, &first.discussion_id).await;
    assert_eq!(d.status, v1::DiscussionStatus::Stopped as i32);
    let m = &all_messages(&d)[0];
    assert_eq!(m.status, v1::MessageStatus::Interrupted as i32);
    assert!(!m.content.is_empty(), "the partial answer is kept");
    took
}

#[tokio::test]
async fn a_stop_sent_to_another_replica_ends_the_run_within_a_second_through_redis() {
    let Some(redis) = services() else { return };
    // The default lease (30 s, heartbeat every 10 s) cannot be what stops it.
    let a = replica(None, Some(redis.clone()), Limits::default()).await;
    let b = replica(a.database_url.clone(), Some(redis), Limits::default()).await;
    let took = stop_through_b(&a, &b).await;
    eprintln!("stop through B (Redis) ended the run on A after {took:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn a_stop_sent_to_another_replica_ends_the_run_within_a_second_through_postgres() {
    if postgres_url().is_none() {
        eprintln!("MOAI_TEST_POSTGRES_URL is not set: not run here (.ci/run sets it)");
        return;
    }
    let a = replica(None, None, Limits::default()).await;
    let b = replica(a.database_url.clone(), None, Limits::default()).await;
    let took = stop_through_b(&a, &b).await;
    eprintln!("stop through B (PostgreSQL NOTIFY) ended the run on A after {took:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn losing_redis_mid_run_loses_nothing_and_live_returns_with_it() {
    if postgres_url().is_none() {
        eprintln!("MOAI_TEST_POSTGRES_URL is not set: not run here (.ci/run sets it)");
        return;
    }
    let mut server = RedisServer::start().await;
    let redis = TestRedis::at(&server.url());
    let a = replica(None, Some(redis.clone()), Limits::default()).await;
    let b = replica(a.database_url.clone(), Some(redis), Limits::default()).await;
    a.llm.script(
        "slow/one",
        Script::new()
            .text(FakeLlm::text_of_tokens(150))
            .token_pace(Duration::from_millis(10)),
    );
    let p = project(&a, "redis goes away", &["slow/one"]).await;
    let mut on_a = open_stream(&a, &p.id, "Q").await;
    let first = next_event(&mut on_a).await;
    let id = first.discussion_id.clone();
    let mut on_b = watch_stream(&b, &id, 0).await;
    let mut seen_b = Vec::new();
    while deltas(&seen_b) < 10 {
        seen_b.push(Timed {
            event: next_event(&mut on_b).await,
            at: Instant::now(),
        });
    }
    server.kill();
    let (rest_a, rest_b) = tokio::join!(collect(on_a, LIMIT), collect(on_b, LIMIT));
    seen_b.extend(rest_b);
    assert_eq!(last_status(&rest_a), v1::DiscussionStatus::Idle as i32);
    assert_eq!(
        last_status(&seen_b),
        v1::DiscussionStatus::Idle as i32,
        "B's watch ends properly"
    );
    let s = seqs(&seen_b);
    assert!(
        s.windows(2).all(|w| w[0] < w[1]),
        "no duplicate on B: {s:?}"
    );
    let stored = all_messages(&get(&a, &id).await);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].status, v1::MessageStatus::Complete as i32);
    assert_eq!(
        contents(&seen_b),
        [(stored[0].id.clone(), stored[0].content.clone())],
        "B got the whole stored answer"
    );
    let mut health = tonic_health::pb::health_client::HealthClient::new(a.channel().await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health")
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // Redis back (empty): the next run is live on B again.
    server.restart().await;
    a.llm.script(
        "slow/one",
        Script::new()
            .text(FakeLlm::text_of_tokens(100))
            .first_token_delay(Duration::from_millis(500))
            .token_pace(Duration::from_millis(10)),
    );
    // The relay reconnects on its own; the round is retried until it is live
    // on B (a watcher that starts while the reconnect is under way reads the store).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut on_a = a
            .discussions()
            .await
            .next_round(v1::NextRoundRequest {
                discussion_id: id.clone(),
            })
            .await
            .expect("NextRound on A")
            .into_inner();
        let started = next_event(&mut on_a).await;
        let on_b = watch_stream(&b, &id, started.seq - 1).await;
        let (_, seen) = tokio::join!(collect(on_a, LIMIT), collect(on_b, LIMIT));
        if deltas(&seen) > 0 {
            let texts = delta_texts(&seen);
            for (mid, content) in contents(&seen) {
                assert_eq!(texts.get(&mid), Some(&content));
            }
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "B never went live again after Redis came back"
        );
    }
}

#[tokio::test]
async fn remote_watchers_of_a_dead_replicas_run_see_it_end() {
    let Some(redis) = services() else { return };
    let b = replica(
        None,
        Some(redis.clone()),
        Limits {
            run_lease_secs: 1,
            ..Limits::default()
        },
    )
    .await;
    let url = b.database_url.clone().expect("postgres url");
    b.llm.script(
        "slow/one",
        Script::new()
            .text(FakeLlm::text_of_tokens(400))
            .token_pace(Duration::from_millis(30)),
    );
    let data = tempfile::tempdir().expect("tmp");
    let mut a = ServerProcess::start(ProcessOptions {
        binary: server_binary(),
        data_dir: data.path(),
        port: free_port(),
        api_keys: format!("alice:{ALICE_KEY}"),
        llm_base_url: b.llm.base_url(),
        database_url: Some(url),
        config: Some(format!(
            "redis_url = \"{}\"\nredis_key_prefix = \"{}\"\n[limits]\nrun_lease_secs = 1\n",
            redis.url, redis.key_prefix
        )),
    });
    let channel = a.auth_channel(ALICE_KEY).await;
    let p = project(&b, "dies", &["slow/one"]).await;
    let mut on_a = v1::discussion_service_client::DiscussionServiceClient::new(channel)
        .open_discussion(v1::OpenDiscussionRequest {
            project_id: p.id,
            question: "Q".into(),
        })
        .await
        .expect("open on A")
        .into_inner();
    let first = next_event(&mut on_a).await;
    let mut on_b = watch_stream(&b, &first.discussion_id, 0).await;
    let mut seen_b = Vec::new();
    while deltas(&seen_b) < 10 {
        seen_b.push(Timed {
            event: next_event(&mut on_b).await,
            at: Instant::now(),
        });
    }
    a.kill();
    seen_b.extend(collect(on_b, LIMIT).await);
    assert_eq!(
        last_status(&seen_b),
        v1::DiscussionStatus::Interrupted as i32,
        "B's watcher sees the run end"
    );
}
