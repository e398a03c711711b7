//! The bot end to end: the real dispatcher against the fake Telegram Bot API
//! and the real moai server with the fake model upstream.

#[path = "bot/support.rs"]
mod support;

use std::{sync::atomic::Ordering, time::Duration};

use moai_tests::fake_llm::Script;
use support::*;

/// A streamed answer: `n` short sentences, paced so it takes a while.
fn sentences(model: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{model} point {i}."))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
async fn new_and_open_stream_one_message_per_model_with_throttled_edits() {
    let w = World::start().await;
    let pace = Duration::from_millis(40);
    let alpha = sentences("Alpha", 30);
    let beta = format!("**Beta** thinks `a < b` & more. {}", sentences("Beta", 20));
    w.ts.llm.script(
        "fake/alpha",
        Script::new().text(alpha.clone()).token_pace(pace),
    );
    w.ts.llm.script(
        "fake/beta",
        Script::new().text(beta.clone()).token_pace(pace),
    );

    w.say("/new Roundtable fake/alpha fake/beta");
    w.expect_reply("Created and selected Roundtable").await;
    w.say("/open What matters most?");
    w.expect_reply("Next: /discuss").await;

    let chat = w.tg.bot_messages(USER);
    let a = answers_of(&chat, "fake/alpha");
    let b = answers_of(&chat, "fake/beta");
    assert_eq!(
        (a.len(), b.len()),
        (1, 1),
        "one message per model: {:#?}",
        texts(&chat)
    );
    assert_eq!(body(&a[0]), alpha);
    assert_eq!(
        body(&b[0]),
        "Beta thinks a < b & more. ".to_owned() + &sentences("Beta", 20)
    );
    assert_eq!(b[0].parse_mode.as_deref(), Some("HTML"));
    assert!(
        b[0].raw.contains("<b>Beta</b>") && b[0].raw.contains("<code>a &lt; b</code>"),
        "{}",
        b[0].raw
    );
    for answer in [&a[0], &b[0]] {
        assert!(answer.edits >= 1, "streamed with edits");
        let mut last = answer.sent_at;
        for at in &answer.edit_times {
            let gap = at.duration_since(last);
            assert!(
                gap >= Duration::from_millis(900),
                "edits {gap:?} apart: {:?}",
                answer.text
            );
            last = *at;
        }
    }
    let typing = w.tg.calls_to("sendChatAction");
    assert!(
        typing.iter().any(|c| c.params["action"] == "typing"),
        "typing was shown"
    );
    assert_eq!(
        w.server_projects(USER).await,
        ["Roundtable"],
        "acting for telegram:{USER}"
    );
    assert!(
        w.server_projects(STRANGER).await.is_empty(),
        "nobody else sees it"
    );
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
async fn a_ten_thousand_character_answer_arrives_complete_in_well_formed_messages() {
    let w = World::start().await;
    let mut answer = String::new();
    let mut i = 0;
    while answer.len() < 10_000 {
        answer.push_str(&format!(
            "Paragraph {i}: <b>not bold</b> & AT&T **bold {i}**.\n\n```rust\nlet x{i} = a < b && c > d;\n```\n\n"
        ));
        i += 1;
    }
    w.ts.llm
        .script("fake/long", Script::new().text(answer.clone()));
    w.say("/new Long fake/long");
    w.expect_reply("Created and selected").await;
    w.say("/open Write a lot.");
    w.expect_reply("Next: /discuss").await;

    let parts: Vec<_> =
        w.tg.bot_messages(USER)
            .into_iter()
            .filter(|m| m.text.starts_with("🤖 fake/long"))
            .collect();
    assert!(parts.len() >= 3, "several messages: {}", parts.len());
    let mut seen = String::new();
    for part in &parts {
        assert_eq!(
            part.parse_mode.as_deref(),
            Some("HTML"),
            "formatted, not the fallback"
        );
        assert!(part.text.encode_utf16().count() <= 4096);
        seen.push_str(body(part));
        seen.push('\n');
    }
    let mut at = 0;
    for n in 0..i {
        for needle in [
            format!("Paragraph {n}: <b>not bold</b> & AT&T bold {n}."),
            format!("let x{n} = a < b && c > d;"),
        ] {
            let found = seen[at..]
                .find(&needle)
                .unwrap_or_else(|| panic!("{needle:?} missing or out of order"));
            at += found + needle.len();
        }
    }
    for call in
        w.tg.calls_to("sendMessage")
            .iter()
            .chain(&w.tg.calls_to("editMessageText"))
    {
        assert_eq!(call.error, None, "every message well-formed");
    }
}

#[tokio::test]
async fn a_user_not_on_the_allowlist_is_refused_and_nothing_reaches_the_server() {
    let tg = moai_tests::fake_telegram::FakeTelegram::start().await;
    let ts = moai_tests::server::TestServer::spawn().await;
    let (proxy, connections) = counting_proxy(ts.addr).await;
    let state = tempfile::tempdir().expect("temp dir");
    let _bot = start(config(
        &tg,
        &proxy,
        &ts.gateway_key,
        state.path().join("s.json"),
    ));

    tg.send_text(STRANGER, "/new Mine fake/a");
    tg.send_text(STRANGER, "/open hello?");
    tg.send_text(STRANGER, "@fake/a hi");
    let refused = tg
        .wait_until(LIMIT, |tg| {
            tg.pending_updates() == 0 && !tg.bot_messages(STRANGER).is_empty()
        })
        .await;
    assert!(refused, "a refusal");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let replies = tg.bot_messages(STRANGER);
    assert_eq!(
        replies.len(),
        1,
        "one polite refusal: {:#?}",
        texts(&replies)
    );
    assert!(
        replies[0].text.contains("this bot is private"),
        "{}",
        replies[0].text
    );
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the server saw no call"
    );
    assert_eq!(ts.llm.request_count(), 0);

    tg.send_text(USER, "/projects");
    assert!(
        tg.wait_until(LIMIT, |tg| !tg.bot_messages(USER).is_empty())
            .await
    );
    assert!(
        connections.load(Ordering::SeqCst) > 0,
        "allowed users do reach the server"
    );
}

#[tokio::test]
async fn the_selected_project_survives_a_bot_restart() {
    let mut w = World::start().await;
    w.say("/new Keeper fake/a");
    w.expect_reply("Created and selected Keeper").await;
    w.bot.take().expect("running").stop().await;

    w.bot = Some(start(w.config()));
    w.say("/project");
    let shown = w.expect_reply("📁 Keeper").await;
    assert!(shown.text.contains("fake/a"), "{}", shown.text);
}

#[tokio::test]
async fn a_429_from_the_bot_api_is_waited_out_and_the_final_text_lands() {
    let w = World::start().await;
    let text = sentences("Patient", 40);
    w.ts.llm.script(
        "fake/p",
        Script::new()
            .text(text.clone())
            .token_pace(Duration::from_millis(40)),
    );
    w.say("/new Limits fake/p");
    w.expect_reply("Created and selected").await;

    w.tg.rate_limit("sendMessage", 1, 1);
    w.tg.rate_limit("editMessageText", 2, 2);
    w.say("/open Go slowly.");
    w.expect_reply("Next: /discuss").await;

    let answer = w.expect_answers("fake/p", 1).await.remove(0);
    assert_eq!(body(&answer), text, "the final text landed complete");
    let calls = w.tg.calls();
    for (i, call) in calls.iter().enumerate() {
        if call
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("Too Many Requests"))
        {
            let wait = if call.method == "sendMessage" { 1 } else { 2 };
            let next = calls[i + 1..]
                .iter()
                .find(|c| c.method == call.method)
                .expect("retried");
            let gap = next.at.duration_since(call.at);
            assert!(
                gap >= Duration::from_millis(wait * 1000 - 100),
                "{} retried after {gap:?}",
                call.method
            );
        }
    }
    let limited = calls
        .iter()
        .filter(|c| {
            c.error
                .as_deref()
                .is_some_and(|e| e.starts_with("Too Many"))
        })
        .count();
    assert_eq!(limited, 3, "the injected 429s were hit");
}

