//! One run from start to end: its rounds, its lease, and its final status.

use std::sync::Arc;

use moai_proto::v1::{self, discussion_event::Payload};
use tracing::Instrument as _;

use super::lease::{self, LeaseEnd};
use super::prompt::{self, Transcript};
use super::speaker::{Speaker, Turn};
use super::{ActiveRun, CancelReason, Inner};
use crate::domain::{DiscussionStatus, MessageRole, MessageStatus, RoundMode};
use crate::store::{
    DiscussionRecord, MessageRecord, ProjectRecord, RoundRecord, StoreError, UsageTotals,
};
use crate::wire;

/// What a run does.
#[derive(Clone, Debug)]
pub enum Plan {
    /// One round where every model answers the question at once.
    Parallel,
    /// `rounds` rounds in turns.
    Sequential { rounds: u32 },
    /// The user (named `author_name`, possibly empty) speaks to one model.
    Mention {
        model: String,
        content: String,
        author_name: String,
    },
    /// A consensus summary by `model` (or the project's default).
    Summary { model: Option<String> },
}

impl Plan {
    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Plan::Parallel => "open",
            Plan::Sequential { .. } => "sequential",
            Plan::Mention { .. } => "mention",
            Plan::Summary { .. } => "summary",
        }
    }
}

/// Whether a run created its discussion or continues one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    New,
    Continued,
}

struct RunContext {
    inner: Arc<Inner>,
    run: Arc<ActiveRun>,
    discussion: DiscussionRecord,
    project: ProjectRecord,
    /// Number of the latest round, stored or begun by this run.
    last_round: std::sync::atomic::AtomicU32,
}

impl RunContext {
    fn cancelled(&self) -> bool {
        self.run.cancel.is_cancelled()
    }

    async fn publish(&self, payload: Payload) -> u64 {
        self.run.hub.publish(payload).await
    }

    /// The speaker of round `round`: what a model's turn needs, and no more.
    fn speaker(&self, round: u32) -> Speaker<'_> {
        Speaker {
            hub: &self.run.hub,
            store: &self.inner.store,
            llm: &self.inner.llm,
            cancel: &self.run.cancel,
            flush_every: self.inner.limits.flush_interval(),
            discussion_id: &self.discussion.id,
            round,
            budget: &self.inner.budget,
            owner: &self.discussion.owner,
        }
    }

    /// The fallbacks of seat `model`, in order.
    fn fallbacks(&self, model: &str) -> Vec<String> {
        self.project
            .fallbacks
            .get(model)
            .cloned()
            .unwrap_or_default()
    }

    fn budget(&self, model: &str) -> usize {
        self.inner.llm.settings().context_budget(model)
    }

    /// Starts round `mode` in the store, the event stream and `transcript`.
    async fn begin_round(
        &self,
        mode: RoundMode,
        models: Vec<String>,
        transcript: &mut Transcript,
    ) -> u32 {
        let number = self
            .last_round
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        self.inner
            .store
            .create_round(&self.discussion.id, number, mode)
            .await;
        self.publish(Payload::RoundStarted(v1::RoundStarted {
            number,
            mode: wire::round_mode(mode) as i32,
            models,
        }))
        .await;
        transcript.begin_round(number, mode);
        number
    }

    async fn end_round(&self, number: u32) {
        self.publish(Payload::RoundCompleted(v1::RoundCompleted { number }))
            .await;
    }
}

