//! `POST /v1/chat/completions`: the last user message is the question and
//! the earlier ones its context. moai runs an open round of the project's
//! models, then the consensus summary, and answers with the summary; the
//! members' answers travel as `reasoning_content`. The discussion is stored
//! like any other, and its id is the response's `id` (and the
//! `x-moai-discussion-id` header), so `moai show <id>` finds it.

use std::convert::Infallible;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use moai_proto::v1::discussion_event::Payload;
use moai_proto::v1::{DiscussionEvent, MessageRole};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::project_for_model;
use super::relay::Relay;
use super::wire::{
    ChatRequest, Choice, Chunk, ChunkChoice, Completion, Delta, InMessage, OutMessage, OutUsage,
};
use crate::auth::Principal;
use crate::domain::BoundedText;
use crate::engine::{Engine, Subscription};
use crate::http::{ApiError, HttpState};
use crate::store::{UsageTotals, now_ms};

/// Header naming the discussion a completion was stored as.
pub const DISCUSSION_HEADER: &str = "x-moai-discussion-id";

/// Answers a chat completion with the council's consensus.
#[tracing::instrument(skip_all, fields(principal = %owner))]
pub async fn completions(
    State(state): State<HttpState>,
    Extension(owner): Extension<Principal>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| {
        ApiError::BadRequest(format!(
            "the request body could not be read ({e}); the limit is {} bytes",
            state.engine.limits().max_http_body_bytes
        ))
    })?;
    let req: ChatRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("the body is not a chat completion request: {e}"))
    })?;
    let engine = state.engine.clone();
    let project = project_for_model(&engine, &owner, &req.model).await?;
    let question = question(&req.messages, engine.limits().max_text_bytes)?;
    let mut sub = engine.open(&owner, &project.id, question).await?;
    // The run's first event names the discussion.
    let discussion_id = match sub.next().await {
        Some(Ok(event)) => event.discussion_id.clone(),
        Some(Err(e)) => return Err(ApiError::Status(e.into())),
        None => {
            return Err(ApiError::Upstream(
                "the discussion ended before it began".into(),
            ));
        }
    };
    let answer = Answer {
        id: discussion_id.clone(),
        model: req.model.clone(),
        created: now_ms() / 1000,
    };
    let header = HeaderValue::from_str(&discussion_id)
        .map_err(|_| ApiError::Upstream("the discussion id is not a header value".into()))?;
    let mut response = if req.stream {
        stream(engine, owner, sub, answer).into_response()
    } else {
        let mut reasoning = String::new();
        let mut content = String::new();
        let outcome = deliberate(
            &engine,
            &owner,
            &discussion_id,
            sub,
            &mut |piece| match piece {
                Piece::Reasoning(t) => reasoning.push_str(&t),
                Piece::Content(t) => content.push_str(&t),
            },
        )
        .await?;
        Json(Completion {
            id: answer.id,
            object: "chat.completion",
            created: answer.created,
            model: answer.model,
            choices: vec![Choice {
                index: 0,
                message: OutMessage {
                    role: "assistant",
                    content: outcome.summary,
                    reasoning_content: Some(reasoning.trim_end().to_owned()),
                },
                finish_reason: "stop",
            }],
            usage: outcome.usage.into(),
        })
        .into_response()
    };
    response.headers_mut().insert(DISCUSSION_HEADER, header);
    Ok(response)
}

/// What every chunk repeats.
#[derive(Clone)]
struct Answer {
    id: String,
    model: String,
    created: i64,
}

impl Answer {
    fn chunk(&self, delta: Delta, finish: Option<&'static str>) -> Chunk {
        Chunk {
            id: self.id.clone(),
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
            }],
            usage: None,
        }
    }
}

/// The streamed answer. The council runs in its own task, so a client
/// that leaves stops nothing: the discussion still gets its summary.
fn stream(
    engine: Engine,
    owner: Principal,
    sub: Subscription,
    answer: Answer,
) -> impl IntoResponse {
    let (tx, rx) = mpsc::unbounded_channel();
    let send = move |tx: &mpsc::UnboundedSender<Result<Event, Infallible>>, value: &Chunk| {
        if let Ok(event) = Event::default().json_data(value) {
            let _ = tx.send(Ok(event));
        }
    };
    tokio::spawn(async move {
        let role = Delta {
            role: Some("assistant"),
            ..Delta::default()
        };
        send(&tx, &answer.chunk(role, None));
        let outcome = deliberate(&engine, &owner, &answer.id, sub, &mut |piece| {
            let delta = match piece {
                Piece::Reasoning(t) => Delta {
                    reasoning_content: Some(t),
                    ..Delta::default()
                },
                Piece::Content(t) => Delta {
                    content: Some(t),
                    ..Delta::default()
                },
            };
            send(&tx, &answer.chunk(delta, None));
        })
        .await;
        match outcome {
            Ok(outcome) => {
                send(&tx, &answer.chunk(Delta::default(), Some("stop")));
                let mut usage = answer.chunk(Delta::default(), None);
                usage.choices.clear();
                usage.usage = Some(OutUsage::from(outcome.usage));
                send(&tx, &usage);
            }
            Err(e) => {
                if let Ok(event) = Event::default().json_data(e.body()) {
                    let _ = tx.send(Ok(event));
                }
            }
        }
        let _ = tx.send(Ok(Event::default().data("[DONE]")));
    });
    Sse::new(UnboundedReceiverStream::new(rx)).keep_alive(KeepAlive::default())
}

/// A piece of the answer as it is written.
enum Piece {
    /// The members' deliberation.
    Reasoning(String),
    /// The consensus.
    Content(String),
}

