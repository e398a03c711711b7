//! Discussion runs: parallel, sequential, mention and summary rounds, all on
//! one mechanism. A run is spawned on the server and owned by it; callers get
//! a [`Subscription`] to the run's [`hub::Hub`], so leaving cancels nothing.

mod consensus;
mod error;
pub mod export;
mod follow;
pub mod hub;
pub mod prompt;
pub mod review;
mod run;
mod speaker;
mod start;
mod subscription;
mod watch;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use error::EngineError;
pub use hub::{Subscription, SubscriptionError};
pub use run::Plan;

use crate::auth::Principal;
use crate::config::Limits;
use crate::domain::BoundedText;
use crate::llm::LlmClient;
use crate::store::{
    DiscussionRecord, PageCursor, ProjectRecord, RoundRecord, Store, UsageTotals, now_ms,
};
use hub::Hub;

/// Why a run was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum CancelReason {
    Stop = 1,
    Shutdown = 2,
}

/// A run in progress in this process.
pub(crate) struct ActiveRun {
    project_id: String,
    /// Names this run on the discussion row while it holds it.
    token: String,
    hub: Arc<Hub>,
    cancel: CancellationToken,
    reason: AtomicU8,
    done: CancellationToken,
}

impl ActiveRun {
    pub(crate) fn cancel(&self, reason: CancelReason) {
        let _ = self
            .reason
            .compare_exchange(0, reason as u8, Ordering::SeqCst, Ordering::SeqCst);
        self.cancel.cancel();
    }

    fn reason(&self) -> Option<CancelReason> {
        match self.reason.load(Ordering::SeqCst) {
            1 => Some(CancelReason::Stop),
            2 => Some(CancelReason::Shutdown),
            _ => None,
        }
    }
}

pub(crate) struct Inner {
    store: Store,
    llm: LlmClient,
    limits: Limits,
    runs: Mutex<HashMap<String, Arc<ActiveRun>>>,
    tracker: TaskTracker,
    accepting: AtomicBool,
    /// Cancelled when shutdown begins; streams that follow other replicas end then.
    closing: CancellationToken,
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

/// A precondition a run-starting call puts on the project.
type ProjectCheck<'a> = &'a (dyn Fn(&ProjectRecord) -> Result<(), EngineError> + Sync);

/// What a StartDiscussion continues or begins.
#[derive(Clone, Debug)]
pub enum StartTarget {
    New {
        project_id: String,
        topic: BoundedText,
    },
    Existing {
        discussion_id: String,
    },
}

/// The discussion engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// An engine over `store` calling models through `llm`.
    pub fn new(store: Store, llm: LlmClient, limits: Limits) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                llm,
                limits,
                runs: Mutex::new(HashMap::new()),
                tracker: TaskTracker::new(),
                accepting: AtomicBool::new(true),
                closing: CancellationToken::new(),
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
            run.cancel(CancelReason::Stop);
            let _ = tokio::time::timeout(Duration::from_secs(10), run.done.cancelled()).await;
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
        let ids = self.inner.store.recover_interrupted(all).await?;
        for id in &ids {
            // Seqs of deltas that were never stored may have reached clients:
            // jump past any of them so seq keeps strictly increasing.
            let seq = self.inner.store.last_seq(id).await? + run::SEQ_GAP_AFTER_CRASH;
            let event = moai_proto::v1::DiscussionEvent {
                discussion_id: id.clone(),
                seq,
                time: Some(crate::wire::timestamp(now_ms())),
                payload: Some(moai_proto::v1::discussion_event::Payload::StatusChanged(
                    moai_proto::v1::StatusChanged {
                        status: moai_proto::v1::DiscussionStatus::Interrupted as i32,
                    },
                )),
            };
            self.inner
                .store
                .insert_event(id, seq, now_ms(), &prost::Message::encode_to_vec(&event))
                .await?;
            tracing::warn!(discussion = %id, "run interrupted by a server that went away");
        }
        Ok(ids.len())
    }

    /// Refuses new runs, lets running ones finish within `grace`, then
    /// interrupts what is left.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.accepting.store(false, Ordering::SeqCst);
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
            let _ = tokio::time::timeout(Duration::from_secs(5), self.inner.tracker.wait()).await;
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