/// Runs `plan` to its end and leaves the discussion IDLE, STOPPED or INTERRUPTED.
pub(super) async fn execute(
    inner: Arc<Inner>,
    run: Arc<ActiveRun>,
    discussion: DiscussionRecord,
    project: ProjectRecord,
    plan: Plan,
    origin: Origin,
) {
    let span = tracing::info_span!("run", discussion = %discussion.id, plan = plan.name());
    async move {
        let ctx = RunContext {
            inner,
            run,
            discussion,
            project,
            last_round: std::sync::atomic::AtomicU32::new(0),
        };
        let mut guard = RunGuard {
            inner: ctx.inner.clone(),
            run: ctx.run.clone(),
            discussion_id: ctx.discussion.id.clone(),
            heartbeat: tokio::spawn(keep_lease(
                ctx.inner.clone(),
                ctx.run.clone(),
                ctx.discussion.id.clone(),
            )),
            closed: false,
            _active: crate::metrics::Active::new(crate::metrics::RUNS_ACTIVE),
        };
        let history = match origin {
            Origin::New => {
                let d = wire::discussion(&ctx.discussion, &[], UsageTotals::default(), 0);
                ctx.publish(Payload::DiscussionStarted(v1::DiscussionStarted {
                    discussion: Some(d),
                }))
                .await;
                // A discussion this run created has no rounds yet.
                Ok(Vec::new())
            }
            Origin::Continued => {
                ctx.publish(Payload::StatusChanged(v1::StatusChanged {
                    status: v1::DiscussionStatus::Running as i32,
                }))
                .await;
                ctx.inner.store.load_rounds(&ctx.discussion.id).await
            }
        };
        let ran = match history {
            Ok(rounds) => run_plan(&ctx, plan, &rounds).await,
            Err(e) => Err(e),
        };
        if let Err(e) = ran {
            tracing::error!(error = %e, "run failed on the store");
        }
        guard.heartbeat.abort();
        let status = match ctx.run.reason() {
            Some(CancelReason::Stop) => DiscussionStatus::Stopped,
            Some(CancelReason::Shutdown) => DiscussionStatus::Interrupted,
            None => DiscussionStatus::Idle,
        };
        let closing = Payload::StatusChanged(v1::StatusChanged {
            status: wire::discussion_status(status) as i32,
        });
        // The writer keeps queue order: the closing event (and every event
        // before it) is committed with the status, or before it. So once
        // the hub leaves, watchers may replay everything from the store.
        let ended = ctx
            .run
            .hub
            .publish_last(
                closing,
                ctx.inner
                    .store
                    .end_run(&ctx.discussion.id, status, &ctx.run.token),
            )
            .await;
        match ended {
            Ok(true) => {}
            // Stopped or recovered meanwhile (by StopDiscussion here or on
            // another replica, or a sweep that took the run for dead): the
            // status set there stands.
            Ok(false) => {
                tracing::info!("the discussion was no longer held by this run; left as it is")
            }
            Err(e) => tracing::error!(error = %e, "could not store the run's final status"),
        }
        guard.closed = true;
    }
    .instrument(span)
    .await;
}

/// Leaves the process's state right however a run ends: the heartbeat stops,
/// the run leaves the registry and its `done` fires. A run that did not
/// close normally (it panicked) is marked INTERRUPTED so it can be continued.
struct RunGuard {
    inner: Arc<Inner>,
    run: Arc<ActiveRun>,
    discussion_id: String,
    heartbeat: tokio::task::JoinHandle<()>,
    closed: bool,
    _active: crate::metrics::Active,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.heartbeat.abort();
        {
            let mut runs = self.inner.runs.lock().unwrap_or_else(|p| p.into_inner());
            // A next run may already have taken the discussion: leave its entry.
            if runs
                .get(&self.discussion_id)
                .is_some_and(|r| Arc::ptr_eq(r, &self.run))
            {
                runs.remove(&self.discussion_id);
            }
        }
        if !self.closed {
            tracing::error!(discussion = %self.discussion_id, "run ended abnormally; marking it INTERRUPTED");
            let store = self.inner.store.clone();
            let id = self.discussion_id.clone();
            let token = self.run.token.clone();
            tokio::spawn(async move {
                if let Err(e) = store
                    .end_run(&id, DiscussionStatus::Interrupted, &token)
                    .await
                {
                    tracing::error!(error = %e, "could not mark the run INTERRUPTED");
                }
            });
        }
        self.run.done.cancel();
    }
}

/// Keeps the run's lease fresh; a lost lease (stopped on another replica,
/// or taken for dead and recovered) stops the run.
async fn keep_lease(inner: Arc<Inner>, run: Arc<ActiveRun>, id: String) {
    let store = &inner.store;
    let token = &run.token;
    let end = lease::keep(inner.limits.run_lease(), &run.done, |until| {
        store.extend_lease(&id, until, token)
    })
    .await;
    if end == LeaseEnd::Lost {
        tracing::warn!("the discussion is no longer running here; stopping the run");
        run.cancel(CancelReason::Stop);
    }
}

