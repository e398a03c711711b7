//! `/v1/models` and `/v1/chat/completions`, read by async-openai (the
//! typed client, and its bring-your-own-type calls for `reasoning_content`)
//! and by a plain HTTP client for statuses and headers.

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessageArgs, ChatCompletionRequestSystemMessageArgs,
    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequest,
    CreateChatCompletionRequestArgs, FinishReason,
};
use futures::StreamExt as _;
use moai_proto::v1::{MessageStatus, RoundMode};
use moai_tests::fake_llm::Script;
use moai_tests::server::{Backend, Limits, TestOptions, TestServer};
use serde_json::{Value, json};

use super::{council, members};
use crate::on_both_backends;
use crate::support::get;

fn client(ts: &TestServer, key: &str) -> Client<OpenAIConfig> {
    Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("{}/v1", ts.http_url))
            .with_api_key(key),
    )
}

fn request(model: &str, stream: bool) -> CreateChatCompletionRequest {
    CreateChatCompletionRequestArgs::default()
        .model(model)
        .messages([
            ChatCompletionRequestSystemMessageArgs::default()
                .content("Be brief.")
                .build()
                .expect("system")
                .into(),
            ChatCompletionRequestUserMessageArgs::default()
                .content("Which editor?")
                .build()
                .expect("user")
                .into(),
            ChatCompletionRequestAssistantMessageArgs::default()
                .content("Vim, said some.")
                .build()
                .expect("assistant")
                .into(),
            ChatCompletionRequestUserMessageArgs::default()
                .content("And which shell?")
                .build()
                .expect("user")
                .into(),
        ])
        .stream(stream)
        .build()
        .expect("request")
}

on_both_backends!(models_list_the_callers_projects, models_scenario);
async fn models_scenario(backend: Backend) {
    let ts = TestServer::spawn_on(backend).await;
    council(&ts, "research", "ml").await;
    let mut models = client(&ts, &ts.key)
        .models()
        .list()
        .await
        .expect("list models");
    assert_eq!(models.object, "list");
    assert_eq!(models.data.len(), 1);
    let model = models.data.remove(0);
    assert_eq!(model.id, "moai/research");
    assert_eq!(model.object, "model");
    // Bob sees none of alice's projects.
    let bobs = client(&ts, &ts.key_b).models().list().await.expect("bob's");
    assert!(bobs.data.is_empty());
}

on_both_backends!(
    a_completion_is_the_consensus_of_a_stored_discussion,
    plain_scenario
);
async fn plain_scenario(backend: Backend) {
    let ts = TestServer::spawn_on(backend).await;
    let project = council(&ts, "research", "pl").await;
    let (one, two, judge) = members("pl");

    let answer = client(&ts, &ts.key)
        .chat()
        .create(request("moai/research", false))
        .await
        .expect("a completion");

    assert_eq!(answer.object, "chat.completion");
    assert_eq!(answer.model, "moai/research");
    let choice = &answer.choices[0];
    assert_eq!(choice.message.content.as_deref(), Some("The consensus."));
    assert_eq!(choice.finish_reason, Some(FinishReason::Stop));
    let usage = answer.usage.as_ref().expect("usage");
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (60, 18, 78),
        "summed over both members and the summary"
    );
    // The completion's id is the stored discussion's.
    let d = get(&ts, &answer.id).await;
    assert_eq!(d.project_id, project.id);
    let modes: Vec<i32> = d.rounds.iter().map(|r| r.mode).collect();
    assert_eq!(
        modes,
        [RoundMode::Parallel as i32, RoundMode::Summary as i32]
    );
    let mut answered: Vec<&str> = d.rounds[0]
        .messages
        .iter()
        .map(|m| m.model.as_str())
        .collect();
    answered.sort_unstable();
    assert_eq!(answered, [one.as_str(), two.as_str()]);
    assert!(
        d.rounds[0]
            .messages
            .iter()
            .all(|m| m.status == MessageStatus::Complete as i32)
    );
    assert_eq!(d.rounds[1].messages[0].model, judge);
    // The last user message is the question; the earlier ones its context.
    let asked = &ts.llm.requests_for(&one)[0];
    let prompt: String = asked.messages.iter().map(|m| m.content.clone()).collect();
    assert!(prompt.contains("And which shell?"), "{prompt}");
    assert!(prompt.contains("Vim, said some."), "{prompt}");
    assert!(prompt.contains("Be brief."), "{prompt}");
}

