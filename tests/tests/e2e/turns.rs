//! Discussions in turns: rounds, next, stop, mentions, summary, export, trimming.

use std::time::{Duration, Instant};

use moai_proto::v1::{self, discussion_event::Payload};
use moai_tests::events::collect;
use moai_tests::fake_llm::Script;
use moai_tests::server::{Backend, TestOptions, TestServer};
use tonic::Code;

use crate::on_both_backends;
use crate::support::*;

async fn start(ts: &TestServer, req: v1::StartDiscussionRequest) -> Vec<moai_tests::events::Timed> {
    let stream = ts
        .discussions()
        .await
        .start_discussion(req)
        .await
        .expect("start")
        .into_inner();
    collect(stream, LIMIT).await
}

fn script_three(ts: &TestServer) {
    ts.llm
        .script("a/one", Script::new().text("Alpha thinks tabs."));
    ts.llm
        .script("b/two", Script::new().text("Beta prefers spaces."));
    ts.llm
        .script("c/three", Script::new().text("Gamma says it depends."));
}

async fn models_speak_in_order_and_each_hears_everything_before(backend: Backend) {
    let ts = TestServer::spawn_on(backend).await;
    script_three(&ts);
    let p = project(&ts, "Indentation", &["a/one", "b/two", "c/three"]).await;
    let events = start(
        &ts,
        v1::StartDiscussionRequest {
            project_id: p.id.clone(),
            topic: "Tabs or spaces?".into(),
            rounds: 2,
            ..Default::default()
        },
    )
    .await;
    let order: Vec<String> = completed(&events).into_iter().map(|(m, _)| m).collect();
    assert_eq!(
        order,
        ["a/one", "b/two", "c/three", "a/one", "b/two", "c/three"]
    );
    assert_eq!(last_status(&events), v1::DiscussionStatus::Idle as i32);

    let c = ts.llm.requests_for("c/three");
    let c_round1 = &c[0].messages.last().expect("user").content;
    assert!(c_round1.contains("Tabs or spaces?"));
    assert!(
        c_round1.contains("[a/one]\nAlpha thinks tabs."),
        "{c_round1}"
    );
    assert!(
        c_round1.contains("[b/two]\nBeta prefers spaces."),
        "{c_round1}"
    );
    let a = ts.llm.requests_for("a/one");
    assert_eq!(a.len(), 2);
    let a_round2 = &a[1].messages.last().expect("user").content;
    assert!(
        a_round2.contains("[c/three]\nGamma says it depends."),
        "{a_round2}"
    );
    assert!(
        a_round2.contains("[a/one (you)]\nAlpha thinks tabs."),
        "its own turn is labelled too"
    );
    let a_round1 = &a[0].messages.last().expect("user").content;
    assert!(
        !a_round1.contains("Beta prefers spaces."),
        "the first speaker has heard nobody yet"
    );

    let d = get(&ts, &discussion_id(&events)).await;
    assert_eq!(d.kind, v1::DiscussionKind::Sequential as i32);
    assert_eq!(d.rounds.len(), 2);
    assert!(
        d.rounds
            .iter()
            .all(|r| r.mode == v1::RoundMode::Sequential as i32)
    );
}
on_both_backends!(
    turn_order,
    models_speak_in_order_and_each_hears_everything_before
);

/// A client that acts the moment it sees IDLE must find the discussion idle
/// and be allowed the next run, however close behind the last event it comes.
async fn a_client_may_act_the_moment_it_sees_idle(backend: Backend) {
    let ts = TestServer::spawn_on(backend).await;
    ts.llm.script("a/one", Script::new().text("Quick."));
    let p = project(&ts, "Back to back", &["a/one"]).await;
    let id = discussion_id(&open(&ts, &p.id, "Go?").await);
    for turn in 0..40 {
        let d = get(&ts, &id).await;
        assert_eq!(d.status, v1::DiscussionStatus::Idle as i32, "turn {turn}");
        let events = next_round(&ts, &id)
            .await
            .unwrap_or_else(|e| panic!("turn {turn} refused: {e}"));
        assert_eq!(last_status(&events), v1::DiscussionStatus::Idle as i32);
    }
}
on_both_backends!(back_to_back, a_client_may_act_the_moment_it_sees_idle);

