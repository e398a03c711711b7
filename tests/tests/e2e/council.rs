//! The council: anonymous peer review of a round (ReviewDiscussion) and
//! discussions that stop at consensus (`until_consensus` with a judge).
//! The fake upstream answers by request content: a reviewer's request is
//! the one asking for a `FINAL RANKING`, a judge's the one asking for `CONSENSUS:`.

use std::time::Duration;

use moai_proto::v1::{self, discussion_event::Payload};
use moai_tests::events::{Timed, collect};
use moai_tests::fake_llm::{RecordedRequest, Script};
use moai_tests::server::{Backend, Limits, TestOptions, TestServer};
use tonic::Code;

use crate::on_both_backends;
use crate::support::*;

const MODELS: [&str; 3] = ["a/one", "b/two", "c/three"];
const REVIEW_NEEDLE: &str = "FINAL RANKING";
const JUDGE_NEEDLE: &str = "CONSENSUS:";

async fn server(backend: Backend) -> TestServer {
    TestServer::spawn_with(TestOptions {
        backend,
        limits: Limits {
            review_seed: Some(7),
            ..Limits::default()
        },
        ..Default::default()
    })
    .await
}

/// Three models whose answers say how good they are: a (3) > c (2) > b (1).
fn script_answers(ts: &TestServer) {
    ts.llm
        .script("a/one", Script::new().text("Alpha: use tabs (quality 3)."));
    ts.llm
        .script("b/two", Script::new().text("Beta: use spaces (quality 1)."));
    ts.llm.script(
        "c/three",
        Script::new().text("Gamma: it depends (quality 2)."),
    );
}

/// The labelled answers a review request shows: (label, text), in order.
fn shown(request: &RecordedRequest) -> Vec<(String, String)> {
    let prompt = &request.messages.last().expect("a user message").content;
    prompt
        .split("### ")
        .skip(1)
        .filter_map(|part| {
            let (label, rest) = part.split_once('\n')?;
            let text = rest.trim_start().split("\n\n").next()?.to_owned();
            Some((label.trim().to_owned(), text))
        })
        .collect()
}

/// A reviewer that ranks what it is shown by the quality each answer claims.
fn rank_by_quality(request: &RecordedRequest) -> Script {
    let mut answers: Vec<(String, u32)> = shown(request)
        .into_iter()
        .map(|(label, text)| {
            let quality = text
                .split("quality ")
                .nth(1)
                .and_then(|s| s.chars().next())
                .and_then(|c| c.to_digit(10))
                .unwrap_or(0);
            (label, quality)
        })
        .collect();
    answers.sort_by_key(|a| std::cmp::Reverse(a.1));
    let list: Vec<String> = answers
        .iter()
        .enumerate()
        .map(|(i, (label, _))| format!("{}. {label}", i + 1))
        .collect();
    Script::new().text(format!(
        "Each response has merits; some claim more quality than others.\n\nFINAL RANKING:\n{}",
        list.join("\n")
    ))
}

async fn review_stream(
    ts: &TestServer,
    id: &str,
    round: Option<u32>,
) -> Result<tonic::Streaming<v1::ReviewDiscussionResponse>, tonic::Status> {
    Ok(ts
        .discussions()
        .await
        .review_discussion(v1::ReviewDiscussionRequest {
            discussion_id: id.into(),
            round,
        })
        .await?
        .into_inner())
}

async fn review(
    ts: &TestServer,
    id: &str,
    round: Option<u32>,
) -> Result<Vec<Timed>, tonic::Status> {
    Ok(collect(review_stream(ts, id, round).await?, LIMIT).await)
}

async fn start(ts: &TestServer, req: v1::StartDiscussionRequest) -> Vec<Timed> {
    let stream = ts
        .discussions()
        .await
        .start_discussion(req)
        .await
        .expect("start")
        .into_inner();
    collect(stream, LIMIT).await
}

fn until_consensus(project_id: &str, rounds: u32) -> v1::StartDiscussionRequest {
    v1::StartDiscussionRequest {
        project_id: project_id.into(),
        topic: "Tabs or spaces?".into(),
        rounds,
        until_consensus: true,
        ..Default::default()
    }
}

