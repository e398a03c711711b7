//! The live terminal view: finished answers scroll up as rendered sections,
//! and below them a small region that is redrawn in place shows every model
//! still writing (spinner, elapsed time, the tail of its text) and those
//! waiting for their turn.

use std::io::Write;

use moai_proto::v1::DiscussionEvent;
use moai_proto::v1::discussion_event::Payload;

use super::Renderer;
use super::format;
use super::markdown;
use super::message::{Ending, body_indent, mode_label, section};
use super::progress::{Entry, Phase, Progress};
use super::style::Theme;
use super::text::{truncate, width, wrap};

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const HIDE_CURSOR: &str = "\x1b[?25l";
const SHOW_CURSOR: &str = "\x1b[?25h";

/// Draws on a terminal.
pub struct Live<W: Write> {
    out: W,
    theme: Theme,
    /// Widths of the region's lines currently on screen.
    drawn: Vec<usize>,
    frame: usize,
    /// Fixed size for tests; else the terminal's.
    size: Option<(usize, usize)>,
    cursor_hidden: bool,
    show_reasoning: bool,
}

impl<W: Write> Live<W> {
    /// A live view writing to `out`; `size` (rows, columns) fixes the size (tests).
    pub fn new(out: W, theme: Theme, size: Option<(usize, usize)>) -> Self {
        Live {
            out,
            theme,
            drawn: Vec::new(),
            frame: 0,
            size,
            cursor_hidden: false,
            show_reasoning: false,
        }
    }

    /// Also print each answer's reasoning (dim) between its header and body.
    pub fn show_reasoning(mut self, on: bool) -> Self {
        self.show_reasoning = on;
        self
    }

    fn size(&self) -> (usize, usize) {
        self.size.unwrap_or_else(|| {
            let (rows, cols) = console::Term::stdout().size();
            (usize::from(rows).max(5), usize::from(cols).max(20))
        })
    }

    /// The width sections are rendered to: the terminal's, up to a readable 120.
    fn text_width(&self) -> usize {
        self.size().1.min(120)
    }

    /// Erases the region, writes `lines` above it for good, and draws it again.
    fn commit(&mut self, lines: &[String], progress: &Progress) -> std::io::Result<()> {
        let mut buf = self.clear_sequence();
        for line in lines {
            buf.push_str(line);
            buf.push('\n');
        }
        buf.push_str(&self.region(progress));
        self.out.write_all(buf.as_bytes())?;
        self.out.flush()
    }

    fn redraw(&mut self, progress: &Progress) -> std::io::Result<()> {
        let mut buf = self.clear_sequence();
        buf.push_str(&self.region(progress));
        self.out.write_all(buf.as_bytes())?;
        self.out.flush()
    }

    fn clear_sequence(&mut self) -> String {
        let mut buf = String::new();
        if !self.cursor_hidden {
            buf.push_str(HIDE_CURSOR);
            self.cursor_hidden = true;
        }
        // Rows the region takes now: a terminal made narrower since it was
        // drawn has wrapped its longer lines onto more rows.
        let cols = self.size().1.max(1);
        let rows: usize = self.drawn.iter().map(|w| w.div_ceil(cols).max(1)).sum();
        if rows > 0 {
            buf.push_str(&format!("\x1b[{rows}F\x1b[J"));
        } else {
            buf.push_str("\r\x1b[J");
        }
        self.drawn.clear();
        buf
    }

