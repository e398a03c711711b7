//! Publishing a run's events to its discussion's stream. The publisher is one
//! more subscriber of the run's hub: it never holds the run up, and if Redis
//! is slow it only falls behind itself. Events are gathered into windows of
//! at most [`WINDOW`] (a durable event closes its window at once) and each
//! window is one `XADD`, trimmed with `MAXLEN ~`; a window that cannot be
//! sent is kept and sent with the next one when Redis is back, so followers
//! miss nothing a short outage would otherwise cost them.

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use moai_proto::v1::{DiscussionEvent, discussion_event::Payload};
use tokio::time::Instant;

use super::{Entry, Relay};

/// Longest a delta waits for others to share its `XADD`.
pub const WINDOW: Duration = Duration::from_millis(25);
/// Entries a stream keeps (approximately): many minutes of a busy run.
const MAXLEN: usize = 10_000;
/// A stream's life while its run goes on, renewed with every window (so the
/// stream of a run whose replica died goes away by itself).
const LIVE_TTL_SECS: i64 = 3600;
/// How long a stream stays after its run ended, for followers still catching up.
const ENDED_TTL_SECS: i64 = 300;
/// Wait before sending a window again after Redis refused it.
const RETRY: Duration = Duration::from_millis(250);
/// Events kept for Redis while it is away; older ones are dropped (followers
/// then read those from the store).
const MAX_HELD: usize = 8192;
/// How long a run's last events may wait for Redis after the run ended.
const END_PATIENCE: Duration = Duration::from_secs(10);

/// The run a publisher publishes.
#[derive(Clone, Debug)]
pub struct RunId {
    pub discussion_id: String,
    /// The run's token (the one on the discussion row while it runs).
    pub token: String,
    /// The seq of the run's first event.
    pub first_seq: u64,
}

/// Publishes `events` (a run's, in seq order, ending with the run) to the
/// discussion's stream; returns when the run's events are all sent, or
/// Redis stayed away past [`END_PATIENCE`] after the run ended.
pub async fn publish_run(
    relay: Relay,
    run: RunId,
    events: impl Stream<Item = Arc<DiscussionEvent>> + Send,
) {
    let mut publisher = Publisher {
        key: relay.keys().events(&run.discussion_id),
        relay,
        prev: run.first_seq.saturating_sub(1),
        run,
        held: Vec::new(),
        failing: false,
    };
    let mut events = std::pin::pin!(events);
    let mut due: Option<Instant> = None;
    loop {
        let next = match due {
            Some(at) => tokio::select! {
                next = events.next() => next,
                () = tokio::time::sleep_until(at) => {
                    due = publisher.send().await;
                    continue;
                }
            },
            None => events.next().await,
        };
        let Some(event) = next else { break };
        let durable = !matches!(event.payload, Some(Payload::MessageDelta(_)));
        publisher.hold(event);
        if durable && !publisher.failing {
            due = publisher.send().await;
        } else if due.is_none() {
            // While Redis refuses, only the retry timer sends (a durable
            // event does not make every event a reconnect attempt).
            due = Some(Instant::now() + WINDOW);
        }
    }
    let give_up = Instant::now() + END_PATIENCE;
    while publisher.send().await.is_some() {
        if Instant::now() >= give_up {
            tracing::warn!(
                discussion = %publisher.run.discussion_id,
                "Redis stayed away after the run ended; its last events are in the store only"
            );
            return;
        }
        tokio::time::sleep(RETRY).await;
    }
    publisher.expire(ENDED_TTL_SECS).await;
}

struct Publisher {
    relay: Relay,
    run: RunId,
    key: String,
    /// Every event up to here is in the stream (or was given up on).
    prev: u64,
    held: Vec<Arc<DiscussionEvent>>,
    failing: bool,
}

impl Publisher {
    fn hold(&mut self, event: Arc<DiscussionEvent>) {
        self.held.push(event);
        if self.held.len() > MAX_HELD {
            // Followers see the jump in `prev` and read what is missing from the store.
            let drop = self.held.len() - MAX_HELD;
            self.held.drain(..drop);
            self.prev = self.held.first().map_or(self.prev, |e| e.seq - 1);
        }
    }

    /// Sends what is held as one entry; returns when to try again if Redis refused it.
    async fn send(&mut self) -> Option<Instant> {
        if self.held.is_empty() {
            return None;
        }
        let entry = Entry {
            run: self.run.token.clone(),
            first: self.run.first_seq,
            prev: self.prev,
            events: std::mem::take(&mut self.held),
        };
        match self.xadd(&entry).await {
            Ok(()) => {
                if self.failing {
                    tracing::info!(discussion = %self.run.discussion_id, "Redis is back: publishing live events again");
                    self.failing = false;
                }
                self.prev = entry.last();
                None
            }
            Err(e) => {
                if !self.failing {
                    tracing::warn!(
                        discussion = %self.run.discussion_id, error = %e,
                        "cannot publish live events to Redis; the run goes on, watchers on other replicas read the store"
                    );
                    self.failing = true;
                }
                self.held = entry.events;
                Some(Instant::now() + RETRY)
            }
        }
    }

    #[tracing::instrument(name = "redis_xadd", skip_all, fields(events = entry.events.len()))]
    async fn xadd(&self, entry: &Entry) -> Result<(), redis::RedisError> {
        let mut conn = self.relay.conn();
        let result = redis::pipe()
            .cmd("XADD")
            .arg(&self.key)
            .arg("MAXLEN")
            .arg("~")
            .arg(MAXLEN)
            .arg(entry.id())
            .arg(&entry.fields()[..])
            .ignore()
            .cmd("EXPIRE")
            .arg(&self.key)
            .arg(LIVE_TTL_SECS)
            .ignore()
            .query_async::<()>(&mut conn)
            .await;
        match result {
            // An entry with this id is there already: an earlier send that
            // timed out did land. Followers skip what they have seen.
            Err(e) if e.to_string().contains("equal or smaller") => Ok(()),
            other => other,
        }
    }

    async fn expire(&self, secs: i64) {
        let mut conn = self.relay.conn();
        if let Err(e) = redis::cmd("EXPIRE")
            .arg(&self.key)
            .arg(secs)
            .query_async::<()>(&mut conn)
            .await
        {
            tracing::warn!(error = %e, "could not set the expiry of a finished run's stream");
        }
    }
}

/// Puts one event that no run publishes (the INTERRUPTED status a recovery
/// writes for a dead replica's run) on the discussion's stream, so followers
/// elsewhere see that run end. `prev` claims nothing: they check the store.
pub async fn publish_orphan(relay: &Relay, event: Arc<DiscussionEvent>) {
    let run = RunId {
        discussion_id: event.discussion_id.clone(),
        token: String::new(),
        first_seq: event.seq,
    };
    let publisher = Publisher {
        key: relay.keys().events(&run.discussion_id),
        relay: relay.clone(),
        prev: event.seq.saturating_sub(1),
        run,
        held: Vec::new(),
        failing: false,
    };
    let entry = Entry {
        run: String::new(),
        first: event.seq,
        prev: event.seq.saturating_sub(1),
        events: vec![event],
    };
    if let Err(e) = publisher.xadd(&entry).await {
        tracing::warn!(error = %e, "could not announce an interrupted run on Redis");
    }
    publisher.expire(ENDED_TTL_SECS).await;
}
