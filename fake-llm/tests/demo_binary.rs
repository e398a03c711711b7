//! The `moai-fake-llm` binary as `moai demo` runs it: the demo models listed,
//! an answer in the model's own voice about the question, stopped by SIGTERM.
//! (This test is also why `cargo test --workspace` builds the binary that the
//! CLI's quick-start test runs.)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 exchange on its own connection; the JSON body of the reply.
/// (Plain HTTP by hand: in the workspace build reqwest has no TLS provider.)
async fn exchange(
    base: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let rest = base.strip_prefix("http://").expect("http URL");
    let (host, prefix) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let request = format!(
        "{method} /{prefix}{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.expect("read");
    let reply = String::from_utf8(reply).expect("utf-8");
    let (head, body) = reply.split_once("\r\n\r\n").expect("head and body");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "a plain JSON reply: {head}"
    );
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn the_demo_server_lists_its_models_answers_the_question_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_moai-fake-llm"))
        .args([
            "--demo",
            "--port",
            "0",
            "--first-token-ms",
            "0",
            "--pace-ms",
            "0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("moai-fake-llm starts");
    let stdout = child.stdout.take().expect("stdout");
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .expect("reader")
    .expect("first line");
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_owned();

    let models = exchange(&base, "GET", "/models", None).await;
    let ids: Vec<&str> = models["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    for model in ["demo/alpha", "demo/beta", "demo/gamma"] {
        assert!(ids.contains(&model), "{model} in {ids:?}");
    }

    let mut answers = Vec::new();
    for model in ["demo/alpha", "demo/beta"] {
        let request = serde_json::json!({
            "model": model,
            "stream": false,
            "messages": [{"role": "user", "content": "Tabs or spaces?"}],
        });
        let reply = exchange(&base, "POST", "/chat/completions", Some(request)).await;
        let text = reply["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_else(|| panic!("no answer in {reply}"))
            .to_owned();
        assert!(
            text.contains("Tabs or spaces?"),
            "{model} answers the question: {text}"
        );
        answers.push(text);
    }
    assert_ne!(answers[0], answers[1], "each model speaks in its own voice");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || child.wait()),
    )
    .await
    .expect("it stops after SIGTERM")
    .expect("waiter")
    .expect("status");
    assert!(status.success(), "a clean exit on SIGTERM: {status:?}");
}
