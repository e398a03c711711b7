//! The durable event log of each discussion (every event but deltas, whose
//! text the completed or failed message carries).

use super::to_i64;
use sqlx::Row as _;

use super::{Store, StoreError};

impl Store {
    /// Appends an encoded event.
    pub async fn insert_event(
        &self,
        discussion_id: &str,
        seq: u64,
        time: i64,
        payload: &[u8],
    ) -> Result<(), StoreError> {
        let _writer = self.writer().await;
        sqlx::query(
            "INSERT INTO events (discussion_id, seq, time, payload) VALUES ($1, $2, $3, $4)",
        )
        .bind(discussion_id)
        .bind(to_i64(seq))
        .bind(time)
        .bind(payload)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Encoded events with `after < seq < before`, in order.
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
    pub async fn last_seq(&self, discussion_id: &str) -> Result<u64, StoreError> {
        let row =
            sqlx::query("SELECT COALESCE(MAX(seq), 0) AS s FROM events WHERE discussion_id = $1")
                .bind(discussion_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(u64::try_from(row.try_get::<i64, _>("s")?).unwrap_or(0))
    }
}
