//! Durable state through sqlx's `Any` driver, so one set of queries serves the
//! embedded SQLite default and PostgreSQL. Queries use `$n` placeholders and
//! portable SQL (the group-commit writer's long multi-row statements use `?`
//! on SQLite; see `rows::placeholders`); only the migrations differ per
//! backend (column types).
//!
//! Reads go to the pool; every write is a command of the one writer
//! (`writer.rs`), which commits in queue order: the multi-row statements in
//! `rows.rs`, the conditional ones in `statements.rs`. The files named
//! after tables (`projects`, `discussions`, `messages`, `events`) hold the
//! [`Store`] methods for them; `records` the rows handed in and out.

mod discussions;
mod events;
mod messages;
mod migrations;
mod projects;
mod records;
mod rows;
mod runs;
mod spend;
mod statements;
mod writer;

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions as _, Executor as _};

pub use discussions::BeginRun;
pub use records::{
    DiscussionRecord, MessageRecord, NewProject, PageCursor, ProjectRecord, RecoveryEvent,
    RoundRecord, StoredEvent, UsageTotals,
};
pub use runs::{RunHolder, STOP_CHANNEL};
pub use spend::{ModelSpend, NewReservation, Reserved, SpendLimit};

/// Which database the store talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: use sqlite://… or postgres://…")]
    UnsupportedUrl(String),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Conflict(String),
    #[error("write failed: {0}")]
    Write(String),
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
}

/// The store: a connection pool for reads, the queue of its one writer
/// (see [`writer`]) and the backend it points at. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    writes: tokio::sync::mpsc::Sender<writer::Command>,
}

impl Store {
    /// Connects, prepares SQLite for concurrent use (WAL), and applies migrations.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
        let pool_options = match backend {
            Backend::Sqlite => {
                // An embedded database cannot drop a connection, so the
                // round trip to test one on every acquire buys nothing.
                AnyPoolOptions::new()
                    .max_connections(8)
                    .test_before_acquire(false)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
            }
            Backend::Postgres => AnyPoolOptions::new().max_connections(16),
        };
        let pool = pool_options
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        migrations::migrator(backend).run(&pool).await?;
        let writes = writer::spawn_writer(pool.clone(), backend);
        Ok(Self {
            pool,
            backend,
            writes,
        })
    }

    /// SQLite URL of the default database file in `data_dir`, creating the dir.
    pub fn default_sqlite_url(data_dir: &std::path::Path) -> Result<String, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        Ok(format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("moai.db").display()
        ))
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Waits until every write queued so far is committed (or failed).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn flush(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.writes.send(writer::Command::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Queues a write nobody waits for; the writer logs its failure.
    async fn queue(&self, cmd: writer::Command) {
        if self.writes.send(cmd).await.is_err() {
            tracing::error!("the store writer has stopped; write lost");
        }
    }

    /// Queues a write and waits for its outcome.
    async fn acknowledged<T>(
        &self,
        make: impl FnOnce(writer::Reply<T>) -> writer::Command,
    ) -> Result<T, StoreError> {
        let (reply, outcome) = writer::Reply::new();
        self.writes
            .send(make(reply))
            .await
            .map_err(|_| StoreError::Write("the store writer has stopped".into()))?;
        outcome
            .await
            .map_err(|_| StoreError::Write("the store writer has stopped".into()))?
    }

    /// Queues a conditional statement and waits for its outcome.
    async fn statement<T>(
        &self,
        make: impl FnOnce(writer::Reply<T>) -> writer::Statement,
    ) -> Result<T, StoreError> {
        self.acknowledged(|reply| writer::Command::Statement(make(reply)))
            .await
    }

    /// Commits what is queued, then closes the pool.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn close(&self) {
        self.flush().await;
        self.pool.close().await;
    }
}

/// A count or seq as the signed 64-bit integer both databases store.
fn to_i64(v: impl TryInto<i64>) -> i64 {
    v.try_into().unwrap_or(i64::MAX)
}

/// Current time in Unix milliseconds, the unit of every stored time.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || db.code().as_deref() == Some("23505")
                || db.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}
