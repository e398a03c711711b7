//! A fake OpenAI-compatible upstream on real HTTP, for tests and the load
//! benchmark: `POST /v1/chat/completions` (streamed SSE or plain JSON) and
//! `GET /v1/models`, also without the `/v1` prefix. Each model follows a
//! [`Script`]; every request is recorded.

mod script;
mod sse;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub use script::{Script, text_of_tokens, tokens};

/// One chat request as the fake received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub model: String,
    pub messages: Vec<RecordedMessage>,
    pub stream: bool,
    /// `stream_options.include_usage` was true.
    pub include_usage: bool,
    pub max_tokens: Option<u64>,
    /// The bearer token, if any.
    pub api_key: Option<String>,
    pub received_at: Instant,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedMessage {
    pub role: String,
    pub content: String,
}

/// The running fake; shuts down when dropped.
pub struct FakeLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

#[derive(Default)]
struct Shared {
    scripts: Mutex<HashMap<String, ScriptState>>,
    default_script: Mutex<Script>,
    /// Extra `/models` entries: id -> context length.
    registered: Mutex<BTreeMap<String, Option<u64>>>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Chat requests received, recorded or not.
    request_count: AtomicU64,
    /// Off: requests are only counted (for long load runs).
    not_recording: AtomicBool,
    dropped: Mutex<Vec<String>>,
    next_id: AtomicU64,
}

