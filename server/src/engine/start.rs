//! The calls that start runs: open, in turns, next, mention, summary.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio_util::sync::CancellationToken;

use super::hub::Hub;
use super::{ActiveRun, Engine, EngineError, Plan, ProjectCheck, StartTarget, Subscription, run};
use crate::auth::Principal;
use crate::domain::{BoundedText, DiscussionKind, DiscussionStatus, ModelId};
use crate::store::{BeginRun, DiscussionRecord, ProjectRecord, now_ms};

impl Engine {
    /// Asks every model of the project `question` at once, in a new discussion.
    #[tracing::instrument(skip(self, question), fields(principal = %owner))]
    pub async fn open(
        &self,
        owner: &Principal,
        project_id: &str,
        question: BoundedText,
    ) -> Result<Subscription, EngineError> {
        let project = self.runnable_project(owner, project_id).await?;
        let (discussion, token) = self
            .new_discussion(
                owner,
                &project,
                DiscussionKind::Open,
                question.into_string(),
            )
            .await?;
        self.launch(discussion, project, Plan::Parallel, true, token)
            .await
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
                let (discussion, token) = self
                    .new_discussion(
                        owner,
                        &project,
                        DiscussionKind::Sequential,
                        topic.into_string(),
                    )
                    .await?;
                self.launch(
                    discussion,
                    project,
                    Plan::Sequential { rounds },
                    true,
                    token,
                )
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
    ) -> Result<(DiscussionRecord, String), EngineError> {
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
        let token = run_token();
        self.inner
            .store
            .create_discussion(&discussion, self.lease_until(), &token)
            .await?;
        Ok((discussion, token))
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
        let token = run_token();
        let begun = self
            .inner
            .store
            .begin_run(&discussion.id, self.lease_until(), &token)
            .await?;
        match begun {
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
        self.launch(discussion, project, plan, false, token).await
    }

    pub(super) fn lease_until(&self) -> i64 {
        let lease = i64::try_from(self.inner.limits.run_lease().as_millis()).unwrap_or(i64::MAX);
        now_ms().saturating_add(lease)
    }

    async fn launch(
        &self,
        discussion: DiscussionRecord,
        project: ProjectRecord,
        plan: Plan,
        is_new: bool,
        token: String,
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
            project_id: project.id.clone(),
            token,
            hub: hub.clone(),
            cancel: CancellationToken::new(),
            reason: AtomicU8::new(0),
            done: CancellationToken::new(),
        });
        self.lock_runs().insert(discussion.id.clone(), run.clone());
        self.relay_run(&hub, &discussion.id, &run.token, first_seq);
        let live = hub.subscribe(first_seq - 1);
        let subscription = Subscription::new(Vec::new(), Some((live, first_seq)), first_seq - 1);
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

/// A fresh token naming one run, kept on the discussion while it runs.
fn run_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
