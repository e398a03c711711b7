//! Rendering one run: the discussion's events become live messages in the
//! chat, one per model answer, with "typing…" shown while models work.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use futures::StreamExt;
use moai_proto::v1::{
    Discussion, DiscussionEvent, DiscussionStatus, MessageRole, MessageStatus, RoundMode,
    discussion_event::Payload,
};
use teloxide::{
    prelude::Requester,
    types::{ChatAction, ChatId, MessageId, UserId},
};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::{
    api::{EventStream, UserApi},
    chat_pace::ChatPace,
    error::friendly,
    live_message::{Author, Before, LiveMessage, LiveOptions, Phase},
    render::html::escape,
    state::{FileStorage, Tracker},
    telegram::{self, Tg},
};

/// How often a broken event stream is re-attached before giving up.
const REATTACH_ATTEMPTS: u32 = 3;

/// What a run renderer needs.
#[derive(Clone)]
pub struct RunView {
    /// The bot.
    pub bot: Tg,
    /// The chat it renders into.
    pub chat: ChatId,
    /// The user who asked for the run.
    pub user: UserId,
    /// The API, acting for the chat (the user, or the group).
    pub api: UserApi,
    /// Per-chat state, to remember a discussion the run creates.
    pub store: Arc<FileStorage>,
    /// Shortest time between two edits of one message.
    pub edit_interval: Duration,
    /// How often "typing…" is re-sent.
    pub typing_interval: Duration,
    /// The turns of the chat's live answers.
    pub pace: Arc<ChatPace>,
    /// Cancelled when the bot stops: answers still coming get a last edit
    /// and are finished after a restart.
    pub pause: CancellationToken,
}

/// How a rendered run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The discussion it belonged to, if the stream said.
    pub discussion_id: Option<String>,
    /// The last status the stream reported.
    pub status: Option<DiscussionStatus>,
    /// The error that ended the stream early, already told to the user.
    pub error: Option<String>,
    /// The bot stopped before the run ended.
    pub paused: bool,
}

/// Renders a run whose event stream `start` opens, until it is idle and
/// every answer is in the chat. Errors are told to the user.
pub async fn render(
    view: RunView,
    known_discussion: Option<String>,
    start: impl Future<Output = Result<EventStream, Status>> + Send,
) -> Outcome {
    let run = RunState::new(view.clone(), known_discussion);
    follow(view, run, start).await
}

/// Picks up a discussion after a restart: answers the bot was showing are
/// finished in the messages they started in (`shown`: moai message id →
/// Telegram message ids), and a run still going is followed from the
/// discussion's last event, answers still being written seeded with their
/// text so far.
pub async fn resume(
    view: RunView,
    discussion: Discussion,
    mut shown: BTreeMap<String, Vec<i32>>,
) -> Outcome {
    let mut run = RunState::new(view.clone(), Some(discussion.id.clone()));
    run.last_seq = discussion.last_seq;
    for message in discussion.rounds.iter().flat_map(|round| &round.messages) {
        let role = MessageRole::try_from(message.role).unwrap_or(MessageRole::Model);
        let existing: Vec<MessageId> = shown
            .remove(&message.id)
            .unwrap_or_default()
            .into_iter()
            .map(MessageId)
            .collect();
        if role == MessageRole::User {
            continue;
        }
        if message.status == MessageStatus::Streaming as i32 {
            run.open_live(&message.id, &message.model, role, existing)
                .push(&message.content);
        } else if !existing.is_empty() {
            let phase = phase_of(message);
            run.open_live(&message.id, &message.model, role, existing);
            run.close(
                &message.id,
                &message.model,
                role,
                message.content.clone(),
                phase,
            );
        }
    }
    for message_id in shown.into_keys() {
        // Not in the discussion any more (deleted): nothing to finish.
        let tracker = run.tracker(&message_id);
        if let Some(tracker) = tracker {
            tracker.forget().await;
        }
    }
    if discussion.status != DiscussionStatus::Running as i32 {
        let outcome = run.outcome(None);
        run.finish().await;
        return outcome;
    }
    let mut api = view.api.clone();
    let start = async move { api.watch(&discussion.id, discussion.last_seq).await };
    follow(view, run, start).await
}

/// How a stored message ended, as a live answer's phase.
fn phase_of(message: &moai_proto::v1::Message) -> Phase {
    match MessageStatus::try_from(message.status) {
        Ok(MessageStatus::Interrupted | MessageStatus::Streaming) => Phase::Interrupted,
        Ok(MessageStatus::Failed) => Phase::Failed(message.error.clone()),
        _ => Phase::Complete,
    }
}

