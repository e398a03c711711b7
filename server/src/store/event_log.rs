//! Write-behind for the event log: events are queued in seq order and a
//! single writer stores them in batches (one multi-row insert, one commit per
//! batch), so streaming never waits on the event table. A run flushes the
//! queue before it ends, so once a run is over its events are all stored.

use std::sync::Arc;

use sqlx::{AnyPool, AssertSqlSafe};
use tokio::sync::{mpsc, oneshot};

/// One event to store.
pub struct StoredEvent {
    pub discussion_id: String,
    pub seq: u64,
    pub time: i64,
    pub payload: Vec<u8>,
}

pub(super) enum Command {
    Append(StoredEvent),
    Flush(oneshot::Sender<()>),
}

/// Most events stored by one statement.
const BATCH: usize = 256;

pub(super) fn spawn_writer(
    pool: AnyPool,
    gate: Option<Arc<tokio::sync::Mutex<()>>>,
) -> mpsc::Sender<Command> {
    let (tx, rx) = mpsc::channel(16 * 1024);
    tokio::spawn(write_loop(pool, gate, rx));
    tx
}

async fn write_loop(
    pool: AnyPool,
    gate: Option<Arc<tokio::sync::Mutex<()>>>,
    mut rx: mpsc::Receiver<Command>,
) {
    let mut events = Vec::with_capacity(BATCH);
    let mut waiters = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Append(e) => events.push(e),
                Command::Flush(done) => waiters.push(done),
            }
            if events.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !events.is_empty() {
            let _writer = match &gate {
                Some(g) => Some(g.lock().await),
                None => None,
            };
            if let Err(e) = insert_batch(&pool, &events).await {
                tracing::error!(error = %e, count = events.len(), "could not store events");
            }
            events.clear();
        }
        for done in waiters.drain(..) {
            let _ = done.send(());
        }
    }
}

async fn insert_batch(pool: &AnyPool, events: &[StoredEvent]) -> Result<(), sqlx::Error> {
    let mut sql = String::from("INSERT INTO events (discussion_id, seq, time, payload) VALUES ");
    for i in 0..events.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        let n = i * 4;
        sql.push_str(&format!("(${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4));
    }
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for e in events {
        query = query
            .bind(e.discussion_id.clone())
            .bind(i64::try_from(e.seq).unwrap_or(i64::MAX))
            .bind(e.time)
            .bind(e.payload.clone());
    }
    query.execute(pool).await?;
    Ok(())
}
