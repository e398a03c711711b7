//! The `[budgets]` table: default limits, per-principal and per-namespace
//! limits, checked at start-up so a mistake never means "unlimited".

use std::collections::BTreeMap;

use serde::Deserialize;

use super::clock::Clock;

/// Limits of one principal (or the defaults); `None` is no limit.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// USD per UTC day.
    pub daily_usd: Option<f64>,
    /// USD per calendar month (UTC).
    pub monthly_usd: Option<f64>,
    /// USD per discussion.
    pub discussion_usd: Option<f64>,
    /// Runs one principal may have going at once.
    pub max_active_runs: Option<u32>,
}

impl Limits {
    /// `self`, with what it leaves unset taken from `base`.
    fn over(&self, base: &Limits) -> Limits {
        Limits {
            daily_usd: self.daily_usd.or(base.daily_usd),
            monthly_usd: self.monthly_usd.or(base.monthly_usd),
            discussion_usd: self.discussion_usd.or(base.discussion_usd),
            max_active_runs: self.max_active_runs.or(base.max_active_runs),
        }
    }

    fn check(&self, table: &str) -> Result<(), BudgetConfigError> {
        for (name, value) in [
            ("daily_usd", self.daily_usd),
            ("monthly_usd", self.monthly_usd),
            ("discussion_usd", self.discussion_usd),
        ] {
            if let Some(v) = value
                && !(v.is_finite() && v >= 0.0)
            {
                return Err(BudgetConfigError {
                    key: format!("{table}.{name}"),
                    reason: format!("{v} is not a non-negative amount of USD"),
                });
            }
        }
        Ok(())
    }
}

/// `[budgets]`: the defaults, then `[budgets.principals.<name>]` and
/// `[budgets.namespaces.<gateway>]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetSettings {
    /// Default USD per principal per UTC day.
    pub daily_usd: Option<f64>,
    /// Default USD per principal per calendar month (UTC).
    pub monthly_usd: Option<f64>,
    /// Default USD per discussion.
    pub discussion_usd: Option<f64>,
    /// Default number of runs a principal may have going at once.
    pub max_active_runs: Option<u32>,
    /// One principal's own limits (over the namespace's and the defaults).
    pub principals: BTreeMap<String, Limits>,
    /// Limits of every gateway user `<namespace>:<id>` (over the defaults).
    pub namespaces: BTreeMap<String, Limits>,
    /// Completion tokens a call's estimate assumes (calls set no `max_tokens`).
    pub estimate_completion_tokens: u64,
    /// The clock periods are measured on; tests inject their own.
    #[serde(skip)]
    pub clock: Clock,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        Self {
            daily_usd: None,
            monthly_usd: None,
            discussion_usd: None,
            max_active_runs: None,
            principals: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            estimate_completion_tokens: 1000,
            clock: Clock::default(),
        }
    }
}

/// A budget setting the server refuses to start with.
#[derive(Debug, thiserror::Error)]
#[error("invalid {key}: {reason}")]
pub struct BudgetConfigError {
    /// The TOML key, such as `budgets.namespaces.telegram.daily_usd`.
    pub key: String,
    pub reason: String,
}

impl BudgetSettings {
    /// The limits every principal has unless its own or its namespace's say otherwise.
    pub fn defaults(&self) -> Limits {
        Limits {
            daily_usd: self.daily_usd,
            monthly_usd: self.monthly_usd,
            discussion_usd: self.discussion_usd,
            max_active_runs: self.max_active_runs,
        }
    }

    /// Checks amounts and that every namespace is one a gateway produces:
    /// a gateway key's name, or that name and a suffix (`telegram` and
    /// `telegram-group` both come from the gateway `telegram`).
    pub fn validate<'a>(
        &self,
        gateways: impl IntoIterator<Item = &'a String>,
    ) -> Result<(), BudgetConfigError> {
        self.defaults().check("budgets")?;
        for (name, limits) in &self.principals {
            limits.check(&format!("budgets.principals.{name}"))?;
        }
        let gateways: Vec<&String> = gateways.into_iter().collect();
        for (ns, limits) in &self.namespaces {
            limits.check(&format!("budgets.namespaces.{ns}"))?;
            let produced = gateways.iter().any(|g| {
                ns == *g
                    || ns
                        .strip_prefix(g.as_str())
                        .is_some_and(|rest| rest.starts_with('-'))
            });
            if !produced {
                return Err(BudgetConfigError {
                    key: format!("budgets.namespaces.{ns}"),
                    reason: format!(
                        "no gateway produces users {ns}:<id> (gateway keys: {})",
                        if gateways.is_empty() {
                            "none".to_owned()
                        } else {
                            gateways
                                .iter()
                                .map(|g| g.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                });
            }
        }
        Ok(())
    }

    /// The limits of `principal`: its own, else its namespace's, else the defaults.
    pub fn limits_for(&self, principal: &str) -> Limits {
        let namespace = principal
            .split_once(':')
            .and_then(|(ns, _)| self.namespaces.get(ns));
        let defaults = self.defaults();
        let base = match namespace {
            Some(ns) => ns.over(&defaults),
            None => defaults,
        };
        match self.principals.get(principal) {
            Some(own) => own.over(&base),
            None => base,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> BudgetSettings {
        toml::from_str(text).expect("parses")
    }

    #[test]
    fn own_limits_win_over_the_namespace_and_the_defaults() {
        let s = parse(
            "daily_usd = 2.0\nmonthly_usd = 20.0\n[principals.alice]\ndaily_usd = 10.0\n\
             [namespaces.telegram]\ndaily_usd = 0.5\n",
        );
        assert_eq!(s.limits_for("alice").daily_usd, Some(10.0));
        assert_eq!(s.limits_for("alice").monthly_usd, Some(20.0));
        assert_eq!(s.limits_for("telegram:1").daily_usd, Some(0.5));
        assert_eq!(s.limits_for("bob").daily_usd, Some(2.0));
        assert_eq!(s.limits_for("other:1").daily_usd, Some(2.0));
    }

    #[test]
    fn negative_and_unknown_are_refused_naming_the_key() {
        let s = parse("[principals.alice]\ndaily_usd = -1.0\n");
        let err = s.validate(&[]).expect_err("negative");
        assert_eq!(err.key, "budgets.principals.alice.daily_usd");
        let s = parse("monthly_usd = nan\n");
        assert_eq!(s.validate(&[]).expect_err("nan").key, "budgets.monthly_usd");
        let err = toml::from_str::<BudgetSettings>("dayly_usd = 1.0\n").expect_err("unknown");
        assert!(err.to_string().contains("dayly_usd"));
    }

    #[test]
    fn a_namespace_needs_a_gateway_of_that_name() {
        let s = parse("[namespaces.slack]\ndaily_usd = 1.0\n");
        let gateways = vec!["telegram".to_owned()];
        let err = s.validate(&gateways).expect_err("no slack gateway");
        assert_eq!(err.key, "budgets.namespaces.slack");
        let s = parse("[namespaces.telegram]\ndaily_usd = 1.0\n[namespaces.telegram-group]\n");
        assert!(s.validate(&gateways).is_ok());
        let s = parse("[namespaces.telegramx]\n");
        assert!(s.validate(&gateways).is_err());
    }
}
