//! Discussion runs: parallel, sequential, mention and summary rounds, all on
//! one mechanism. A run is spawned on the server and owned by it; callers get
//! a [`Subscription`] to the run's [`hub::Hub`], so leaving cancels nothing.

mod error;
pub mod export;
pub mod hub;
pub mod prompt;
mod run;
mod speaker;

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
use crate::domain::{BoundedText, DiscussionKind, DiscussionStatus, ModelId};
use crate::llm::LlmClient;
use crate::store::{
    BeginRun, DiscussionRecord, PageCursor, ProjectRecord, RoundRecord, Store, UsageTotals, now_ms,
};
use hub::Hub;

/// Why a run was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum CancelReason {
    Stop = 1,
    Shutdown = 2,
}

/// A run in progress in this process.
pub(crate) struct ActiveRun {
    hub: Arc<Hub>,
    cancel: CancellationToken,
    reason: AtomicU8,
    done: CancellationToken,
}

impl ActiveRun {
    fn cancel(&self, reason: CancelReason) {
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
}

/// A discussion with everything `GetDiscussion` shows.
#[derive(Clone, Debug)]
pub struct DiscussionView {
    pub discussion: DiscussionRecord,
    pub rounds: Vec<RoundRecord>,
    pub usage: UsageTotals,
    pub last_seq: u64,
}

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

    /// Asks every model of the project `question` at once, in a new discussion.
    #[tracing::instrument(skip(self, question), fields(principal = %owner))]
    pub async fn open(
        &self,
        owner: &Principal,
        project_id: &str,
        question: BoundedText,
    ) -> Result<Subscription, EngineError> {
        let project = self.runnable_project(owner, project_id).await?;
        let discussion = self
            .new_discussion(
                owner,
                &project,
                DiscussionKind::Open,
                question.into_string(),
            )
            .await?;
        self.launch(discussion, project, Plan::Parallel, true).await
    }

    /// Discussion in turns: a new one on `topic`, or more rounds of an existing one.
    #[tracing::instrument(skip(self, target), fields(principal = %owner))]
    pub async fn start(
        &self,
        owner: &Principal,
        target: StartTarget,
        rounds: u32,
    ) -> Result<Subscription, EngineError> {
        let rounds = self.rounds(rounds)?;
        match target {
            StartTarget::New { project_id, topic } => {
                let project = self.runnable_project(owner, &project_id).await?;
                let discussion = self
                    .new_discussion(
                        owner,
                        &project,
                        DiscussionKind::Sequential,
                        topic.into_string(),
                    )
                    .await?;
                self.launch(discussion, project, Plan::Sequential { rounds }, true)
                    .await
            }
            StartTarget::Existing { discussion_id } => {
                self.continue_with(owner, &discussion_id, Plan::Sequential { rounds }, None)
                    .await
            }
        }
    }

    /// One more sequential round.
    #[tracing::instrument(skip(self), fields(principal = %owner))]
    pub async fn next_round(
        &self,
        owner: &Principal,
        discussion_id: &str,
    ) -> Result<Subscription, EngineError> {
        self.continue_with(owner, discussion_id, Plan::Sequential { rounds: 1 }, None)
            .await
    }

    /// The user speaks to one of the project's models.
    #[tracing::instrument(skip(self, content), fields(principal = %owner, model = %model))]
    pub async fn mention(
        &self,
        owner: &Principal,
        discussion_id: &str,
        model: ModelId,
        content: BoundedText,
    ) -> Result<Subscription, EngineError> {
        let check = |project: &ProjectRecord| {
            if project.models.iter().any(|m| m == model.as_str()) {
                Ok(())
            } else {
                Err(EngineError::InvalidArgument(format!(
                    "{model} is not one of this project's models ({})",
                    project.models.join(", ")
                )))
            }
        };
        let plan = Plan::Mention {
            model: model.as_str().to_owned(),
            content: content.into_string(),
        };
        self.continue_with(owner, discussion_id, plan, Some(&check))
            .await
    }

