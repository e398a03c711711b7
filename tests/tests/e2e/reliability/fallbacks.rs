//! Fallbacks per seat: who answers when a seat's model fails before its
//! first token, what the message records, and what input is refused.

use moai_proto::v1::{self, discussion_event::Payload};
use moai_tests::events::payloads;
use moai_tests::fake_llm::Script;
use moai_tests::server::{Backend, TestServer};
use tonic::Code;

use super::{fallback_map, project_with_fallbacks};
use crate::on_both_backends;
use crate::support::*;

async fn a_failing_seat_is_answered_by_its_fallback(backend: Backend) {
    let ts = TestServer::spawn_on(backend).await;
    ts.llm.script("v/main", Script::new().fail(500));
    ts.llm.script("v/first", Script::new().fail(402));
    ts.llm
        .script("v/backup", Script::new().text("Backup here."));
    let p = project_with_fallbacks(
        &ts,
        "fallbacks",
        &["v/main", "v/other"],
        &[("v/main", &["v/first", "v/backup"])],
    )
    .await
    .expect("create")
    .project
    .expect("project");
    assert_eq!(p.fallbacks["v/main"].models, ["v/first", "v/backup"]);

    let events = open(&ts, &p.id, "Who answers?").await;

    assert!(failed(&events).is_empty(), "{:?}", failed(&events));
    let switches: Vec<&v1::MessageFallback> = payloads(&events)
        .into_iter()
        .filter_map(|p| match p {
            Payload::MessageFallback(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(switches.len(), 2);
    assert_eq!(switches[0].answered_by, "v/first");
    assert_eq!(switches[0].reason, v1::FailureReason::UpstreamError as i32);
    assert_eq!(switches[1].answered_by, "v/backup");
    assert_eq!(switches[1].reason, v1::FailureReason::OutOfCredits as i32);
    let d = get(&ts, &discussion_id(&events)).await;
    let messages = all_messages(&d);
    let main = messages.iter().find(|m| m.model == "v/main").expect("seat");
    assert_eq!(main.content, "Backup here.");
    assert_eq!(main.answered_by, "v/backup");
    assert_eq!(main.status, v1::MessageStatus::Complete as i32);
    let other = messages
        .iter()
        .find(|m| m.model == "v/other")
        .expect("other");
    assert_eq!(other.answered_by, "", "a seat that answered itself");
    // The fallback got the seat's context: the same question.
    let asked = ts.llm.requests_for("v/backup");
    let last_user = |r: &moai_tests::fake_llm::RecordedRequest| {
        r.messages
            .last()
            .map(|m| m.content.clone())
            .unwrap_or_default()
    };
    assert_eq!(asked.len(), 1);
    assert_eq!(
        last_user(&asked[0]),
        last_user(&ts.llm.requests_for("v/main")[0])
    );
}
on_both_backends!(fallback_answers, a_failing_seat_is_answered_by_its_fallback);

#[tokio::test]
async fn a_fallback_is_not_used_after_the_first_token() {
    let ts = TestServer::spawn().await;
    ts.llm.script(
        "v/cut",
        Script::new().text("one two three four five").cut_after(2),
    );
    let p = project_with_fallbacks(&ts, "no late", &["v/cut"], &[("v/cut", &["v/spare"])])
        .await
        .expect("create")
        .project
        .expect("project");

    let events = open(&ts, &p.id, "Go").await;

    let failures = failed(&events);
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].reason, v1::FailureReason::BrokenStream as i32);
    assert_eq!(failures[0].content, "one two");
    assert_eq!(failures[0].answered_by, "");
    assert!(
        ts.llm.requests_for("v/spare").is_empty(),
        "no fallback after text"
    );
}

/// Seat -> fallbacks, as a test writes them.
type Pairs<'a> = &'a [(&'a str, &'a [&'a str])];

#[tokio::test]
async fn bad_fallbacks_are_refused_naming_what_is_wrong() {
    let ts = TestServer::spawn().await;
    let cases: [(Pairs, &str); 5] = [
        (
            &[("v/none", &["v/b"])],
            "fallbacks for v/none: it is not one of the project's models",
        ),
        (&[("v/a", &["v/a"])], "v/a cannot be its own fallback"),
        (
            &[("v/a", &["v/b", "v/b"])],
            "fallback v/b is listed twice for v/a",
        ),
        (
            &[("v/a", &["v/1", "v/2", "v/3", "v/4"])],
            "v/a has 4 fallbacks; at most 3 are allowed",
        ),
        (
            &[("v/a", &["not an id"])],
            "is not of the form vendor/model",
        ),
    ];
    for (i, (fallbacks, expected)) in cases.into_iter().enumerate() {
        let refused = project_with_fallbacks(&ts, &format!("bad {i}"), &["v/a"], fallbacks)
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(
            refused.message().contains(expected),
            "{}",
            refused.message()
        );
    }
}

async fn fallbacks_are_replaced_and_go_with_their_seat(backend: Backend) {
    let ts = TestServer::spawn_on(backend).await;
    let p = project_with_fallbacks(
        &ts,
        "edits",
        &["v/a", "v/b"],
        &[("v/a", &["v/x"]), ("v/b", &["v/y"])],
    )
    .await
    .expect("create")
    .project
    .expect("project");
    let mut projects = ts.projects().await;

    let replaced = projects
        .update_project(v1::UpdateProjectRequest {
            project_id: p.id.clone(),
            fallbacks: Some(v1::FallbackMap {
                fallbacks: fallback_map(&[("v/a", &["v/z", "v/x"])]),
            }),
            ..Default::default()
        })
        .await
        .expect("replace")
        .into_inner()
        .project
        .expect("project");
    assert_eq!(replaced.fallbacks.len(), 1);
    assert_eq!(replaced.fallbacks["v/a"].models, ["v/z", "v/x"]);

    let removed = projects
        .update_project(v1::UpdateProjectRequest {
            project_id: p.id.clone(),
            remove_models: vec!["v/a".into()],
            ..Default::default()
        })
        .await
        .expect("remove the seat")
        .into_inner()
        .project
        .expect("project");
    assert!(removed.fallbacks.is_empty(), "{:?}", removed.fallbacks);
    let stored = projects
        .get_project(v1::GetProjectRequest {
            project_id: p.id.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .project
        .expect("project");
    assert_eq!(stored.fallbacks, removed.fallbacks);
    assert_eq!(stored.models, ["v/b"]);
}
on_both_backends!(
    fallback_edits,
    fallbacks_are_replaced_and_go_with_their_seat
);
