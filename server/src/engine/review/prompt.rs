//! What a reviewer is sent, and what the chairman is told of the review.
//! A reviewer's prompt names no model, vendor or participant: only the
//! question and the other answers under their labels.

use super::labels::{Answer, Label, redact};
use crate::domain::Standing;
use crate::engine::prompt::estimate_tokens;
use crate::llm::ChatMessage;

/// Tokens kept free for the instructions and the review itself.
const RESERVE_TOKENS: usize = 2_000;

const SYSTEM: &str = "You are an impartial reviewer of answers to a question. The answers are \
anonymous: judge each one on its merits (accuracy, insight, clarity and usefulness), not on who \
may have written it. Write in Markdown.";

/// The review request for answers `shown` (labelled, in the order shown).
/// `models` are every participant's ids, removed from the answers' text;
/// each answer is cut to an equal share of `budget_tokens` when all would not fit.
pub fn review_messages(
    question: &str,
    shown: &[(Label, &Answer)],
    models: &[String],
    budget_tokens: usize,
) -> Vec<ChatMessage> {
    let room = budget_tokens
        .saturating_sub(RESERVE_TOKENS + estimate_tokens(question))
        .max(shown.len() * 64);
    let share_chars = room / shown.len().max(1) * 4;
    let mut answers = String::new();
    for (label, answer) in shown {
        let text = redact(answer.content.trim(), models);
        answers.push_str(&format!(
            "### {}\n\n{}\n\n",
            label.label,
            cut(&text, share_chars)
        ));
    }
    // The example lists the labels rotated by one, so it is never simply the
    // order shown; shuffling per reviewer spreads any pull it has.
    let mut example: Vec<&str> = shown.iter().map(|(l, _)| l.label.as_str()).collect();
    let turn = 1.min(example.len());
    example.rotate_left(turn);
    let example: String = example
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{}. {l}\n", i + 1))
        .collect();
    let user = format!(
        "Question: {question}\n\n\
         Here are the answers to evaluate, anonymised:\n\n{answers}\
         Your task:\n\
         1. Evaluate each response on its own: what it does well and what it does poorly.\n\
         2. Then, at the very end, give your final ranking of the responses.\n\n\
         IMPORTANT: format the final ranking EXACTLY like this:\n\
         - a line `FINAL RANKING:` (all capitals, with the colon);\n\
         - then every response from best to worst as a numbered list, one per line: the number, \
         a period, a space, then only the label (such as `1. {first}`);\n\
         - nothing after the ranking.\n\n\
         The ending of your answer has this shape:\n\n\
         FINAL RANKING:\n{example}\n\
         Now write your evaluation and ranking:",
        first = shown
            .first()
            .map_or("Response A", |(l, _)| l.label.as_str()),
    );
    vec![ChatMessage::system(SYSTEM), ChatMessage::user(user)]
}

/// `text` cut to about `max_chars` characters, saying so.
fn cut(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max_chars).collect();
    format!("{kept}\n\n(The rest of this response was cut to fit.)")
}

/// What the chairman of a summary is told of the review of round
/// `reviewed_round`: the leaderboard, and to weigh the answers by it.
pub fn ranking_note(reviewed_round: u32, standings: &[Standing]) -> String {
    let mut note = format!(
        "The participants reviewed each other's answers of round {reviewed_round} anonymously \
         (no reviewer saw names or its own answer). Their leaderboard by mean rank, best first:\n"
    );
    for s in standings {
        let reviews = if s.votes == 1 { "review" } else { "reviews" };
        note.push_str(&format!(
            "{}. {} (average rank {:.2} over {} {reviews})\n",
            s.place, s.model, s.average_rank, s.votes
        ));
    }
    note.push_str(
        "Weigh the answers accordingly: where they disagree, give more weight to the better-ranked \
         ones, while still judging on the merits.",
    );
    note
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;
    use rand::rngs::StdRng;

    use super::super::labels::labelled_for;
    use super::*;

    fn answers() -> Vec<Answer> {
        vec![
            Answer {
                model: "openai/gpt-4o".into(),
                content: "Use tabs. I am openai/gpt-4o.".into(),
            },
            Answer {
                model: "anthropic/claude".into(),
                content: "Use spaces, unlike openai/gpt-4o.".into(),
            },
            Answer {
                model: "google/gemini".into(),
                content: "Either.".into(),
            },
        ]
    }

    fn models() -> Vec<String> {
        answers().into_iter().map(|a| a.model).collect()
    }

    #[test]
    fn the_prompt_holds_the_other_answers_and_no_model_id() {
        let answers = answers();
        let shown = labelled_for(&answers, "google/gemini", &mut StdRng::seed_from_u64(5));
        let msgs = review_messages("Tabs or spaces?", &shown, &models(), 100_000);
        let all: String = msgs.iter().map(|m| m.content.as_str()).collect();
        assert!(all.contains("Question: Tabs or spaces?"));
        assert!(all.contains("Use tabs."));
        assert!(all.contains("Use spaces"));
        assert!(!all.contains("Either."), "its own answer is not shown");
        for id in models() {
            assert!(!all.contains(&id), "{id} named in the prompt");
        }
        for vendor in ["openai", "anthropic", "google"] {
            assert!(!all.to_lowercase().contains(vendor), "{vendor} named");
        }
        assert!(all.contains("### Response A"));
        assert!(all.contains("### Response B"));
        assert!(!all.contains("Response C"));
        assert!(all.contains("FINAL RANKING:\n1. Response B\n2. Response A\n"));
    }

    #[test]
    fn long_answers_are_cut_to_a_share_of_the_budget() {
        let answers = vec![
            Answer {
                model: "a/one".into(),
                content: "x".repeat(100_000),
            },
            Answer {
                model: "b/two".into(),
                content: "y".repeat(100_000),
            },
        ];
        let shown = labelled_for(&answers, "c/three", &mut StdRng::seed_from_u64(1));
        let msgs = review_messages("Q", &shown, &[], 12_000);
        let user = &msgs[1].content;
        assert!(estimate_tokens(user) < 12_000, "{}", estimate_tokens(user));
        assert_eq!(user.matches("was cut to fit").count(), 2);
    }

    #[test]
    fn the_note_lists_the_leaderboard() {
        let note = ranking_note(
            2,
            &[
                Standing {
                    model: "b/two".into(),
                    average_rank: 1.0,
                    votes: 2,
                    place: 1,
                },
                Standing {
                    model: "a/one".into(),
                    average_rank: 1.5,
                    votes: 1,
                    place: 2,
                },
            ],
        );
        assert!(note.contains("round 2"));
        assert!(note.contains("1. b/two (average rank 1.00 over 2 reviews)"));
        assert!(note.contains("2. a/one (average rank 1.50 over 1 review)"));
        assert!(note.contains("Weigh the answers accordingly"));
    }
}
