//! The bot in group chats: the group's own council, who may use it there,
//! commands addressed to bots, replies to answers, pacing, migration.

use std::time::Duration;

use moai_proto::v1::MessageRole;
use moai_tests::fake_llm::Script;
use moai_tests::fake_telegram::{ChatMessage, FakeTelegram};

use crate::support::*;

/// An allowed group.
const GROUP: i64 = -700;
/// A member of [`GROUP`] who is not on the user allowlist.
const MEMBER: i64 = 3003;

/// A world whose bot allows [`USER`] anywhere and every member of [`GROUP`] there.
async fn group_world(tune: impl FnOnce(&mut moai_telegram::Config)) -> World {
    let tg = FakeTelegram::start().await;
    let ts = moai_tests::server::TestServer::spawn().await;
    let state_dir = tempfile::tempdir().expect("temp dir");
    let mut w = World {
        tg,
        ts,
        state_dir,
        bot: None,
    };
    let mut config = w.config();
    config.allowed_chats = moai_telegram::ChatAllowlist::of([GROUP]);
    tune(&mut config);
    w.bot = Some(start(config));
    w
}

/// Waits for a bot message in `chat` that satisfies `check`.
async fn expect_in(
    tg: &FakeTelegram,
    chat: i64,
    check: impl Fn(&ChatMessage) -> bool,
    what: &str,
) -> ChatMessage {
    let mut found = None;
    let ok = tg
        .wait_until(LIMIT, |tg| {
            found = tg.bot_messages(chat).into_iter().find(|m| check(m));
            found.is_some()
        })
        .await;
    assert!(
        ok,
        "no message {what:?} in {chat}; the chat: {:#?}",
        texts(&tg.bot_messages(chat))
    );
    found.expect("found")
}

/// Waits until `count` answers of `model` in `chat` are final.
async fn final_answers(
    tg: &FakeTelegram,
    chat: i64,
    model: &str,
    count: usize,
) -> Vec<ChatMessage> {
    let mut answers = Vec::new();
    let ok = tg
        .wait_until(LIMIT, |tg| {
            answers = answers_of(&tg.bot_messages(chat), model);
            answers.len() >= count && answers.iter().all(|m| !m.text.contains('✍'))
        })
        .await;
    assert!(
        ok,
        "{count} final answers of {model} in {chat}; the chat: {:#?}",
        texts(&tg.bot_messages(chat))
    );
    answers
}

#[tokio::test]
async fn two_members_share_the_groups_council_and_a_reply_talks_to_that_answers_model() {
    let w = group_world(|_| {}).await;
    w.ts.llm
        .script("fake/a", Script::new().text("Alpha says yes."));
    w.ts.llm
        .script("fake/b", Script::new().text("Beta says no."));

    w.tg.send_text_in(GROUP, USER, "/new teamproj fake/a fake/b");
    expect_in(
        &w.tg,
        GROUP,
        |m| m.text.contains("Created and selected teamproj"),
        "created",
    )
    .await;
    w.tg.send_text_in(GROUP, MEMBER, "/open what do you think?");
    expect_in(&w.tg, GROUP, |m| m.text.starts_with("Next:"), "the hint").await;
    assert_eq!(
        body(&final_answers(&w.tg, GROUP, "fake/a", 1).await[0]),
        "Alpha says yes."
    );
    assert_eq!(
        body(&final_answers(&w.tg, GROUP, "fake/b", 1).await[0]),
        "Beta says no."
    );

    w.tg.send_text_in(GROUP, USER, "/discuss 1");
    final_answers(&w.tg, GROUP, "fake/a", 2).await;
    let beta = final_answers(&w.tg, GROUP, "fake/b", 2).await;
    w.wait_until_idle(&format!("telegram-group:{GROUP}")).await;

    let before = w.ts.llm.requests().len();
    w.tg.send_reply_in(GROUP, MEMBER, beta[0].id, "Why not, Beta?");
    final_answers(&w.tg, GROUP, "fake/b", 3).await;
    w.wait_until_idle(&format!("telegram-group:{GROUP}")).await;
    let calls = w.ts.llm.requests();
    assert_eq!(calls.len(), before + 1, "one model called");
    let call = calls.last().expect("the call");
    assert_eq!(
        call.model, "fake/b",
        "the model whose answer was replied to"
    );
    let said = &call.messages.last().expect("the user's words").content;
    assert!(said.contains("Why not, Beta?"), "{said}");

    assert_eq!(
        w.projects_of(&format!("telegram-group:{GROUP}")).await,
        ["teamproj"]
    );
    assert!(
        w.server_projects(USER).await.is_empty(),
        "the group's, not A's"
    );
    assert!(w.server_projects(MEMBER).await.is_empty(), "nor B's");
    let discussions = w.discussions_of(&format!("telegram-group:{GROUP}")).await;
    assert_eq!(discussions.len(), 1, "one discussion, continued by both");
    let asked = discussions[0]
        .rounds
        .iter()
        .flat_map(|round| &round.messages)
        .find(|m| m.role == MessageRole::User as i32)
        .expect("the reply is a USER message");
    assert_eq!(asked.content, "Why not, Beta?");
    assert_eq!(
        asked.author_name,
        format!("User {MEMBER}"),
        "who asked is kept"
    );
}

