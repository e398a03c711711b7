//! A run killed with the server process is INTERRUPTED after a restart and
//! can be continued. Uses the real `moai-server` binary.

use std::time::Duration;

use moai_proto::v1::{self, discussion_event::Payload};
use moai_tests::events::collect;
use moai_tests::fake_llm::{FakeLlm, Script};
use moai_tests::process::{ProcessOptions, ServerProcess, free_port, server_binary};
use moai_tests::server::ALICE_KEY;

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
