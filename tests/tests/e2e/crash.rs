//! A run killed with the server process is INTERRUPTED after a restart and
//! can be continued. Uses the real `moai-server` binary.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt as _;
use moai_proto::v1::{self, discussion_event::Payload};
use moai_tests::events::collect;
use moai_tests::fake_llm::{FakeLlm, Script};
use moai_tests::server::{ALICE_KEY, KeyAuth};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::support::{LIMIT, all_messages, completed, last_status};

fn server_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test exe path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join(format!("moai-server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is built by `cargo test --workspace`",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data_dir: &std::path::Path, port: u16, llm: &FakeLlm) -> Server {
    let child = Command::new(server_binary())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("MOAI_DATA_DIR", data_dir)
        .env("MOAI_LISTEN", format!("127.0.0.1:{port}"))
        .env("MOAI_API_KEYS", format!("alice:{ALICE_KEY}"))
        .env("MOAI_LLM_BASE_URL", llm.base_url())
        .env("MOAI_LLM_API_KEY", "fake-upstream-key")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn moai-server");
    Server(child)
}

async fn connect(port: u16) -> InterceptedService<Channel, KeyAuth> {
    let endpoint = Endpoint::from_shared(format!("http://127.0.0.1:{port}")).expect("url");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(channel) = endpoint.connect().await {
            return InterceptedService::new(channel, KeyAuth::new(ALICE_KEY, None));
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "server did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_run_killed_with_the_server_is_interrupted_after_restart_and_continues() {
    let llm = FakeLlm::start().await;
    llm.script(
        "slow/one",
        Script::new()
            .text(moai_tests::fake_llm::text_of_tokens(300))
            .token_pace(Duration::from_millis(50)),
    );
    llm.script("fast/two", Script::new().text("Fast answer."));
    let data = tempfile::tempdir().expect("data dir");
    let port = free_port();
    let mut server = start(data.path(), port, &llm);
    let channel = connect(port).await;
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
    let mut discussions = v1::discussion_service_client::DiscussionServiceClient::new(channel);
    let mut stream = discussions
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
        let e = stream
            .next()
            .await
            .expect("event")
            .expect("ok")
            .event
            .expect("event");
        id = e.discussion_id.clone();
        if matches!(&e.payload, Some(Payload::MessageDelta(d)) if d.model == "slow/one") {
            deltas += 1;
        }
    }
    // More than a flush interval of streaming has passed: kill -9.
    server.0.kill().expect("kill");
    let _ = server.0.wait();
    drop(stream);
    drop(discussions);

    let _server = start(data.path(), port, &llm);
    let channel = connect(port).await;
    let mut discussions = v1::discussion_service_client::DiscussionServiceClient::new(channel);
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
    let events = collect(next, |r: v1::NextRoundResponse| r.event, LIMIT).await;
    assert!(
        events.first().is_some_and(|t| t.event.seq > d.last_seq),
        "seq keeps increasing across the crash"
    );
    assert_eq!(completed(&events).len(), 2);
    assert_eq!(last_status(&events), v1::DiscussionStatus::Idle as i32);
}
