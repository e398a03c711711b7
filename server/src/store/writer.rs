//! The store's one write path. Every write is a command to one writer task,
//! which stores whatever has queued up in one transaction: rows with
//! multi-row statements (new discussions, rounds, messages, the event log),
//! then the conditional statements (a run's begin, lease, end and stop,
//! recovery, projects, spend reservations) in queue order. Queue order is commit order, so
//! whoever sees a write committed sees every write queued before it.
//!
//! A write that someone depends on carries a [`Reply`] with its real
//! outcome (a message before its `message_completed`, whether a run still
//! held its discussion). Rows nobody waits for (events, a new round, the
//! text so far of a streaming message) carry none, so a model call never
//! waits for a commit; the writer logs their failures.

use std::collections::HashMap;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Connection as _, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::rows::{
    statement_chunks, write_discussions, write_events, write_messages, write_rounds,
};
use super::spend::{self, NewReservation, Reserved};
use super::statements::{self, ProjectUpdate};
use super::{
    Backend, BeginRun, DiscussionRecord, MessageRecord, ProjectRecord, RecoveryEvent, StoreError,
    StoredEvent, is_unique_violation,
};
use crate::domain::{DiscussionOutcome, DiscussionStatus, RoundMode};

/// The outcome of one write: set while its transaction runs, sent once the
/// transaction committed (or failed).
pub(super) struct Reply<T> {
    ack: oneshot::Sender<Result<T, StoreError>>,
    value: Option<T>,
}

impl<T> Reply<T> {
    pub(super) fn new() -> (Self, oneshot::Receiver<Result<T, StoreError>>) {
        let (ack, outcome) = oneshot::channel();
        (Self { ack, value: None }, outcome)
    }

    fn set(&mut self, value: T) {
        self.value = Some(value);
    }

    fn committed(self) {
        let outcome = self
            .value
            .ok_or_else(|| StoreError::Write("the write was not executed".into()));
        let _ = self.ack.send(outcome);
    }

    fn failed(self, error: StoreError) {
        let _ = self.ack.send(Err(error));
    }
}

pub(super) enum Command {
    /// A new discussion, its lease end and its run's token.
    Discussion {
        record: DiscussionRecord,
        lease_until: i64,
        token: String,
        reply: Reply<()>,
    },
    /// A new round; nobody waits for it (queue order stores it before any
    /// message of it).
    Round {
        discussion_id: String,
        number: u32,
        mode: RoundMode,
        /// A review round: the round it reviews (else 0).
        reviewed_round: u32,
        time: i64,
    },
    /// A message still streaming: its row from the start, then the text so
    /// far. Nobody waits for it, and it never overwrites a final state.
    Streaming(MessageRecord, i64),
    /// A message's final state.
    Message(MessageRecord, i64, Reply<()>),
    /// An event for the log; nobody waits for it.
    Event(StoredEvent),
    Statement(Statement),
    /// Resolves once everything queued before it is committed (or failed).
    Flush(oneshot::Sender<()>),
}

/// A write whose effect depends on what is stored: run in queue order,
/// after the rows of its batch.
pub(super) enum Statement {
    /// IDLE or INTERRUPTED becomes RUNNING, held by `token`.
    BeginRun {
        id: String,
        lease_until: i64,
        token: String,
        time: i64,
        reply: Reply<BeginRun>,
    },
    /// RUNNING held by `token` becomes `status`; false if not held.
    EndRun {
        id: String,
        status: DiscussionStatus,
        token: String,
        time: i64,
        reply: Reply<bool>,
    },
    /// STOPPED whatever the state.
    MarkStopped {
        id: String,
        time: i64,
        reply: Reply<()>,
    },
    /// What a run until consensus concluded, and the round of a consensus.
    SetOutcome {
        id: String,
        outcome: Option<DiscussionOutcome>,
        round: u32,
        time: i64,
        reply: Reply<()>,
    },
    /// A new lease end for the run `token`; false if it no longer holds it.
    ExtendLease {
        id: String,
        lease_until: i64,
        token: String,
        reply: Reply<bool>,
    },
    /// RUNNING discussions (all, or those whose lease lapsed) become
    /// INTERRUPTED with their streaming messages, each with its event.
    Recover {
        all: bool,
        time: i64,
        event: RecoveryEvent,
        reply: Reply<Vec<String>>,
    },
    /// A new project; false if the owner has one of that name.
    CreateProject {
        record: ProjectRecord,
        reply: Reply<bool>,
    },
    UpdateProject {
        record: ProjectRecord,
        reply: Reply<ProjectUpdate>,
    },
    /// A project with everything in it; false if there was none.
    DeleteProject {
        owner: String,
        id: String,
        reply: Reply<bool>,
    },
    /// A call's spend reservation, if its principal's budgets allow it.
    Reserve {
        r: NewReservation,
        reply: Reply<Reserved>,
    },
    /// A reservation becomes the call's actual cost.
    Settle {
        id: String,
        amount_usd: f64,
        reply: Reply<()>,
    },
}

