//! The first ten minutes: the README's quick start as written, diagnoses in
//! the right order, `stop` that changes nothing when nothing runs, the
//! current discussion per project, and a detach on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use moai_proto::v1::{DeleteProjectRequest, DiscussionStatus, GetDiscussionRequest};
use moai_tests::fake_llm::Script;
use moai_tests::server::TestServer;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{MOAI, Moai, headers, server_with_project};

/// The first ```sh block of the README's "Quick start" section.
fn quick_start_block() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## Quick start\n")
        .nth(1)
        .expect("a Quick start section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block in Quick start");
    block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_quick_start_builds_once_and_its_demo_runs_a_roundtable() {
    let lines = quick_start_block();
    let builds: Vec<&String> = lines.iter().filter(|l| l.starts_with("cargo ")).collect();
    assert_eq!(builds.len(), 1, "one cargo command: {lines:?}");
    assert!(
        builds[0].starts_with("cargo build --release "),
        "one profile: {}",
        builds[0]
    );
    for bin in moai_cli::commands::demo::BINARIES {
        assert!(
            builds[0].contains(&format!("--bin {bin} "))
                || builds[0].ends_with(&format!("--bin {bin}")),
            "the build makes {bin}, which the demo needs: {}",
            builds[0]
        );
    }
    // The rest runs what that build made; here, what `cargo test` built.
    let dir = std::path::Path::new(MOAI).parent().expect("bin dir");
    for bin in moai_cli::commands::demo::BINARIES {
        assert!(
            dir.join(bin).exists(),
            "{bin} is missing next to {MOAI}: `cargo test --workspace` (or `cargo build --bins`) builds it"
        );
    }
    let moai = Moai::new("http://127.0.0.1:9", "unused");
    let mut ran = 0;
    for line in lines.iter().filter(|l| !l.starts_with("cargo ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            words.first(),
            Some(&"./target/release/moai"),
            "the quick start runs the built moai: {line}"
        );
        let run = moai.run(&words[1..]).await;
        assert_eq!(run.code, 0, "{line}: {run:?}");
        ran += 1;

        // Three voices answer, then each hears the others in a round in turns.
        let said = headers(&run.stdout);
        assert_eq!(said.len(), 6, "{run:?}");
        assert!(run.stdout.contains("# Round 2"), "{run:?}");
        let round_two = run.stdout.split("# Round 2").nth(1).unwrap_or_default();
        let answers: Vec<&str> = round_two.split("## demo/").skip(1).collect();
        assert_eq!(answers.len(), 3, "{round_two}");
        for answer in &answers {
            let (me, text) = answer.split_once('\n').unwrap_or_default();
            let others = ["alpha", "beta", "gamma"]
                .into_iter()
                .filter(|m| *m != me.trim());
            assert!(
                others
                    .into_iter()
                    .any(|o| text.contains(&format!("**{o}**"))),
                "{me} answers another speaker by name: {text}"
            );
            assert!(
                text.contains("Tabs or spaces?"),
                "{me} answers the question"
            );
        }
        assert_ne!(answers[0].split_once('\n'), answers[1].split_once('\n'));
        assert!(!run.stdout.contains("INFO"), "no server log in the output");
        let logs = moai.data.path().join("demo");
        let server_log = std::fs::read_to_string(logs.join("server.log")).expect("server.log");
        assert!(!server_log.is_empty(), "the server logged to its file");
    }
    assert_eq!(ran, 1, "the quick start runs the demo: {lines:?}");
}

