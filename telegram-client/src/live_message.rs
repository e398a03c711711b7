//! One model's answer as it streams into the chat: its own message (or
//! several, past Telegram's length limit), edited as text arrives.
//!
//! The run's event loop never waits on Telegram: it only updates a
//! [`watch`] snapshot, and an [`AnswerEditor`] task per answer brings the
//! chat up to date with the latest snapshot at most once per interval and
//! when the chat's [`ChatPace`] gives it a turn. A `RetryAfter` delays that
//! task (and the chat's other answers), never the run, and the final
//! snapshot is always delivered.

use std::{sync::Arc, time::Duration};

use teloxide::{
    ApiError, RequestError,
    prelude::Requester,
    types::{ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MessageId},
};
use tokio::{sync::watch, task::JoinHandle};

pub use crate::render::answer::{Author, Before, Phase, Snapshot, render_parts};
use crate::{
    chat_pace::ChatPace,
    state::Tracker,
    telegram::{Tg, retry_after, try_edit, try_send},
    throttle::EditThrottle,
};

/// Attempts at delivering the final text after errors other than `RetryAfter`.
const FINAL_ATTEMPTS: u32 = 5;

/// One of an answer's messages already in the chat: the HTML it shows and
/// whether it carries the Stop button.
struct ShownPart {
    id: MessageId,
    html: String,
    button: bool,
}

/// Callback data of the Stop button under a streaming answer.
#[must_use]
pub fn stop_data(discussion_id: &str) -> String {
    format!("stop:{discussion_id}")
}

/// How a live answer is shown.
#[derive(Debug)]
pub struct LiveOptions {
    /// Shortest time between two edits of one message.
    pub interval: Duration,
    /// The turns of the chat's answers.
    pub pace: Arc<ChatPace>,
    /// The discussion, for the Stop button shown while the answer streams.
    pub discussion_id: Option<String>,
    /// Records the answer's messages so a restarted bot can finish them.
    pub tracker: Option<Tracker>,
    /// Messages already showing the answer (before a restart).
    pub existing: Vec<MessageId>,
}

/// The handle of one streaming answer.
pub struct LiveMessage {
    snapshot: watch::Sender<Snapshot>,
    task: JoinHandle<()>,
}

impl LiveMessage {
    /// Shows a new answer in `chat` and keeps it up to date, editing each of
    /// its messages at most once per `options.interval`.
    #[must_use]
    pub fn spawn(bot: Tg, chat: ChatId, author: Author, options: LiveOptions) -> Self {
        let initial = Snapshot {
            content: String::new(),
            phase: Phase::Streaming,
            before: Before::Unknown,
        };
        let (snapshot, updates) = watch::channel(initial);
        // Messages shown before a restart: their text is unknown, so the first
        // update edits them all (and removes a stale Stop button).
        let shown = options
            .existing
            .into_iter()
            .map(|id| ShownPart {
                id,
                html: String::new(),
                button: true,
            })
            .collect();
        let editor = AnswerEditor {
            bot,
            chat,
            author,
            shown,
            throttle: EditThrottle::new(options.interval),
            pace: options.pace,
            stop_button: options.discussion_id.map(|id| {
                InlineKeyboardMarkup::new([[InlineKeyboardButton::callback(
                    "⏹ Stop",
                    stop_data(&id),
                )]])
            }),
            tracker: options.tracker,
        };
        let task = tokio::spawn(editor.run(updates));
        LiveMessage { snapshot, task }
    }

    /// Appends streamed text.
    pub fn push(&self, text: &str) {
        if !text.is_empty() {
            self.snapshot.send_modify(|s| s.content.push_str(text));
        }
    }

    /// Says what the model does before its answer starts (shown until it does).
    pub fn before(&self, before: Before) {
        self.snapshot.send_if_modified(|s| {
            let changed = s.before != before && s.content.is_empty();
            s.before = before;
            changed
        });
    }

    /// The text received so far.
    #[must_use]
    pub fn content(&self) -> String {
        self.snapshot.borrow().content.clone()
    }

    /// Sets the final text and how the answer ended.
    pub fn finish(&self, content: Option<String>, phase: Phase) {
        self.snapshot.send_modify(|s| {
            if let Some(content) = content {
                s.content = content;
            }
            s.phase = phase;
        });
    }

    /// Whether the answer has ended.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.snapshot.borrow().is_final()
    }

    /// Waits until the final text is in the chat. An answer not finished by
    /// then is shown as interrupted.
    pub async fn delivered(self) {
        if !self.is_finished() {
            self.finish(None, Phase::Interrupted);
        }
        drop(self.snapshot);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "live message task failed");
        }
    }
}

/// Whether the chat now shows a snapshot.
enum Shown {
    /// It does.
    All,
    /// An edit of a streaming answer was skipped: the chat had no free turn.
    Skipped,
}

