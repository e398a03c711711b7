//! Why a model call failed, told two ways: a [`FailureReason`] programs can
//! act on, and a sentence that says what to do about it. The provider's own
//! message is kept in the sentence (bounded, key-shaped words redacted, see
//! [`super::error::error_detail`]).

use super::error::{LlmError, TimeoutKind};
use crate::domain::FailureReason;

/// A failed call, explained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub reason: FailureReason,
    /// A short sentence for end users: what happened and what to do.
    pub text: String,
}

/// Phrases providers use in a 400 for a conversation over the model's window.
const CONTEXT_PHRASES: &[&str] = &[
    "context length",
    "context_length",
    "context window",
    "maximum context",
    "too many tokens",
    "prompt is too long",
    "reduce the length",
    "input is too long",
];

/// Phrases providers use for a model they do not have (OpenRouter answers
/// 400 "… is not a valid model ID" and 404 "No endpoints found for …").
const UNKNOWN_MODEL_PHRASES: &[&str] = &[
    "not a valid model",
    "no endpoints found",
    "model not found",
    "model_not_found",
    "no such model",
    "unknown model",
    "does not exist",
];

fn mentions(detail: Option<&str>, phrases: &[&str]) -> bool {
    detail.is_some_and(|d| {
        let d = d.to_lowercase();
        phrases.iter().any(|p| d.contains(p))
    })
}

/// The reason of a failed call.
pub fn reason(error: &LlmError) -> FailureReason {
    match error {
        LlmError::Timeout { .. } => FailureReason::Timeout,
        LlmError::RateLimited { .. } => FailureReason::RateLimited,
        LlmError::Upstream { status, detail } => status_reason(*status, detail.as_deref()),
        LlmError::BrokenStream { .. } | LlmError::MalformedChunk { .. } => {
            FailureReason::BrokenStream
        }
        LlmError::EmptyAnswer => FailureReason::EmptyAnswer,
        LlmError::UnknownProvider { .. } => FailureReason::UnknownModel,
        LlmError::Connect { .. } | LlmError::Config { .. } | LlmError::Other { .. } => {
            FailureReason::UpstreamError
        }
    }
}

/// The reason an HTTP error status (with the provider's message) stands for.
pub fn status_reason(status: u16, detail: Option<&str>) -> FailureReason {
    match status {
        401 | 403 => FailureReason::BadApiKey,
        402 => FailureReason::OutOfCredits,
        404 => FailureReason::UnknownModel,
        413 => FailureReason::ContextTooLong,
        // Only a 429 for an exhausted quota stays `Upstream` (see `LlmError`).
        429 => FailureReason::OutOfCredits,
        400 | 422 if mentions(detail, CONTEXT_PHRASES) => FailureReason::ContextTooLong,
        400 | 422 if mentions(detail, UNKNOWN_MODEL_PHRASES) => FailureReason::UnknownModel,
        _ if mentions(detail, UNKNOWN_MODEL_PHRASES) && status < 500 => FailureReason::UnknownModel,
        _ => FailureReason::UpstreamError,
    }
}

/// `error` of a call to `model` at `provider`, explained.
pub fn explain(error: &LlmError, model: &str, provider: &str) -> Failure {
    let reason = reason(error);
    let says = |status: &u16, detail: &Option<String>| match detail {
        Some(d) => format!("HTTP {status}: {d}"),
        None => format!("HTTP {status}"),
    };
    let text = match (reason, error) {
        (FailureReason::Timeout, LlmError::Timeout { kind, .. }) => {
            let setting = match kind {
                TimeoutKind::Connect => "connect_ms",
                TimeoutKind::FirstToken => "first_token_ms",
                TimeoutKind::Idle => "idle_ms",
                TimeoutKind::Total => "total_ms",
            };
            format!(
                "{model} {error}: try again later, or raise llm.timeouts.{setting} in the server's configuration"
            )
        }
        (FailureReason::RateLimited, _) => format!(
            "{provider} kept rate limiting {model} (HTTP 429) after the retries: try again in a minute, or add a fallback for this seat"
        ),
        (FailureReason::BadApiKey, LlmError::Upstream { status, detail }) => format!(
            "{provider} refused the server's API key ({}): the server's operator must set a valid key for {provider}",
            says(status, detail)
        ),
        (FailureReason::OutOfCredits, LlmError::Upstream { status, detail }) => format!(
            "{provider} says the account is out of credits ({}): top it up at the provider",
            says(status, detail)
        ),
        (FailureReason::UnknownModel, LlmError::UnknownProvider { .. }) => format!(
            "no provider is configured for {model}: see `moai models`, or route it in the server's configuration"
        ),
        (FailureReason::UnknownModel, LlmError::Upstream { status, detail }) => format!(
            "no model named {model} at {provider} ({}): see `moai models`",
            says(status, detail)
        ),
        (FailureReason::ContextTooLong, LlmError::Upstream { status, detail }) => format!(
            "the discussion is too long for {model}'s context window ({}): summarize it and start a new discussion, or lower llm.context_tokens for this model",
            says(status, detail)
        ),
        (FailureReason::BrokenStream, LlmError::BrokenStream { chunks, .. }) => format!(
            "the answer stream of {model} broke off after {chunks} chunks: the text so far is kept; ask again for the rest"
        ),
        (FailureReason::BrokenStream, _) => format!(
            "{provider} sent data that is not a valid answer stream for {model}: ask again; if it lasts, the provider is failing"
        ),
        (FailureReason::EmptyAnswer, _) => format!(
            "{model} finished without saying anything: ask again, or add a fallback for this seat"
        ),
        (_, LlmError::Connect { .. }) => format!(
            "could not reach {provider}: check the server's network and the provider's base_url, then try again"
        ),
        (_, LlmError::Upstream { status, detail }) => format!(
            "{provider} failed to answer for {model} ({}): try again later, or add a fallback for this seat",
            says(status, detail)
        ),
        (_, other) => format!("{other}: try again later"),
    };
    Failure { reason, text }
}

