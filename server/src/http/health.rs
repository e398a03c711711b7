//! `/healthz`: 200 when the store answers, 503 otherwise.

use axum::extract::State;
use axum::http::StatusCode;

use super::HttpState;

/// Pings the store.
pub async fn ready(State(state): State<HttpState>) -> (StatusCode, &'static str) {
    match state.engine.store().ping().await {
        Ok(()) => (StatusCode::OK, "ok\n"),
        Err(e) => {
            tracing::warn!(error = %e, "health check: the store does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n")
        }
    }
}
