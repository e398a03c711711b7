//! The same keys as the gRPC port: `authorization: Bearer <key>`, and for a
//! gateway key the end user in `x-moai-user`.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tonic::metadata::MetadataMap;

use super::{ApiError, HttpState};

/// Authenticates the request and stores its [`crate::auth::Principal`] in
/// the request extensions, or answers as the gRPC port would: 401 (403 for
/// a user key naming a user).
pub async fn require(
    State(state): State<HttpState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let metadata = MetadataMap::from_headers(req.headers().clone());
    match state.keys.authenticate(&metadata) {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            Ok(next.run(req).await)
        }
        Err(e) => Err(ApiError::Status(e.into())),
    }
}
