//! The model-call layer: streamed chat completions against OpenAI-compatible
//! providers (OpenRouter by default), with routing, per-provider concurrency
//! limits, timeouts and retries before the first token.
//!
//! ```text
//! LlmClient::stream_chat ─► router (alias, prefix) ─► provider slot (Semaphore)
//!     ─► async-openai Client ─► RetryLayer ─► ReqwestService ─► HTTP/SSE
//! ```

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
pub use models::ModelInfo;
pub use settings::{LlmSettings, OPENROUTER_BASE_URL, ProviderSettings, RetrySettings, Timeouts};
