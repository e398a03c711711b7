//! OpenAI's wire format: streamed `chat.completion.chunk` events and plain
//! `chat.completion` answers.

use std::time::Duration;

use std::future::Future;
use std::pin::Pin;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::{FutureExt, Stream};
use serde_json::{Value, json};

use super::DropGuard;

/// One step of a streamed answer.
pub(super) enum Frame {
    /// Wait, then send these bytes.
    Data(Duration, Bytes),
    /// Close the connection abruptly (no terminating chunk).
    Abort,
}

/// Everything one answer needs, fixed when the request arrives.
pub(super) struct Answer {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub text: String,
    pub first_token_delay: Duration,
    pub token_pace: Duration,
    pub cut_after_chunks: Option<usize>,
    pub malformed_after_chunks: Option<usize>,
    pub error_after_chunks: Option<usize>,
    /// Thinking streamed before the answer, in the delta field `reasoning_field`.
    pub reasoning: Option<String>,
    pub reasoning_field: &'static str,
    /// `(prompt, completion, cost)` when the client asked for usage.
    pub usage: Option<(u64, u64, f64)>,
}

impl Answer {
    /// `data: {"id":…,"choices":[{"index":0,"delta":<delta>,"finish_reason":…}]}`.
    /// Built by hand around a prefix made once: this is the hot path of the
    /// load benchmark.
    fn chunk(&self, head: &str, delta: &Value, finish_reason: Option<&str>) -> Bytes {
        let finish = match finish_reason {
            Some(reason) => Value::from(reason).to_string(),
            None => "null".to_owned(),
        };
        Bytes::from(format!(
            "{head}\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
        ))
    }

    /// `data: {"id":…,"object":…,"created":…,"model":…,` shared by all chunks.
    fn head(&self) -> String {
        format!(
            "data: {{\"id\":{},\"object\":\"chat.completion.chunk\",\"created\":{},\"model\":{},",
            Value::from(self.id.as_str()),
            self.created,
            Value::from(self.model.as_str()),
        )
    }

    /// How OpenRouter reports a provider failing after the headers went out.
    fn error_chunk(&self) -> Bytes {
        event(&json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "error": {"code": 502, "message": "Provider returned error"},
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
        }))
    }

    /// The frames of the streamed answer, in order.
    pub fn frames(&self) -> Vec<Frame> {
        let tokens = super::script::tokens(&self.text);
        let head = self.head();
        let mut frames = Vec::with_capacity(tokens.len() + 4);
        frames.push(Frame::Data(
            Duration::ZERO,
            self.chunk(&head, &json!({"role": "assistant", "content": ""}), None),
        ));
        for token in super::script::tokens(self.reasoning.as_deref().unwrap_or("")) {
            frames.push(Frame::Data(
                self.token_pace,
                self.chunk(&head, &json!({ self.reasoning_field: token }), None),
            ));
        }
        for (i, token) in tokens.iter().enumerate() {
            if self.cut_after_chunks == Some(i) {
                frames.push(Frame::Abort);
                return frames;
            }
            if self.malformed_after_chunks == Some(i) {
                frames.push(Frame::Data(
                    self.token_pace,
                    Bytes::from_static(b"data: {\"id\": \"broken\", \"choices\": [{\"delta\n\n"),
                ));
                frames.push(Frame::Data(
                    Duration::ZERO,
                    Bytes::from_static(b"data: [DONE]\n\n"),
                ));
                return frames;
            }
            if self.error_after_chunks == Some(i) {
                frames.push(Frame::Data(self.token_pace, self.error_chunk()));
                frames.push(Frame::Data(
                    Duration::ZERO,
                    Bytes::from_static(b"data: [DONE]\n\n"),
                ));
                return frames;
            }
            let delay = if i == 0 {
                self.first_token_delay
            } else {
                self.token_pace
            };
            frames.push(Frame::Data(
                delay,
                self.chunk(&head, &json!({"content": token}), None),
            ));
        }
        if self.cut_after_chunks.is_some_and(|n| n >= tokens.len()) {
            frames.push(Frame::Abort);
            return frames;
        }
        let finish_delay = if tokens.is_empty() {
            self.first_token_delay
        } else {
            Duration::ZERO
        };
        frames.push(Frame::Data(
            finish_delay,
            self.chunk(&head, &json!({}), Some("stop")),
        ));
        if let Some((prompt, completion, cost)) = self.usage {
            let usage = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage_json(prompt, completion, cost),
            });
            frames.push(Frame::Data(Duration::ZERO, event(&usage)));
        }
        frames.push(Frame::Data(
            Duration::ZERO,
            Bytes::from_static(b"data: [DONE]\n\n"),
        ));
        frames
    }

    /// A non-streamed `chat.completion`.
    pub fn completion(&self) -> Value {
        let (prompt, completion, cost) = self.usage.unwrap_or((0, 0, 0.0));
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": self.text},
                "finish_reason": "stop",
            }],
            "usage": usage_json(prompt, completion, cost),
        })
    }
}

fn usage_json(prompt: u64, completion: u64, cost: f64) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cost": cost,
    })
}

fn event(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// The frames as an HTTP body stream. The guard records the stream as
/// dropped unless it ran to its end (a scripted abort counts as an end);
/// once `stopped` resolves the stream is cut off like a crashed server's.
pub(super) fn body_stream(
    frames: Vec<Frame>,
    guard: DropGuard,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    struct State<S> {
        frames: std::vec::IntoIter<Frame>,
        guard: DropGuard,
        stopped: Pin<Box<S>>,
        /// Cut off: never poll `stopped` again.
        done: bool,
        /// When the next frame is due: delays add up from the start, so
        /// timer granularity does not accumulate over many tokens.
        due: tokio::time::Instant,
    }
    let state = State {
        frames: frames.into_iter(),
        guard,
        stopped: Box::pin(stopped),
        done: false,
        due: tokio::time::Instant::now(),
    };
    futures::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        let frame = state.frames.next();
        let delay = match &frame {
            Some(Frame::Data(delay, _)) => *delay,
            // Pause before a cut: the body going pending makes hyper flush
            // what was written, so the client really gets the chunks before
            // the cut (an error right away would discard them).
            Some(Frame::Abort) => Duration::from_millis(10),
            None => Duration::ZERO,
        };
        state.due += delay;
        let stopped = if state.due <= tokio::time::Instant::now() {
            (&mut state.stopped).now_or_never().is_some()
        } else {
            tokio::select! {
                biased;
                () = &mut state.stopped => true,
                () = tokio::time::sleep_until(state.due) => false,
            }
        };
        match frame {
            _ if stopped => {
                state.guard.defuse();
                state.done = true;
                Some((Err(cut("fake LLM stopped")), state))
            }
            Some(Frame::Data(_, bytes)) => {
                state.guard.sent_frame();
                Some((Ok(bytes), state))
            }
            Some(Frame::Abort) => {
                state.guard.defuse();
                state.done = true;
                Some((Err(cut("scripted cut")), state))
            }
            None => {
                state.guard.finished();
                None
            }
        }
    })
}

fn cut(why: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionAborted, why)
}

/// A response whose body fails at once: the connection is cut.
pub(super) fn cut_off() -> Response {
    let body = futures::stream::once(async { Err::<Bytes, _>(cut("fake LLM stopped")) });
    Response::new(Body::from_stream(body))
}
