//! Why a call or run was refused for budget reasons, said the way a person
//! reads it: the budget, what was spent, and when it resets.

use super::clock;

/// Which budget refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetKind {
    Daily,
    Monthly,
    Discussion,
    ActiveRuns,
}

/// A refusal; its text is what the caller sees.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
#[error("{message}")]
pub struct Refusal {
    pub kind: BudgetKind,
    pub message: String,
}

impl Refusal {
    /// The spend budget `kind` of `limit` holds `spent` at `now`.
    pub fn spend(kind: BudgetKind, limit: f64, spent: f64, now: i64) -> Self {
        let resets = match kind {
            BudgetKind::Daily => "resets at 00:00 UTC".to_owned(),
            BudgetKind::Monthly => {
                format!(
                    "resets on {} at 00:00 UTC",
                    clock::date(clock::next_month(now))
                )
            }
            BudgetKind::Discussion | BudgetKind::ActiveRuns => {
                "start a new discussion to go on".to_owned()
            }
        };
        let name = match kind {
            BudgetKind::Daily => "daily",
            BudgetKind::Monthly => "monthly",
            BudgetKind::Discussion | BudgetKind::ActiveRuns => "discussion",
        };
        Self {
            kind,
            message: format!("{name} budget of ${limit:.2} reached (${spent:.2} spent); {resets}"),
        }
    }

    /// `max` runs are going already.
    pub fn runs(max: u32) -> Self {
        Self {
            kind: BudgetKind::ActiveRuns,
            message: format!(
                "max_active_runs of {max} reached: wait for a run to finish or stop one"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_budget_the_spend_and_the_reset() {
        let r = Refusal::spend(BudgetKind::Daily, 2.0, 2.03, 0);
        assert_eq!(
            r.to_string(),
            "daily budget of $2.00 reached ($2.03 spent); resets at 00:00 UTC"
        );
        let r = Refusal::spend(BudgetKind::Monthly, 20.0, 20.5, 1_796_120_820_000);
        assert_eq!(
            r.to_string(),
            "monthly budget of $20.00 reached ($20.50 spent); resets on 2027-01-01 at 00:00 UTC"
        );
    }
}