#[tokio::test]
async fn rejected_formatting_falls_back_to_plain_text() {
    let w = World::start().await;
    w.tg.reject_formatting(1);
    w.say("/help");
    let help = w.expect_reply("Discussion").await;
    assert_eq!(help.parse_mode, None, "re-sent as plain text");
    assert!(help.text.contains("/open <question>"), "{}", help.text);
}

#[tokio::test]
async fn a_failing_model_is_shown_as_a_warning_and_the_others_go_on() {
    let w = World::start().await;
    w.ts.llm.script("fake/ok", Script::new().text("I am fine."));
    w.ts.llm.script("fake/bad", Script::new().fail(400));
    w.say("/new Mixed fake/ok fake/bad");
    w.expect_reply("Created and selected").await;
    w.say("/open Status?");
    let warning = w.expect_reply("⚠️ fake/bad: ").await;
    assert!(
        warning.text.len() > "⚠️ fake/bad: ".len(),
        "with a reason: {}",
        warning.text
    );
    let ok = w.expect_answers("fake/ok", 1).await;
    assert_eq!(body(&ok[0]), "I am fine.");
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
async fn an_unreachable_server_is_one_friendly_line() {
    let tg = moai_tests::fake_telegram::FakeTelegram::start().await;
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("address"));
    drop(closed);
    let state = tempfile::tempdir().expect("temp dir");
    let _bot = start(config(&tg, &url, "some-key", state.path().join("s.json")));

    tg.send_text(USER, "/projects");
    assert!(
        tg.wait_until(LIMIT, |tg| !tg.bot_messages(USER).is_empty())
            .await
    );
    let reply = &tg.bot_messages(USER)[0];
    assert_eq!(
        reply.text,
        "⚠️ The moai server can't be reached right now. Please try again in a moment."
    );
}

