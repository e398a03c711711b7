//! A fake OpenAI-compatible upstream on real HTTP, for tests and the load
//! benchmark: `POST /v1/chat/completions` (streamed SSE or plain JSON) and
//! `GET /v1/models`, also without the `/v1` prefix. Each model follows a
//! [`Script`], unless a rule chosen by the request's content answers first
//! ([`FakeLlm::script_when`], [`FakeLlm::respond_when`]); every request is recorded.
//!
//! ```no_run
//! use std::time::Duration;
//! use moai_fake_llm::{FakeLlm, Script};
//!
//! # async fn demo() {
//! let fake = FakeLlm::start().await;
//! fake.script("a/slow", Script::new().text("Take your time.").token_pace(Duration::from_millis(50)));
//! fake.script("b/flaky", Script::new().fail(429).retry_after(1).fail_times(1));
//! fake.script("c/dead", Script::new().hang());
//! // Point a provider's base_url at fake.base_url(), run the code under test, then:
//! assert_eq!(fake.requests_for("b/flaky").len(), 2);
//! # }
//! ```

mod demo;
mod handlers;
mod limit;
mod openrouter;
mod rules;
mod script;
mod sse;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use tokio::sync::watch;

pub use openrouter::OpenRouterError;
pub use rules::Responder;
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

/// The running fake. Dropping it stops it like a crashed provider: no new
/// connections, and answers in flight are cut off.
pub struct FakeLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    scripts: Mutex<HashMap<String, ScriptState>>,
    /// Answers chosen by request content, checked before `scripts`.
    rules: Mutex<Vec<rules::Rule>>,
    default_script: Mutex<Script>,
    /// Extra `/models` entries: id -> context length.
    registered: Mutex<BTreeMap<String, Option<u64>>>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Chat requests received, recorded or not.
    request_count: AtomicU64,
    /// Off: requests are only counted (for long load runs).
    not_recording: AtomicBool,
    /// On: models without a scripted text speak in the demo voices.
    demo_voices: AtomicBool,
    dropped: Mutex<Vec<String>>,
    /// SSE frames of streamed answers sent so far, by model.
    frames_sent: Mutex<HashMap<String, usize>>,
    /// When on: the moment each streamed answer ended, by its last user
    /// message, for measuring what a client of the server waits beyond it.
    finishes: Mutex<Option<HashMap<String, Instant>>>,
    next_id: AtomicU64,
    stop: Stop,
    /// Answers in flight, and the optional limit on them.
    concurrency: limit::Concurrency,
}

/// Turns true when the [`FakeLlm`] is dropped.
struct Stop(watch::Sender<bool>);

impl Default for Stop {
    fn default() -> Self {
        Self(watch::Sender::new(false))
    }
}

