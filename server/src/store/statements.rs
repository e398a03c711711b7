//! The conditional statements the writer runs in queue order: a run's
//! begin, lease, end and stop, recovery, and projects. Each runs inside the
//! writer's transaction and returns its outcome.

use sqlx::{Any, Row as _, Transaction};

use super::rows::write_events;
use super::{Backend, BeginRun, ProjectRecord, RecoveryEvent, StoreError, to_i64};
use crate::domain::{DiscussionStatus, MessageStatus};

/// How an update of a project came out.
#[derive(Debug)]
pub(super) enum ProjectUpdate {
    Updated,
    Missing,
    /// Another of the owner's projects has the new name.
    NameTaken,
}

/// Takes the run of an IDLE or INTERRUPTED discussion in one conditional
/// update, so two callers (or replicas) can never both win.
pub(super) async fn begin_run(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    lease_until: i64,
    token: &str,
    time: i64,
) -> Result<BeginRun, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE discussions SET status = $1, lease_until = $2, update_time = $3, run_token = $7 \
         WHERE id = $4 AND status IN ($5, $6)",
    )
    .bind(DiscussionStatus::Running.as_str())
    .bind(lease_until)
    .bind(time)
    .bind(id)
    .bind(DiscussionStatus::Idle.as_str())
    .bind(DiscussionStatus::Interrupted.as_str())
    .bind(token)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if updated > 0 {
        return Ok(BeginRun::Started);
    }
    let status = sqlx::query("SELECT status FROM discussions WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match status {
        None => BeginRun::Missing,
        Some(row) => match DiscussionStatus::parse(&row.try_get::<String, _>("status")?) {
            Some(DiscussionStatus::Stopped) => BeginRun::Stopped,
            _ => BeginRun::AlreadyRunning,
        },
    })
}

/// Marks runs whose owner went away INTERRUPTED, with their unfinished
/// messages (keeping the text they had), and stores the event saying so.
pub(super) async fn recover(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    all: bool,
    now: i64,
    event: RecoveryEvent,
) -> Result<Vec<String>, sqlx::Error> {
    let cutoff = if all { i64::MAX } else { now };
    let rows = sqlx::query("SELECT id FROM discussions WHERE status = $1 AND lease_until < $2")
        .bind(DiscussionStatus::Running.as_str())
        .bind(cutoff)
        .fetch_all(&mut **tx)
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
        .execute(&mut **tx)
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
        .execute(&mut **tx)
        .await?;
        let last =
            sqlx::query("SELECT COALESCE(MAX(seq), 0) AS s FROM events WHERE discussion_id = $1")
                .bind(&id)
                .fetch_one(&mut **tx)
                .await?;
        let last = u64::try_from(last.try_get::<i64, _>("s")?).unwrap_or(0);
        write_events(tx, backend, &[&event(&id, last, now)]).await?;
        recovered.push(id);
    }
    Ok(recovered)
}

/// RUNNING held by `token` becomes `status`; `false` if not held.
pub(super) async fn end_run(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    status: DiscussionStatus,
    token: &str,
    time: i64,
) -> Result<bool, sqlx::Error> {
    let ended = sqlx::query(
        "UPDATE discussions SET status = $1, lease_until = 0, update_time = $2 \
         WHERE id = $3 AND status = $4 AND run_token = $5",
    )
    .bind(status.as_str())
    .bind(time)
    .bind(id)
    .bind(DiscussionStatus::Running.as_str())
    .bind(token)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(ended > 0)
}

/// STOPPED whatever the state.
pub(super) async fn mark_stopped(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    time: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE discussions SET status = $1, lease_until = 0, update_time = $2 WHERE id = $3",
    )
    .bind(DiscussionStatus::Stopped.as_str())
    .bind(time)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A new lease end for the run `token`; `false` if it no longer holds it.
pub(super) async fn extend_lease(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    lease_until: i64,
    token: &str,
) -> Result<bool, sqlx::Error> {
    let held = sqlx::query(
        "UPDATE discussions SET lease_until = $1 WHERE id = $2 AND status = $3 AND run_token = $4",
    )
    .bind(lease_until)
    .bind(id)
    .bind(DiscussionStatus::Running.as_str())
    .bind(token)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(held > 0)
}

/// The refusal of a project name the owner already uses.
pub(super) fn conflict(name: &str) -> StoreError {
    StoreError::Conflict(format!("a project named {name:?} already exists"))
}

