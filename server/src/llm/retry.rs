//! Retries before the first token: a tower layer over async-openai's
//! `ReqwestService`. It sees the HTTP response head only, so a retry can never
//! repeat text that was already streamed.
//!
//! Retried: connect errors, HTTP 429 (waiting at least `Retry-After`) and 5xx,
//! with exponential backoff and jitter, every wait capped at `max_delay_ms`.
//! Not retried: other 4xx, and a 429 for an exhausted quota. The final
//! non-success answer is handed up as an [`HttpStatusError`] so its status
//! survives whatever the body looks like.
//!
//! Every attempt first waits for a slot of the provider's adaptive
//! concurrency limit ([`Gate`]) and reports back: accepted, or overloaded
//! (429/503). A failed attempt frees its slot before the backoff, so a retry
//! queues behind calls that have not been refused yet.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use futures::future::BoxFuture;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

use super::call_state::CallState;
use super::error::{HttpStatusError, error_detail};
use super::limiter::Limits;
use super::settings::{RetrySettings, millis};

/// The concurrency limits a call's attempts go through, and its model (for
/// per-model limits).
#[derive(Clone, Debug)]
pub(crate) struct Gate {
    pub limits: Arc<Limits>,
    pub model: String,
}

/// Most of an error body we read to explain the failure.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// The wait before retry number `retry` (0 = the first retry).
///
/// Without `Retry-After`: "equal jitter" — half of `base * 2^retry` plus a
/// random part of the other half. With it: the server's wait plus up to one
/// `base` of jitter, so clients told the same second do not return together.
/// Either way never longer than `max_delay`. `jitter` is in `[0, 1]`.
pub fn backoff_delay(
    policy: &RetrySettings,
    retry: u32,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let base = millis(policy.base_delay_ms);
    let cap = millis(policy.max_delay_ms);
    let delay = match retry_after {
        Some(wait) => wait.saturating_add(base.min(cap).mul_f64(jitter)),
        None => {
            let full = base.saturating_mul(2_u32.saturating_pow(retry)).min(cap);
            full / 2 + (full / 2).mul_f64(jitter)
        }
    };
    delay.min(cap)
}

/// `Retry-After` in seconds (an HTTP date is ignored: backoff applies).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

#[derive(Clone, Debug)]
pub(crate) struct RetryLayer {
    policy: RetrySettings,
    state: Arc<CallState>,
    gate: Option<Gate>,
}

impl RetryLayer {
    pub fn new(policy: RetrySettings, state: Arc<CallState>, gate: Option<Gate>) -> Self {
        Self {
            policy,
            state,
            gate,
        }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry {
            inner,
            policy: self.policy,
            state: self.state.clone(),
            gate: self.gate.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Retry<S> {
    inner: S,
    policy: RetrySettings,
    state: Arc<CallState>,
    gate: Option<Gate>,
}

/// Waits for a slot of `gate` (if any) and starts the attempt.
async fn admit(state: &CallState, gate: Option<&Gate>) {
    if let Some(gate) = gate {
        let waiting = Instant::now();
        state.start_queue(waiting);
        let slot = gate.limits.acquire(&gate.model).await;
        let now = Instant::now();
        state.end_queue(now, slot.waited);
        let waited = now.saturating_duration_since(waiting);
        if slot.waited && waited >= std::time::Duration::from_millis(100) {
            tracing::info!(
                queue_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                limit = gate.limits.limit(),
                "waited for a provider slot"
            );
        }
        state.hold(slot);
    }
    state.start_attempt(Instant::now());
}

impl<S> Service<HttpRequestFactory> for Retry<S>
where
    S: Service<HttpRequestFactory, Response = reqwest::Response, Error = OpenAIError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = BoxFuture<'static, Result<reqwest::Response, OpenAIError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), OpenAIError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequestFactory) -> Self::Future {
        // Use the service that was made ready; leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut service = std::mem::replace(&mut self.inner, clone);
        let (policy, state, gate) = (self.policy, self.state.clone(), self.gate.clone());
        Box::pin(async move {
            admit(&state, gate.as_ref()).await;
            let mut outcome = service.call(request.clone()).await;
            let mut retry = 0;
            loop {
                let failure = match outcome {
                    Ok(response) if response.status().is_success() => {
                        state.report(true, false, None);
                        return Ok(response);
                    }
                    Ok(response) => Failure::Status(read_status_error(response).await),
                    Err(error) => Failure::Transport(error),
                };
                state.report(false, failure.is_overload(), failure.retry_after());
                state.release();
                if !failure.is_retryable() || retry >= policy.max_retries {
                    return Err(failure.into_error());
                }
                let delay = backoff_delay(&policy, retry, failure.retry_after(), rand::random());
                tracing::warn!(
                    retry = retry + 1,
                    failure = %failure,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "model call failed before the first token; retrying"
                );
                state.start_attempt(Instant::now() + delay);
                tokio::time::sleep(delay).await;
                retry += 1;
                admit(&state, gate.as_ref()).await;
                outcome = match service.ready().await {
                    Ok(ready) => ready.call(request.clone()).await,
                    Err(e) => Err(e),
                };
            }
        })
    }
}

/// A failed attempt.
enum Failure {
    /// A non-success answer, body already read.
    Status(HttpStatusError),
    Transport(OpenAIError),
}

impl Failure {
    /// Connect errors, 5xx and 429 — except a 429 for an exhausted quota,
    /// which no waiting fixes.
    fn is_retryable(&self) -> bool {
        match self {
            Failure::Status(e) => {
                (e.status == 429 && !e.quota_exhausted) || (500..600).contains(&e.status)
            }
            Failure::Transport(OpenAIError::Reqwest(e)) => e.is_connect(),
            Failure::Transport(_) => false,
        }
    }

