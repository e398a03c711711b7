//! Tailing many streams on a few connections. Each reader owns one dedicated
//! connection (never the shared multiplexed one, which a blocking command
//! would hold up) and waits on all of its streams at once with one
//! `XREAD BLOCK`; a stream is given to the reader its key hashes to, so a
//! thousand followed discussions still mean a handful of connections. A
//! reader blocked in `XREAD` is woken with `CLIENT UNBLOCK` when it is given
//! a new stream.

use std::collections::HashMap;
use std::hash::{Hash as _, Hasher as _};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::streams::StreamReadReply;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::Entry;

/// Longest one `XREAD` blocks; a reader also wakes up this often to notice changes.
const BLOCK: Duration = Duration::from_millis(2000);
/// Most entries one `XREAD` returns per stream.
const COUNT: usize = 512;
/// Waits between attempts to reconnect, doubled up to the last.
const BACKOFF: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_millis(1000),
];
/// Entries batches queued for one follower before its reader waits for it.
const FEED: usize = 64;

/// The readers of one relay.
pub struct Readers {
    slots: Vec<Arc<Slot>>,
    closing: CancellationToken,
}

/// A stream given to a reader: what it delivers, until dropped.
pub struct Tail {
    /// Entries in stream order, in batches.
    pub entries: mpsc::Receiver<Vec<Entry>>,
    /// Whether the reader is connected; false while Redis is away.
    pub connected: watch::Receiver<bool>,
    slot: Arc<Slot>,
    id: u64,
}

impl Drop for Tail {
    fn drop(&mut self) {
        self.slot.lock().remove(&self.id);
    }
}

struct Slot {
    tails: Mutex<HashMap<u64, Tailed>>,
    next_id: AtomicU64,
    /// Bumped whenever a stream is added; the reader records the one it read with.
    generation: AtomicU64,
    seen: AtomicU64,
    /// The reader connection's `CLIENT ID` (0 while not connected).
    client_id: AtomicI64,
    wake: Notify,
    connected: watch::Sender<bool>,
}