    /// A consensus summary by `model`, the project's summarizer, or its first model.
    #[tracing::instrument(skip(self), fields(principal = %owner))]
    pub async fn summarize(
        &self,
        owner: &Principal,
        discussion_id: &str,
        model: Option<ModelId>,
    ) -> Result<Subscription, EngineError> {
        let plan = Plan::Summary {
            model: model.map(|m| m.as_str().to_owned()),
        };
        self.continue_with(owner, discussion_id, plan, None).await
    }

    /// Cancels the running round and marks the discussion STOPPED.
    #[tracing::instrument(skip(self), fields(principal = %owner))]
    pub async fn stop(
        &self,
        owner: &Principal,
        discussion_id: &str,
    ) -> Result<DiscussionView, EngineError> {
        let discussion = self.discussion(owner, discussion_id).await?;
        let active = self.active(&discussion.id);
        match active {
            Some(run) => {
                run.cancel(CancelReason::Stop);
                if tokio::time::timeout(Duration::from_secs(10), run.done.cancelled())
                    .await
                    .is_err()
                {
                    tracing::warn!(discussion = %discussion.id, "run did not end within 10s of stop");
                }
            }
            None => self.inner.store.mark_stopped(&discussion.id).await?,
        }
        self.get(owner, discussion_id).await
    }

    /// Events after `after_seq`: stored ones, then the current run's live.
    #[tracing::instrument(skip(self), fields(principal = %owner))]
    pub async fn watch(
        &self,
        owner: &Principal,
        discussion_id: &str,
        after_seq: u64,
    ) -> Result<Subscription, EngineError> {
        let discussion = self.discussion(owner, discussion_id).await?;
        let (live, before) = match self.active(&discussion.id) {
            Some(run) => {
                let (backlog, rx) = run.hub.subscribe(after_seq);
                (
                    Some((backlog, rx, run.hub.first_seq())),
                    run.hub.first_seq(),
                )
            }
            None => (None, u64::MAX),
        };
        let mut events = Vec::new();
        for payload in self
            .inner
            .store
            .events_between(&discussion.id, after_seq, before)
            .await?
        {
            match <moai_proto::v1::DiscussionEvent as prost::Message>::decode(payload.as_slice()) {
                Ok(event) => events.push(Arc::new(event)),
                Err(e) => {
                    tracing::error!(discussion = %discussion.id, error = %e, "undecodable stored event")
                }
            }
        }
        Ok(match live {
            Some((backlog, rx, first)) => {
                events.extend(backlog);
                Subscription::new(events, Some((rx, first)), after_seq)
            }
            None => Subscription::new(events, None, after_seq),
        })
    }

