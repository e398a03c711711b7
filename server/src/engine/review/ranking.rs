//! Reading a reviewer's `FINAL RANKING:` section (the format llm-council
//! asks for) leniently: numbering, bullets, Markdown emphasis and stray words
//! around the labels are all fine. What cannot be read as a complete ranking
//! of the labels shown is reported as unparsed, never guessed.

use std::sync::LazyLock;

use regex::Regex;

/// What a review's text says about the order of the answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParsedRanking {
    /// The labels, best first; every label shown, each once.
    Ranked(Vec<String>),
    /// Why no ranking could be read, in a short sentence.
    Unparsed(String),
}

/// The heading of the ranking section (the last one counts).
static HEADING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)final[\s*_]+ranking").expect("a constant pattern compiles"));

/// `Response A`, `response-B`, `**Response C**`: the letters (capitals, so
/// "the response is" is no label) are group 1.
static LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?i:response)[\s_*\-:]*([A-Z]{1,2})\b").expect("a constant pattern compiles")
});

/// What is left of the heading's line: `:`, `**`.
static HEADING_REST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[*_ \t]*:?[*_ \t]*").expect("a constant pattern compiles"));

/// A list marker at the start of an item: `1.`, `2)`, `(3)`, `#4`, `-`, `*`, `•`.
static MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*[*_]*\s*(?:\d{1,3}\s*[.):]|\(\d{1,3}\)|#\d{1,3}|[-*•+])\s*")
        .expect("a constant pattern compiles")
});

/// Where a number marks the next item inside one line: ` 2. `, ` 3) `.
static INLINE_NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\s\d{1,3}[.)]\s").expect("a constant pattern compiles"));

/// Reads the ranking in `text` over `labels` (as shown, `Response A`…).
/// The last `FINAL RANKING` heading followed by labels counts, so the words
/// "final ranking" in a closing remark do not hide the list above them.
pub fn parse_ranking(text: &str, labels: &[String]) -> ParsedRanking {
    let headings: Vec<usize> = HEADING.find_iter(text).map(|m| m.end()).collect();
    if headings.is_empty() {
        return ParsedRanking::Unparsed("the review has no FINAL RANKING section".into());
    }
    let known: Vec<String> = labels.iter().map(|l| letters_of(l)).collect();
    let Some(order) = headings
        .iter()
        .rev()
        .map(|&end| section_order(&text[end..], &known))
        .find(|order| !order.is_empty())
    else {
        return ParsedRanking::Unparsed("the FINAL RANKING section names no response".into());
    };
    let mut ranked: Vec<String> = Vec::with_capacity(order.len());
    for letters in order {
        let Some(index) = known.iter().position(|k| *k == letters) else {
            return ParsedRanking::Unparsed(format!(
                "the ranking names Response {letters}, which was not shown"
            ));
        };
        let label = labels[index].clone();
        if ranked.contains(&label) {
            return ParsedRanking::Unparsed(format!("the ranking names {label} twice"));
        }
        ranked.push(label);
    }
    if ranked.len() < labels.len() {
        return ParsedRanking::Unparsed(format!(
            "the ranking names {} of the {} responses",
            ranked.len(),
            labels.len()
        ));
    }
    ParsedRanking::Ranked(ranked)
}

/// The label letters a section lists, in order: one per list item when it
/// has a list (prose around a list is not the ranking), else every label
/// in the order written.
fn section_order(section: &str, known: &[String]) -> Vec<String> {
    let section = HEADING_REST
        .find(section)
        .map_or(section, |m| &section[m.end()..]);
    let mut marked: Vec<String> = Vec::new();
    let mut unmarked: Vec<String> = Vec::new();
    for item in items(section) {
        let (is_marked, rest) = match MARKER.find(item) {
            Some(m) => (true, &item[m.end()..]),
            None => (false, item),
        };
        let mut found = LABEL
            .captures_iter(rest)
            .filter_map(|c| c.get(1))
            .map(|m| m.as_str().to_owned());
        if is_marked {
            // One answer per list item; later labels are commentary.
            let first = found.next().or_else(|| {
                // A bare letter alone on a list item: `1. B`.
                let bare = rest.trim_matches(|c: char| !c.is_ascii_alphanumeric());
                known.iter().find(|k| *k == bare).cloned()
            });
            marked.extend(first);
        } else {
            unmarked.extend(found);
        }
    }
    if marked.is_empty() { unmarked } else { marked }
}

