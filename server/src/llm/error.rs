//! The one error type of a model call, and how transport errors become it.

use std::fmt;
use std::time::Duration;

use async_openai::error::OpenAIError;

/// Which time limit of [`crate::llm::Timeouts`] ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutKind {
    Connect,
    FirstToken,
    Idle,
    Total,
}

/// Why a model call failed. `Display` is a short reason meant for end users
/// (it ends up in `MessageFailed.error`); it never contains keys or prompts.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum LlmError {
    #[error("{}", timeout_message(.kind, .limit))]
    Timeout { kind: TimeoutKind, limit: Duration },
    /// HTTP 429 after the retries ran out.
    #[error("rate limited (HTTP 429)")]
    RateLimited { retry_after: Option<Duration> },
    /// Any other non-success HTTP status (5xx after retries, 4xx at once, a
    /// 429 for an exhausted quota), or an error object the provider sent
    /// before any text. `detail` is the provider's own message, if it gave one.
    #[error("upstream error (HTTP {status}){}", detail_suffix(.detail))]
    Upstream { status: u16, detail: Option<String> },
    /// The stream failed or ended without finishing after `chunks` chunks of
    /// text; the text already received is still good.
    #[error("stream broke after {chunks} chunks")]
    BrokenStream { chunks: usize, reason: String },
    /// The stream finished properly but carried no text (or only whitespace).
    #[error("empty answer")]
    EmptyAnswer,
    /// A chunk that is not valid JSON (or not valid SSE).
    #[error("malformed chunk")]
    MalformedChunk { detail: String },
    /// Could not reach the provider (after retries).
    #[error("connection failed")]
    Connect { detail: String },
    /// No provider serves this model (no prefix matches, no catch-all).
    #[error("no provider configured for model {model}")]
    UnknownProvider { model: String },
    /// The settings cannot work (bad URL, zero concurrency, ...).
    #[error("invalid model settings: {reason}")]
    Config { reason: String },
    /// Anything else the HTTP client reported.
    #[error("model call failed: {detail}")]
    Other { detail: String },
}

fn timeout_message(kind: &TimeoutKind, limit: &Duration) -> String {
    let limit = human_duration(*limit);
    match kind {
        TimeoutKind::Connect => format!("timed out connecting ({limit})"),
        TimeoutKind::FirstToken => format!("timed out waiting for the first token ({limit})"),
        TimeoutKind::Idle => format!("timed out waiting for the next chunk ({limit} idle)"),
        TimeoutKind::Total => format!("timed out: answer took longer than {limit}"),
    }
}

fn detail_suffix(detail: &Option<String>) -> String {
    detail
        .as_deref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

/// `60s`, `1.5s`, `300ms`.
fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms >= 1000 && ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms >= 1000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{ms}ms")
    }
}

/// The final non-success HTTP answer, as the retry layer hands it up through
/// async-openai (boxed in `OpenAIError::Boxed`), so the status survives even
/// when the body is not OpenAI's JSON error shape.
#[derive(Debug, Clone)]
pub(crate) struct HttpStatusError {
    pub status: u16,
    pub retry_after: Option<Duration>,
    /// A 429 that says the account is out of credit (not worth retrying).
    pub quota_exhausted: bool,
    pub detail: Option<String>,
}

impl fmt::Display for HttpStatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)
    }
}

impl std::error::Error for HttpStatusError {}

impl From<HttpStatusError> for LlmError {
    fn from(e: HttpStatusError) -> Self {
        if e.status == 429 && !e.quota_exhausted {
            LlmError::RateLimited {
                retry_after: e.retry_after,
            }
        } else {
            LlmError::Upstream {
                status: e.status,
                detail: e.detail,
            }
        }
    }
}

/// Longest provider detail kept in an error message.
const MAX_DETAIL_CHARS: usize = 200;

/// The human part of an error body: OpenAI's `error.message` when the body is
/// JSON of that shape, else the text itself unless it is an HTML page (a
/// proxy's error page says nothing useful); trimmed and shortened.
pub(crate) fn error_detail(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Wrapped {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        message: Option<String>,
    }
    let text = match serde_json::from_slice::<Wrapped>(body) {
        Ok(Wrapped {
            error: Inner { message: Some(m) },
        }) => m,
        _ => String::from_utf8_lossy(body).into_owned(),
    };
    let text = redact_secrets(text.trim());
    if text.is_empty() || text.starts_with('<') {
        return None;
    }
    let mut short: String = text.chars().take(MAX_DETAIL_CHARS).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    Some(short)
}

/// Replaces key-shaped words (`sk-…`, or long runs of letters and digits
/// without a `/`, which ids and URLs have) with `[redacted]`: providers echo
/// a rejected key in their message, and the message reaches end users.
fn redact_secrets(text: &str) -> String {
    let key_shaped = |word: &str| {
        let word = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '*');
        let charset = word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*' | '.'));
        let has_digit = word.chars().any(|c| c.is_ascii_digit());
        charset
            && (((word.starts_with("sk-") || word.starts_with("sk_")) && word.len() > 6)
                || (word.len() >= 24 && has_digit))
    };
    text.split_inclusive(char::is_whitespace)
        .map(|piece| {
            let word = piece.trim_end();
            if key_shaped(word) {
                format!("[redacted]{}", &piece[word.len()..])
            } else {
                piece.to_owned()
            }
        })
        .collect()
}

