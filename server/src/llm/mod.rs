//! The model-call layer: streamed chat completions against OpenAI-compatible
//! providers (OpenRouter by default), with routing, adaptive per-provider
//! concurrency limits, timeouts and retries before the first token.
//!
//! ```text
//! LlmClient::stream_chat ─► router (alias, prefix) ─► async-openai Client
//!     ─► RetryLayer (each attempt: a slot of the provider's AIMD limit) ─► ReqwestService ─► HTTP/SSE
//! ```
//!
//! # Using it
//!
//! ```no_run
//! use futures::StreamExt;
//! use moai_server::llm::{ChatChunk, ChatMessage, ChatRequest, LlmClient, LlmSettings};
//!
//! # async fn demo() -> Result<(), moai_server::llm::LlmError> {
//! let llm = LlmClient::new(LlmSettings::default())?;
//! let mut answer = llm.stream_chat(ChatRequest {
//!     model: "openai/gpt-4o".into(),
//!     messages: vec![ChatMessage::user("Is a hot dog a sandwich?")],
//!     max_tokens: None,
//! });
//! let mut text = String::new();
//! while let Some(item) = answer.next().await {
//!     match item {
//!         Ok(ChatChunk::Delta(delta)) => text.push_str(&delta),
//!         Ok(ChatChunk::Usage(usage)) => println!("cost: ${}", usage.cost_usd),
//!         // Thinking (kept apart from the answer), queue notices, acceptance.
//!         Ok(_) => {}
//!         // `text` so far stays valid; `error` says why the answer stopped.
//!         Err(error) => return Err(error),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Errors are final (retries already happened inside): an error before any
//! delta means no answer; after some deltas (`BrokenStream`, an idle or total
//! `Timeout`) the text received so far is what the model said.

mod call_state;
mod chat;
mod check;
mod client;
mod error;
mod failure;
mod limiter;
mod models;
mod provider;
mod retry;
mod router;
mod settings;
mod stream;
mod suggest;
mod wire;

pub use chat::{ChatChunk, ChatMessage, ChatRequest, ChatRole, QUEUE_NOTICE, Usage};
pub use check::ModelCheck;
pub use client::LlmClient;
pub use error::{LlmError, TimeoutKind};
pub use failure::{Failure, explain, store_failure};
pub use provider::ModelInfo;
pub use settings::{
    LlmSettings, ModelPrice, OPENROUTER_BASE_URL, ProviderSettings, RetrySettings, Timeouts,
};
