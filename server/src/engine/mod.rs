//! Discussion runs: parallel, sequential, mention and summary rounds, all on
//! one mechanism. A run is spawned on the server and owned by it; callers get
//! a [`Subscription`] to the run's hub, so leaving cancels nothing.
//!
//! One file per call the API makes (`open_discussion`, `start_discussion`,
//! `next_round`, `mention`, `summarize_discussion`, `stop`, `watch`), and one
//! per piece of the mechanism: `launch` (taking a discussion and spawning its
//! run), `run` (a run's rounds and final status), `speaker` (one model
//! answering), `lease` (keeping a run's claim in the store fresh), `hub` (a
//! run's event producer), `log` and `subscription` (what subscribers read),
//! `remote_watch` (following a run another replica owns, from the store),
//! `replicas` (runs across replicas: publishing to Redis, following another
//! replica's run through it, stops sent to the owner).

mod consensus;
mod error;
pub mod export;
mod hub;
mod launch;
mod lease;
mod log;
mod mention;
mod next_round;
mod open_discussion;
pub mod prompt;
mod remote_watch;
mod replicas;
pub mod review;
mod review_discussion;
mod run;
mod speaker;
mod start_discussion;
mod stop;
mod subscription;
mod summarize_discussion;
mod watch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use error::EngineError;
pub use replicas::ScaleOut;
pub use run::Plan;
pub use start_discussion::StartTarget;
pub use subscription::{Subscription, SubscriptionError};

use crate::auth::Principal;
use crate::budget::Budget;
use crate::config::Limits;
use crate::llm::LlmClient;
use crate::store::{
    DiscussionRecord, PageCursor, ProjectRecord, RoundRecord, Store, StoredEvent, UsageTotals,
};
use hub::Hub;

/// Why a run was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CancelReason {
    Stop,
    Shutdown,
}

/// A run in progress in this process.
pub(crate) struct ActiveRun {
    project_id: String,
    /// Names this run on the discussion row while it holds it.
    token: String,
    hub: Arc<Hub>,
    cancel: CancellationToken,
    /// The first reason given wins.
    reason: OnceLock<CancelReason>,
    done: CancellationToken,
}

impl ActiveRun {
    pub(crate) fn cancel(&self, reason: CancelReason) {
        let _ = self.reason.set(reason);
        self.cancel.cancel();
    }

    fn reason(&self) -> Option<CancelReason> {
        self.reason.get().copied()
    }

    /// Cancels the run and waits (at most `wait`) until it has closed;
    /// `false` if it had not by then.
    async fn cancel_and_wait(&self, reason: CancelReason, wait: std::time::Duration) -> bool {
        self.cancel(reason);
        tokio::time::timeout(wait, self.done.cancelled())
            .await
            .is_ok()
    }
}

pub(crate) struct Inner {
    store: Store,
    llm: LlmClient,
    budget: Budget,
    limits: Limits,
    runs: Mutex<HashMap<String, Arc<ActiveRun>>>,
    /// Every run of this process, so shutdown can wait for them.
    tracker: TaskTracker,
    /// Cancelled when shutdown begins: from then on no run starts, and
    /// streams that follow other replicas end.
    closing: CancellationToken,
    /// Redis and the stop channel, for runs across replicas.
    scale: ScaleOut,
    /// Runs of other replicas followed here for local watchers.
    remotes: replicas::Remotes,
    /// Shuffles reviewers' anonymous labels; seeded from `Limits::review_seed`
    /// when set, so a test sees the same labels every time.
    review_rng: Mutex<rand::rngs::StdRng>,
}

/// How far seq jumps after a crash, past deltas that were never stored.
const SEQ_GAP_AFTER_CRASH: u64 = 10_000_000;

/// The event that says a recovered discussion is INTERRUPTED. Seqs of
/// deltas that were never stored may have reached clients: it jumps past
/// any of them so seq keeps strictly increasing.
fn interrupted_event(discussion_id: &str, last_seq: u64, time: i64) -> StoredEvent {
    let seq = last_seq + SEQ_GAP_AFTER_CRASH;
    let event = moai_proto::v1::DiscussionEvent {
        discussion_id: discussion_id.to_owned(),
        seq,
        time: Some(crate::wire::timestamp(time)),
        payload: Some(moai_proto::v1::discussion_event::Payload::StatusChanged(
            moai_proto::v1::StatusChanged {
                status: moai_proto::v1::DiscussionStatus::Interrupted as i32,
            },
        )),
    };
    StoredEvent {
        discussion_id: discussion_id.to_owned(),
        seq,
        time,
        payload: prost::Message::encode_to_vec(&event),
    }
}

/// A discussion with everything `GetDiscussion` shows.
#[derive(Clone, Debug)]
pub struct DiscussionView {
    pub discussion: DiscussionRecord,
    pub rounds: Vec<RoundRecord>,
    pub usage: UsageTotals,
    pub last_seq: u64,
}

/// A stream of a discussion's events, from wherever they come.
pub type EventSource = futures::stream::BoxStream<
    'static,
    Result<Arc<moai_proto::v1::DiscussionEvent>, SubscriptionError>,
>;