#[tokio::test]
async fn discuss_after_open_continues_the_same_conversation() {
    let ts = TestServer::spawn().await;
    script_three(&ts);
    let p = project(&ts, "Continue", &["a/one", "b/two", "c/three"]).await;
    let opened = open(&ts, &p.id, "Tabs or spaces?").await;
    let id = discussion_id(&opened);
    let events = start(
        &ts,
        v1::StartDiscussionRequest {
            discussion_id: id.clone(),
            rounds: 1,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(discussion_id(&events), id);
    assert_eq!(completed(&events).len(), 3);
    let a = ts.llm.requests_for("a/one");
    let sequential = &a[1].messages.last().expect("user").content;
    for answer in [
        "Alpha thinks tabs.",
        "Beta prefers spaces.",
        "Gamma says it depends.",
    ] {
        assert!(
            sequential.contains(answer),
            "the open round's answers are context: {sequential}"
        );
    }
    let d = get(&ts, &id).await;
    let modes: Vec<i32> = d.rounds.iter().map(|r| r.mode).collect();
    assert_eq!(
        modes,
        [
            v1::RoundMode::Parallel as i32,
            v1::RoundMode::Sequential as i32
        ]
    );

    let next = next_round(&ts, &id).await.expect("next");
    assert_eq!(completed(&next).len(), 3);
    assert_eq!(get(&ts, &id).await.rounds.len(), 3);
}

async fn stop_cancels_promptly_keeps_partial_text_and_refuses_more_rounds(backend: Backend) {
    let ts = TestServer::spawn_on(backend).await;
    ts.llm.script(
        "slow/talker",
        Script::new()
            .text(moai_tests::fake_llm::text_of_tokens(200))
            .token_pace(Duration::from_millis(100)),
    );
    let p = project(&ts, "Stoppable", &["slow/talker"]).await;
    let mut stream = ts
        .discussions()
        .await
        .start_discussion(v1::StartDiscussionRequest {
            project_id: p.id.clone(),
            topic: "Go on".into(),
            rounds: 3,
            ..Default::default()
        })
        .await
        .expect("start")
        .into_inner();
    let mut id = String::new();
    let mut deltas = 0;
    while deltas < 3 {
        let e = next_event(&mut stream).await;
        id = e.discussion_id.clone();
        if matches!(e.payload, Some(Payload::MessageDelta(_))) {
            deltas += 1;
        }
    }
    let asked = Instant::now();
    let stopped = ts
        .discussions()
        .await
        .stop_discussion(v1::StopDiscussionRequest {
            discussion_id: id.clone(),
        })
        .await
        .expect("stop")
        .into_inner()
        .discussion
        .expect("discussion");
    eprintln!("stop returned after {:?}", asked.elapsed());
    assert_eq!(stopped.status, v1::DiscussionStatus::Stopped as i32);
    // The whole answer takes 20 s: a stop that waited for it would find the
    // upstream request finished, not dropped.
    assert!(
        ts.llm
            .wait_dropped("slow/talker", Duration::from_secs(10))
            .await,
        "the upstream request was dropped mid-answer"
    );

    let rest = collect(stream, LIMIT).await;
    assert_eq!(
        last_status(&rest),
        v1::DiscussionStatus::Stopped as i32,
        "the subscriber's stream ends cleanly"
    );

    let messages = all_messages(&get(&ts, &id).await);
    assert_eq!(messages.len(), 1, "no further turns after the stop");
    assert_eq!(messages[0].status, v1::MessageStatus::Interrupted as i32);
    assert!(!messages[0].content.is_empty(), "partial text kept");
    assert!(
        messages[0].content.len() < moai_tests::fake_llm::text_of_tokens(200).len(),
        "the stop cut the answer short"
    );

    let err = next_round(&ts, &id)
        .await
        .expect_err("stopped discussions take no more rounds");
    assert_eq!(err.code(), Code::FailedPrecondition);
}
on_both_backends!(
    stop,
    stop_cancels_promptly_keeps_partial_text_and_refuses_more_rounds
);

#[tokio::test]
async fn a_second_run_while_one_is_running_is_refused() {
    let ts = TestServer::spawn().await;
    ts.llm.script(
        "slow/one",
        Script::new().first_token_delay(Duration::from_millis(700)),
    );
    let p = project(&ts, "Busy", &["slow/one"]).await;
    let mut stream = open_stream(&ts, &p.id, "Q").await;
    let first = next_event(&mut stream).await;
    let err = ts
        .discussions()
        .await
        .next_round(v1::NextRoundRequest {
            discussion_id: first.discussion_id.clone(),
        })
        .await
        .expect_err("busy");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = ts
        .discussions()
        .await
        .mention(v1::MentionRequest {
            discussion_id: first.discussion_id,
            model: "slow/one".into(),
            content: "hi".into(),
            ..Default::default()
        })
        .await
        .expect_err("busy");
    assert_eq!(err.code(), Code::FailedPrecondition);
}

async fn a_mention_calls_only_that_model_with_the_context_and_the_users_words(backend: Backend) {
    let ts = TestServer::spawn_on(backend).await;
    script_three(&ts);
    let p = project(&ts, "Mentions", &["a/one", "b/two", "c/three"]).await;
    let id = discussion_id(&open(&ts, &p.id, "Tabs or spaces?").await);
    let before = ts.llm.requests().len();
    let stream = ts
        .discussions()
        .await
        .mention(v1::MentionRequest {
            discussion_id: id.clone(),
            model: "@b/two".into(),
            content: "Why spaces, really?".into(),
            ..Default::default()
        })
        .await
        .expect("mention")
        .into_inner();
    let events = collect(stream, LIMIT).await;
    let after = ts.llm.requests();
    assert_eq!(after.len(), before + 1, "one call");
    let call = after.last().expect("call");
    assert_eq!(call.model, "b/two");
    let user = &call.messages.last().expect("user").content;
    assert!(user.contains("Why spaces, really?"));
    assert!(
        user.contains("Alpha thinks tabs."),
        "the discussion is the context"
    );
    assert_eq!(
        completed(&events),
        [("b/two".to_owned(), "Beta prefers spaces.".to_owned())]
    );

    let d = get(&ts, &id).await;
    let mention = d.rounds.last().expect("round");
    assert_eq!(mention.mode, v1::RoundMode::Mention as i32);
    assert_eq!(mention.messages[0].role, v1::MessageRole::User as i32);
    assert_eq!(mention.messages[0].content, "Why spaces, really?");
    assert_eq!(mention.messages[1].model, "b/two");

    for model in ["z/unknown", "not a model"] {
        let err = ts
            .discussions()
            .await
            .mention(v1::MentionRequest {
                discussion_id: id.clone(),
                model: model.into(),
                content: "hi".into(),
                ..Default::default()
            })
            .await
            .expect_err("unknown model");
        assert_eq!(err.code(), Code::InvalidArgument, "{model}");
    }
}
on_both_backends!(
    mention,
    a_mention_calls_only_that_model_with_the_context_and_the_users_words
);

async fn a_mention_keeps_the_name_of_who_said_it(backend: Backend) {
    let ts = TestServer::spawn_on(backend).await;
    script_three(&ts);
    let p = project(&ts, "Names", &["a/one", "b/two", "c/three"]).await;
    let id = discussion_id(&open(&ts, &p.id, "Tabs or spaces?").await);
    let stream = ts
        .discussions()
        .await
        .mention(v1::MentionRequest {
            discussion_id: id.clone(),
            model: "b/two".into(),
            content: "Why spaces?".into(),
            author_name: "  Ada Lovelace ".into(),
        })
        .await
        .expect("mention")
        .into_inner();
    let events = collect(stream, LIMIT).await;
    let announced = events
        .iter()
        .find_map(|t| match &t.event.payload {
            Some(v1::discussion_event::Payload::MessageCompleted(c)) => c
                .message
                .as_ref()
                .filter(|m| m.role == v1::MessageRole::User as i32),
            _ => None,
        })
        .expect("the user's message is announced");
    assert_eq!(announced.author_name, "Ada Lovelace");

    let d = get(&ts, &id).await;
    let mention = d.rounds.last().expect("round");
    assert_eq!(mention.messages[0].author_name, "Ada Lovelace", "stored");
    assert_eq!(mention.messages[1].author_name, "", "models have none");

    let err = ts
        .discussions()
        .await
        .mention(v1::MentionRequest {
            discussion_id: id,
            model: "b/two".into(),
            content: "hi".into(),
            author_name: "x".repeat(513),
        })
        .await
        .expect_err("a name past 512 bytes");
    assert_eq!(err.code(), Code::InvalidArgument);
}
on_both_backends!(mention_author, a_mention_keeps_the_name_of_who_said_it);

async fn summary_and_export_cover_everyone_and_survive_hostile_markdown(backend: Backend) {
    let ts = TestServer::spawn_on(backend).await;
    let hostile = "# Heading from a model\n\nSee `code` and <script>alert('x')</script> & more.\n\n```rust\nfn main() {}\n```\n\n```\nunclosed fence";
    ts.llm.script("a/one", Script::new().text(hostile));
    ts.llm
        .script("b/two", Script::new().text("Beta's plain answer."));
    ts.llm.script(
        "s/judge",
        Script::new().text("## Agreements\nBoth answered."),
    );
    let p = project(&ts, "Export me", &["a/one", "b/two"]).await;
    let id = discussion_id(&open(&ts, &p.id, "Be hostile?").await);
    let stream = ts
        .discussions()
        .await
        .summarize_discussion(v1::SummarizeDiscussionRequest {
            discussion_id: id.clone(),
            model: "s/judge".into(),
        })
        .await
        .expect("summarize")
        .into_inner();
    let events = collect(stream, LIMIT).await;
    assert_eq!(
        completed(&events),
        [(
            "s/judge".to_owned(),
            "## Agreements\nBoth answered.".to_owned()
        )]
    );
    let judge = ts.llm.requests_for("s/judge");
    let prompt = &judge[0].messages.last().expect("user").content;
    assert!(prompt.contains("Beta's plain answer.") && prompt.contains("Heading from a model"));
    assert!(prompt.contains("Disagreements") && prompt.contains("Open questions"));
    let d = get(&ts, &id).await;
    let summary = d.rounds.last().expect("summary round");
    assert_eq!(summary.mode, v1::RoundMode::Summary as i32);
    assert_eq!(summary.messages[0].role, v1::MessageRole::Summary as i32);

    let md = ts
        .discussions()
        .await
        .export_discussion(v1::ExportDiscussionRequest {
            discussion_id: id.clone(),
            format: 0,
        })
        .await
        .expect("export")
        .into_inner();
    assert_eq!(md.media_type, "text/markdown");
    assert!(md.file_name.ends_with(".md") && md.file_name.starts_with("export-me-"));
    let doc = md.content;
    for needle in [
        "a/one",
        "b/two",
        "s/judge",
        "Beta's plain answer.",
        "Heading from a model",
        "Export me",
        "Be hostile?",
    ] {
        assert!(doc.contains(needle), "export has {needle}");
    }
    assert!(!doc.contains("<script>"), "raw HTML is neutralised");
    let fences = doc
        .lines()
        .filter(|l| l.trim_start().starts_with("```"))
        .count();
    assert_eq!(fences % 2, 0, "every code fence is closed");
    assert!(
        doc.lines().any(|l| l == "#### Heading from a model"),
        "model headings sit below ours"
    );
    assert!(doc.contains("## Totals"));

    let json = ts
        .discussions()
        .await
        .export_discussion(v1::ExportDiscussionRequest {
            discussion_id: id,
            format: v1::ExportFormat::Json as i32,
        })
        .await
        .expect("export json")
        .into_inner();
    assert_eq!(json.media_type, "application/json");
    let value: serde_json::Value = serde_json::from_str(&json.content).expect("valid JSON");
    assert_eq!(value["rounds"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        value["rounds"][0]["messages"][1]["content"],
        "Beta's plain answer."
    );
}
on_both_backends!(
    summary_export,
    summary_and_export_cover_everyone_and_survive_hostile_markdown
);

#[tokio::test]
async fn the_oldest_rounds_are_trimmed_to_the_budget_and_the_question_kept() {
    let ts = TestServer::spawn_with(TestOptions {
        llm: Box::new(|l| {
            // Room for the reserve and about one round of two ~500-token answers.
            l.context_tokens.insert("a/one".into(), 1_500 + 1_300);
        }),
        ..Default::default()
    })
    .await;
    let long = |who: &str| format!("{who} {}", "word ".repeat(400));
    ts.llm.script("a/one", Script::new().text(long("alpha")));
    ts.llm.script("b/two", Script::new().text(long("beta")));
    let p = project(&ts, "Budget", &["a/one", "b/two"]).await;
    start(
        &ts,
        v1::StartDiscussionRequest {
            project_id: p.id,
            topic: "The question to keep".into(),
            rounds: 3,
            ..Default::default()
        },
    )
    .await;
    let a = ts.llm.requests_for("a/one");
    assert_eq!(a.len(), 3);
    let third = &a[2].messages.last().expect("user").content;
    assert!(third.contains("The question to keep"));
    assert!(
        !third.contains("=== Round 1"),
        "the oldest round was dropped"
    );
    assert!(third.contains("=== Round 2"), "the latest round is kept");
    assert!(
        third.contains("omitted"),
        "the prompt says turns were omitted"
    );
    let b = ts.llm.requests_for("b/two");
    let b_third = &b[2].messages.last().expect("user").content;
    assert!(
        b_third.contains("=== Round 1"),
        "models with the default budget see everything"
    );
}

#[tokio::test]
async fn deleting_a_project_mid_run_stops_the_run_first() {
    let ts = TestServer::spawn().await;
    ts.llm.script(
        "slow/talker",
        Script::new()
            .text(moai_tests::fake_llm::text_of_tokens(200))
            .token_pace(Duration::from_millis(50)),
    );
    let p = project(&ts, "Doomed", &["slow/talker"]).await;
    let mut stream = open_stream(&ts, &p.id, "Q").await;
    loop {
        let e = next_event(&mut stream).await;
        if matches!(e.payload, Some(Payload::MessageDelta(_))) {
            break;
        }
    }
    let asked = Instant::now();
    ts.projects()
        .await
        .delete_project(v1::DeleteProjectRequest {
            project_id: p.id.clone(),
        })
        .await
        .expect("delete while running");
    eprintln!("delete returned after {:?}", asked.elapsed());
    // The answer takes 10 s: a delete that waited for it would end the run
    // completed, with the upstream request finished rather than dropped.
    let rest = collect(stream, LIMIT).await;
    assert_eq!(last_status(&rest), v1::DiscussionStatus::Stopped as i32);
    assert!(
        ts.llm
            .wait_dropped("slow/talker", Duration::from_secs(5))
            .await,
        "the upstream request was dropped mid-answer"
    );
    let err = ts
        .projects()
        .await
        .get_project(v1::GetProjectRequest { project_id: p.id })
        .await
        .expect_err("gone");
    assert_eq!(err.code(), Code::NotFound);
}
