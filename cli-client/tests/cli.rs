//! End-to-end tests of the real `moai` binary against the real server (in
//! process, fresh SQLite, fake model upstream), piped, with `--json`, and in a
//! pseudo-terminal.

use std::time::Duration;

use clap::CommandFactory;
use moai_cli::args::Cli;
use moai_proto::v1::discussion_event::Payload;
use moai_proto::v1::{
    DiscussionStatus, GetDiscussionRequest, ListDiscussionsRequest, WatchDiscussionRequest,
};
use moai_tests::fake_llm::Script;
use moai_tests::server::{Limits, TestOptions, TestServer};
use moai_tests::wait;

#[path = "cli/council.rs"]
mod council;
#[path = "cli/first_minutes.rs"]
mod first_minutes;
#[path = "cli/mcp.rs"]
mod mcp;
mod support;
#[path = "cli/terminal.rs"]
mod terminal;
#[path = "cli/tls.rs"]
mod tls;

use support::{Moai, headers, server_with_project};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_prints_every_answer_piped_without_escape_codes() {
    let (_ts, moai) = server_with_project(&[
        ("v/alpha", "Alpha says **four**."),
        ("v/beta", "Beta:\n\n- four"),
    ])
    .await;

    let run = moai.ok(&["open", "What is 2+2?"]).await;

    let mut got = headers(&run.stdout);
    got.sort_unstable();
    assert_eq!(got, ["v/alpha", "v/beta"], "{run:?}");
    assert!(run.stdout.contains("Alpha says **four**."));
    assert!(run.stdout.contains("Beta:\n\n- four"));
    assert!(
        !run.stdout.contains('\x1b') && !run.stderr.contains('\x1b'),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_is_one_event_per_line_with_a_completion_per_model() {
    let (_ts, moai) = server_with_project(&[("v/a", "A."), ("v/b", "B."), ("v/c", "C.")]).await;

    let run = moai.ok(&["open", "--json", "Go"]).await;

    let events: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let mut completed: Vec<&str> = events
        .iter()
        .filter_map(|e| e["messageCompleted"]["message"]["model"].as_str())
        .collect();
    completed.sort_unstable();
    assert_eq!(completed, ["v/a", "v/b", "v/c"]);
    assert!(events.iter().all(|e| e["discussionId"].is_string()));
    assert!(events.iter().any(|e| e.get("roundStarted").is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discuss_prints_the_answers_in_speaking_order() {
    let ts = TestServer::spawn().await;
    // The first speaker is the slowest: turns must still follow the project's order.
    ts.llm.script(
        "v/first",
        Script::new()
            .first_token_delay(Duration::from_millis(150))
            .text("First speaks."),
    );
    ts.llm
        .script("v/second", Script::new().text("Second replies."));
    let moai = Moai::for_server(&ts);
    moai.ok(&["project", "create", "turns", "-m", "v/first,v/second"])
        .await;

    let run = moai
        .ok(&[
            "--project",
            "turns",
            "discuss",
            "--rounds",
            "2",
            "Tabs or spaces?",
        ])
        .await;

    assert_eq!(
        headers(&run.stdout),
        ["v/first", "v/second", "v/first", "v/second"],
        "{run:?}"
    );
    let rounds: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("# Round"))
        .collect();
    assert_eq!(rounds, ["# Round 1", "# Round 2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_the_markdown_file() {
    let (_ts, moai) = server_with_project(&[("v/a", "Exported answer.")]).await;
    moai.ok(&["open", "Export me"]).await;
    let file = moai.config.path().join("out.md");
    let file_arg = file.to_str().expect("utf-8 path");

    let run = moai.ok(&["export", "-o", file_arg]).await;

    let markdown = std::fs::read_to_string(&file).expect("the file was written");
    assert!(markdown.contains("Export me"), "{markdown}");
    assert!(markdown.contains("Exported answer."), "{markdown}");
    assert!(run.stderr.contains("out.md"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_model_is_named_but_the_round_succeeds() {
    let ts = TestServer::spawn().await;
    ts.llm.script("v/good", Script::new().text("Fine."));
    ts.llm.script("v/bad", Script::new().fail(500));
    let moai = Moai::for_server(&ts);
    moai.ok(&["project", "create", "mixed", "-m", "v/good", "-m", "v/bad"])
        .await;

    let run = moai.ok(&["open", "Anyone?"]).await;

    assert_eq!(headers(&run.stdout), ["v/good"]);
    assert!(run.stderr.contains("v/bad failed"), "{run:?}");
    assert!(run.stderr.contains("1 of 2 models answered"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_summarize_show_and_discussions_work_on_the_current_discussion() {
    let (_ts, moai) = server_with_project(&[("v/alpha", "Alpha."), ("v/beta", "Beta.")]).await;
    moai.ok(&["open", "Start here"]).await;

    let ask = moai.ok(&["ask", "@beta", "and you?"]).await;
    assert_eq!(headers(&ask.stdout), ["v/beta"], "{ask:?}");

    let summary = moai.ok(&["summarize", "--model", "alpha"]).await;
    assert!(summary.stdout.contains("Alpha."), "{summary:?}");

    let show = moai.ok(&["show"]).await;
    assert!(show.stdout.starts_with("# Start here"), "{show:?}");
    let listed = moai.ok(&["discussions"]).await;
    assert!(listed.stdout.contains("Start here"), "{listed:?}");
    let everywhere = moai.ok(&["discussions", "--all"]).await;
    assert!(
        everywhere.stdout.contains("PROJECT") && everywhere.stdout.contains("roundtable"),
        "{everywhere:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_exits_4_with_one_line() {
    let ts = TestServer::spawn().await;
    let moai = Moai::new(&ts.url, "not-a-key");

    let run = moai.run(&["project", "list"]).await;

    assert_eq!(run.code, 4, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(run.stderr.contains("rejected the API key"), "{run:?}");
    assert!(run.stderr.contains("MOAI_API_KEY"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_project_exits_5() {
    let ts = TestServer::spawn().await;
    let moai = Moai::for_server(&ts);

    let run = moai.run(&["use", "nope"]).await;

    assert_eq!(run.code, 5, "{run:?}");
    assert!(
        run.stderr.contains("no project named or with id 'nope'"),
        "{run:?}"
    );
}

#[tokio::test]
async fn an_unreachable_server_exits_3_with_one_line() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let moai = Moai::new(&format!("http://127.0.0.1:{port}"), "any");

    let run = moai.run(&["project", "list"]).await;

    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(
        run.stderr.contains("cannot reach the moai server"),
        "{run:?}"
    );
}

#[tokio::test]
async fn help_is_complete_for_every_command() {
    let moai = Moai::new("http://127.0.0.1:9", "k");
    let top = moai.ok(&["--help"]).await;
    assert!(top.stdout.contains("EXIT CODES"), "{top:?}");

    let mut paths: Vec<Vec<String>> = Vec::new();
    fn walk(cmd: &clap::Command, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands() {
            let mut path = prefix.clone();
            path.push(sub.get_name().to_string());
            out.push(path.clone());
            walk(sub, path, out);
        }
    }
    let cli = Cli::command();
    walk(&cli, Vec::new(), &mut paths);
    for sub in cli.get_subcommands() {
        assert!(
            top.stdout.contains(sub.get_name()),
            "--help lists {}",
            sub.get_name()
        );
    }
    for path in paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let run = moai.ok(&args).await;
        assert!(run.stdout.contains("Usage: moai"), "{args:?}: {run:?}");
        let mut cmd = &cli;
        for name in &path {
            cmd = cmd.find_subcommand(name).expect("subcommand");
        }
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(
                    run.stdout.contains(&format!("--{long}")),
                    "{args:?} documents --{long}"
                );
            }
            assert!(
                arg.get_help().is_some() || arg.is_hide_set(),
                "{args:?}: {} has no help",
                arg.get_id()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discuss_without_a_topic_continues_the_open_question() {
    let (_ts, moai) = server_with_project(&[("v/a", "A."), ("v/b", "B.")]).await;
    moai.ok(&["open", "First the question"]).await;

    let run = moai.ok(&["discuss", "--rounds", "1"]).await;

    assert_eq!(headers(&run.stdout), ["v/a", "v/b"], "{run:?}");
    assert!(run.stdout.starts_with("# Round 2"), "{run:?}");
    let listed = moai.ok(&["discussions", "--json"]).await;
    assert_eq!(
        listed.stdout.lines().count(),
        1,
        "one discussion: {listed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_cancels_a_running_round_from_another_terminal() {
    let ts = TestServer::spawn().await;
    let slow = Script::new()
        .token_pace(Duration::from_millis(400))
        .text("one two three four five six seven eight nine ten eleven twelve");
    ts.llm.script("v/slow", slow);
    let moai = Moai::for_server(&ts);
    moai.ok(&["project", "create", "long", "-m", "v/slow"])
        .await;
    let running = moai
        .command(&["open", "Talk a lot"])
        .spawn()
        .expect("moai open starts");

    let id = wait::until_some(Duration::from_secs(60), "the run starts", async || {
        let listed = moai.ok(&["discussions", "--json"]).await;
        listed.stdout.lines().find_map(|line| {
            let d: serde_json::Value = serde_json::from_str(line).expect("json");
            (d["status"] == "DISCUSSION_STATUS_RUNNING")
                .then(|| d["id"].as_str().map(str::to_string))
                .flatten()
        })
    })
    .await;
    // Stop once the answer has begun: the server has streamed its first text.
    let mut watch = ts
        .discussions()
        .await
        .watch_discussion(WatchDiscussionRequest {
            discussion_id: id.clone(),
            after_seq: 0,
        })
        .await
        .expect("watch")
        .into_inner();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(response) = watch.message().await.expect("a healthy watch") {
            if let Some(Payload::MessageDelta(_)) = response.event.and_then(|e| e.payload) {
                return;
            }
        }
        panic!("the run ended before any text arrived");
    })
    .await
    .expect("text arrives within 20s");
    let stop = moai.ok(&["stop", &id]).await;
    let output = tokio::time::timeout(Duration::from_secs(20), running.wait_with_output())
        .await
        .expect("moai open ends after the stop")
        .expect("output");

    assert!(stop.stderr.contains("Stopped discussion"), "{stop:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("## v/slow") && stdout.contains("(interrupted)"),
        "{stdout}"
    );
    let next = moai.run(&["next", &id]).await;
    assert_eq!(
        next.code, 7,
        "a stopped discussion takes no more rounds: {next:?}"
    );
    assert_eq!(next.stderr.lines().count(), 1, "{next:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_exits_6_and_a_missing_discussion_exits_2() {
    let ts = TestServer::spawn().await;
    let moai = Moai::for_server(&ts);

    let bad = moai
        .run(&["project", "create", "bad", "-m", "no-vendor"])
        .await;
    assert_eq!(bad.code, 6, "{bad:?}");
    assert!(bad.stderr.starts_with("error: invalid input:"), "{bad:?}");

    let none = moai.run(&["next"]).await;
    assert_eq!(none.code, 2, "{none:?}");
    assert!(none.stderr.contains("no current discussion"), "{none:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_commands_create_edit_rename_and_delete() {
    let ts = TestServer::spawn().await;
    let moai = Moai::for_server(&ts);
    let json = |run: &support::Run| -> serde_json::Value {
        serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {run:?}"))
    };

    moai.ok(&["project", "create", "Ideas", "-m", "v/a"]).await;
    moai.ok(&["project", "models", "add", "v/b", "v/c"]).await;
    moai.ok(&["project", "models", "remove", "v/a"]).await;
    moai.ok(&[
        "project",
        "edit",
        "--system-prompt",
        "Be brief.",
        "--summarizer",
        "v/c",
    ])
    .await;
    moai.ok(&["project", "rename", "ideas", "Better ideas"])
        .await;

    let shown = json(&moai.ok(&["--json", "project", "show"]).await);
    assert_eq!(shown["name"], "Better ideas");
    assert_eq!(shown["models"], serde_json::json!(["v/b", "v/c"]));
    assert_eq!(shown["systemPrompt"], "Be brief.");
    assert_eq!(shown["summarizerModel"], "v/c");
    let listed = moai.ok(&["project", "list"]).await;
    assert!(
        listed.stdout.contains("* ") || listed.stdout.starts_with('*'),
        "current marked: {listed:?}"
    );

    moai.ok(&["project", "delete", "Better ideas", "--yes"])
        .await;
    let gone = moai.run(&["project", "show", "Better ideas"]).await;
    assert_eq!(gone.code, 5, "{gone:?}");
    let none = moai.ok(&["--json", "project", "list"]).await;
    assert_eq!(none.stdout, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_fell_behind_re_attaches_and_misses_nothing() {
    let ts = TestServer::spawn_with(TestOptions {
        limits: Limits {
            subscriber_buffer: 16,
            ..Limits::default()
        },
        ..Default::default()
    })
    .await;
    // ~3 MB in 1,500 chunks: more than the client's HTTP/2 windows hold
    // (2 MiB a stream), less than gRPC's 4 MiB message limit.
    let text: String = (0..1500)
        .map(|i| format!(" w{i}{}", "x".repeat(2000)))
        .collect();
    ts.llm.script(
        "v/talker",
        Script::new()
            .text(text.clone())
            .token_pace(Duration::from_millis(1)),
    );
    let moai = Moai::for_server(&ts);
    moai.ok(&["project", "create", "long", "-m", "v/talker"])
        .await;
    // Nobody reads its output for a while: the pipe fills, the CLI stops
    // reading the stream, and the server lets it go.
    let mut running = moai.command(&["open", "--json", "Talk a lot"]);
    running.env("MOAI_LOG", "moai_cli=info");
    let running = running.spawn().expect("moai open starts");
    // The whole answer streams on the server while the CLI reads none of it,
    // so by the run's end its subscriber is far more than 16 events behind.
    let id = wait::until_some(Duration::from_secs(60), "the run starts", async || {
        let listed = ts
            .discussions()
            .await
            .list_discussions(ListDiscussionsRequest::default())
            .await
            .expect("list")
            .into_inner();
        listed.discussions.first().map(|d| d.id.clone())
    })
    .await;
    wait::until(Duration::from_secs(60), "the run ends", async || {
        let d = ts
            .discussions()
            .await
            .get_discussion(GetDiscussionRequest {
                discussion_id: id.clone(),
            })
            .await
            .expect("get")
            .into_inner()
            .discussion
            .expect("discussion");
        d.status != DiscussionStatus::Running as i32
    })
    .await;
    let output = tokio::time::timeout(Duration::from_secs(60), running.wait_with_output())
        .await
        .expect("moai open ends")
        .expect("output");

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("re-attaching"),
        "it did fall behind: {stderr}"
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| {
            e["seq"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| e["seq"].as_u64())
                .expect("seq")
        })
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "no event twice, none out of order"
    );
    let content = events
        .iter()
        .find_map(|e| e["messageCompleted"]["message"]["content"].as_str())
        .expect("the answer completed");
    assert_eq!(content, text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_shows_the_spend_and_a_budget_refusal_names_the_reset() {
    let ts = TestServer::spawn_with(TestOptions {
        settings: Box::new(|s| {
            s.budgets.daily_usd = Some(1.5);
            s.llm.prices.insert(
                "v/paid".into(),
                moai_tests::server::ModelPrice {
                    prompt_per_million: 0.0,
                    completion_per_million: 1000.0,
                },
            );
        }),
        ..Default::default()
    })
    .await;
    ts.llm
        .script("v/paid", Script::new().text("Paid.").usage(10, 5, 1.0));
    let moai = support::Moai::for_server(&ts);
    moai.ok(&["project", "create", "paid", "--model", "v/paid"])
        .await;
    moai.ok(&["use", "paid"]).await;
    moai.ok(&["open", "What does it cost?"]).await;

    let table = moai.ok(&["usage"]).await;
    assert!(table.stdout.contains("alice"), "{table:?}");
    assert!(table.stdout.contains("$1.50 ($0.50 left)"), "{table:?}");
    assert!(table.stdout.contains("v/paid"), "{table:?}");
    let json = moai.ok(&["usage", "--json"]).await;
    let line: serde_json::Value =
        serde_json::from_str(json.stdout.trim()).expect("one JSON object");
    assert_eq!(line["principal"], "alice");
    assert_eq!(line["spentTodayUsd"], 1.0);
    assert_eq!(line["dailyBudgetUsd"], 1.5);

    let refused = moai.run(&["open", "Once more?"]).await;
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("daily budget of $1.50 reached ($1.00 spent); resets at 00:00 UTC"),
        "{refused:?}"
    );
    let denied = moai.run(&["usage", "--principal", "bob"]).await;
    assert_ne!(denied.code, 0, "{denied:?}");
}
