//! Markdown, as models write it, rendered into the HTML subset that Telegram
//! accepts (`b`, `i`, `s`, `code`, `pre`, `a`, `blockquote`).
//!
//! Everything that is not a recognised Markdown construct is escaped, so `<`,
//! `>`, `&`, raw HTML and unbalanced markup in an answer can never break a
//! message: the output is always well-formed, because it is generated from
//! pulldown-cmark's balanced start/end events and never copied from the input.

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

use super::table::Table;

/// Escapes text for Telegram HTML (`&`, `<`, `>` and `"`).
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// Renders Markdown into Telegram HTML.
#[must_use]
pub fn markdown_to_html(markdown: &str) -> String {
    let options =
        Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES | Options::ENABLE_TASKLISTS;
    let mut renderer = Renderer::default();
    for event in Parser::new_ext(markdown, options) {
        renderer.event(event);
    }
    renderer.finish()
}

/// The visible text of Telegram HTML: tags dropped, entities decoded. Used as
/// the plain-text fallback when Telegram rejects a formatted message.
#[must_use]
pub fn to_plain_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(pos) = rest.find(['<', '&']) {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        if rest.starts_with('<') {
            match rest.find('>') {
                Some(end) => rest = &rest[end + 1..],
                None => {
                    out.push_str(rest);
                    rest = "";
                }
            }
        } else {
            let decoded = ["&amp;", "&lt;", "&gt;", "&quot;"]
                .iter()
                .zip(['&', '<', '>', '"'])
                .find(|(entity, _)| rest.starts_with(**entity));
            match decoded {
                Some((entity, c)) => {
                    out.push(c);
                    rest = &rest[entity.len()..];
                }
                None => {
                    out.push('&');
                    rest = &rest[1..];
                }
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether a link target may become an `<a href>`; others are shown as text.
fn is_safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    ["http://", "https://", "tg://", "mailto:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
}

#[derive(Default)]
struct Renderer {
    out: String,
    /// Open lists: the next number of an ordered list, `None` for bullets.
    lists: Vec<Option<u64>>,
    quote_depth: usize,
    bold: usize,
    italic: usize,
    strike: usize,
    /// Whether each open link became an `<a>` (unsafe targets do not).
    links: Vec<bool>,
    in_code_block: bool,
    code_block_closer: &'static str,
    table: Option<Table>,
    /// Nothing was written since the start of the current block container,
    /// so no separating newline is needed.
    at_block_start: bool,
}

impl Renderer {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => self.text(&text),
            Event::Code(code) => self.inline_code(&code),
            Event::InlineMath(math) | Event::DisplayMath(math) => self.inline_code(&math),
            Event::Html(html) | Event::InlineHtml(html) => self.text(&html),
            Event::FootnoteReference(name) => self.text(&format!("[^{name}]")),
            Event::SoftBreak | Event::HardBreak => self.text("\n"),
            Event::Rule => {
                self.separate_block();
                self.raw("——————");
            }
            Event::TaskListMarker(done) => self.text(if done { "☑ " } else { "☐ " }),
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        if let Some(table) = &mut self.table {
            match tag {
                Tag::TableRow | Tag::TableHead => table.rows.push(Vec::new()),
                Tag::TableCell => {
                    if let Some(row) = table.rows.last_mut() {
                        row.push(String::new());
                    }
                }
                _ => {}
            }
            return;
        }
        match tag {
            Tag::Paragraph | Tag::HtmlBlock | Tag::DefinitionList | Tag::FootnoteDefinition(_) => {
                self.separate_block();
            }
            Tag::Heading { .. } => {
                self.separate_block();
                self.open_bold();
            }
            Tag::BlockQuote(_) => {
                self.separate_block();
                if self.quote_depth == 0 {
                    self.raw("<blockquote>");
                    self.at_block_start = true;
                }
                self.quote_depth += 1;
            }
            Tag::CodeBlock(kind) => {
                self.separate_block();
                let language = match kind {
                    CodeBlockKind::Fenced(info) => info
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || "+-_#.".contains(*c))
                        .collect::<String>(),
                    CodeBlockKind::Indented => String::new(),
                };
                if language.is_empty() {
                    self.raw("<pre>");
                    self.code_block_closer = "</pre>";
                } else {
                    self.raw(&format!("<pre><code class=\"language-{language}\">"));
                    self.code_block_closer = "</code></pre>";
                }
                self.in_code_block = true;
            }
            Tag::List(start) => {
                if self.lists.is_empty() {
                    self.separate_block();
                } else {
                    self.newline();
                }
                self.lists.push(start);
            }
            Tag::Item => self.start_item(),
            Tag::DefinitionListTitle | Tag::DefinitionListDefinition => self.newline(),
            Tag::Table(_) => {
                self.separate_block();
                self.table = Some(Table::default());
            }
            Tag::TableHead | Tag::TableRow | Tag::TableCell => {}
            Tag::Emphasis => {
                if self.italic == 0 {
                    self.raw("<i>");
                }
                self.italic += 1;
            }
            Tag::Strong => self.open_bold(),
            Tag::Strikethrough => {
                if self.strike == 0 {
                    self.raw("<s>");
                }
                self.strike += 1;
            }
            Tag::Superscript | Tag::Subscript | Tag::MetadataBlock(_) => {}
            Tag::Link { dest_url, .. } => self.open_link(&dest_url, ""),
            Tag::Image { dest_url, .. } => self.open_link(&dest_url, "🖼 "),
        }
    }

    fn end(&mut self, tag: TagEnd) {
        if let Some(table) = &mut self.table {
            match tag {
                TagEnd::TableHead => table.header_rows = table.rows.len(),
                TagEnd::Table => {
                    let rendered = table.render();
                    self.table = None;
                    self.raw("<pre>");
                    self.raw(&escape(&rendered));
                    self.raw("</pre>");
                }
                _ => {}
            }
            return;
        }
        match tag {
            TagEnd::Heading(_) => self.close_bold(),
            TagEnd::BlockQuote(_) => {
                self.quote_depth = self.quote_depth.saturating_sub(1);
                if self.quote_depth == 0 {
                    self.trim_trailing_newlines();
                    self.raw("</blockquote>");
                }
            }
            TagEnd::CodeBlock => {
                if self.out.ends_with('\n') {
                    self.out.pop();
                }
                self.raw(self.code_block_closer);
                self.in_code_block = false;
            }
            TagEnd::List(_) => {
                self.lists.pop();
            }
            TagEnd::Emphasis => {
                self.italic = self.italic.saturating_sub(1);
                if self.italic == 0 {
                    self.raw("</i>");
                }
            }
            TagEnd::Strong => self.close_bold(),
            TagEnd::Strikethrough => {
                self.strike = self.strike.saturating_sub(1);
                if self.strike == 0 {
                    self.raw("</s>");
                }
            }
            // The guard pops the link either way; only an emitted `<a>` is closed.
            TagEnd::Link | TagEnd::Image if self.links.pop() == Some(true) => self.raw("</a>"),
            _ => {}
        }
    }

    fn start_item(&mut self) {
        self.newline();
        let depth = self.lists.len().saturating_sub(1);
        let marker = match self.lists.last_mut() {
            Some(Some(number)) => {
                let marker = format!("{number}. ");
                *number += 1;
                marker
            }
            _ => "• ".to_owned(),
        };
        self.raw(&"   ".repeat(depth));
        self.raw(&marker);
        self.at_block_start = true;
    }

    fn open_bold(&mut self) {
        if self.bold == 0 {
            self.raw("<b>");
        }
        self.bold += 1;
    }

    fn close_bold(&mut self) {
        self.bold = self.bold.saturating_sub(1);
        if self.bold == 0 {
            self.raw("</b>");
        }
    }

    fn open_link(&mut self, url: &str, prefix: &str) {
        let safe = is_safe_url(url) && self.links.is_empty();
        if safe {
            self.raw(&format!("<a href=\"{}\">", escape(url.trim())));
        }
        self.links.push(safe);
        if !prefix.is_empty() {
            self.text(prefix);
        }
    }

    fn text(&mut self, text: &str) {
        if let Some(cell) = self.table.as_mut().and_then(Table::cell) {
            cell.push_str(text);
            return;
        }
        if text.is_empty() {
            return;
        }
        self.out.push_str(&escape(text));
        self.at_block_start = false;
    }

    fn inline_code(&mut self, code: &str) {
        if self.table.is_some() || self.in_code_block {
            self.text(code);
            return;
        }
        self.raw("<code>");
        self.text(code);
        self.raw("</code>");
    }

    fn raw(&mut self, html: &str) {
        self.out.push_str(html);
        if !html.is_empty() {
            self.at_block_start = false;
        }
    }

    /// Starts a new block: a blank line at top level, a line break in lists.
    fn separate_block(&mut self) {
        if self.at_block_start || self.out.is_empty() {
            return;
        }
        if self.lists.is_empty() {
            self.trim_trailing_newlines();
            self.out.push_str("\n\n");
        } else {
            self.newline();
            self.out.push_str(&"   ".repeat(self.lists.len()));
            self.at_block_start = true;
        }
    }

    fn newline(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with('\n') && !self.at_block_start {
            self.out.push('\n');
        }
    }

    fn trim_trailing_newlines(&mut self) {
        let trimmed = self.out.trim_end_matches([' ', '\n']).len();
        self.out.truncate(trimmed);
    }

    fn finish(mut self) -> String {
        // Unterminated constructs are closed by pulldown-cmark, so only
        // trailing whitespace is left to trim.
        self.trim_trailing_newlines();
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_is_not_markdown() {
        assert_eq!(
            markdown_to_html("a < b && c > d <b>raw</b> &amp;"),
            "a &lt; b &amp;&amp; c &gt; d &lt;b&gt;raw&lt;/b&gt; &amp;"
        );
    }

    #[test]
    fn renders_inline_styles() {
        assert_eq!(
            markdown_to_html("**bold** *it* ~~gone~~ `x<y`"),
            "<b>bold</b> <i>it</i> <s>gone</s> <code>x&lt;y</code>"
        );
    }

    #[test]
    fn renders_fenced_code_with_language() {
        let html = markdown_to_html("Look:\n\n```rust\nfn main() { a < b }\n```\n\nDone.");
        assert_eq!(
            html,
            "Look:\n\n<pre><code class=\"language-rust\">fn main() { a &lt; b }</code></pre>\n\nDone."
        );
    }

    #[test]
    fn unterminated_fence_still_closes() {
        let html = markdown_to_html("```\nlet x = 1;");
        assert_eq!(html, "<pre>let x = 1;</pre>");
    }

    #[test]
    fn headings_become_bold_paragraphs() {
        assert_eq!(markdown_to_html("# Title\nText"), "<b>Title</b>\n\nText");
    }

    #[test]
    fn nested_bold_is_not_doubled() {
        assert_eq!(markdown_to_html("## A **b** c"), "<b>A b c</b>");
    }

    #[test]
    fn lists_get_markers_and_indentation() {
        let html = markdown_to_html("- one\n- two\n  1. a\n  2. b\n\nAfter");
        assert_eq!(html, "• one\n• two\n   1. a\n   2. b\n\nAfter");
    }

    #[test]
    fn only_safe_links_become_anchors() {
        assert_eq!(
            markdown_to_html("[x](https://e.com/?a=1&b=\"2\") [y](javascript:alert(1))"),
            "<a href=\"https://e.com/?a=1&amp;b=&quot;2&quot;\">x</a> y"
        );
    }

    #[test]
    fn nested_quotes_use_one_blockquote() {
        assert_eq!(
            markdown_to_html("> a\n>> b\n\nc"),
            "<blockquote>a\n\nb</blockquote>\n\nc"
        );
    }

    #[test]
    fn tables_become_preformatted() {
        let html = markdown_to_html("| a | bb |\n|---|---|\n| 1 | <2> |");
        assert_eq!(html, "<pre>a | bb\n--+----\n1 | &lt;2&gt;</pre>");
    }

    #[test]
    fn plain_text_drops_tags_and_decodes_entities() {
        assert_eq!(
            to_plain_text("<b>a</b> &lt;b&gt; &amp;amp; <a href=\"x\">y</a> & z"),
            "a <b> &amp; y & z"
        );
    }
}
