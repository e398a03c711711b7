//! The multi-row statements of group commit: many rows of one kind in one
//! statement, in a handful of statement shapes that stay prepared.

use sqlx::{Any, AssertSqlSafe, Transaction};

use super::{Backend, DiscussionRecord, MessageRecord, StoredEvent, to_i64};
use crate::domain::{MessageStatus, RoundMode};

/// Most rows in one multi-row statement (SQLite allows 32766 parameters).
const ROWS_PER_STATEMENT: usize = 128;

/// Splits rows into statements of 2^k rows (at most [`ROWS_PER_STATEMENT`]),
/// so a handful of statement texts cover every batch and stay prepared.
pub(super) fn statement_chunks<T>(rows: &[T]) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut rest = rows;
    while !rest.is_empty() {
        let len = rest.len().min(ROWS_PER_STATEMENT);
        let take = 1 << len.ilog2();
        let (head, tail) = rest.split_at(take);
        out.push(head);
        rest = tail;
    }
    out
}

/// Placeholders of `rows` rows of `cols` values: `(?, ?), (?, ?)` on SQLite,
/// whose driver looks up every `$N` by name (quadratic in a long statement),
/// and `($1, $2), ($3, $4)` on PostgreSQL.
fn placeholders(backend: Backend, rows: usize, cols: usize) -> String {
    let mut out = String::new();
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            match backend {
                Backend::Sqlite => out.push('?'),
                Backend::Postgres => out.push_str(&format!("${}", r * cols + c + 1)),
            }
        }
        out.push(')');
    }
    out
}

pub(super) async fn write_discussions(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    rows: &[(&DiscussionRecord, i64, &String)],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO discussions (id, project_id, owner, kind, question, status, lease_until, create_time, update_time, run_token) VALUES {}",
        placeholders(backend, rows.len(), 10)
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for (d, lease, token) in rows {
        q = q
            .bind(d.id.clone())
            .bind(d.project_id.clone())
            .bind(d.owner.clone())
            .bind(d.kind.as_str())
            .bind(d.question.clone())
            .bind(d.status.as_str())
            .bind(*lease)
            .bind(d.create_time)
            .bind(d.update_time)
            .bind((*token).clone());
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

pub(super) async fn write_rounds(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    rows: &[(&String, u32, RoundMode, i64)],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO rounds (discussion_id, number, mode, create_time) VALUES {}",
        placeholders(backend, rows.len(), 4)
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for (id, number, mode, time) in rows {
        q = q
            .bind((*id).clone())
            .bind(i64::from(*number))
            .bind(mode.as_str())
            .bind(*time);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// Messages, one row per id in a statement: final states, or (`partial`)
/// the text so far of messages that are still streaming in the store.
pub(super) async fn write_messages(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    rows: &[(&MessageRecord, i64)],
    partial: bool,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO messages (id, discussion_id, round, position, role, model, content, status, error, \
         prompt_tokens, completion_tokens, cost_usd, latency_ms, create_time, update_time, author_name, \
         failure_reason, answered_by, reasoning, queue_ms) VALUES {} \
         ON CONFLICT (id) DO UPDATE SET content = excluded.content, status = excluded.status, \
         error = excluded.error, prompt_tokens = excluded.prompt_tokens, \
         completion_tokens = excluded.completion_tokens, cost_usd = excluded.cost_usd, \
         latency_ms = excluded.latency_ms, update_time = excluded.update_time, \
         failure_reason = excluded.failure_reason, answered_by = excluded.answered_by, \
         reasoning = excluded.reasoning, queue_ms = excluded.queue_ms{}",
        placeholders(backend, rows.len(), 20),
        if partial {
            format!(
                " WHERE messages.status = '{}'",
                MessageStatus::Streaming.as_str()
            )
        } else {
            String::new()
        }
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for (m, time) in rows {
        q = q
            .bind(m.id.clone())
            .bind(m.discussion_id.clone())
            .bind(i64::from(m.round))
            .bind(i64::from(m.position))
            .bind(m.role.as_str())
            .bind(m.model.clone())
            .bind(m.content.clone())
            .bind(m.status.as_str())
            .bind(m.error.clone())
            .bind(to_i64(m.prompt_tokens))
            .bind(to_i64(m.completion_tokens))
            .bind(m.cost_usd)
            .bind(to_i64(m.latency_ms))
            .bind(m.create_time)
            .bind(*time)
            .bind(m.author_name.clone())
            .bind(m.failure_reason.map_or("", |r| r.as_str()))
            .bind(m.answered_by.clone())
            .bind(m.reasoning.clone())
            .bind(to_i64(m.queue_ms));
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

pub(super) async fn write_events(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    events: &[&StoredEvent],
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO events (discussion_id, seq, time, payload) VALUES {}",
        placeholders(backend, events.len(), 4)
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for e in events {
        q = q
            .bind(e.discussion_id.clone())
            .bind(to_i64(e.seq))
            .bind(e.time)
            .bind(e.payload.clone());
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Backend, ROWS_PER_STATEMENT, placeholders, statement_chunks};

    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(
            placeholders(Backend::Postgres, 2, 3),
            "($1, $2, $3), ($4, $5, $6)"
        );
        assert_eq!(placeholders(Backend::Sqlite, 2, 2), "(?, ?), (?, ?)");
    }

    #[test]
    fn statements_take_powers_of_two_rows_and_every_row_once() {
        let rows: Vec<usize> = (0..(ROWS_PER_STATEMENT * 2 + 13)).collect();
        let chunks = statement_chunks(&rows);
        let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [ROWS_PER_STATEMENT, ROWS_PER_STATEMENT, 8, 4, 1]);
        let flat: Vec<usize> = chunks.concat();
        assert_eq!(flat, rows);
        assert!(statement_chunks::<usize>(&[]).is_empty());
    }
}
