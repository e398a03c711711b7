//! The HTTP listener: the front doors for programs that do not speak gRPC.
//! An OpenAI-compatible API (`/v1`), MCP over streamable HTTP (`/mcp`),
//! Prometheus metrics (`/metrics`) and a readiness probe (`/healthz`).
//! Every handler is thin: it calls the engine exactly as the gRPC services
//! do, and engine errors reach HTTP through `error.rs` only.

mod auth;
mod error;
mod health;
mod mcp;
mod metrics;
mod openai;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use error::ApiError;

use crate::auth::KeyRing;
use crate::engine::Engine;

/// What the handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub engine: Engine,
    pub keys: Arc<KeyRing>,
    /// `None` when another metrics recorder was installed first.
    pub metrics: Option<PrometheusHandle>,
}

/// Every route of the listener. `stop` ends MCP sessions at shutdown.
pub fn router(state: HttpState, stop: &CancellationToken) -> Router {
    let max_body = state.engine.limits().max_http_body_bytes;
    let authenticated = Router::new()
        .route("/v1/models", get(openai::models::list))
        .route("/v1/chat/completions", post(openai::chat::completions))
        .nest_service(
            "/mcp",
            mcp::service(state.engine.clone(), max_body, stop.child_token()),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require,
        ));
    Router::new()
        .route("/healthz", get(health::ready))
        .route("/metrics", get(metrics::render))
        .merge(authenticated)
        // Bodies past the limit are refused while they are read, before
        // anything parses them.
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Serves `router` on `listener` (over TLS when `tls` is given, with the same
/// reloadable certificate as the gRPC port) until `stop`, then lets requests
/// in flight finish.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<crate::tls::ServerTls>>,
    router: Router,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let shutdown = stop.clone().cancelled_owned();
    match tls {
        Some(tls) => {
            axum::serve(crate::tls::accept_tls(listener, tls, stop), router)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}
