//! gRPC services: proto in, domain values to the engine and store, proto out.

mod discussions;
mod error;
mod models;
mod projects;
mod usage;

use std::pin::Pin;

use futures::{Stream, StreamExt as _};
use moai_proto::v1::DiscussionEvent;
use tonic::{Request, Status};

pub use discussions::DiscussionApi;
pub use models::ModelApi;
pub use projects::ProjectApi;
pub use usage::UsageApi;

use crate::auth::{AuthError, Principal};
use crate::domain::InvalidInput;
use crate::engine::SubscriptionError;

/// A server-streaming response body.
pub type EventStream<R> = Pin<Box<dyn Stream<Item = Result<R, Status>> + Send + 'static>>;

/// The caller, as the auth interceptor found it.
fn principal<T>(req: &Request<T>) -> Result<Principal, Status> {
    req.extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| AuthError::Missing.into())
}

/// Wraps each event of a subscription in the RPC's response message.
fn event_stream<R, F, S>(sub: S, wrap: F) -> EventStream<R>
where
    S: Stream<Item = Result<std::sync::Arc<DiscussionEvent>, SubscriptionError>> + Send + 'static,
    F: Fn(DiscussionEvent) -> R + Send + 'static,
    R: Send + 'static,
{
    Box::pin(sub.map(move |item| match item {
        Ok(event) => Ok(wrap(std::sync::Arc::unwrap_or_clone(event))),
        Err(e) => Err(Status::from(e)),
    }))
}

/// `page_size` as a row limit: 0 means the default, the maximum is 200.
fn page_size(requested: i32) -> Result<usize, Status> {
    match requested {
        0 => Ok(50),
        n if n < 0 => Err(InvalidInput::new("page_size must not be negative").into()),
        n => Ok(usize::try_from(n).unwrap_or(200).min(200)),
    }
}

fn page_cursor(token: &str) -> Result<Option<crate::store::PageCursor>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    crate::store::PageCursor::decode(token)
        .map(Some)
        .ok_or_else(|| InvalidInput::new("page_token is not one this server issued").into())
}

/// CORS for gRPC-Web calls from browsers: only `origins` may call (none by
/// default), with the headers gRPC-Web and moai's auth need.
pub fn grpc_web_cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use http::{HeaderName, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
        .collect();
    let allow = [
        "authorization",
        "content-type",
        "x-grpc-web",
        "x-user-agent",
        "grpc-timeout",
        crate::auth::USER_HEADER,
    ];
    let expose = ["grpc-status", "grpc-message", "grpc-status-details-bin"];
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers(allow.map(HeaderName::from_static))
        .expose_headers(expose.map(HeaderName::from_static))
}
