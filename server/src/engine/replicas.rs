//! Runs across replicas: publishing this replica's runs to the relay,
//! following other replicas' runs for watchers here (one follower and one
//! hub per followed discussion, whatever the number of watchers), and stops
//! that travel to the replica owning the run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::StreamExt as _;
use moai_proto::v1::DiscussionEvent;

use super::hub::Hub;
use super::subscription::{decode_stored, is_terminal};
use super::{CancelReason, Engine, EngineError, EventSource, Inner, Subscription};
use crate::domain::DiscussionStatus;
use crate::relay::Relay;
use crate::relay::follower::{Fanout, Followed, FollowerHandle, spawn_follower};
use crate::relay::publisher::{RunId, publish_orphan, publish_run};
use crate::relay::stop::{StopChannel, StopTarget};
use crate::store::RunHolder;

/// How a stop sent elsewhere waits for the owner to end the run, at most.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// How often the store is looked at while waiting for that.
const STOP_POLL: Duration = Duration::from_millis(50);

/// What the engine needs to work with other replicas.
#[derive(Clone)]
pub struct ScaleOut {
    /// Redis for live events (and stops), when configured.
    pub relay: Option<Relay>,
    /// How stops reach other replicas.
    pub stops: StopChannel,
}

impl Default for ScaleOut {
    fn default() -> Self {
        Self {
            relay: None,
            stops: StopChannel::Local,
        }
    }
}

/// A run of another replica followed here.
pub(crate) struct Remote {
    hub: Arc<Hub>,
    follower: FollowerHandle,
    token: String,
}

/// The followed runs, by discussion.
pub(crate) type Remotes = Mutex<HashMap<String, Arc<Remote>>>;

/// Delivers a follower's events to its hub; its close lets the hub go.
struct HubFanout {
    hub: Arc<Hub>,
    inner: Weak<Inner>,
    discussion_id: String,
    token: String,
}

impl Fanout for HubFanout {
    fn deliver(&self, event: Arc<DiscussionEvent>) {
        self.hub.deliver_relayed(event);
    }

    fn close(&self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let mut remotes = lock(&inner.remotes);
        if remotes
            .get(&self.discussion_id)
            .is_some_and(|r| r.token == self.token)
        {
            remotes.remove(&self.discussion_id);
        }
    }
}

fn lock(remotes: &Remotes) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Remote>>> {
    remotes.lock().unwrap_or_else(|p| p.into_inner())
}

/// A run's events for its publisher, from its first on; a publisher that
/// fell behind the hub takes up again from where it was (deltas of messages
/// finished meanwhile are gone; those messages' completed events carry them).
fn run_events(
    hub: Arc<Hub>,
    first_seq: u64,
) -> futures::stream::BoxStream<'static, Arc<DiscussionEvent>> {
    let start = first_seq.saturating_sub(1);
    let subscribe = move |hub: &Arc<Hub>, after: u64| {
        Subscription::new(Vec::new(), Some((hub.subscribe(after), first_seq)), after)
    };
    let first = subscribe(&hub, start);
    Box::pin(futures::stream::unfold(
        (hub, first, start),
        move |(hub, mut sub, last)| async move {
            let mut last = last;
            loop {
                match sub.next().await {
                    Some(Ok(event)) => {
                        last = event.seq;
                        return Some((event, (hub, sub, last)));
                    }
                    Some(Err(_lagged)) => {
                        tracing::warn!(
                            "the relay publisher fell behind the run; some deltas are not relayed"
                        );
                        sub = subscribe(&hub, last);
                    }
                    None => return None,
                }
            }
        },
    ))
}

impl Engine {
    /// Publishes a run of this replica to the relay, if there is one.
    pub(super) fn relay_run(
        &self,
        hub: &Arc<Hub>,
        discussion_id: &str,
        token: &str,
        first_seq: u64,
    ) {
        let Some(relay) = self.inner.scale.relay.clone() else {
            return;
        };
        let run = RunId {
            discussion_id: discussion_id.to_owned(),
            token: token.to_owned(),
            first_seq,
        };
        // Not on the run tracker: shutdown waits for runs, not for Redis.
        tokio::spawn(publish_run(relay, run, run_events(hub.clone(), first_seq)));
    }

