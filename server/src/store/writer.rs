//! Group commit: the hot writes of runs (new discussions, rounds, finished
//! messages, the event log, run ends) go through one queue, and a single
//! writer stores whatever has queued up in one transaction, with multi-row
//! statements. Callers that must know a write is committed (a message before
//! its `message_completed`) wait for their acknowledgement; events wait for
//! nobody, and a run flushes the queue before it ends.

use std::collections::HashMap;
use std::sync::Arc;

use super::to_i64;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, AssertSqlSafe, Connection as _, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::{Backend, DiscussionRecord, MessageRecord};
use crate::domain::{DiscussionStatus, MessageStatus, RoundMode};

/// One event to store.
pub struct StoredEvent {
    pub discussion_id: String,
    pub seq: u64,
    pub time: i64,
    pub payload: Vec<u8>,
}

/// The outcome of a queued write, as the writer reports it.
pub(super) type Ack<T> = oneshot::Sender<Result<T, String>>;

pub(super) enum Command {
    /// A new discussion, its lease end and its run's token.
    Discussion(DiscussionRecord, i64, String, Ack<()>),
    Round {
        discussion_id: String,
        number: u32,
        mode: RoundMode,
        time: i64,
        ack: Ack<()>,
    },
    Message(MessageRecord, i64, Ack<()>),
    /// The text so far of a message still streaming; nobody waits for it.
    Partial(MessageRecord, i64),
    Event(StoredEvent),
    EndRun {
        id: String,
        status: DiscussionStatus,
        /// Only the run holding the discussion may end it.
        token: String,
        time: i64,
        ack: Ack<bool>,
    },
    Flush(oneshot::Sender<()>),
}

/// Most commands committed together: everything queued at the moment, so a
/// write that someone waits for never queues behind several event batches.
const BATCH: usize = 4096;

/// Most rows in one multi-row statement (SQLite allows 32766 parameters).
const ROWS_PER_STATEMENT: usize = 128;

pub(super) fn spawn_writer(
    pool: AnyPool,
    backend: Backend,
    gate: Option<Arc<tokio::sync::Mutex<()>>>,
) -> mpsc::Sender<Command> {
    let (tx, rx) = mpsc::channel(16 * 1024);
    tokio::spawn(write_loop(pool, backend, gate, rx));
    tx
}

async fn write_loop(
    pool: AnyPool,
    backend: Backend,
    gate: Option<Arc<tokio::sync::Mutex<()>>>,
    mut rx: mpsc::Receiver<Command>,
) {
    let closing = pool.close_event();
    tokio::pin!(closing);
    let mut writer = Writer {
        pool,
        backend,
        conn: None,
    };
    loop {
        let first = tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(cmd) => cmd,
                None => break,
            },
            // The pool's close waits for every connection, this one too.
            () = &mut closing, if writer.conn.is_some() => {
                writer.conn = None;
                continue;
            }
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(cmd) => batch.push(cmd),
                Err(_) => break,
            }
        }
        let _writer = match &gate {
            Some(g) => Some(g.lock().await),
            None => None,
        };
        writer.commit(batch).await;
    }
}

/// The writer keeps one connection for itself: no pool round trip per
/// commit, and on SQLite its page cache stays valid between its own commits
/// instead of being re-read from disk by whichever connection comes next.
struct Writer {
    pool: AnyPool,
    backend: Backend,
    conn: Option<PoolConnection<Any>>,
}

impl Writer {
    /// Commits a batch at once; if that fails, each write alone, so one bad
    /// write (a row whose parent was deleted) fails only itself.
    async fn commit(&mut self, batch: Vec<Command>) {
        match self.try_commit(&batch).await {
            Ok(()) => acknowledge(batch, &Ok(())),
            Err(e) if batch.len() == 1 => acknowledge(batch, &Err(e.to_string())),
            Err(e) => {
                tracing::warn!(error = %e, writes = batch.len(), "group commit failed; writing one by one");
                for cmd in batch {
                    let one = vec![cmd];
                    let outcome = self.try_commit(&one).await.map_err(|e| e.to_string());
                    acknowledge(one, &outcome);
                }
            }
        }
    }

    async fn try_commit(&mut self, batch: &[Command]) -> Result<(), sqlx::Error> {
        let kept = self.conn.is_some();
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(self.pool.acquire().await?),
        };
        let outcome = match commit_on(conn, self.backend, batch).await {
            // A kept connection that cannot even begin (PostgreSQL restarted,
            // say) is replaced once: what the pool's test before each
            // acquire would have caught.
            Err(Failure::Begin(e)) if kept => {
                tracing::warn!(error = %e, "the store writer's connection failed; taking a new one");
                self.conn = None;
                let conn = self.conn.insert(self.pool.acquire().await?);
                commit_on(conn, self.backend, batch).await
            }
            other => other,
        };
        let outcome = outcome.map_err(Failure::into_inner);
        if let Err(e) = &outcome
            && connection_lost(e)
        {
            self.conn = None;
        }
        outcome
    }
}

