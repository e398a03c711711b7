//! Rows as the store hands them out.

use std::collections::BTreeMap;

use crate::domain::{
    DiscussionKind, DiscussionStatus, FailureReason, Fallbacks, MessageRole, MessageStatus,
    ModelList, ProjectName, RoundMode,
};

/// A project to create.
#[derive(Clone, Debug)]
pub struct NewProject {
    pub name: ProjectName,
    pub models: ModelList,
    pub system_prompt: String,
    pub summarizer_model: String,
    pub fallbacks: Fallbacks,
}

/// A stored project.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectRecord {
    pub id: String,
    pub owner: String,
    pub name: String,
    pub models: Vec<String>,
    pub system_prompt: String,
    pub summarizer_model: String,
    /// Seat model id -> fallbacks in order.
    pub fallbacks: BTreeMap<String, Vec<String>>,
    pub create_time: i64,
    pub update_time: i64,
}

/// A stored discussion (without its rounds).
#[derive(Clone, Debug, PartialEq)]
pub struct DiscussionRecord {
    pub id: String,
    pub project_id: String,
    pub owner: String,
    pub kind: DiscussionKind,
    pub question: String,
    pub status: DiscussionStatus,
    pub create_time: i64,
    pub update_time: i64,
}

/// A stored round with its messages in order.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundRecord {
    pub number: u32,
    pub mode: RoundMode,
    pub messages: Vec<MessageRecord>,
}

/// A stored message.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageRecord {
    pub id: String,
    pub discussion_id: String,
    pub round: u32,
    pub position: u32,
    pub role: MessageRole,
    pub model: String,
    pub content: String,
    pub status: MessageStatus,
    pub error: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
    pub latency_ms: u64,
    pub create_time: i64,
    /// Why it failed (FAILED only).
    pub failure_reason: Option<FailureReason>,
    /// The fallback that answered for `model`, if one did.
    pub answered_by: String,
    /// The model's thinking, apart from `content`.
    pub reasoning: String,
    /// Time the call waited for provider slots.
    pub queue_ms: u64,
    /// Who wrote a USER message, as the client named them (may be empty).
    pub author_name: String,
}

/// Usage summed over a discussion.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UsageTotals {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
}

/// Keyset position in a listing: the (time, id) of the last row returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageCursor {
    pub time: i64,
    pub id: String,
}

impl PageCursor {
    /// The opaque token form.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.time, self.id)
    }

    /// Reads a token; `None` when it was not made by [`PageCursor::encode`].
    pub fn decode(token: &str) -> Option<Self> {
        let (time, id) = token.split_once('.')?;
        let time = time.parse().ok()?;
        (!id.is_empty()).then(|| Self {
            time,
            id: id.to_owned(),
        })
    }
}

/// One event to store.
pub struct StoredEvent {
    pub discussion_id: String,
    pub seq: u64,
    pub time: i64,
    pub payload: Vec<u8>,
}

/// Builds the event that announces a recovered discussion's new status,
/// from its id, its last stored seq and the time.
pub type RecoveryEvent = fn(&str, u64, i64) -> StoredEvent;
