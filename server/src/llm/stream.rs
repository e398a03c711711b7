//! One streamed chat completion, as a state machine behind a `BoxStream`.
//!
//! Everything the call owns (the concurrency permit, the in-flight request,
//! the upstream body) lives inside the stream, so dropping the stream cancels
//! the HTTP request and frees the slot at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tracing::Instrument;

use super::chat::{ChatChunk, ChatRequest, Usage};
use super::error::{HttpStatusError, LlmError, TimeoutKind, error_detail};
use super::retry::AttemptClock;
use super::router::Route;
use super::settings::{RetrySettings, Timeouts};
use super::wire::{StreamChunk, StreamRequest};

type Upstream = async_openai::types::stream::StreamResponse<StreamChunk>;
type Item = Result<ChatChunk, LlmError>;

/// Builds the lazy stream: nothing happens until it is first polled.
pub(crate) fn chat_stream(
    route: Route,
    req: ChatRequest,
    timeouts: Timeouts,
    retry: RetrySettings,
) -> BoxStream<'static, Item> {
    let span = tracing::info_span!(
        "llm_call",
        model = %route.model_id,
        provider = %route.provider.name(),
    );
    let call = Call {
        body: StreamRequest::new(route.upstream_id.clone(), req.messages, req.max_tokens),
        route,
        timeouts,
        retry,
        phase: Phase::Start,
        pending: VecDeque::new(),
        text_chunks: 0,
        text_bytes: 0,
        visible_text: false,
        finished: false,
        usage: None,
        started: None,
    };
    futures::stream::unfold(call, move |mut call| {
        let span = span.clone();
        async move {
            let item = call.next().await?;
            Some((item, call))
        }
        .instrument(span)
    })
    // Fused: polling again after the end just yields `None`.
    .fuse()
    .boxed()
}

struct Call {
    route: Route,
    body: StreamRequest,
    timeouts: Timeouts,
    retry: RetrySettings,
    phase: Phase,
    /// Items decoded from one upstream chunk, not yet handed out.
    pending: VecDeque<Item>,
    text_chunks: usize,
    text_bytes: usize,
    /// Some delta had more than whitespace.
    visible_text: bool,
    /// A `finish_reason` was seen: the answer is complete.
    finished: bool,
    usage: Option<Usage>,
    started: Option<Instant>,
}

enum Phase {
    Start,
    Streaming(Streaming),
    Done,
}

struct Streaming {
    upstream: Upstream,
    clock: Arc<AttemptClock>,
    total_deadline: Instant,
    /// Time of the last chunk, once the first token arrived.
    last_activity: Option<Instant>,
    _slot: OwnedSemaphorePermit,
}

