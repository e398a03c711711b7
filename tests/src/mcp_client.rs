//! An MCP client for tests (rmcp's own): calls a tool with a progress
//! token and keeps every progress notification it receives.

use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientRequest, ProgressNotificationParam, Request,
    ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RunningService};
use rmcp::{ClientHandler, RoleClient};

/// Keeps the messages of the progress notifications it gets.
#[derive(Clone, Default)]
pub struct ProgressLog {
    pub messages: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for ProgressLog {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let message = params.message.unwrap_or_default();
        self.messages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message);
    }
}

/// A running client.
pub type McpClient = RunningService<RoleClient, ProgressLog>;

/// Calls `tool` with `arguments` (a JSON object) and a progress token.
pub async fn call(
    client: &McpClient,
    tool: &'static str,
    arguments: serde_json::Value,
) -> CallToolResult {
    let params = CallToolRequestParams::new(tool).with_arguments(
        arguments
            .as_object()
            .cloned()
            .expect("arguments are a JSON object"),
    );
    let handle = client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(params)),
            PeerRequestOptions::no_options(),
        )
        .await
        .expect("the call is sent");
    match handle.await_response().await.expect("a response") {
        ServerResult::CallToolResult(result) => result,
        other => panic!("not a tool result: {other:?}"),
    }
}

/// The text of a tool result.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The progress messages received so far.
pub fn progress(client: &McpClient) -> Vec<String> {
    client
        .service()
        .messages
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// The progress messages once there are at least `n` (the client handles
/// notifications on its own task, so they may trail the response a little);
/// what arrived if `within` passes first.
pub async fn wait_progress(
    client: &McpClient,
    n: usize,
    within: std::time::Duration,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let got = progress(client);
        if got.len() >= n || tokio::time::Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