async fn follow(
    mut view: RunView,
    mut run: RunState,
    start: impl Future<Output = Result<EventStream, Status>> + Send,
) -> Outcome {
    let typing = tokio::spawn(show_typing(
        view.bot.clone(),
        view.chat,
        view.typing_interval,
    ));
    let mut stream = match start.await {
        Ok(stream) => stream,
        Err(status) => {
            typing.abort();
            let line = friendly(&status);
            run.say(&format!("⚠️ {}", escape(&line))).await;
            let outcome = run.outcome(Some(line));
            run.finish().await;
            return outcome;
        }
    };
    let mut error = None;
    let mut reattached = 0;
    loop {
        let next = tokio::select! {
            biased;
            () = view.pause.cancelled() => {
                run.paused = true;
                break;
            }
            next = stream.next() => next,
        };
        match next {
            Some(Ok(event)) => run.apply(event).await,
            Some(Err(status)) => {
                tracing::warn!(code = ?status.code(), "event stream broke");
                match run.reattach(&mut view.api, &mut reattached).await {
                    Some(next) => stream = next,
                    None => {
                        error = Some(friendly(&status));
                        break;
                    }
                }
            }
            None if run.is_running() && run.has_open_answers() => {
                match run.reattach(&mut view.api, &mut reattached).await {
                    Some(next) => stream = next,
                    None => break,
                }
            }
            None => break,
        }
    }
    typing.abort();
    if let Some(line) = &error {
        run.say(&format!("⚠️ {}", escape(line))).await;
    }
    let outcome = run.outcome(error);
    run.finish().await;
    outcome
}

/// Sends "typing…" until aborted.
async fn show_typing(bot: Tg, chat: ChatId, every: Duration) {
    loop {
        if let Err(e) = bot.send_chat_action(chat, ChatAction::Typing).await {
            tracing::debug!(error = %e, "could not show typing");
        }
        tokio::time::sleep(every).await;
    }
}

/// What the renderer knows about the run so far.
struct RunState {
    view: RunView,
    discussion_id: Option<String>,
    last_seq: u64,
    status: Option<DiscussionStatus>,
    /// The bot stopped while the run went on.
    paused: bool,
    /// Answers still streaming, by message id.
    open: HashMap<String, LiveMessage>,
    /// Answers that ended, whose final text may still be on its way.
    done: Vec<LiveMessage>,
}

impl RunState {
    fn new(view: RunView, discussion_id: Option<String>) -> Self {
        RunState {
            view,
            discussion_id,
            last_seq: 0,
            status: None,
            paused: false,
            open: HashMap::new(),
            done: Vec::new(),
        }
    }

    fn is_running(&self) -> bool {
        matches!(self.status, None | Some(DiscussionStatus::Running))
    }

    fn has_open_answers(&self) -> bool {
        !self.open.is_empty()
    }

    async fn say(&self, html: &str) {
        if let Err(e) = telegram::send(&self.view.bot, self.view.chat, html).await {
            tracing::warn!(error = %e, "could not send a run notice");
        }
    }

    /// Follows the discussion again from the last event seen.
    async fn reattach(&mut self, api: &mut UserApi, attempts: &mut u32) -> Option<EventStream> {
        let discussion_id = self.discussion_id.clone()?;
        while *attempts < REATTACH_ATTEMPTS {
            *attempts += 1;
            tokio::time::sleep(Duration::from_millis(300 * u64::from(*attempts))).await;
            match api.watch(&discussion_id, self.last_seq).await {
                Ok(stream) => return Some(stream),
                Err(status) => {
                    tracing::warn!(code = ?status.code(), "could not re-attach to the run")
                }
            }
        }
        None
    }

    fn live(&mut self, message_id: &str, model: &str, role: MessageRole) -> &LiveMessage {
        self.open_live(message_id, model, role, Vec::new())
    }

    /// The live answer of `message_id`, created (in `existing` messages, if
    /// any) when it is new.
    fn open_live(
        &mut self,
        message_id: &str,
        model: &str,
        role: MessageRole,
        existing: Vec<MessageId>,
    ) -> &LiveMessage {
        if !self.open.contains_key(message_id) {
            let author = match role {
                MessageRole::Summary => Author::Summary(model.to_owned()),
                _ => Author::Model(model.to_owned()),
            };
            let options = LiveOptions {
                interval: self.view.edit_interval,
                pace: self.view.pace.clone(),
                discussion_id: self.discussion_id.clone(),
                tracker: self.tracker(message_id),
                existing,
            };
            let live = LiveMessage::spawn(self.view.bot.clone(), self.view.chat, author, options);
            self.open.insert(message_id.to_owned(), live);
        }
        &self.open[message_id]
    }