    /// Tells followers elsewhere that a dead replica's run of
    /// `discussion_id` is over (its INTERRUPTED event is stored by now).
    pub(super) async fn relay_interrupted(&self, discussion_id: &str) {
        let Some(relay) = &self.inner.scale.relay else {
            return;
        };
        let store = &self.inner.store;
        let last = match store.last_seq(discussion_id).await {
            Ok(last) => last,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the interrupted run's last event");
                return;
            }
        };
        match store
            .events_between(discussion_id, last.saturating_sub(1), u64::MAX)
            .await
        {
            Ok(rows) => {
                for event in decode_stored(rows) {
                    publish_orphan(relay, event).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the interrupted run's last event"),
        }
    }

    /// Events after `after_seq` of a run another replica owns: the stored
    /// ones up to the follower's base, then the follower's. `None` when there
    /// is no relay (or the run is over): the caller reads the store.
    pub(super) async fn watch_remote(
        &self,
        discussion_id: &str,
        after_seq: u64,
    ) -> Result<Option<EventSource>, EngineError> {
        let holder = self.inner.store.run_holder(discussion_id).await?;
        let Some(RunHolder {
            status: DiscussionStatus::Running,
            token,
        }) = holder
        else {
            return Ok(None);
        };
        let Some(relay) = self.inner.scale.relay.clone() else {
            return Ok(None);
        };
        let remote = self.remote(relay, discussion_id, &token);
        let Some(base) = remote.follower.base().await else {
            return Ok(None);
        };
        let events = self
            .stored_events(discussion_id, after_seq, base.saturating_add(1))
            .await?;
        let live = remote.hub.subscribe(after_seq.max(base));
        Ok(Some(Box::pin(Subscription::new(
            events,
            Some((live, base.saturating_add(1))),
            after_seq,
        ))))
    }

    /// The follower of `discussion_id`'s run `token`, started if need be.
    fn remote(&self, relay: Relay, discussion_id: &str, token: &str) -> Arc<Remote> {
        let mut remotes = lock(&self.inner.remotes);
        if let Some(r) = remotes
            .get(discussion_id)
            .filter(|r| r.token == token && !r.follower.is_done())
        {
            return r.clone();
        }
        let hub = Arc::new(Hub::new(
            discussion_id.to_owned(),
            self.inner.store.clone(),
            1,
            self.inner.limits.subscriber_buffer,
        ));
        let fanout = Arc::new(HubFanout {
            hub: hub.clone(),
            inner: Arc::downgrade(&self.inner),
            discussion_id: discussion_id.to_owned(),
            token: token.to_owned(),
        });
        let follower = spawn_follower(
            relay,
            self.inner.store.clone(),
            Followed {
                discussion_id: discussion_id.to_owned(),
                token: token.to_owned(),
            },
            fanout,
            self.inner.closing.clone(),
        );
        let remote = Arc::new(Remote {
            hub,
            follower,
            token: token.to_owned(),
        });
        remotes.insert(discussion_id.to_owned(), remote.clone());
        remote
    }

    /// Sends a stop to whichever replica runs `discussion_id` (already
    /// marked STOPPED in the store), and waits a little for it to end the
    /// run, so the answer shows the run's final state.
    pub(super) async fn stop_remote(&self, discussion_id: &str, last_seq: u64) {
        if let Err(e) = self.inner.scale.stops.send(discussion_id).await {
            tracing::warn!(error = %e, "could not send the stop; the owner's lease heartbeat will find it");
        }
        let deadline = tokio::time::Instant::now() + STOP_WAIT;
        while tokio::time::Instant::now() < deadline {
            match self.stored_events(discussion_id, last_seq, u64::MAX).await {
                Ok(events) if events.iter().any(|e| is_terminal(e)) => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the store while a stop is under way");
                    return;
                }
            }
            tokio::time::sleep(STOP_POLL).await;
        }
    }

    /// This replica's runs, for the stop listener.
    pub fn stop_target(&self) -> Arc<dyn StopTarget> {
        Arc::new(EngineRuns(Arc::downgrade(&self.inner)))
    }

    /// How stops reach other replicas.
    pub fn stops(&self) -> &StopChannel {
        &self.inner.scale.stops
    }

    /// The relay to Redis, when configured.
    pub fn relay(&self) -> Option<&Relay> {
        self.inner.scale.relay.as_ref()
    }
}

struct EngineRuns(Weak<Inner>);

impl StopTarget for EngineRuns {
    fn running(&self) -> Vec<String> {
        self.0.upgrade().map_or_else(Vec::new, |inner| {
            inner
                .runs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .keys()
                .cloned()
                .collect()
        })
    }

    fn stop(&self, discussion_id: &str) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        let run = inner
            .runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(discussion_id)
            .cloned();
        if let Some(run) = run {
            tracing::info!(discussion = %discussion_id, "stopped from another replica");
            run.cancel(CancelReason::Stop);
        }
    }
}
