//! A run killed with the server process is INTERRUPTED after a restart and
//! can be continued. Uses the real `moai-server` binary.

use std::time::Duration;

use moai_proto::v1::{self, discussion_event::Payload};
use moai_tests::events::collect;
use moai_tests::fake_llm::{FakeLlm, Script};
use moai_tests::process::{ProcessOptions, ServerProcess, free_port, server_binary};
use moai_tests::server::{ALICE_KEY, Backend, fresh_postgres_database};

use crate::support::{LIMIT, all_messages, completed, last_status, next_event};

fn start(data_dir: &std::path::Path, port: u16, llm: &FakeLlm) -> ServerProcess {
    ServerProcess::start(ProcessOptions {
        binary: server_binary(),
        data_dir,
        port,
        api_keys: format!("alice:{ALICE_KEY}"),
        llm_base_url: llm.base_url(),
        database_url: None,
        config: None,
    })
}

#[tokio::test]
async fn a_run_killed_with_the_server_is_interrupted_after_restart_and_continues() {
    let llm = FakeLlm::start().await;
    llm.script(
        "slow/one",
        Script::new()
            .text(FakeLlm::text_of_tokens(300))
            .token_pace(Duration::from_millis(50)),
    );
    llm.script("fast/two", Script::new().text("Fast answer."));
    let data = tempfile::tempdir().expect("data dir");
    let port = free_port();
    let mut server = start(data.path(), port, &llm);
    let channel = server.auth_channel(ALICE_KEY).await;
    let project = v1::project_service_client::ProjectServiceClient::new(channel.clone())
        .create_project(v1::CreateProjectRequest {
            name: "Crashy".into(),
            models: vec!["slow/one".into(), "fast/two".into()],
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner()
        .project
        .expect("project");
    let mut stream = v1::discussion_service_client::DiscussionServiceClient::new(channel)
        .open_discussion(v1::OpenDiscussionRequest {
            project_id: project.id.clone(),
            question: "Crash?".into(),
        })
        .await
        .expect("open")
        .into_inner();
    let mut id = String::new();
    let mut deltas = 0;
    while deltas < 40 {
        let e = next_event(&mut stream).await;
        id = e.discussion_id.clone();
        if matches!(&e.payload, Some(Payload::MessageDelta(d)) if d.model == "slow/one") {
            deltas += 1;
        }
    }
    // More than a flush interval of streaming has passed: kill -9.
    server.kill();
    drop(stream);

    let server = start(data.path(), port, &llm);
    let mut discussions = v1::discussion_service_client::DiscussionServiceClient::new(
        server.auth_channel(ALICE_KEY).await,
    );
    let d = discussions
        .get_discussion(v1::GetDiscussionRequest {
            discussion_id: id.clone(),
        })
        .await
        .expect("get after restart")
        .into_inner()
        .discussion
        .expect("discussion");
    assert_eq!(d.status, v1::DiscussionStatus::Interrupted as i32);
    let messages = all_messages(&d);
    let slow = messages
        .iter()
        .find(|m| m.model == "slow/one")
        .expect("slow message");
    assert_eq!(slow.status, v1::MessageStatus::Interrupted as i32);
    assert!(!slow.content.is_empty(), "the text it had is kept");
    let fast = messages
        .iter()
        .find(|m| m.model == "fast/two")
        .expect("fast message");
    assert_eq!(fast.status, v1::MessageStatus::Complete as i32);

    llm.script("slow/one", Script::new().text("Back again."));
    let next = discussions
        .next_round(v1::NextRoundRequest {
            discussion_id: id.clone(),
        })
        .await
        .expect("NextRound continues an interrupted discussion")
        .into_inner();
    let events = collect(next, LIMIT).await;
    assert!(
        events.first().is_some_and(|t| t.event.seq > d.last_seq),
        "seq keeps increasing across the crash"
    );
    assert_eq!(completed(&events).len(), 2);
    assert_eq!(last_status(&events), v1::DiscussionStatus::Idle as i32);
}

/// The real binary on `backend`'s database (SQLite in `data_dir`, or the
/// fresh PostgreSQL database `url`), with a short lease on PostgreSQL so a
/// restarted server's sweep takes the dead run soon.
fn start_on(
    data_dir: &std::path::Path,
    port: u16,
    llm: &FakeLlm,
    url: Option<&str>,
) -> ServerProcess {
    ServerProcess::start(ProcessOptions {
        binary: server_binary(),
        data_dir,
        port,
        api_keys: format!("alice:{ALICE_KEY}"),
        llm_base_url: llm.base_url(),
        database_url: url.map(str::to_owned),
        config: url.map(|_| "[limits]\nrun_lease_secs = 1\n".to_owned()),
    })
}

/// Kills the server ~300 ms into the second model's answer, well before its
/// first flush: the answer must still be there after a restart.
async fn an_answer_killed_300ms_in_is_kept_as_interrupted(backend: Backend) {
    let llm = FakeLlm::start().await;
    let slow_text = FakeLlm::text_of_tokens(300);
    llm.script("fast/one", Script::new().text("Fast answer."));
    llm.script(
        "slow/two",
        Script::new()
            .text(slow_text.clone())
            .token_pace(Duration::from_millis(50)),
    );
    let data = tempfile::tempdir().expect("data dir");
    let url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(fresh_postgres_database().await),
    };
    let port = free_port();
    let mut server = start_on(data.path(), port, &llm, url.as_deref());
    let channel = server.auth_channel(ALICE_KEY).await;
    let project = v1::project_service_client::ProjectServiceClient::new(channel.clone())
        .create_project(v1::CreateProjectRequest {
            name: "Killed".into(),
            models: vec!["fast/one".into(), "slow/two".into()],
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner()
        .project
        .expect("project");
    let mut stream = v1::discussion_service_client::DiscussionServiceClient::new(channel)
        .open_discussion(v1::OpenDiscussionRequest {
            project_id: project.id.clone(),
            question: "Crash early?".into(),
        })
        .await
        .expect("open")
        .into_inner();
    // The fast answer's message_completed comes only once it is committed,
    // and both answers' rows were queued before it.
    let id = loop {
        let e = next_event(&mut stream).await;
        if matches!(&e.payload, Some(Payload::MessageCompleted(c))
            if c.message.as_ref().is_some_and(|m| m.model == "fast/one"))
        {
            break e.discussion_id;
        }
    };
    // The role frame and six tokens at 50 ms: ~300 ms into the slow answer.
    assert!(
        llm.wait_frames_sent("slow/two", 7, LIMIT).await,
        "the slow answer never got going"
    );
    server.kill();
    drop(stream);

    let server = start_on(data.path(), port, &llm, url.as_deref());
    let mut discussions = v1::discussion_service_client::DiscussionServiceClient::new(
        server.auth_channel(ALICE_KEY).await,
    );
    // SQLite recovers at start; on PostgreSQL the sweep takes the lapsed lease.
    let deadline = tokio::time::Instant::now() + LIMIT;
    let d = loop {
        let d = discussions
            .get_discussion(v1::GetDiscussionRequest {
                discussion_id: id.clone(),
            })
            .await
            .expect("get after restart")
            .into_inner()
            .discussion
            .expect("discussion");
        if d.status != v1::DiscussionStatus::Running as i32 {
            break d;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still RUNNING after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(d.status, v1::DiscussionStatus::Interrupted as i32);
    let messages = all_messages(&d);
    let fast = messages
        .iter()
        .find(|m| m.model == "fast/one")
        .expect("fast message");
    assert_eq!(fast.status, v1::MessageStatus::Complete as i32);
    assert_eq!(fast.content, "Fast answer.");
    let slow = messages
        .iter()
        .find(|m| m.model == "slow/two")
        .expect("the killed answer is in the store");
    assert_eq!(slow.status, v1::MessageStatus::Interrupted as i32);
    assert!(
        slow_text.starts_with(&slow.content),
        "what was kept is the start of the answer: {:?}",
        slow.content
    );

    llm.script("slow/two", Script::new().text("Back again."));
    let next = discussions
        .next_round(v1::NextRoundRequest {
            discussion_id: id.clone(),
        })
        .await
        .expect("NextRound continues the discussion")
        .into_inner();
    let events = collect(next, LIMIT).await;
    assert!(
        events.first().is_some_and(|t| t.event.seq > d.last_seq),
        "seq keeps increasing across the crash"
    );
    assert_eq!(completed(&events).len(), 2);
    assert_eq!(last_status(&events), v1::DiscussionStatus::Idle as i32);
}

crate::on_both_backends!(
    an_answer_killed_300ms_in,
    an_answer_killed_300ms_in_is_kept_as_interrupted
);