#[tokio::test]
async fn a_member_of_an_allowed_group_may_use_it_there_but_not_in_a_private_chat() {
    let w = group_world(|_| {}).await;
    w.tg.send_text_in(GROUP, MEMBER, "/new mine");
    expect_in(
        &w.tg,
        GROUP,
        |m| m.text.contains("Created and selected mine"),
        "created",
    )
    .await;

    w.tg.send_text(MEMBER, "/projects");
    let refusal = expect_in(&w.tg, MEMBER, |_| true, "a refusal").await;
    assert!(
        refusal.text.contains("this bot is private"),
        "{}",
        refusal.text
    );
    assert!(w.server_projects(MEMBER).await.is_empty());
    assert_eq!(
        w.projects_of(&format!("telegram-group:{GROUP}")).await,
        ["mine"]
    );
}

#[tokio::test]
async fn a_group_not_allowed_is_told_once_and_the_server_sees_no_call() {
    let tg = FakeTelegram::start().await;
    let ts = moai_tests::server::TestServer::spawn().await;
    let (proxy, connections) = counting_proxy(ts.addr).await;
    let state = tempfile::tempdir().expect("temp dir");
    let _bot = start(config(
        &tg,
        &proxy,
        &ts.gateway_key,
        state.path().join("s.json"),
    ));
    const OTHER: i64 = -800;

    tg.add_bot_to(OTHER, STRANGER);
    tg.send_text_in(OTHER, STRANGER, "/new Ours fake/a");
    tg.send_text_in(OTHER, MEMBER, "/open hello?");
    tg.send_text_in(OTHER, MEMBER, "/ask fake/a hi");
    // Updates of a chat are handled in order: once this press is answered,
    // everything before it has been handled.
    tg.press_button(MEMBER, OTHER, 1, "use:anything");
    let handled = tg
        .wait_until(LIMIT, |tg| !tg.calls_to("answerCallbackQuery").is_empty())
        .await;
    assert!(handled, "the sentinel was answered");
    let said = tg.bot_messages(OTHER);
    assert_eq!(
        said.len(),
        1,
        "one refusal for the group: {:#?}",
        texts(&said)
    );
    assert!(
        said[0].text.contains("this group is not on its list"),
        "{}",
        said[0].text
    );
    assert!(
        said[0].text.contains(&OTHER.to_string()),
        "names the chat id"
    );
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the server saw no call"
    );
    assert_eq!(ts.llm.request_count(), 0);

    // Allowed users may use the bot anywhere, in that group too.
    tg.send_text_in(OTHER, USER, "/projects");
    expect_in(
        &tg,
        OTHER,
        |m| m.text.contains("no projects yet"),
        "the allowed user's answer",
    )
    .await;
}

#[tokio::test]
async fn commands_for_this_bot_work_in_groups_and_commands_for_others_are_ignored() {
    let w = group_world(|_| {}).await;
    w.ts.llm.script("fake/x", Script::new().text("X answers."));
    w.tg.send_text_in(GROUP, MEMBER, "/new@moai_test_bot named fake/x");
    expect_in(
        &w.tg,
        GROUP,
        |m| m.text.contains("Created and selected named"),
        "created",
    )
    .await;

    w.tg.send_text_in(GROUP, MEMBER, "/open@OtherBot not for us");
    w.tg.send_text_in(GROUP, MEMBER, "/status@moai_test_bot");
    expect_in(
        &w.tg,
        GROUP,
        |m| m.text.contains("No current discussion"),
        "the status",
    )
    .await;
    assert_eq!(
        w.ts.llm.request_count(),
        0,
        "the other bot's /open was ignored"
    );

    w.tg.send_text_in(GROUP, MEMBER, "/open@Moai_Test_Bot and for us?");
    assert_eq!(
        body(&final_answers(&w.tg, GROUP, "fake/x", 1).await[0]),
        "X answers."
    );
    w.wait_until_idle(&format!("telegram-group:{GROUP}")).await;

    w.tg.send_text_in(GROUP, MEMBER, "/ask@moai_test_bot x and you?");
    final_answers(&w.tg, GROUP, "fake/x", 2).await;
    let calls = w.ts.llm.requests();
    let asked = &calls.last().expect("a call").messages;
    assert!(asked.last().expect("words").content.contains("and you?"));
}