/// The discussion engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// An engine over `store` calling models through `llm`.
    pub fn new(store: Store, llm: LlmClient, limits: Limits, budget: Budget) -> Self {
        Self::with_scale_out(store, llm, limits, ScaleOut::default(), budget)
    }

    /// An engine that works with other replicas through `scale`.
    pub fn with_scale_out(
        store: Store,
        llm: LlmClient,
        limits: Limits,
        scale: ScaleOut,
        budget: Budget,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                llm,
                budget,
                runs: Mutex::new(HashMap::new()),
                tracker: TaskTracker::new(),
                closing: CancellationToken::new(),
                scale,
                remotes: Mutex::new(HashMap::new()),
                review_rng: Mutex::new(match limits.review_seed {
                    Some(seed) => rand::SeedableRng::seed_from_u64(seed),
                    None => rand::SeedableRng::from_os_rng(),
                }),
                limits,
            }),
        }
    }

    /// The store the engine writes to.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The model client.
    pub fn llm(&self) -> &LlmClient {
        &self.inner.llm
    }

    /// Spend control.
    pub fn budget(&self) -> &Budget {
        &self.inner.budget
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// A discussion with its rounds, usage and last seq.
    pub async fn get(
        &self,
        owner: &Principal,
        discussion_id: &str,
    ) -> Result<DiscussionView, EngineError> {
        // The run is looked up first: a run that ends between the two reads
        // has committed its status by then, so what is shown stays consistent.
        let active = self.active(discussion_id);
        let discussion = self.discussion(owner, discussion_id).await?;
        let store = &self.inner.store;
        let rounds = store.load_rounds(&discussion.id).await?;
        let usage = store.usage_totals(&discussion.id).await?;
        let last_seq = match active {
            // Events of a run in progress may still be on their way to the store.
            Some(run) => run.hub.last_seq().await,
            None => store.last_seq(&discussion.id).await?,
        };
        Ok(DiscussionView {
            discussion,
            rounds,
            usage,
            last_seq,
        })
    }

    /// The caller's discussions, newest first.
    pub async fn list(
        &self,
        owner: &Principal,
        project_id: Option<&str>,
        limit: usize,
        cursor: Option<&PageCursor>,
    ) -> Result<Vec<DiscussionRecord>, EngineError> {
        if let Some(project_id) = project_id {
            self.project(owner, project_id).await?;
        }
        Ok(self
            .inner
            .store
            .list_discussions(owner.as_str(), project_id, limit, cursor)
            .await?)
    }

    /// The project a discussion belongs to.
    pub async fn project(
        &self,
        owner: &Principal,
        project_id: &str,
    ) -> Result<ProjectRecord, EngineError> {
        self.inner
            .store
            .get_project(owner.as_str(), project_id)
            .await?
            .ok_or_else(|| EngineError::project_not_found(project_id))
    }

    /// Deletes a project with its discussions, first stopping any of them
    /// that is running here (so no run writes into deleted rows).
    pub async fn delete_project(
        &self,
        owner: &Principal,
        project_id: &str,
    ) -> Result<(), EngineError> {
        let project = self.project(owner, project_id).await?;
        let running: Vec<Arc<ActiveRun>> = self
            .lock_runs()
            .values()
            .filter(|r| r.project_id == project.id)
            .cloned()
            .collect();
        for run in running {
            if !run
                .cancel_and_wait(CancelReason::Stop, self.inner.limits.stop_wait())
                .await
            {
                tracing::warn!(project = %project.id, "a run did not close in time before its project was deleted");
            }
        }
        if self
            .inner
            .store
            .delete_project(owner.as_str(), &project.id)
            .await?
        {
            Ok(())
        } else {
            Err(EngineError::project_not_found(project_id))
        }
    }

    /// Marks runs left RUNNING by a server that went away as INTERRUPTED.
    /// `all` is for an embedded database that no other server shares.
    pub async fn recover(&self, all: bool) -> Result<usize, EngineError> {
        let ids = self
            .inner
            .store
            .recover_interrupted(all, interrupted_event)
            .await?;
        for id in &ids {
            tracing::warn!(discussion = %id, "run interrupted by a server that went away");
            self.relay_interrupted(id).await;
        }
        Ok(ids.len())
    }

    /// Refuses new runs, lets running ones finish within `grace`, then
    /// interrupts what is left.
    pub async fn shutdown(&self, grace: std::time::Duration) {
        self.inner.closing.cancel();
        self.inner.tracker.close();
        if tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_err()
        {
            let runs: Vec<Arc<ActiveRun>> = self.lock_runs().values().cloned().collect();
            tracing::warn!(
                runs = runs.len(),
                "interrupting runs still going at shutdown"
            );
            for run in runs {
                run.cancel(CancelReason::Shutdown);
            }
            let _ = tokio::time::timeout(self.inner.limits.stop_wait(), self.inner.tracker.wait())
                .await;
        }
    }

    fn lock_runs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ActiveRun>>> {
        self.inner.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn active(&self, discussion_id: &str) -> Option<Arc<ActiveRun>> {
        self.lock_runs().get(discussion_id).cloned()
    }

    async fn discussion(
        &self,
        owner: &Principal,
        id: &str,
    ) -> Result<DiscussionRecord, EngineError> {
        self.inner
            .store
            .get_discussion(owner.as_str(), id)
            .await?
            .ok_or_else(|| EngineError::discussion_not_found(id))
    }
}
