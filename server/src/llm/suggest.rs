//! "Did you mean …?": the offered model ids closest to one nobody offers.

/// At most this many suggestions.
const MAX_SUGGESTIONS: usize = 3;

/// Below this similarity (0..=1) an id is not worth suggesting.
const MIN_SIMILARITY: f64 = 0.5;

/// How alike `wanted` and `offered` are, 0..=1. Ids are `vendor/name`: a
/// name typed without its vendor, or with the wrong one, still finds it.
fn similarity(wanted: &str, offered: &str) -> f64 {
    let wanted = wanted.to_lowercase();
    let offered = offered.to_lowercase();
    let whole = strsim::normalized_damerau_levenshtein(&wanted, &offered);
    let name = |id: &str| id.rsplit('/').next().unwrap_or(id).to_owned();
    let names = strsim::normalized_damerau_levenshtein(&name(&wanted), &name(&offered));
    // A part typed exactly (`claude-sonnet-4.5` for `anthropic/claude-sonnet-4.5`).
    let contained = if !wanted.is_empty() && offered.contains(&wanted) {
        0.9
    } else {
        0.0
    };
    whole.max(names * 0.95).max(contained)
}

/// The offered ids most like `wanted`, best first.
pub fn closest<'a>(wanted: &str, offered: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut scored: Vec<(f64, &str)> = offered
        .into_iter()
        .map(|id| (similarity(wanted, id), id))
        .filter(|(score, _)| *score >= MIN_SIMILARITY)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, id)| id.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFERED: &[&str] = &[
        "anthropic/claude-sonnet-4.5",
        "anthropic/claude-opus-4.1",
        "anthropic/claude-3.5-haiku",
        "openai/gpt-4o",
        "openai/gpt-4o-mini",
        "google/gemini-2.5-pro",
        "meta-llama/llama-3.1-70b-instruct",
    ];

    fn closest_of(wanted: &str) -> Vec<String> {
        closest(wanted, OFFERED.iter().copied())
    }

    #[test]
    fn a_typo_finds_the_id() {
        assert_eq!(
            closest_of("anthropic/claude-sonet-4.5")
                .first()
                .map(String::as_str),
            Some("anthropic/claude-sonnet-4.5")
        );
        assert_eq!(
            closest_of("openai/gpt4o").first().map(String::as_str),
            Some("openai/gpt-4o")
        );
    }

    #[test]
    fn a_missing_or_wrong_vendor_finds_the_id() {
        assert_eq!(
            closest_of("claude-sonnet-4.5").first().map(String::as_str),
            Some("anthropic/claude-sonnet-4.5")
        );
        assert_eq!(
            closest_of("openrouter/gemini-2.5-pro")
                .first()
                .map(String::as_str),
            Some("google/gemini-2.5-pro")
        );
    }

    #[test]
    fn at_most_three_and_nothing_far_off() {
        assert!(closest_of("anthropic/claude").len() <= 3);
        assert_eq!(closest_of("zzzzzz/qqqqqq"), Vec::<String>::new());
        assert_eq!(closest("x/y", []), Vec::<String>::new());
    }
}
