//! Telegram's HTML parse mode, as strictly as the real Bot API applies it:
//! only its tags, balanced and properly nested, only its entities, and
//! nothing inside `code`/`pre` but text (a `pre` may wrap one `code`).

/// Tags Telegram's HTML parse mode accepts.
const TAGS: &[&str] = &[
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
];

/// Parses Telegram HTML into the text the user sees.
///
/// # Errors
/// The description Telegram gives, such as
/// `Bad Request: can't parse entities: Unsupported start tag "div" at byte offset 0`.
pub fn visible_text(html: &str) -> Result<String, String> {
    let fail = |why: String| Err(format!("Bad Request: can't parse entities: {why}"));
    let mut text = String::new();
    let mut stack: Vec<String> = Vec::new();
    let mut i = 0;
    while i < html.len() {
        let rest = &html[i..];
        if rest.starts_with('<') {
            let Some(end) = rest.find('>') else {
                return fail(format!("Unclosed start tag at byte offset {i}"));
            };
            let inner = &rest[1..end];
            if let Some(name) = inner.strip_prefix('/') {
                let name = name.trim().to_ascii_lowercase();
                match stack.pop() {
                    Some(open) if open == name => {}
                    Some(open) => {
                        return fail(format!(
                            "Unmatched end tag at byte offset {i}, expected \"</{open}>\", found \"</{name}>\""
                        ));
                    }
                    None => return fail(format!("Unexpected end tag at byte offset {i}")),
                }
            } else {
                let name: String = inner
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect::<String>()
                    .to_ascii_lowercase();
                if !TAGS.contains(&name.as_str()) {
                    return fail(format!(
                        "Unsupported start tag \"{name}\" at byte offset {i}"
                    ));
                }
                if let Some(parent) = stack.last() {
                    let code_in_pre = parent == "pre" && name == "code";
                    if (parent == "code" || parent == "pre") && !code_in_pre {
                        return fail(format!(
                            "Can't nest \"{name}\" in \"{parent}\" at byte offset {i}"
                        ));
                    }
                    if name == "blockquote" && stack.iter().any(|t| t == "blockquote") {
                        return fail(format!("Can't nest blockquotes at byte offset {i}"));
                    }
                    if name == "a" && stack.iter().any(|t| t == "a") {
                        return fail(format!("Can't nest links at byte offset {i}"));
                    }
                }
                if name == "a" && !inner.contains("href=\"") {
                    return fail(format!("Link without href at byte offset {i}"));
                }
                stack.push(name);
            }
            i += end + 1;
        } else if rest.starts_with('&') {
            let entity_end = rest.find(';').filter(|e| {
                *e <= 10
                    && rest[1..*e]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '#')
            });
            match entity_end {
                Some(end) => {
                    let name = &rest[1..end];
                    let decoded = match name {
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "amp" => Some('&'),
                        "quot" => Some('"'),
                        _ => name
                            .strip_prefix("#x")
                            .map(|hex| u32::from_str_radix(hex, 16))
                            .or_else(|| name.strip_prefix('#').map(str::parse::<u32>))
                            .and_then(Result::ok)
                            .and_then(char::from_u32),
                    };
                    match decoded {
                        Some(c) => text.push(c),
                        None => {
                            return fail(format!(
                                "Unsupported HTML entity \"&{name};\" at byte offset {i}"
                            ));
                        }
                    }
                    i += end + 1;
                }
                None => {
                    text.push('&');
                    i += 1;
                }
            }
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            text.push(c);
            i += c.len_utf8();
        }
    }
    if let Some(open) = stack.pop() {
        return fail(format!(
            "Can't find end tag corresponding to start tag \"{open}\""
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_telegram_html_and_decodes_entities() {
        let text = visible_text(
            "<b>a</b> &lt;b&gt; &amp; &#65; <pre><code class=\"language-rs\">x</code></pre> & y",
        );
        assert_eq!(text.as_deref(), Ok("a <b> & A x & y"));
    }

    #[test]
    fn rejects_what_telegram_rejects() {
        for bad in [
            "<b>open",
            "<b><i>x</b></i>",
            "<div>x</div>",
            "a < b",
            "<code><b>x</b></code>",
            "&nbsp;",
            "</b>",
        ] {
            let error = visible_text(bad).expect_err(bad);
            assert!(
                error.starts_with("Bad Request: can't parse entities"),
                "{bad}: {error}"
            );
        }
    }
}