    /// The region's text; records the widths of its lines in `drawn`.
    fn region(&mut self, progress: &Progress) -> String {
        let (rows, cols) = self.size();
        let streaming: Vec<&Entry> = progress.streaming().collect();
        let waiting = progress.waiting();
        let spin = SPINNER[self.frame % SPINNER.len()];
        let mut lines: Vec<String> = Vec::new();
        let headers = streaming.len() + usize::from(!waiting.is_empty());
        let budget = rows.saturating_sub(2).min(40).saturating_sub(headers);
        let per_entry = if streaming.is_empty() {
            0
        } else {
            budget / streaming.len()
        };
        let per_entry = if streaming.len() > 1 {
            per_entry.min(6)
        } else {
            per_entry.min(12)
        };
        let indent = body_indent(cols);
        for entry in &streaming {
            let mut header = format!(
                "{} {}",
                self.theme.paint(&self.theme.model(), spin),
                self.theme.paint(&self.theme.model(), &entry.model)
            );
            let mut facts = Vec::new();
            if entry.round > 0 {
                facts.push(format!("round {}", entry.round));
            }
            facts.push(format::duration(entry.started.elapsed()));
            if let Some(fallback) = &entry.answered_by {
                facts.push(format!("answered by {fallback}"));
            }
            if entry.text.is_empty() {
                facts.push(waiting_fact(entry));
            }
            header.push_str(
                &self
                    .theme
                    .paint(&self.theme.dim(), &format!(" · {}", facts.join(" · "))),
            );
            lines.push(fit(&header, cols));
            if entry.text.trim().is_empty() {
                continue;
            }
            // The Markdown so far, rendered as it will be at the end; its last lines show.
            let rendered = markdown::render(
                &entry.text,
                cols.saturating_sub(indent + 1).min(120),
                self.theme,
            );
            let skip = rendered.len().saturating_sub(per_entry);
            for line in rendered.into_iter().skip(skip) {
                lines.push(fit(&format!("{}{line}", " ".repeat(indent)), cols));
            }
        }
        if !waiting.is_empty() {
            let text = format!("◦ waiting: {}", waiting.join(", "));
            lines.push(
                self.theme
                    .paint(&self.theme.dim(), &truncate(&text, cols.saturating_sub(1))),
            );
        }
        // Never taller than the screen, or moving up would not reach its top.
        let max_lines = rows.saturating_sub(1).max(1);
        if lines.len() > max_lines {
            let hidden = lines.len() - (max_lines - 1);
            lines.truncate(max_lines - 1);
            lines.push(
                self.theme
                    .paint(&self.theme.dim(), &format!("… {hidden} more lines")),
            );
        }
        self.drawn = lines.iter().map(|l| width(l)).collect();
        lines.into_iter().map(|l| l + "\n").collect()
    }

    fn done_section(&self, entry: &Entry) -> Vec<String> {
        let ending = match (&entry.phase, &entry.message) {
            (Phase::Failed, _) => Ending::Failed(entry.error.clone().unwrap_or_default()),
            (_, Some(message)) => Ending::of(message),
            (Phase::Interrupted, None) => Ending::Interrupted(String::new()),
            _ => Ending::Complete(String::new()),
        };
        let who = match &entry.message {
            Some(m) => super::message::speaker(m),
            None => entry.model.clone(),
        };
        let mut lines = section(
            &who,
            Some(entry.round),
            &entry.text,
            &ending,
            self.text_width(),
            self.theme,
        );
        if self.show_reasoning && !entry.reasoning.trim().is_empty() {
            let indent = body_indent(self.text_width());
            let thinking = wrap(
                &format!("💭 {}", entry.reasoning.trim()),
                self.text_width().saturating_sub(indent + 1),
            )
            .into_iter()
            .map(|line| {
                format!(
                    "{}{}",
                    " ".repeat(indent),
                    self.theme.paint(&self.theme.dim(), &line)
                )
            });
            let at = lines.len().min(1);
            lines.splice(at..at, thinking);
        }
        lines
    }

    fn restore(&mut self) -> std::io::Result<()> {
        let mut buf = self.clear_sequence();
        buf.push_str(SHOW_CURSOR);
        self.cursor_hidden = false;
        self.out.write_all(buf.as_bytes())?;
        self.out.flush()
    }
}

/// What a model that has not begun its answer is doing: queued for a slot
/// at its provider, thinking (with a running count of its reasoning), or
/// just not there yet.
fn waiting_fact(entry: &Entry) -> String {
    if !entry.reasoning.is_empty() {
        let words = entry.reasoning.split_whitespace().count();
        return format!("thinking… {}", plural(words, "word"));
    }
    match entry.queued_ms {
        Some(ms) if ms >= 1000 => format!("queued at the provider ({}s)…", ms / 1000),
        _ => "thinking…".into(),
    }
}