/// The letters of a label as shown (`Response B` -> `B`).
fn letters_of(label: &str) -> String {
    label
        .rsplit(|c: char| c.is_whitespace())
        .next()
        .unwrap_or(label)
        .to_ascii_uppercase()
}

/// The section's items: its lines, each also split where an inline number
/// (`1. Response B 2. Response A`) starts the next item.
fn items(section: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in section.lines() {
        let mut start = 0;
        for m in INLINE_NUMBER.find_iter(line) {
            out.push(&line[start..m.start()]);
            start = m.start();
        }
        out.push(&line[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(n: usize) -> Vec<String> {
        (0..n).map(super::super::labels::label_name).collect()
    }

    fn ranked(order: &[&str]) -> ParsedRanking {
        ParsedRanking::Ranked(order.iter().map(|l| format!("Response {l}")).collect())
    }

    #[test]
    fn the_llm_council_format() {
        let text = "Response A is thin. Response B is good. Response C is best.\n\n\
                    FINAL RANKING:\n1. Response C\n2. Response B\n3. Response A\n";
        assert_eq!(parse_ranking(text, &labels(3)), ranked(&["C", "B", "A"]));
    }

    #[test]
    fn bullets_bold_and_commentary_around_labels() {
        let text = "**FINAL RANKING:**\n\n- **Response B** (clearest, better than Response A)\n\
                    - Response A — solid\n* response-C\n\nOverall Response A was close.";
        assert_eq!(parse_ranking(text, &labels(3)), ranked(&["B", "A", "C"]));
    }

    #[test]
    fn numbering_styles_and_bare_letters() {
        let text = "Final ranking\n1) Response B\n(2) A\n#3 Response C.";
        assert_eq!(parse_ranking(text, &labels(3)), ranked(&["B", "A", "C"]));
    }

    #[test]
    fn one_line_rankings() {
        assert_eq!(
            parse_ranking(
                "FINAL RANKING: Response B > Response C > Response A",
                &labels(3)
            ),
            ranked(&["B", "C", "A"])
        );
        assert_eq!(
            parse_ranking(
                "FINAL RANKING: 1. Response B 2. Response A 3. Response C",
                &labels(3)
            ),
            ranked(&["B", "A", "C"])
        );
    }

    #[test]
    fn the_last_heading_counts() {
        let text = "I will end with a FINAL RANKING as asked.\n\nFINAL RANKING:\n1. Response B\n2. Response A";
        assert_eq!(parse_ranking(text, &labels(2)), ranked(&["B", "A"]));
    }

    #[test]
    fn a_closing_remark_naming_the_heading_does_not_hide_the_list() {
        let text = "FINAL RANKING:\n1. Response A\n2. Response B\n\nThis final ranking is close.";
        assert_eq!(parse_ranking(text, &labels(2)), ranked(&["A", "B"]));
    }

    #[test]
    fn no_section_is_unparsed() {
        let r = parse_ranking("Response A is best, then Response B.", &labels(2));
        assert!(matches!(r, ParsedRanking::Unparsed(why) if why.contains("no FINAL RANKING")));
    }

    #[test]
    fn an_incomplete_ranking_is_not_completed() {
        let r = parse_ranking("FINAL RANKING:\n1. Response C\n2. Response A", &labels(3));
        assert_eq!(
            r,
            ParsedRanking::Unparsed("the ranking names 2 of the 3 responses".into())
        );
    }

    #[test]
    fn duplicates_and_unknown_labels_are_unparsed() {
        let r = parse_ranking(
            "FINAL RANKING:\n1. Response A\n2. Response A\n3. Response B",
            &labels(3),
        );
        assert!(matches!(r, ParsedRanking::Unparsed(why) if why.contains("twice")));
        let r = parse_ranking("FINAL RANKING:\n1. Response D\n2. Response A", &labels(2));
        assert!(matches!(r, ParsedRanking::Unparsed(why) if why.contains("Response D")));
    }

    #[test]
    fn a_section_without_labels_is_unparsed() {
        let r = parse_ranking("FINAL RANKING:\nThey are all fine.", &labels(2));
        assert!(matches!(r, ParsedRanking::Unparsed(why) if why.contains("names no response")));
    }
}
