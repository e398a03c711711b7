//! Following a run that another replica owns: one task per followed
//! discussion, fed by a stream reader, falling back to the store when the
//! stream cannot vouch for every event, and handing events to this
//! replica's hub for the discussion, whose watchers read them from there.

use std::sync::Arc;
use std::time::Duration;

use moai_proto::v1::DiscussionEvent;
use redis::streams::StreamRangeReply;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::follow::{Follow, Source};
use super::{Entry, Relay};
use crate::domain::DiscussionStatus;
use crate::store::Store;

/// How often the store is read while it stands in for the stream.
const POLL: Duration = Duration::from_millis(250);
/// How long the run's first entry is waited for before the store gives the base.
const FIRST_WAIT: Duration = Duration::from_millis(1000);
/// How long waiting entries wait for the store before the gap is taken as deltas only.
const STALL: Duration = Duration::from_millis(1000);
/// With no entry for this long, the store is asked whether the run still
/// holds the discussion (its replica may have died without a word).
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// Where a followed run's events go on this replica.
pub trait Fanout: Send + Sync + 'static {
    /// Delivers one event of the run, in seq order.
    fn deliver(&self, event: Arc<DiscussionEvent>);
    /// The run is over (or this replica stops following it): nothing more comes.
    fn close(&self);
}

/// Where a follower stands, for watchers joining it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// Looking for where to start.
    Pending,
    /// Every event of the run after this seq is (or will be) delivered.
    At(u64),
    /// Ended before it found a base: the store has all there is.
    Ended,
}

/// A running follower.
#[derive(Clone)]
pub struct FollowerHandle {
    base: watch::Receiver<Base>,
    done: CancellationToken,
}

impl FollowerHandle {
    /// Waits until the follower has a base; `None` if it ended first.
    pub async fn base(&self) -> Option<u64> {
        let mut base = self.base.clone();
        let found = base.wait_for(|b| *b != Base::Pending).await;
        match found.as_deref() {
            Ok(Base::At(seq)) => Some(*seq),
            _ => None,
        }
    }

    /// The follower ended.
    pub fn is_done(&self) -> bool {
        self.done.is_cancelled()
    }

    /// Resolves when the follower has ended.
    pub async fn ended(&self) {
        self.done.cancelled().await;
    }
}

/// What a follower follows.
#[derive(Clone, Debug)]
pub struct Followed {
    pub discussion_id: String,
    /// The token of the run holding the discussion when following began.
    pub token: String,
}

/// Starts following `run`, delivering to `fanout` until the run ends or `closing`.
pub fn spawn_follower(
    relay: Relay,
    store: Store,
    run: Followed,
    fanout: Arc<dyn Fanout>,
    closing: CancellationToken,
) -> FollowerHandle {
    let (base_tx, base) = watch::channel(Base::Pending);
    let done = CancellationToken::new();
    let handle = FollowerHandle {
        base,
        done: done.clone(),
    };
    let span = tracing::info_span!("follow_remote_run", discussion = %run.discussion_id);
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            let mut driver = Driver {
                relay,
                store,
                follow: Follow::new(&run.token),
                run,
                fanout,
                base: base_tx,
            };
            driver.run(closing).await;
            driver.fanout.close();
            if *driver.base.borrow() == Base::Pending {
                driver.base.send_replace(Base::Ended);
            }
            done.cancel();
        },
        span,
    ));
    handle
}

struct Driver {
    relay: Relay,
    store: Store,
    run: Followed,
    follow: Follow,
    fanout: Arc<dyn Fanout>,
    base: watch::Sender<Base>,
}

