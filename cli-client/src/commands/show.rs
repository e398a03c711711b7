//! `moai show [<DISCUSSION>]`: a discussion with all of its rounds.

use moai_proto::v1::{Discussion, GetDiscussionRequest, RoundMode};

use crate::args::DiscussionRef;
use crate::errors::{CliError, ExitCode};
use crate::output::Mode;
use crate::render::council;
use crate::render::format::{cost, timestamp};
use crate::render::message::{Ending, mode_label, section, speaker};
use crate::resolve;
use crate::session::Session;

use super::discussions::status_name;

/// Prints it: sections on a terminal, Markdown when piped, JSON with `--json`.
///
/// # Errors
/// No discussion, the server's error.
pub async fn run(session: &mut Session, args: DiscussionRef) -> Result<ExitCode, CliError> {
    let discussion_id = resolve::discussion_id(session, args.discussion.as_deref()).await?;
    let client = session.client().await?;
    let discussion = client
        .discussions
        .clone()
        .get_discussion(GetDiscussionRequest { discussion_id })
        .await
        .map_err(client.error("GetDiscussion"))?
        .into_inner()
        .discussion
        .ok_or_else(|| CliError::Internal("the server returned no discussion".into()))?;
    let lines = match session.out.mode {
        Mode::Json => return session.out.json(&discussion).map(|()| ExitCode::Success),
        Mode::Live => terminal(session, &discussion),
        Mode::Plain => vec![markdown(&discussion)],
    };
    session.out.page(&lines)?;
    Ok(ExitCode::Success)
}

fn facts(d: &Discussion) -> String {
    let mut facts = vec![
        format!("discussion {}", d.id),
        status_name(d.status),
        timestamp(d.create_time.as_ref()),
    ];
    facts.extend(d.usage.as_ref().and_then(|u| cost(u.cost_usd)));
    facts.join(" · ")
}

fn terminal(session: &Session, d: &Discussion) -> Vec<String> {
    let theme = session.out.theme;
    let width = session.out.text_width();
    let mut lines = vec![
        theme.paint(&theme.bold(), &d.question),
        theme.paint(&theme.dim(), &facts(d)),
        String::new(),
    ];
    for round in &d.rounds {
        let mode = RoundMode::try_from(round.mode).unwrap_or_default();
        lines.push(theme.paint(
            &theme.dim(),
            &format!("── Round {} · {} ──", round.number, mode_label(mode)),
        ));
        lines.push(String::new());
        for m in &round.messages {
            lines.extend(section(
                &speaker(m),
                None,
                &m.content,
                &Ending::of(m),
                width,
                theme,
            ));
            lines.extend(council::message_notes(m, theme));
        }
        lines.extend(council::leaderboard_lines(&round.ranking, theme, width));
    }
    if d.rounds.is_empty() {
        lines.push(theme.paint(&theme.dim(), "No rounds yet."));
    }
    lines
}

/// The discussion as a Markdown document (for pipes).
fn markdown(d: &Discussion) -> String {
    let mut doc = format!("# {}\n\n{}\n\n", d.question.trim(), facts(d));
    for round in &d.rounds {
        let mode = RoundMode::try_from(round.mode).unwrap_or_default();
        doc.push_str(&format!(
            "## Round {} · {}\n\n",
            round.number,
            mode_label(mode)
        ));
        for m in &round.messages {
            doc.push_str(&format!(
                "### {}\n\n{}\n\n",
                speaker(m),
                m.content.trim_end()
            ));
            match Ending::of(m) {
                Ending::Failed(why) => doc.push_str(&format!("(failed: {why})\n\n")),
                Ending::Interrupted(_) => doc.push_str("(interrupted)\n\n"),
                _ => {}
            }
            for note in council::message_notes(m, crate::render::style::Theme::new(false)) {
                if !note.is_empty() {
                    doc.push_str(note.trim_start());
                    doc.push_str("\n\n");
                }
            }
        }
        doc.push_str(&council::leaderboard_markdown(&round.ranking));
    }
    doc.trim_end().to_string()
}