on_both_backends!(
    the_members_answers_are_reasoning_labelled_by_model,
    reasoning_scenario
);
async fn reasoning_scenario(backend: Backend) {
    let ts = TestServer::spawn_on(backend).await;
    council(&ts, "research", "rs").await;
    let (one, two, _) = members("rs");

    let response = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", ts.http_url))
        .bearer_auth(&ts.key)
        .json(&json!({"model": "moai/research", "messages": [{"role": "user", "content": "Tabs or spaces?"}]}))
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 200);
    let header = response
        .headers()
        .get("x-moai-discussion-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("the discussion id header");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["id"], header.as_str());
    let reasoning = body["choices"][0]["message"]["reasoning_content"]
        .as_str()
        .expect("reasoning_content");
    assert!(
        reasoning.contains(&format!("### {one}\n\nAlpha answer.")),
        "{reasoning}"
    );
    assert!(
        reasoning.contains(&format!("### {two}\n\nBeta answer.")),
        "{reasoning}"
    );
    assert_eq!(body["choices"][0]["message"]["content"], "The consensus.");
    assert_eq!(
        body["usage"]["cost"].as_f64().map(|c| (c * 100.0).round()),
        Some(6.0)
    );
}

on_both_backends!(
    a_streamed_completion_sends_reasoning_then_content_then_done,
    stream_scenario
);
async fn stream_scenario(backend: Backend) {
    let ts = TestServer::spawn_on(backend).await;
    council(&ts, "research", "st").await;
    let (one, two, _) = members("st");
    let client = client(&ts, &ts.key);

    // The typed client: every chunk parses; the content is the consensus.
    let mut typed = client
        .chat()
        .create_stream(request("moai/research", true))
        .await
        .expect("stream opens");
    let mut chunks = Vec::new();
    while let Some(chunk) = typed.next().await {
        chunks.push(chunk.expect("a chunk"));
    }
    let content: String = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.delta.content.clone())
        .collect();
    assert_eq!(content, "The consensus.");
    let id = chunks[0].id.clone();
    assert!(
        chunks
            .iter()
            .all(|c| c.id == id && c.object == "chat.completion.chunk")
    );
    assert_eq!(get(&ts, &id).await.rounds.len(), 2, "stored like any other");
    let usage = chunks
        .iter()
        .rev()
        .find_map(|c| c.usage.as_ref())
        .expect("usage");
    assert_eq!(usage.total_tokens, 78);
    let finishes = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.finish_reason)
        .count();
    assert_eq!(finishes, 1);

    // The same stream read raw: reasoning (labelled) first, then content.
    let mut raw = client
        .chat()
        .create_stream_byot::<Value, Value>(json!({
            "model": "moai/research",
            "stream": true,
            "messages": [{"role": "user", "content": "Tabs or spaces?"}],
        }))
        .await
        .expect("stream opens");
    let mut order = Vec::new();
    let (mut reasoning, mut content) = (String::new(), String::new());
    while let Some(chunk) = raw.next().await {
        let chunk = chunk.expect("a chunk");
        let delta = &chunk["choices"][0]["delta"];
        if let Some(r) = delta["reasoning_content"].as_str() {
            reasoning.push_str(r);
            order.push('r');
        }
        if let Some(c) = delta["content"].as_str() {
            content.push_str(c);
            order.push('c');
        }
    }
    assert!(
        reasoning.contains(&format!("### {one}\n\nAlpha answer.")),
        "{reasoning}"
    );
    assert!(
        reasoning.contains(&format!("### {two}\n\nBeta answer.")),
        "{reasoning}"
    );
    assert_eq!(content, "The consensus.");
    let first_content = order.iter().position(|k| *k == 'c').expect("content");
    assert!(
        order[..first_content].contains(&'r') && !order[first_content..].contains(&'r'),
        "reasoning comes before content: {order:?}"
    );
}

#[tokio::test]
async fn the_stream_ends_with_done() {
    let ts = TestServer::spawn().await;
    council(&ts, "research", "dn").await;
    let text = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", ts.http_url))
        .bearer_auth(&ts.key)
        .json(&json!({"model": "moai/research", "stream": true, "messages": [{"role": "user", "content": "Hi?"}]}))
        .send()
        .await
        .expect("response")
        .text()
        .await
        .expect("body");
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"), "{text}");
    assert!(
        data[..data.len() - 1]
            .iter()
            .all(|d| serde_json::from_str::<Value>(d).is_ok())
    );
}

