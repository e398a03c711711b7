//! Peer review and consensus in the chat: the leaderboard message a review
//! ends with, and the line that ends a discussion run until consensus.

use moai_proto::v1::{DiscussionOutcome, RankedModel, RoundCompleted};

use super::html::escape;

/// The leaderboard as one message (a monospaced table); `None` when no review could be read.
#[must_use]
pub fn leaderboard_html(ranking: &[RankedModel]) -> Option<String> {
    if ranking.is_empty() {
        return None;
    }
    let width = ranking
        .iter()
        .map(|r| r.model.chars().count())
        .max()
        .unwrap_or(0)
        .max("model".len());
    let mut table = format!("#  {:<width$}  avg rank  votes\n", "model");
    for r in ranking {
        table.push_str(&format!(
            "{:<2} {:<width$}  {:>8.2}  {:>5}\n",
            r.place, r.model, r.average_rank, r.votes
        ));
    }
    Some(format!(
        "🏆 <b>Leaderboard</b> · anonymous peer review, mean rank, best first\n<pre>{}</pre>",
        escape(table.trim_end())
    ))
}

/// `✅ Consensus after round 2` or `No consensus after 5 rounds`, when this
/// round settled a run until consensus.
#[must_use]
pub fn outcome_html(round: &RoundCompleted) -> Option<String> {
    match DiscussionOutcome::try_from(round.outcome) {
        Ok(DiscussionOutcome::Consensus) => Some(format!(
            "✅ <b>Consensus after round {}</b>. /consensus sums it up; /next pushes further.",
            round.number
        )),
        Ok(DiscussionOutcome::NoConsensus) => {
            let rounds = match round.judged_rounds {
                1 => "1 round".to_owned(),
                n => format!("{n} rounds"),
            };
            Some(format!(
                "🤷 <b>No consensus after {rounds}</b>. /next for another round, /review to rank the answers."
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leaderboard_is_a_table_best_first() {
        let html = leaderboard_html(&[
            RankedModel {
                model: "b/two".into(),
                average_rank: 1.0,
                votes: 2,
                place: 1,
            },
            RankedModel {
                model: "a/<one>".into(),
                average_rank: 1.5,
                votes: 2,
                place: 2,
            },
        ])
        .expect("a leaderboard");
        assert!(html.starts_with("🏆 <b>Leaderboard</b>"));
        let first = html.find("b/two").expect("b/two listed");
        let second = html.find("a/&lt;one&gt;").expect("escaped a/<one> listed");
        assert!(first < second);
        assert!(html.contains("1.50"));
        assert_eq!(leaderboard_html(&[]), None);
    }

    #[test]
    fn outcomes_name_the_round_or_the_rounds() {
        let yes = RoundCompleted {
            number: 2,
            outcome: DiscussionOutcome::Consensus as i32,
            judged_rounds: 2,
            ..Default::default()
        };
        assert!(outcome_html(&yes).is_some_and(|h| h.contains("Consensus after round 2")));
        let no = RoundCompleted {
            number: 5,
            outcome: DiscussionOutcome::NoConsensus as i32,
            judged_rounds: 5,
            ..Default::default()
        };
        assert!(outcome_html(&no).is_some_and(|h| h.contains("No consensus after 5 rounds")));
        assert_eq!(outcome_html(&RoundCompleted::default()), None);
    }
}
