//! Validated values: a value of these types is well-formed by construction,
//! so the layers below never re-check input.

mod enums;
mod fallbacks;
mod id;
mod leaderboard;
mod model_id;
mod project_name;
mod review;
mod text;

pub use enums::{
    DiscussionKind, DiscussionOutcome, DiscussionStatus, FailureReason, MessageRole, MessageStatus,
    RoundMode,
};
pub use fallbacks::Fallbacks;
pub use id::{DiscussionId, ProjectId};
pub use leaderboard::{Standing, leaderboard};
pub use model_id::{ModelId, ModelList};
pub use project_name::ProjectName;
pub use review::{Review, ReviewLabel};
pub use text::BoundedText;

/// Why a value was refused; the message is shown to the caller as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

impl InvalidInput {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}
