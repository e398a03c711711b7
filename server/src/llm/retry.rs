//! Retries before the first token: a tower layer over async-openai's
//! `ReqwestService`. It sees the HTTP response head only, so a retry can never
//! repeat text that was already streamed.
//!
//! Retried: connect errors, HTTP 429 (waiting at least `Retry-After`) and 5xx,
//! with exponential backoff and jitter, every wait capped at `max_delay_ms`.
//! Not retried: other 4xx. The final non-success answer is handed up as an
//! [`HttpStatusError`] so its status survives whatever the body looks like.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use futures::future::BoxFuture;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

use super::error::{HttpStatusError, error_detail};
use super::settings::RetrySettings;

/// Most of an error body we read to explain the failure.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// When the current attempt of one call started (or, during a backoff wait,
/// when the next one will). The first-token deadline counts from here, so
/// waiting out a `Retry-After` is never mistaken for a slow model.
#[derive(Debug)]
pub(crate) struct AttemptClock {
    started: Mutex<Instant>,
}

impl AttemptClock {
    pub fn new(now: Instant) -> Arc<Self> {
        Arc::new(Self {
            started: Mutex::new(now),
        })
    }

    pub fn attempt_started(&self) -> Instant {
        *self.started.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, at: Instant) {
        *self.started.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }
}

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
    let base = Duration::from_millis(policy.base_delay_ms);
    let cap = Duration::from_millis(policy.max_delay_ms);
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
    clock: Arc<AttemptClock>,
}

impl RetryLayer {
    pub fn new(policy: RetrySettings, clock: Arc<AttemptClock>) -> Self {
        Self { policy, clock }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry {
            inner,
            policy: self.policy,
            clock: self.clock.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Retry<S> {
    inner: S,
    policy: RetrySettings,
    clock: Arc<AttemptClock>,
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
        let (policy, clock) = (self.policy, self.clock.clone());
        clock.set(Instant::now());
        let first = service.call(request.clone());
        Box::pin(async move {
            let mut outcome = first.await;
            let mut retry = 0;
            loop {
                let (retryable, wait_hint) = match &outcome {
                    Ok(response) if response.status().is_success() => return outcome,
                    Ok(response) => {
                        let status = response.status();
                        let retryable = status.as_u16() == 429 || status.is_server_error();
                        (retryable, retry_after(response.headers()))
                    }
                    Err(OpenAIError::Reqwest(e)) => (e.is_connect(), None),
                    Err(_) => (false, None),
                };
                if !retryable || retry >= policy.max_retries {
                    return finish(outcome).await;
                }
                let delay = backoff_delay(&policy, retry, wait_hint, rand::random::<f64>());
                tracing::warn!(
                    retry = retry + 1,
                    status = outcome.as_ref().ok().map(|r| r.status().as_u16()),
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "model call failed before the first token; retrying"
                );
                drop(outcome);
                clock.set(Instant::now() + delay);
                tokio::time::sleep(delay).await;
                retry += 1;
                outcome = match service.ready().await {
                    Ok(ready) => ready.call(request.clone()).await,
                    Err(e) => Err(e),
                };
            }
        })
    }
}

/// Passes success and transport errors through; turns a non-success response
/// into `OpenAIError::Boxed(HttpStatusError)`.
async fn finish(
    outcome: Result<reqwest::Response, OpenAIError>,
) -> Result<reqwest::Response, OpenAIError> {
    let mut response = match outcome {
        Ok(response) if !response.status().is_success() => response,
        other => return other,
    };
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    Err(OpenAIError::Boxed(Box::new(HttpStatusError {
        status,
        retry_after,
        detail: error_detail(&body),
    })))
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
