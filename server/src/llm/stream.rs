//! One streamed chat completion, as a state machine behind a `BoxStream`.
//!
//! Everything the call owns (the concurrency slot, the in-flight request,
//! the upstream body) lives inside the stream, so dropping the stream cancels
//! the HTTP request and frees the slot at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;

use super::call_state::{CallState, Clock};
use super::chat::{ChatChunk, ChatRequest, QUEUE_NOTICE, Usage};
use super::error::{HttpStatusError, LlmError, TimeoutKind, error_detail};
use super::limiter::Slot;
use super::retry::Gate;
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
        body: Arc::new(StreamRequest::new(
            route.upstream_id.clone(),
            req.messages,
            req.max_tokens,
        )),
        route,
        timeouts,
        retry,
        phase: Phase::Start,
        pending: VecDeque::new(),
        text_chunks: 0,
        text_bytes: 0,
        reasoning_chunks: 0,
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
    body: Arc<StreamRequest>,
    timeouts: Timeouts,
    retry: RetrySettings,
    phase: Phase,
    /// Items decoded from one upstream chunk, not yet handed out.
    pending: VecDeque<Item>,
    text_chunks: usize,
    text_bytes: usize,
    reasoning_chunks: usize,
    /// Some delta had more than whitespace.
    visible_text: bool,
    /// A `finish_reason` was seen: the answer is complete.
    finished: bool,
    usage: Option<Usage>,
    started: Option<Instant>,
}

enum Phase {
    Start,
    Opening(Opening),
    Streaming(Streaming),
    Done,
}

/// The request on its way: queued for a slot, retrying, or waiting for the
/// response head.
struct Opening {
    request: BoxFuture<'static, Result<Upstream, LlmError>>,
    state: Arc<CallState>,
    clock: watch::Receiver<Clock>,
    /// [`ChatChunk::Queued`] was sent.
    queue_told: bool,
}

struct Streaming {
    upstream: Upstream,
    state: Arc<CallState>,
    total_deadline: Instant,
    /// Time of the last chunk, once the first token arrived.
    last_activity: Option<Instant>,
    _slot: Option<Slot>,
}

