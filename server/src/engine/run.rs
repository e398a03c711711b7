//! One run from start to end: its rounds, its lease, and its final status.

use std::sync::Arc;

use moai_proto::v1::{self, discussion_event::Payload};
use tracing::Instrument as _;

use super::lease::{self, LeaseEnd};
use super::prompt::{self, Transcript};
use super::speaker::{Speaker, Turn};
use super::{ActiveRun, CancelReason, Inner};
use super::{consensus, review, review_discussion};
use crate::domain::{
    DiscussionOutcome, DiscussionStatus, MessageRole, MessageStatus, Review, RoundMode,
};
use crate::store::{
    DiscussionRecord, MessageRecord, ProjectRecord, RoundRecord, StoreError, UsageTotals,
};
use crate::wire;

/// What a run does.
#[derive(Clone, Debug)]
pub enum Plan {
    /// One round where every model answers the question at once.
    Parallel,
    /// `rounds` rounds in turns; `until_consensus`: a judge after each
    /// round, and the run stops at the first agreement.
    Sequential { rounds: u32, until_consensus: bool },
    /// The user (named `author_name`, possibly empty) speaks to one model.
    Mention {
        model: String,
        content: String,
        author_name: String,
    },
    /// A consensus summary by `model` (or the project's default).
    Summary { model: Option<String> },
    /// Anonymous peer review of round `round`'s answers.
    Review { round: u32 },
}

impl Plan {
    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Plan::Parallel => "open",
            Plan::Sequential { .. } => "sequential",
            Plan::Mention { .. } => "mention",
            Plan::Summary { .. } => "summary",
            Plan::Review { .. } => "review",
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
        self.publish(Payload::RoundCompleted(v1::RoundCompleted {
            number,
            ..Default::default()
        }))
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
        Plan::Sequential {
            rounds: count,
            until_consensus,
        } => {
            for i in 1..=count {
                if ctx.cancelled() {
                    break;
                }
                let judging = until_consensus.then_some(Judging {
                    judged: i,
                    last: i == count,
                });
                if sequential_round(ctx, &mut transcript, judging).await? == Verdict::Agreed {
                    break;
                }
            }
            Ok(())
        }
        Plan::Review { round } => review_round(ctx, &mut transcript, rounds, round).await,
        Plan::Mention {
            model,
            content,
            author_name,
        } => mention_round(ctx, &mut transcript, &model, &content, &author_name).await,
        Plan::Summary { model } => summary_round(ctx, &mut transcript, rounds, model).await,
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
            conclude: None,
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

/// A round of a run until consensus: which judged round of the run it is,
/// and whether it is the last one allowed.
struct Judging {
    judged: u32,
    last: bool,
}

/// What the judge of a round said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Agreed,
    /// No agreement, no judge, or a judgement cut short.
    NotAgreed,
}

async fn sequential_round(
    ctx: &RunContext,
    transcript: &mut Transcript,
    judging: Option<Judging>,
) -> Result<Verdict, StoreError> {
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
                conclude: None,
                fallbacks: ctx.fallbacks(model),
            })
            .await;
        heard(transcript, &answer);
    }
    let mut completed = v1::RoundCompleted {
        number,
        ..Default::default()
    };
    let mut verdict = Verdict::NotAgreed;
    if let Some(judging) = judging.filter(|_| !ctx.cancelled()) {
        let position = u32::try_from(models.len()).unwrap_or(u32::MAX);
        if let Some(agreed) = judge(ctx, transcript, number, position).await {
            completed.consensus = Some(agreed);
            completed.judged_rounds = judging.judged;
            let outcome = if agreed {
                verdict = Verdict::Agreed;
                Some(DiscussionOutcome::Consensus)
            } else {
                judging.last.then_some(DiscussionOutcome::NoConsensus)
            };
            if let Some(outcome) = outcome {
                // Committed before it is announced: what a client has seen,
                // GetDiscussion shows.
                ctx.inner
                    .store
                    .set_outcome(&ctx.discussion.id, outcome, number)
                    .await?;
                completed.outcome = wire::discussion_outcome(Some(outcome)) as i32;
            }
        }
    }
    ctx.publish(Payload::RoundCompleted(completed)).await;
    Ok(verdict)
}

/// The judge (the project's summarizer, else its first model) reads the
/// discussion after round `number` and says whether the participants agree.
/// `None` when the judgement was cut short by a stop; a failed or
/// unreadable judgement counts as no.
async fn judge(
    ctx: &RunContext,
    transcript: &Transcript,
    number: u32,
    position: u32,
) -> Option<bool> {
    let judge = default_model(&ctx.project);
    let messages = consensus::judge_messages(
        &transcript.question,
        &ctx.project.name,
        &ctx.project.models,
        &transcript.rendered(ctx.budget(&judge)),
        number,
    );
    let judgement = ctx
        .speaker(number)
        .speak(Turn {
            position,
            fallbacks: ctx.fallbacks(&judge),
            model: judge,
            role: MessageRole::Judge,
            messages,
            conclude: Some(Box::new(|m: &mut MessageRecord| {
                m.consensus = match m.status {
                    MessageStatus::Interrupted | MessageStatus::Streaming => None,
                    MessageStatus::Complete => Some(consensus::agreed(&m.content)),
                    MessageStatus::Failed => Some(false),
                };
            })),
        })
        .await;
    judgement.consensus
}

