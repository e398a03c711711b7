//! One model answering: the call, its streamed text, its persistence and its events.

use std::time::{Duration, Instant};

use futures::{FutureExt as _, StreamExt as _};
use moai_proto::v1::{self, discussion_event::Payload};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::hub::Hub;
use crate::budget::Budget;
use crate::domain::{MessageRole, MessageStatus};
use crate::llm::{
    ChatChunk, ChatMessage, ChatRequest, Failure, LlmClient, LlmError, QUEUE_NOTICE, Usage,
    explain, store_failure,
};
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
    /// What the message concludes from its text once it ended (a review's
    /// ranking, a judge's verdict), set before it is stored and announced.
    pub conclude: Option<Conclude>,
    /// Models that answer for `model`, in order, when it fails before its
    /// first token.
    pub fallbacks: Vec<String>,
}

/// Reads a finished message and fills in what it concludes.
pub(super) type Conclude = Box<dyn FnOnce(&mut MessageRecord) + Send>;

enum Ending {
    Complete,
    Failed(Failure),
    Interrupted,
}

/// How one call to one model ended.
enum CallEnd {
    Complete,
    Interrupted,
    /// Failed; `silent` when nothing (no text, no thinking) was streamed,
    /// so a fallback may still answer.
    Failed {
        failure: Failure,
        silent: bool,
    },
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
            failure_reason: None,
            answered_by: String::new(),
            reasoning: String::new(),
            queue_ms: 0,
            author_name: String::new(),
            review: None,
            consensus: None,
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
    /// INTERRUPTED (stopped). A model that fails before its first token is
    /// replaced by its next fallback, with the same context. Never fails the
    /// round.
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
        let mut first_token = None;
        let conclude = turn.conclude;
        let mut fallbacks = turn.fallbacks.into_iter();
        let mut caller = turn.model.clone();
        let ending = loop {
            if let Some(text) = refused.take() {
                break Ending::Failed(Failure {
                    reason: crate::domain::FailureReason::BudgetExceeded,
                    text,
                });
            }
            let end = self
                .call(
                    &mut m,
                    &caller,
                    turn.messages.clone(),
                    started,
                    &mut first_token,
                )
                .await;
            match end {
                CallEnd::Complete => break Ending::Complete,
                CallEnd::Interrupted => break Ending::Interrupted,
                CallEnd::Failed { failure, silent } => {
                    let next = if silent { fallbacks.next() } else { None };
                    let Some(next) = next else {
                        break Ending::Failed(failure);
                    };
                    tracing::info!(
                        failed = %caller,
                        fallback = %next,
                        reason = failure.reason.as_str(),
                        "model failed before its first token; its fallback answers"
                    );
                    self.hub
                        .publish(Payload::MessageFallback(v1::MessageFallback {
                            message_id: m.id.clone(),
                            model: m.model.clone(),
                            answered_by: next.clone(),
                            error: failure.text,
                            reason: wire::failure_reason(failure.reason) as i32,
                        }))
                        .await;
                    m.answered_by.clone_from(&next);
                    caller = next;
                }
            }
        };
        m.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Some(reservation) = reservation {
            let usage = Usage {
                prompt_tokens: m.prompt_tokens,
                completion_tokens: m.completion_tokens,
                cost_usd: m.cost_usd,
            };
            m.cost_usd = self.budget.settle(reservation, &usage).await;
        }
        let failure = match &ending {
            Ending::Failed(failure) => Some(failure.reason.as_str()),
            Ending::Complete | Ending::Interrupted => None,
        };
        let provider = self.llm.provider_for(&m.model).unwrap_or_default();
        crate::metrics::model_call(&m, &provider, first_token, failure);
        let mut ending = ending;
        match &ending {
            Ending::Complete => m.status = MessageStatus::Complete,
            Ending::Failed(failure) => {
                m.status = MessageStatus::Failed;
                m.error.clone_from(&failure.text);
                m.failure_reason = Some(failure.reason);
                tracing::info!(reason = failure.reason.as_str(), error = %failure.text, "model call failed");
            }
            Ending::Interrupted => {
                m.status = MessageStatus::Interrupted;
                m.error = "stopped before the answer was complete".into();
            }
        }
        if let Some(conclude) = conclude {
            conclude(&mut m);
        }
        if let Err(e) = self.store.save_message(&m).await {
            // What a client has seen completed, GetDiscussion must return:
            // an answer that could not be stored is reported as failed.
            tracing::error!(error = %e, "could not store the finished message");
            let failure = store_failure();
            m.status = MessageStatus::Failed;
            m.error.clone_from(&failure.text);
            m.failure_reason = Some(failure.reason);
            ending = Ending::Failed(failure);
        }
        let payload = match ending {
            Ending::Failed(failure) => Payload::MessageFailed(v1::MessageFailed {
                message_id: m.id.clone(),
                model: m.model.clone(),
                error: failure.text,
                content: m.content.clone(),
                reason: wire::failure_reason(failure.reason) as i32,
                answered_by: m.answered_by.clone(),
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

    /// One call to `model` for message `m`: streams its thinking and text
    /// into `m` and the hub.
    async fn call(
        &self,
        m: &mut MessageRecord,
        model: &str,
        messages: Vec<ChatMessage>,
        started: Instant,
        first_token: &mut Option<Duration>,
    ) -> CallEnd {
        let flush_every = self.flush_every;
        let mut last_flush = Instant::now();
        let call_started = Instant::now();
        let mut stream = self.llm.stream_chat(ChatRequest {
            model: model.to_owned(),
            messages,
            max_tokens: None,
        });
        // Nothing of this call reached the hub yet.
        let mut silent = true;
        // A chunk read while gathering deltas that is not itself one.
        let mut held = None;
        let end = loop {
            let item = match held.take() {
                Some(item) => item,
                None => tokio::select! {
                    biased;
                    _ = self.cancel.cancelled() => break CallEnd::Interrupted,
                    item = stream.next() => item,
                },
            };
            match item {
                Some(Ok(chunk @ (ChatChunk::Delta(_) | ChatChunk::Reasoning(_)))) => {
                    let (mut text, mut reasoning) = (String::new(), String::new());
                    add(chunk, &mut text, &mut reasoning);
                    // Chunks that have already arrived go out as one delta:
                    // under load that spares every subscriber an event per
                    // chunk, and it never waits for more.
                    while text.len() + reasoning.len() < COALESCE_LIMIT {
                        match stream.next().now_or_never() {
                            Some(Some(Ok(
                                more @ (ChatChunk::Delta(_) | ChatChunk::Reasoning(_)),
                            ))) => add(more, &mut text, &mut reasoning),
                            Some(other) => {
                                held = Some(other);
                                break;
                            }
                            None => break,
                        }
                    }
                    if text.is_empty() && reasoning.is_empty() {
                        continue;
                    }
                    silent = false;
                    first_token.get_or_insert_with(|| started.elapsed());
                    m.content.push_str(&text);
                    m.reasoning.push_str(&reasoning);
                    self.hub
                        .publish(Payload::MessageDelta(v1::MessageDelta {
                            message_id: m.id.clone(),
                            model: m.model.clone(),
                            text,
                            reasoning,
                        }))
                        .await;
                    if last_flush.elapsed() >= flush_every {
                        last_flush = Instant::now();
                        self.store.save_streaming(m.clone()).await;
                    }
                }
                Some(Ok(ChatChunk::Queued(waited))) => {
                    m.queue_ms = m.queue_ms.max(millis(waited));
                    self.hub
                        .publish(Payload::MessageQueued(v1::MessageQueued {
                            message_id: m.id.clone(),
                            model: m.model.clone(),
                            queued_ms: millis(waited),
                        }))
                        .await;
                }
                Some(Ok(ChatChunk::Accepted { queued })) => {
                    m.queue_ms += millis(queued);
                    if queued >= QUEUE_NOTICE {
                        tracing::info!(
                            queue_ms = millis(queued),
                            "model call waited for a provider slot"
                        );
                    }
                }
                Some(Ok(ChatChunk::Usage(u))) => {
                    m.prompt_tokens = u.prompt_tokens;
                    m.completion_tokens = u.completion_tokens;
                    m.cost_usd = u.cost_usd;
                }
                Some(Err(e)) => {
                    let provider = self.llm.provider_for(model).unwrap_or_default();
                    break CallEnd::Failed {
                        failure: explain(&e, model, &provider),
                        silent,
                    };
                }
                None if m.content.trim().is_empty() => {
                    let provider = self.llm.provider_for(model).unwrap_or_default();
                    break CallEnd::Failed {
                        failure: explain(&LlmError::EmptyAnswer, model, &provider),
                        silent,
                    };
                }
                None => break CallEnd::Complete,
            }
        };
        // Dropping the stream closes the upstream request at once.
        drop(stream);
        tracing::debug!(
            model,
            elapsed_ms = millis(call_started.elapsed()),
            "call ended"
        );
        end
    }
}

/// Appends a text or thinking chunk to what goes out next.
fn add(chunk: ChatChunk, text: &mut String, reasoning: &mut String) {
    match chunk {
        ChatChunk::Delta(t) => text.push_str(&t),
        ChatChunk::Reasoning(r) => reasoning.push_str(&r),
        _ => {}
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