    /// Records where an answer of this run is shown (once the discussion is known).
    fn tracker(&self, message_id: &str) -> Option<Tracker> {
        Some(Tracker {
            store: self.view.store.clone(),
            chat: self.view.chat,
            message_id: message_id.to_owned(),
            discussion_id: self.discussion_id.clone()?,
            user: self.view.user.0,
        })
    }

    fn outcome(&self, error: Option<String>) -> Outcome {
        Outcome {
            discussion_id: self.discussion_id.clone(),
            status: self.status,
            error,
            paused: self.paused,
        }
    }

    fn close(
        &mut self,
        message_id: &str,
        model: &str,
        role: MessageRole,
        content: String,
        phase: Phase,
    ) {
        self.live(message_id, model, role);
        if let Some(live) = self.open.remove(message_id) {
            live.finish(Some(content), phase);
            self.done.push(live);
        }
    }

    async fn apply(&mut self, event: DiscussionEvent) {
        if event.seq <= self.last_seq && self.last_seq > 0 {
            return; // a replay after re-attaching
        }
        self.last_seq = event.seq;
        if self.discussion_id.is_none() && !event.discussion_id.is_empty() {
            self.discussion_id = Some(event.discussion_id.clone());
        }
        let Some(payload) = event.payload else { return };
        match payload {
            Payload::DiscussionStarted(started) => {
                if let Some(discussion) = started.discussion {
                    self.remember_discussion(&discussion.id, &discussion.project_id)
                        .await;
                }
            }
            Payload::RoundStarted(round) => {
                if RoundMode::try_from(round.mode) == Ok(RoundMode::Sequential) {
                    let order = round
                        .models
                        .iter()
                        .map(|m| escape(m))
                        .collect::<Vec<_>>()
                        .join(" → ");
                    self.say(&format!("🔄 <b>Round {}</b> · {order}", round.number))
                        .await;
                }
            }
            Payload::MessageStarted(started) => {
                let role = MessageRole::try_from(started.role).unwrap_or(MessageRole::Model);
                if role != MessageRole::User {
                    self.live(&started.message_id, &started.model, role);
                }
            }
            Payload::MessageDelta(delta) => {
                let live = self.live(&delta.message_id, &delta.model, MessageRole::Model);
                if !delta.reasoning.is_empty() {
                    live.before(Before::Thinking);
                }
                live.push(&delta.text);
            }
            Payload::MessageCompleted(completed) => {
                let Some(message) = completed.message else {
                    return;
                };
                let role = MessageRole::try_from(message.role).unwrap_or(MessageRole::Model);
                if role == MessageRole::User {
                    return;
                }
                let phase = phase_of(&message);
                self.close(&message.id, &message.model, role, message.content, phase);
            }
            Payload::MessageFailed(failed) => {
                let reason = if failed.error.is_empty() {
                    "failed".to_owned()
                } else {
                    failed.error
                };
                let phase = Phase::Failed(reason);
                self.close(
                    &failed.message_id,
                    &failed.model,
                    MessageRole::Model,
                    failed.content,
                    phase,
                );
            }
            Payload::RoundCompleted(_) => {}
            Payload::MessageQueued(queued) => {
                self.live(&queued.message_id, &queued.model, MessageRole::Model)
                    .before(Before::Queued);
            }
            Payload::MessageFallback(_) => {}
            Payload::StatusChanged(changed) => {
                self.status = DiscussionStatus::try_from(changed.status).ok();
            }
        }
    }

    /// Makes a discussion the chat's current one, unless the chat moved on
    /// to another project meanwhile.
    async fn remember_discussion(&mut self, discussion_id: &str, project_id: &str) {
        self.discussion_id = Some(discussion_id.to_owned());
        let result = self
            .view
            .store
            .modify(self.view.chat, |state| {
                if state.project_id() == Some(project_id) {
                    state.discussion_id = Some(discussion_id.to_owned());
                }
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "could not save the current discussion");
        }
    }

    /// Waits until every answer's final text is in the chat; when the bot
    /// is stopping, answers still coming show what they have so far.
    async fn finish(mut self) {
        let open: Vec<LiveMessage> = self.open.drain().map(|(_, live)| live).collect();
        if self.paused {
            for live in &open {
                live.finish(None, Phase::Paused);
            }
        }
        for live in open.into_iter().chain(self.done.drain(..)) {
            live.delivered().await;
        }
        if self.status == Some(DiscussionStatus::Interrupted) {
            self.say("⚠️ The run was interrupted on the server. /next continues the discussion.")
                .await;
        }
    }
}
