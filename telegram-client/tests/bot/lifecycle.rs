//! Who may use the bot, restarts, an unreachable server, and the binary itself.

use moai_tests::fake_llm::Script;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::*;

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
    // A chat's updates are handled in order: once this button press is
    // answered, the three messages before it have been handled too.
    tg.press_button(STRANGER, STRANGER, 1, "use:anything");
    let handled = tg
        .wait_until(LIMIT, |tg| !tg.calls_to("answerCallbackQuery").is_empty())
        .await;
    assert!(handled, "the sentinel was answered");
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
    let paused =
        w.tg.bot_messages(USER)
            .into_iter()
            .find(|m| m.id == streaming.id)
            .expect("the answer's message");
    assert!(
        paused
            .text
            .contains("The bot is restarting; it finishes this answer here."),
        "a stopping bot gives the answer a last edit: {}",
        paused.text
    );
    assert!(paused.reply_markup.is_none(), "no Stop button while paused");

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
    w.wait_until_idle(&format!("telegram:{USER}")).await;

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
async fn the_binary_on_sigterm_lets_the_answer_end_with_its_final_edit_and_exits_0() {
    let tg = moai_tests::fake_telegram::FakeTelegram::start().await;
    let ts = moai_tests::server::TestServer::spawn().await;
    let text = sentences("Calm", 20);
    ts.llm.script(
        "fake/c",
        Script::new()
            .text(text.clone())
            .token_pace(Duration::from_millis(40)),
    );
    let state = tempfile::tempdir().expect("temp dir");
    let state_file = state.path().join("state.json");
    let log_file = state.path().join("bot.log");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_moai-telegram"))
        .env("TELOXIDE_TOKEN", moai_tests::fake_telegram::TOKEN)
        .env("MOAI_TELEGRAM_API_URL", tg.api_url())
        .env("MOAI_SERVER", &ts.url)
        .env("MOAI_API_KEY", &ts.gateway_key)
        .env("MOAI_TELEGRAM_ALLOWED_USERS", USER.to_string())
        .env("MOAI_TELEGRAM_STATE", &state_file)
        .env("MOAI_TELEGRAM_POLL_TIMEOUT", "1")
        .env("MOAI_TELEGRAM_SHUTDOWN_GRACE", "20")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_file).expect("log file"))
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");

    tg.send_text(USER, "/new Calm fake/c");
    assert!(
        tg.wait_until(LIMIT, |tg| tg
            .bot_messages(USER)
            .iter()
            .any(|m| m.text.contains("Created and selected")))
            .await
    );
    tg.send_text(USER, "/open Stay calm?");
    let streaming = tg
        .wait_until(LIMIT, |tg| {
            answers_of(&tg.bot_messages(USER), "fake/c")
                .iter()
                .any(|m| m.text.contains("Calm point 1.") && m.text.contains('✍'))
        })
        .await;
    assert!(streaming, "{:#?}", texts(&tg.bot_messages(USER)));

    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = tokio::time::timeout(LIMIT, child.wait())
        .await
        .expect("the bot exits within the limit")
        .expect("exit status");
    let logs = std::fs::read_to_string(&log_file).unwrap_or_default();
    assert_eq!(status.code(), Some(0), "exit 0 on SIGTERM; logs:\n{logs}");

    let answers = answers_of(&tg.bot_messages(USER), "fake/c");
    assert_eq!(answers.len(), 1, "{:#?}", texts(&tg.bot_messages(USER)));
    assert_eq!(
        answers[0].text,
        format!("🤖 fake/c\n{text}"),
        "the answer got its final edit before the bot exited"
    );
    assert!(answers[0].reply_markup.is_none(), "no Stop button left");
    let saved = std::fs::read_to_string(&state_file).expect("the state was saved");
    assert!(
        !saved.contains("\"live\""),
        "nothing left to finish after a restart: {saved}"
    );
}
