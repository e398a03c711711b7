//! The commands: projects, discussions in turns, mentions, consensus, exports, buttons.

use moai_tests::fake_llm::Script;
use std::time::Duration;

use crate::support::*;

#[tokio::test]
async fn projects_are_listed_with_the_current_one_marked_and_selected_with_a_button() {
    let w = World::start().await;
    w.say("/new First fake/a");
    w.expect_reply("Created and selected First").await;
    w.say("/new Second fake/b");
    w.expect_reply("Created and selected Second").await;

    w.say("/projects");
    let list = w.expect_reply("Your projects").await;
    assert!(
        list.text.contains("• First · 1 model\n▶️ Second · 1 model"),
        "{}",
        list.text
    );
    let buttons = list.reply_markup.clone().expect("buttons");
    let first = &buttons["inline_keyboard"][0][0];
    assert_eq!(first["text"], "Use First");
    let data = first["callback_data"].as_str().expect("data").to_owned();

    w.tg.press_button(USER, USER, list.id, &data);
    w.expect_reply("Now using First").await;
    w.say("/models");
    w.expect_reply("Models of First, in speaking order:\n1. fake/a")
        .await;
    w.say("/use sec");
    w.expect_reply("Now using Second").await;
    w.say("/addmodel fake/c");
    w.expect_reply("Models now: fake/b, fake/c").await;
    w.say("/rename Third");
    w.expect_reply("Renamed to Third").await;
    assert_eq!(w.server_projects(USER).await, ["First", "Third"]);

    w.ts.llm.script("fake/listed", Script::new());
    w.say("/available");
    let available = w.expect_reply("models available").await;
    assert!(available.text.contains("fake/listed"), "{}", available.text);
}

#[tokio::test]
async fn delete_asks_for_confirmation_with_a_button() {
    let w = World::start().await;
    w.say("/new Doomed fake/a");
    w.expect_reply("Created and selected").await;
    w.say("/delete Doomed");
    let question = w.expect_reply("Delete Doomed").await;
    let markup = question.reply_markup.clone().expect("buttons");
    let data = markup["inline_keyboard"][0][0]["callback_data"]
        .as_str()
        .expect("callback data")
        .to_owned();
    assert!(data.starts_with("del:"), "{data}");
    assert_eq!(
        w.server_projects(USER).await,
        ["Doomed"],
        "nothing deleted before confirming"
    );

    w.tg.press_button(USER, USER, question.id, &data);
    w.expect_message(
        |m| m.id == question.id && m.text.contains("Deleted Doomed"),
        "confirmation",
    )
    .await;
    assert!(w.server_projects(USER).await.is_empty());
    assert!(w.tg.calls_to("answerCallbackQuery").len() == 1);
}

#[tokio::test]
async fn discuss_two_rounds_then_next_then_stop_while_streaming() {
    let w = World::start().await;
    w.ts.llm.script("fake/a", Script::new().text("A speaks."));
    w.ts.llm.script("fake/b", Script::new().text("B answers."));
    w.say("/new Debate fake/a fake/b");
    w.expect_reply("Created and selected").await;

    w.say("/discuss 2 Cats or dogs?");
    w.expect_reply("Round 2").await;
    w.expect_answers("fake/b", 2).await;
    w.expect_answers("fake/a", 2).await;

    w.say("/next");
    w.expect_reply("Round 3").await;
    w.expect_answers("fake/b", 3).await;

    let slow = Script::new()
        .text(sentences("Slow", 200))
        .token_pace(Duration::from_millis(50));
    w.ts.llm.script("fake/a", slow);
    w.say("/next");
    w.expect_reply("Round 4").await;
    w.expect_message(
        |m| m.text.starts_with("🤖 fake/a ✍️") && m.text.contains("Slow point"),
        "streaming",
    )
    .await;
    w.say("/stop");
    w.expect_reply("⏹ Stopped").await;
    let answers = w.expect_answers("fake/a", 4).await;
    let stopped = answers.last().expect("the stopped answer");
    assert!(
        stopped.text.contains("Slow point 0."),
        "partial text kept: {}",
        stopped.text
    );
    assert!(stopped.text.ends_with("⏹ stopped"), "{}", stopped.text);
    assert!(
        !stopped.text.contains("Slow point 199."),
        "stopped before the end"
    );

    w.say("/next");
    let refused = w.expect_reply("⚠️ Not now: ").await;
    assert!(refused.text.contains("stopped"), "{}", refused.text);
}

