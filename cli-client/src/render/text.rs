//! Display width, wrapping and truncation of terminal text.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Columns `text` takes on a terminal (escape codes take none).
pub fn width(text: &str) -> usize {
    if text.contains('\x1b') {
        console::measure_text_width(text)
    } else {
        UnicodeWidthStr::width(text)
    }
}

/// Cuts `text` (plain) to at most `max` columns, ending with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > max {
            break;
        }
        out.push(c);
        used += w;
    }
    if max > 0 {
        out.push('…');
    }
    out
}

/// Splits `word` into pieces of at most `max` columns (at least one char each).
pub fn split_by_width(word: &str, max: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut piece = String::new();
    let mut used = 0;
    for c in word.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > max.max(1) && !piece.is_empty() {
            pieces.push(std::mem::take(&mut piece));
            used = 0;
        }
        piece.push(c);
        used += w;
    }
    if !piece.is_empty() {
        pieces.push(piece);
    }
    pieces
}

/// Word-wraps plain `text` to `max` columns, keeping its line breaks and
/// breaking words longer than a line. Tabs become spaces.
pub fn wrap(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut lines = Vec::new();
    for raw in text.replace('\t', "    ").split('\n') {
        let raw = raw.trim_end_matches('\r');
        let indent: String = raw.chars().take_while(|c| *c == ' ').collect();
        let indent = if indent.len() >= max {
            String::new()
        } else {
            indent
        };
        let mut line = indent.clone();
        let mut used = indent.len();
        let mut empty = true;
        for word in raw.split(' ').filter(|w| !w.is_empty()) {
            let w = width(word);
            let space = usize::from(!empty);
            if !empty && used + space + w > max {
                lines.push(std::mem::take(&mut line));
                line.push_str(&indent);
                used = indent.len();
                empty = true;
            }
            if w > max - indent.len() {
                // Longer than any line: cut it into line-sized pieces.
                for piece in split_by_width(word, max - indent.len()) {
                    if !empty {
                        lines.push(std::mem::take(&mut line));
                        line.push_str(&indent);
                        used = indent.len();
                    }
                    used += width(&piece);
                    line.push_str(&piece);
                    empty = false;
                }
                continue;
            }
            if !empty {
                line.push(' ');
                used += 1;
            }
            line.push_str(word);
            used += w;
            empty = false;
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_on_words_within_width() {
        let lines = wrap("the quick brown fox jumps over the lazy dog", 10);
        assert!(lines.iter().all(|l| width(l) <= 10), "{lines:?}");
        assert_eq!(
            lines.join(" "),
            "the quick brown fox jumps over the lazy dog"
        );
    }

    #[test]
    fn keeps_line_breaks_and_breaks_long_words() {
        let lines = wrap("a\n\nbbbbbbbbbbbb", 5);
        assert_eq!(lines, ["a", "", "bbbbb", "bbbbb", "bb"]);
    }

    #[test]
    fn wide_characters_count_double() {
        assert_eq!(width("日本"), 4);
        assert!(wrap("日本語の文章です", 6).iter().all(|l| width(l) <= 6));
    }

    #[test]
    fn truncates_with_an_ellipsis() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(width(&truncate("日本語日本語", 5)), 5);
    }

    #[test]
    fn escape_codes_take_no_width() {
        assert_eq!(width("\x1b[1mab\x1b[0m"), 2);
    }
}