#[tokio::test]
async fn five_answers_streaming_at_once_in_a_group_all_land_without_a_429_storm() {
    // Telegram holds a group to about 20 messages a minute; here the fake
    // holds it to 12 per 5 s and the bot is told it may send 120 a minute
    // (10 per 5 s), while each answer would like an edit every 300 ms.
    let w = group_world(|config| {
        config.group_messages_per_minute = 120;
        config.edit_interval = Duration::from_millis(100);
    })
    .await;
    w.tg.limit_groups(12, Duration::from_secs(5));
    let models: Vec<String> = (1..=5).map(|i| format!("fake/m{i}")).collect();
    for model in &models {
        w.ts.llm.script(
            model,
            Script::new()
                .text(sentences(model, 12))
                .token_pace(Duration::from_millis(50)),
        );
    }
    w.tg.send_text_in(GROUP, USER, &format!("/new five {}", models.join(" ")));
    expect_in(
        &w.tg,
        GROUP,
        |m| m.text.contains("Created and selected five"),
        "created",
    )
    .await;
    w.tg.send_text_in(GROUP, MEMBER, "/open all at once?");
    expect_in(&w.tg, GROUP, |m| m.text.starts_with("Next:"), "the hint").await;

    for model in &models {
        let answers = final_answers(&w.tg, GROUP, model, 1).await;
        assert_eq!(answers.len(), 1, "one message for {model}");
        assert_eq!(
            body(&answers[0]),
            sentences(model, 12),
            "the full text of {model}"
        );
    }
    let limited: Vec<_> =
        w.tg.calls()
            .into_iter()
            .filter(|c| {
                c.error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("Too Many Requests"))
            })
            .collect();
    assert!(limited.is_empty(), "no 429 at all: {limited:#?}");
}

#[tokio::test]
async fn a_group_that_becomes_a_supergroup_keeps_its_projects() {
    let w = group_world(|_| {}).await;
    const SUPERGROUP: i64 = -1_000_000_000_700;
    w.tg.send_text_in(GROUP, USER, "/new kept");
    expect_in(
        &w.tg,
        GROUP,
        |m| m.text.contains("Created and selected kept"),
        "created",
    )
    .await;

    w.tg.migrate_to_supergroup(GROUP, SUPERGROUP, USER);
    // A member not on the user allowlist: the supergroup is allowed as the group was.
    w.tg.send_text_in(SUPERGROUP, MEMBER, "/project");
    let shown = expect_in(
        &w.tg,
        SUPERGROUP,
        |m| m.text.contains("📁 kept"),
        "the project",
    )
    .await;
    assert!(shown.text.contains("no models yet"), "{}", shown.text);
    w.tg.send_text_in(SUPERGROUP, MEMBER, "/projects");
    expect_in(
        &w.tg,
        SUPERGROUP,
        |m| m.text.contains("▶️ kept"),
        "listed, selected",
    )
    .await;
    assert_eq!(
        w.projects_of(&format!("telegram-group:{GROUP}")).await,
        ["kept"]
    );
}

#[tokio::test]
async fn any_member_may_stop_the_groups_run() {
    let w = group_world(|_| {}).await;
    w.ts.llm.script(
        "fake/slow",
        Script::new()
            .text(sentences("Slow", 200))
            .token_pace(Duration::from_millis(50)),
    );
    w.tg.send_text_in(GROUP, USER, "/new long fake/slow");
    expect_in(
        &w.tg,
        GROUP,
        |m| m.text.contains("Created and selected long"),
        "created",
    )
    .await;
    w.tg.send_text_in(GROUP, USER, "/open go on and on?");
    expect_in(
        &w.tg,
        GROUP,
        |m| m.text.contains("Slow point 1."),
        "streaming",
    )
    .await;

    w.tg.send_text_in(GROUP, MEMBER, "/stop");
    expect_in(
        &w.tg,
        GROUP,
        |m| m.text.starts_with("⏹ Stopped."),
        "stopped",
    )
    .await;
    let discussions = w.discussions_of(&format!("telegram-group:{GROUP}")).await;
    assert_eq!(
        discussions[0].status,
        moai_proto::v1::DiscussionStatus::Stopped as i32,
        "the member stopped the run A started"
    );
    let answer = final_answers(&w.tg, GROUP, "fake/slow", 1).await.remove(0);
    assert!(answer.text.ends_with("⏹ stopped"), "{}", answer.text);
}
