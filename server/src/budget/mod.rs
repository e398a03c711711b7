//! Spend control: what each principal may spend (per UTC day, calendar
//! month and discussion) and how many runs it may have going, enforced
//! before every model call. Each call reserves its estimated cost in the
//! store, in one check-and-reserve through the store's writer, and settles
//! to the actual cost when it ends, so simultaneous runs overshoot by at most
//! what is in flight, on every replica and across restarts.

mod clock;
mod price;
mod refusal;
mod settings;

use std::sync::Arc;

pub use clock::Clock;
pub use refusal::{BudgetKind, Refusal};
pub use settings::{BudgetConfigError, BudgetSettings, Limits};

use crate::llm::{ChatMessage, LlmClient, Usage};
use crate::store::{ModelSpend, NewReservation, Reserved, SpendLimit, Store, StoreError};

/// Why a budget check could not be made or refused the call.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A call's reservation, to settle when the call ends.
#[derive(Debug)]
pub struct Reservation {
    id: String,
    model: String,
}

/// What a principal spent and may spend.
#[derive(Clone, Debug)]
pub struct UsageReport {
    pub principal: String,
    pub spent_today_usd: f64,
    pub spent_month_usd: f64,
    pub limits: Limits,
    /// Start of the next UTC day (Unix ms).
    pub resets_at: i64,
    /// This month's spend per model.
    pub by_model: Vec<ModelSpend>,
}

/// Budgets over the store. Cheap to clone.
#[derive(Clone)]
pub struct Budget {
    inner: Arc<Inner>,
}

struct Inner {
    settings: BudgetSettings,
    admins: Vec<String>,
    store: Store,
    llm: LlmClient,
}