impl Driver {
    async fn run(&mut self, closing: CancellationToken) {
        let key = self.relay.keys().events(&self.run.discussion_id);
        let cursor = self.start_cursor(&key).await;
        let mut tail = self.relay.readers().tail(&key, cursor, &self.relay.conn());
        let started = Instant::now();
        let mut last_entry = Instant::now();
        let mut next_poll = Instant::now();
        let mut stalled_since: Option<Instant> = None;
        loop {
            if self.follow.ended() {
                return;
            }
            if self.follow.base().is_none()
                && (self.follow.needs_base() || started.elapsed() >= FIRST_WAIT)
            {
                match self.store.last_seq(&self.run.discussion_id).await {
                    Ok(last) => {
                        let events = self.follow.base_on_store(last);
                        self.deliver(events);
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read the store to follow a run"),
                }
            }
            if self.follow.base().is_some()
                && self.follow.source() == Source::Store
                && Instant::now() >= next_poll
            {
                next_poll = Instant::now() + POLL;
                let progressed = self.poll_store().await;
                if self.follow.ended() {
                    return;
                }
                if self.follow.waiting() {
                    let since = *stalled_since.get_or_insert_with(Instant::now);
                    if progressed {
                        stalled_since = Some(Instant::now());
                    } else if since.elapsed() >= STALL {
                        let events = self.follow.skip_to_stream();
                        self.deliver(events);
                        stalled_since = None;
                    }
                } else {
                    stalled_since = None;
                }
            }
            let wake = match (self.follow.base(), self.follow.source()) {
                (None, _) => started + FIRST_WAIT,
                (Some(_), Source::Store) => next_poll,
                (Some(_), Source::Stream) => last_entry + IDLE_CHECK,
            };
            tokio::select! {
                () = closing.cancelled() => return,
                batch = tail.entries.recv() => match batch {
                    Some(entries) => {
                        last_entry = Instant::now();
                        let events = self.follow.on_entries(entries);
                        self.deliver(events);
                    }
                    None => return,
                },
                changed = tail.connected.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if !*tail.connected.borrow_and_update() {
                        self.follow.stream_lost();
                    }
                }
                () = tokio::time::sleep_until(wake) => {
                    if self.follow.base().is_some() && self.follow.source() == Source::Stream {
                        last_entry = Instant::now();
                        if !self.still_running().await {
                            // Its replica went away: the store tells the end.
                            self.follow.stream_lost();
                        }
                    }
                }
            }
        }
    }

    /// Where to start reading the stream: at the run's first entry when the
    /// latest entry is the run's, else after the latest entry.
    async fn start_cursor(&mut self, key: &str) -> String {
        let mut conn = self.relay.conn();
        let latest = redis::cmd("XREVRANGE")
            .arg(key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async::<StreamRangeReply>(&mut conn)
            .await;
        match latest {
            Ok(reply) => match reply.ids.first() {
                Some(raw) => match Entry::parse(raw) {
                    Some(entry) if entry.run == self.run.token => {
                        format!("{}-0", entry.first.saturating_sub(1))
                    }
                    _ => raw.id.clone(),
                },
                None => "0-0".into(),
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the run's stream; following it from the store");
                self.follow.stream_lost();
                "0-0".into()
            }
        }
    }

    /// Reads the run's holder, then its events after the last delivered;
    /// returns whether anything new came.
    async fn poll_store(&mut self) -> bool {
        // The holder first: events stored just before the run ended are
        // then still in the read that follows.
        let running = self.still_running().await;
        let before = self.follow.last();
        match self
            .store
            .events_between(&self.run.discussion_id, before, u64::MAX)
            .await
        {
            Ok(rows) => {
                let events = self.follow.on_stored(decode(rows));
                self.deliver(events);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read events while following a run");
                return false;
            }
        }
        if !running {
            self.follow.run_over();
        }
        self.follow.last() > before
    }

    /// Whether the followed run still holds the discussion (true when the
    /// store cannot tell).
    async fn still_running(&self) -> bool {
        match self.store.run_holder(&self.run.discussion_id).await {
            Ok(Some(holder)) => {
                holder.status == DiscussionStatus::Running && holder.token == self.run.token
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the discussion while following it");
                true
            }
        }
    }

    fn deliver(&self, events: Vec<Arc<DiscussionEvent>>) {
        let pending = *self.base.borrow() == Base::Pending;
        if let (Some(base), true) = (self.follow.base(), pending) {
            self.base.send_replace(Base::At(base));
        }
        for event in events {
            self.fanout.deliver(event);
        }
    }
}

/// Stored events; one that does not decode is logged and skipped.
fn decode(rows: Vec<Vec<u8>>) -> Vec<Arc<DiscussionEvent>> {
    rows.iter()
        .filter_map(
            |p| match <DiscussionEvent as prost::Message>::decode(p.as_slice()) {
                Ok(event) => Some(Arc::new(event)),
                Err(e) => {
                    tracing::error!(error = %e, "undecodable stored event");
                    None
                }
            },
        )
        .collect()
}