/// The failure of an answer that could not be stored.
pub fn store_failure() -> Failure {
    Failure {
        reason: FailureReason::StoreError,
        text: "the answer could not be stored: the server's database is failing; its log says why"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn upstream(status: u16, detail: &str) -> LlmError {
        LlmError::Upstream {
            status,
            detail: Some(detail.into()),
        }
    }

    fn explained(error: &LlmError) -> Failure {
        explain(error, "x/model", "openrouter")
    }

    #[test]
    fn statuses_as_openrouter_sends_them() {
        // The bodies' messages as OpenRouter sends them.
        let cases = [
            (401, "No auth credentials found", FailureReason::BadApiKey),
            (403, "Key is disabled", FailureReason::BadApiKey),
            (
                402,
                "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
                FailureReason::OutOfCredits,
            ),
            (
                404,
                "No endpoints found for x/model.",
                FailureReason::UnknownModel,
            ),
            (
                400,
                "x/model is not a valid model ID",
                FailureReason::UnknownModel,
            ),
            (
                400,
                "This endpoint's maximum context length is 8192 tokens. However, you requested about 9000 tokens.",
                FailureReason::ContextTooLong,
            ),
            (413, "Payload too large", FailureReason::ContextTooLong),
            (
                429,
                "You exceeded your current quota",
                FailureReason::OutOfCredits,
            ),
            (500, "Internal Server Error", FailureReason::UpstreamError),
            (502, "Provider returned error", FailureReason::UpstreamError),
            (400, "Invalid request", FailureReason::UpstreamError),
        ];
        for (status, detail, expected) in cases {
            assert_eq!(
                reason(&upstream(status, detail)),
                expected,
                "{status} {detail}"
            );
        }
    }

    #[test]
    fn errors_without_a_status_have_their_reasons() {
        let timeout = LlmError::Timeout {
            kind: TimeoutKind::FirstToken,
            limit: Duration::from_secs(60),
        };
        assert_eq!(reason(&timeout), FailureReason::Timeout);
        assert_eq!(
            reason(&LlmError::RateLimited { retry_after: None }),
            FailureReason::RateLimited
        );
        let broken = LlmError::BrokenStream {
            chunks: 3,
            reason: "reset".into(),
        };
        assert_eq!(reason(&broken), FailureReason::BrokenStream);
        let malformed = LlmError::MalformedChunk { detail: "x".into() };
        assert_eq!(reason(&malformed), FailureReason::BrokenStream);
        assert_eq!(reason(&LlmError::EmptyAnswer), FailureReason::EmptyAnswer);
        let connect = LlmError::Connect {
            detail: "refused".into(),
        };
        assert_eq!(reason(&connect), FailureReason::UpstreamError);
        let unrouted = LlmError::UnknownProvider { model: "x".into() };
        assert_eq!(reason(&unrouted), FailureReason::UnknownModel);
    }

    #[test]
    fn each_text_says_what_to_do() {
        let text = |e: &LlmError| explained(e).text;
        assert_eq!(
            text(&upstream(402, "Insufficient credits")),
            "openrouter says the account is out of credits (HTTP 402: Insufficient credits): top it up at the provider"
        );
        assert_eq!(
            text(&upstream(404, "No endpoints found for x/model.")),
            "no model named x/model at openrouter (HTTP 404: No endpoints found for x/model.): see `moai models`"
        );
        assert!(
            text(&upstream(401, "No auth credentials found"))
                .starts_with("openrouter refused the server's API key (HTTP 401: No auth credentials found): the server's operator must set a valid key")
        );
        assert!(
            text(&upstream(400, "maximum context length is 8192 tokens"))
                .contains("too long for x/model's context window")
        );
        assert!(text(&upstream(503, "down")).contains("try again later"));
        let timeout = LlmError::Timeout {
            kind: TimeoutKind::FirstToken,
            limit: Duration::from_secs(300),
        };
        assert_eq!(
            text(&timeout),
            "x/model timed out waiting for the first token (300s): try again later, or raise llm.timeouts.first_token_ms in the server's configuration"
        );
        assert!(
            text(&LlmError::RateLimited { retry_after: None }).contains("try again in a minute")
        );
        let broken = LlmError::BrokenStream {
            chunks: 4,
            reason: "reset".into(),
        };
        assert!(text(&broken).contains("broke off after 4 chunks"));
        assert!(text(&LlmError::EmptyAnswer).contains("without saying anything"));
        let connect = LlmError::Connect {
            detail: "refused".into(),
        };
        assert!(text(&connect).starts_with("could not reach openrouter"));
        assert_eq!(store_failure().reason, FailureReason::StoreError);
    }
}
