//! `moai mcp`: rmcp's client runs the real binary as a child process and
//! talks MCP to it over stdio; the binary calls the test server over gRPC.

use std::time::Duration;

use moai_tests::fake_llm::Script;
use moai_tests::mcp_client::{McpClient, ProgressLog, call, text, wait_progress};
use moai_tests::server::TestServer;
use rmcp::ServiceExt as _;
use rmcp::transport::TokioChildProcess;
use serde_json::json;

use crate::support::Moai;

async fn start(moai: &Moai) -> McpClient {
    start_with(moai, &["mcp"]).await
}

async fn start_with(moai: &Moai, args: &[&str]) -> McpClient {
    let (transport, _) = TokioChildProcess::builder(moai.command(args))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("moai mcp starts");
    ProgressLog::default()
        .serve(transport)
        .await
        .expect("the MCP handshake")
}

async fn project(moai: &Moai, ts: &TestServer, name: &str, models: &[(&str, &str)]) {
    for (model, answer) in models {
        ts.llm.script(model, Script::new().text(*answer));
    }
    let mut args = vec!["project", "create", name];
    for (model, _) in models {
        args.extend(["--model", model]);
    }
    moai.ok(&args).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_council_over_stdio_labels_answers_reports_progress_and_summarizes() {
    let ts = TestServer::spawn().await;
    let moai = Moai::for_server(&ts);
    project(
        &moai,
        &ts,
        "council",
        &[
            ("v/alpha", "Alpha thinks yes."),
            ("v/beta", "Beta thinks no."),
        ],
    )
    .await;
    let client = start(&moai).await;

    let tools = client.list_all_tools().await.expect("tools");
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["ask_council", "discuss", "get_discussion", "list_projects"]
    );

    let listed = text(&call(&client, "list_projects", json!({})).await);
    assert!(
        listed.contains("council") && listed.contains("v/alpha, v/beta"),
        "{listed}"
    );

    let result = call(
        &client,
        "ask_council",
        json!({"question": "Should we?", "project": "council"}),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let answer = text(&result);
    assert!(
        answer.contains("### v/alpha\n\nAlpha thinks yes."),
        "{answer}"
    );
    assert!(answer.contains("### v/beta\n\nBeta thinks no."), "{answer}");
    // The summary is by the first model, after both answers.
    let consensus = answer
        .find("## Consensus\n\n### v/alpha")
        .expect("a consensus");
    assert!(
        answer
            .find("Beta thinks no.")
            .is_some_and(|b| b < consensus)
    );
    let progress = wait_progress(&client, 3, Duration::from_secs(10)).await;
    assert_eq!(
        progress.iter().filter(|m| m.ends_with(" answered")).count(),
        3,
        "{progress:?}"
    );
    assert!(
        progress.contains(&"v/beta answered".to_owned()),
        "{progress:?}"
    );

    // The discussion is stored: `moai show` finds it.
    let id = answer
        .split_whitespace()
        .nth(1)
        .expect("Discussion <id>")
        .to_owned();
    let shown = moai.ok(&["show", &id]).await;
    assert!(shown.stdout.contains("Beta thinks no."), "{shown:?}");
    let again = text(&call(&client, "get_discussion", json!({"id": id})).await);
    assert!(again.contains("Alpha thinks yes."), "{again}");
    let _ = client.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discuss_over_stdio_runs_the_rounds_asked_for() {
    let ts = TestServer::spawn().await;
    let moai = Moai::for_server(&ts);
    project(
        &moai,
        &ts,
        "debate",
        &[("v/pro", "Pro."), ("v/con", "Con.")],
    )
    .await;
    let client = start(&moai).await;

    let result = call(&client, "discuss", json!({"topic": "Tabs?", "rounds": 2})).await;
    let answer = text(&result);
    assert!(
        answer.contains("## Round 1") && answer.contains("## Round 2"),
        "{answer}"
    );
    assert!(!answer.contains("## Round 3"), "{answer}");
    assert!(answer.contains("## Consensus"), "{answer}");
    assert!(
        answer.contains("(project debate)") && !answer.contains("Other."),
        "{answer}"
    );
    // Two members in two rounds, and the summary.
    let progress = wait_progress(&client, 5, Duration::from_secs(10)).await;
    assert_eq!(progress.len(), 5, "{progress:?}");
    let _ = client.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_errors_say_what_is_wrong() {
    let ts = TestServer::spawn().await;
    let moai = Moai::for_server(&ts);
    let client = start(&moai).await;

    let none = call(&client, "ask_council", json!({"question": "Anyone?"})).await;
    assert_eq!(none.is_error, Some(true));
    assert!(text(&none).contains("no project"), "{none:?}");
    let missing = call(
        &client,
        "get_discussion",
        json!({"id": "no-such-discussion"}),
    )
    .await;
    assert_eq!(missing.is_error, Some(true));
    assert!(text(&missing).contains("not found"), "{missing:?}");

    // No member answers: the tool fails, naming why, and no summary runs.
    project(&moai, &ts, "down", &[("v/down", "")]).await;
    ts.llm.script("v/down", Script::new().fail(400));
    let failed = call(
        &client,
        "ask_council",
        json!({"question": "Up?", "project": "down"}),
    )
    .await;
    assert_eq!(failed.is_error, Some(true));
    let said = text(&failed);
    assert!(
        said.contains("no model of project down answered") && said.contains("v/down"),
        "{said}"
    );
    assert_eq!(
        ts.llm.requests_for("v/down").len(),
        1,
        "no summary was asked for"
    );
    let _ = client.cancel().await;
}