impl Stop {
    /// Resolves once the fake is stopping.
    fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.subscribe();
        async move {
            // An error means the sender is gone: stopped as well.
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }
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
        Self::start_on(0).await
    }

    /// Starts on `127.0.0.1:port` (0 for any free port).
    ///
    /// # Panics
    /// If the port cannot be bound.
    pub async fn start_on(port: u16) -> FakeLlm {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the fake LLM on 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("local address of the fake LLM");
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/v1/chat/completions", post(handlers::chat_completions))
            .route("/chat/completions", post(handlers::chat_completions))
            .route("/v1/models", get(handlers::list_models))
            .route("/models", get(handlers::list_models))
            .with_state(shared.clone());
        let stopped = shared.stop.stopped();
        tokio::spawn(async move {
            let serve = axum::serve(
                listener.tap_io(|tcp| {
                    // Like real API servers: small SSE frames go out at once.
                    let _ = tcp.set_nodelay(true);
                }),
                app,
            )
            .with_graceful_shutdown(stopped);
            if let Err(error) = serve.await {
                tracing::warn!(%error, "fake LLM stopped");
            }
        });
        FakeLlm { addr, shared }
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

    /// Answers requests for `model` whose messages contain `needle` with
    /// `script`, before the model's own script (the latest matching rule wins).
    pub fn script_when(&self, model: &str, needle: &str, script: Script) {
        lock(&self.shared.rules).push(rules::Rule::fixed(Some(model), needle, script));
    }

    /// Like [`FakeLlm::script_when`], for requests to any model.
    pub fn script_any_when(&self, needle: &str, script: Script) {
        lock(&self.shared.rules).push(rules::Rule::fixed(None, needle, script));
    }

    /// Answers requests to any model whose messages contain `needle` with the
    /// script `respond` computes from the request (say, a ranking of the
    /// answers it was shown).
    pub fn respond_when(
        &self,
        needle: &str,
        respond: impl Fn(&RecordedRequest) -> Script + Send + Sync + 'static,
    ) {
        lock(&self.shared.rules).push(rules::Rule::computed(
            None,
            needle,
            std::sync::Arc::new(respond),
        ));
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

    /// Lets models without a scripted text answer in the demo voices (each
    /// model its own character, answering the question and the last
    /// speaker) instead of the default `Answer from <model>: …` line.
    pub fn set_demo_voices(&self, on: bool) {
        self.shared.demo_voices.store(on, Ordering::Relaxed);
    }

    /// Forgets the recorded requests and dropped streams.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
        lock(&self.shared.dropped).clear();
    }

    /// Starts noting when each streamed answer ends (see [`FakeLlm::finished_at`]).
    pub fn track_finishes(&self) {
        *lock(&self.shared.finishes) = Some(HashMap::new());
    }

    /// When the last streamed answer whose last user message was `prompt`
    /// sent its final byte (with [`FakeLlm::track_finishes`] on); forgets it.
    pub fn finished_at(&self, prompt: &str) -> Option<Instant> {
        lock(&self.shared.finishes)
            .as_mut()
            .and_then(|m| m.remove(prompt))
    }

    /// Models whose response the client dropped before it was finished
    /// (an SSE body cut short, or a hanging request abandoned).
    pub fn dropped_streams(&self) -> Vec<String> {
        lock(&self.shared.dropped).clone()
    }

    /// Polls [`FakeLlm::dropped_streams`] until `model` shows up or `within`
    /// passes; true if it did.
    pub async fn wait_dropped(&self, model: &str, within: Duration) -> bool {
        self.wait_until(within, || self.dropped_streams().iter().any(|m| m == model))
            .await
    }

    /// Polls until `model` has received at least `n` chat requests or
    /// `within` passes; true if it had.
    pub async fn wait_requests(&self, model: &str, n: usize, within: Duration) -> bool {
        self.wait_until(within, || self.requests_for(model).len() >= n)
            .await
    }

    /// How many SSE frames of `model`'s streamed answers have been handed
    /// to the connection so far: the role frame, then one per token, then
    /// the finish (and usage) frames.
    pub fn frames_sent(&self, model: &str) -> usize {
        lock(&self.shared.frames_sent)
            .get(model)
            .copied()
            .unwrap_or(0)
    }

    /// Polls until `model` has sent at least `n` frames ([`FakeLlm::frames_sent`])
    /// or `within` passes; true if it had.
    pub async fn wait_frames_sent(&self, model: &str, n: usize, within: Duration) -> bool {
        self.wait_until(within, || self.frames_sent(model) >= n)
            .await
    }

    async fn wait_until(&self, within: Duration, done: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if done() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A deterministic text of `n` tokens, for long answers.
    pub fn text_of_tokens(n: usize) -> String {
        text_of_tokens(n)
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.shared.stop.0.send_replace(true);
    }
}

/// Records `model` as dropped unless defused first.
pub(crate) struct DropGuard {
    model: String,
    shared: Arc<Shared>,
    armed: bool,
    /// The request's last user message, for [`FakeLlm::finished_at`].
    prompt: Option<String>,
    /// Its place among the answers in flight, freed with the guard.
    slot: Option<limit::Slot>,
}

impl DropGuard {
    fn new(model: &str, shared: &Arc<Shared>) -> Self {
        Self {
            model: model.to_owned(),
            shared: shared.clone(),
            armed: true,
            prompt: None,
            slot: None,
        }
    }

    /// Keeps the answer's place among those in flight until the guard goes.
    pub(crate) fn holding(mut self, slot: limit::Slot) -> Self {
        self.slot = Some(slot);
        self
    }

    fn defuse(&mut self) {
        self.armed = false;
    }

    /// Notes the prompt whose end [`DropGuard::finished`] records.
    pub(crate) fn for_prompt(mut self, prompt: Option<String>) -> Self {
        self.prompt = prompt;
        self
    }

    /// One more frame of the answer went out.
    pub(crate) fn sent_frame(&self) {
        *lock(&self.shared.frames_sent)
            .entry(self.model.clone())
            .or_default() += 1;
    }

    /// The answer was sent whole.
    pub(crate) fn finished(&mut self) {
        self.armed = false;
        if let (Some(prompt), Some(log)) =
            (self.prompt.take(), lock(&self.shared.finishes).as_mut())
        {
            let now = Instant::now();
            let at = log.entry(prompt).or_insert(now);
            *at = (*at).max(now);
        }
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if self.armed {
            lock(&self.shared.dropped).push(std::mem::take(&mut self.model));
        }
    }
}
