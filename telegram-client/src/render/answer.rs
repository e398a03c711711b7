//! How one model's answer looks in the chat: a header naming its author,
//! its Markdown as Telegram HTML, how it ended, split into messages that
//! fit Telegram's limit.

use super::{
    html::{escape, markdown_to_html},
    split::{TELEGRAM_LIMIT, split_html, telegram_len},
};

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
    /// The bot stopped while the answer was still coming; after a restart
    /// it finishes the answer in these messages.
    Paused,
}

/// What a paused answer says at its end.
pub const PAUSED_NOTE: &str = "<i>⏸ The bot is restarting; it finishes this answer here.</i>";

/// What an answer looks like at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The Markdown received so far.
    pub content: String,
    /// Where it stands.
    pub phase: Phase,
    /// What the model does before its answer starts, when it said.
    pub before: Before,
}

/// What a model that has not begun its answer is doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Before {
    /// Nothing known: just not there yet.
    #[default]
    Unknown,
    /// Waiting more than a second for a slot at its provider.
    Queued,
    /// A reasoning model thinking (its thinking is not shown).
    Thinking,
}

impl Snapshot {
    /// Whether the answer has ended.
    #[must_use]
    pub fn is_final(&self) -> bool {
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
    /// The model that wrote the answer.
    #[must_use]
    pub fn model(&self) -> &str {
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
        Phase::Streaming if body.is_empty() => body.push_str(match snapshot.before {
            Before::Unknown => "<i>thinking…</i>",
            Before::Queued => "<i>⏳ queued at the provider…</i>",
            Before::Thinking => "<i>💭 thinking…</i>",
        }),
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
        Phase::Paused => {
            if !body.is_empty() {
                body.push_str("\n\n");
            }
            body.push_str(PAUSED_NOTE);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::html::to_plain_text;

    fn snapshot(content: &str, phase: Phase) -> Snapshot {
        Snapshot {
            content: content.to_owned(),
            phase,
            before: Before::Unknown,
        }
    }

    #[test]
    fn a_paused_answer_keeps_its_text_and_says_it_will_be_finished() {
        let parts = render_parts(
            &Author::Model("m/a".into()),
            &snapshot("So far", Phase::Paused),
        );
        assert_eq!(
            parts,
            vec![format!("🤖 <b>m/a</b>\nSo far\n\n{PAUSED_NOTE}")]
        );
        assert!(snapshot("", Phase::Paused).is_final(), "its editor ends");
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
    fn a_reasoning_model_shows_it_thinks_until_the_answer_starts() {
        let author = Author::Model("m/a".into());
        let mut thinking = snapshot("", Phase::Streaming);
        thinking.before = Before::Thinking;
        assert_eq!(
            render_parts(&author, &thinking),
            vec!["🤖 <b>m/a</b> ✍️\n<i>💭 thinking…</i>"]
        );
        thinking.content = "The answer".into();
        assert_eq!(
            render_parts(&author, &thinking),
            vec!["🤖 <b>m/a</b> ✍️\nThe answer"]
        );
        let mut queued = snapshot("", Phase::Streaming);
        queued.before = Before::Queued;
        assert!(render_parts(&author, &queued)[0].contains("queued at the provider"));
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
