use crate::budget::{BudgetError, Refusal};
use crate::domain::InvalidInput;
use crate::store::StoreError;

/// Why the engine refused or failed an operation; mapped to a gRPC status in `api::error`.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("the server is shutting down")]
    ShuttingDown,
    /// A budget refused the run (RESOURCE_EXHAUSTED).
    #[error(transparent)]
    Budget(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<BudgetError> for EngineError {
    fn from(e: BudgetError) -> Self {
        match e {
            BudgetError::Refused(r) => Self::Budget(r),
            BudgetError::Store(e) => Self::Store(e),
        }
    }
}

impl From<InvalidInput> for EngineError {
    fn from(e: InvalidInput) -> Self {
        Self::InvalidArgument(e.0)
    }
}

impl EngineError {
    pub(crate) fn discussion_not_found(id: &str) -> Self {
        Self::NotFound(format!("discussion {id} not found"))
    }

    /// A second run on a discussion while one is going.
    pub(crate) fn run_in_progress() -> Self {
        Self::FailedPrecondition(
            "a run is already in progress in this discussion: wait for it, watch it, or stop it"
                .into(),
        )
    }

    pub(crate) fn project_not_found(id: &str) -> Self {
        Self::NotFound(format!("project {id} not found"))
    }
}
