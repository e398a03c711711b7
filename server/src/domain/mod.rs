//! Validated values: a value of these types is well-formed by construction,
//! so the layers below never re-check input.

mod enums;
mod fallbacks;
mod id;
mod model_id;
mod project_name;
mod text;

pub use enums::{
    DiscussionKind, DiscussionStatus, FailureReason, MessageRole, MessageStatus, RoundMode,
};
pub use fallbacks::Fallbacks;
pub use id::{DiscussionId, ProjectId};
pub use model_id::{ModelId, ModelList};
pub use project_name::ProjectName;
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