impl LlmError {
    /// Maps an error from opening a call (before any chunk arrived).
    pub(crate) fn from_open(err: OpenAIError, connect_timeout: Duration) -> Self {
        match err {
            OpenAIError::Boxed(boxed) => match boxed.downcast::<HttpStatusError>() {
                Ok(status) => (*status).into(),
                Err(other) => LlmError::Other {
                    detail: other.to_string(),
                },
            },
            OpenAIError::Reqwest(e) => from_reqwest(&e, connect_timeout),
            OpenAIError::ApiError(api) => HttpStatusError {
                status: api.status_code.as_u16(),
                retry_after: None,
                quota_exhausted: false,
                detail: error_detail(api.api_error.message.as_bytes()),
            }
            .into(),
            other => LlmError::Other {
                detail: other.to_string(),
            },
        }
    }

    /// Maps an error met while reading the stream, after `chunks` text chunks.
    pub(crate) fn from_stream(err: OpenAIError, chunks: usize) -> Self {
        match err {
            OpenAIError::JSONDeserialize(e, _) => LlmError::MalformedChunk {
                detail: e.to_string(),
            },
            OpenAIError::StreamError(e) => {
                let reason = e.to_string();
                // eventsource-stream reports bad bytes as "UTF8 error"/"Parse
                // error", and transport failures as "Transport error".
                if reason.contains("UTF8 error") || reason.contains("Parse error") {
                    LlmError::MalformedChunk { detail: reason }
                } else {
                    LlmError::BrokenStream { chunks, reason }
                }
            }
            other => LlmError::BrokenStream {
                chunks,
                reason: other.to_string(),
            },
        }
    }
}

fn from_reqwest(e: &reqwest::Error, connect_timeout: Duration) -> LlmError {
    if e.is_connect() && e.is_timeout() {
        LlmError::Timeout {
            kind: TimeoutKind::Connect,
            limit: connect_timeout,
        }
    } else if e.is_connect() || e.is_request() {
        LlmError::Connect {
            detail: e.to_string(),
        }
    } else {
        LlmError::Other {
            detail: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_short_and_name_the_cause() {
        let t = |kind, ms| LlmError::Timeout {
            kind,
            limit: Duration::from_millis(ms),
        };
        assert_eq!(
            t(TimeoutKind::FirstToken, 60_000).to_string(),
            "timed out waiting for the first token (60s)"
        );
        assert_eq!(
            t(TimeoutKind::Idle, 1500).to_string(),
            "timed out waiting for the next chunk (1.5s idle)"
        );
        assert_eq!(
            t(TimeoutKind::Connect, 300).to_string(),
            "timed out connecting (300ms)"
        );
        assert_eq!(
            LlmError::RateLimited { retry_after: None }.to_string(),
            "rate limited (HTTP 429)"
        );
        assert_eq!(
            LlmError::Upstream {
                status: 502,
                detail: None
            }
            .to_string(),
            "upstream error (HTTP 502)"
        );
        assert_eq!(
            LlmError::BrokenStream {
                chunks: 12,
                reason: "reset".into()
            }
            .to_string(),
            "stream broke after 12 chunks"
        );
    }

    #[test]
    fn status_429_is_rate_limited_and_others_upstream() {
        let e = |status| {
            LlmError::from(HttpStatusError {
                status,
                retry_after: None,
                quota_exhausted: false,
                detail: None,
            })
        };
        assert!(matches!(e(429), LlmError::RateLimited { .. }));
        let quota = LlmError::from(HttpStatusError {
            status: 429,
            retry_after: None,
            quota_exhausted: true,
            detail: Some("You exceeded your current quota".into()),
        });
        assert_eq!(
            quota.to_string(),
            "upstream error (HTTP 429): You exceeded your current quota"
        );
        assert!(matches!(e(503), LlmError::Upstream { status: 503, .. }));
        assert!(matches!(e(400), LlmError::Upstream { status: 400, .. }));
    }

    #[test]
    fn error_detail_prefers_openai_message_and_truncates() {
        assert_eq!(
            error_detail(br#"{"error":{"message":"model not found","type":"x"}}"#).as_deref(),
            Some("model not found")
        );
        assert_eq!(
            error_detail(b"  bad gateway \n").as_deref(),
            Some("bad gateway")
        );
        assert_eq!(error_detail(b""), None);
        assert_eq!(
            error_detail(b"<html><body>502 Bad Gateway</body></html>"),
            None
        );
        assert_eq!(
            error_detail(br#"{"error":{"message":"Incorrect API key provided: sk-proj-abc123***xyz9. See docs."}}"#)
                .as_deref(),
            Some("Incorrect API key provided: [redacted] See docs.")
        );
        assert_eq!(
            error_detail(b"bad token a1b2c3d4e5f6a7b8c9d0e1f2a3b4 here").as_deref(),
            Some("bad token [redacted] here")
        );
        assert_eq!(
            error_detail(b"No endpoints found for anthropic/claude-sonnet-4.5-20250929.")
                .as_deref(),
            Some("No endpoints found for anthropic/claude-sonnet-4.5-20250929.")
        );
        let long = "x".repeat(1000);
        let detail = error_detail(long.as_bytes()).unwrap_or_default();
        assert_eq!(detail.chars().count(), MAX_DETAIL_CHARS + 1);
    }
}
