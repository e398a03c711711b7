//! `/mcp` on the HTTP listener, with rmcp's streamable HTTP client.

use std::time::Duration;

use moai_tests::mcp_client::{ProgressLog, call, text, wait_progress};
use moai_tests::server::{Backend, TestServer};
use rmcp::ServiceExt as _;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;

use super::{council, members};
use crate::on_both_backends;

async fn connect(ts: &TestServer, key: &str) -> moai_tests::mcp_client::McpClient {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", ts.http_url))
            .auth_header(key),
    );
    ProgressLog::default()
        .serve(transport)
        .await
        .expect("MCP session over HTTP")
}

on_both_backends!(
    ask_council_over_http_reports_progress_and_the_consensus,
    ask_scenario
);
async fn ask_scenario(backend: Backend) {
    let ts = TestServer::spawn_on(backend).await;
    council(&ts, "mcp", "mh").await;
    let (one, two, judge) = members("mh");
    let client = connect(&ts, &ts.key).await;

    let tools = client.list_all_tools().await.expect("tools");
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["ask_council", "discuss", "get_discussion", "list_projects"]
    );

    let result = call(&client, "ask_council", json!({"question": "Over HTTP?"})).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let answer = text(&result);
    assert!(
        answer.contains(&format!("### {one}\n\nAlpha answer.")),
        "{answer}"
    );
    assert!(
        answer.contains(&format!("### {two}\n\nBeta answer.")),
        "{answer}"
    );
    assert!(
        answer.contains(&format!("## Consensus\n\n### {judge}\n\nThe consensus.")),
        "{answer}"
    );
    let progress = wait_progress(&client, 3, Duration::from_secs(10)).await;
    assert!(
        progress.contains(&format!("{one} answered")),
        "{progress:?}"
    );
    assert!(
        progress.contains(&format!("{two} answered")),
        "{progress:?}"
    );
    assert!(
        progress.contains(&format!("{judge} answered")),
        "{progress:?}"
    );

    // The id in the answer finds the stored discussion.
    let id = answer
        .split_whitespace()
        .nth(1)
        .expect("Discussion <id> ...")
        .to_owned();
    let shown = text(&call(&client, "get_discussion", json!({"id": id})).await);
    assert!(shown.contains("The consensus."), "{shown}");
    let _ = client.cancel().await;
}

#[tokio::test]
async fn mcp_over_http_needs_a_key_and_sees_only_the_callers_projects() {
    let ts = TestServer::spawn().await;
    council(&ts, "alices", "mk").await;
    let refused = reqwest::Client::new()
        .post(format!("{}/mcp", ts.http_url))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#)
        .send()
        .await
        .expect("response");
    assert_eq!(refused.status(), 401);

    let bob = connect(&ts, &ts.key_b).await;
    let listed = text(&call(&bob, "list_projects", json!({})).await);
    assert!(!listed.contains("alices"), "{listed}");
    let asked = call(
        &bob,
        "ask_council",
        json!({"question": "Mine?", "project": "alices"}),
    )
    .await;
    assert_eq!(asked.is_error, Some(true));
    assert!(text(&asked).contains("alices"));
    let _ = bob.cancel().await;
}
