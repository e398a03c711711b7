//! Output for pipes and files: no escape codes; each answer whole, in the
//! order it completed, under a `## <model>` header. Notes go to stderr.

use std::io::Write;

use moai_proto::v1::discussion_event::Payload;
use moai_proto::v1::{DiscussionEvent, RoundMode};

use super::Renderer;
use super::message::plain_block;
use super::progress::{Phase, Progress};

/// Writes Markdown blocks to `out` and notes to `err`.
pub struct Plain<W: Write, E: Write> {
    out: W,
    err: E,
    show_reasoning: bool,
}

impl<W: Write, E: Write> Plain<W, E> {
    /// Plain output to `out`, notes to `err`.
    pub fn new(out: W, err: E) -> Self {
        Plain {
            out,
            err,
            show_reasoning: false,
        }
    }

    /// Also print each answer's reasoning, as a quote above it.
    pub fn show_reasoning(mut self, on: bool) -> Self {
        self.show_reasoning = on;
        self
    }
}

/// Thinking as a Markdown quote: `> 💭 …` on every line.
fn quoted(reasoning: &str) -> String {
    reasoning
        .trim()
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i == 0 {
                format!("> 💭 {line}")
            } else {
                format!("> {line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl<W: Write, E: Write> Renderer for Plain<W, E> {
    fn event(
        &mut self,
        event: &DiscussionEvent,
        progress: &Progress,
        touched: Option<usize>,
    ) -> std::io::Result<()> {
        match event.payload.as_ref() {
            Some(Payload::RoundStarted(r)) => match RoundMode::try_from(r.mode) {
                Ok(RoundMode::Sequential) => write!(self.out, "# Round {}\n\n", r.number)?,
                Ok(RoundMode::Summary) => write!(self.out, "# Summary\n\n")?,
                _ => {}
            },
            Some(Payload::MessageCompleted(_)) => {
                if let Some(entry) = touched.and_then(|i| progress.entries.get(i)) {
                    let who = entry
                        .message
                        .as_ref()
                        .map_or_else(|| entry.model.clone(), super::message::speaker);
                    let text = if self.show_reasoning && !entry.reasoning.trim().is_empty() {
                        format!("{}\n\n{}", quoted(&entry.reasoning), entry.text)
                    } else {
                        entry.text.clone()
                    };
                    let mut block = plain_block(&who, &text);
                    if entry.phase == Phase::Interrupted {
                        block = block.trim_end().to_string() + "\n\n(interrupted)\n\n";
                    }
                    self.out.write_all(block.as_bytes())?;
                }
            }
            Some(Payload::MessageFailed(f)) => {
                writeln!(self.err, "moai: {} failed: {}", f.model, f.error)?;
            }
            _ => {}
        }
        self.out.flush()
    }

    fn finish(&mut self, progress: &Progress) -> std::io::Result<()> {
        let (answered, failed) = progress.outcome();
        if let Some(tally) = progress
            .tally()
            .filter(|_| !failed.is_empty() && !answered.is_empty())
        {
            writeln!(self.err, "moai: {tally}")?;
        }
        self.out.flush()
    }

    fn detach(&mut self, _progress: &Progress) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moai_proto::v1::{Message, MessageCompleted, MessageFailed, MessageStatus};

    #[test]
    fn answers_print_whole_under_their_model() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        {
            let mut plain = Plain::new(&mut out, &mut err);
            let mut progress = Progress::new();
            let done = |id: &str, model: &str, text: &str| DiscussionEvent {
                payload: Some(Payload::MessageCompleted(MessageCompleted {
                    message: Some(Message {
                        id: id.into(),
                        model: model.into(),
                        content: text.into(),
                        status: MessageStatus::Complete as i32,
                        ..Default::default()
                    }),
                })),
                ..Default::default()
            };
            let failed = DiscussionEvent {
                payload: Some(Payload::MessageFailed(MessageFailed {
                    message_id: "3".into(),
                    model: "c".into(),
                    error: "HTTP 500".into(),
                    content: String::new(),
                    ..Default::default()
                })),
                ..Default::default()
            };
            for event in [
                done("2", "b", "Second **bold**"),
                done("1", "a", "First"),
                failed,
            ] {
                let touched = progress.apply(&event);
                plain.event(&event, &progress, touched).expect("writes");
            }
            plain.finish(&progress).expect("finishes");
        }
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "## b\n\nSecond **bold**\n\n## a\n\nFirst\n\n"
        );
        let err = String::from_utf8(err).expect("utf-8");
        assert!(err.contains("c failed: HTTP 500"));
        assert!(err.contains("2 of 3 models answered; failed: c"));
    }
}