impl Call {
    async fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            match &mut self.phase {
                Phase::Done => return None,
                Phase::Start => self.phase = Phase::Opening(self.open()),
                Phase::Opening(opening) => {
                    let told = opening.queue_told;
                    let opened = tokio::select! {
                        biased;
                        opened = &mut opening.request => opened,
                        waited = queued_for(&mut opening.clock, QUEUE_NOTICE), if !told => {
                            opening.queue_told = true;
                            return Some(Ok(ChatChunk::Queued(waited)));
                        }
                    };
                    match opened {
                        Ok(upstream) => {
                            let state = opening.state.clone();
                            let clock = state.clock();
                            let queued = clock.queued;
                            tracing::debug!(queue_ms = millis_u64(queued), "stream opened");
                            crate::metrics::provider_queue(self.route.provider.name(), queued);
                            self.phase = Phase::Streaming(Streaming {
                                upstream,
                                total_deadline: clock.began + queued + self.timeouts.total(),
                                last_activity: None,
                                _slot: state.take_slot(),
                                state,
                            });
                            return Some(Ok(ChatChunk::Accepted { queued }));
                        }
                        Err(error) => return Some(self.fail(error)),
                    }
                }
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

    /// Starts the request: every attempt waits for a slot of the provider
    /// (not counted against the timeouts), then is sent, retried per
    /// settings, until the response head is in.
    fn open(&mut self) -> Opening {
        let started = Instant::now();
        self.started = Some(started);
        let state = CallState::new(started);
        let route = self.route.clone();
        let body = self.body.clone();
        let (timeouts, retry) = (self.timeouts, self.retry);
        let call_state = state.clone();
        let request = async move {
            let gate = Gate {
                limits: route.provider.limits(),
                model: route.model_id.clone(),
            };
            let request = route.provider.open_stream(
                &body,
                retry,
                call_state.clone(),
                Some(gate),
                timeouts.connect(),
            );
            let first_token = timeouts.first_token();
            tokio::select! {
                biased;
                opened = request => opened,
                () = first_token_expired(&call_state, first_token) => {
                    Err(LlmError::Timeout { kind: TimeoutKind::FirstToken, limit: first_token })
                }
                () = total_expired(&call_state, timeouts.total()) => {
                    Err(LlmError::Timeout { kind: TimeoutKind::Total, limit: timeouts.total() })
                }
            }
        };
        Opening {
            request: Box::pin(request),
            clock: state.subscribe(),
            state,
            queue_told: false,
        }
    }

    /// Turns one upstream chunk into pending items.
    fn absorb(&mut self, chunk: StreamChunk) {
        let Phase::Streaming(streaming) = &mut self.phase else {
            return;
        };
        let mut alive = false;
        for choice in chunk.choices.into_iter().flatten() {
            if let Some(mut delta) = choice.delta {
                if let Some(reasoning) = delta.take_reasoning() {
                    // Thinking is a sign of life: it counts for the first-token
                    // and idle limits, but it is not the answer.
                    alive = true;
                    self.reasoning_chunks += 1;
                    self.pending.push_back(Ok(ChatChunk::Reasoning(reasoning)));
                }
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
            reasoning_chunks = self.reasoning_chunks,
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
        self.started.map(|s| millis_u64(s.elapsed())).unwrap_or(0)
    }
}

fn millis_u64(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Streaming {
    /// The next moment something must have arrived, and which limit that is.
    fn deadline(&self, timeouts: &Timeouts) -> (Instant, TimeoutKind) {
        let (deadline, kind) = match self.last_activity {
            None => (
                self.state.attempt_started().unwrap_or_else(Instant::now) + timeouts.first_token(),
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

/// Waits for the clock to change; never resolves once it cannot.
async fn clock_changed(clock: &mut watch::Receiver<Clock>) {
    if clock.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Resolves once the current attempt has waited `limit` for its first token.
/// A retry moves the start forward and a wait for a slot pauses it, so the
/// deadline is re-read whenever the clock changes.
async fn first_token_expired(state: &CallState, limit: Duration) {
    let mut clock = state.subscribe();
    loop {
        let attempt = clock.borrow_and_update().attempt;
        let Some(started) = attempt else {
            clock_changed(&mut clock).await;
            continue;
        };
        let deadline = started + limit;
        if Instant::now() >= deadline {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {}
            () = clock_changed(&mut clock) => {}
        }
    }
}

/// Resolves once the call has taken `limit`, time queued for slots left out.
async fn total_expired(state: &CallState, limit: Duration) {
    let mut clock = state.subscribe();
    loop {
        let now = clock.borrow_and_update().to_owned();
        if now.queued_since.is_some() {
            clock_changed(&mut clock).await;
            continue;
        }
        let deadline = now.began + now.queued + limit;
        if Instant::now() >= deadline {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {}
            () = clock_changed(&mut clock) => {}
        }
    }
}

/// Resolves with the time waited once the call has waited `notice` for
/// slots in all; never while it is not waiting.
async fn queued_for(clock: &mut watch::Receiver<Clock>, notice: Duration) -> Duration {
    loop {
        let now = clock.borrow_and_update().to_owned();
        let Some(since) = now.queued_since else {
            clock_changed(clock).await;
            continue;
        };
        let at = since + notice.saturating_sub(now.queued);
        if Instant::now() >= at {
            return now.queued_total(Instant::now());
        }
        tokio::select! {
            () = tokio::time::sleep_until(at) => {}
            () = clock_changed(clock) => {}
        }
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
            .expect("text chunk")
    }

    /// A call already streaming from `chunks` (each after its delay), which
    /// then go silent; it began, unqueued, at the current (paused) instant.
    fn streaming(chunks: Vec<(Duration, StreamChunk)>, timeouts: Timeouts) -> Call {
        moai_proto::tls::install_crypto_provider();
        let provider = Provider::new(
            ProviderSettings {
                name: "paused".into(),
                base_url: "http://127.0.0.1:9/v1".into(),
                ..ProviderSettings::default()
            },
            reqwest::Client::new(),
        )
        .expect("provider");
        let upstream: Upstream = futures::stream::iter(chunks)
            .then(|(delay, chunk)| async move {
                tokio::time::sleep(delay).await;
                Ok(chunk)
            })
            .chain(futures::stream::pending())
            .boxed();
        let started = Instant::now();
        let state = CallState::new(started);
        let clock = state.clock();
        Call {
            body: Arc::new(StreamRequest::new("t/m".into(), Vec::new(), None)),
            route: Route {
                provider,
                model_id: "t/m".into(),
                upstream_id: "t/m".into(),
            },
            timeouts,
            retry: RetrySettings::default(),
            phase: Phase::Streaming(Streaming {
                upstream,
                total_deadline: clock.began + clock.queued + timeouts.total(),
                last_activity: None,
                _slot: None,
                state,
            }),
            pending: VecDeque::new(),
            text_chunks: 0,
            text_bytes: 0,
            reasoning_chunks: 0,
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
        let mut call = streaming(Vec::new(), timeouts(1_000, 300, 10_000));
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
        let mut call = streaming(chunks, timeouts(1_000, 300, 10_000));
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
        let mut call = streaming(chunks, timeouts(1_000, 300, 1_100));
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
        let mut call = streaming(Vec::new(), timeouts(1_000, 300, 400));
        assert_eq!(timeout_kind(call.next().await), Some(TimeoutKind::Total));
        assert_eq!(start.elapsed(), ms(400));
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_moves_the_first_token_deadline() {
        let start = Instant::now();
        let state = CallState::new(start);
        let waiting = tokio::spawn({
            let state = state.clone();
            async move {
                first_token_expired(&state, ms(1_000)).await;
                Instant::now()
            }
        });
        tokio::time::sleep(ms(600)).await;
        // A retry's attempt begins: its first token may take the full limit.
        state.start_attempt(Instant::now());
        let expired = waiting.await.expect("joined");
        assert_eq!(expired - start, ms(1_600));
    }
}