struct ScriptState {
    script: Script,
    failures_served: usize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FakeLlm {
    /// Starts on `127.0.0.1:0`.
    ///
    /// # Panics
    /// If no local port can be bound (the test cannot run anyway).
    pub async fn start() -> FakeLlm {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake LLM to 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("local address of the fake LLM");
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/chat/completions", post(chat_completions))
            .route("/v1/models", get(list_models))
            .route("/models", get(list_models))
            .with_state(shared.clone());
        let (shutdown, signal) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = signal.await;
            });
            if let Err(error) = serve.await {
                tracing::warn!(%error, "fake LLM stopped");
            }
        });
        FakeLlm {
            addr,
            shared,
            shutdown: Some(shutdown),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to configure as a provider: `http://127.0.0.1:<port>/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Sets how `model` answers (and lists it in `/models`); replaces an
    /// earlier script and its failure count.
    pub fn script(&self, model: &str, script: Script) {
        lock(&self.shared.scripts).insert(
            model.to_owned(),
            ScriptState {
                script,
                failures_served: 0,
            },
        );
    }

    /// How models without a script answer (default: [`Script::default`]).
    pub fn default_script(&self, script: Script) {
        *lock(&self.shared.default_script) = script;
    }

    /// Lists `model` in `/models` without scripting it.
    pub fn register_model(&self, model: &str) {
        lock(&self.shared.registered).insert(model.to_owned(), None);
    }

    /// Lists `model` with an OpenRouter-style `context_length` (and `name`).
    pub fn register_model_with_context(&self, model: &str, context_length: u64) {
        lock(&self.shared.registered).insert(model.to_owned(), Some(context_length));
    }

    /// Every chat request, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    pub fn requests_for(&self, model: &str) -> Vec<RecordedRequest> {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| r.model == model)
            .cloned()
            .collect()
    }

    /// How many chat requests arrived, including unrecorded ones.
    pub fn request_count(&self) -> u64 {
        self.shared.request_count.load(Ordering::Relaxed)
    }

    /// Stops (or resumes) keeping [`RecordedRequest`]s; counting goes on.
    /// For long load runs, where every prompt kept would add up.
    pub fn set_recording(&self, on: bool) {
        self.shared.not_recording.store(!on, Ordering::Relaxed);
    }

    /// Forgets the recorded requests and dropped streams.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
        lock(&self.shared.dropped).clear();
    }

    /// Models whose response the client dropped before it was finished
    /// (an SSE body cut short, or a hanging request abandoned).
    pub fn dropped_streams(&self) -> Vec<String> {
        lock(&self.shared.dropped).clone()
    }

    /// Polls [`FakeLlm::dropped_streams`] until `model` shows up or `within`
    /// passes; true if it did.
    pub async fn wait_dropped(&self, model: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.dropped_streams().iter().any(|m| m == model) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A deterministic text of `n` tokens, for long answers.
    pub fn text_of_tokens(n: usize) -> String {
        text_of_tokens(n)
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Records `model` as dropped unless defused first.
pub(crate) struct DropGuard {
    model: String,
    shared: Arc<Shared>,
    armed: bool,
}

impl DropGuard {
    fn new(model: &str, shared: &Arc<Shared>) -> Self {
        Self {
            model: model.to_owned(),
            shared: shared.clone(),
            armed: true,
        }
    }

    fn defuse(&mut self) {
        self.armed = false;
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if self.armed {
            lock(&self.shared.dropped).push(std::mem::take(&mut self.model));
        }
    }
}

/// OpenAI's error body (`code` is a string or null there).
fn error_response(status: StatusCode, message: &str, retry_after: Option<u64>) -> Response {
    let (kind, code) = match status.as_u16() {
        429 => ("requests", Some("rate_limit_exceeded")),
        500..=599 => ("server_error", None),
        _ => ("invalid_request_error", None),
    };
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, secs.into());
    }
    response
}

/// Text of a message `content`: a string, or the text parts of an array.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

fn record(headers: &HeaderMap, body: &Value) -> Option<RecordedRequest> {
    let model = body.get("model")?.as_str()?.to_owned();
    let messages = body
        .get("messages")?
        .as_array()?
        .iter()
        .map(|m| RecordedMessage {
            role: m
                .get("role")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            content: m.get("content").map(content_text).unwrap_or_default(),
        })
        .collect();
    Some(RecordedRequest {
        model,
        messages,
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        max_tokens: body
            .get("max_tokens")
            .or_else(|| body.get("max_completion_tokens"))
            .and_then(Value::as_u64),
        api_key: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned),
        received_at: Instant::now(),
    })
}

/// `"Answer from <model>: <first 40 chars of the last user message>"`.
fn default_text(request: &RecordedRequest) -> String {
    let last_user = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| m.content.chars().take(40).collect::<String>())
        .unwrap_or_default();
    format!("Answer from {}: {last_user}", request.model)
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(request) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|body| record(&headers, &body))
    else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "expected a chat completion request",
            None,
        );
    };
    shared.request_count.fetch_add(1, Ordering::Relaxed);
    if !shared.not_recording.load(Ordering::Relaxed) {
        lock(&shared.requests).push(request.clone());
    }

    // Decide this request's fate under the lock (failure counts are per model).
    let script = {
        let mut scripts = lock(&shared.scripts);
        match scripts.get_mut(&request.model) {
            Some(state) => {
                let fail = state.script.fail_status.is_some()
                    && state.failures_served < state.script.fail_times;
                if fail {
                    state.failures_served += 1;
                }
                let mut script = state.script.clone();
                if !fail {
                    script.fail_status = None;
                }
                script
            }
            None => lock(&shared.default_script).clone(),
        }
    };
    if let Some(status) = script.fail_status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error_response(status, "scripted failure", script.retry_after_secs);
    }
    if script.hang {
        let _guard = DropGuard::new(&request.model, &shared);
        std::future::pending::<()>().await;
    }

    let text = script
        .text
        .clone()
        .unwrap_or_else(|| default_text(&request));
    let completion_tokens = tokens(&text).len() as u64;
    let usage = script.usage.unwrap_or_else(|| {
        let chars: usize = request.messages.iter().map(|m| m.content.len()).sum();
        let prompt = (chars / 4 + request.messages.len()) as u64;
        (
            prompt,
            completion_tokens,
            0.0001 * (prompt + completion_tokens) as f64,
        )
    });
    let answer = sse::Answer {
        id: format!(
            "chatcmpl-fake-{}",
            shared.next_id.fetch_add(1, Ordering::Relaxed)
        ),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        model: request.model.clone(),
        text,
        first_token_delay: script.first_token_delay,
        token_pace: script.token_pace,
        cut_after_chunks: script.cut_after_chunks,
        malformed_after_chunks: script.malformed_after_chunks,
        error_after_chunks: script.error_after_chunks,
        usage: (request.include_usage || !request.stream).then_some(usage),
    };

    if !request.stream {
        tokio::time::sleep(script.first_token_delay).await;
        if script.malformed_after_chunks.is_some() {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"id\": ",
            )
                .into_response();
        }
        return axum::Json(answer.completion()).into_response();
    }

    let guard = DropGuard::new(&request.model, &shared);
    let body = Body::from_stream(sse::body_stream(answer.frames(), guard));
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn list_models(State(shared): State<Arc<Shared>>) -> Response {
    let mut models: BTreeMap<String, Option<u64>> = lock(&shared.registered).clone();
    for model in lock(&shared.scripts).keys() {
        models.entry(model.clone()).or_insert(None);
    }
    let data: Vec<Value> = models
        .into_iter()
        .map(|(id, context)| {
            let mut entry = json!({"id": id, "object": "model", "created": 0, "owned_by": "fake"});
            if let (Some(context), Some(map)) = (context, entry.as_object_mut()) {
                map.insert("name".into(), json!(format!("Fake {id}")));
                map.insert("context_length".into(), json!(context));
            }
            entry
        })
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}
