//! What the engine sends to a model and what comes back.

/// How long a call waits for a provider slot before it says so
/// ([`ChatChunk::Queued`]).
pub const QUEUE_NOTICE: std::time::Duration = std::time::Duration::from_secs(1);

/// Who says a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatRole {
    System,
    User,
    Assistant,
}

/// One message of the conversation sent to a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: ChatRole::System,
            content: content.into(),
        }
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: ChatRole::User,
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: ChatRole::Assistant,
            content: content.into(),
        }
    }
}

/// A streamed chat completion to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatRequest {
    /// An alias or a full model id (`openai/gpt-4o`).
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub max_tokens: Option<u32>,
}

/// Token usage and cost of one call, as the provider reported them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// 0.0 when the provider does not report cost (only OpenRouter does).
    pub cost_usd: f64,
}

/// One item of a streamed answer.
#[derive(Clone, Debug, PartialEq)]
pub enum ChatChunk {
    /// The call has waited this long for a free slot at its provider (sent
    /// once, after [`QUEUE_NOTICE`]); it goes on waiting.
    Queued(std::time::Duration),
    /// The provider accepted the call (the response head is in), after
    /// `queued` spent waiting for slots; sent once, before any text.
    Accepted { queued: std::time::Duration },
    /// The next piece of a reasoning model's thinking; never empty, never
    /// part of the answer.
    Reasoning(String),
    /// The next piece of answer text; never empty.
    Delta(String),
    /// Sent once, when the provider reports usage (normally just before the end).
    Usage(Usage),
}