#[tokio::test]
async fn the_binary_runs_from_the_environment_refuses_everyone_on_an_empty_list_and_logs_no_secret()
{
    let tg = moai_tests::fake_telegram::FakeTelegram::start().await;
    let ts = moai_tests::server::TestServer::spawn().await;
    let state = tempfile::tempdir().expect("temp dir");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_moai-telegram"))
        .env("TELOXIDE_TOKEN", moai_tests::fake_telegram::TOKEN)
        .env("MOAI_TELEGRAM_API_URL", tg.api_url())
        .env("MOAI_SERVER", &ts.url)
        .env("MOAI_API_KEY", &ts.gateway_key)
        .env("MOAI_TELEGRAM_ALLOWED_USERS", "")
        .env("MOAI_TELEGRAM_STATE", state.path().join("state.json"))
        .env("MOAI_TELEGRAM_POLL_TIMEOUT", "1")
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");

    tg.send_text(USER, "/projects");
    let refused = tg
        .wait_until(LIMIT, |tg| !tg.bot_messages(USER).is_empty())
        .await;
    child.start_kill().expect("stop the bot");
    let output = child.wait_with_output().await.expect("output");
    let logs = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(refused, "a refusal; logs:\n{logs}");
    assert!(
        tg.bot_messages(USER)[0]
            .text
            .contains("this bot is private")
    );
    assert!(
        logs.contains("refuse everyone"),
        "says why at start-up:\n{logs}"
    );
    assert!(
        !logs.contains(moai_tests::fake_telegram::TOKEN),
        "the token is never logged"
    );
    assert!(!logs.contains(&ts.gateway_key), "the key is never logged");
    assert!(!tg.commands().is_empty(), "the command menu is registered");
}