#[tokio::test]
async fn an_unreachable_server_is_said_before_a_missing_key() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let moai = Moai::new(&format!("http://127.0.0.1:{port}"), "");

    let run = moai.run(&["project", "list"]).await;

    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("is moai-server running?"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_file_says_the_server_never_started_here() {
    let ts = TestServer::spawn().await;
    let moai = Moai::new(&ts.url, "");

    let run = moai.run(&["project", "list"]).await;

    assert_eq!(run.code, 4, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(
        run.stderr.contains("has not started on this machine"),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_with_nothing_running_changes_nothing_and_close_ends_it() {
    let (_ts, moai) = server_with_project(&[("v/a", "A.")]).await;
    moai.ok(&["open", "Keep going"]).await;

    let stop = moai.ok(&["stop"]).await;

    assert!(stop.stderr.contains("Nothing is running"), "{stop:?}");
    assert!(stop.stderr.contains("moai stop --close"), "{stop:?}");
    moai.ok(&["next"]).await;

    let close = moai.ok(&["stop", "--close"]).await;
    assert!(close.stderr.contains("for good"), "{close:?}");
    let next = moai.run(&["next"]).await;
    assert_eq!(
        next.code, 7,
        "a closed discussion takes no more rounds: {next:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_project_keeps_its_own_current_discussion() {
    let (ts, moai) = server_with_project(&[("v/a", "A.")]).await;
    moai.ok(&["project", "create", "other", "-m", "v/a"]).await;
    moai.ok(&["open", "Question here"]).await;

    moai.ok(&["-p", "other", "open", "Question there"]).await;

    let here = moai.ok(&["show"]).await;
    assert!(here.stdout.starts_with("# Question here"), "{here:?}");
    let there = moai.ok(&["-p", "other", "show"]).await;
    assert!(there.stdout.starts_with("# Question there"), "{there:?}");
    let status = moai.ok(&["status"]).await;
    assert!(status.stdout.contains("(2 projects)"), "{status:?}");

    // The current project goes away behind the CLI's back.
    let projects = moai.ok(&["--json", "project", "show"]).await;
    let id = serde_json::from_str::<serde_json::Value>(&projects.stdout).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    ts.projects()
        .await
        .delete_project(DeleteProjectRequest { project_id: id })
        .await
        .expect("deleted");
    let gone = moai.run(&["show"]).await;
    assert_eq!(gone.code, 2, "{gone:?}");
    assert!(
        gone.stderr.contains("no longer exists; forgot it"),
        "{gone:?}"
    );
    assert!(
        gone.stderr.contains("moai open"),
        "says what to do: {gone:?}"
    );
    let again = moai.run(&["show"]).await;
    assert!(
        !again.stderr.contains("no longer exists"),
        "forgotten: {again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_with_an_unknown_model_lists_the_project_models() {
    let (_ts, moai) = server_with_project(&[("v/alpha", "A."), ("v/beta", "B.")]).await;
    moai.ok(&["open", "Hello"]).await;

    let run = moai.run(&["ask", "@nosuch", "hi"]).await;

    assert_eq!(run.code, 5, "{run:?}");
    assert!(run.stderr.contains("v/alpha, v/beta"), "{run:?}");
    let one = moai.ok(&["status"]).await;
    assert!(one.stdout.contains("(1 project)"), "{one:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_detaches_like_ctrl_c_and_the_run_goes_on() {
    let ts = TestServer::spawn().await;
    ts.llm.script(
        "v/slow",
        Script::new()
            .first_token_delay(Duration::from_millis(1_500))
            .text("Worth the wait."),
    );
    let moai = Moai::for_server(&ts);
    moai.ok(&["project", "create", "patience", "-m", "v/slow"])
        .await;
    let mut running = moai
        .command(&["open", "--json", "Take your time"])
        .spawn()
        .expect("moai open starts");
    // The first event on stdout: the CLI is following the run.
    let mut stdout = BufReader::new(running.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
        .await
        .expect("an event within 20s")
        .expect("read")
        .expect("a line");
    let id = serde_json::from_str::<serde_json::Value>(&first).expect("json")["discussionId"]
        .as_str()
        .expect("id")
        .to_string();
    let pid = running.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .stdout(Stdio::null())
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let output = tokio::time::timeout(Duration::from_secs(20), running.wait_with_output())
        .await
        .expect("moai exits after SIGTERM")
        .expect("output");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("Detached; the run goes on"), "{stderr}");
    assert!(stderr.contains(&format!("moai watch {id}")), "{stderr}");
    let watched = moai.ok(&["watch", &id]).await;
    assert!(watched.stdout.contains("Worth the wait."), "{watched:?}");
    let d = ts
        .discussions()
        .await
        .get_discussion(GetDiscussionRequest { discussion_id: id })
        .await
        .expect("get")
        .into_inner()
        .discussion
        .expect("discussion");
    assert_eq!(d.status, DiscussionStatus::Idle as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_after_a_seq_counts_the_whole_run_in_its_footer() {
    let ts = TestServer::spawn().await;
    ts.llm.script("v/good", Script::new().text("Fine."));
    ts.llm.script("v/bad", Script::new().fail(500));
    let moai = Moai::for_server(&ts);
    moai.ok(&["project", "create", "mixed", "-m", "v/good,v/bad"])
        .await;
    let run = moai
        .ok(&["discuss", "--json", "--rounds", "2", "Two rounds"])
        .await;
    let events: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let seq = |e: &serde_json::Value| -> u64 {
        e["seq"].as_str().and_then(|s| s.parse().ok()).expect("seq")
    };
    let id = events[0]["discussionId"].as_str().expect("id").to_string();
    // Detached after the run's first answer.
    let after = events
        .iter()
        .find(|e| e.get("messageCompleted").is_some() || e.get("messageFailed").is_some())
        .map(seq)
        .expect("an answer");

    let watched = moai
        .ok(&["watch", &id, "--after", &after.to_string()])
        .await;

    assert_eq!(
        headers(&watched.stdout).len(),
        1,
        "only round 2's answer is shown again: {watched:?}"
    );
    assert!(
        watched.stderr.contains("2 of 4 answers; failed: v/bad ×2"),
        "the footer counts the whole run: {watched:?}"
    );
}

#[tokio::test]
async fn status_wait_gives_a_starting_server_time_then_says_it_is_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let moai = Moai::new(&format!("http://127.0.0.1:{port}"), "");
    let started = std::time::Instant::now();

    let run = moai.run(&["status", "--wait", "1"]).await;

    assert_eq!(run.code, 3, "{run:?}");
    assert!(started.elapsed() >= Duration::from_secs(1), "it waited");
    assert!(run.stdout.contains("is moai-server running?"), "{run:?}");
}