fn round_completed(events: &[Timed]) -> Vec<v1::RoundCompleted> {
    events
        .iter()
        .filter_map(|t| match &t.event.payload {
            Some(Payload::RoundCompleted(r)) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn review_requests(ts: &TestServer, model: &str) -> Vec<RecordedRequest> {
    ts.llm
        .requests_for(model)
        .into_iter()
        .filter(|r| r.messages.iter().any(|m| m.content.contains(REVIEW_NEEDLE)))
        .collect()
}

fn others(model: &str) -> Vec<String> {
    MODELS
        .iter()
        .filter(|m| **m != model)
        .map(|m| (*m).to_owned())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn board(round: &[v1::RankedModel]) -> Vec<(String, f64, u32, u32)> {
    round
        .iter()
        .map(|r| (r.model.clone(), r.average_rank, r.votes, r.place))
        .collect()
}

async fn every_reviewer_ranks_the_two_others_anonymously(backend: Backend) {
    let ts = server(backend).await;
    script_answers(&ts);
    ts.llm.respond_when(REVIEW_NEEDLE, rank_by_quality);
    let p = project(&ts, "Indentation", &MODELS).await;
    let id = discussion_id(&open(&ts, &p.id, "Tabs or spaces?").await);
    let usage_before = get(&ts, &id).await.usage.expect("usage").completion_tokens;

    let events = review(&ts, &id, None).await.expect("review");

    // Streamed like every run: a REVIEW round of all three, reviewers writing.
    let started = events
        .iter()
        .find_map(|t| match &t.event.payload {
            Some(Payload::RoundStarted(r)) => Some(r.clone()),
            _ => None,
        })
        .expect("round started");
    assert_eq!(started.mode, v1::RoundMode::Review as i32);
    assert_eq!(sorted(started.models.clone()), sorted(others("")));
    let roles: Vec<i32> = events
        .iter()
        .filter_map(|t| match &t.event.payload {
            Some(Payload::MessageStarted(m)) => Some(m.role),
            _ => None,
        })
        .collect();
    assert_eq!(roles, [v1::MessageRole::Reviewer as i32; 3]);
    assert_eq!(last_status(&events), v1::DiscussionStatus::Idle as i32);

    // Each reviewer's request holds the two other answers and no model id.
    for model in MODELS {
        let requests = review_requests(&ts, model);
        assert_eq!(requests.len(), 1, "{model} asked once");
        let prompt: String = requests[0]
            .messages
            .iter()
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let texts: Vec<String> = shown(&requests[0]).into_iter().map(|(_, t)| t).collect();
        assert_eq!(texts.len(), 2, "{model} sees two answers: {prompt}");
        for m in MODELS {
            assert!(
                !prompt.contains(m),
                "{model}'s review prompt names {m}: {prompt}"
            );
        }
        let expected: Vec<&str> = match model {
            "a/one" => vec!["Beta: use spaces", "Gamma: it depends"],
            "b/two" => vec!["Alpha: use tabs", "Gamma: it depends"],
            _ => vec!["Alpha: use tabs", "Beta: use spaces"],
        };
        for text in expected {
            assert!(
                prompt.contains(text),
                "{model} should see {text:?}: {prompt}"
            );
        }
        assert!(
            prompt.contains("FINAL RANKING:"),
            "the llm-council format is asked for"
        );
    }

    // Stored: each ranking names the two others, best first; the label map too.
    let d = get(&ts, &id).await;
    assert_eq!(d.rounds.len(), 2);
    let round = &d.rounds[1];
    assert_eq!(round.mode, v1::RoundMode::Review as i32);
    assert_eq!(round.reviewed_round, 1);
    assert_eq!(round.messages.len(), 3);
    for m in &round.messages {
        assert_eq!(m.role, v1::MessageRole::Reviewer as i32);
        assert_eq!(m.status, v1::MessageStatus::Complete as i32);
        assert!(m.content.contains("FINAL RANKING:"));
        assert_eq!(m.ranking_unparsed, "", "{m:?}");
        assert_eq!(sorted(m.ranking.clone()), others(&m.model), "{m:?}");
        let labelled: Vec<String> = m.labels.iter().map(|l| l.model.clone()).collect();
        assert_eq!(sorted(labelled), others(&m.model));
        let labels: Vec<&str> = m.labels.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, ["Response A", "Response B"]);
        let usage = m.usage.as_ref().expect("usage");
        assert!(
            usage.completion_tokens > 0,
            "a review is a model call with usage"
        );
    }
    let ranking_of = |model: &str| {
        round
            .messages
            .iter()
            .find(|m| m.model == model)
            .map(|m| m.ranking.clone())
            .expect("a review by that model")
    };
    assert_eq!(ranking_of("a/one"), ["c/three", "b/two"]);
    assert_eq!(ranking_of("b/two"), ["a/one", "c/three"]);
    assert_eq!(ranking_of("c/three"), ["a/one", "b/two"]);

    // The aggregate is the mean rank, best first: a (1, 1), c (1, 2), b (2, 2).
    let expected = vec![
        ("a/one".to_owned(), 1.0, 2, 1),
        ("c/three".to_owned(), 1.5, 2, 2),
        ("b/two".to_owned(), 2.0, 2, 3),
    ];
    assert_eq!(board(&round.ranking), expected);
    let done = round_completed(&events);
    assert_eq!(done.len(), 1);
    assert_eq!(board(&done[0].ranking), expected, "streamed as stored");
    let usage_after = d.usage.expect("usage").completion_tokens;
    assert!(usage_after > usage_before, "reviews count toward usage");
}
on_both_backends!(
    every_reviewer_ranks_the_two_others_anonymously_on,
    every_reviewer_ranks_the_two_others_anonymously
);

async fn labels_are_shuffled_per_reviewer_and_per_run(backend: Backend) {
    let ts = server(backend).await;
    script_answers(&ts);
    ts.llm.respond_when(REVIEW_NEEDLE, rank_by_quality);
    let p = project(&ts, "Indentation", &MODELS).await;
    let id = discussion_id(&open(&ts, &p.id, "Tabs or spaces?").await);

    for _ in 0..3 {
        review(&ts, &id, None).await.expect("review");
    }

    let d = get(&ts, &id).await;
    let reviews: Vec<&v1::Round> = d.rounds.iter().filter(|r| r.reviewed_round == 1).collect();
    assert_eq!(
        reviews.len(),
        3,
        "each review reviews round 1, the latest with answers"
    );
    // For each reviewer, is its "Response A" the earlier of the two others in
    // the project's order? A fixed order would always say the same.
    let mut in_project_order = Vec::new();
    for round in &reviews {
        for m in &round.messages {
            let first = &m.labels[0].model;
            in_project_order.push(*first == others(&m.model)[0]);
        }
    }
    assert!(
        in_project_order.contains(&true) && in_project_order.contains(&false),
        "labels follow a fixed order: {in_project_order:?}"
    );
    let per_reviewer_varies = MODELS.iter().any(|model| {
        let orders: Vec<String> = reviews
            .iter()
            .filter_map(|r| r.messages.iter().find(|m| m.model == *model))
            .map(|m| m.labels[0].model.clone())
            .collect();
        orders.iter().any(|o| o != &orders[0])
    });
    assert!(
        per_reviewer_varies,
        "a reviewer sees the same order in every run"
    );
    // The requests agree with what was stored: the answer under "Response A".
    for round in &reviews {
        for m in &round.messages {
            assert_eq!(m.labels.len(), 2);
            assert_ne!(m.labels[0].model, m.labels[1].model);
        }
    }
}
on_both_backends!(
    labels_are_shuffled_per_reviewer_and_per_run_on,
    labels_are_shuffled_per_reviewer_and_per_run
);

async fn an_unreadable_review_is_kept_and_left_out_of_the_aggregate(backend: Backend) {
    let ts = server(backend).await;
    script_answers(&ts);
    ts.llm.respond_when(REVIEW_NEEDLE, rank_by_quality);
    ts.llm.script_when(
        "b/two",
        REVIEW_NEEDLE,
        Script::new().text("Both are fine answers, I cannot choose."),
    );
    let p = project(&ts, "Indentation", &MODELS).await;
    let id = discussion_id(&open(&ts, &p.id, "Tabs or spaces?").await);

    let events = review(&ts, &id, None).await.expect("review");

    let d = get(&ts, &id).await;
    let round = &d.rounds[1];
    let b = round
        .messages
        .iter()
        .find(|m| m.model == "b/two")
        .expect("b's review");
    assert_eq!(b.status, v1::MessageStatus::Complete as i32, "kept as text");
    assert_eq!(b.content, "Both are fine answers, I cannot choose.");
    assert!(b.ranking.is_empty(), "never guessed: {b:?}");
    assert!(b.ranking_unparsed.contains("FINAL RANKING"), "{b:?}");
    assert_eq!(b.labels.len(), 2, "the labels it saw are kept");
    // a ranks c, b; c ranks a, b: a and c one vote at 1, b two votes at 2.
    let expected = vec![
        ("a/one".to_owned(), 1.0, 1, 1),
        ("c/three".to_owned(), 1.0, 1, 2),
        ("b/two".to_owned(), 2.0, 2, 3),
    ];
    assert_eq!(board(&round.ranking), expected);
    assert_eq!(board(&round_completed(&events)[0].ranking), expected);
}
on_both_backends!(
    an_unreadable_review_is_kept_and_left_out_of_the_aggregate_on,
    an_unreadable_review_is_kept_and_left_out_of_the_aggregate
);

async fn bad_reviews_are_refused_saying_why(backend: Backend) {
    let ts = server(backend).await;
    script_answers(&ts);
    ts.llm.respond_when(REVIEW_NEEDLE, rank_by_quality);
    let p = project(&ts, "Indentation", &MODELS).await;
    let id = discussion_id(&open(&ts, &p.id, "Tabs or spaces?").await);

    let missing = review(&ts, &id, Some(9)).await.expect_err("no round 9");
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert!(missing.message().contains("round 9"), "{missing:?}");

    review(&ts, &id, Some(1))
        .await
        .expect("round 1 is reviewable");
    let of_a_review = review(&ts, &id, Some(2))
        .await
        .expect_err("round 2 is a review");
    assert_eq!(of_a_review.code(), Code::InvalidArgument);
    assert!(
        of_a_review.message().contains("no model answers"),
        "{of_a_review:?}"
    );

    // A mention round has one answer: nothing to compare it with.
    ts.discussions()
        .await
        .mention(v1::MentionRequest {
            discussion_id: id.clone(),
            model: "a/one".into(),
            content: "Why tabs?".into(),
            ..Default::default()
        })
        .await
        .expect("mention");
    let d = wait_idle(&ts, &id).await;
    let mention = d.rounds.last().expect("a mention round").number;
    let one = review(&ts, &id, None).await.expect_err("one answer");
    assert_eq!(one.code(), Code::FailedPrecondition);
    assert!(one.message().contains("fewer than two"), "{one:?}");
    assert!(
        one.message().contains(&format!("round {mention}")),
        "{one:?}"
    );

    // Two models of which one failed: one answer again.
    ts.llm.script("f/ails", Script::new().fail(500));
    let q = project(&ts, "Failing", &["a/one", "f/ails"]).await;
    let lonely = discussion_id(&open(&ts, &q.id, "Anyone?").await);
    let failed = review(&ts, &lonely, None).await.expect_err("one answer");
    assert_eq!(failed.code(), Code::FailedPrecondition);

    // A review while a run is going is refused like any second run.
    ts.llm.script(
        "s/low",
        Script::new()
            .text("slow answer")
            .first_token_delay(Duration::from_secs(30)),
    );
    let r = project(&ts, "Slow", &["a/one", "s/low"]).await;
    let mut stream = open_stream(&ts, &r.id, "Slowly?").await;
    let busy = next_event(&mut stream).await.discussion_id;
    let refused = review(&ts, &busy, Some(1)).await.expect_err("busy");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("already in progress"),
        "{refused:?}"
    );
    ts.discussions()
        .await
        .stop_discussion(v1::StopDiscussionRequest {
            discussion_id: busy.clone(),
        })
        .await
        .expect("stop");

    let unknown = review(&ts, "no-such-discussion", None)
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
}
on_both_backends!(
    bad_reviews_are_refused_saying_why_on,
    bad_reviews_are_refused_saying_why
);

async fn a_summary_after_a_review_weighs_the_ranking(backend: Backend) {
    let ts = server(backend).await;
    script_answers(&ts);
    ts.llm.respond_when(REVIEW_NEEDLE, rank_by_quality);
    let p = project(&ts, "Indentation", &MODELS).await;
    let id = discussion_id(&open(&ts, &p.id, "Tabs or spaces?").await);
    review(&ts, &id, None).await.expect("review");
    ts.llm.clear_requests();

    let stream = ts
        .discussions()
        .await
        .summarize_discussion(v1::SummarizeDiscussionRequest {
            discussion_id: id.clone(),
            model: "b/two".into(),
        })
        .await
        .expect("summarize")
        .into_inner();
    collect(stream, LIMIT).await;

    let requests = ts.llm.requests_for("b/two");
    assert_eq!(requests.len(), 1);
    let prompt = &requests[0].messages.last().expect("user").content;
    let a = prompt.find("1. a/one").expect("a first on the leaderboard");
    let c = prompt.find("2. c/three").expect("c second");
    let b = prompt.find("3. b/two").expect("b third");
    assert!(a < c && c < b, "{prompt}");
    assert!(prompt.contains("Weigh the answers accordingly"), "{prompt}");
    assert!(
        !prompt.contains("FINAL RANKING"),
        "the reviews themselves are not part of the discussion: {prompt}"
    );
}
on_both_backends!(
    a_summary_after_a_review_weighs_the_ranking_on,
    a_summary_after_a_review_weighs_the_ranking
);

fn judges(d: &v1::Discussion) -> Vec<v1::Message> {
    all_messages(d)
        .into_iter()
        .filter(|m| m.role == v1::MessageRole::Judge as i32)
        .collect()
}

async fn a_judge_that_agrees_after_round_one_ends_the_discussion(backend: Backend) {
    let ts = server(backend).await;
    script_answers(&ts);
    ts.llm.script_when(
        "a/one",
        JUDGE_NEEDLE,
        Script::new().text("All three now say the same.\nCONSENSUS: yes"),
    );
    let p = project(&ts, "Indentation", &MODELS).await;

    let events = start(&ts, until_consensus(&p.id, 3)).await;

    let done = round_completed(&events);
    assert_eq!(done.len(), 1, "exactly one round");
    assert_eq!(done[0].consensus, Some(true));
    assert_eq!(done[0].outcome, v1::DiscussionOutcome::Consensus as i32);
    assert_eq!(done[0].judged_rounds, 1);
    let id = discussion_id(&events);
    let d = get(&ts, &id).await;
    assert_eq!(d.rounds.len(), 1);
    assert_eq!(d.outcome, v1::DiscussionOutcome::Consensus as i32);
    assert_eq!(d.consensus_round, 1);
    assert_eq!(d.rounds[0].consensus, Some(true));
    let judged = judges(&d);
    assert_eq!(judged.len(), 1);
    assert_eq!(
        judged[0].model, "a/one",
        "no summarizer: the first model judges"
    );
    assert_eq!(judged[0].consensus, Some(true));
    assert_eq!(judged[0].round, 1);
    let usage = judged[0].usage.as_ref().expect("usage");
    assert!(
        usage.completion_tokens > 0,
        "the judgement is a model call with usage"
    );
    // The judge read the round.
    let judge_request = ts
        .llm
        .requests_for("a/one")
        .into_iter()
        .find(|r| r.messages.iter().any(|m| m.content.contains(JUDGE_NEEDLE)))
        .expect("a judge request");
    let prompt = &judge_request.messages.last().expect("user").content;
    for text in ["Alpha: use tabs", "Beta: use spaces", "Gamma: it depends"] {
        assert!(prompt.contains(text), "{prompt}");
    }

    // NextRound still works after consensus, and leaves the outcome alone.
    next_round(&ts, &id).await.expect("next round");
    let d = get(&ts, &id).await;
    assert_eq!(d.rounds.len(), 2);
    assert_eq!(judges(&d).len(), 1, "a plain next round is not judged");
    assert_eq!(d.outcome, v1::DiscussionOutcome::Consensus as i32);
    assert_eq!(d.consensus_round, 1);
    let b_requests = ts.llm.requests_for("b/two");
    let next_prompt = &b_requests.last().expect("b spoke").messages;
    assert!(
        !next_prompt
            .iter()
            .any(|m| m.content.contains("CONSENSUS: yes")),
        "the judgement is not part of the discussion"
    );
}
on_both_backends!(
    a_judge_that_agrees_after_round_one_ends_the_discussion_on,
    a_judge_that_agrees_after_round_one_ends_the_discussion
);

async fn a_judge_that_never_agrees_runs_the_most_rounds(backend: Backend) {
    let ts = server(backend).await;
    script_answers(&ts);
    ts.llm.script("j/udge", Script::new().text("unused"));
    ts.llm.script_when(
        "j/udge",
        JUDGE_NEEDLE,
        Script::new().text("Beta still disagrees.\n\n**Consensus:** No"),
    );
    let p = project(&ts, "Indentation", &MODELS).await;
    ts.projects()
        .await
        .update_project(v1::UpdateProjectRequest {
            project_id: p.id.clone(),
            summarizer_model: Some("j/udge".into()),
            ..Default::default()
        })
        .await
        .expect("set the summarizer");

    let events = start(&ts, until_consensus(&p.id, 3)).await;

    let done = round_completed(&events);
    assert_eq!(done.len(), 3, "three rounds");
    assert!(done.iter().all(|r| r.consensus == Some(false)));
    assert_eq!(done[0].outcome, v1::DiscussionOutcome::Unspecified as i32);
    assert_eq!(done[2].outcome, v1::DiscussionOutcome::NoConsensus as i32);
    assert_eq!(done[2].judged_rounds, 3);
    let id = discussion_id(&events);
    let d = get(&ts, &id).await;
    assert_eq!(d.rounds.len(), 3);
    assert_eq!(d.outcome, v1::DiscussionOutcome::NoConsensus as i32);
    assert_eq!(d.consensus_round, 0);
    let judged = judges(&d);
    assert_eq!(judged.len(), 3);
    assert!(
        judged
            .iter()
            .all(|m| m.model == "j/udge" && m.consensus == Some(false))
    );
    assert_eq!(
        ts.llm.requests_for("j/udge").len(),
        3,
        "the summarizer judges"
    );

    // Asked again until consensus, the next judgement updates the outcome.
    ts.llm.script_when(
        "j/udge",
        JUDGE_NEEDLE,
        Script::new().text("Now they agree. CONSENSUS: yes"),
    );
    start(
        &ts,
        v1::StartDiscussionRequest {
            discussion_id: id.clone(),
            rounds: 2,
            until_consensus: true,
            ..Default::default()
        },
    )
    .await;
    let d = get(&ts, &id).await;
    assert_eq!(d.rounds.len(), 4);
    assert_eq!(d.outcome, v1::DiscussionOutcome::Consensus as i32);
    assert_eq!(d.consensus_round, 4);
}
on_both_backends!(
    a_judge_that_never_agrees_runs_the_most_rounds_on,
    a_judge_that_never_agrees_runs_the_most_rounds
);

async fn stop_during_a_judgement_interrupts_it(backend: Backend) {
    let ts = server(backend).await;
    script_answers(&ts);
    ts.llm
        .script_when("a/one", JUDGE_NEEDLE, Script::new().hang());
    let p = project(&ts, "Indentation", &MODELS).await;
    let mut stream = ts
        .discussions()
        .await
        .start_discussion(until_consensus(&p.id, 3))
        .await
        .expect("start")
        .into_inner();
    let id = loop {
        let event = next_event(&mut stream).await;
        if let Some(Payload::MessageStarted(m)) = &event.payload
            && m.role == v1::MessageRole::Judge as i32
        {
            break event.discussion_id;
        }
    };

    ts.discussions()
        .await
        .stop_discussion(v1::StopDiscussionRequest {
            discussion_id: id.clone(),
        })
        .await
        .expect("stop");

    let rest = collect(stream, LIMIT).await;
    assert_eq!(last_status(&rest), v1::DiscussionStatus::Stopped as i32);
    assert!(
        ts.llm.wait_dropped("a/one", LIMIT).await,
        "the judge's call was closed"
    );
    let d = wait_idle(&ts, &id).await;
    assert_eq!(d.status, v1::DiscussionStatus::Stopped as i32);
    assert_eq!(d.rounds.len(), 1, "no round after the stop");
    let judged = judges(&d);
    assert_eq!(judged.len(), 1);
    assert_eq!(judged[0].status, v1::MessageStatus::Interrupted as i32);
    assert_eq!(judged[0].consensus, None, "no verdict was given");
    assert_eq!(d.outcome, v1::DiscussionOutcome::Unspecified as i32);
}
on_both_backends!(
    stop_during_a_judgement_interrupts_it_on,
    stop_during_a_judgement_interrupts_it
);

/// Reads `stream` until an event matches, returning the seq of that event.
async fn read_until<R: moai_proto::EventResponse>(
    stream: &mut tonic::Streaming<R>,
    mut matches: impl FnMut(&v1::DiscussionEvent) -> bool,
) -> (String, u64) {
    loop {
        let event = next_event(stream).await;
        if matches(&event) {
            return (event.discussion_id, event.seq);
        }
    }
}

async fn review_and_judgement_survive_a_watcher_reattaching_and_export_shows_them(
    backend: Backend,
) {
    let ts = server(backend).await;
    script_answers(&ts);
    let pace = Duration::from_millis(20);
    ts.llm.respond_when(REVIEW_NEEDLE, move |r| {
        let mut script = rank_by_quality(r);
        script.token_pace = pace;
        script
    });
    ts.llm.script_when(
        "a/one",
        JUDGE_NEEDLE,
        Script::new()
            .text("They have converged on one view.\nCONSENSUS: yes")
            .token_pace(pace),
    );
    let p = project(&ts, "Indentation", &MODELS).await;

    // A judged discussion, left mid-judgement and watched again.
    let mut stream = ts
        .discussions()
        .await
        .start_discussion(until_consensus(&p.id, 3))
        .await
        .expect("start")
        .into_inner();
    let (id, seen) = read_until(&mut stream, |e| {
        matches!(&e.payload, Some(Payload::MessageStarted(m)) if m.role == v1::MessageRole::Judge as i32)
    })
    .await;
    drop(stream);
    let rest = watch(&ts, &id, seen).await;
    let done = round_completed(&rest);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].outcome, v1::DiscussionOutcome::Consensus as i32);
    assert!(
        completed(&rest)
            .iter()
            .any(|(m, c)| m == "a/one" && c.contains("CONSENSUS: yes"))
    );

    // A review, left after its first text and watched again.
    let mut stream = review_stream(&ts, &id, Some(1)).await.expect("review");
    let (_, seen) = read_until(&mut stream, |e| {
        matches!(&e.payload, Some(Payload::MessageDelta(_)))
    })
    .await;
    drop(stream);
    let rest = watch(&ts, &id, seen).await;
    let done = round_completed(&rest);
    assert_eq!(done.len(), 1);
    assert_eq!(
        done[0]
            .ranking
            .iter()
            .map(|r| r.model.as_str())
            .collect::<Vec<_>>(),
        ["a/one", "c/three", "b/two"]
    );
    let reviews = rest
        .iter()
        .filter(|t| {
            matches!(&t.event.payload, Some(Payload::MessageCompleted(c))
                if c.message.as_ref().is_some_and(|m| m.role == v1::MessageRole::Reviewer as i32))
        })
        .count();
    assert!(reviews >= 1, "the reviews still being written arrive whole");
    // A watcher from the start sees both runs whole, replayed from the store.
    let all = watch(&ts, &id, 0).await;
    assert_eq!(round_completed(&all).len(), 2);
    assert_eq!(
        round_completed(&all)[1].ranking.len(),
        3,
        "the leaderboard replays"
    );

    let export = |format: v1::ExportFormat| {
        let ts = &ts;
        let id = id.clone();
        async move {
            ts.discussions()
                .await
                .export_discussion(v1::ExportDiscussionRequest {
                    discussion_id: id,
                    format: format as i32,
                })
                .await
                .expect("export")
                .into_inner()
                .content
        }
    };
    let md = export(v1::ExportFormat::Markdown).await;
    assert!(md.contains("Leaderboard"), "{md}");
    assert!(md.contains("| 1 | `a/one` | 1.00 | 2 |"), "{md}");
    assert!(
        md.contains("**Ranking:** `c/three` > `b/two`"),
        "a's ranking: {md}"
    );
    assert!(md.contains("Judgement by a/one"), "{md}");
    assert!(md.contains("**Verdict:** consensus"), "{md}");
    assert!(md.contains("**Outcome:** consensus after round 1"), "{md}");
    let json = export(v1::ExportFormat::Json).await;
    let value: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(value["outcome"], "DISCUSSION_OUTCOME_CONSENSUS");
    assert_eq!(value["rounds"][1]["ranking"][0]["model"], "a/one");
    assert_eq!(
        value["rounds"][1]["messages"][0]["labels"][0]["label"],
        "Response A"
    );
}
on_both_backends!(
    review_and_judgement_survive_a_watcher_reattaching_and_export_shows_them_on,
    review_and_judgement_survive_a_watcher_reattaching_and_export_shows_them
);
