//! One model answering: the call, its streamed text, its persistence and its events.

use std::time::{Duration, Instant};

use futures::{FutureExt as _, StreamExt as _};
use moai_proto::v1::{self, discussion_event::Payload};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::hub::Hub;
use crate::budget::Budget;
use crate::domain::{MessageRole, MessageStatus};
use crate::llm::{ChatChunk, ChatMessage, ChatRequest, LlmClient, Usage};
use crate::store::{MessageRecord, Store, StoreError, now_ms};
use crate::wire;

/// Bytes of text past which arrived chunks are not merged further, so one
/// delta stays a small message.
const COALESCE_LIMIT: usize = 16 * 1024;

/// Speaks in one round: what a model's turn needs from its run.
pub(super) struct Speaker<'a> {
    pub hub: &'a Hub,
    pub store: &'a Store,
    pub llm: &'a LlmClient,
    /// Fires when the run is stopped: the answer ends INTERRUPTED.
    pub cancel: &'a CancellationToken,
    /// How often the text so far is written to the store.
    pub flush_every: Duration,
    pub discussion_id: &'a str,
    pub round: u32,
    /// Checked before every call; the call's cost is settled to it.
    pub budget: &'a Budget,
    /// Whose budget pays.
    pub owner: &'a str,
}

/// One model's turn.
pub(super) struct Turn {
    pub position: u32,
    pub model: String,
    pub role: MessageRole,
    pub messages: Vec<ChatMessage>,
}

enum Ending {
    Complete,
    Failed(String),
    Interrupted,
}