/// Inserts a project with its models; `false` (nothing written) when the
/// owner already has a project of that name.
pub(super) async fn insert_project(
    tx: &mut Transaction<'_, Any>,
    record: &ProjectRecord,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO projects (id, owner, name, system_prompt, summarizer_model, create_time, update_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (owner, name) DO NOTHING",
    )
    .bind(&record.id)
    .bind(&record.owner)
    .bind(&record.name)
    .bind(&record.system_prompt)
    .bind(&record.summarizer_model)
    .bind(record.create_time)
    .bind(record.update_time)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(false);
    }
    insert_models(tx, &record.id, &record.models).await?;
    insert_fallbacks(tx, &record.id, &record.fallbacks).await?;
    Ok(true)
}

/// Writes every field of a project and replaces its models.
pub(super) async fn update_project(
    tx: &mut Transaction<'_, Any>,
    record: &ProjectRecord,
) -> Result<ProjectUpdate, sqlx::Error> {
    let taken = sqlx::query("SELECT id FROM projects WHERE owner = $1 AND name = $2 AND id <> $3")
        .bind(&record.owner)
        .bind(&record.name)
        .bind(&record.id)
        .fetch_optional(&mut **tx)
        .await?;
    if taken.is_some() {
        return Ok(ProjectUpdate::NameTaken);
    }
    let updated = sqlx::query(
        "UPDATE projects SET name = $1, system_prompt = $2, summarizer_model = $3, update_time = $4 \
         WHERE id = $5 AND owner = $6",
    )
    .bind(&record.name)
    .bind(&record.system_prompt)
    .bind(&record.summarizer_model)
    .bind(record.update_time)
    .bind(&record.id)
    .bind(&record.owner)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(ProjectUpdate::Missing);
    }
    sqlx::query("DELETE FROM project_models WHERE project_id = $1")
        .bind(&record.id)
        .execute(&mut **tx)
        .await?;
    insert_models(tx, &record.id, &record.models).await?;
    sqlx::query("DELETE FROM project_fallbacks WHERE project_id = $1")
        .bind(&record.id)
        .execute(&mut **tx)
        .await?;
    insert_fallbacks(tx, &record.id, &record.fallbacks).await?;
    Ok(ProjectUpdate::Updated)
}

/// Deletes a project with its discussions; `false` when there was none.
pub(super) async fn delete_project(
    tx: &mut Transaction<'_, Any>,
    owner: &str,
    id: &str,
) -> Result<bool, sqlx::Error> {
    // Children first, explicitly: the cascade is not relied on, so a
    // database without foreign-key enforcement leaves nothing behind.
    for sql in [
        "DELETE FROM events WHERE discussion_id IN (SELECT id FROM discussions WHERE project_id = $1 AND owner = $2)",
        "DELETE FROM messages WHERE discussion_id IN (SELECT id FROM discussions WHERE project_id = $1 AND owner = $2)",
        "DELETE FROM rounds WHERE discussion_id IN (SELECT id FROM discussions WHERE project_id = $1 AND owner = $2)",
        "DELETE FROM discussions WHERE project_id = $1 AND owner = $2",
        "DELETE FROM project_models WHERE project_id IN (SELECT id FROM projects WHERE id = $1 AND owner = $2)",
        "DELETE FROM project_fallbacks WHERE project_id IN (SELECT id FROM projects WHERE id = $1 AND owner = $2)",
    ] {
        sqlx::query(sql)
            .bind(id)
            .bind(owner)
            .execute(&mut **tx)
            .await?;
    }
    let deleted = sqlx::query("DELETE FROM projects WHERE id = $1 AND owner = $2")
        .bind(id)
        .bind(owner)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(deleted > 0)
}

async fn insert_models(
    tx: &mut Transaction<'_, Any>,
    project_id: &str,
    models: &[String],
) -> Result<(), sqlx::Error> {
    for (position, model) in models.iter().enumerate() {
        sqlx::query("INSERT INTO project_models (project_id, position, model) VALUES ($1, $2, $3)")
            .bind(project_id)
            .bind(to_i64(position))
            .bind(model)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// A project's fallbacks, seat by seat, in order.
async fn insert_fallbacks(
    tx: &mut Transaction<'_, Any>,
    project_id: &str,
    fallbacks: &std::collections::BTreeMap<String, Vec<String>>,
) -> Result<(), sqlx::Error> {
    for (seat, models) in fallbacks {
        for (position, model) in models.iter().enumerate() {
            sqlx::query(
                "INSERT INTO project_fallbacks (project_id, seat, position, model) VALUES ($1, $2, $3, $4)",
            )
            .bind(project_id)
            .bind(seat)
            .bind(to_i64(position))
            .bind(model)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}
