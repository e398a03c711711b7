//! One model's answer as it streams into the chat: its own message (or
//! several, past Telegram's length limit), edited as text arrives.
//!
//! The run's event loop never waits on Telegram: it only updates a
//! [`watch`] snapshot, and a task per answer brings the chat up to date with
//! the latest snapshot at most once per interval. A `RetryAfter` delays that
//! task, never the run, and the final snapshot is always delivered.

use std::time::Duration;

use teloxide::{
    ApiError, RequestError,
    prelude::Requester,
    types::{ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MessageId},
};
use tokio::{sync::watch, task::JoinHandle};

pub use crate::render::answer::{Author, Before, Phase, Snapshot, render_parts};
use crate::{
    state::Tracker,
    telegram::{Tg, retry_after, try_edit, try_send},
    throttle::EditThrottle,
};

/// Attempts at delivering the final text after errors other than `RetryAfter`.
const FINAL_ATTEMPTS: u32 = 5;

/// A message already in the chat, the HTML it shows and whether it carries
/// the Stop button.
struct Sent {
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
#[derive(Debug, Default)]
pub struct LiveOptions {
    /// Shortest time between two edits of one message.
    pub interval: Duration,
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
        let sent = options
            .existing
            .into_iter()
            .map(|id| Sent {
                id,
                html: String::new(),
                button: true,
            })
            .collect();
        let sync = Sync {
            bot,
            chat,
            author,
            sent,
            throttle: EditThrottle::new(options.interval),
            stop: options.discussion_id.map(|id| {
                InlineKeyboardMarkup::new([[InlineKeyboardButton::callback(
                    "⏹ Stop",
                    stop_data(&id),
                )]])
            }),
            tracker: options.tracker,
        };
        let task = tokio::spawn(sync.run(updates));
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

/// The task that keeps an answer's messages in step with its snapshot.
struct Sync {
    bot: Tg,
    chat: ChatId,
    author: Author,
    sent: Vec<Sent>,
    throttle: EditThrottle,
    /// The Stop button shown while the answer streams.
    stop: Option<InlineKeyboardMarkup>,
    tracker: Option<Tracker>,
}

impl Sync {
    #[tracing::instrument(name = "live_message", skip_all, fields(chat = self.chat.0, model = self.author.model()))]
    async fn run(mut self, mut updates: watch::Receiver<Snapshot>) {
        let mut pending = true;
        let mut failures = 0;
        loop {
            if !pending {
                // Fails only once the handle is gone and every snapshot was seen.
                if updates.changed().await.is_err() {
                    return;
                }
            }
            self.throttle.ready().await;
            let snapshot = updates.borrow_and_update().clone();
            let ids = self.ids();
            let result = self.show(&snapshot).await;
            if let Some(tracker) = &self.tracker {
                if result.is_ok() && snapshot.is_final() {
                    tracker.forget().await;
                } else if self.ids() != ids {
                    tracker.save(self.ids()).await;
                }
            }
            match result {
                Ok(()) => {
                    pending = false;
                    if snapshot.is_final() {
                        return;
                    }
                }
                Err(e) => {
                    if let Some(wait) = retry_after(&e) {
                        tracing::info!(
                            ?wait,
                            "Telegram asked to slow down; the answer will catch up"
                        );
                        self.throttle.retry_after(wait);
                    } else {
                        failures += 1;
                        tracing::warn!(error = %e, failures, "could not update the answer");
                        if snapshot.is_final() && failures >= FINAL_ATTEMPTS {
                            return;
                        }
                        self.throttle
                            .retry_after(Duration::from_secs(1 << failures.min(4)));
                    }
                    pending = true;
                }
            }
        }
    }

    fn ids(&self) -> Vec<i32> {
        self.sent.iter().map(|sent| sent.id.0).collect()
    }

    /// Makes the chat show `snapshot`: edits the parts that changed, sends new ones.
    async fn show(&mut self, snapshot: &Snapshot) -> Result<(), RequestError> {
        let parts = render_parts(&self.author, snapshot);
        let mut touched = false;
        for (i, part) in parts.iter().enumerate() {
            // Only the last message of a streaming answer carries the button.
            let markup = self
                .stop
                .clone()
                .filter(|_| !snapshot.is_final() && i + 1 == parts.len());
            let button = markup.is_some();
            match self.sent.get_mut(i) {
                Some(sent) if sent.html == *part && sent.button == button => {}
                Some(sent) => {
                    touched = true;
                    match try_edit(&self.bot, self.chat, sent.id, part, markup.clone()).await {
                        Ok(()) => {
                            sent.html.clone_from(part);
                            sent.button = button;
                        }
                        Err(RequestError::Api(ApiError::MessageToEditNotFound)) => {
                            let message = try_send(&self.bot, self.chat, part, markup).await?;
                            *sent = Sent {
                                id: message.id,
                                html: part.clone(),
                                button,
                            };
                        }
                        Err(e) => {
                            self.throttle.record();
                            return Err(e);
                        }
                    }
                }
                None => {
                    touched = true;
                    let message = try_send(&self.bot, self.chat, part, markup).await;
                    let message = message.inspect_err(|_| self.throttle.record())?;
                    self.sent.push(Sent {
                        id: message.id,
                        html: part.clone(),
                        button,
                    });
                }
            }
        }
        // The text got shorter (rare: Markdown re-rendered): drop the extra messages.
        while self.sent.len() > parts.len() {
            if let Some(extra) = self.sent.pop() {
                touched = true;
                if let Err(e) = self.bot.delete_message(self.chat, extra.id).await {
                    tracing::debug!(error = %e, "could not delete a surplus message");
                }
            }
        }
        if touched {
            self.throttle.record();
        }
        Ok(())
    }
}
