//! Live events and stops between replicas, over Redis. PostgreSQL stays the
//! source of truth; Redis carries only what is live: each run's events
//! (deltas included) on a per-discussion stream, and stop requests. Losing
//! Redis loses nothing: runs go on and store everything, followers on other
//! replicas fall back to reading the store, and both return to live when
//! Redis is back.
//!
//! - [`publisher`]: a run's events onto its discussion's stream.
//! - [`reader`]: a few dedicated connections tailing many streams with `XREAD BLOCK`.
//! - [`follow`]: how a follower joins the stream and the store without gap or duplicate.
//! - [`follower`]: following one remote run on this replica.
//! - [`stop`]: stop requests, over Redis or PostgreSQL's `LISTEN/NOTIFY`.

mod entry;
pub mod follow;
pub mod follower;
mod keys;
pub mod publisher;
pub mod reader;
pub mod stop;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret as _, SecretString};

pub use entry::Entry;
pub use keys::Keys;

/// How long a command on the shared connection may take before it counts as failed.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long connecting to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How to reach Redis.
#[derive(Clone, Debug)]
pub struct RelaySettings {
    /// `redis://` or `rediss://` (TLS) URL; may hold a password.
    pub url: SecretString,
    /// Prefix of every key and channel, so deployments (or tests) can share one Redis.
    pub key_prefix: String,
    /// PEM CA bundle to verify a `rediss://` server with, instead of the system roots.
    pub ca_cert: Option<std::path::PathBuf>,
    /// Dedicated connections tailing streams (each `XREAD BLOCK` takes many keys).
    pub readers: usize,
}

/// Why the relay could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("invalid Redis URL: {0}")]
    Url(String),
    #[error("cannot read the Redis CA certificate {path}: {reason}")]
    CaCert { path: String, reason: String },
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// The relay: a Redis client, its shared multiplexed connection (for
/// `XADD`, `PUBLISH` and other short commands) and the stream readers.
/// Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    conn: ConnectionManager,
    keys: Keys,
    readers: reader::Readers,
}

impl Relay {
    /// A relay for `settings`. Connects lazily: a Redis that is down at
    /// start-up is retried on use, never a reason not to start.
    pub fn new(settings: &RelaySettings) -> Result<Self, RelayError> {
        // The workspace's one crypto provider for rustls; a no-op when
        // another part of the server installed it first.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = client(settings)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        let keys = Keys::new(&settings.key_prefix);
        let readers = reader::Readers::new(client.clone(), settings.readers.max(1));
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                conn,
                keys,
                readers,
            }),
        })
    }

    /// The names of keys and channels.
    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// A handle on the shared multiplexed connection (cheap to clone).
    pub(crate) fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    /// The client, for connections of their own (Pub/Sub).
    pub(crate) fn client(&self) -> &redis::Client {
        &self.inner.client
    }

    /// The stream readers.
    pub fn readers(&self) -> &reader::Readers {
        &self.inner.readers
    }

    /// Checks that Redis answers.
    pub async fn ping(&self) -> Result<(), RelayError> {
        let mut conn = self.conn();
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok(())
    }

    /// Stops the readers' background tasks.
    pub fn close(&self) {
        self.inner.readers.close();
    }
}

fn client(settings: &RelaySettings) -> Result<redis::Client, RelayError> {
    let url = settings.url.expose_secret();
    let Some(path) = &settings.ca_cert else {
        return redis::Client::open(url).map_err(|e| RelayError::Url(e.to_string()));
    };
    let ca_error = |reason: String| RelayError::CaCert {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
    redis::Client::build_with_tls(
        url,
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        },
    )
    .map_err(|e| ca_error(e.to_string()))
}