#[tokio::test]
async fn in_a_group_commands_addressed_to_the_bot_work_and_chatter_is_ignored() {
    let w = World::start().await;
    const GROUP: i64 = -500;
    let text = sentences("Group", 30);
    w.ts.llm.script(
        "fake/g",
        Script::new()
            .text(text.clone())
            .token_pace(Duration::from_millis(60)),
    );
    w.tg.send_text_in(GROUP, USER, "/new@moai_test_bot Team fake/g");
    w.tg.send_text_in(GROUP, USER, "just chatting, not for the bot");
    w.tg.send_text_in(GROUP, USER, "/open@other_bot not for us either");
    w.tg.send_text_in(GROUP, USER, "/open What now?");
    let done =
        w.tg.wait_until(LIMIT, |tg| {
            tg.bot_messages(GROUP)
                .iter()
                .any(|m| m.text.starts_with("Next:"))
        })
        .await;
    assert!(done, "{:#?}", texts(&w.tg.bot_messages(GROUP)));
    let chat = w.tg.bot_messages(GROUP);
    assert_eq!(
        chat.len(),
        3,
        "created, the answer, the hint: {:#?}",
        texts(&chat)
    );
    let answer = &answers_of(&chat, "fake/g")[0];
    assert_eq!(body(answer), text);
    let mut last = answer.sent_at;
    for at in &answer.edit_times {
        assert!(
            at.duration_since(last) >= Duration::from_millis(2900),
            "slower edits in groups"
        );
        last = *at;
    }
    let typing = w.tg.calls_to("sendChatAction");
    let typing = typing
        .iter()
        .filter(|c| c.params["chat_id"] == GROUP)
        .count();
    assert!(
        typing >= 2,
        "typing re-sent while the model works: {typing}"
    );
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
async fn a_run_going_when_the_bot_restarts_is_followed_to_its_end() {
    let mut w = World::start().await;
    let text = sentences("Steady", 60);
    let pace = Duration::from_millis(40);
    w.ts.llm
        .script("fake/s", Script::new().text(text.clone()).token_pace(pace));
    w.say("/new Resume fake/s");
    w.expect_reply("Created and selected").await;
    w.say("/open Keep going?");
    let streaming = w
        .expect_message(|m| m.text.contains("Steady point 3."), "streaming")
        .await;
    w.bot.take().expect("running").stop().await;

    w.bot = Some(start(w.config()));
    w.expect_reply("I restarted while the models were answering")
        .await;
    let finished = w
        .expect_message(
            |m| m.text == format!("🤖 fake/s\n{text}"),
            "the complete answer",
        )
        .await;
    assert_eq!(
        finished.id, streaming.id,
        "finished in the message it started in"
    );
    assert!(finished.reply_markup.is_none(), "no Stop button left");
    assert_eq!(answers_of(&w.tg.bot_messages(USER), "fake/s").len(), 1);
}

#[tokio::test]
async fn an_answer_that_ended_while_the_bot_was_down_is_finished_after_a_restart() {
    let mut w = World::start().await;
    let text = sentences("Brief", 25);
    let pace = Duration::from_millis(40);
    w.ts.llm
        .script("fake/b", Script::new().text(text.clone()).token_pace(pace));
    w.say("/new Down fake/b");
    w.expect_reply("Created and selected").await;
    w.say("/open Quick?");
    let streaming = w
        .expect_message(|m| m.text.contains("Brief point 1."), "streaming")
        .await;
    w.bot.take().expect("running").stop().await;
    // The run ends on the server while no bot is watching.
    tokio::time::sleep(Duration::from_secs(4)).await;

    w.bot = Some(start(w.config()));
    let finished = w
        .expect_message(
            |m| m.id == streaming.id && m.text == format!("🤖 fake/b\n{text}"),
            "the answer finished in place",
        )
        .await;
    assert!(finished.reply_markup.is_none());
    assert!(
        !w.tg
            .bot_messages(USER)
            .iter()
            .any(|m| m.text.contains("I restarted")),
        "nothing to follow, so no notice"
    );
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
