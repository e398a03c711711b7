//! Peer review and consensus in the terminal: the leaderboard a review ends
//! with, each reviewer's ranking, and the line that ends a run until consensus.

use moai_proto::v1::{DiscussionOutcome, Message, RankedModel, RoundCompleted};

use super::style::Theme;
use super::table::Table;

/// The leaderboard as a table under a heading; nothing when no review could be read.
pub fn leaderboard_lines(ranking: &[RankedModel], theme: Theme, width: usize) -> Vec<String> {
    if ranking.is_empty() {
        return Vec::new();
    }
    let mut table = Table::new(&["#", "MODEL", "AVG RANK", "VOTES"]);
    for r in ranking {
        table.row(vec![
            r.place.to_string(),
            r.model.clone(),
            format!("{:.2}", r.average_rank),
            r.votes.to_string(),
        ]);
    }
    let mut lines = vec![theme.paint(&theme.bold(), "Leaderboard (mean rank, best first)")];
    lines.extend(table.render(theme, Some(width)));
    lines.push(String::new());
    lines
}

/// The leaderboard as a Markdown table, for pipes.
pub fn leaderboard_markdown(ranking: &[RankedModel]) -> String {
    if ranking.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "## Leaderboard\n\n| # | model | average rank | votes |\n| ---: | --- | ---: | ---: |\n",
    );
    for r in ranking {
        out.push_str(&format!(
            "| {} | {} | {:.2} | {} |\n",
            r.place, r.model, r.average_rank, r.votes
        ));
    }
    out.push('\n');
    out
}

/// What a reviewer's message concluded: its ranking, or why none was read.
pub fn review_note(message: &Message) -> Option<String> {
    if !message.ranking_unparsed.is_empty() {
        return Some(format!(
            "ranking not readable ({}): left out of the leaderboard",
            message.ranking_unparsed
        ));
    }
    (!message.ranking.is_empty()).then(|| format!("ranking: {}", message.ranking.join(" > ")))
}

/// The lines a finished reviewer's or judge's section ends with.
pub fn message_notes(message: &Message, theme: Theme) -> Vec<String> {
    match review_note(message).or_else(|| verdict_note(message).map(str::to_owned)) {
        Some(note) => vec![
            theme.paint(&theme.dim(), &format!("  {note}")),
            String::new(),
        ],
        None => Vec::new(),
    }
}

/// The lines a finished round ends with: its leaderboard, the run's outcome.
pub fn round_lines(round: &RoundCompleted, theme: Theme, width: usize) -> Vec<String> {
    let mut lines = leaderboard_lines(&round.ranking, theme, width);
    if let Some(outcome) = outcome_line(round) {
        lines.push(theme.paint(&theme.bold(), &outcome));
    }
    lines
}

/// The judge's verdict on a round, if it was judged.
pub fn verdict_note(message: &Message) -> Option<&'static str> {
    message.consensus.map(|yes| {
        if yes {
            "verdict: consensus"
        } else {
            "verdict: no consensus yet"
        }
    })
}

/// `consensus after round 2` or `no consensus after 5 rounds`, when this
/// round settled the run's outcome.
pub fn outcome_line(round: &RoundCompleted) -> Option<String> {
    match DiscussionOutcome::try_from(round.outcome) {
        Ok(DiscussionOutcome::Consensus) => Some(format!("consensus after round {}", round.number)),
        Ok(DiscussionOutcome::NoConsensus) => Some(match round.judged_rounds {
            1 => "no consensus after 1 round".to_owned(),
            n => format!("no consensus after {n} rounds"),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board() -> Vec<RankedModel> {
        vec![
            RankedModel {
                model: "b/two".into(),
                average_rank: 1.0,
                votes: 2,
                place: 1,
            },
            RankedModel {
                model: "a/one".into(),
                average_rank: 1.5,
                votes: 2,
                place: 2,
            },
        ]
    }

    #[test]
    fn the_leaderboard_is_a_table() {
        let lines = leaderboard_lines(&board(), Theme::new(false), 80);
        assert_eq!(
            lines,
            [
                "Leaderboard (mean rank, best first)",
                "#  MODEL  AVG RANK  VOTES",
                "1  b/two  1.00      2",
                "2  a/one  1.50      2",
                "",
            ]
        );
        assert!(leaderboard_lines(&[], Theme::new(false), 80).is_empty());
    }

    #[test]
    fn the_markdown_leaderboard_has_a_row_per_model() {
        let md = leaderboard_markdown(&board());
        assert!(md.contains("| 1 | b/two | 1.00 | 2 |"));
        assert!(md.contains("| 2 | a/one | 1.50 | 2 |"));
    }

    #[test]
    fn outcomes_read_as_the_issue_says() {
        let yes = RoundCompleted {
            number: 2,
            consensus: Some(true),
            outcome: DiscussionOutcome::Consensus as i32,
            judged_rounds: 2,
            ..Default::default()
        };
        assert_eq!(
            outcome_line(&yes).as_deref(),
            Some("consensus after round 2")
        );
        let no = RoundCompleted {
            number: 5,
            consensus: Some(false),
            outcome: DiscussionOutcome::NoConsensus as i32,
            judged_rounds: 5,
            ..Default::default()
        };
        assert_eq!(
            outcome_line(&no).as_deref(),
            Some("no consensus after 5 rounds")
        );
        let open = RoundCompleted {
            number: 1,
            consensus: Some(false),
            ..Default::default()
        };
        assert_eq!(outcome_line(&open), None);
    }

    #[test]
    fn reviews_say_their_ranking_or_why_not() {
        let ranked = Message {
            ranking: vec!["b/two".into(), "c/three".into()],
            ..Default::default()
        };
        assert_eq!(
            review_note(&ranked).as_deref(),
            Some("ranking: b/two > c/three")
        );
        let unread = Message {
            ranking_unparsed: "the review has no FINAL RANKING section".into(),
            ..Default::default()
        };
        assert!(review_note(&unread).is_some_and(|n| n.contains("not readable")));
        assert_eq!(review_note(&Message::default()), None);
    }
}
