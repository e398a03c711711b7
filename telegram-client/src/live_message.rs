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

use crate::{
    render::{
        html::{escape, markdown_to_html},
        split::{TELEGRAM_LIMIT, split_html, telegram_len},
    },
    telegram::{Tg, retry_after, try_edit, try_send},
    throttle::EditThrottle,
};

/// Attempts at delivering the final text after errors other than `RetryAfter`.
const FINAL_ATTEMPTS: u32 = 5;

/// Where an answer stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Text is still arriving.
    Streaming,
    /// The whole answer arrived.
    Complete,
    /// The model failed, for this reason.
    Failed(String),
    /// Stopped before it was complete.
    Interrupted,
}

/// What an answer looks like at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The Markdown received so far.
    pub content: String,
    /// Where it stands.
    pub phase: Phase,
}

impl Snapshot {
    fn is_final(&self) -> bool {
        self.phase != Phase::Streaming
    }
}

/// Who wrote an answer, shown at the head of its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    /// A model taking part in the discussion.
    Model(String),
    /// A model writing the consensus summary.
    Summary(String),
}

impl Author {
    fn model(&self) -> &str {
        match self {
            Author::Model(model) | Author::Summary(model) => model,
        }
    }

    fn header(&self, continued: bool, streaming: bool) -> String {
        let mut header = match self {
            Author::Model(model) => format!("🤖 <b>{}</b>", escape(model)),
            Author::Summary(model) => format!("🧾 <b>Consensus</b> · {}", escape(model)),
        };
        if continued {
            header.push_str(" <i>(continued)</i>");
        }
        if streaming {
            header.push_str(" ✍️");
        }
        header
    }
}

/// The messages that show a snapshot, in order, each within Telegram's limit.
#[must_use]
pub fn render_parts(author: &Author, snapshot: &Snapshot) -> Vec<String> {
    let streaming = snapshot.phase == Phase::Streaming;
    let mut body = markdown_to_html(&snapshot.content);
    match &snapshot.phase {
        Phase::Streaming if body.is_empty() => body.push_str("<i>thinking…</i>"),
        Phase::Failed(reason) => {
            let warning = format!("⚠️ {}: {}", escape(author.model()), escape(reason));
            if body.is_empty() {
                return vec![warning];
            }
            body.push_str("\n\n");
            body.push_str(&warning);
        }
        Phase::Interrupted => {
            if !body.is_empty() {
                body.push_str("\n\n");
            }
            body.push_str("<i>⏹ stopped</i>");
        }
        Phase::Complete if body.is_empty() => body.push_str("<i>(no answer)</i>"),
        _ => {}
    }
    let longest_header = telegram_len(&author.header(true, true));
    let limit = TELEGRAM_LIMIT - longest_header - 2;
    split_html(&body, limit)
        .into_iter()
        .enumerate()
        .map(|(i, part)| format!("{}\n{part}", author.header(i > 0, streaming)))
        .collect()
}

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

/// The handle of one streaming answer.
pub struct LiveMessage {
    snapshot: watch::Sender<Snapshot>,
    task: JoinHandle<()>,
}

impl LiveMessage {
    /// Shows a new answer in `chat` and keeps it up to date, editing each of
    /// its messages at most once per `interval`. While it streams, its last
    /// message carries a Stop button for `discussion_id`, when known.
    #[must_use]
    pub fn spawn(
        bot: Tg,
        chat: ChatId,
        author: Author,
        interval: Duration,
        discussion_id: Option<String>,
    ) -> Self {
        let initial = Snapshot {
            content: String::new(),
            phase: Phase::Streaming,
        };
        let (snapshot, updates) = watch::channel(initial);
        let sync = Sync {
            bot,
            chat,
            author,
            sent: Vec::new(),
            throttle: EditThrottle::new(interval),
            stop: discussion_id.map(|id| {
                InlineKeyboardMarkup::new([[InlineKeyboardButton::callback(
                    "⏹ Stop",
                    stop_data(&id),
                )]])
            }),
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
            match self.show(&snapshot).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::html::to_plain_text;

    fn snapshot(content: &str, phase: Phase) -> Snapshot {
        Snapshot {
            content: content.to_owned(),
            phase,
        }
    }

    #[test]
    fn a_streaming_answer_has_a_placeholder_and_a_marker() {
        let parts = render_parts(
            &Author::Model("m/a".into()),
            &snapshot("", Phase::Streaming),
        );
        assert_eq!(parts, vec!["🤖 <b>m/a</b> ✍️\n<i>thinking…</i>"]);
    }

    #[test]
    fn a_complete_answer_ends_with_its_text() {
        let parts = render_parts(
            &Author::Model("m/a".into()),
            &snapshot("**Yes** & no", Phase::Complete),
        );
        assert_eq!(parts, vec!["🤖 <b>m/a</b>\n<b>Yes</b> &amp; no"]);
    }

    #[test]
    fn a_failure_without_text_is_one_warning_line() {
        let parts = render_parts(
            &Author::Model("m/<a>".into()),
            &snapshot("", Phase::Failed("timed out".into())),
        );
        assert_eq!(parts, vec!["⚠️ m/&lt;a&gt;: timed out"]);
    }

    #[test]
    fn a_failure_keeps_the_partial_text() {
        let parts = render_parts(
            &Author::Model("m".into()),
            &snapshot("half", Phase::Failed("broken stream".into())),
        );
        assert_eq!(
            to_plain_text(&parts[0]),
            "🤖 m\nhalf\n\n⚠️ m: broken stream"
        );
    }

    #[test]
    fn long_answers_continue_in_more_messages_with_headers() {
        let content = "word ".repeat(2000);
        let parts = render_parts(
            &Author::Summary("m".into()),
            &snapshot(&content, Phase::Complete),
        );
        assert!(parts.len() >= 3);
        assert!(parts[0].starts_with("🧾 <b>Consensus</b> · m\n"));
        assert!(parts[1].starts_with("🧾 <b>Consensus</b> · m <i>(continued)</i>\n"));
        assert!(parts.iter().all(|p| telegram_len(p) <= TELEGRAM_LIMIT));
        let words: usize = parts.iter().map(|p| p.matches("word").count()).sum();
        assert_eq!(words, 2000);
    }
}
