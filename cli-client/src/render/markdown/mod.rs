//! Markdown for the terminal: headings, emphasis, lists, quotes, code blocks,
//! tables and rules, wrapped to the terminal's width.

use console::Style;
use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::style::Theme;
use super::text::width;

mod blocks;
mod lines;

/// Renders `markdown` as lines of at most `max_width` columns (code lines are
/// cut into pieces rather than run over). Styled with escape codes only when
/// `theme.enabled`; otherwise the Markdown markers that carry meaning stay.
pub fn render(markdown: &str, max_width: usize, theme: Theme) -> Vec<String> {
    let mut r = Renderer::new(max_width.max(20), theme);
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    for event in Parser::new_ext(markdown, options) {
        r.event(event);
    }
    r.finish()
}

/// A container that prefixes the lines inside it.
struct Prefix {
    first: String,
    rest: String,
    width: usize,
    used: bool,
}

struct Renderer {
    theme: Theme,
    max: usize,
    lines: Vec<String>,
    /// The line being filled: styled text and its visible width.
    line: String,
    line_width: usize,
    line_open: bool,
    pending_space: bool,
    prefixes: Vec<Prefix>,
    styles: Vec<Style>,
    lists: Vec<Option<u64>>,
    blank_before_next: bool,
    code: Option<(String, String)>,
    link: Vec<String>,
    table: Option<Vec<Vec<String>>>,
    cell: String,
    heading: Option<usize>,
}

impl Renderer {
    fn new(max: usize, theme: Theme) -> Self {
        Renderer {
            theme,
            max,
            lines: Vec::new(),
            line: String::new(),
            line_width: 0,
            line_open: false,
            pending_space: false,
            prefixes: Vec::new(),
            styles: Vec::new(),
            lists: Vec::new(),
            blank_before_next: false,
            code: None,
            link: Vec::new(),
            table: None,
            cell: String::new(),
            heading: None,
        }
    }

    fn finish(mut self) -> Vec<String> {
        self.flush();
        while self.lines.last().is_some_and(|l| l.trim().is_empty()) {
            self.lines.pop();
        }
        self.lines
    }

    fn style(&self) -> Style {
        self.styles
            .last()
            .cloned()
            .unwrap_or_else(|| self.theme.plain())
    }

    fn push_style(&mut self, f: impl FnOnce(Style) -> Style) {
        let next = f(self.style());
        self.styles.push(next);
    }

