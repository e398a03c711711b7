//! Reads and signals about runs for replicas that do not own them: which run
//! holds a discussion, and (PostgreSQL only) the stop notification.

use sqlx::Row as _;

use super::{Backend, Store, StoreError};
use crate::domain::DiscussionStatus;

/// The PostgreSQL channel a stop is sent on when no Redis is configured.
pub const STOP_CHANNEL: &str = "moai_stop";

/// Who holds a discussion right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunHolder {
    pub status: DiscussionStatus,
    /// The token of the run holding it while RUNNING.
    pub token: String,
}

impl Store {
    /// The status of discussion `id` and the token of the run that holds it
    /// (`None` when there is no such discussion).
    pub async fn run_holder(&self, id: &str) -> Result<Option<RunHolder>, StoreError> {
        let row = sqlx::query(
            "SELECT status, COALESCE(run_token, '') AS token FROM discussions WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let status: String = row.try_get("status")?;
        Ok(Some(RunHolder {
            status: DiscussionStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("discussion status {status:?}")))?,
            token: row.try_get("token")?,
        }))
    }

    /// Tells every replica listening on [`STOP_CHANNEL`] to stop its run of
    /// `id`; a no-op off PostgreSQL (one node has no one to tell).
    pub async fn notify_stop(&self, id: &str) -> Result<(), StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(STOP_CHANNEL)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
