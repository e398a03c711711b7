//! The model-call layer (`moai_server::llm`) against the fake upstream over
//! real HTTP.

use std::time::{Duration, Instant};

use futures::StreamExt;
use moai_server::llm::{
    ChatChunk, ChatMessage, ChatRequest, LlmClient, LlmError, LlmSettings, ProviderSettings,
    QUEUE_NOTICE, RetrySettings, Usage,
};
use moai_tests::fake_llm::{FakeLlm, Script};

mod capacity;
mod fake_format;
mod providers;
mod reasoning;
mod timeouts;

// ---- helpers ---------------------------------------------------------------

fn provider(name: &str, base_url: String, models: &[&str]) -> ProviderSettings {
    ProviderSettings {
        name: name.to_owned(),
        base_url,
        api_key: Some(format!("key-{name}").into()),
        models: models.iter().map(|m| (*m).to_owned()).collect(),
        ..ProviderSettings::default()
    }
}

/// One catch-all provider on `fake`, with fast retries.
fn settings_for(fake: &FakeLlm) -> LlmSettings {
    LlmSettings {
        providers: vec![provider("fake", fake.base_url(), &[])],
        retry: RetrySettings {
            max_retries: 2,
            base_delay_ms: 10,
            max_delay_ms: 2_000,
        },
        ..LlmSettings::default()
    }
}

fn client(settings: LlmSettings) -> LlmClient {
    LlmClient::new(settings).expect("valid settings")
}

fn ask(model: &str, question: &str) -> ChatRequest {
    ChatRequest {
        model: model.to_owned(),
        messages: vec![
            ChatMessage::system("You are one voice of a roundtable."),
            ChatMessage::user(question),
        ],
        max_tokens: None,
    }
}

/// Everything one call produced.
#[derive(Debug, Default)]
struct Outcome {
    deltas: Vec<String>,
    usage: Vec<Usage>,
    error: Option<LlmError>,
    /// Thinking, apart from the answer.
    reasoning: Vec<String>,
    /// `Queued` notices, then the time queued when the provider accepted.
    queued: Vec<Duration>,
    accepted: Option<Duration>,
}

impl Outcome {
    fn text(&self) -> String {
        self.deltas.concat()
    }
}

async fn run(client: &LlmClient, req: ChatRequest) -> Outcome {
    let mut stream = client.stream_chat(req);
    let mut outcome = Outcome::default();
    while let Some(item) = stream.next().await {
        match item {
            Ok(ChatChunk::Delta(text)) => outcome.deltas.push(text),
            Ok(ChatChunk::Usage(usage)) => outcome.usage.push(usage),
            Ok(ChatChunk::Reasoning(text)) => outcome.reasoning.push(text),
            Ok(ChatChunk::Queued(waited)) => outcome.queued.push(waited),
            Ok(ChatChunk::Accepted { queued }) => {
                assert!(outcome.accepted.is_none(), "accepted twice");
                assert!(outcome.deltas.is_empty(), "accepted after text");
                outcome.accepted = Some(queued);
            }
            Err(error) => {
                outcome.error = Some(error);
                // A terminal error ends the stream.
                assert!(stream.next().await.is_none(), "items after the error");
                break;
            }
        }
    }
    outcome
}

/// An address where nothing listens.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/v1")
}

// ---- streaming -------------------------------------------------------------

#[tokio::test]
async fn deltas_concatenate_to_the_scripted_text_and_usage_carries_cost() {
    let fake = FakeLlm::start().await;
    let text = "The quick brown fox jumps over the lazy dog.";
    fake.script(
        "openai/gpt-4o",
        Script::new()
            .text(text)
            .token_pace(Duration::from_millis(2))
            .usage(11, 9, 0.0123),
    );
    let llm = client(settings_for(&fake));

    let outcome = run(&llm, ask("openai/gpt-4o", "What is a pangram?")).await;

    assert_eq!(outcome.error, None);
    assert_eq!(outcome.text(), text);
    assert_eq!(
        outcome.deltas.len(),
        9,
        "one delta per token: {:?}",
        outcome.deltas
    );
    assert_eq!(
        outcome.usage,
        vec![Usage {
            prompt_tokens: 11,
            completion_tokens: 9,
            cost_usd: 0.0123
        }]
    );
    let requests = fake.requests_for("openai/gpt-4o");
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert!(request.stream && request.include_usage);
    assert_eq!(request.api_key.as_deref(), Some("key-fake"));
    let roles: Vec<&str> = request.messages.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["system", "user"]);
    assert_eq!(request.messages[1].content, "What is a pangram?");
}