/// Status and OpenAI error body of a raw POST.
async fn post(ts: &TestServer, key: Option<&str>, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", ts.http_url))
        .header("content-type", "application/json")
        .body(body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let response = req.send().await.expect("response");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON error body"))
}

fn ask(model: &str, text: &str) -> String {
    json!({"model": model, "messages": [{"role": "user", "content": text}]}).to_string()
}

#[tokio::test]
async fn errors_have_openais_shape_and_status() {
    let ts = TestServer::spawn_with(TestOptions {
        limits: Limits {
            max_http_body_bytes: 4096,
            ..Limits::default()
        },
        ..TestOptions::default()
    })
    .await;
    council(&ts, "research", "er").await;

    let (status, body) = post(&ts, None, ask("moai/research", "hi")).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (401, Some("authentication_error"))
    );
    let (status, body) = post(&ts, Some("not-a-key-at-all"), ask("moai/research", "hi")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    let (status, body) = post(&ts, Some(&ts.key), ask("moai/nope", "hi")).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("moai/nope"))
    );
    // Bob cannot use alice's project.
    let (status, _) = post(&ts, Some(&ts.key_b), ask("moai/research", "hi")).await;
    assert_eq!(status, 404);
    let no_user =
        json!({"model": "moai/research", "messages": [{"role": "system", "content": "x"}]});
    let (status, body) = post(&ts, Some(&ts.key), no_user.to_string()).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (400, Some("invalid_request_error"))
    );
    let (status, _) = post(&ts, Some(&ts.key), "{\"model\": ").await;
    assert_eq!(status, 400);
    let oversized = ask("moai/research", &"x".repeat(8192));
    let (status, body) = post(&ts, Some(&ts.key), oversized).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("4096"))
    );
    assert!(
        ts.llm.requests().is_empty(),
        "no refused request reached a model"
    );
}

#[tokio::test]
async fn no_answer_from_any_member_is_a_bad_gateway_and_no_summary_runs() {
    let ts = TestServer::spawn().await;
    council(&ts, "research", "bg").await;
    let (one, two, judge) = members("bg");
    ts.llm.script(&one, Script::new().fail(400));
    ts.llm.script(&two, Script::new().fail(400));
    let (status, body) = post(&ts, Some(&ts.key), ask("moai/research", "hi")).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&one))
    );
    assert!(ts.llm.requests_for(&judge).is_empty());
}

#[tokio::test]
async fn the_listener_can_be_turned_off() {
    let ts = TestServer::spawn().await;
    assert!(ts.http_url.starts_with("http://127.0.0.1:"));
    let dir = tempfile::tempdir().expect("dir");
    let settings = moai_server::Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        http_listen: None,
        data_dir: dir.path().to_owned(),
        ..moai_server::Settings::default()
    };
    let app = moai_server::Application::build(settings)
        .await
        .expect("builds");
    assert_eq!(app.http_addr(), None);
}

#[tokio::test]
async fn healthz_answers_when_the_store_is_ready() {
    let ts = TestServer::spawn().await;
    let response = reqwest::get(format!("{}/healthz", ts.http_url))
        .await
        .expect("response");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_streamed_completion_ends_cleanly_when_the_server_shuts_down() {
    let ts = TestServer::spawn().await;
    council(&ts, "research", "sd").await;
    let (one, two, _) = members("sd");
    for model in [&one, &two] {
        ts.llm.script(
            model,
            Script::new()
                .text("Slow but sure.")
                .first_token_delay(std::time::Duration::from_millis(800)),
        );
    }
    let http_url = ts.http_url.clone();
    let mut response = reqwest::Client::new()
        .post(format!("{http_url}/v1/chat/completions"))
        .bearer_auth(&ts.key)
        .json(&json!({"model": "moai/research", "stream": true, "messages": [{"role": "user", "content": "Still there?"}]}))
        .send()
        .await
        .expect("response");
    let mut body = String::from_utf8_lossy(
        &response
            .chunk()
            .await
            .expect("a chunk")
            .expect("the role chunk"),
    )
    .into_owned();

    // Stops the gRPC server and the HTTP listener; fails past 30 s or on an error.
    let _ = ts.stop().await;

    while let Some(chunk) = response.chunk().await.expect("the stream ends cleanly") {
        body.push_str(&String::from_utf8_lossy(&chunk));
    }
    let data: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"), "{body}");
    let events: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("every event is JSON"))
        .collect();
    // The members finish within the grace; a summary asked for once
    // shutdown began is refused as unavailable, never cut off mid-stream.
    let errors: Vec<&Value> = events.iter().filter(|v| v.get("error").is_some()).collect();
    assert!(
        errors.iter().all(|e| e["error"]["code"] == "unavailable"),
        "{body}"
    );
    let finished = events
        .iter()
        .any(|v| v["choices"][0]["finish_reason"] == "stop");
    assert!(
        finished == errors.is_empty(),
        "a finish or an error: {body}"
    );
    assert!(
        reqwest::get(format!("{http_url}/healthz")).await.is_err(),
        "the listener is closed"
    );
}
