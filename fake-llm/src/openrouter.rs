//! Failures as OpenRouter sends them: the status plus
//! `{"error":{"message":…,"code":<status>}}` in its own wording, which is
//! what failure reasons are read from.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An OpenRouter failure a script can answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenRouterError {
    /// 401: the key is missing or wrong.
    BadKey,
    /// 402: the account has no credits left.
    NoCredits,
    /// 404: no provider serves the model.
    NoEndpoints,
    /// 400: the id is not one OpenRouter knows.
    InvalidModel,
    /// 400: the prompt is over the model's context window.
    ContextTooLong,
    /// 429: rate limited.
    RateLimited,
    /// 500.
    Internal,
}

impl OpenRouterError {
    pub fn status(self) -> u16 {
        match self {
            Self::BadKey => 401,
            Self::NoCredits => 402,
            Self::NoEndpoints => 404,
            Self::InvalidModel | Self::ContextTooLong => 400,
            Self::RateLimited => 429,
            Self::Internal => 500,
        }
    }

    /// OpenRouter's message for it, on a request for `model`.
    pub fn message(self, model: &str) -> String {
        match self {
            Self::BadKey => "No auth credentials found".into(),
            Self::NoCredits => "Insufficient credits. This account never purchased credits. Make sure your key is on the correct account or org, and if so, purchase more at https://openrouter.ai/settings/credits".into(),
            Self::NoEndpoints => format!("No endpoints found for {model}."),
            Self::InvalidModel => format!("{model} is not a valid model ID"),
            Self::ContextTooLong => "This endpoint's maximum context length is 8192 tokens. However, you requested about 9000 tokens (8000 of text input, 1000 in the output). Please reduce the length of either one, or use the \"middle-out\" transform to compress your prompt automatically.".into(),
            Self::RateLimited => format!("Rate limit exceeded: too many requests for {model}"),
            Self::Internal => "Internal Server Error".into(),
        }
    }

    /// The whole answer.
    pub fn response(self, model: &str, retry_after: Option<u64>) -> Response {
        let status = self.status();
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({"error": {"message": self.message(model), "code": status}});
        let mut response = (code, axum::Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, secs.into());
        }
        response
    }
}
