//! The one place where errors become gRPC statuses.

use tonic::Status;

use crate::auth::AuthError;
use crate::domain::InvalidInput;
use crate::engine::{EngineError, SubscriptionError};
use crate::store::StoreError;

impl From<InvalidInput> for Status {
    fn from(e: InvalidInput) -> Self {
        Status::invalid_argument(e.0)
    }
}

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(msg) => Status::already_exists(msg),
            other => {
                tracing::error!(error = %other, "store failure");
                Status::internal("internal storage error; the server log has details")
            }
        }
    }
}

impl From<EngineError> for Status {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::InvalidArgument(msg) => Status::invalid_argument(msg),
            EngineError::NotFound(msg) => Status::not_found(msg),
            EngineError::FailedPrecondition(msg) => Status::failed_precondition(msg),
            EngineError::ShuttingDown => {
                Status::unavailable("the server is shutting down; try again shortly")
            }
            EngineError::Budget(refusal) => Status::resource_exhausted(refusal.to_string()),
            EngineError::Store(e) => e.into(),
        }
    }
}

impl From<SubscriptionError> for Status {
    fn from(e: SubscriptionError) -> Self {
        Status::resource_exhausted(e.to_string())
    }
}

impl From<AuthError> for Status {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::UserHeaderNotAllowed => Status::permission_denied(e.to_string()),
            AuthError::LocalKey { .. } => {
                tracing::error!(error = %e, "local key failure");
                Status::internal("internal error; the server log has details")
            }
            other => Status::unauthenticated(other.to_string()),
        }
    }
}

/// An export that could not be rendered (a server fault, not the caller's).
#[derive(Debug)]
pub(super) struct ExportFailed(pub String);

impl From<ExportFailed> for Status {
    fn from(e: ExportFailed) -> Self {
        tracing::error!(error = %e.0, "export failed");
        Status::internal("could not render the export")
    }
}

/// A non-admin asking for someone else's usage.
#[derive(Debug)]
pub(super) struct NotAdmin;

impl From<NotAdmin> for Status {
    fn from(_: NotAdmin) -> Self {
        Status::permission_denied("only admin principals may read the usage of others")
    }
}