/// The task that keeps an answer's messages in the chat in step with its
/// snapshot, sending and editing them.
struct AnswerEditor {
    bot: Tg,
    chat: ChatId,
    author: Author,
    /// The answer's messages in the chat, in order.
    shown: Vec<ShownPart>,
    throttle: EditThrottle,
    pace: Arc<ChatPace>,
    /// The Stop button shown while the answer streams.
    stop_button: Option<InlineKeyboardMarkup>,
    tracker: Option<Tracker>,
}

impl AnswerEditor {
    #[tracing::instrument(name = "live_message", skip_all, fields(chat = self.chat.0, model = self.author.model()))]
    async fn run(mut self, mut updates: watch::Receiver<Snapshot>) {
        // Whether the chat is behind the latest snapshot.
        let mut behind = true;
        let mut failures = 0;
        loop {
            if !behind {
                // Fails only once the handle is gone and every snapshot was seen.
                if updates.changed().await.is_err() {
                    return;
                }
            }
            self.throttle.ready().await;
            let snapshot = updates.borrow_and_update().clone();
            let ids = self.message_ids();
            let result = self.show(&snapshot).await;
            if let Some(tracker) = &self.tracker {
                // A paused answer stays recorded, so a restart finishes it.
                let done = snapshot.is_final() && snapshot.phase != Phase::Paused;
                if matches!(result, Ok(Shown::All)) && done {
                    tracker.forget().await;
                } else if self.message_ids() != ids {
                    tracker.save(self.message_ids()).await;
                }
            }
            match result {
                Ok(Shown::All) => {
                    behind = false;
                    if snapshot.is_final() {
                        return;
                    }
                }
                Ok(Shown::Skipped) => {
                    // Try again with the latest text once the interval has passed.
                    self.throttle.record();
                    behind = true;
                }
                Err(e) => {
                    if let Some(wait) = retry_after(&e) {
                        tracing::info!(
                            ?wait,
                            "Telegram asked to slow down; the answer will catch up"
                        );
                        self.throttle.retry_after(wait);
                        self.pace.retry_after(wait);
                    } else {
                        failures += 1;
                        tracing::warn!(error = %e, failures, "could not update the answer");
                        if snapshot.is_final() && failures >= FINAL_ATTEMPTS {
                            return;
                        }
                        self.throttle
                            .retry_after(Duration::from_secs(1 << failures.min(4)));
                    }
                    behind = true;
                }
            }
        }
    }

    fn message_ids(&self) -> Vec<i32> {
        self.shown.iter().map(|part| part.id.0).collect()
    }

    /// Waits for the chat's turn for a call; `false` if an edit of a
    /// streaming answer should be skipped instead (no turn is free now).
    async fn turn(&self, can_wait: bool) -> bool {
        if can_wait {
            self.pace.wait_turn().await;
            true
        } else {
            self.pace.try_turn()
        }
    }

    /// Makes the chat show `snapshot`: edits the parts that changed, sends
    /// new ones. New messages and the final text wait for the chat's turn;
    /// an edit of a streaming answer is skipped when no turn is free.
    async fn show(&mut self, snapshot: &Snapshot) -> Result<Shown, RequestError> {
        let parts = render_parts(&self.author, snapshot);
        let last = snapshot.is_final();
        let mut touched = false;
        for (i, part) in parts.iter().enumerate() {
            // Only the last message of a streaming answer carries the button.
            let markup = self
                .stop_button
                .clone()
                .filter(|_| !last && i + 1 == parts.len());
            let button = markup.is_some();
            match self.shown.get(i) {
                Some(shown) if shown.html == *part && shown.button == button => {}
                Some(shown) => {
                    if !self.turn(last).await {
                        if touched {
                            self.throttle.record();
                        }
                        return Ok(Shown::Skipped);
                    }
                    touched = true;
                    let id = shown.id;
                    let message_id =
                        match try_edit(&self.bot, self.chat, id, part, markup.clone()).await {
                            Ok(()) => id,
                            Err(RequestError::Api(ApiError::MessageToEditNotFound)) => {
                                self.pace.wait_turn().await;
                                try_send(&self.bot, self.chat, part, markup).await?.id
                            }
                            Err(e) => {
                                self.throttle.record();
                                return Err(e);
                            }
                        };
                    self.shown[i] = ShownPart {
                        id: message_id,
                        html: part.clone(),
                        button,
                    };
                }
                None => {
                    self.pace.wait_turn().await;
                    touched = true;
                    let message = try_send(&self.bot, self.chat, part, markup).await;
                    let message = message.inspect_err(|_| self.throttle.record())?;
                    self.shown.push(ShownPart {
                        id: message.id,
                        html: part.clone(),
                        button,
                    });
                }
            }
        }
        // The text got shorter (rare: Markdown re-rendered): drop the extra messages.
        while self.shown.len() > parts.len() {
            if let Some(extra) = self.shown.pop() {
                touched = true;
                if let Err(e) = self.bot.delete_message(self.chat, extra.id).await {
                    tracing::debug!(error = %e, "could not delete a surplus message");
                }
            }
        }
        if touched {
            self.throttle.record();
        }
        Ok(Shown::All)
    }
}
