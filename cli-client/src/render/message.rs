//! One message as a terminal section (header, Markdown body, ✓/✗ footer) and
//! as a plain `## <model>` block; shared by the live view and `moai show`.

use moai_proto::v1::{Message, MessageRole, MessageStatus, RoundMode};

use super::format;
use super::markdown;
use super::style::Theme;

/// How a message ended, as its footer says.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// ✓ and the stats (latency, tokens, cost).
    Complete(String),
    /// Cut short by a stop.
    Interrupted(String),
    /// ✗ and the reason.
    Failed(String),
    /// Still being written (a `show` of a running discussion).
    Streaming,
    /// No footer (the user's own words).
    None,
}

impl Ending {
    /// The ending of a stored message.
    pub fn of(message: &Message) -> Self {
        if message.role == MessageRole::User as i32 {
            return Ending::None;
        }
        match MessageStatus::try_from(message.status) {
            Ok(MessageStatus::Failed) => Ending::Failed(message.error.clone()),
            Ok(MessageStatus::Interrupted) => Ending::Interrupted(message.error.clone()),
            Ok(MessageStatus::Streaming) => Ending::Streaming,
            _ => Ending::Complete(format::message_stats(message)),
        }
    }
}

/// Who speaks, as a section header names them.
pub fn speaker(message: &Message) -> String {
    match MessageRole::try_from(message.role) {
        Ok(MessageRole::User) => "you".to_string(),
        Ok(MessageRole::Summary) => format!("summary by {}", message.model),
        _ if !message.answered_by.is_empty() => {
            format!("{} (answered by {})", message.model, message.answered_by)
        }
        _ => message.model.clone(),
    }
}

/// What a round mode is called in headers.
pub fn mode_label(mode: RoundMode) -> &'static str {
    match mode {
        RoundMode::Parallel => "all at once",
        RoundMode::Sequential => "in turns",
        RoundMode::Mention => "mention",
        RoundMode::Summary => "summary",
        RoundMode::Unspecified => "round",
    }
}

/// Left margin of section bodies: none on narrow terminals.
pub fn body_indent(width: usize) -> usize {
    if width >= 50 { 2 } else { 0 }
}

/// A section for the terminal: `▌ model · round N`, the rendered body, the footer.
pub fn section(
    who: &str,
    round: Option<u32>,
    content: &str,
    ending: &Ending,
    width: usize,
    theme: Theme,
) -> Vec<String> {
    let indent = " ".repeat(body_indent(width));
    let mut lines = Vec::new();
    let mut header = format!(
        "{} {}",
        theme.paint(&theme.model(), "▌"),
        theme.paint(&theme.model(), who)
    );
    if let Some(n) = round.filter(|n| *n > 0) {
        header.push_str(&theme.paint(&theme.dim(), &format!(" · round {n}")));
    }
    lines.push(header);
    let body_width = width.saturating_sub(indent.len());
    let failed = matches!(ending, Ending::Failed(_));
    for line in markdown::render(content, body_width, theme) {
        let line = if failed {
            theme.paint(&theme.dim(), &console::strip_ansi_codes(&line))
        } else {
            line
        };
        lines.push(format!("{indent}{line}").trim_end().to_string());
    }
    let footer = match ending {
        Ending::Complete(stats) => Some(format!(
            "{} {}",
            theme.paint(&theme.ok(), "✓"),
            theme.paint(&theme.dim(), stats)
        )),
        Ending::Interrupted(why) => {
            let why = if why.is_empty() { "interrupted" } else { why };
            Some(theme.paint(&theme.warn(), &format!("⏹ {why}")))
        }
        Ending::Failed(why) => Some(theme.paint(
            &theme.error(),
            &format!("✗ {}", if why.is_empty() { "failed" } else { why }),
        )),
        Ending::Streaming => Some(theme.paint(&theme.warn(), "… still being written")),
        Ending::None => None,
    };
    if let Some(footer) = footer {
        for (i, line) in super::text::wrap(&console::strip_ansi_codes(&footer), body_width)
            .into_iter()
            .enumerate()
        {
            // Keep the footer's colors on its first line; continuation lines are dim.
            let line = if i == 0 && super::text::width(&footer) <= body_width {
                footer.clone()
            } else {
                theme.paint(&theme.dim(), &line)
            };
            lines.push(format!("{indent}{line}"));
        }
    }
    lines.push(String::new());
    lines
}

/// A plain block: `## <model>`, a blank line, the content as written.
pub fn plain_block(who: &str, content: &str) -> String {
    format!("## {who}\n\n{}\n\n", content.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_has_header_body_and_footer() {
        let lines = section(
            "m/x",
            Some(2),
            "Hello **world**",
            &Ending::Complete("1.0s".into()),
            80,
            Theme::new(false),
        );
        assert_eq!(
            lines,
            ["▌ m/x · round 2", "  Hello **world**", "  ✓ 1.0s", ""]
        );
    }

    #[test]
    fn a_failed_section_says_why() {
        let lines = section(
            "m/x",
            None,
            "",
            &Ending::Failed("timeout".into()),
            30,
            Theme::new(false),
        );
        assert_eq!(lines, ["▌ m/x", "✗ timeout", ""]);
    }

    #[test]
    fn plain_blocks_are_markdown() {
        assert_eq!(plain_block("a/b", "Hi\n"), "## a/b\n\nHi\n\n");
    }
}