impl Call {
    async fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            match &mut self.phase {
                Phase::Done => return None,
                Phase::Start => match self.open().await {
                    Ok(streaming) => self.phase = Phase::Streaming(streaming),
                    Err(error) => return Some(self.fail(error)),
                },
                Phase::Streaming(s) => {
                    let (deadline, kind) = s.deadline(&self.timeouts);
                    match tokio::time::timeout_at(deadline, s.upstream.next()).await {
                        Err(_) => {
                            let limit = match kind {
                                TimeoutKind::FirstToken => self.timeouts.first_token(),
                                TimeoutKind::Idle => self.timeouts.idle(),
                                _ => self.timeouts.total(),
                            };
                            return Some(self.fail(LlmError::Timeout { kind, limit }));
                        }
                        Ok(Some(Ok(chunk))) => self.absorb(chunk),
                        Ok(Some(Err(error))) if self.finished => {
                            tracing::warn!(%error, "stream failed after the answer finished");
                            return self.end();
                        }
                        Ok(Some(Err(error))) => {
                            let error = LlmError::from_stream(error, self.text_chunks);
                            return Some(self.fail(error));
                        }
                        Ok(None) => return self.end(),
                    }
                }
            }
        }
    }

    /// Waits for a slot, then sends the request (retrying per settings) until
    /// the response head is in.
    async fn open(&mut self) -> Result<Streaming, LlmError> {
        let slot = self.route.provider.acquire_slot().await?;
        let started = Instant::now();
        self.started = Some(started);
        let total_deadline = started + self.timeouts.total();
        let clock = AttemptClock::new(started);
        let request = self.route.provider.open_stream(
            &self.body,
            self.retry,
            clock.clone(),
            self.timeouts.connect(),
        );
        let first_token = self.timeouts.first_token();
        let upstream = tokio::select! {
            biased;
            opened = request => opened?,
            () = first_token_expired(&clock, first_token) => {
                return Err(LlmError::Timeout { kind: TimeoutKind::FirstToken, limit: first_token });
            }
            () = tokio::time::sleep_until(total_deadline) => {
                return Err(LlmError::Timeout { kind: TimeoutKind::Total, limit: self.timeouts.total() });
            }
        };
        tracing::debug!("stream opened");
        Ok(Streaming {
            upstream,
            clock,
            total_deadline,
            last_activity: None,
            _slot: slot,
        })
    }

    /// Turns one upstream chunk into pending items.
    fn absorb(&mut self, chunk: StreamChunk) {
        let Phase::Streaming(streaming) = &mut self.phase else {
            return;
        };
        let mut alive = false;
        for choice in chunk.choices.into_iter().flatten() {
            if let Some(delta) = choice.delta {
                alive |= delta.reasoning.is_some_and(|r| !r.is_empty());
                if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                    alive = true;
                    self.text_chunks += 1;
                    self.text_bytes += text.len();
                    self.visible_text |= !text.trim().is_empty();
                    self.pending.push_back(Ok(ChatChunk::Delta(text)));
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finished = true;
                if reason == "error" && chunk.error.is_none() {
                    let error = mid_stream_error(self.text_chunks, None, "finish_reason error");
                    self.pending.push_back(Err(error));
                    self.stop();
                    return;
                }
            }
        }
        if alive || streaming.last_activity.is_some() {
            streaming.last_activity = Some(Instant::now());
        }
        if let Some(error) = chunk.error {
            let reason = error
                .message
                .clone()
                .unwrap_or_else(|| "error object".into());
            let error = mid_stream_error(self.text_chunks, error.status(), &reason);
            self.pending.push_back(Err(error));
            self.stop();
            return;
        }
        if let Some(usage) = chunk.usage
            && self.usage.is_none()
        {
            let usage = Usage::from(usage);
            self.usage = Some(usage);
            self.pending.push_back(Ok(ChatChunk::Usage(usage)));
        }
    }

    /// The upstream ended (or failed after finishing): judge the whole answer.
    fn end(&mut self) -> Option<Item> {
        if !self.finished {
            let error = LlmError::BrokenStream {
                chunks: self.text_chunks,
                reason: "stream ended without a finish reason".into(),
            };
            return Some(self.fail(error));
        }
        if !self.visible_text {
            return Some(self.fail(LlmError::EmptyAnswer));
        }
        let usage = self.usage.unwrap_or_default();
        tracing::info!(
            chunks = self.text_chunks,
            bytes = self.text_bytes,
            prompt_tokens = usage.prompt_tokens,
            completion_tokens = usage.completion_tokens,
            cost_usd = usage.cost_usd,
            elapsed_ms = self.elapsed_ms(),
            "model call finished"
        );
        self.stop();
        None
    }

    fn fail(&mut self, error: LlmError) -> Item {
        tracing::warn!(
            %error,
            chunks = self.text_chunks,
            elapsed_ms = self.elapsed_ms(),
            "model call failed"
        );
        tracing::debug!(?error, "model call failure detail");
        self.stop();
        Err(error)
    }

    /// Drops the upstream and the slot; later polls yield only what is pending.
    fn stop(&mut self) {
        self.phase = Phase::Done;
    }

    fn elapsed_ms(&self) -> u64 {
        self.started
            .map(|s| u64::try_from(s.elapsed().as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

impl Streaming {
    /// The next moment something must have arrived, and which limit that is.
    fn deadline(&self, timeouts: &Timeouts) -> (Instant, TimeoutKind) {
        let (deadline, kind) = match self.last_activity {
            None => (
                self.clock.attempt_started() + timeouts.first_token(),
                TimeoutKind::FirstToken,
            ),
            Some(last) => (last + timeouts.idle(), TimeoutKind::Idle),
        };
        if self.total_deadline <= deadline {
            (self.total_deadline, TimeoutKind::Total)
        } else {
            (deadline, kind)
        }
    }
}

/// Resolves once the current attempt has waited `limit` for its first token.
/// A retry moves the start forward, so the deadline is re-read after each sleep.
async fn first_token_expired(clock: &AttemptClock, limit: Duration) {
    loop {
        let deadline = clock.attempt_started() + limit;
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline).await;
    }
}

/// An error object inside the stream: before any text it is the provider's
/// failure (`Upstream`), after some text the stream broke.
fn mid_stream_error(chunks: usize, status: Option<u16>, reason: &str) -> LlmError {
    if chunks == 0 {
        HttpStatusError {
            status: status.unwrap_or(502),
            retry_after: None,
            quota_exhausted: false,
            detail: error_detail(reason.as_bytes()),
        }
        .into()
    } else {
        LlmError::BrokenStream {
            chunks,
            reason: reason.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The deadlines on paused time: the clock only moves when every task
    //! waits, so each limit is checked to the millisecond without sleeping.

    use std::time::Duration;

    use futures::StreamExt as _;
    use tokio::time::Instant;

    use super::*;
    use crate::llm::provider::Provider;
    use crate::llm::settings::ProviderSettings;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn timeouts(first_token: u64, idle: u64, total: u64) -> Timeouts {
        Timeouts {
            connect_ms: 1_000,
            first_token_ms: first_token,
            idle_ms: idle,
            total_ms: total,
        }
    }

    fn text(t: &str) -> StreamChunk {
        serde_json::from_value(serde_json::json!({"choices": [{"delta": {"content": t}}]}))
            .unwrap_or_default()
    }

    /// A call already streaming from `chunks` (each after its delay), which
    /// then go silent; it started at the current (paused) instant.
    async fn streaming(chunks: Vec<(Duration, StreamChunk)>, timeouts: Timeouts) -> Call {
        let provider = Provider::new(
            ProviderSettings {
                name: "paused".into(),
                base_url: "http://127.0.0.1:9/v1".into(),
                ..ProviderSettings::default()
            },
            reqwest::Client::new(),
        )
        .expect("provider");
        let slot = provider.acquire_slot().await.expect("slot");
        let upstream: Upstream = futures::stream::iter(chunks)
            .then(|(delay, chunk)| async move {
                tokio::time::sleep(delay).await;
                Ok(chunk)
            })
            .chain(futures::stream::pending())
            .boxed();
        let started = Instant::now();
        Call {
            body: StreamRequest::new("t/m".into(), Vec::new(), None),
            route: Route {
                provider,
                model_id: "t/m".into(),
                upstream_id: "t/m".into(),
            },
            timeouts,
            retry: RetrySettings::default(),
            phase: Phase::Streaming(Streaming {
                upstream,
                clock: AttemptClock::new(started),
                total_deadline: started + timeouts.total(),
                last_activity: None,
                _slot: slot,
            }),
            pending: VecDeque::new(),
            text_chunks: 0,
            text_bytes: 0,
            visible_text: false,
            finished: false,
            usage: None,
            started: Some(started),
        }
    }

    fn timeout_kind(item: Option<Item>) -> Option<TimeoutKind> {
        match item {
            Some(Err(LlmError::Timeout { kind, .. })) => Some(kind),
            _ => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn no_first_token_times_out_at_the_first_token_limit() {
        let start = Instant::now();
        let mut call = streaming(Vec::new(), timeouts(1_000, 300, 10_000)).await;
        assert_eq!(
            timeout_kind(call.next().await),
            Some(TimeoutKind::FirstToken)
        );
        assert_eq!(start.elapsed(), ms(1_000));
        assert!(call.next().await.is_none(), "a failed call ends");
    }

    #[tokio::test(start_paused = true)]
    async fn once_text_flows_a_silence_longer_than_idle_times_out() {
        let start = Instant::now();
        let chunks = vec![(ms(900), text("a")), (ms(250), text("b"))];
        let mut call = streaming(chunks, timeouts(1_000, 300, 10_000)).await;
        assert!(matches!(call.next().await, Some(Ok(ChatChunk::Delta(t))) if t == "a"));
        assert!(matches!(call.next().await, Some(Ok(ChatChunk::Delta(t))) if t == "b"));
        assert_eq!(start.elapsed(), ms(1_150), "gaps under idle are fine");
        assert_eq!(timeout_kind(call.next().await), Some(TimeoutKind::Idle));
        assert_eq!(
            start.elapsed(),
            ms(1_450),
            "idle counts from the last chunk"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_total_limit_ends_even_a_steady_stream() {
        let start = Instant::now();
        let chunks = (0..10).map(|i| (ms(200), text(&format!("t{i}")))).collect();
        let mut call = streaming(chunks, timeouts(1_000, 300, 1_100)).await;
        let mut deltas = 0;
        let kind = loop {
            match call.next().await {
                Some(Ok(ChatChunk::Delta(_))) => deltas += 1,
                other => break timeout_kind(other),
            }
        };
        assert_eq!(kind, Some(TimeoutKind::Total));
        assert_eq!(deltas, 5, "the chunks due before the limit");
        assert_eq!(start.elapsed(), ms(1_100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_total_limit_sooner_than_the_first_token_one_wins() {
        let start = Instant::now();
        let mut call = streaming(Vec::new(), timeouts(1_000, 300, 400)).await;
        assert_eq!(timeout_kind(call.next().await), Some(TimeoutKind::Total));
        assert_eq!(start.elapsed(), ms(400));
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_moves_the_first_token_deadline() {
        let start = Instant::now();
        let clock = AttemptClock::new(start);
        let waiting = tokio::spawn({
            let clock = clock.clone();
            async move {
                first_token_expired(&clock, ms(1_000)).await;
                Instant::now()
            }
        });
        tokio::time::sleep(ms(600)).await;
        // A retry's attempt begins: its first token may take the full limit.
        clock.set(Instant::now());
        let expired = waiting.await.expect("joined");
        assert_eq!(expired - start, ms(1_600));
    }
}