/// Not a refused write but a connection that cannot be used again:
/// I/O, or PostgreSQL's connection-exception (08) and shutdown (57P) codes.
fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => true,
    }
}

/// Where a commit failed: nothing was sent yet if it could not begin.
enum Failure {
    Begin(sqlx::Error),
    Write(sqlx::Error),
}

impl Failure {
    fn into_inner(self) -> sqlx::Error {
        match self {
            Self::Begin(e) | Self::Write(e) => e,
        }
    }
}

async fn commit_on(
    conn: &mut PoolConnection<Any>,
    backend: Backend,
    batch: &[Command],
) -> Result<(), Failure> {
    let mut tx = conn.begin().await.map_err(Failure::Begin)?;
    write_all(&mut tx, backend, batch)
        .await
        .map_err(Failure::Write)?;
    tx.commit().await.map_err(Failure::Write)
}

fn acknowledge(batch: Vec<Command>, outcome: &Result<(), String>) {
    if let Err(why) = outcome {
        tracing::error!(error = %why, "store write failed");
    }
    for cmd in batch {
        match cmd {
            Command::Discussion(_, _, _, ack)
            | Command::Round { ack, .. }
            | Command::Message(_, _, ack) => {
                let _ = ack.send(outcome.clone());
            }
            // The updated-row counts of a combined commit are not kept apart.
            Command::EndRun { ack, .. } => {
                let _ = ack.send(outcome.clone().map(|()| true));
            }
            Command::Event(_) | Command::Partial(..) => {}
            Command::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Parents before children, so foreign keys hold inside the transaction.
async fn write_all(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    batch: &[Command],
) -> Result<(), sqlx::Error> {
    let mut discussions = Vec::new();
    let mut rounds = Vec::new();
    let mut messages = Vec::new();
    let mut partials: Vec<(&MessageRecord, i64)> = Vec::new();
    let mut partial_at: HashMap<&str, usize> = HashMap::new();
    let mut events = Vec::new();
    let mut ends = Vec::new();
    for cmd in batch {
        match cmd {
            Command::Discussion(d, lease, token, _) => discussions.push((d, *lease, token)),
            Command::Round {
                discussion_id,
                number,
                mode,
                time,
                ..
            } => rounds.push((discussion_id, *number, *mode, *time)),
            Command::Message(m, time, _) => messages.push((m, *time)),
            Command::Partial(m, time) => {
                // One row per id in a statement: the latest text wins.
                match partial_at.get(m.id.as_str()) {
                    Some(&i) => partials[i] = (m, *time),
                    None => {
                        partial_at.insert(&m.id, partials.len());
                        partials.push((m, *time));
                    }
                }
            }
            Command::Event(e) => events.push(e),
            Command::EndRun {
                id,
                status,
                token,
                time,
                ..
            } => ends.push((id, *status, token, *time)),
            Command::Flush(_) => {}
        }
    }
    for chunk in statement_chunks(&discussions) {
        insert_discussions(tx, backend, chunk).await?;
    }
    for chunk in statement_chunks(&rounds) {
        insert_rounds(tx, backend, chunk).await?;
    }
    // Partials first: a final state in the same batch is newer.
    for chunk in statement_chunks(&partials) {
        upsert_messages(tx, backend, chunk, true).await?;
    }
    for chunk in statement_chunks(&messages) {
        upsert_messages(tx, backend, chunk, false).await?;
    }
    for chunk in statement_chunks(&events) {
        insert_events(tx, backend, chunk).await?;
    }
    end_runs(tx, &ends).await
}

/// Splits rows into statements of 2^k rows (at most [`ROWS_PER_STATEMENT`]),
/// so a handful of statement texts cover every batch and stay prepared.
fn statement_chunks<T>(rows: &[T]) -> Vec<&[T]> {
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

async fn insert_discussions(
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

async fn insert_rounds(
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
async fn upsert_messages(
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
         prompt_tokens, completion_tokens, cost_usd, latency_ms, create_time, update_time, author_name) VALUES {} \
         ON CONFLICT (id) DO UPDATE SET content = excluded.content, status = excluded.status, \
         error = excluded.error, prompt_tokens = excluded.prompt_tokens, \
         completion_tokens = excluded.completion_tokens, cost_usd = excluded.cost_usd, \
         latency_ms = excluded.latency_ms, update_time = excluded.update_time{}",
        placeholders(backend, rows.len(), 16),
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
            .bind(m.author_name.clone());
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

async fn insert_events(
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

async fn end_runs(
    tx: &mut Transaction<'_, Any>,
    rows: &[(&String, DiscussionStatus, &String, i64)],
) -> Result<(), sqlx::Error> {
    for (id, status, token, time) in rows {
        sqlx::query(
            "UPDATE discussions SET status = $1, lease_until = 0, update_time = $2 \
             WHERE id = $3 AND status = $4 AND run_token = $5",
        )
        .bind(status.as_str())
        .bind(*time)
        .bind((*id).clone())
        .bind(DiscussionStatus::Running.as_str())
        .bind((*token).clone())
        .execute(&mut **tx)
        .await?;
    }
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
