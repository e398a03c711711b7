//! The model-call layer: streamed chat completions against OpenAI-compatible
//! providers (OpenRouter by default), with routing, per-provider concurrency
//! limits, timeouts and retries before the first token.
//!
//! ```text
//! LlmClient::stream_chat ─► router (alias, prefix) ─► provider slot (Semaphore)
//!     ─► async-openai Client ─► RetryLayer ─► ReqwestService ─► HTTP/SSE
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

mod chat;
mod client;
mod error;
mod models;
mod provider;
mod retry;
mod router;
mod settings;
mod stream;
mod wire;

pub use chat::{ChatChunk, ChatMessage, ChatRequest, ChatRole, Usage};
pub use client::LlmClient;
pub use error::{LlmError, TimeoutKind};
pub use provider::ModelInfo;
pub use settings::{
    LlmSettings, ModelPrice, OPENROUTER_BASE_URL, ProviderSettings, RetrySettings, Timeouts,
};