#[tokio::test]
async fn the_stop_button_under_a_streaming_answer_stops_the_run() {
    let w = World::start().await;
    let slow = Script::new()
        .text(sentences("Button", 200))
        .token_pace(Duration::from_millis(50));
    w.ts.llm.script("fake/slow", slow);
    w.say("/new Buttons fake/slow");
    w.expect_reply("Created and selected").await;
    w.say("/open Go on and on?");
    let streaming = w
        .expect_message(
            |m| m.text.contains("Button point 2.") && m.reply_markup.is_some(),
            "a streaming answer with a button",
        )
        .await;
    let button = &streaming.reply_markup.clone().expect("markup")["inline_keyboard"][0][0];
    assert_eq!(button["text"], "⏹ Stop");
    let data = button["callback_data"].as_str().expect("data").to_owned();

    w.tg.press_button(USER, USER, streaming.id, &data);
    w.expect_reply("⏹ Stopped").await;
    let stopped = w
        .expect_message(
            |m| m.id == streaming.id && m.text.ends_with("⏹ stopped"),
            "the stopped answer",
        )
        .await;
    assert!(
        stopped.reply_markup.is_none(),
        "the button is gone once the answer ended"
    );
    let answered = w.tg.calls_to("answerCallbackQuery");
    assert_eq!(answered[0].params["text"], "⏹ Stopping…");
}

#[tokio::test]
async fn a_mention_the_consensus_and_exports() {
    let w = World::start().await;
    w.ts.llm.script("fake/a", Script::new().text("A's view."));
    w.ts.llm
        .script("fake/bee", Script::new().text("Bee's view."));
    w.say("/new Council fake/a fake/bee");
    w.expect_reply("Created and selected").await;
    w.say("/open Tabs or spaces?");
    w.expect_reply("Next: /discuss").await;

    w.ts.llm.script(
        "fake/bee",
        Script::new().text("Bee replies to you directly."),
    );
    w.say("@bee why do you say so?");
    let reply = w.expect_reply("Bee replies to you directly.").await;
    assert!(reply.text.starts_with("🤖 fake/bee\n"), "{}", reply.text);
    let last = w.ts.llm.requests_for("fake/bee").pop().expect("a request");
    assert!(
        last.messages
            .iter()
            .any(|m| m.content.contains("why do you say so?"))
    );

    w.ts.llm.script(
        "fake/a",
        Script::new().text("## Agreements\nBoth like *code*."),
    );
    w.say("/consensus");
    let summary = w.expect_reply("🧾 Consensus · fake/a").await;
    w.expect_message(
        |m| m.id == summary.id && !m.text.contains('✍'),
        "final summary",
    )
    .await;
    let summary =
        w.tg.bot_messages(USER)
            .into_iter()
            .find(|m| m.id == summary.id)
            .expect("summary");
    assert!(
        summary.text.ends_with("Agreements\n\nBoth like code."),
        "{}",
        summary.text
    );

    w.say("/export");
    let document = w
        .expect_message(|m| m.document.is_some(), "a document")
        .await;
    let file = document.document.expect("document");
    assert!(file.file_name.ends_with(".md"), "{}", file.file_name);
    let markdown = String::from_utf8(file.content).expect("UTF-8");
    assert!(
        markdown.contains("Tabs or spaces?") && markdown.contains("Bee's view."),
        "{markdown}"
    );

    w.say("/export json");
    let json = w
        .expect_message(
            |m| {
                m.document
                    .as_ref()
                    .is_some_and(|d| d.file_name.ends_with(".json"))
            },
            "JSON",
        )
        .await;
    let value: serde_json::Value =
        serde_json::from_slice(&json.document.expect("document").content).expect("valid JSON");
    assert!(value.to_string().contains("Tabs or spaces?"));

    w.say("/status");
    let status = w.expect_reply("📁 Project: Council").await;
    for part in [
        "Tabs or spaces?",
        "3 round(s), idle",
        "tokens",
        "No run going",
    ] {
        assert!(status.text.contains(part), "{part:?} in {}", status.text);
    }
}

