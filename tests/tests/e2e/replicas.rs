//! Scale-out on PostgreSQL: replicas share the store, a client may watch from
//! any replica, a run whose replica died is recovered by another, and a
//! server rides out PostgreSQL dropping its connections.

use std::time::Duration;

use futures::StreamExt as _;
use moai_proto::v1::{self, discussion_event::Payload};
use moai_server::config::Limits;
use moai_tests::events::collect;
use moai_tests::fake_llm::{FakeLlm, Script};
use moai_tests::process::{ProcessOptions, ServerProcess, free_port, server_binary};
use moai_tests::server::{ALICE_KEY, Backend, TestOptions, TestServer};

use crate::support::{
    LIMIT, all_messages, completed, get, last_status, next_event, open_stream, project,
};

#[tokio::test]
#[cfg_attr(
    moai_no_postgres,
    ignore = "MOAI_TEST_POSTGRES_URL was not set when the tests were compiled (.ci/run sets it)"
)]
async fn a_run_on_one_replica_can_be_watched_from_another() {
    let a = TestServer::spawn_on(Backend::Postgres).await;
    let b = TestServer::spawn_with(TestOptions {
        database_url: a.database_url.clone(),
        ..Default::default()
    })
    .await;
    a.llm.script(
        "slow/one",
        Script::new()
            .text("answer from replica A")
            .first_token_delay(Duration::from_millis(800)),
    );
    let p = project(&a, "replicas", &["slow/one"]).await;
    let mut on_a = open_stream(&a, &p.id, "Q").await;
    let first = next_event(&mut on_a).await;

    let on_b = b
        .discussions()
        .await
        .watch_discussion(v1::WatchDiscussionRequest {
            discussion_id: first.discussion_id.clone(),
            after_seq: 0,
        })
        .await
        .expect("watch on B")
        .into_inner();
    let seen_on_b = collect(on_b, LIMIT).await;
    assert!(matches!(
        seen_on_b[0].event.payload,
        Some(Payload::DiscussionStarted(_))
    ));
    assert_eq!(
        completed(&seen_on_b),
        [("slow/one".to_owned(), "answer from replica A".to_owned())]
    );
    assert_eq!(last_status(&seen_on_b), v1::DiscussionStatus::Idle as i32);
    let seqs: Vec<u64> = seen_on_b.iter().map(|t| t.event.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    drop(on_a);
}

#[tokio::test]
#[cfg_attr(
    moai_no_postgres,
    ignore = "MOAI_TEST_POSTGRES_URL was not set when the tests were compiled (.ci/run sets it)"
)]
async fn a_dead_replicas_run_is_interrupted_by_another_and_continued_there() {
    // Replica B (in-process) with a short lease sweep; replica A is the real
    // binary, killed mid-run.
    let b = TestServer::spawn_with(TestOptions {
        backend: Backend::Postgres,
        limits: Limits {
            run_lease_secs: 1,
            ..Limits::default()
        },
        ..Default::default()
    })
    .await;
    let url = b.database_url.clone().expect("postgres url");
    b.llm.script(
        "slow/one",
        Script::new()
            .text(FakeLlm::text_of_tokens(300))
            .token_pace(Duration::from_millis(50)),
    );
    let data = tempfile::tempdir().expect("tmp");
    let mut a = ServerProcess::start(ProcessOptions {
        binary: server_binary(),
        data_dir: data.path(),
        port: free_port(),
        api_keys: format!("alice:{ALICE_KEY}"),
        llm_base_url: b.llm.base_url(),
        database_url: Some(url),
        config: Some("[limits]\nrun_lease_secs = 1\n".into()),
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
    let mut deltas = 0;
    while deltas < 30 {
        if let Some(Payload::MessageDelta(_)) = on_a
            .next()
            .await
            .expect("event")
            .expect("ok")
            .event
            .and_then(|e| e.payload)
        {
            deltas += 1;
        }
    }
    a.kill();

    // B's sweep finds the lapsed lease.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let d = loop {
        let d = get(&b, &first.discussion_id).await;
        if d.status == v1::DiscussionStatus::Interrupted as i32 {
            break d;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never interrupted: {d:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let m = &all_messages(&d)[0];
    assert_eq!(m.status, v1::MessageStatus::Interrupted as i32);
    assert!(!m.content.is_empty());

    b.llm
        .script("slow/one", Script::new().text("continued on B"));
    let next = b
        .discussions()
        .await
        .next_round(v1::NextRoundRequest {
            discussion_id: first.discussion_id,
        })
        .await
        .expect("NextRound on B")
        .into_inner();
    let events = collect(next, LIMIT).await;
    assert_eq!(
        completed(&events),
        [("slow/one".to_owned(), "continued on B".to_owned())]
    );
}

#[tokio::test]
#[cfg_attr(
    moai_no_postgres,
    ignore = "MOAI_TEST_POSTGRES_URL was not set when the tests were compiled (.ci/run sets it)"
)]
async fn a_stop_on_another_replica_stops_the_run_where_it_runs() {
    let short_lease = || Limits {
        run_lease_secs: 1,
        ..Limits::default()
    };
    let a = TestServer::spawn_with(TestOptions {
        backend: Backend::Postgres,
        limits: short_lease(),
        ..Default::default()
    })
    .await;
    let b = TestServer::spawn_with(TestOptions {
        database_url: a.database_url.clone(),
        limits: short_lease(),
        ..Default::default()
    })
    .await;
    a.llm.script(
        "slow/one",
        Script::new()
            .text(FakeLlm::text_of_tokens(400))
            .token_pace(Duration::from_millis(50)),
    );
    let p = project(&a, "stop elsewhere", &["slow/one"]).await;
    let mut on_a = open_stream(&a, &p.id, "Q").await;
    let first = next_event(&mut on_a).await;

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

    // A's lease heartbeat finds the discussion no longer its own and stops.
    assert!(
        a.llm.wait_dropped("slow/one", Duration::from_secs(5)).await,
        "replica A dropped its upstream request"
    );
    let rest = collect(on_a, LIMIT).await;
    assert_eq!(last_status(&rest), v1::DiscussionStatus::Stopped as i32);
    let d = get(&b, &first.discussion_id).await;
    assert_eq!(d.status, v1::DiscussionStatus::Stopped as i32);
    assert_eq!(
        all_messages(&d)[0].status,
        v1::MessageStatus::Interrupted as i32
    );
}

#[tokio::test]
#[cfg_attr(
    moai_no_postgres,
    ignore = "MOAI_TEST_POSTGRES_URL was not set when the tests were compiled (.ci/run sets it)"
)]
async fn discussions_still_store_everything_after_postgres_drops_every_connection() {
    use sqlx::Connection as _;
    let ts = TestServer::spawn_on(Backend::Postgres).await;
    let p = project(&ts, "reconnects", &["a/one", "b/two"]).await;
    let first = crate::support::open(&ts, &p.id, "before").await;
    assert_eq!(completed(&first).len(), 2);

    // What a PostgreSQL restart or failover does to the server's pool,
    // the store writer's own connection included.
    let url = ts.database_url.clone().expect("a PostgreSQL test server");
    let mut admin = sqlx::AnyConnection::connect(&url).await.expect("connect");
    let dropped: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .expect("terminate the server's connections");
    assert!(!dropped.is_empty(), "the server had no connection to drop");
    let _ = admin.close().await;

    let second = crate::support::open(&ts, &p.id, "after").await;
    let id = crate::support::discussion_id(&second);
    assert_eq!(completed(&second).len(), 2);
    assert!(crate::support::failed(&second).is_empty());
    assert_eq!(last_status(&second), v1::DiscussionStatus::Idle as i32);
    // The event log has no gap: a client re-attaching from the start
    // replays every event the live stream carried (deltas are not stored).
    let replayed: Vec<u64> = crate::support::watch(&ts, &id, 0)
        .await
        .iter()
        .map(|t| t.event.seq)
        .collect();
    for t in second
        .iter()
        .filter(|t| !matches!(t.event.payload, Some(Payload::MessageDelta(_))))
    {
        assert!(
            replayed.contains(&t.event.seq),
            "seq {} not stored",
            t.event.seq
        );
    }
    let stored = all_messages(&get(&ts, &id).await);
    let complete = stored
        .iter()
        .filter(|m| m.status == v1::MessageStatus::Complete as i32)
        .count();
    assert_eq!((stored.len(), complete), (2, 2), "{stored:#?}");
}
