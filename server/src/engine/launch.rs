//! What every run-starting call shares: taking a discussion (a new one, or
//! an existing one through the store's conditional `begin_run`), then
//! spawning its run and handing the caller a subscription to it.

use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

use super::hub::Hub;
use super::run::{self, Origin};
use super::{ActiveRun, Engine, EngineError, Plan, Subscription, lease};
use crate::auth::Principal;
use crate::domain::{DiscussionKind, DiscussionStatus};
use crate::llm::ChatMessage;
use crate::store::{BeginRun, DiscussionRecord, ProjectRecord, now_ms};

/// A precondition a run-starting call puts on the project.
pub(super) type ProjectCheck<'a> = &'a (dyn Fn(&ProjectRecord) -> Result<(), EngineError> + Sync);

impl Engine {
    /// Refuses once shutdown has begun.
    fn accepting(&self) -> Result<(), EngineError> {
        if self.inner.closing.is_cancelled() {
            Err(EngineError::ShuttingDown)
        } else {
            Ok(())
        }
    }

    /// One of the caller's projects that has models to call.
    pub(super) async fn runnable_project(
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

    /// Creates a discussion of `kind` on `question` (RUNNING, held by the
    /// new run) and runs `plan` in it.
    pub(super) async fn launch_new(
        &self,
        owner: &Principal,
        project: ProjectRecord,
        kind: DiscussionKind,
        question: String,
        plan: Plan,
    ) -> Result<Subscription, EngineError> {
        self.accepting()?;
        self.admit(owner, None, &project, &plan, &question).await?;
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
            outcome: None,
            consensus_round: 0,
        };
        let token = run_token();
        self.inner
            .store
            .create_discussion(
                &discussion,
                lease::lease_until(self.inner.limits.run_lease()),
                &token,
            )
            .await?;
        self.launch(discussion, project, plan, Origin::New, token)
            .await
    }

    /// Takes the run of an existing IDLE or INTERRUPTED discussion and runs
    /// `plan` in it, once `check` accepts its project.
    pub(super) async fn launch_continued(
        &self,
        owner: &Principal,
        discussion_id: &str,
        plan: Plan,
        check: Option<ProjectCheck<'_>>,
    ) -> Result<Subscription, EngineError> {
        self.accepting()?;
        let mut discussion = self.discussion(owner, discussion_id).await?;
        let project = self.runnable_project(owner, &discussion.project_id).await?;
        if let Some(check) = check {
            check(&project)?;
        }
        self.admit(
            owner,
            Some(&discussion.id),
            &project,
            &plan,
            &discussion.question,
        )
        .await?;
        let token = run_token();
        let begun = self
            .inner
            .store
            .begin_run(
                &discussion.id,
                lease::lease_until(self.inner.limits.run_lease()),
                &token,
            )
            .await?;
        match begun {
            BeginRun::Started => {}
            BeginRun::AlreadyRunning => {
                return Err(EngineError::run_in_progress());
            }
            BeginRun::Stopped => {
                return Err(EngineError::FailedPrecondition(
                    "this discussion was stopped; start a new one".into(),
                ));
            }
            BeginRun::Missing => return Err(EngineError::discussion_not_found(discussion_id)),
        }
        discussion.status = DiscussionStatus::Running;
        self.launch(discussion, project, plan, Origin::Continued, token)
            .await
    }

    /// Refuses a run its owner's budgets cannot start: too many runs going,
    /// or too little left for the estimate of its first call.
    async fn admit(
        &self,
        owner: &Principal,
        discussion_id: Option<&str>,
        project: &ProjectRecord,
        plan: &Plan,
        question: &str,
    ) -> Result<(), EngineError> {
        let first = match plan {
            Plan::Mention { model, .. } | Plan::Summary { model: Some(model) } => model.as_str(),
            Plan::Summary { model: None } if !project.summarizer_model.is_empty() => {
                project.summarizer_model.as_str()
            }
            _ => project.models.first().map_or("", String::as_str),
        };
        let prompt = [ChatMessage::user(question)];
        self.inner
            .budget
            .admit(owner.as_str(), discussion_id, first, &prompt)
            .await?;
        Ok(())
    }

    async fn launch(
        &self,
        discussion: DiscussionRecord,
        project: ProjectRecord,
        plan: Plan,
        origin: Origin,
        token: String,
    ) -> Result<Subscription, EngineError> {
        let first_seq = match origin {
            Origin::New => 1,
            // The store's writer keeps queue order, so with `begin_run`
            // committed every event of earlier runs is stored too.
            Origin::Continued => self.inner.store.last_seq(&discussion.id).await? + 1,
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
            reason: OnceLock::new(),
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
            origin,
        ));
        Ok(subscription)
    }
}

/// A fresh token naming one run, kept on the discussion while it runs.
fn run_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
