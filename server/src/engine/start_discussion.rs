//! StartDiscussion: rounds in turns, in a new discussion or an existing one.

use super::{Engine, EngineError, Plan, Subscription};
use crate::auth::Principal;
use crate::domain::{BoundedText, DiscussionKind};

/// What a StartDiscussion continues or begins.
#[derive(Clone, Debug)]
pub enum StartTarget {
    New {
        project_id: String,
        topic: BoundedText,
    },
    Existing {
        discussion_id: String,
    },
}

impl Engine {
    /// Discussion in turns: a new one on `topic`, or more rounds of an existing
    /// one; `until_consensus` judges each round and stops at agreement, so
    /// `rounds` is then the most.
    #[tracing::instrument(skip(self, target), fields(principal = %owner))]
    pub async fn start(
        &self,
        owner: &Principal,
        target: StartTarget,
        rounds: u32,
        until_consensus: bool,
    ) -> Result<Subscription, EngineError> {
        let plan = Plan::Sequential {
            rounds: self.rounds(rounds)?,
            until_consensus,
        };
        match target {
            StartTarget::New { project_id, topic } => {
                let project = self.runnable_project(owner, &project_id).await?;
                self.launch_new(
                    owner,
                    project,
                    DiscussionKind::Sequential,
                    topic.into_string(),
                    plan,
                )
                .await
            }
            StartTarget::Existing { discussion_id } => {
                self.launch_continued(owner, &discussion_id, plan, None)
                    .await
            }
        }
    }

    /// The rounds asked for, 0 meaning the default.
    fn rounds(&self, rounds: u32) -> Result<u32, EngineError> {
        let max = self.inner.limits.max_rounds;
        match rounds {
            0 => Ok(self.inner.limits.default_rounds.clamp(1, max)),
            n if n <= max => Ok(n),
            n => Err(EngineError::InvalidArgument(format!(
                "rounds must be between 1 and {max}, got {n}"
            ))),
        }
    }
}
