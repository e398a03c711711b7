//! Splitting Telegram HTML into messages that fit Telegram's length limit.
//!
//! Breaks are made at a paragraph break when one is near the limit, else at a
//! line break, else at a space, and never inside a tag or an entity. Tags open
//! at a break are closed at the end of one part and reopened at the start of
//! the next, so every part is well-formed on its own (a long code block stays
//! a code block over several messages).

/// Telegram's limit on a message's text, in UTF-16 code units.
pub const TELEGRAM_LIMIT: usize = 4096;

/// One indivisible piece of HTML: a tag, an entity or a character.
#[derive(Debug, Clone, Copy)]
enum Atom<'a> {
    Open { name: &'a str, raw: &'a str },
    Close { raw: &'a str },
    Text(&'a str),
}

impl Atom<'_> {
    fn raw(&self) -> &str {
        match self {
            Atom::Open { raw, .. } | Atom::Close { raw } | Atom::Text(raw) => raw,
        }
    }
}

fn tokenize(html: &str) -> Vec<Atom<'_>> {
    let mut atoms = Vec::new();
    let mut i = 0;
    while i < html.len() {
        let rest = &html[i..];
        let len = if rest.starts_with('<') {
            rest.find('>').map_or(1, |end| end + 1)
        } else if rest.starts_with('&') {
            rest.find(';')
                .filter(|end| *end <= 10 && !rest[1..*end].contains([' ', '<', '&']))
                .map_or(1, |end| end + 1)
        } else {
            rest.chars().next().map_or(1, char::len_utf8)
        };
        let raw = &rest[..len];
        let atom = if len > 1 && raw.starts_with("</") {
            Atom::Close { raw }
        } else if len > 1 && raw.starts_with('<') {
            let name_end = raw[1..]
                .find(|c: char| !c.is_ascii_alphanumeric())
                .map_or(raw.len(), |n| n + 1);
            Atom::Open {
                name: &raw[1..name_end],
                raw,
            }
        } else {
            Atom::Text(raw)
        };
        atoms.push(atom);
        i += len;
    }
    atoms
}

/// Length as Telegram counts it (UTF-16 code units).
#[must_use]
pub fn telegram_len(text: &str) -> usize {
    text.encode_utf16().count()
}

