//! ReviewDiscussion: anonymous peer review of one round's answers, in a new
//! REVIEW round. Which round, and whether it can be reviewed, is settled
//! before the run starts, so bad input is a status rather than a failed run.

use super::{Engine, EngineError, Plan, Subscription};
use crate::auth::Principal;
use crate::domain::{DiscussionStatus, MessageRole, MessageStatus};
use crate::store::{MessageRecord, RoundRecord};

impl Engine {
    /// Reviews round `round` (default: the latest round with model answers).
    #[tracing::instrument(skip(self), fields(principal = %owner))]
    pub async fn review(
        &self,
        owner: &Principal,
        discussion_id: &str,
        round: Option<u32>,
    ) -> Result<Subscription, EngineError> {
        let discussion = self.discussion(owner, discussion_id).await?;
        if discussion.status == DiscussionStatus::Running {
            return Err(EngineError::run_in_progress());
        }
        let rounds = self.inner.store.load_rounds(&discussion.id).await?;
        let round = review_target(&rounds, round)?;
        self.launch_continued(owner, discussion_id, Plan::Review { round }, None)
            .await
    }
}

/// An answer that can be reviewed: a model's, not failed, with text.
pub(super) fn is_answer(m: &MessageRecord) -> bool {
    m.role == MessageRole::Model
        && m.status != MessageStatus::Failed
        && !m.content.trim().is_empty()
}

/// The number of the round to review, or why there is none.
fn review_target(rounds: &[RoundRecord], asked: Option<u32>) -> Result<u32, EngineError> {
    let has_model_messages =
        |r: &RoundRecord| r.messages.iter().any(|m| m.role == MessageRole::Model);
    let round = match asked {
        Some(0) => {
            return Err(EngineError::InvalidArgument(
                "round must be 1 or more (or left unset for the latest round with answers)".into(),
            ));
        }
        Some(n) => {
            let Some(round) = rounds.iter().find(|r| r.number == n) else {
                return Err(EngineError::InvalidArgument(match rounds.last() {
                    Some(last) => format!(
                        "round {n} does not exist: this discussion has rounds 1 to {}",
                        last.number
                    ),
                    None => format!("round {n} does not exist: this discussion has no rounds yet"),
                }));
            };
            if !has_model_messages(round) {
                return Err(EngineError::InvalidArgument(format!(
                    "round {n} holds no model answers to review (it is a {} round)",
                    round.mode.as_str()
                )));
            }
            round
        }
        None => rounds
            .iter()
            .rev()
            .find(|r| has_model_messages(r))
            .ok_or_else(|| {
                EngineError::FailedPrecondition(
                    "this discussion has no round with model answers to review yet".into(),
                )
            })?,
    };
    let answers = round.messages.iter().filter(|m| is_answer(m)).count();
    if answers < 2 {
        return Err(EngineError::FailedPrecondition(format!(
            "round {} has fewer than two answers to compare ({answers}); review a round in which \
             at least two models answered",
            round.number
        )));
    }
    Ok(round.number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RoundMode;

    fn message(model: &str, role: MessageRole, status: MessageStatus) -> MessageRecord {
        MessageRecord {
            id: model.into(),
            discussion_id: "d".into(),
            round: 0,
            position: 0,
            role,
            model: model.into(),
            content: format!("text of {model}"),
            status,
            error: String::new(),
            prompt_tokens: 0,
            completion_tokens: 0,
            cost_usd: 0.0,
            latency_ms: 0,
            create_time: 0,
            review: None,
            consensus: None,
            author_name: String::new(),
            failure_reason: None,
            answered_by: String::new(),
            reasoning: String::new(),
            queue_ms: 0,
        }
    }

    fn round(number: u32, mode: RoundMode, messages: Vec<MessageRecord>) -> RoundRecord {
        RoundRecord {
            number,
            mode,
            messages,
            reviewed_round: 0,
        }
    }

    fn rounds() -> Vec<RoundRecord> {
        let ok = MessageStatus::Complete;
        vec![
            round(
                1,
                RoundMode::Parallel,
                vec![
                    message("a", MessageRole::Model, ok),
                    message("b", MessageRole::Model, ok),
                ],
            ),
            round(
                2,
                RoundMode::Sequential,
                vec![
                    message("a", MessageRole::Model, ok),
                    message("b", MessageRole::Model, MessageStatus::Failed),
                ],
            ),
            round(
                3,
                RoundMode::Summary,
                vec![message("a", MessageRole::Summary, ok)],
            ),
        ]
    }

    fn refusal(r: Result<u32, EngineError>) -> (&'static str, String) {
        match r {
            Err(EngineError::InvalidArgument(m)) => ("invalid", m),
            Err(EngineError::FailedPrecondition(m)) => ("precondition", m),
            other => panic!("not a refusal: {other:?}"),
        }
    }

    #[test]
    fn a_round_with_two_answers_is_reviewed() {
        assert_eq!(review_target(&rounds(), Some(1)).ok(), Some(1));
    }

    #[test]
    fn the_default_is_the_latest_round_with_model_answers() {
        // Round 3 is a summary; round 2 has one answer left after a failure.
        let (kind, why) = refusal(review_target(&rounds(), None));
        assert_eq!(kind, "precondition");
        assert!(
            why.starts_with("round 2 has fewer than two answers to compare (1)"),
            "{why}"
        );
        let mut two = rounds();
        two.truncate(1);
        assert_eq!(review_target(&two, None).ok(), Some(1));
    }

    #[test]
    fn missing_rounds_and_rounds_without_answers_are_invalid() {
        let (kind, why) = refusal(review_target(&rounds(), Some(9)));
        assert_eq!(kind, "invalid");
        assert!(
            why.contains("round 9 does not exist") && why.contains("1 to 3"),
            "{why}"
        );
        let (kind, why) = refusal(review_target(&rounds(), Some(3)));
        assert_eq!(kind, "invalid");
        assert!(
            why.contains("no model answers") && why.contains("summary"),
            "{why}"
        );
        let (kind, _) = refusal(review_target(&rounds(), Some(0)));
        assert_eq!(kind, "invalid");
        let (kind, why) = refusal(review_target(&[], None));
        assert_eq!(kind, "precondition");
        assert!(why.contains("no round with model answers"), "{why}");
    }
}