impl Speaker<'_> {
    fn record(
        &self,
        position: u32,
        model: &str,
        role: MessageRole,
        status: MessageStatus,
    ) -> MessageRecord {
        MessageRecord {
            id: uuid::Uuid::now_v7().to_string(),
            discussion_id: self.discussion_id.to_owned(),
            round: self.round,
            position,
            role,
            model: model.to_owned(),
            content: String::new(),
            status,
            error: String::new(),
            prompt_tokens: 0,
            completion_tokens: 0,
            cost_usd: 0.0,
            latency_ms: 0,
            create_time: now_ms(),
            author_name: String::new(),
        }
    }

    /// Stores the user's words to `model` (a mention), with who said them,
    /// and announces them.
    pub async fn user_message(
        &self,
        model: &str,
        content: &str,
        author_name: &str,
    ) -> Result<(), StoreError> {
        let mut m = self.record(0, model, MessageRole::User, MessageStatus::Complete);
        m.content = content.to_owned();
        m.author_name = author_name.to_owned();
        self.store.save_message(&m).await?;
        self.hub
            .publish(Payload::MessageCompleted(v1::MessageCompleted {
                message: Some(wire::message(&m)),
            }))
            .await;
        Ok(())
    }

    /// Calls the model, streams its answer to the hub, and stores the
    /// outcome: COMPLETE, FAILED (with the reason and any text received) or
    /// INTERRUPTED (stopped). Never fails the round.
    pub async fn speak(&self, turn: Turn) -> MessageRecord {
        let span = tracing::info_span!("model_call", model = %turn.model, round = self.round, position = turn.position);
        self.speak_inner(turn).instrument(span).await
    }

    async fn speak_inner(&self, turn: Turn) -> MessageRecord {
        // The row exists from the start (STREAMING), so a crash at any
        // point leaves the answer in the store. Queued, not waited for:
        // queue order stores it before its `message_started`, and the model
        // call does not wait for a commit.
        let mut m = self.record(
            turn.position,
            &turn.model,
            turn.role,
            MessageStatus::Streaming,
        );
        self.store.save_streaming(m.clone()).await;
        self.hub
            .publish(Payload::MessageStarted(v1::MessageStarted {
                message_id: m.id.clone(),
                model: m.model.clone(),
                round: self.round,
                role: wire::message_role(m.role) as i32,
            }))
            .await;

        // A call the budget cannot cover is not made: it ends FAILED.
        let (reservation, mut refused) = match self
            .budget
            .reserve(self.owner, self.discussion_id, &turn.model, &turn.messages)
            .await
        {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let started = Instant::now();
        let flush_every = self.flush_every;
        let mut last_flush = Instant::now();
        let mut stream = self.llm.stream_chat(ChatRequest {
            model: turn.model.clone(),
            messages: turn.messages,
            max_tokens: None,
        });
        // A chunk read while gathering deltas that is not itself a delta.
        let mut held = None;
        let ending = loop {
            if let Some(reason) = refused.take() {
                break Ending::Failed(reason);
            }
            let item = match held.take() {
                Some(item) => item,
                None => tokio::select! {
                    biased;
                    _ = self.cancel.cancelled() => break Ending::Interrupted,
                    item = stream.next() => item,
                },
            };
            match item {
                Some(Ok(ChatChunk::Delta(mut text))) => {
                    // Chunks that have already arrived go out as one delta:
                    // under load that spares every subscriber an event per
                    // chunk, and it never waits for more.
                    while text.len() < COALESCE_LIMIT {
                        match stream.next().now_or_never() {
                            Some(Some(Ok(ChatChunk::Delta(more)))) => text.push_str(&more),
                            Some(other) => {
                                held = Some(other);
                                break;
                            }
                            None => break,
                        }
                    }
                    if text.is_empty() {
                        continue;
                    }
                    m.content.push_str(&text);
                    self.hub
                        .publish(Payload::MessageDelta(v1::MessageDelta {
                            message_id: m.id.clone(),
                            model: m.model.clone(),
                            text,
                        }))
                        .await;
                    if last_flush.elapsed() >= flush_every {
                        last_flush = Instant::now();
                        self.store.save_streaming(m.clone()).await;
                    }
                }
                Some(Ok(ChatChunk::Usage(u))) => {
                    m.prompt_tokens = u.prompt_tokens;
                    m.completion_tokens = u.completion_tokens;
                    m.cost_usd = u.cost_usd;
                }
                Some(Err(e)) => break Ending::Failed(e.to_string()),
                None if m.content.trim().is_empty() => break Ending::Failed("empty answer".into()),
                None => break Ending::Complete,
            }
        };
        // Dropping the stream closes the upstream request at once.
        drop(stream);
        m.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Some(reservation) = reservation {
            let usage = Usage {
                prompt_tokens: m.prompt_tokens,
                completion_tokens: m.completion_tokens,
                cost_usd: m.cost_usd,
            };
            m.cost_usd = self.budget.settle(reservation, &usage).await;
        }
        match &ending {
            Ending::Complete => m.status = MessageStatus::Complete,
            Ending::Failed(reason) => {
                m.status = MessageStatus::Failed;
                m.error = reason.clone();
                tracing::info!(reason = %reason, "model call failed");
            }
            Ending::Interrupted => {
                m.status = MessageStatus::Interrupted;
                m.error = "stopped before the answer was complete".into();
            }
        }
        let mut ending = ending;
        if let Err(e) = self.store.save_message(&m).await {
            // What a client has seen completed, GetDiscussion must return:
            // an answer that could not be stored is reported as failed.
            tracing::error!(error = %e, "could not store the finished message");
            m.status = MessageStatus::Failed;
            m.error = "the answer could not be stored".into();
            ending = Ending::Failed(m.error.clone());
        }
        let payload = match ending {
            Ending::Failed(error) => Payload::MessageFailed(v1::MessageFailed {
                message_id: m.id.clone(),
                model: m.model.clone(),
                error,
                content: m.content.clone(),
            }),
            Ending::Complete | Ending::Interrupted => {
                Payload::MessageCompleted(v1::MessageCompleted {
                    message: Some(wire::message(&m)),
                })
            }
        };
        self.hub.publish(payload).await;
        m
    }
}