struct Tailed {
    key: String,
    /// The id of the last entry delivered.
    cursor: String,
    feed: mpsc::Sender<Vec<Entry>>,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Tailed>> {
        self.tails.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Readers {
    pub(super) fn new(client: redis::Client, count: usize) -> Self {
        let closing = CancellationToken::new();
        let slots: Vec<Arc<Slot>> = (0..count)
            .map(|_| {
                Arc::new(Slot {
                    tails: Mutex::new(HashMap::new()),
                    next_id: AtomicU64::new(0),
                    generation: AtomicU64::new(0),
                    seen: AtomicU64::new(0),
                    client_id: AtomicI64::new(0),
                    wake: Notify::new(),
                    connected: watch::channel(false).0,
                })
            })
            .collect();
        for slot in &slots {
            tokio::spawn(read(client.clone(), slot.clone(), closing.clone()));
        }
        Self { slots, closing }
    }

    /// Tails the stream `key` after entry id `cursor` (`0-0`: from its start).
    pub fn tail(&self, key: &str, cursor: String, shared: &ConnectionManager) -> Tail {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        let index = usize::try_from(hasher.finish() % self.slots.len() as u64).unwrap_or(0);
        let slot = self.slots[index].clone();
        let (feed, entries) = mpsc::channel(FEED);
        let id = slot.next_id.fetch_add(1, Ordering::SeqCst);
        slot.lock().insert(
            id,
            Tailed {
                key: key.to_owned(),
                cursor,
                feed,
            },
        );
        let generation = slot.generation.fetch_add(1, Ordering::SeqCst) + 1;
        slot.wake.notify_one();
        tokio::spawn(unblock(slot.clone(), shared.clone(), generation));
        Tail {
            entries,
            connected: slot.connected.subscribe(),
            slot,
            id,
        }
    }

    /// How many dedicated reader connections are open.
    pub fn connections(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.client_id.load(Ordering::SeqCst) != 0)
            .count()
    }

    pub(super) fn close(&self) {
        self.closing.cancel();
    }
}

/// Wakes the slot's reader out of its `XREAD` until it has read with
/// `generation` (the unblock may reach Redis just before the `XREAD`, so it
/// is repeated briefly until the reader shows it saw the new stream).
async fn unblock(slot: Arc<Slot>, mut shared: ConnectionManager, generation: u64) {
    for _ in 0..50 {
        if slot.seen.load(Ordering::SeqCst) >= generation {
            return;
        }
        let id = slot.client_id.load(Ordering::SeqCst);
        if id != 0 {
            let woken = redis::cmd("CLIENT")
                .arg("UNBLOCK")
                .arg(id)
                .query_async::<i64>(&mut shared)
                .await
                .unwrap_or(0);
            if woken == 1 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn connect(
    client: &redis::Client,
) -> Result<(MultiplexedConnection, i64), redis::RedisError> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(super::CONNECT_TIMEOUT))
        // The reply to a blocking read comes when there is something to read.
        .set_response_timeout(Some(BLOCK + Duration::from_secs(2)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let id = redis::cmd("CLIENT")
        .arg("ID")
        .query_async::<i64>(&mut conn)
        .await?;
    Ok((conn, id))
}

/// One reader: waits for streams, reads them all with one blocking call,
/// hands the entries out, and reconnects when Redis goes away.
async fn read(client: redis::Client, slot: Arc<Slot>, closing: CancellationToken) {
    let mut conn: Option<MultiplexedConnection> = None;
    let mut failures = 0usize;
    loop {
        if closing.is_cancelled() {
            return;
        }
        let generation = slot.generation.load(Ordering::SeqCst);
        let wanted: Vec<(u64, String, String)> = slot
            .lock()
            .iter()
            .map(|(id, t)| (*id, t.key.clone(), t.cursor.clone()))
            .collect();
        if wanted.is_empty() {
            slot.seen.store(generation, Ordering::SeqCst);
            tokio::select! {
                () = closing.cancelled() => return,
                () = slot.wake.notified() => continue,
            }
        }
        let mut current = match conn.take() {
            Some(c) => c,
            None => match connect(&client).await {
                Ok((c, id)) => {
                    slot.client_id.store(id, Ordering::SeqCst);
                    slot.connected.send_replace(true);
                    if failures > 0 {
                        tracing::info!("Redis is back: following remote runs live again");
                    }
                    failures = 0;
                    c
                }
                Err(e) => {
                    if failures == 0 {
                        tracing::warn!(error = %e, "cannot reach Redis; watchers of remote runs read the store meanwhile");
                    }
                    slot.connected.send_replace(false);
                    let wait = BACKOFF[failures.min(BACKOFF.len() - 1)];
                    failures += 1;
                    tokio::select! {
                        () = closing.cancelled() => return,
                        () = tokio::time::sleep(wait) => continue,
                    }
                }
            },
        };
        // Several followers of one stream are read once, from the earliest cursor.
        let mut streams: HashMap<&str, &str> = HashMap::new();
        for (_, key, cursor) in &wanted {
            let at = streams.entry(key.as_str()).or_insert(cursor.as_str());
            if compare_ids(cursor, at).is_lt() {
                *at = cursor.as_str();
            }
        }
        let (keys, ids): (Vec<&str>, Vec<&str>) = streams.into_iter().unzip();
        slot.seen.store(generation, Ordering::SeqCst);
        let mut xread = redis::cmd("XREAD");
        xread
            .arg("COUNT")
            .arg(COUNT)
            .arg("BLOCK")
            .arg(u64::try_from(BLOCK.as_millis()).unwrap_or(2000))
            .arg("STREAMS")
            .arg(&keys)
            .arg(&ids);
        let reply = tokio::select! {
            () = closing.cancelled() => return,
            reply = xread.query_async::<Option<StreamReadReply>>(&mut current) => reply,
        };
        match reply {
            Ok(reply) => {
                conn = Some(current);
                if let Some(reply) = reply {
                    deliver(&slot, &wanted, reply).await;
                }
            }
            Err(e) if e.kind() == redis::ErrorKind::UnexpectedReturnType || is_unblocked(&e) => {
                conn = Some(current);
            }
            Err(e) => {
                tracing::warn!(error = %e, "lost the Redis stream reader connection");
                slot.client_id.store(0, Ordering::SeqCst);
                slot.connected.send_replace(false);
                failures = failures.max(1);
            }
        }
    }
}

fn is_unblocked(e: &redis::RedisError) -> bool {
    e.to_string().contains("UNBLOCKED")
}

/// Hands each follower the entries after its own cursor.
async fn deliver(slot: &Slot, wanted: &[(u64, String, String)], reply: StreamReadReply) {
    let by_key: HashMap<String, Vec<redis::streams::StreamId>> =
        reply.keys.into_iter().map(|k| (k.key, k.ids)).collect();
    for (id, key, cursor) in wanted {
        let Some(raw) = by_key.get(key) else { continue };
        let fresh: Vec<&redis::streams::StreamId> = raw
            .iter()
            .filter(|r| compare_ids(&r.id, cursor).is_gt())
            .collect();
        let Some(last) = fresh.last().map(|r| r.id.clone()) else {
            continue;
        };
        let entries: Vec<Entry> = fresh.into_iter().filter_map(Entry::parse).collect();
        let feed = {
            let mut tails = slot.lock();
            let Some(tailed) = tails.get_mut(id) else {
                continue;
            };
            tailed.cursor = last;
            tailed.feed.clone()
        };
        if feed.send(entries).await.is_err() {
            slot.lock().remove(id);
        }
    }
}

/// Orders stream ids (`<ms>-<n>`) numerically.
fn compare_ids(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(id: &str) -> (u64, u64) {
        let (ms, n) = id.split_once('-').unwrap_or((id, "0"));
        (ms.parse().unwrap_or(0), n.parse().unwrap_or(0))
    }
    parts(a).cmp(&parts(b))
}

#[cfg(test)]
mod tests {
    use super::compare_ids;

    #[test]
    fn stream_ids_compare_as_numbers() {
        assert!(compare_ids("10-0", "9-0").is_gt());
        assert!(compare_ids("9-1", "9-0").is_gt());
        assert!(compare_ids("0-0", "0-0").is_eq());
    }
}
