//! `/review` and `/discuss until`: the leaderboard and the outcome in the chat.

use moai_tests::fake_llm::{RecordedRequest, Script};

use crate::support::*;

/// Ranks the answers it is shown in the order shown.
fn in_order(request: &RecordedRequest) -> Script {
    let prompt = &request.messages.last().expect("a user message").content;
    let list: Vec<String> = prompt
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .enumerate()
        .map(|(i, l)| format!("{}. {l}", i + 1))
        .collect();
    Script::new().text(format!(
        "Good answers.\n\nFINAL RANKING:\n{}",
        list.join("\n")
    ))
}

#[tokio::test]
async fn review_ends_with_a_leaderboard_message() {
    let w = World::start().await;
    w.ts.llm.script("fake/a", Script::new().text("A's view."));
    w.ts.llm
        .script("fake/bee", Script::new().text("Bee's view."));
    w.ts.llm.respond_when("FINAL RANKING", in_order);
    w.say("/new Council fake/a fake/bee");
    w.expect_reply("Created and selected").await;
    w.say("/open Tabs or spaces?");
    w.expect_reply("Next: /discuss").await;

    w.say("/review");

    w.expect_reply("🔍 Review · fake/a").await;
    w.expect_reply("🔍 Review · fake/bee").await;
    let board = w.expect_reply("🏆 Leaderboard").await;
    assert!(board.text.contains("fake/a"), "{}", board.text);
    assert!(board.text.contains("fake/bee"), "{}", board.text);
    assert!(board.text.contains("1.00"), "{}", board.text);

    w.say("/review 7");
    let refused = w.expect_reply("round 7").await;
    assert!(refused.text.starts_with("⚠️"), "{}", refused.text);
}

#[tokio::test]
async fn discuss_until_stops_at_consensus_and_says_so() {
    let w = World::start().await;
    w.ts.llm.script("fake/a", Script::new().text("Tabs."));
    w.ts.llm
        .script("fake/bee", Script::new().text("Tabs as well."));
    w.ts.llm.script_when(
        "fake/a",
        "CONSENSUS:",
        Script::new().text("They agree on tabs.\nCONSENSUS: yes"),
    );
    w.say("/new Council fake/a fake/bee");
    w.expect_reply("Created and selected").await;

    w.say("/discuss until 5 Tabs or spaces?");

    w.expect_reply("⚖️ Judge · fake/a").await;
    w.expect_reply("Consensus after round 1").await;
    let judged =
        w.ts.llm
            .requests()
            .into_iter()
            .filter(|r| r.messages.iter().any(|m| m.content.contains("CONSENSUS:")))
            .count();
    assert_eq!(judged, 1, "one round, one judgement");
}