async fn run_plan(ctx: &RunContext, plan: Plan, rounds: &[RoundRecord]) -> Result<(), StoreError> {
    let last = rounds.last().map_or(0, |r| r.number);
    ctx.last_round
        .store(last, std::sync::atomic::Ordering::SeqCst);
    let mut transcript = Transcript::from_rounds(&ctx.discussion.question, rounds);
    match plan {
        Plan::Parallel => parallel_round(ctx, &mut transcript).await,
        Plan::Sequential { rounds } => {
            for _ in 0..rounds {
                if ctx.cancelled() {
                    break;
                }
                sequential_round(ctx, &mut transcript).await?;
            }
            Ok(())
        }
        Plan::Mention {
            model,
            content,
            author_name,
        } => mention_round(ctx, &mut transcript, &model, &content, &author_name).await,
        Plan::Summary { model } => summary_round(ctx, &mut transcript, model).await,
    }
}

fn heard(transcript: &mut Transcript, m: &MessageRecord) {
    if m.status != MessageStatus::Failed && !m.content.trim().is_empty() {
        transcript.push(&m.model, &m.content);
    }
}

async fn parallel_round(ctx: &RunContext, transcript: &mut Transcript) -> Result<(), StoreError> {
    let models = ctx.project.models.clone();
    let number = ctx
        .begin_round(RoundMode::Parallel, models.clone(), transcript)
        .await;
    let speaker = ctx.speaker(number);
    let turns = models.iter().enumerate().map(|(position, model)| {
        let messages = prompt::open_messages(&ctx.project, model, transcript, ctx.budget(model));
        speaker.speak(Turn {
            position: u32::try_from(position).unwrap_or(u32::MAX),
            model: model.clone(),
            role: MessageRole::Model,
            messages,
            fallbacks: ctx.fallbacks(model),
        })
    });
    let answers = futures::future::join_all(turns).await;
    for m in &answers {
        heard(transcript, m);
    }
    ctx.end_round(number).await;
    Ok(())
}

async fn sequential_round(ctx: &RunContext, transcript: &mut Transcript) -> Result<(), StoreError> {
    let models = ctx.project.models.clone();
    let number = ctx
        .begin_round(RoundMode::Sequential, models.clone(), transcript)
        .await;
    let speaker = ctx.speaker(number);
    for (position, model) in models.iter().enumerate() {
        if ctx.cancelled() {
            break;
        }
        let messages =
            prompt::turn_messages(&ctx.project, model, transcript, number, ctx.budget(model));
        let answer = speaker
            .speak(Turn {
                position: u32::try_from(position).unwrap_or(u32::MAX),
                model: model.clone(),
                role: MessageRole::Model,
                messages,
                fallbacks: ctx.fallbacks(model),
            })
            .await;
        heard(transcript, &answer);
    }
    ctx.end_round(number).await;
    Ok(())
}

async fn mention_round(
    ctx: &RunContext,
    transcript: &mut Transcript,
    model: &str,
    content: &str,
    author_name: &str,
) -> Result<(), StoreError> {
    let number = ctx
        .begin_round(RoundMode::Mention, vec![model.to_owned()], transcript)
        .await;
    let messages =
        prompt::mention_messages(&ctx.project, model, transcript, content, ctx.budget(model));
    let speaker = ctx.speaker(number);
    speaker.user_message(model, content, author_name).await?;
    transcript.push_user(model, content);
    let answer = speaker
        .speak(Turn {
            position: 1,
            model: model.to_owned(),
            role: MessageRole::Model,
            messages,
            fallbacks: ctx.fallbacks(model),
        })
        .await;
    heard(transcript, &answer);
    ctx.end_round(number).await;
    Ok(())
}

async fn summary_round(
    ctx: &RunContext,
    transcript: &mut Transcript,
    model: Option<String>,
) -> Result<(), StoreError> {
    let model = model
        .or_else(|| {
            (!ctx.project.summarizer_model.is_empty()).then(|| ctx.project.summarizer_model.clone())
        })
        .or_else(|| ctx.project.models.first().cloned())
        .unwrap_or_default();
    let number = ctx
        .begin_round(RoundMode::Summary, vec![model.clone()], transcript)
        .await;
    let messages = prompt::summary_messages(&ctx.project, &model, transcript, ctx.budget(&model));
    let answer = ctx
        .speaker(number)
        .speak(Turn {
            position: 0,
            fallbacks: ctx.fallbacks(&model),
            model,
            role: MessageRole::Summary,
            messages,
        })
        .await;
    heard(transcript, &answer);
    ctx.end_round(number).await;
    Ok(())
}