/// The project's summarizer, else its first model: who sums up and judges.
fn default_model(project: &ProjectRecord) -> String {
    Some(project.summarizer_model.clone())
        .filter(|m| !m.is_empty())
        .or_else(|| project.models.first().cloned())
        .unwrap_or_default()
}

/// Every project model that has someone else's answer to judge ranks the
/// others' answers of round `reviewed`, each under labels shuffled for it;
/// the round ends with the leaderboard.
async fn review_round(
    ctx: &RunContext,
    transcript: &mut Transcript,
    rounds: &[RoundRecord],
    reviewed: u32,
) -> Result<(), StoreError> {
    let answers: Vec<review::Answer> = rounds
        .iter()
        .filter(|r| r.number == reviewed)
        .flat_map(|r| r.messages.iter())
        .filter(|m| review_discussion::is_answer(m))
        .map(|m| review::Answer {
            model: m.model.clone(),
            content: m.content.clone(),
        })
        .collect();
    let reviewers: Vec<String> = ctx
        .project
        .models
        .iter()
        .filter(|r| answers.iter().any(|a| a.model != **r))
        .cloned()
        .collect();
    let number = ctx
        .last_round
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        + 1;
    ctx.inner
        .store
        .create_review_round(&ctx.discussion.id, number, reviewed)
        .await;
    ctx.publish(Payload::RoundStarted(v1::RoundStarted {
        number,
        mode: wire::round_mode(RoundMode::Review) as i32,
        models: reviewers.clone(),
    }))
    .await;
    transcript.begin_round(number, RoundMode::Review);
    // Every label is drawn before any call, in the project's order, so a
    // seeded generator gives the same labels however the calls interleave.
    let shown: Vec<Vec<(review::Label, &review::Answer)>> = {
        let mut rng = ctx
            .inner
            .review_rng
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        reviewers
            .iter()
            .map(|r| review::labelled_for(&answers, r, &mut *rng))
            .collect()
    };
    let mut everyone: Vec<String> = ctx.project.models.clone();
    everyone.extend(answers.iter().map(|a| a.model.clone()));
    let speaker = ctx.speaker(number);
    let turns = reviewers
        .iter()
        .zip(&shown)
        .enumerate()
        .map(|(position, (reviewer, shown))| {
            let messages = review::review_messages(
                &transcript.question,
                shown,
                &everyone,
                ctx.budget(reviewer),
            );
            let labels: Vec<review::Label> = shown.iter().map(|(l, _)| l.clone()).collect();
            speaker.speak(Turn {
                position: u32::try_from(position).unwrap_or(u32::MAX),
                model: reviewer.clone(),
                fallbacks: ctx.fallbacks(reviewer),
                role: MessageRole::Reviewer,
                messages,
                conclude: Some(Box::new(move |m: &mut MessageRecord| {
                    conclude_review(m, labels)
                })),
            })
        });
    let reviews = futures::future::join_all(turns).await;
    let round = RoundRecord {
        number,
        mode: RoundMode::Review,
        messages: reviews,
        reviewed_round: reviewed,
    };
    ctx.publish(Payload::RoundCompleted(v1::RoundCompleted {
        number,
        ranking: wire::ranking(&round.ranking()),
        ..Default::default()
    }))
    .await;
    Ok(())
}

/// A finished review: the labels it saw, and its ranking as model ids when
/// one can be read from a complete text; otherwise why not.
fn conclude_review(m: &mut MessageRecord, labels: Vec<review::Label>) {
    let names: Vec<String> = labels.iter().map(|l| l.label.clone()).collect();
    let (ranking, unparsed) = match m.status {
        MessageStatus::Complete => match review::parse_ranking(&m.content, &names) {
            review::ParsedRanking::Ranked(order) => (
                order
                    .iter()
                    .filter_map(|label| labels.iter().find(|l| l.label == *label))
                    .map(|l| l.model.clone())
                    .collect(),
                String::new(),
            ),
            review::ParsedRanking::Unparsed(why) => (Vec::new(), why),
        },
        MessageStatus::Interrupted | MessageStatus::Streaming => (
            Vec::new(),
            "the review was stopped before it was complete".to_owned(),
        ),
        MessageStatus::Failed => (Vec::new(), "the review failed".to_owned()),
    };
    m.review = Some(Review {
        labels,
        ranking,
        unparsed,
    });
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
            conclude: None,
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
    rounds: &[RoundRecord],
    model: Option<String>,
) -> Result<(), StoreError> {
    let model = model.unwrap_or_else(|| default_model(&ctx.project));
    let number = ctx
        .begin_round(RoundMode::Summary, vec![model.clone()], transcript)
        .await;
    let mut messages =
        prompt::summary_messages(&ctx.project, &model, transcript, ctx.budget(&model));
    // After a peer review the chairman is told its leaderboard.
    let review = rounds
        .iter()
        .rev()
        .filter(|r| r.mode == RoundMode::Review)
        .map(|r| (r.reviewed_round, r.ranking()))
        .find(|(_, standings)| !standings.is_empty());
    if let (Some((reviewed, standings)), Some(last)) = (review, messages.last_mut()) {
        last.content.push_str("\n\n");
        last.content
            .push_str(&review::ranking_note(reviewed, &standings));
    }
    let answer = ctx
        .speaker(number)
        .speak(Turn {
            position: 0,
            fallbacks: ctx.fallbacks(&model),
            model,
            role: MessageRole::Summary,
            messages,
            conclude: None,
        })
        .await;
    heard(transcript, &answer);
    ctx.end_round(number).await;
    Ok(())
}
