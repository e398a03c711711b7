//! Stored records and domain states in their `moai.v1` wire form.

use moai_proto::v1;

use crate::domain::{
    DiscussionKind, DiscussionStatus, FailureReason, MessageRole, MessageStatus, RoundMode,
};
use crate::store::{DiscussionRecord, MessageRecord, ProjectRecord, RoundRecord, UsageTotals};

/// Unix milliseconds as a protobuf timestamp.
pub fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

pub fn project(p: &ProjectRecord) -> v1::Project {
    v1::Project {
        id: p.id.clone(),
        name: p.name.clone(),
        models: p.models.clone(),
        system_prompt: p.system_prompt.clone(),
        create_time: Some(timestamp(p.create_time)),
        update_time: Some(timestamp(p.update_time)),
        summarizer_model: p.summarizer_model.clone(),
        fallbacks: p
            .fallbacks
            .iter()
            .map(|(seat, models)| {
                (
                    seat.clone(),
                    v1::ModelList {
                        models: models.clone(),
                    },
                )
            })
            .collect(),
    }
}

pub fn discussion_kind(k: DiscussionKind) -> v1::DiscussionKind {
    match k {
        DiscussionKind::Open => v1::DiscussionKind::Open,
        DiscussionKind::Sequential => v1::DiscussionKind::Sequential,
    }
}

pub fn discussion_status(s: DiscussionStatus) -> v1::DiscussionStatus {
    match s {
        DiscussionStatus::Running => v1::DiscussionStatus::Running,
        DiscussionStatus::Idle => v1::DiscussionStatus::Idle,
        DiscussionStatus::Stopped => v1::DiscussionStatus::Stopped,
        DiscussionStatus::Interrupted => v1::DiscussionStatus::Interrupted,
    }
}

pub fn round_mode(m: RoundMode) -> v1::RoundMode {
    match m {
        RoundMode::Parallel => v1::RoundMode::Parallel,
        RoundMode::Sequential => v1::RoundMode::Sequential,
        RoundMode::Mention => v1::RoundMode::Mention,
        RoundMode::Summary => v1::RoundMode::Summary,
    }
}

pub fn message_role(r: MessageRole) -> v1::MessageRole {
    match r {
        MessageRole::User => v1::MessageRole::User,
        MessageRole::Model => v1::MessageRole::Model,
        MessageRole::Summary => v1::MessageRole::Summary,
    }
}

pub fn message_status(s: MessageStatus) -> v1::MessageStatus {
    match s {
        MessageStatus::Streaming => v1::MessageStatus::Streaming,
        MessageStatus::Complete => v1::MessageStatus::Complete,
        MessageStatus::Failed => v1::MessageStatus::Failed,
        MessageStatus::Interrupted => v1::MessageStatus::Interrupted,
    }
}

pub fn failure_reason(r: FailureReason) -> v1::FailureReason {
    match r {
        FailureReason::Timeout => v1::FailureReason::Timeout,
        FailureReason::RateLimited => v1::FailureReason::RateLimited,
        FailureReason::UpstreamError => v1::FailureReason::UpstreamError,
        FailureReason::BadApiKey => v1::FailureReason::BadApiKey,
        FailureReason::OutOfCredits => v1::FailureReason::OutOfCredits,
        FailureReason::UnknownModel => v1::FailureReason::UnknownModel,
        FailureReason::ContextTooLong => v1::FailureReason::ContextTooLong,
        FailureReason::BrokenStream => v1::FailureReason::BrokenStream,
        FailureReason::EmptyAnswer => v1::FailureReason::EmptyAnswer,
        FailureReason::BudgetExceeded => v1::FailureReason::BudgetExceeded,
        FailureReason::StoreError => v1::FailureReason::StoreError,
    }
}

pub fn message(m: &MessageRecord) -> v1::Message {
    v1::Message {
        id: m.id.clone(),
        role: message_role(m.role) as i32,
        model: m.model.clone(),
        content: m.content.clone(),
        status: message_status(m.status) as i32,
        error: m.error.clone(),
        usage: Some(v1::Usage {
            prompt_tokens: m.prompt_tokens,
            completion_tokens: m.completion_tokens,
            cost_usd: m.cost_usd,
        }),
        latency_ms: m.latency_ms,
        create_time: Some(timestamp(m.create_time)),
        round: m.round,
        failure_reason: m
            .failure_reason
            .map_or(v1::FailureReason::Unspecified, failure_reason) as i32,
        answered_by: m.answered_by.clone(),
        reasoning: m.reasoning.clone(),
        queue_ms: m.queue_ms,
        author_name: m.author_name.clone(),
    }
}

pub fn round(r: &RoundRecord) -> v1::Round {
    v1::Round {
        number: r.number,
        mode: round_mode(r.mode) as i32,
        messages: r.messages.iter().map(message).collect(),
    }
}

/// A discussion with whatever detail the caller loaded.
pub fn discussion(
    d: &DiscussionRecord,
    rounds: &[RoundRecord],
    usage: UsageTotals,
    last_seq: u64,
) -> v1::Discussion {
    v1::Discussion {
        id: d.id.clone(),
        project_id: d.project_id.clone(),
        kind: discussion_kind(d.kind) as i32,
        question: d.question.clone(),
        status: discussion_status(d.status) as i32,
        rounds: rounds.iter().map(round).collect(),
        create_time: Some(timestamp(d.create_time)),
        update_time: Some(timestamp(d.update_time)),
        usage: Some(v1::Usage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cost_usd: usage.cost_usd,
        }),
        last_seq,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_split_millis() {
        let t = timestamp(1_700_000_000_123);
        assert_eq!((t.seconds, t.nanos), (1_700_000_000, 123_000_000));
    }
}
