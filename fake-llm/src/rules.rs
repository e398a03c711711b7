//! Answers chosen by what a request says: a rule matches requests whose
//! messages contain a given text (for one model, or for any), and answers
//! with a fixed [`Script`] or one computed from the request. Rules come
//! before the per-model scripts; the latest matching rule wins, so a test
//! can tell the same model's review, judgement and discussion turns apart.

use std::sync::Arc;

use super::{RecordedRequest, Script, ScriptState, Shared, lock};

/// Computes a script from the request it answers.
pub type Responder = Arc<dyn Fn(&RecordedRequest) -> Script + Send + Sync>;

pub(super) struct Rule {
    /// `None`: any model.
    model: Option<String>,
    needle: String,
    answer: RuleAnswer,
}

enum RuleAnswer {
    Fixed(ScriptState),
    Computed(Responder),
}

impl Rule {
    pub(super) fn fixed(model: Option<&str>, needle: &str, script: Script) -> Self {
        Self {
            model: model.map(str::to_owned),
            needle: needle.to_owned(),
            answer: RuleAnswer::Fixed(ScriptState {
                script,
                failures_served: 0,
            }),
        }
    }

    pub(super) fn computed(model: Option<&str>, needle: &str, responder: Responder) -> Self {
        Self {
            model: model.map(str::to_owned),
            needle: needle.to_owned(),
            answer: RuleAnswer::Computed(responder),
        }
    }

    fn matches(&self, request: &RecordedRequest) -> bool {
        self.model.as_ref().is_none_or(|m| *m == request.model)
            && request
                .messages
                .iter()
                .any(|m| m.content.contains(&self.needle))
    }
}

/// The script of the latest rule matching `request`, if any; counts the
/// request against a fixed script's failures.
pub(super) fn script_for(shared: &Shared, request: &RecordedRequest) -> Option<Script> {
    let mut rules = lock(&shared.rules);
    let rule = rules.iter_mut().rev().find(|r| r.matches(request))?;
    Some(match &mut rule.answer {
        RuleAnswer::Computed(responder) => responder(request),
        RuleAnswer::Fixed(state) => {
            let mut script = state.script.clone();
            if script.fail_status.is_some() && state.failures_served < script.fail_times {
                state.failures_served += 1;
            } else {
                script.fail_status = None;
            }
            script
        }
    })
}