impl Budget {
    pub fn new(
        settings: BudgetSettings,
        admins: Vec<String>,
        store: Store,
        llm: LlmClient,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings,
                admins,
                store,
                llm,
            }),
        }
    }

    /// Whether `principal` may read everyone's usage.
    pub fn is_admin(&self, principal: &str) -> bool {
        self.inner.admins.iter().any(|a| a == principal)
    }

    fn now(&self) -> i64 {
        self.inner.settings.clock.now()
    }

    /// The limits that apply to `principal`, in the order they are checked.
    fn spend_limits(&self, principal: &str, now: i64) -> (Limits, Vec<(BudgetKind, SpendLimit)>) {
        let limits = self.inner.settings.limits_for(principal);
        let mut out = Vec::new();
        for (kind, limit, since) in [
            (
                BudgetKind::Daily,
                limits.daily_usd,
                Some(clock::day_start(now)),
            ),
            (
                BudgetKind::Monthly,
                limits.monthly_usd,
                Some(clock::month_start(now)),
            ),
            (BudgetKind::Discussion, limits.discussion_usd, None),
        ] {
            if let Some(limit_usd) = limit {
                out.push((
                    kind,
                    SpendLimit {
                        index: out.len(),
                        since,
                        limit_usd,
                    },
                ));
            }
        }
        (limits, out)
    }

    /// Whether `principal` may start a run whose first call is `model` on
    /// `prompt` (in `discussion_id`, for a run in an existing discussion);
    /// `running` is how many of its runs are going.
    ///
    /// # Errors
    /// [`BudgetError::Refused`] naming the budget, the spend and the reset.
    pub async fn admit(
        &self,
        principal: &str,
        discussion_id: Option<&str>,
        model: &str,
        prompt: &[ChatMessage],
    ) -> Result<(), BudgetError> {
        let now = self.now();
        let (limits, spend_limits) = self.spend_limits(principal, now);
        if let Some(max) = limits.max_active_runs {
            // Leases are kept on the system clock, whatever the budget's is.
            let running = self
                .inner
                .store
                .running_discussions(principal, crate::store::now_ms())
                .await?;
            if running >= u64::from(max) {
                return Err(Refusal::runs(max).into());
            }
        }
        if spend_limits.is_empty() {
            return Ok(());
        }
        let estimate = self.estimate(model, prompt).await?;
        for (kind, limit) in spend_limits {
            let spent = match (limit.since, discussion_id) {
                (Some(since), _) => self.inner.store.spent_since(principal, since).await?,
                (None, Some(id)) => self.inner.store.spent_in_discussion(id).await?,
                (None, None) => 0.0,
            };
            if spent >= limit.limit_usd || spent + estimate > limit.limit_usd {
                return Err(Refusal::spend(kind, limit.limit_usd, spent, now).into());
            }
        }
        Ok(())
    }

    /// Reserves the estimated cost of one call, if `principal`'s budgets
    /// cover it.
    ///
    /// # Errors
    /// [`BudgetError::Refused`] when they do not: the call must not be made.
    #[tracing::instrument(level = "debug", skip(self, prompt))]
    pub async fn reserve(
        &self,
        principal: &str,
        discussion_id: &str,
        model: &str,
        prompt: &[ChatMessage],
    ) -> Result<Reservation, BudgetError> {
        let now = self.now();
        let (_, spend_limits) = self.spend_limits(principal, now);
        let id = uuid::Uuid::now_v7().to_string();
        if spend_limits.is_empty() {
            // Nothing can refuse it: the spend is recorded without making
            // the call wait for an estimate or a commit.
            self.inner
                .store
                .queue_spend(NewReservation {
                    id: id.clone(),
                    principal: principal.to_owned(),
                    discussion_id: discussion_id.to_owned(),
                    model: model.to_owned(),
                    amount_usd: 0.0,
                    time: now,
                    limits: Vec::new(),
                })
                .await;
            return Ok(Reservation {
                id,
                model: model.to_owned(),
            });
        }
        let amount_usd = self.estimate(model, prompt).await?;
        let outcome = self
            .inner
            .store
            .reserve_spend(NewReservation {
                id: id.clone(),
                principal: principal.to_owned(),
                discussion_id: discussion_id.to_owned(),
                model: model.to_owned(),
                amount_usd,
                time: now,
                limits: spend_limits.iter().map(|(_, l)| l.clone()).collect(),
            })
            .await?;
        match outcome {
            Reserved::Yes => Ok(Reservation {
                id,
                model: model.to_owned(),
            }),
            Reserved::Refused { index, spent_usd } => {
                let (kind, limit) = spend_limits
                    .get(index)
                    .map(|(k, l)| (*k, l.limit_usd))
                    .unwrap_or((BudgetKind::Daily, 0.0));
                Err(Refusal::spend(kind, limit, spent_usd, now).into())
            }
        }
    }

    /// Settles a reservation to the call's actual cost (the provider's
    /// reported cost, else usage at the model's price) and returns that cost.
    pub async fn settle(&self, reservation: Reservation, usage: &Usage) -> f64 {
        let cost = if usage.cost_usd > 0.0 {
            usage.cost_usd
        } else {
            match self.price(&reservation.model).await {
                Some(price) => price.cost(usage.prompt_tokens, usage.completion_tokens),
                None => 0.0,
            }
        };
        self.inner.store.settle_spend(&reservation.id, cost).await;
        cost
    }

    /// What `principal` spent today and this month, and its limits.
    pub async fn usage(&self, principal: &str) -> Result<UsageReport, StoreError> {
        let now = self.now();
        let store = &self.inner.store;
        Ok(UsageReport {
            principal: principal.to_owned(),
            spent_today_usd: store.spent_since(principal, clock::day_start(now)).await?,
            spent_month_usd: store
                .spent_since(principal, clock::month_start(now))
                .await?,
            limits: self.inner.settings.limits_for(principal),
            resets_at: clock::next_day(now),
            by_model: store
                .spend_by_model(principal, clock::month_start(now))
                .await?,
        })
    }

    /// Every principal with spend this month.
    pub async fn spenders(&self) -> Result<Vec<String>, StoreError> {
        let since = clock::month_start(self.now());
        self.inner.store.spenders_since(since).await
    }

    async fn price(&self, model: &str) -> Option<crate::llm::ModelPrice> {
        price::lookup(&self.inner.llm, model).await
    }

    /// The estimate a call reserves: the prompt and a full completion at
    /// the model's price, else the model's last observed cost, else zero.
    async fn estimate(&self, model: &str, prompt: &[ChatMessage]) -> Result<f64, StoreError> {
        match self.price(model).await {
            Some(price) => Ok(price.cost(
                price::prompt_tokens(prompt),
                self.inner.settings.estimate_completion_tokens,
            )),
            None => Ok(self.inner.store.last_cost(model).await?.unwrap_or(0.0)),
        }
    }
}
