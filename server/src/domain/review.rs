//! What a reviewer's message holds beyond its text: the labels it saw and
//! the ranking read from it (or why none could be read).

use serde::{Deserialize, Serialize};

/// A label one reviewer saw, and whose answer it stood for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewLabel {
    /// `Response A`, `Response B`, …
    pub label: String,
    pub model: String,
}

/// One review of a round's answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// The labels in the order shown.
    pub labels: Vec<ReviewLabel>,
    /// Model ids, best first; empty when `unparsed` says why not.
    #[serde(default)]
    pub ranking: Vec<String>,
    /// Why no ranking could be read from the text; empty when one was.
    #[serde(default)]
    pub unparsed: String,
}

impl Review {
    /// The stored form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the stored form.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The ranking when one was read.
    pub fn parsed(&self) -> Option<&[String]> {
        (self.unparsed.is_empty() && !self.ranking.is_empty()).then_some(self.ranking.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_stored_form() {
        let r = Review {
            labels: vec![ReviewLabel {
                label: "Response A".into(),
                model: "a/one".into(),
            }],
            ranking: vec!["a/one".into()],
            unparsed: String::new(),
        };
        assert_eq!(Review::from_json(&r.to_json()).ok(), Some(r.clone()));
        assert_eq!(r.parsed(), Some(&["a/one".to_owned()][..]));
        let u = Review {
            unparsed: "no FINAL RANKING".into(),
            ..r
        };
        assert_eq!(u.parsed(), None);
    }
}
