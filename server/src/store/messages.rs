//! Rounds and their messages.

use sqlx::AssertSqlSafe;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::writer::Command;
use super::{MessageRecord, RoundRecord, Store, StoreError, UsageTotals, now_ms};
use crate::domain::{FailureReason, MessageRole, MessageStatus, RoundMode};

const COLUMNS: &str = "id, discussion_id, round, position, role, model, content, status, error, \
     prompt_tokens, completion_tokens, cost_usd, latency_ms, create_time, author_name, \
     failure_reason, answered_by, reasoning, queue_ms";

impl Store {
    /// Queues round `number` (the run knows the rounds before it) without
    /// waiting: queue order stores the round before any message of it, and
    /// a model call need not wait for a commit.
    #[tracing::instrument(level = "debug", skip(self), fields(discussion = %discussion_id))]
    pub async fn create_round(&self, discussion_id: &str, number: u32, mode: RoundMode) {
        self.queue(Command::Round {
            discussion_id: discussion_id.to_owned(),
            number,
            mode,
            time: now_ms(),
        })
        .await;
    }

    /// Queues a message that is still being written: its row as soon as it
    /// starts, then the text received so far at each flush, so a crash
    /// loses at most one flush interval of it. Nobody waits for it, and it
    /// never overwrites a final state.
    #[tracing::instrument(level = "debug", skip_all, fields(discussion = %m.discussion_id, message = %m.id))]
    pub async fn save_streaming(&self, m: MessageRecord) {
        self.queue(Command::Streaming(m, now_ms())).await;
    }

    /// Writes a message's final state; returns once it is committed.
    #[tracing::instrument(level = "debug", skip_all, fields(discussion = %m.discussion_id, message = %m.id))]
    pub async fn save_message(&self, m: &MessageRecord) -> Result<(), StoreError> {
        self.acknowledged(|reply| Command::Message(m.clone(), now_ms(), reply))
            .await
    }

    /// Every round of a discussion with its messages, in order.
    #[tracing::instrument(level = "debug", skip(self), fields(discussion = %discussion_id))]
    pub async fn load_rounds(&self, discussion_id: &str) -> Result<Vec<RoundRecord>, StoreError> {
        let rounds =
            sqlx::query("SELECT number, mode FROM rounds WHERE discussion_id = $1 ORDER BY number")
                .bind(discussion_id)
                .fetch_all(&self.pool)
                .await?;
        let mut out: Vec<RoundRecord> = Vec::with_capacity(rounds.len());
        for row in &rounds {
            let mode: String = row.try_get("mode")?;
            out.push(RoundRecord {
                number: u32::try_from(row.try_get::<i64, _>("number")?).unwrap_or(0),
                mode: RoundMode::parse(&mode)
                    .ok_or_else(|| StoreError::Corrupt(format!("round mode {mode:?}")))?,
                messages: Vec::new(),
            });
        }
        let messages = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM messages WHERE discussion_id = $1 ORDER BY round, position, create_time"
        )))
        .bind(discussion_id)
        .fetch_all(&self.pool)
        .await?;
        for row in &messages {
            let m = message_from_row(row)?;
            if let Some(round) = out.iter_mut().find(|r| r.number == m.round) {
                round.messages.push(m);
            }
        }
        Ok(out)
    }

    /// Tokens and cost summed over a discussion's messages.
    #[tracing::instrument(level = "debug", skip(self), fields(discussion = %discussion_id))]
    pub async fn usage_totals(&self, discussion_id: &str) -> Result<UsageTotals, StoreError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS p, \
             CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS c, \
             CAST(COALESCE(SUM(cost_usd), 0) AS DOUBLE PRECISION) AS cost \
             FROM messages WHERE discussion_id = $1",
        )
        .bind(discussion_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(UsageTotals {
            prompt_tokens: u64::try_from(row.try_get::<i64, _>("p")?).unwrap_or(0),
            completion_tokens: u64::try_from(row.try_get::<i64, _>("c")?).unwrap_or(0),
            cost_usd: row.try_get::<f64, _>("cost")?,
        })
    }
}

fn message_from_row(row: &AnyRow) -> Result<MessageRecord, StoreError> {
    let role: String = row.try_get("role")?;
    let status: String = row.try_get("status")?;
    let u = |name: &str| -> Result<u64, StoreError> {
        Ok(u64::try_from(row.try_get::<i64, _>(name)?).unwrap_or(0))
    };
    Ok(MessageRecord {
        id: row.try_get("id")?,
        discussion_id: row.try_get("discussion_id")?,
        round: u32::try_from(u("round")?).unwrap_or(0),
        position: u32::try_from(u("position")?).unwrap_or(0),
        role: MessageRole::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("message role {role:?}")))?,
        model: row.try_get("model")?,
        content: row.try_get("content")?,
        status: MessageStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("message status {status:?}")))?,
        error: row.try_get("error")?,
        prompt_tokens: u("prompt_tokens")?,
        completion_tokens: u("completion_tokens")?,
        cost_usd: row.try_get("cost_usd")?,
        latency_ms: u("latency_ms")?,
        create_time: row.try_get("create_time")?,
        failure_reason: FailureReason::parse(&row.try_get::<String, _>("failure_reason")?),
        answered_by: row.try_get("answered_by")?,
        reasoning: row.try_get("reasoning")?,
        queue_ms: u("queue_ms")?,
        author_name: row.try_get("author_name")?,
    })
}
