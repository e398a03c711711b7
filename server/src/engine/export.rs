//! Discussions as documents: Markdown for people, JSON (the full Discussion
//! in proto3 JSON) for programs. Model output is embedded so that its own
//! Markdown, fences and HTML cannot break the document around it.

use super::DiscussionView;
use crate::domain::{DiscussionOutcome, MessageRole, MessageStatus, Review, RoundMode, Standing};
use crate::store::ProjectRecord;

/// Document formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Json,
}

/// A rendered document.
#[derive(Clone, Debug)]
pub struct Document {
    pub content: String,
    pub file_name: String,
    pub media_type: &'static str,
}

/// Renders `view` of a discussion in `project`.
pub fn render(
    view: &DiscussionView,
    project: &ProjectRecord,
    format: Format,
) -> Result<Document, String> {
    let date = civil_date(view.discussion.create_time);
    let stem = format!("{}-{}", slug(&project.name), date);
    match format {
        Format::Markdown => Ok(Document {
            content: markdown(view, project),
            file_name: format!("{stem}.md"),
            media_type: "text/markdown",
        }),
        Format::Json => {
            let d =
                crate::wire::discussion(&view.discussion, &view.rounds, view.usage, view.last_seq);
            let content = moai_proto::json::to_json(&d, "moai.v1.Discussion", true, true)
                .map_err(|e| e.to_string())?;
            Ok(Document {
                content,
                file_name: format!("{stem}.json"),
                media_type: "application/json",
            })
        }
    }
}

fn markdown(view: &DiscussionView, project: &ProjectRecord) -> String {
    let d = &view.discussion;
    let mut out = String::new();
    let title = d.question.lines().next().unwrap_or("").trim();
    let title: String = title.chars().take(80).collect();
    out.push_str(&format!(
        "# {}: {}\n\n",
        inline(&project.name),
        inline(&title)
    ));
    out.push_str(&format!("- **Project:** {}\n", inline(&project.name)));
    out.push_str(&format!(
        "- **Models:** {}\n",
        project
            .models
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.push_str(&format!(
        "- **Date:** {} UTC\n",
        civil_datetime(d.create_time)
    ));
    out.push_str(&format!("- **Kind:** {}\n", d.kind.as_str()));
    out.push_str(&format!("- **Status:** {}\n", d.status.as_str()));
    match d.outcome {
        Some(DiscussionOutcome::Consensus) => out.push_str(&format!(
            "- **Outcome:** consensus after round {}\n",
            d.consensus_round
        )),
        Some(DiscussionOutcome::NoConsensus) => out.push_str("- **Outcome:** no consensus\n"),
        None => {}
    }
    out.push('\n');
    out.push_str("## Question\n\n");
    out.push_str(&sanitize(&d.question));
    out.push_str("\n\n");
    for round in &view.rounds {
        let heading = match round.mode {
            RoundMode::Parallel => format!("Round {} · everyone at once", round.number),
            RoundMode::Sequential => format!("Round {} · in turns", round.number),
            RoundMode::Mention => format!("Round {} · mention", round.number),
            RoundMode::Summary => "Consensus summary".to_owned(),
            RoundMode::Review => format!(
                "Round {} · anonymous peer review of round {}",
                round.number, round.reviewed_round
            ),
        };
        out.push_str(&format!("## {heading}\n\n"));
        if round.mode == RoundMode::Review {
            out.push_str(&leaderboard(&round.ranking()));
        }
        for m in &round.messages {
            let who = match m.role {
                MessageRole::User if m.author_name.is_empty() => format!("You → @{}", m.model),
                MessageRole::User => format!("{} → @{}", m.author_name, m.model),
                MessageRole::Model => m.model.clone(),
                MessageRole::Summary => format!("Summary by {}", m.model),
                MessageRole::Reviewer => format!("Review by {}", m.model),
                MessageRole::Judge => format!("Judgement by {}", m.model),
            };
            let mark = match m.status {
                MessageStatus::Complete => "",
                MessageStatus::Failed => " ⚠️ failed",
                MessageStatus::Interrupted => " ⏹ interrupted",
                MessageStatus::Streaming => " … in progress",
            };
            out.push_str(&format!("### {}{mark}\n\n", inline(&who)));
            if !m.error.is_empty() {
                out.push_str(&format!(
                    "> **{}:** {}\n\n",
                    if m.status == MessageStatus::Failed {
                        "Error"
                    } else {
                        "Note"
                    },
                    inline(&m.error)
                ));
            }
            if !m.content.trim().is_empty() {
                out.push_str(&sanitize(&m.content));
                out.push_str("\n\n");
            }
            if let Some(review) = &m.review {
                out.push_str(&review_lines(review));
            }
            if m.role == MessageRole::Judge {
                out.push_str(match m.consensus {
                    Some(true) => "**Verdict:** consensus\n\n",
                    Some(false) => "**Verdict:** no consensus\n\n",
                    None => "**Verdict:** none given\n\n",
                });
            }
            if m.role != MessageRole::User {
                out.push_str(&format!(
                    "<sub>{} ms · {} prompt + {} completion tokens · ${:.4}</sub>\n\n",
                    m.latency_ms, m.prompt_tokens, m.completion_tokens, m.cost_usd
                ));
            }
        }
    }
    out.push_str(
        "## Totals\n\n| prompt tokens | completion tokens | cost (USD) |\n| ---: | ---: | ---: |\n",
    );
    out.push_str(&format!(
        "| {} | {} | {:.4} |\n",
        view.usage.prompt_tokens, view.usage.completion_tokens, view.usage.cost_usd
    ));
    out
}

/// A review round's leaderboard as a table; a note when no review could be read.
fn leaderboard(standings: &[Standing]) -> String {
    if standings.is_empty() {
        return "_No review could be read, so there is no leaderboard._\n\n".to_owned();
    }
    let mut out = String::from(
        "### Leaderboard\n\n| # | model | average rank | votes |\n| ---: | --- | ---: | ---: |\n",
    );
    for s in standings {
        out.push_str(&format!(
            "| {} | `{}` | {:.2} | {} |\n",
            s.place,
            code(&s.model),
            s.average_rank,
            s.votes
        ));
    }
    out.push('\n');
    out
}

/// What a reviewer saw and concluded: its labels and its ranking.
fn review_lines(review: &Review) -> String {
    let labels: Vec<String> = review
        .labels
        .iter()
        .map(|l| format!("{} = `{}`", inline(&l.label), code(&l.model)))
        .collect();
    let ranking = if review.unparsed.is_empty() {
        review
            .ranking
            .iter()
            .map(|m| format!("`{}`", code(m)))
            .collect::<Vec<_>>()
            .join(" > ")
    } else {
        format!(
            "not readable ({}); left out of the leaderboard",
            inline(&review.unparsed)
        )
    };
    format!(
        "**Labels:** {}\n\n**Ranking:** {ranking}\n\n",
        labels.join(", ")
    )
}

/// Text for inside a code span of our own Markdown.
fn code(text: &str) -> String {
    text.replace('`', "'").replace(['\n', '\r'], " ")
}

/// Text for a single line of our own Markdown (headings, list items).
fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Makes model output safe to embed: headings are pushed below our own
/// (level 4 and deeper), raw HTML outside code is escaped, and a code fence
/// left open is closed so it cannot swallow the rest of the document.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut fence: Option<(char, usize)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some((ch, len)) = fence {
            out.push_str(line);
            out.push('\n');
            let run = trimmed.chars().take_while(|c| *c == ch).count();
            if indent < 4 && run >= len && trimmed[run * ch.len_utf8()..].trim().is_empty() {
                fence = None;
            }
            continue;
        }
        if indent < 4 {
            if let Some(ch) = ['`', '~'].into_iter().find(|c| trimmed.starts_with(*c)) {
                let run = trimmed.chars().take_while(|c| *c == ch).count();
                if run >= 3 {
                    fence = Some((ch, run));
                    out.push_str(line);
                    out.push('\n');
                    continue;
                }
            }
            let hashes = trimmed.chars().take_while(|c| *c == '#').count();
            if (1..=6).contains(&hashes) && trimmed[hashes..].starts_with([' ', '\t'])
                || (1..=6).contains(&hashes) && trimmed.len() == hashes
            {
                let level = (hashes + 3).min(6);
                out.push_str(&"#".repeat(level));
                out.push_str(&escape_html_outside_code(&trimmed[hashes..]));
                out.push('\n');
                continue;
            }
        }
        out.push_str(&escape_html_outside_code(line));
        out.push('\n');
    }
    if let Some((ch, len)) = fence {
        out.push_str(&ch.to_string().repeat(len));
        out.push('\n');
    }
    while out.ends_with('\n') {
        out.pop();
    }
    out
}