#[tokio::test]
async fn unscripted_model_gets_the_default_answer_and_max_tokens_is_sent() {
    let fake = FakeLlm::start().await;
    let llm = client(settings_for(&fake));
    let mut req = ask("meta/llama-3", "Should cities ban cars from their centres?");
    req.max_tokens = Some(256);

    let outcome = run(&llm, req).await;

    assert_eq!(outcome.error, None);
    assert_eq!(
        outcome.text(),
        "Answer from meta/llama-3: Should cities ban cars from their centre"
    );
    assert_eq!(outcome.usage.len(), 1);
    assert!(outcome.usage[0].cost_usd > 0.0);
    assert_eq!(fake.requests()[0].max_tokens, Some(256));
}

#[tokio::test]
async fn empty_answer_is_an_error() {
    let fake = FakeLlm::start().await;
    fake.script("m", Script::new().text(""));
    let llm = client(settings_for(&fake));

    let outcome = run(&llm, ask("m", "hi")).await;

    assert!(outcome.deltas.is_empty());
    assert_eq!(outcome.error, Some(LlmError::EmptyAnswer));
    assert_eq!(
        outcome.error.map(|e| e.to_string()).as_deref(),
        Some("empty answer")
    );
}

#[tokio::test]
async fn whitespace_only_answer_is_empty_too() {
    let fake = FakeLlm::start().await;
    fake.script("m", Script::new().text(" \n\n "));
    let llm = client(settings_for(&fake));

    let outcome = run(&llm, ask("m", "hi")).await;

    assert_eq!(outcome.error, Some(LlmError::EmptyAnswer));
}

#[tokio::test]
async fn cut_mid_stream_is_a_broken_stream_after_the_text_so_far() {
    let fake = FakeLlm::start().await;
    fake.script(
        "m",
        Script::new().text(FakeLlm::text_of_tokens(10)).cut_after(3),
    );
    let llm = client(settings_for(&fake));

    let outcome = run(&llm, ask("m", "hi")).await;

    assert_eq!(outcome.text(), "w0 w1 w2");
    assert!(
        matches!(
            outcome.error,
            Some(LlmError::BrokenStream { chunks: 3, .. })
        ),
        "{:?}",
        outcome.error
    );
    assert_eq!(fake.requests().len(), 1, "a broken stream is never retried");
}

#[tokio::test]
async fn provider_dying_mid_stream_is_a_broken_stream() {
    let fake = FakeLlm::start().await;
    fake.script(
        "m",
        Script::new()
            .text(FakeLlm::text_of_tokens(100))
            .token_pace(Duration::from_millis(20)),
    );
    let llm = client(settings_for(&fake));
    let mut stream = llm.stream_chat(ask("m", "hi"));
    assert!(matches!(
        stream.next().await,
        Some(Ok(ChatChunk::Accepted { .. }))
    ));
    assert_eq!(stream.next().await, Some(Ok(ChatChunk::Delta("w0".into()))));

    drop(fake);
    let mut rest = Outcome::default();
    while let Some(item) = stream.next().await {
        match item {
            Ok(ChatChunk::Delta(text)) => rest.deltas.push(text),
            Ok(ChatChunk::Usage(usage)) => rest.usage.push(usage),
            Ok(_) => {}
            Err(error) => rest.error = Some(error),
        }
    }

    assert!(
        rest.deltas.len() < 99,
        "the answer went on: {}",
        rest.deltas.len()
    );
    assert!(
        matches!(rest.error, Some(LlmError::BrokenStream { .. })),
        "{:?}",
        rest.error
    );
}

