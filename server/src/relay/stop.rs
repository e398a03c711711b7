//! Stop requests between replicas. `StopDiscussion` on a replica that does
//! not run the discussion marks it STOPPED in the store (which the owner's
//! lease heartbeat would notice in time) and tells the owner at once: with
//! Redis, a stop key plus a Pub/Sub message (the owner also checks the keys
//! of its runs every [`CHECK`], so a lost message costs at most that); on
//! PostgreSQL alone, a `NOTIFY` the owner `LISTEN`s for.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Relay;
use crate::store::{STOP_CHANNEL, Store, StoreError};

/// How often an owner looks for stop keys of its runs.
pub const CHECK: Duration = Duration::from_millis(500);
/// How long a stop key stays: longer than any check interval.
const STOP_TTL_SECS: u64 = 60;
/// Wait before listening again after the connection was lost.
const RECONNECT: Duration = Duration::from_millis(500);

/// The runs of this replica, as a stop listener sees them.
pub trait StopTarget: Send + Sync + 'static {
    /// Discussions this replica runs now.
    fn running(&self) -> Vec<String>;
    /// Stops this replica's run of `discussion_id`, if it has one.
    fn stop(&self, discussion_id: &str);
}

/// Why a stop could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The way stops travel between replicas.
#[derive(Clone)]
pub enum StopChannel {
    /// A stop key and a Pub/Sub message.
    Redis(Relay),
    /// PostgreSQL's `NOTIFY`; `url` is the database to `LISTEN` on.
    Postgres { store: Store, url: String },
    /// One node: there is nobody else to tell.
    Local,
}

impl StopChannel {
    /// Tells whichever replica runs `discussion_id` to stop it.
    #[tracing::instrument(name = "send_stop", skip(self))]
    pub async fn send(&self, discussion_id: &str) -> Result<(), StopError> {
        match self {
            StopChannel::Redis(relay) => {
                let keys = relay.keys();
                let mut conn = relay.conn();
                redis::pipe()
                    .cmd("SET")
                    .arg(keys.stop(discussion_id))
                    .arg(1)
                    .arg("EX")
                    .arg(STOP_TTL_SECS)
                    .ignore()
                    .cmd("PUBLISH")
                    .arg(keys.stops())
                    .arg(discussion_id)
                    .ignore()
                    .query_async::<()>(&mut conn)
                    .await?;
                Ok(())
            }
            StopChannel::Postgres { store, .. } => Ok(store.notify_stop(discussion_id).await?),
            StopChannel::Local => Ok(()),
        }
    }

    /// Listens for stops of `target`'s runs until `closing`.
    pub fn listen(
        &self,
        target: Arc<dyn StopTarget>,
        closing: CancellationToken,
    ) -> Vec<JoinHandle<()>> {
        match self {
            StopChannel::Redis(relay) => vec![
                tokio::spawn(subscribe(relay.clone(), target.clone(), closing.clone())),
                tokio::spawn(check_keys(relay.clone(), target, closing)),
            ],
            StopChannel::Postgres { url, .. } => {
                vec![tokio::spawn(listen_postgres(url.clone(), target, closing))]
            }
            StopChannel::Local => Vec::new(),
        }
    }
}

/// The Pub/Sub side: a stop announced reaches the owner at once.
async fn subscribe(relay: Relay, target: Arc<dyn StopTarget>, closing: CancellationToken) {
    let channel = relay.keys().stops();
    let mut warned = false;
    loop {
        let subscribed = async {
            let mut pubsub = relay.client().get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::select! {
            () = closing.cancelled() => return,
            p = subscribed => p,
        };
        match pubsub {
            Ok(mut pubsub) => {
                if warned {
                    tracing::info!("Redis is back: listening for stops again");
                    warned = false;
                }
                let mut messages = pubsub.on_message();
                loop {
                    let message = tokio::select! {
                        () = closing.cancelled() => return,
                        m = messages.next() => m,
                    };
                    let Some(message) = message else { break };
                    match message.get_payload::<String>() {
                        Ok(id) => target.stop(&id),
                        Err(e) => tracing::warn!(error = %e, "undecodable stop message"),
                    }
                }
            }
            Err(e) => {
                if !warned {
                    tracing::warn!(error = %e, "cannot listen for stops on Redis; stops reach this replica by the run lease meanwhile");
                    warned = true;
                }
            }
        }
        tokio::select! {
            () = closing.cancelled() => return,
            () = tokio::time::sleep(RECONNECT) => {}
        }
    }
}

/// The key side: every [`CHECK`], the stop keys of this replica's runs.
async fn check_keys(relay: Relay, target: Arc<dyn StopTarget>, closing: CancellationToken) {
    let mut tick = tokio::time::interval(CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = closing.cancelled() => return,
            _ = tick.tick() => {}
        }
        let running = target.running();
        if running.is_empty() {
            continue;
        }
        let keys: Vec<String> = running.iter().map(|id| relay.keys().stop(id)).collect();
        let mut conn = relay.conn();
        match redis::cmd("MGET")
            .arg(&keys)
            .query_async::<Vec<Option<String>>>(&mut conn)
            .await
        {
            Ok(found) => {
                for (id, hit) in running.iter().zip(found) {
                    if hit.is_some() {
                        target.stop(id);
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot check stop keys"),
        }
    }
}

/// PostgreSQL alone: `LISTEN` for the stop channel.
async fn listen_postgres(url: String, target: Arc<dyn StopTarget>, closing: CancellationToken) {
    let mut warned = false;
    loop {
        let listener = async {
            let mut listener = sqlx::postgres::PgListener::connect(&url).await?;
            listener.listen(STOP_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let listener = tokio::select! {
            () = closing.cancelled() => return,
            l = listener => l,
        };
        match listener {
            Ok(mut listener) => {
                warned = false;
                loop {
                    let note = tokio::select! {
                        () = closing.cancelled() => return,
                        n = listener.recv() => n,
                    };
                    match note {
                        Ok(note) => target.stop(note.payload()),
                        Err(e) => {
                            tracing::warn!(error = %e, "lost the stop listener's connection");
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                if !warned {
                    tracing::warn!(error = %e, "cannot LISTEN for stops; they reach this replica by the run lease meanwhile");
                    warned = true;
                }
            }
        }
        tokio::select! {
            () = closing.cancelled() => return,
            () = tokio::time::sleep(RECONNECT) => {}
        }
    }
}