/// Escapes `<` and `>` except inside inline code spans.
fn escape_html_outside_code(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '`' {
            let run = chars[i..].iter().take_while(|c| **c == '`').count();
            // Find the matching closing run of the same length.
            let mut j = i + run;
            let mut close = None;
            while j < chars.len() {
                if chars[j] == '`' {
                    let r = chars[j..].iter().take_while(|c| **c == '`').count();
                    if r == run {
                        close = Some(j);
                        break;
                    }
                    j += r;
                } else {
                    j += 1;
                }
            }
            match close {
                Some(end) => {
                    out.extend(&chars[i..end + run]);
                    i = end + run;
                }
                None => {
                    out.extend(&chars[i..i + run]);
                    i += run;
                }
            }
            continue;
        }
        match chars[i] {
            '<' => out.push_str("&lt;"),
            '>' if i > 0 => out.push_str("&gt;"),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

fn slug(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if c.is_alphanumeric() {
            s.extend(c.to_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    let s = s.trim_end_matches('-');
    if s.is_empty() {
        "discussion".to_owned()
    } else {
        s.chars().take(60).collect()
    }
}

/// `YYYY-MM-DD` of Unix milliseconds (UTC).
fn civil_date(ms: i64) -> String {
    let (y, m, d, _, _) = civil(ms);
    format!("{y:04}-{m:02}-{d:02}")
}

fn civil_datetime(ms: i64) -> String {
    let (y, m, d, hh, mm) = civil(ms);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}")
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil(ms: i64) -> (i64, u32, u32, u32, u32) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let to_u32 = |v: i64| u32::try_from(v).unwrap_or(0);
    (
        y,
        to_u32(m),
        to_u32(d),
        to_u32(rem / 3600),
        to_u32((rem % 3600) / 60),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_datetime(1_795_000_000_000), "2026-11-18 11:06");
    }

    #[test]
    fn unclosed_fence_is_closed_and_html_escaped() {
        let s =
            sanitize("# Title\nsee <script>alert(1)</script> and `<b>`\n```rust\nlet x = \"<y>\";");
        assert!(s.starts_with("#### Title"));
        assert!(s.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(s.contains("`<b>`"));
        assert!(s.contains("let x = \"<y>\";"));
        assert!(s.ends_with("```"));
    }

    #[test]
    fn closed_fences_stay_as_they_are() {
        let s = sanitize("~~~\n# not a heading\n~~~\n## real");
        assert!(s.contains("~~~\n# not a heading\n~~~"));
        assert!(s.ends_with("##### real"));
    }

    #[test]
    fn slugs_are_file_safe() {
        assert_eq!(slug("Rust: async / await?"), "rust-async-await");
        assert_eq!(slug("???"), "discussion");
    }
}
