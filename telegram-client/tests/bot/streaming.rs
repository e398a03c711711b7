//! How runs look in the chat: live answers, long answers, formatting, failures, limits.

use moai_tests::fake_llm::Script;
use std::time::Duration;

use crate::support::*;

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