struct Outcome {
    summary: String,
    usage: UsageTotals,
}

/// Follows the open round to its end, then runs the summary; `emit`
/// gets the answer as it is written.
async fn deliberate(
    engine: &Engine,
    owner: &Principal,
    discussion_id: &str,
    mut round: Subscription,
    emit: &mut (dyn FnMut(Piece) + Send),
) -> Result<Outcome, ApiError> {
    let mut relay = Relay::default();
    while let Some(event) = round.next().await {
        let event = event.map_err(|e| ApiError::Status(e.into()))?;
        let text = relay_event(&mut relay, &event);
        if !text.is_empty() {
            emit(Piece::Reasoning(text));
        }
    }
    if !relay.any_answer() {
        return Err(ApiError::Upstream(format!(
            "no model of the project answered: {}",
            relay.failures()
        )));
    }
    let mut summary = engine.summarize(owner, discussion_id, None).await?;
    let mut content = String::new();
    while let Some(event) = summary.next().await {
        let event = event.map_err(|e| ApiError::Status(e.into()))?;
        match event.payload.as_ref() {
            Some(Payload::MessageDelta(d)) => {
                content.push_str(&d.text);
                emit(Piece::Content(d.text.clone()));
            }
            Some(Payload::MessageCompleted(c)) => {
                if let Some(m) = &c.message {
                    // Whatever the deltas did not carry.
                    if let Some(rest) = m.content.strip_prefix(content.as_str())
                        && !rest.is_empty()
                    {
                        emit(Piece::Content(rest.to_owned()));
                    }
                    content = m.content.clone();
                }
            }
            Some(Payload::MessageFailed(f)) => {
                return Err(ApiError::Upstream(format!(
                    "the consensus summary by {} failed: {}",
                    f.model, f.error
                )));
            }
            _ => {}
        }
    }
    let usage = engine.get(owner, discussion_id).await?.usage;
    Ok(Outcome {
        summary: content,
        usage,
    })
}

/// Feeds one event of the open round to `relay`; returns what to write.
fn relay_event(relay: &mut Relay, event: &DiscussionEvent) -> String {
    match event.payload.as_ref() {
        Some(Payload::MessageStarted(s)) if s.role == MessageRole::Model as i32 => {
            relay.started(&s.message_id, &s.model);
            String::new()
        }
        Some(Payload::MessageDelta(d)) => relay.delta(&d.message_id, &d.text),
        Some(Payload::MessageCompleted(c)) => match &c.message {
            Some(m) => relay.finished(&m.id, &m.content, None),
            None => String::new(),
        },
        Some(Payload::MessageFailed(f)) => {
            relay.finished(&f.message_id, &f.content, Some(&f.error))
        }
        _ => String::new(),
    }
}

/// The last user message, preceded by as much of the conversation before
/// it as fits the question limit (newest first kept).
fn question(messages: &[InMessage], max_bytes: usize) -> Result<BoundedText, ApiError> {
    let last = messages
        .iter()
        .rposition(|m| m.role == "user" && !m.text().trim().is_empty())
        .ok_or_else(|| {
            ApiError::BadRequest("the messages hold no user message to ask the council".into())
        })?;
    let asked = messages[last].text().trim().to_owned();
    let earlier: Vec<String> = messages[..last]
        .iter()
        .map(|m| (m.role.as_str(), m.text()))
        .filter(|(_, t)| !t.trim().is_empty())
        .map(|(role, t)| format!("{role}: {}", t.trim()))
        .collect();
    const BEFORE: &str = "The conversation so far:\n\n";
    const AFTER: &str = "\n\nThe question now:\n\n";
    let budget = max_bytes.saturating_sub(asked.len() + BEFORE.len() + AFTER.len());
    let mut kept = Vec::new();
    let mut used = 0;
    for m in earlier.iter().rev() {
        if used + m.len() + 2 > budget {
            break;
        }
        used += m.len() + 2;
        kept.push(m.as_str());
    }
    let text = if kept.is_empty() {
        asked
    } else {
        kept.reverse();
        format!("{BEFORE}{}{AFTER}{asked}", kept.join("\n\n"))
    };
    Ok(BoundedText::parse(
        &text,
        "the last user message",
        max_bytes,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(pairs: &[(&str, &str)]) -> Vec<InMessage> {
        pairs
            .iter()
            .map(|(role, text)| InMessage {
                role: (*role).into(),
                content: Some(super::super::wire::Content::Text((*text).into())),
            })
            .collect()
    }

    #[test]
    fn the_last_user_message_is_the_question_and_earlier_ones_its_context() {
        let q = question(
            &msgs(&[
                ("system", "be brief"),
                ("user", "first"),
                ("assistant", "reply"),
                ("user", "second"),
            ]),
            10_000,
        )
        .expect("a question");
        let text = q.into_string();
        assert!(text.starts_with(
            "The conversation so far:\n\nsystem: be brief\n\nuser: first\n\nassistant: reply"
        ));
        assert!(text.ends_with("The question now:\n\nsecond"));
    }

    #[test]
    fn context_is_trimmed_oldest_first_to_fit() {
        let long = "x".repeat(300);
        let q = question(
            &msgs(&[("user", &long), ("assistant", "short"), ("user", "q")]),
            120,
        )
        .expect("fits");
        let text = q.into_string();
        assert!(!text.contains("xxx"), "the oldest message is dropped");
        assert!(text.contains("assistant: short"));
    }

    #[test]
    fn no_user_message_is_a_bad_request() {
        let err = question(&msgs(&[("system", "hi"), ("assistant", "yo")]), 1000)
            .expect_err("no question");
        assert!(matches!(err, ApiError::BadRequest(_)));
    }
}