fn closers(stack: &[Atom<'_>]) -> String {
    stack
        .iter()
        .rev()
        .map(|atom| match atom {
            Atom::Open { name, .. } => format!("</{name}>"),
            _ => String::new(),
        })
        .collect()
}

fn openers(stack: &[Atom<'_>]) -> String {
    stack.iter().map(Atom::raw).collect()
}

/// A place where a part may end.
#[derive(Clone)]
struct Break<'a> {
    /// Index of the first atom of the next part.
    at: usize,
    /// Tags open at that point.
    stack: Vec<Atom<'a>>,
    /// Length of the part up to here, without the closing tags.
    len: usize,
}

/// How good a place to break the end of `atoms[..end]` is: 3 after a blank
/// line, 2 after a line break, 1 after a space, 0 anywhere else.
fn quality(atoms: &[Atom<'_>], end: usize) -> usize {
    match atoms[end - 1] {
        Atom::Text("\n") if end >= 2 && atoms[end - 2].raw() == "\n" => 3,
        Atom::Text("\n") => 2,
        Atom::Text(" ") => 1,
        _ => 0,
    }
}

/// Splits well-formed Telegram HTML into parts of at most `limit` UTF-16 code
/// units each, every one well-formed. Parts with no visible text are left out.
#[must_use]
pub fn split_html(html: &str, limit: usize) -> Vec<String> {
    let atoms = tokenize(html);
    let mut parts = Vec::new();
    let mut start = 0;
    let mut stack: Vec<Atom<'_>> = Vec::new();
    while start < atoms.len() {
        let prefix = openers(&stack);
        let mut len = telegram_len(&prefix);
        let mut current = stack.clone();
        // The last break of each quality seen so far.
        let mut best: [Option<Break<'_>>; 4] = Default::default();
        let mut end = start;
        while end < atoms.len() {
            let atom = atoms[end];
            let atom_len = telegram_len(atom.raw());
            let mut next = current.clone();
            match atom {
                Atom::Open { .. } => next.push(atom),
                Atom::Close { .. } => {
                    next.pop();
                }
                Atom::Text(_) => {}
            }
            if len + atom_len + telegram_len(&closers(&next)) > limit && end > start {
                break;
            }
            len += atom_len;
            current = next;
            end += 1;
            let q = quality(&atoms, end);
            if q > 0 {
                best[q] = Some(Break {
                    at: end,
                    stack: current.clone(),
                    len,
                });
            }
        }
        let whole = Break {
            at: end,
            stack: current,
            len,
        };
        // A good break is taken only if it keeps the part at least half full.
        let cut = if end >= atoms.len() {
            whole
        } else {
            (1..=3)
                .rev()
                .find_map(|q| best[q].clone().filter(|b| b.len * 2 >= whole.len))
                .unwrap_or(whole)
        };
        let mut part = prefix;
        for atom in &atoms[start..cut.at] {
            part.push_str(atom.raw());
        }
        part.push_str(&closers(&cut.stack));
        if has_visible_text(&part) {
            parts.push(trim_part(&part));
        }
        start = cut.at;
        stack = cut.stack;
    }
    parts
}

fn has_visible_text(part: &str) -> bool {
    !super::html::to_plain_text(part).trim().is_empty()
}

/// Trims whitespace at the start and end of a part when it is outside any tag.
fn trim_part(part: &str) -> String {
    part.trim_matches(|c: char| c == '\n' || c == ' ')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::html::{markdown_to_html, to_plain_text};

    /// Checks that every open tag is closed in order, as Telegram requires.
    fn assert_well_formed(part: &str) {
        let mut stack = Vec::new();
        for atom in tokenize(part) {
            match atom {
                Atom::Open { name, .. } => stack.push(name.to_owned()),
                Atom::Close { raw } => {
                    let name = &raw[2..raw.len() - 1];
                    assert_eq!(stack.pop().as_deref(), Some(name), "in {part:?}");
                }
                Atom::Text(t) => assert!(!t.starts_with('<'), "stray < in {part:?}"),
            }
        }
        assert!(stack.is_empty(), "unclosed {stack:?} in {part:?}");
    }

    #[test]
    fn short_text_is_one_part() {
        assert_eq!(split_html("<b>hi</b> there", 4096), vec!["<b>hi</b> there"]);
    }

    #[test]
    fn prefers_paragraph_breaks() {
        let html = format!("{}\n\n{}", "a".repeat(30), "b ".repeat(20));
        let parts = split_html(&html, 50);
        assert_eq!(parts[0], "a".repeat(30));
        assert!(parts[1].starts_with('b'));
    }

    #[test]
    fn falls_back_to_lines_then_spaces_then_anywhere() {
        let parts = split_html("aaaa bbbb\ncccc dddd", 12);
        assert_eq!(parts, vec!["aaaa bbbb", "cccc dddd"]);
        let parts = split_html("aaaa bbbb cccc", 11);
        assert_eq!(parts, vec!["aaaa bbbb", "cccc"]);
        let parts = split_html(&"x".repeat(25), 10);
        assert_eq!(parts, vec!["x".repeat(10), "x".repeat(10), "x".repeat(5)]);
    }

    #[test]
    fn never_breaks_entities_and_reopens_tags() {
        let html = format!(
            "<pre><code class=\"language-rs\">{}</code></pre>",
            "&lt;&amp;\n".repeat(40)
        );
        let parts = split_html(&html, 100);
        assert!(parts.len() > 3);
        for part in &parts {
            assert!(telegram_len(part) <= 100, "{part}");
            assert!(
                part.starts_with("<pre><code class=\"language-rs\">"),
                "{part}"
            );
            assert_well_formed(part);
            for piece in part.split('&').skip(1) {
                assert!(
                    piece.starts_with("lt;") || piece.starts_with("amp;"),
                    "{part}"
                );
            }
        }
        let joined: String = parts
            .iter()
            .map(|p| to_plain_text(p))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(joined.matches("<&").count(), 40);
    }

    #[test]
    fn ten_thousand_characters_of_markdown_split_cleanly() {
        let mut markdown = String::new();
        let mut i = 0;
        while markdown.len() < 10_000 {
            markdown.push_str(&format!(
                "Paragraph {i} with <b> & **bold** text.\n\n```\ncode {i} <x> && y\n```\n\n"
            ));
            i += 1;
        }
        let html = markdown_to_html(&markdown);
        let parts = split_html(&html, TELEGRAM_LIMIT);
        assert!(parts.len() >= 3, "{}", parts.len());
        let mut visible = String::new();
        for part in &parts {
            assert!(telegram_len(part) <= TELEGRAM_LIMIT);
            assert_well_formed(part);
            visible.push_str(&to_plain_text(part));
            visible.push('\n');
        }
        for n in 0..i {
            assert!(
                visible.contains(&format!("Paragraph {n} with <b> & bold text.")),
                "{n}"
            );
            assert!(visible.contains(&format!("code {n} <x> && y")), "{n}");
        }
    }

    #[test]
    fn counts_utf16_units() {
        let parts = split_html(&"😀".repeat(10), 10);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| telegram_len(p) <= 10));
    }
}