#[tokio::test]
async fn replying_to_an_answer_talks_to_the_model_that_wrote_it() {
    let w = World::start().await;
    w.ts.llm
        .script("fake/one", Script::new().text("One says yes."));
    w.ts.llm
        .script("fake/two", Script::new().text("Two says no."));
    w.say("/new Pair fake/one fake/two");
    w.expect_reply("Created and selected").await;
    w.say("/open Yes or no?");
    w.expect_reply("Next: /discuss").await;
    let two = w.expect_reply("Two says no.").await;

    w.ts.llm
        .script("fake/two", Script::new().text("Two explains why."));
    w.tg.send_reply(USER, two.id, "Why not?");
    let reply = w.expect_reply("Two explains why.").await;
    assert!(reply.text.starts_with("🤖 fake/two\n"), "{}", reply.text);
    let asked = w.ts.llm.requests_for("fake/two").pop().expect("a request");
    assert!(
        asked
            .messages
            .iter()
            .any(|m| m.content.contains("Why not?"))
    );
    assert_eq!(
        w.ts.llm.requests_for("fake/one").len(),
        1,
        "only the replied-to model"
    );
}

#[tokio::test]
async fn usage_shows_the_spend_and_a_budget_refusal_is_one_friendly_line() {
    let w = World::start_with(moai_tests::server::TestOptions {
        settings: Box::new(|s| {
            let limits = moai_tests::server::BudgetLimits {
                daily_usd: Some(0.5),
                ..Default::default()
            };
            s.budgets.namespaces.insert("telegram".into(), limits);
            s.llm.prices.insert(
                "fake/paid".into(),
                moai_tests::server::ModelPrice {
                    prompt_per_million: 0.0,
                    completion_per_million: 400.0,
                },
            );
        }),
        ..Default::default()
    })
    .await;
    w.ts.llm
        .script("fake/paid", Script::new().text("Paid.").usage(10, 5, 0.4));
    w.say("/new Paid fake/paid");
    w.expect_reply("Created and selected Paid").await;
    w.say("/open What does it cost?");
    w.expect_answers("fake/paid", 1).await;
    w.wait_until_idle(&format!("telegram:{USER}")).await;

    w.say("/usage");
    let usage = w.expect_reply("Your usage").await;
    assert!(
        usage.text.contains("Today: $0.40 of $0.50 ($0.10 left)"),
        "{}",
        usage.text
    );
    assert!(usage.text.contains("fake/paid"), "{}", usage.text);

    w.say("/open And again?");
    let refusal = w.expect_reply("Daily budget").await;
    assert_eq!(
        refusal.text,
        "⚠\u{fe0f} Daily budget of $0.50 reached ($0.40 spent); resets at 00:00 UTC."
    );

    w.say("/help");
    let help = w.expect_reply("/usage").await;
    assert!(
        help.text.contains("what is left of your budget"),
        "{}",
        help.text
    );
}

#[tokio::test]
async fn stop_with_nothing_running_asks_before_ending_the_discussion() {
    let w = World::start().await;
    w.ts.llm.script("fake/a", Script::new().text("Done."));
    w.say("/new Idle fake/a");
    w.expect_reply("Created and selected").await;
    w.say("/open Anything?");
    w.expect_answers("fake/a", 1).await;
    w.wait_until_idle(&format!("telegram:{USER}")).await;

    w.say("/stop");
    let asked = w.expect_reply("Nothing is running").await;
    let buttons = asked.reply_markup.clone().expect("buttons");
    assert_eq!(buttons["inline_keyboard"][0][1]["text"], "Keep it");
    w.tg.press_button(USER, USER, asked.id, "keep");
    w.expect_message(|m| m.id == asked.id && m.text.starts_with("Kept"), "kept")
        .await;
    w.say("/next");
    w.expect_answers("fake/a", 2).await;
    w.wait_until_idle(&format!("telegram:{USER}")).await;

    w.say("/stop");
    let asked = w.expect_reply("Nothing is running").await;
    let close =
        asked.reply_markup.clone().expect("buttons")["inline_keyboard"][0][0]["callback_data"]
            .as_str()
            .expect("data")
            .to_owned();
    w.tg.press_button(USER, USER, asked.id, &close);
    w.expect_message(
        |m| m.id == asked.id && m.text.contains("Ended for good"),
        "ended",
    )
    .await;
    w.say("/next");
    w.expect_reply("⚠️ Not now: ").await;
}
