//! The one place where errors become HTTP responses, in OpenAI's error
//! shape: `{"error": {"message", "type", "param", "code"}}`. Engine errors
//! arrive as the gRPC status `api::error` makes of them, so both doors
//! agree on what each failure is.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::engine::EngineError;

/// Why an HTTP request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A malformed, oversized or incomplete request.
    #[error("{0}")]
    BadRequest(String),
    /// No such project or discussion (for this caller).
    #[error("{0}")]
    NotFound(String),
    /// Every model failed, or the summary did.
    #[error("{0}")]
    Upstream(String),
    /// What auth, the engine or the store refused or failed, as the gRPC
    /// port would say it.
    #[error("{}", .0.message())]
    Status(tonic::Status),
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        Self::Status(tonic::Status::from(e))
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Status(tonic::Status::from(e))
    }
}

impl From<crate::domain::InvalidInput> for ApiError {
    fn from(e: crate::domain::InvalidInput) -> Self {
        Self::BadRequest(e.0)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    param: Option<&'static str>,
    code: &'static str,
}

impl ApiError {
    /// The HTTP status, OpenAI's error type and a short code.
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use tonic::Code;
        match self {
            Self::BadRequest(_) => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_request",
            ),
            Self::NotFound(_) => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "model_not_found",
            ),
            Self::Upstream(_) => (StatusCode::BAD_GATEWAY, "upstream_error", "upstream_error"),
            Self::Status(status) => match status.code() {
                Code::InvalidArgument | Code::OutOfRange => (
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "invalid_request",
                ),
                Code::NotFound => (StatusCode::NOT_FOUND, "invalid_request_error", "not_found"),
                Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => (
                    StatusCode::CONFLICT,
                    "invalid_request_error",
                    "failed_precondition",
                ),
                Code::Unauthenticated => (
                    StatusCode::UNAUTHORIZED,
                    "authentication_error",
                    "invalid_api_key",
                ),
                Code::PermissionDenied => (
                    StatusCode::FORBIDDEN,
                    "permission_error",
                    "permission_denied",
                ),
                // Budgets and limits.
                Code::ResourceExhausted => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit_error",
                    "rate_limit_exceeded",
                ),
                Code::Unavailable => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_error",
                    "unavailable",
                ),
                Code::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, "server_error", "timeout"),
                _ => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "internal_error",
                ),
            },
        }
    }

    /// The error body OpenAI clients parse, also used inside an SSE stream.
    pub fn body(&self) -> serde_json::Value {
        let (_, kind, code) = self.parts();
        serde_json::to_value(Body {
            error: Detail {
                message: &self.to_string(),
                kind,
                param: None,
                code,
            },
        })
        .unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _, _) = self.parts();
        (status, axum::Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_refusals_get_openai_statuses() {
        let status = |e: ApiError| e.parts().0;
        assert_eq!(
            status(EngineError::ShuttingDown.into()),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(EngineError::NotFound("x".into()).into()),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(ApiError::Status(
                crate::engine::SubscriptionError::Lagged { last_seq: 1 }.into()
            )),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            status(EngineError::InvalidArgument("x".into()).into()),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn the_body_has_openais_error_shape() {
        let body = ApiError::Status(crate::auth::AuthError::Invalid.into()).body();
        assert_eq!(body["error"]["message"], "invalid API key");
        assert_eq!(body["error"]["type"], "authentication_error");
        assert_eq!(body["error"]["code"], "invalid_api_key");
        assert!(body["error"]["param"].is_null());
    }
}
