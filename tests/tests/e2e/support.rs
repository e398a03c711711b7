//! Shared steps of the discussion tests.

use std::time::Duration;

use moai_proto::EventResponse;
use moai_proto::v1::{self, discussion_event::Payload};
use moai_tests::events::{Timed, collect};
use moai_tests::server::TestServer;

pub const LIMIT: Duration = Duration::from_secs(30);

pub async fn project(ts: &TestServer, name: &str, models: &[&str]) -> v1::Project {
    ts.projects()
        .await
        .create_project(v1::CreateProjectRequest {
            name: name.into(),
            models: models.iter().map(|m| (*m).to_owned()).collect(),
            ..Default::default()
        })
        .await
        .expect("create project")
        .into_inner()
        .project
        .expect("project")
}

pub async fn open(ts: &TestServer, project_id: &str, question: &str) -> Vec<Timed> {
    let stream = ts
        .discussions()
        .await
        .open_discussion(v1::OpenDiscussionRequest {
            project_id: project_id.into(),
            question: question.into(),
        })
        .await
        .expect("open discussion")
        .into_inner();
    collect(stream, LIMIT).await
}

/// NextRound on `id`, read to its end; the refusal if it was refused.
pub async fn next_round(ts: &TestServer, id: &str) -> Result<Vec<Timed>, tonic::Status> {
    let stream = ts
        .discussions()
        .await
        .next_round(v1::NextRoundRequest {
            discussion_id: id.into(),
        })
        .await?
        .into_inner();
    Ok(collect(stream, LIMIT).await)
}

/// `WatchDiscussion` from `after_seq`, read to its end.
pub async fn watch(ts: &TestServer, id: &str, after_seq: u64) -> Vec<Timed> {
    let stream = ts
        .discussions()
        .await
        .watch_discussion(v1::WatchDiscussionRequest {
            discussion_id: id.into(),
            after_seq,
        })
        .await
        .expect("watch")
        .into_inner();
    collect(stream, LIMIT).await
}

pub async fn get(ts: &TestServer, id: &str) -> v1::Discussion {
    ts.discussions()
        .await
        .get_discussion(v1::GetDiscussionRequest {
            discussion_id: id.into(),
        })
        .await
        .expect("get discussion")
        .into_inner()
        .discussion
        .expect("discussion")
}

pub fn discussion_id(events: &[Timed]) -> String {
    events
        .first()
        .expect("at least one event")
        .event
        .discussion_id
        .clone()
}

/// (model, content) of every completed model message, in event order.
pub fn completed(events: &[Timed]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|t| match &t.event.payload {
            Some(Payload::MessageCompleted(c)) => c.message.as_ref(),
            _ => None,
        })
        .filter(|m| m.role != v1::MessageRole::User as i32)
        .map(|m| (m.model.clone(), m.content.clone()))
        .collect()
}

pub fn failed(events: &[Timed]) -> Vec<v1::MessageFailed> {
    events
        .iter()
        .filter_map(|t| match &t.event.payload {
            Some(Payload::MessageFailed(f)) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

pub fn last_status(events: &[Timed]) -> i32 {
    events
        .iter()
        .rev()
        .find_map(|t| match &t.event.payload {
            Some(Payload::StatusChanged(s)) => Some(s.status),
            _ => None,
        })
        .expect("a status_changed event")
}

/// Polls until the discussion is no longer RUNNING.
pub async fn wait_idle(ts: &TestServer, id: &str) -> v1::Discussion {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let d = get(ts, id).await;
        if d.status != v1::DiscussionStatus::Running as i32 {
            return d;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "discussion still running after {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn all_messages(d: &v1::Discussion) -> Vec<v1::Message> {
    d.rounds.iter().flat_map(|r| r.messages.clone()).collect()
}

/// Runs a scenario on SQLite and on PostgreSQL; the PostgreSQL variant is
/// listed as ignored when `MOAI_TEST_POSTGRES_URL` was not set at compile
/// time (see `tests/build.rs`).
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $scenario:ident) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                $scenario(moai_tests::server::Backend::Sqlite).await;
            }

            #[tokio::test]
            #[cfg_attr(moai_no_postgres, ignore = "MOAI_TEST_POSTGRES_URL was not set when the tests were compiled (.ci/run sets it)")]
            async fn postgres() {
                $scenario(moai_tests::server::Backend::Postgres).await;
            }
        }
    };
}

/// The next event of a stream that must still be going.
pub async fn next_event<R: EventResponse>(stream: &mut tonic::Streaming<R>) -> v1::DiscussionEvent {
    use futures::StreamExt as _;
    stream
        .next()
        .await
        .expect("an event")
        .expect("a healthy stream")
        .into_event()
        .expect("an event payload")
}

/// Starts an open round and hands back its stream unread.
pub async fn open_stream(
    ts: &TestServer,
    project_id: &str,
    question: &str,
) -> tonic::Streaming<v1::OpenDiscussionResponse> {
    ts.discussions()
        .await
        .open_discussion(v1::OpenDiscussionRequest {
            project_id: project_id.into(),
            question: question.into(),
        })
        .await
        .expect("open discussion")
        .into_inner()
}
