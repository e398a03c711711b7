//! `moai review` and `moai discuss --until-consensus`, piped.

use moai_tests::fake_llm::Script;

use crate::support::{Pty, headers, server_with_project};

/// Ranks the answers it is shown in the order shown (a ranking it can always give).
fn in_order(request: &moai_tests::fake_llm::RecordedRequest) -> Script {
    let prompt = &request.messages.last().expect("a user message").content;
    let labels: Vec<String> = prompt
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(str::to_owned)
        .collect();
    let list: Vec<String> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{}. {l}", i + 1))
        .collect();
    Script::new().text(format!(
        "Fine answers.\n\nFINAL RANKING:\n{}",
        list.join("\n")
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_prints_the_reviews_then_the_leaderboard() {
    let (ts, moai) = server_with_project(&[
        ("v/a", "Answer A."),
        ("v/b", "Answer B."),
        ("v/c", "Answer C."),
    ])
    .await;
    ts.llm.respond_when("FINAL RANKING", in_order);
    moai.ok(&["open", "Which is best?"]).await;

    let run = moai.ok(&["review"]).await;

    assert!(run.stdout.contains("# Review"), "{run:?}");
    let mut reviewers = headers(&run.stdout);
    reviewers.sort_unstable();
    assert_eq!(
        reviewers,
        [
            "Leaderboard",
            "review by v/a",
            "review by v/b",
            "review by v/c"
        ]
    );
    assert!(run.stdout.contains("FINAL RANKING:"), "{run:?}");
    assert!(
        run.stdout.contains("ranking: "),
        "each review says its ranking: {run:?}"
    );
    let board = run
        .stdout
        .split("## Leaderboard")
        .nth(1)
        .expect("the leaderboard comes last");
    assert!(
        board.contains("| # | model | average rank | votes |"),
        "{board}"
    );
    let rows = board
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| #") && !l.starts_with("| -"))
        .count();
    assert_eq!(rows, 3, "{board}");

    let shown = moai.ok(&["show"]).await;
    assert!(
        shown.stdout.contains("## Round 2 · peer review"),
        "{shown:?}"
    );
    assert!(shown.stdout.contains("ranking: v/"), "{shown:?}");
    assert!(shown.stdout.contains("## Leaderboard"), "{shown:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_of_a_round_without_two_answers_is_refused() {
    let (_ts, moai) = server_with_project(&[("v/solo", "Alone.")]).await;
    moai.ok(&["open", "Anyone?"]).await;

    let run = moai.run(&["review"]).await;

    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("fewer than two"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discuss_until_consensus_says_when_they_agreed() {
    let (ts, moai) = server_with_project(&[("v/a", "Tabs."), ("v/b", "Tabs too.")]).await;
    ts.llm.script_when(
        "v/a",
        "CONSENSUS:",
        Script::new().text("Both say tabs.\nCONSENSUS: yes"),
    );

    let run = moai
        .ok(&[
            "discuss",
            "--until-consensus",
            "--rounds",
            "4",
            "Tabs or spaces?",
        ])
        .await;

    assert!(run.stdout.contains("## judge v/a"), "{run:?}");
    assert_eq!(
        run.stdout.lines().last(),
        Some("consensus after round 1"),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discuss_until_consensus_says_when_they_did_not() {
    let (ts, moai) = server_with_project(&[("v/a", "Tabs."), ("v/b", "Spaces.")]).await;
    ts.llm.script_when(
        "v/a",
        "CONSENSUS:",
        Script::new().text("They still differ.\nCONSENSUS: no"),
    );

    let run = moai
        .ok(&[
            "discuss",
            "--until-consensus",
            "--rounds",
            "2",
            "Tabs or spaces?",
        ])
        .await;

    let rounds: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("# Round"))
        .collect();
    assert_eq!(rounds, ["# Round 1", "# Round 2"], "{run:?}");
    assert_eq!(
        run.stdout.lines().last(),
        Some("no consensus after 2 rounds"),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_view_streams_the_reviews_then_draws_the_leaderboard_table() {
    let (ts, moai) = server_with_project(&[("v/a", "Answer A."), ("v/b", "Answer B.")]).await;
    moai.ok(&["open", "Which is best?"]).await;
    ts.llm.respond_when("FINAL RANKING", |r| {
        let mut script = in_order(r);
        script.token_pace = std::time::Duration::from_millis(15);
        script
    });

    let (code, drawn) = {
        let moai = &moai;
        tokio::task::block_in_place(|| Pty::spawn(moai, &["review"], 100).finish())
    };

    assert_eq!(code, 0, "{drawn}");
    let plain = console::strip_ansi_codes(&drawn).into_owned();
    assert!(plain.contains("peer review"), "{plain}");
    assert!(
        plain.contains("review by v/a") && plain.contains("review by v/b"),
        "{plain}"
    );
    let reviews_end = plain
        .rfind("FINAL RANKING")
        .expect("the reviews were drawn");
    let table = plain
        .find("#  MODEL  AVG RANK  VOTES")
        .expect("the leaderboard table");
    assert!(
        reviews_end < table,
        "the table comes after the reviews: {plain}"
    );
    assert!(
        plain.contains("Leaderboard (mean rank, best first)"),
        "{plain}"
    );
}