    /// A discussion with its rounds, usage and last seq.
    pub async fn get(
        &self,
        owner: &Principal,
        discussion_id: &str,
    ) -> Result<DiscussionView, EngineError> {
        let discussion = self.discussion(owner, discussion_id).await?;
        let store = &self.inner.store;
        let rounds = store.load_rounds(&discussion.id).await?;
        let usage = store.usage_totals(&discussion.id).await?;
        let last_seq = match self.active(&discussion.id) {
            // A run that already set its final status is about to finish its
            // last events: wait for them so last_seq is the final one.
            Some(run) if discussion.status != DiscussionStatus::Running => {
                let _ = tokio::time::timeout(Duration::from_secs(5), run.done.cancelled()).await;
                store.last_seq(&discussion.id).await?
            }
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

    fn rounds(&self, rounds: u32) -> Result<u32, EngineError> {
        let max = self.inner.limits.max_rounds;
        match rounds {
            0 => Ok(self.inner.limits.default_rounds.clamp(1, max)),
            n if n <= max => Ok(n),
            n => Err(EngineError::InvalidArgument(format!(
                "rounds must be between 1 and {max}, got {n}"
            ))),
        }
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

    async fn runnable_project(
        &self,
        owner: &Principal,
        project_id: &str,
    ) -> Result<ProjectRecord, EngineError> {
        let project = self.project(owner, project_id).await?;
        if project.models.is_empty() {
            return Err(EngineError::FailedPrecondition(format!(
                "project {:?} has no models: add some first",
                project.name
            )));
        }
        Ok(project)
    }

    async fn new_discussion(
        &self,
        owner: &Principal,
        project: &ProjectRecord,
        kind: DiscussionKind,
        question: String,
    ) -> Result<DiscussionRecord, EngineError> {
        if !self.inner.accepting.load(Ordering::SeqCst) {
            return Err(EngineError::ShuttingDown);
        }
        let now = now_ms();
        let discussion = DiscussionRecord {
            id: uuid::Uuid::now_v7().to_string(),
            project_id: project.id.clone(),
            owner: owner.as_str().to_owned(),
            kind,
            question,
            status: DiscussionStatus::Running,
            create_time: now,
            update_time: now,
        };
        self.inner
            .store
            .create_discussion(&discussion, self.lease_until())
            .await?;
        Ok(discussion)
    }

    async fn continue_with(
        &self,
        owner: &Principal,
        discussion_id: &str,
        plan: Plan,
        check: Option<ProjectCheck<'_>>,
    ) -> Result<Subscription, EngineError> {
        if !self.inner.accepting.load(Ordering::SeqCst) {
            return Err(EngineError::ShuttingDown);
        }
        let mut discussion = self.discussion(owner, discussion_id).await?;
        let project = self.runnable_project(owner, &discussion.project_id).await?;
        if let Some(check) = check {
            check(&project)?;
        }
        match self
            .inner
            .store
            .begin_run(&discussion.id, self.lease_until())
            .await?
        {
            BeginRun::Started => {}
            BeginRun::AlreadyRunning => {
                return Err(EngineError::FailedPrecondition(
                    "a run is already in progress in this discussion: wait for it, watch it, or stop it".into(),
                ));
            }
            BeginRun::Stopped => {
                return Err(EngineError::FailedPrecondition(
                    "this discussion was stopped; start a new one".into(),
                ));
            }
            BeginRun::Missing => return Err(EngineError::discussion_not_found(discussion_id)),
        }
        discussion.status = DiscussionStatus::Running;
        self.launch(discussion, project, plan, false).await
    }

    fn lease_until(&self) -> i64 {
        let lease = i64::try_from(self.inner.limits.run_lease().as_millis()).unwrap_or(i64::MAX);
        now_ms().saturating_add(lease)
    }

    async fn launch(
        &self,
        discussion: DiscussionRecord,
        project: ProjectRecord,
        plan: Plan,
        is_new: bool,
    ) -> Result<Subscription, EngineError> {
        let first_seq = if is_new {
            1
        } else {
            // The previous run's last events may still be queued for the store.
            self.inner.store.flush_events().await;
            self.inner.store.last_seq(&discussion.id).await? + 1
        };
        let hub = Arc::new(Hub::new(
            discussion.id.clone(),
            self.inner.store.clone(),
            first_seq,
            self.inner.limits.subscriber_buffer,
        ));
        let run = Arc::new(ActiveRun {
            hub: hub.clone(),
            cancel: CancellationToken::new(),
            reason: AtomicU8::new(0),
            done: CancellationToken::new(),
        });
        self.lock_runs().insert(discussion.id.clone(), run.clone());
        let (_, rx) = hub.subscribe(first_seq - 1);
        let subscription = Subscription::new(Vec::new(), Some((rx, first_seq)), first_seq - 1);
        self.inner.tracker.spawn(run::execute(
            self.inner.clone(),
            run,
            discussion,
            project,
            plan,
            is_new,
        ));
        Ok(subscription)
    }
}
