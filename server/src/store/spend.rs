//! What model calls cost, per principal: reservations made before a call and
//! settled to the actual cost after it. The check and the reservation are
//! one conditional statement of the writer, so concurrent runs (on any
//! replica) cannot all pass the same check.

use sqlx::{Any, Row as _, Transaction};

use super::writer::Statement;
use super::{Store, StoreError};

/// A limit one reservation must stay within.
#[derive(Clone, Debug, PartialEq)]
pub struct SpendLimit {
    /// Which budget this is (the caller's index into its own list).
    pub index: usize,
    /// Spend since this time (Unix ms) counts; `None`: spend in the discussion counts.
    pub since: Option<i64>,
    pub limit_usd: f64,
}

/// A reservation to make if every limit allows it.
#[derive(Clone, Debug)]
pub struct NewReservation {
    pub id: String,
    pub principal: String,
    pub discussion_id: String,
    pub model: String,
    pub amount_usd: f64,
    pub time: i64,
    pub limits: Vec<SpendLimit>,
}

/// How a reservation came out.
#[derive(Clone, Debug, PartialEq)]
pub enum Reserved {
    Yes,
    /// The limit at `index` would be passed; `spent_usd` is what it holds already.
    Refused {
        index: usize,
        spent_usd: f64,
    },
}

/// One model's part of a principal's spend.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpend {
    pub model: String,
    pub cost_usd: f64,
    pub calls: u64,
}

impl Store {
    /// Reserves `r.amount_usd` unless that would pass one of `r.limits`.
    #[tracing::instrument(level = "debug", skip_all, fields(principal = %r.principal, model = %r.model))]
    pub async fn reserve_spend(&self, r: NewReservation) -> Result<Reserved, StoreError> {
        self.statement(|reply| Statement::Reserve { r, reply })
            .await
    }

    /// Records a reservation that no limit can refuse, without waiting for
    /// its commit (queue order stores it before its settlement).
    #[tracing::instrument(level = "debug", skip_all, fields(principal = %r.principal, model = %r.model))]
    pub async fn queue_spend(&self, r: NewReservation) {
        let (reply, _outcome) = super::writer::Reply::new();
        self.queue(super::writer::Command::Statement(Statement::Reserve {
            r,
            reply,
        }))
        .await;
    }

    /// Replaces a reservation by the call's actual cost. Queued, not waited
    /// for: any reservation queued after it sees it (queue order is commit
    /// order); the writer logs a failure.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn settle_spend(&self, id: &str, amount_usd: f64) {
        let (reply, _outcome) = super::writer::Reply::new();
        self.queue(super::writer::Command::Statement(Statement::Settle {
            id: id.to_owned(),
            amount_usd,
            reply,
        }))
        .await;
    }

    /// What `principal` spent (settled and reserved) since `since`.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn spent_since(&self, principal: &str, since: i64) -> Result<f64, StoreError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(amount_usd), 0) AS DOUBLE PRECISION) AS s FROM spend \
             WHERE principal = $1 AND time >= $2",
        )
        .bind(principal)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<f64, _>("s")?)
    }

    /// What was spent in a discussion.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn spent_in_discussion(&self, discussion_id: &str) -> Result<f64, StoreError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(amount_usd), 0) AS DOUBLE PRECISION) AS s FROM spend \
             WHERE discussion_id = $1",
        )
        .bind(discussion_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<f64, _>("s")?)
    }

    /// `principal`'s spend since `since`, per model, most expensive first.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn spend_by_model(
        &self,
        principal: &str,
        since: i64,
    ) -> Result<Vec<ModelSpend>, StoreError> {
        let rows = sqlx::query(
            "SELECT model, CAST(COALESCE(SUM(amount_usd), 0) AS DOUBLE PRECISION) AS s, \
             COUNT(*) AS n FROM spend WHERE principal = $1 AND time >= $2 \
             GROUP BY model ORDER BY s DESC, model",
        )
        .bind(principal)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ModelSpend {
                    model: r.try_get("model")?,
                    cost_usd: r.try_get::<f64, _>("s")?,
                    calls: u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0),
                })
            })
            .collect()
    }

    /// Every principal with spend since `since`, by name.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn spenders_since(&self, since: i64) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT DISTINCT principal FROM spend WHERE time >= $1 ORDER BY principal")
                .bind(since)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                r.try_get::<String, _>("principal")
                    .map_err(StoreError::from)
            })
            .collect()
    }

    /// The cost of `model`'s latest settled call, if any: the estimate for a
    /// model whose price nobody knows.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn last_cost(&self, model: &str) -> Result<Option<f64>, StoreError> {
        let row = sqlx::query(
            "SELECT amount_usd FROM spend WHERE model = $1 AND settled = 1 \
             ORDER BY time DESC, id DESC LIMIT 1",
        )
        .bind(model)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get::<f64, _>("amount_usd")?),
            None => None,
        })
    }

    /// How many of `owner`'s discussions are running under a live lease.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn running_discussions(&self, owner: &str, now: i64) -> Result<u64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM discussions WHERE owner = $1 AND status = $2 AND lease_until >= $3",
        )
        .bind(owner)
        .bind(crate::domain::DiscussionStatus::Running.as_str())
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0))
    }
}

/// The check and the reservation, inside the writer's transaction. The
/// principal's row is updated first: on PostgreSQL its row lock makes a
/// concurrent reservation of the same principal (another replica) wait for
/// this transaction, and the sums read after it then include its rows.
pub(super) async fn reserve(
    tx: &mut Transaction<'_, Any>,
    r: &NewReservation,
) -> Result<Reserved, sqlx::Error> {
    sqlx::query(
        "INSERT INTO spend_principals (principal, reservations) VALUES ($1, 0) \
         ON CONFLICT (principal) DO NOTHING",
    )
    .bind(&r.principal)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE spend_principals SET reservations = reservations + 1 WHERE principal = $1")
        .bind(&r.principal)
        .execute(&mut **tx)
        .await?;
    for limit in &r.limits {
        let row =
            match limit.since {
                Some(since) => sqlx::query(
                    "SELECT CAST(COALESCE(SUM(amount_usd), 0) AS DOUBLE PRECISION) AS s FROM spend \
                 WHERE principal = $1 AND time >= $2",
                )
                .bind(&r.principal)
                .bind(since)
                .fetch_one(&mut **tx)
                .await?,
                None => sqlx::query(
                    "SELECT CAST(COALESCE(SUM(amount_usd), 0) AS DOUBLE PRECISION) AS s FROM spend \
                 WHERE discussion_id = $1",
                )
                .bind(&r.discussion_id)
                .fetch_one(&mut **tx)
                .await?,
            };
        let spent: f64 = row.try_get("s")?;
        // A call is refused once nothing is left, or when its estimate
        // does not fit in what is left.
        if spent >= limit.limit_usd || spent + r.amount_usd > limit.limit_usd {
            return Ok(Reserved::Refused {
                index: limit.index,
                spent_usd: spent,
            });
        }
    }
    sqlx::query(
        "INSERT INTO spend (id, principal, discussion_id, model, amount_usd, settled, time) \
         VALUES ($1, $2, $3, $4, $5, 0, $6)",
    )
    .bind(&r.id)
    .bind(&r.principal)
    .bind(&r.discussion_id)
    .bind(&r.model)
    .bind(r.amount_usd)
    .bind(r.time)
    .execute(&mut **tx)
    .await?;
    Ok(Reserved::Yes)
}

/// A reservation becomes the actual cost.
pub(super) async fn settle(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    amount_usd: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE spend SET amount_usd = $1, settled = 1 WHERE id = $2")
        .bind(amount_usd)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
