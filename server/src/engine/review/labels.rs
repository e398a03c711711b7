//! The anonymous labels a reviewer sees: `Response A`, `Response B`, … over
//! the other answers of the round, in an order shuffled for each reviewer, so
//! a label says nothing about who wrote the answer and any bias toward the
//! first answer shown falls on a different model for each reviewer.

use rand::Rng;
use rand::seq::SliceRandom as _;

pub use crate::domain::ReviewLabel as Label;

/// What every label begins with; the ranking parser looks for it.
pub const LABEL_PREFIX: &str = "Response";

/// One answer of the round under review.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub model: String,
    pub content: String,
}

/// The letters of the `index`-th label (0-based): `A`…`Z`, then `AA`, `AB`, ….
pub fn letters(index: usize) -> String {
    let mut n = index + 1;
    let mut out = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        out.push(char::from(b'A' + u8::try_from(rem).unwrap_or(0)));
        n = (n - 1) / 26;
    }
    out.iter().rev().collect()
}

/// The `index`-th label: `Response A` for 0.
pub fn label_name(index: usize) -> String {
    format!("{LABEL_PREFIX} {}", letters(index))
}

/// The answers `reviewer` judges (every answer but its own), shuffled with
/// `rng` and labelled in that order. A reviewer never sees its own answer.
pub fn labelled_for<'a, R: Rng + ?Sized>(
    answers: &'a [Answer],
    reviewer: &str,
    rng: &mut R,
) -> Vec<(Label, &'a Answer)> {
    let mut others: Vec<&Answer> = answers.iter().filter(|a| a.model != reviewer).collect();
    others.shuffle(rng);
    others
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            (
                Label {
                    label: label_name(i),
                    model: a.model.clone(),
                },
                a,
            )
        })
        .collect()
}

/// `text` with every model id of `models` (any case) replaced by a neutral
/// phrase, so an answer that names its author or a fellow participant does
/// not undo the anonymity.
pub fn redact(text: &str, models: &[String]) -> String {
    let mut ids: Vec<&str> = models
        .iter()
        .map(String::as_str)
        .filter(|m| !m.is_empty())
        .collect();
    // Longer ids first, so an id that contains another is replaced whole.
    ids.sort_by_key(|m| std::cmp::Reverse(m.len()));
    let mut out = text.to_owned();
    for id in ids {
        let Ok(pattern) = regex::RegexBuilder::new(&regex::escape(id))
            .case_insensitive(true)
            .build()
        else {
            continue;
        };
        out = pattern
            .replace_all(&out, "another participant")
            .into_owned();
    }
    out
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;
    use rand::rngs::StdRng;

    use super::*;

    fn answers() -> Vec<Answer> {
        ["a/one", "b/two", "c/three", "d/four"]
            .iter()
            .map(|m| Answer {
                model: (*m).to_owned(),
                content: format!("text of {m}"),
            })
            .collect()
    }

    #[test]
    fn letters_run_past_z() {
        assert_eq!(letters(0), "A");
        assert_eq!(letters(25), "Z");
        assert_eq!(letters(26), "AA");
        assert_eq!(letters(27), "AB");
        assert_eq!(label_name(2), "Response C");
    }

    #[test]
    fn a_reviewer_never_sees_its_own_answer() {
        let answers = answers();
        let mut rng = StdRng::seed_from_u64(7);
        let seen = labelled_for(&answers, "b/two", &mut rng);
        let models: Vec<&str> = seen.iter().map(|(l, _)| l.model.as_str()).collect();
        assert_eq!(seen.len(), 3);
        assert!(!models.contains(&"b/two"));
        let labels: Vec<&str> = seen.iter().map(|(l, _)| l.label.as_str()).collect();
        assert_eq!(labels, ["Response A", "Response B", "Response C"]);
        for (label, answer) in &seen {
            assert_eq!(label.model, answer.model);
        }
    }

    #[test]
    fn a_reviewer_without_an_answer_sees_them_all() {
        let answers = answers();
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(labelled_for(&answers, "e/five", &mut rng).len(), 4);
    }

    #[test]
    fn orders_differ_between_reviewers_with_one_rng() {
        let answers = answers();
        let mut rng = StdRng::seed_from_u64(42);
        let orders: Vec<Vec<String>> = (0..8)
            .map(|_| {
                labelled_for(&answers, "e/five", &mut rng)
                    .into_iter()
                    .map(|(l, _)| l.model)
                    .collect()
            })
            .collect();
        assert!(orders.iter().any(|o| o != &orders[0]), "{orders:?}");
    }

    #[test]
    fn the_same_seed_gives_the_same_labels() {
        let answers = answers();
        let once = labelled_for(&answers, "a/one", &mut StdRng::seed_from_u64(3));
        let again = labelled_for(&answers, "a/one", &mut StdRng::seed_from_u64(3));
        assert_eq!(once, again);
    }

    #[test]
    fn redaction_removes_model_ids_in_any_case() {
        let models = vec!["openai/gpt-4o".to_owned(), "openai/gpt-4o-mini".to_owned()];
        let text = "As OpenAI/GPT-4o I disagree with openai/gpt-4o-mini.";
        assert_eq!(
            redact(text, &models),
            "As another participant I disagree with another participant."
        );
    }
}
