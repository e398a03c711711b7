//! The durable event log of each discussion (every event but deltas, whose
//! text the completed or failed message carries).

use sqlx::Row as _;

use super::StoredEvent;
use super::writer::Command;
use super::{Store, StoreError, to_i64};

impl Store {
    /// Queues an event for the log; nobody waits for it. The writer keeps
    /// queue order, so any acknowledged write queued after it (a message, a
    /// run's end) is committed with it or after it.
    #[tracing::instrument(level = "debug", skip_all, fields(discussion = %event.discussion_id, seq = event.seq))]
    pub async fn append_event(&self, event: StoredEvent) {
        self.queue(Command::Event(event)).await;
    }

    /// Encoded events with `after < seq < before`, in order.
    #[tracing::instrument(level = "debug", skip(self), fields(discussion = %discussion_id))]
    pub async fn events_between(
        &self,
        discussion_id: &str,
        after: u64,
        before: u64,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let rows = sqlx::query(
            "SELECT payload FROM events WHERE discussion_id = $1 AND seq > $2 AND seq < $3 ORDER BY seq",
        )
        .bind(discussion_id)
        .bind(to_i64(after))
        .bind(to_i64(before))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get::<Vec<u8>, _>("payload").map_err(StoreError::from))
            .collect()
    }

    /// The greatest stored seq of a discussion (0 when none).
    #[tracing::instrument(level = "debug", skip(self), fields(discussion = %discussion_id))]
    pub async fn last_seq(&self, discussion_id: &str) -> Result<u64, StoreError> {
        let row =
            sqlx::query("SELECT COALESCE(MAX(seq), 0) AS s FROM events WHERE discussion_id = $1")
                .bind(discussion_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(u64::try_from(row.try_get::<i64, _>("s")?).unwrap_or(0))
    }
}