    fn event(&mut self, event: Event<'_>) {
        if let Some((_, buf)) = self.code.as_mut() {
            match event {
                Event::Text(t) => buf.push_str(&t),
                Event::End(TagEnd::CodeBlock) => self.end_code(),
                _ => {}
            }
            return;
        }
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(t) => self.text(&t),
            Event::Code(t) => {
                if self.table.is_some() {
                    self.cell.push_str(&t);
                } else if self.theme.enabled {
                    let style = self.theme.code();
                    self.atom(&t, &style);
                } else {
                    self.atom(&format!("`{t}`"), &self.theme.plain());
                }
            }
            Event::InlineMath(t)
            | Event::DisplayMath(t)
            | Event::Html(t)
            | Event::InlineHtml(t) => self.text(&t),
            Event::FootnoteReference(t) => self.text(&format!("[^{t}]")),
            Event::SoftBreak => self.pending_space = true,
            Event::HardBreak => self.flush(),
            Event::Rule => {
                self.block();
                let rule = "─".repeat(self.avail().min(40));
                self.open_line();
                self.line
                    .push_str(&self.theme.paint(&self.theme.dim(), &rule));
                self.flush();
                self.blank_before_next = true;
            }
            Event::TaskListMarker(done) => {
                self.atom(if done { "[x]" } else { "[ ]" }, &self.theme.plain())
            }
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph => self.block(),
            Tag::Heading { level, .. } => {
                self.block();
                let level = heading_number(level);
                self.heading = Some(level);
                let style = self.theme.heading(level);
                self.styles.push(style);
                if !self.theme.enabled {
                    self.atom(&"#".repeat(level), &self.theme.plain());
                    self.pending_space = true;
                }
            }
            Tag::BlockQuote(_) => {
                self.block();
                let bar = self.theme.paint(&self.theme.dim(), "│ ");
                self.prefixes.push(Prefix {
                    first: bar.clone(),
                    rest: bar,
                    width: 2,
                    used: false,
                });
            }
            Tag::CodeBlock(kind) => {
                self.block();
                let lang = match kind {
                    CodeBlockKind::Fenced(l) => {
                        l.split([',', ' ']).next().unwrap_or("").to_string()
                    }
                    CodeBlockKind::Indented => String::new(),
                };
                self.code = Some((lang, String::new()));
            }
            Tag::List(start) => {
                if self.lists.is_empty() {
                    self.block();
                } else {
                    self.flush();
                }
                self.lists.push(start);
            }
            Tag::Item => {
                self.flush();
                let depth = self.lists.len();
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        let m = format!("{n}. ");
                        *n += 1;
                        m
                    }
                    _ => format!("{} ", if depth % 2 == 1 { "•" } else { "◦" }),
                };
                let w = width(&marker);
                let first = if self.theme.enabled {
                    self.theme.paint(&self.theme.dim(), &marker)
                } else {
                    marker
                };
                self.prefixes.push(Prefix {
                    first,
                    rest: " ".repeat(w),
                    width: w,
                    used: false,
                });
                self.blank_before_next = false;
            }
            Tag::Emphasis => {
                if self.theme.enabled {
                    self.push_style(Style::italic);
                } else {
                    self.glue_marker("*");
                    self.push_style(|s| s);
                }
            }
            Tag::Strong => {
                if self.theme.enabled {
                    self.push_style(Style::bold);
                } else {
                    self.glue_marker("**");
                    self.push_style(|s| s);
                }
            }
            Tag::Strikethrough => self.push_style(Style::strikethrough),
            Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                self.link.push(dest_url.to_string());
                let link = self.theme.link();
                self.styles.push(link);
            }
            Tag::Table(_) => {
                self.block();
                self.table = Some(Vec::new());
            }
            Tag::TableHead | Tag::TableRow => {
                if let Some(rows) = self.table.as_mut() {
                    rows.push(Vec::new());
                }
            }
            Tag::TableCell => self.cell.clear(),
            _ => {}
        }
    }

    /// A Markdown marker glued to the next word (unstyled mode).
    fn glue_marker(&mut self, marker: &str) {
        let plain = self.theme.plain();
        self.word(marker, &plain);
        self.pending_space = false;
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph => {
                self.flush();
                self.blank_before_next = true;
            }
            TagEnd::Heading(_) => {
                self.styles.pop();
                self.heading = None;
                self.flush();
                self.blank_before_next = true;
            }
            TagEnd::BlockQuote(_) => {
                self.flush();
                self.prefixes.pop();
                self.blank_before_next = true;
            }
            TagEnd::List(_) => {
                self.flush();
                self.lists.pop();
                self.blank_before_next = true;
            }
            TagEnd::Item => {
                self.flush();
                self.prefixes.pop();
            }
            TagEnd::Emphasis | TagEnd::Strong => {
                self.styles.pop();
                if !self.theme.enabled {
                    let marker = if tag == TagEnd::Strong { "**" } else { "*" };
                    self.line.push_str(marker);
                    self.line_width += marker.len();
                }
            }
            TagEnd::Strikethrough => {
                self.styles.pop();
            }
            TagEnd::Link | TagEnd::Image => {
                self.styles.pop();
                if let Some(url) = self
                    .link
                    .pop()
                    .filter(|u| !u.is_empty() && !self.line.contains(u.as_str()))
                {
                    let dim = self.theme.dim();
                    self.pending_space = true;
                    self.atom(&format!("({url})"), &dim);
                }
            }
            TagEnd::TableCell => {
                let cell = std::mem::take(&mut self.cell);
                if let Some(row) = self.table.as_mut().and_then(|rows| rows.last_mut()) {
                    row.push(cell.trim().to_string());
                }
            }
            TagEnd::Table => self.end_table(),
            _ => {}
        }
    }
}

fn heading_number(level: HeadingLevel) -> usize {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

#[cfg(test)]
mod tests;