#[tokio::test]
async fn malformed_chunk_is_reported_as_such() {
    let fake = FakeLlm::start().await;
    fake.script(
        "m",
        Script::new()
            .text(FakeLlm::text_of_tokens(10))
            .malformed_after(2),
    );
    let llm = client(settings_for(&fake));

    let outcome = run(&llm, ask("m", "hi")).await;

    assert_eq!(outcome.text(), "w0 w1");
    assert!(
        matches!(outcome.error, Some(LlmError::MalformedChunk { .. })),
        "{:?}",
        outcome.error
    );
}

#[tokio::test]
async fn error_object_mid_stream_breaks_the_stream_after_text() {
    let fake = FakeLlm::start().await;
    fake.script(
        "m",
        Script::new()
            .text(FakeLlm::text_of_tokens(10))
            .error_after(2),
    );
    let llm = client(settings_for(&fake));

    let outcome = run(&llm, ask("m", "hi")).await;

    assert_eq!(outcome.text(), "w0 w1");
    assert!(
        matches!(
            outcome.error,
            Some(LlmError::BrokenStream { chunks: 2, .. })
        ),
        "{:?}",
        outcome.error
    );
}

#[tokio::test]
async fn error_object_before_any_text_is_an_upstream_error() {
    let fake = FakeLlm::start().await;
    fake.script("m", Script::new().error_after(0));
    let llm = client(settings_for(&fake));

    let outcome = run(&llm, ask("m", "hi")).await;

    assert_eq!(
        outcome.error,
        Some(LlmError::Upstream {
            status: 502,
            detail: Some("Provider returned error".into())
        })
    );
}

// ---- HTTP failures and retries ---------------------------------------------

#[tokio::test]
async fn server_error_is_retried_then_reported_as_upstream() {
    let fake = FakeLlm::start().await;
    fake.script("m", Script::new().fail(500));
    let llm = client(settings_for(&fake));

    let outcome = run(&llm, ask("m", "hi")).await;

    assert!(
        matches!(outcome.error, Some(LlmError::Upstream { status: 500, .. })),
        "{:?}",
        outcome.error
    );
    assert_eq!(
        fake.requests_for("m").len(),
        3,
        "first attempt + max_retries (2)"
    );
}

#[tokio::test]
async fn client_error_is_not_retried() {
    let fake = FakeLlm::start().await;
    fake.script("m", Script::new().fail(400));
    let llm = client(settings_for(&fake));

    let outcome = run(&llm, ask("m", "hi")).await;

    assert_eq!(
        outcome.error,
        Some(LlmError::Upstream {
            status: 400,
            detail: Some("scripted failure".into())
        })
    );
    assert_eq!(fake.requests_for("m").len(), 1);
}

#[tokio::test]
async fn rate_limit_honours_retry_after_then_succeeds_after_one_retry() {
    let fake = FakeLlm::start().await;
    fake.script(
        "m",
        Script::new()
            .text("finally")
            .fail(429)
            .retry_after(1)
            .fail_times(1),
    );
    let llm = client(settings_for(&fake));
    let started = Instant::now();

    let outcome = run(&llm, ask("m", "hi")).await;

    assert_eq!(outcome.error, None);
    assert_eq!(outcome.text(), "finally");
    let requests = fake.requests_for("m");
    assert_eq!(requests.len(), 2, "exactly one retry");
    let waited = requests[1].received_at - requests[0].received_at;
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn rate_limit_that_persists_is_rate_limited() {
    let fake = FakeLlm::start().await;
    fake.script("m", Script::new().fail(429));
    let llm = client(settings_for(&fake));

    let outcome = run(&llm, ask("m", "hi")).await;

    assert!(
        matches!(outcome.error, Some(LlmError::RateLimited { .. })),
        "{:?}",
        outcome.error
    );
    assert_eq!(
        outcome.error.map(|e| e.to_string()).as_deref(),
        Some("rate limited (HTTP 429)")
    );
    assert_eq!(fake.requests_for("m").len(), 3);
}

#[tokio::test]
async fn unreachable_provider_is_a_connection_failure() {
    let mut settings = LlmSettings {
        providers: vec![provider("down", closed_port_url(), &[])],
        ..LlmSettings::default()
    };
    settings.retry.base_delay_ms = 10;
    let llm = client(settings);

    let outcome = run(&llm, ask("m", "hi")).await;

    assert!(
        matches!(outcome.error, Some(LlmError::Connect { .. })),
        "{:?}",
        outcome.error
    );
}