/// Most commands committed together: everything queued at the moment, so a
/// write that someone waits for never queues behind several event batches.
const BATCH: usize = 4096;

pub(super) fn spawn_writer(pool: AnyPool, backend: Backend) -> mpsc::Sender<Command> {
    let (tx, rx) = mpsc::channel(16 * 1024);
    tokio::spawn(write_loop(pool, backend, rx));
    tx
}

async fn write_loop(pool: AnyPool, backend: Backend, mut rx: mpsc::Receiver<Command>) {
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
    async fn commit(&mut self, mut batch: Vec<Command>) {
        match self.try_commit(&mut batch).await {
            Ok(()) => committed(batch),
            Err(e) if batch.len() == 1 => failed(batch, e),
            Err(e) => {
                tracing::warn!(error = %e, writes = batch.len(), "group commit failed; writing one by one");
                for cmd in batch {
                    let mut one = vec![cmd];
                    match self.try_commit(&mut one).await {
                        Ok(()) => committed(one),
                        Err(e) => failed(one, e),
                    }
                }
            }
        }
    }

    async fn try_commit(&mut self, batch: &mut [Command]) -> Result<(), sqlx::Error> {
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
    batch: &mut [Command],
) -> Result<(), Failure> {
    let mut tx = conn.begin().await.map_err(Failure::Begin)?;
    write_all(&mut tx, backend, batch)
        .await
        .map_err(Failure::Write)?;
    tx.commit().await.map_err(Failure::Write)
}

fn committed(batch: Vec<Command>) {
    for cmd in batch {
        match cmd {
            Command::Discussion { reply, .. } | Command::Message(_, _, reply) => reply.committed(),
            Command::Statement(statement) => statement.committed(),
            Command::Flush(done) => {
                let _ = done.send(());
            }
            Command::Round { .. } | Command::Streaming(..) | Command::Event(_) => {}
        }
    }
}

/// Reports a failed commit of `batch`: a project name another write took
/// meanwhile is a conflict, anything else the database's error.
fn failed(batch: Vec<Command>, error: sqlx::Error) {
    tracing::error!(error = %error, writes = batch.len(), "store write failed");
    let unique = is_unique_violation(&error);
    let message = error.to_string();
    let database = || StoreError::Write(message.clone());
    for cmd in batch {
        match cmd {
            Command::Discussion { reply, .. } | Command::Message(_, _, reply) => {
                reply.failed(database());
            }
            Command::Statement(Statement::CreateProject { record, reply }) if unique => {
                reply.failed(statements::conflict(&record.name));
            }
            Command::Statement(Statement::UpdateProject { record, reply }) if unique => {
                reply.failed(statements::conflict(&record.name));
            }
            Command::Statement(statement) => statement.failed(database()),
            Command::Flush(done) => {
                let _ = done.send(());
            }
            Command::Round { .. } | Command::Streaming(..) | Command::Event(_) => {}
        }
    }
}

impl Statement {
    fn committed(self) {
        match self {
            Self::BeginRun { reply, .. } => reply.committed(),
            Self::EndRun { reply, .. }
            | Self::ExtendLease { reply, .. }
            | Self::CreateProject { reply, .. }
            | Self::DeleteProject { reply, .. } => reply.committed(),
            Self::MarkStopped { reply, .. } | Self::SetOutcome { reply, .. } => reply.committed(),
            Self::Recover { reply, .. } => reply.committed(),
            Self::UpdateProject { reply, .. } => reply.committed(),
            Self::Reserve { reply, .. } => reply.committed(),
            Self::Settle { reply, .. } => reply.committed(),
        }
    }

    fn failed(self, error: StoreError) {
        match self {
            Self::BeginRun { reply, .. } => reply.failed(error),
            Self::EndRun { reply, .. }
            | Self::ExtendLease { reply, .. }
            | Self::CreateProject { reply, .. }
            | Self::DeleteProject { reply, .. } => reply.failed(error),
            Self::MarkStopped { reply, .. } | Self::SetOutcome { reply, .. } => reply.failed(error),
            Self::Recover { reply, .. } => reply.failed(error),
            Self::UpdateProject { reply, .. } => reply.failed(error),
            Self::Reserve { reply, .. } => reply.failed(error),
            Self::Settle { reply, .. } => reply.failed(error),
        }
    }

    /// Runs the statement inside the batch's transaction, keeping its outcome.
    async fn run(
        &mut self,
        tx: &mut Transaction<'_, Any>,
        backend: Backend,
    ) -> Result<(), sqlx::Error> {
        match self {
            Self::BeginRun {
                id,
                lease_until,
                token,
                time,
                reply,
            } => reply.set(statements::begin_run(tx, id, *lease_until, token, *time).await?),
            Self::EndRun {
                id,
                status,
                token,
                time,
                reply,
            } => reply.set(statements::end_run(tx, id, *status, token, *time).await?),
            Self::MarkStopped { id, time, reply } => {
                reply.set(statements::mark_stopped(tx, id, *time).await?);
            }
            Self::SetOutcome {
                id,
                outcome,
                round,
                time,
                reply,
            } => reply.set(statements::set_outcome(tx, id, *outcome, *round, *time).await?),
            Self::ExtendLease {
                id,
                lease_until,
                token,
                reply,
            } => reply.set(statements::extend_lease(tx, id, *lease_until, token).await?),
            Self::Recover {
                all,
                time,
                event,
                reply,
            } => reply.set(statements::recover(tx, backend, *all, *time, *event).await?),
            Self::CreateProject { record, reply } => {
                reply.set(statements::insert_project(tx, record).await?);
            }
            Self::UpdateProject { record, reply } => {
                reply.set(statements::update_project(tx, record).await?);
            }
            Self::DeleteProject { owner, id, reply } => {
                reply.set(statements::delete_project(tx, owner, id).await?);
            }
            Self::Reserve { r, reply } => reply.set(spend::reserve(tx, r).await?),
            Self::Settle {
                id,
                amount_usd,
                reply,
            } => reply.set(spend::settle(tx, id, *amount_usd).await?),
        }
        Ok(())
    }
}

/// Parents before children, so foreign keys hold inside the transaction;
/// then the statements in queue order.
async fn write_all(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    batch: &mut [Command],
) -> Result<(), sqlx::Error> {
    {
        let mut discussions = Vec::new();
        let mut rounds = Vec::new();
        let mut messages = Vec::new();
        let mut streaming: Vec<(&MessageRecord, i64)> = Vec::new();
        let mut streaming_at: HashMap<&str, usize> = HashMap::new();
        let mut events = Vec::new();
        for cmd in batch.iter() {
            match cmd {
                Command::Discussion {
                    record,
                    lease_until,
                    token,
                    ..
                } => discussions.push((record, *lease_until, token)),
                Command::Round {
                    discussion_id,
                    number,
                    mode,
                    reviewed_round,
                    time,
                } => rounds.push((discussion_id, *number, *mode, *reviewed_round, *time)),
                Command::Message(m, time, _) => messages.push((m, *time)),
                Command::Streaming(m, time) => {
                    // One row per id in a statement: the latest text wins.
                    match streaming_at.get(m.id.as_str()) {
                        Some(&i) => streaming[i] = (m, *time),
                        None => {
                            streaming_at.insert(&m.id, streaming.len());
                            streaming.push((m, *time));
                        }
                    }
                }
                Command::Event(e) => events.push(e),
                Command::Statement(_) | Command::Flush(_) => {}
            }
        }
        for chunk in statement_chunks(&discussions) {
            write_discussions(tx, backend, chunk).await?;
        }
        for chunk in statement_chunks(&rounds) {
            write_rounds(tx, backend, chunk).await?;
        }
        // Streaming states first: a final state in the same batch is newer.
        for chunk in statement_chunks(&streaming) {
            write_messages(tx, backend, chunk, true).await?;
        }
        for chunk in statement_chunks(&messages) {
            write_messages(tx, backend, chunk, false).await?;
        }
        for chunk in statement_chunks(&events) {
            write_events(tx, backend, chunk).await?;
        }
    }
    for cmd in batch.iter_mut() {
        match cmd {
            Command::Discussion { reply, .. } | Command::Message(_, _, reply) => reply.set(()),
            Command::Statement(statement) => statement.run(tx, backend).await?,
            _ => {}
        }
    }
    Ok(())
}