    /// The provider says it is overloaded: 429 (not an exhausted quota) or 503.
    fn is_overload(&self) -> bool {
        matches!(self, Failure::Status(e) if (e.status == 429 && !e.quota_exhausted) || e.status == 503)
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Status(e) => e.retry_after,
            Failure::Transport(_) => None,
        }
    }

    /// The final error, handed up through async-openai; a status travels
    /// boxed so it survives whatever the body looked like.
    fn into_error(self) -> OpenAIError {
        match self {
            Failure::Status(e) => OpenAIError::Boxed(Box::new(e)),
            Failure::Transport(e) => e,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status(e) => write!(f, "{e}"),
            Failure::Transport(e) => write!(f, "{e}"),
        }
    }
}

/// Reads (a bounded part of) a non-success answer.
async fn read_status_error(mut response: reqwest::Response) -> HttpStatusError {
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    HttpStatusError {
        status,
        retry_after,
        quota_exhausted: status == 429 && is_quota_exhausted(&body),
        detail: error_detail(&body),
    }
}

/// OpenAI answers 429 with `insufficient_quota` when the account is out of
/// credit: a permanent failure that only looks like a rate limit.
fn is_quota_exhausted(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Wrapped {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        #[serde(rename = "type")]
        kind: Option<String>,
        code: Option<serde_json::Value>,
    }
    const QUOTA: &str = "insufficient_quota";
    serde_json::from_slice::<Wrapped>(body).is_ok_and(|w| {
        w.error.kind.as_deref() == Some(QUOTA)
            || w.error.code.as_ref().and_then(|c| c.as_str()) == Some(QUOTA)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetrySettings = RetrySettings {
        max_retries: 5,
        base_delay_ms: 100,
        max_delay_ms: 1_000,
    };

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn backoff_doubles_within_equal_jitter_bounds() {
        for (retry, full) in [(0, 100), (1, 200), (2, 400), (3, 800)] {
            assert_eq!(backoff_delay(&POLICY, retry, None, 0.0), ms(full / 2));
            assert_eq!(backoff_delay(&POLICY, retry, None, 1.0), ms(full));
            let mid = backoff_delay(&POLICY, retry, None, 0.5);
            assert!(mid > ms(full / 2) && mid < ms(full), "{mid:?}");
        }
    }

    #[test]
    fn backoff_is_capped_even_for_huge_attempt_numbers() {
        assert_eq!(backoff_delay(&POLICY, 4, None, 1.0), ms(1_000));
        assert_eq!(backoff_delay(&POLICY, 63, None, 1.0), ms(1_000));
        assert_eq!(backoff_delay(&POLICY, u32::MAX, None, 0.0), ms(500));
    }

    #[test]
    fn retry_after_is_a_floor_with_jitter_on_top_and_still_capped() {
        let wait = Some(ms(300));
        assert_eq!(backoff_delay(&POLICY, 0, wait, 0.0), ms(300));
        assert_eq!(backoff_delay(&POLICY, 0, wait, 1.0), ms(400));
        // Retry-After longer than the cap: the cap wins.
        assert_eq!(backoff_delay(&POLICY, 0, Some(ms(60_000)), 0.7), ms(1_000));
    }

    #[test]
    fn odd_jitter_values_are_clamped() {
        assert_eq!(backoff_delay(&POLICY, 0, None, -3.0), ms(50));
        assert_eq!(backoff_delay(&POLICY, 0, None, 7.0), ms(100));
        assert_eq!(backoff_delay(&POLICY, 0, None, f64::NAN), ms(50));
    }

    #[test]
    fn statuses_worth_retrying_are_429_and_5xx() {
        let status = |status, quota_exhausted| {
            Failure::Status(HttpStatusError {
                status,
                retry_after: None,
                quota_exhausted,
                detail: None,
            })
            .is_retryable()
        };
        assert!(status(429, false) && status(500, false) && status(503, false));
        assert!(!status(429, true), "an exhausted quota is permanent");
        assert!(!status(400, false) && !status(401, false) && !status(404, false));
        let other = Failure::Transport(OpenAIError::InvalidArgument("x".into()));
        assert!(!other.is_retryable());
    }

    #[test]
    fn only_an_exhausted_quota_makes_a_429_permanent() {
        assert!(is_quota_exhausted(
            br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#
        ));
        assert!(!is_quota_exhausted(
            br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#
        ));
        assert!(!is_quota_exhausted(
            br#"{"error":{"message":"slow down","code":429}}"#
        ));
        assert!(!is_quota_exhausted(b"Too Many Requests"));
    }

    #[test]
    fn retry_after_header_parses_seconds_only() {
        let parse = |v: &str| {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(
                reqwest::header::RETRY_AFTER,
                reqwest::header::HeaderValue::from_str(v)
                    .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static("invalid")),
            );
            retry_after(&headers)
        };
        assert_eq!(parse("2"), Some(ms(2_000)));
        assert_eq!(parse("0.5"), Some(ms(500)));
        assert_eq!(parse("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse("-1"), None);
    }
}
