//! Discussions and the run lease that says which ones are being worked on.

use super::to_i64;
use sqlx::AssertSqlSafe;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::writer::Command;
use super::{DiscussionRecord, PageCursor, Store, StoreError, now_ms};
use crate::domain::{DiscussionKind, DiscussionStatus, MessageStatus};

const COLUMNS: &str = "id, project_id, owner, kind, question, status, create_time, update_time";

/// Outcome of trying to start a run on a discussion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeginRun {
    /// The discussion is now RUNNING and the caller owns the run.
    Started,
    /// Another run is in progress.
    AlreadyRunning,
    /// The discussion was stopped by the user.
    Stopped,
    /// No such discussion.
    Missing,
}

impl Store {
    /// Inserts a new discussion (its status says whether a run owns it).
    pub async fn create_discussion(
        &self,
        d: &DiscussionRecord,
        lease_until: i64,
        run_token: &str,
    ) -> Result<(), StoreError> {
        let d = d.clone();
        let token = run_token.to_owned();
        self.queued(|ack| Command::Discussion(d, lease_until, token, ack))
            .await
    }

    /// One of `owner`'s discussions.
    pub async fn get_discussion(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<DiscussionRecord>, StoreError> {
        sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM discussions WHERE id = $1 AND owner = $2"
        )))
        .bind(id)
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(discussion_from_row)
        .transpose()
    }

    /// `owner`'s discussions (of one project, or all), newest first, after `cursor`.
    pub async fn list_discussions(
        &self,
        owner: &str,
        project_id: Option<&str>,
        limit: usize,
        cursor: Option<&PageCursor>,
    ) -> Result<Vec<DiscussionRecord>, StoreError> {
        let (time, id) = cursor.map_or((i64::MAX, String::new()), |c| (c.time, c.id.clone()));
        let id_clause = if cursor.is_some() {
            "id < $3"
        } else {
            "id <> $3"
        };
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM discussions WHERE owner = $1 \
             AND (create_time < $2 OR (create_time = $2 AND {id_clause})) \
             AND ($4 = '' OR project_id = $4) \
             ORDER BY create_time DESC, id DESC LIMIT $5"
        )))
        .bind(owner)
        .bind(time)
        .bind(id)
        .bind(project_id.unwrap_or(""))
        .bind(to_i64(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(discussion_from_row).collect()
    }

    /// Takes the run of an IDLE or INTERRUPTED discussion by moving it to
    /// RUNNING in one conditional update, so two callers (or replicas) can
    /// never both win.
    pub async fn begin_run(
        &self,
        id: &str,
        lease_until: i64,
        run_token: &str,
    ) -> Result<BeginRun, StoreError> {
        let _writer = self.writer().await;
        let now = now_ms();
        let updated = sqlx::query(
            "UPDATE discussions SET status = $1, lease_until = $2, update_time = $3, run_token = $7 \
             WHERE id = $4 AND status IN ($5, $6)",
        )
        .bind(DiscussionStatus::Running.as_str())
        .bind(lease_until)
        .bind(now)
        .bind(id)
        .bind(DiscussionStatus::Idle.as_str())
        .bind(DiscussionStatus::Interrupted.as_str())
        .bind(run_token)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated > 0 {
            return Ok(BeginRun::Started);
        }
        let status = sqlx::query("SELECT status FROM discussions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match status {
            None => BeginRun::Missing,
            Some(row) => match DiscussionStatus::parse(&row.try_get::<String, _>("status")?) {
                Some(DiscussionStatus::Stopped) => BeginRun::Stopped,
                _ => BeginRun::AlreadyRunning,
            },
        })
    }

    /// Ends a run: RUNNING becomes `status`. A discussion that is no longer
    /// RUNNING (stopped meanwhile) is left as it is.
    pub async fn end_run(
        &self,
        id: &str,
        status: DiscussionStatus,
        run_token: &str,
    ) -> Result<bool, StoreError> {
        let id = id.to_owned();
        let token = run_token.to_owned();
        self.queued(|ack| Command::EndRun {
            id,
            status,
            token,
            time: now_ms(),
            ack,
        })
        .await
    }

    /// Marks a discussion STOPPED whatever its state.
    pub async fn mark_stopped(&self, id: &str) -> Result<(), StoreError> {
        let _writer = self.writer().await;
        sqlx::query(
            "UPDATE discussions SET status = $1, lease_until = 0, update_time = $2 WHERE id = $3",
        )
        .bind(DiscussionStatus::Stopped.as_str())
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Extends the lease of a run this process owns; returns 0 when the
    /// discussion is no longer RUNNING (stopped or recovered elsewhere).
    pub async fn extend_lease(
        &self,
        id: &str,
        lease_until: i64,
        run_token: &str,
    ) -> Result<u64, StoreError> {
        let _writer = self.writer().await;
        let updated = sqlx::query(
            "UPDATE discussions SET lease_until = $1 WHERE id = $2 AND status = $3 AND run_token = $4",
        )
                .bind(lease_until)
                .bind(id)
                .bind(DiscussionStatus::Running.as_str())
                .bind(run_token)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(updated)
    }

    /// Marks runs whose owner went away INTERRUPTED, with their unfinished
    /// messages (keeping the text they had). `all` takes every RUNNING
    /// discussion (an embedded database has no other server); otherwise only
    /// those whose lease lapsed. Returns the ids recovered.
    pub async fn recover_interrupted(&self, all: bool) -> Result<Vec<String>, StoreError> {
        let _writer = self.writer().await;
        let now = now_ms();
        let cutoff = if all { i64::MAX } else { now };
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query("SELECT id FROM discussions WHERE status = $1 AND lease_until < $2")
            .bind(DiscussionStatus::Running.as_str())
            .bind(cutoff)
            .fetch_all(&mut *tx)
            .await?;
        let ids: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<Result<_, _>>()?;
        let mut recovered = Vec::with_capacity(ids.len());
        for id in ids {
            // Take the discussion first: of replicas sweeping at once, only the
            // one whose update lands recovers it.
            let taken = sqlx::query(
                "UPDATE discussions SET status = $1, lease_until = 0, update_time = $2 \
                 WHERE id = $3 AND status = $4 AND lease_until < $5",
            )
            .bind(DiscussionStatus::Interrupted.as_str())
            .bind(now)
            .bind(&id)
            .bind(DiscussionStatus::Running.as_str())
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if taken == 0 {
                continue;
            }
            sqlx::query(
                "UPDATE messages SET status = $1, error = $2, update_time = $3 WHERE discussion_id = $4 AND status = $5",
            )
            .bind(MessageStatus::Interrupted.as_str())
            .bind("the server stopped while this answer was being written")
            .bind(now)
            .bind(&id)
            .bind(MessageStatus::Streaming.as_str())
            .execute(&mut *tx)
            .await?;
            recovered.push(id);
        }
        tx.commit().await?;
        Ok(recovered)
    }
}

fn discussion_from_row(row: &AnyRow) -> Result<DiscussionRecord, StoreError> {
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    Ok(DiscussionRecord {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        owner: row.try_get("owner")?,
        kind: DiscussionKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("discussion kind {kind:?}")))?,
        question: row.try_get("question")?,
        status: DiscussionStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("discussion status {status:?}")))?,
        create_time: row.try_get("create_time")?,
        update_time: row.try_get("update_time")?,
    })
}
