//! Discussions and the run lease that says which ones are being worked on.

use sqlx::AssertSqlSafe;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::RecoveryEvent;
use super::writer::{Command, Statement};
use super::{DiscussionRecord, PageCursor, Store, StoreError, now_ms, to_i64};
use crate::domain::{DiscussionKind, DiscussionOutcome, DiscussionStatus};

const COLUMNS: &str = "id, project_id, owner, kind, question, status, create_time, update_time, outcome, consensus_round";

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
    #[tracing::instrument(level = "debug", skip_all, fields(discussion = %d.id))]
    pub async fn create_discussion(
        &self,
        d: &DiscussionRecord,
        lease_until: i64,
        run_token: &str,
    ) -> Result<(), StoreError> {
        self.acknowledged(|reply| Command::Discussion {
            record: d.clone(),
            lease_until,
            token: run_token.to_owned(),
            reply,
        })
        .await
    }

    /// One of `owner`'s discussions.
    #[tracing::instrument(level = "debug", skip(self), fields(discussion = %id))]
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
    #[tracing::instrument(level = "debug", skip(self, cursor))]
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
    #[tracing::instrument(level = "debug", skip(self, run_token), fields(discussion = %id))]
    pub async fn begin_run(
        &self,
        id: &str,
        lease_until: i64,
        run_token: &str,
    ) -> Result<BeginRun, StoreError> {
        self.statement(|reply| Statement::BeginRun {
            id: id.to_owned(),
            lease_until,
            token: run_token.to_owned(),
            time: now_ms(),
            reply,
        })
        .await
    }

    /// Ends the run `run_token`: RUNNING becomes `status`. Returns `false`
    /// (and changes nothing) when that run no longer holds the discussion:
    /// it was stopped or recovered meanwhile.
    #[tracing::instrument(level = "debug", skip(self, run_token), fields(discussion = %id))]
    pub async fn end_run(
        &self,
        id: &str,
        status: DiscussionStatus,
        run_token: &str,
    ) -> Result<bool, StoreError> {
        self.statement(|reply| Statement::EndRun {
            id: id.to_owned(),
            status,
            token: run_token.to_owned(),
            time: now_ms(),
            reply,
        })
        .await
    }

    /// Records what a run until consensus concluded: `outcome`, and for a
    /// consensus the round it was reached in. Returns once committed.
    #[tracing::instrument(level = "debug", skip(self), fields(discussion = %id))]
    pub async fn set_outcome(
        &self,
        id: &str,
        outcome: DiscussionOutcome,
        round: u32,
    ) -> Result<(), StoreError> {
        let round = if outcome == DiscussionOutcome::Consensus {
            round
        } else {
            0
        };
        self.statement(|reply| Statement::SetOutcome {
            id: id.to_owned(),
            outcome: Some(outcome),
            round,
            time: now_ms(),
            reply,
        })
        .await
    }

    /// Marks a discussion STOPPED whatever its state.
    #[tracing::instrument(level = "debug", skip(self), fields(discussion = %id))]
    pub async fn mark_stopped(&self, id: &str) -> Result<(), StoreError> {
        self.statement(|reply| Statement::MarkStopped {
            id: id.to_owned(),
            time: now_ms(),
            reply,
        })
        .await
    }

    /// Extends the lease of the run `run_token`; `false` when that run no
    /// longer holds the discussion (stopped, or recovered elsewhere).
    #[tracing::instrument(level = "debug", skip(self, run_token), fields(discussion = %id))]
    pub async fn extend_lease(
        &self,
        id: &str,
        lease_until: i64,
        run_token: &str,
    ) -> Result<bool, StoreError> {
        self.statement(|reply| Statement::ExtendLease {
            id: id.to_owned(),
            lease_until,
            token: run_token.to_owned(),
            reply,
        })
        .await
    }

    /// Marks runs whose owner went away INTERRUPTED, with their unfinished
    /// messages (keeping the text they had), and stores for each the event
    /// `event(id, last stored seq, now)` saying so, in one transaction.
    /// `all` takes every RUNNING discussion (an embedded database has no
    /// other server); otherwise only those whose lease lapsed. Returns the
    /// ids recovered.
    #[tracing::instrument(level = "debug", skip(self, event))]
    pub async fn recover_interrupted(
        &self,
        all: bool,
        event: RecoveryEvent,
    ) -> Result<Vec<String>, StoreError> {
        self.statement(|reply| Statement::Recover {
            all,
            time: now_ms(),
            event,
            reply,
        })
        .await
    }
}

fn discussion_from_row(row: &AnyRow) -> Result<DiscussionRecord, StoreError> {
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    let outcome: String = row.try_get("outcome")?;
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
        outcome: match outcome.as_str() {
            "" => None,
            text => Some(
                DiscussionOutcome::parse(text)
                    .ok_or_else(|| StoreError::Corrupt(format!("discussion outcome {text:?}")))?,
            ),
        },
        consensus_round: u32::try_from(row.try_get::<i64, _>("consensus_round")?).unwrap_or(0),
    })
}