/// Cuts a styled line to the terminal width so that it never wraps (a wrapped
/// line would break the count of lines to redraw).
fn fit(line: &str, cols: usize) -> String {
    if width(line) < cols {
        line.to_string()
    } else {
        console::truncate_str(line, cols.saturating_sub(1), "…").into_owned()
    }
}

impl<W: Write> Renderer for Live<W> {
    fn event(
        &mut self,
        event: &DiscussionEvent,
        progress: &Progress,
        touched: Option<usize>,
    ) -> std::io::Result<()> {
        match event.payload.as_ref() {
            Some(Payload::RoundStarted(r)) => {
                let mode = moai_proto::v1::RoundMode::try_from(r.mode).unwrap_or_default();
                let title = format!(
                    "── Round {} · {} · {} ",
                    r.number,
                    mode_label(mode),
                    plural(r.models.len(), "model")
                );
                let rule = "─".repeat(self.text_width().saturating_sub(width(&title)).min(40));
                let line = self
                    .theme
                    .paint(&self.theme.dim(), &format!("{title}{rule}"));
                self.commit(&[line, String::new()], progress)
            }
            Some(Payload::MessageCompleted(_) | Payload::MessageFailed(_)) => {
                let Some(entry) = touched.and_then(|i| progress.entries.get(i)) else {
                    return self.redraw(progress);
                };
                let mut lines = self.done_section(entry);
                if let Some(message) = &entry.message {
                    lines.extend(super::council::message_notes(message, self.theme));
                }
                self.commit(&lines, progress)
            }
            Some(Payload::RoundCompleted(round)) => {
                let lines = super::council::round_lines(round, self.theme, self.text_width());
                self.commit(&lines, progress)
            }
            Some(Payload::MessageDelta(_)) => Ok(()),
            _ => self.redraw(progress),
        }
    }

    fn tick(&mut self, progress: &Progress) -> std::io::Result<()> {
        self.frame += 1;
        self.redraw(progress)
    }

    fn finish(&mut self, progress: &Progress) -> std::io::Result<()> {
        self.restore()?;
        let (answered, failed) = progress.outcome();
        let mut facts = vec![format::duration(progress.started.elapsed())];
        facts.extend(format::cost(progress.cost()));
        if let Some(left) = progress.left_today {
            facts.push(format!("${left:.2} left today"));
        }
        let facts = self
            .theme
            .paint(&self.theme.dim(), &format!("· {}", facts.join(" · ")));
        let line = match progress.tally() {
            None => self.theme.paint(&self.theme.dim(), "Nothing new."),
            // Every model failed: the sections say why and the error line follows.
            Some(_) if answered.is_empty() => return self.out.flush(),
            Some(tally) if failed.is_empty() => format!(
                "{} {tally} {facts}",
                self.theme.paint(&self.theme.ok(), "✓")
            ),
            Some(tally) => format!(
                "{} {tally} {facts}",
                self.theme.paint(&self.theme.warn(), "⚠")
            ),
        };
        let cols = self.size().1;
        if width(&line) < cols {
            writeln!(self.out, "{line}")?;
        } else {
            for part in wrap(&console::strip_ansi_codes(&line), cols.saturating_sub(1)) {
                writeln!(self.out, "{part}")?;
            }
        }
        if !progress.discussion_id.is_empty() {
            let hint =
                "next: moai discuss · moai ask @<model> <message> · moai summarize · moai export";
            writeln!(
                self.out,
                "{}",
                self.theme.paint(
                    &self.theme.dim(),
                    &truncate(hint, self.size().1.saturating_sub(1))
                )
            )?;
        }
        self.out.flush()
    }

    fn detach(&mut self, _progress: &Progress) -> std::io::Result<()> {
        self.restore()
    }
}

impl<W: Write> Drop for Live<W> {
    fn drop(&mut self) {
        if self.cursor_hidden {
            let _ = self.out.write_all(SHOW_CURSOR.as_bytes());
            let _ = self.out.flush();
        }
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;
