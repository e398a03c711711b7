//! Filling lines: words wrapped to the width under the prefixes of the
//! containers they are in (quotes, list items).

use console::Style;

use super::Renderer;
use crate::render::text::{split_by_width, width};

impl Renderer {
    pub(super) fn prefix_width(&self) -> usize {
        self.prefixes.iter().map(|p| p.width).sum()
    }

    pub(super) fn avail(&self) -> usize {
        self.max.saturating_sub(self.prefix_width()).max(10)
    }

    /// Starts a block: a blank line after the previous one.
    pub(super) fn block(&mut self) {
        self.flush();
        if self.blank_before_next && !self.lines.is_empty() {
            let bar = self.bare_prefix();
            self.lines.push(bar);
        }
        self.blank_before_next = false;
    }

    /// The prefix of an otherwise empty line (quote bars only).
    pub(super) fn bare_prefix(&self) -> String {
        self.prefixes
            .iter()
            .map(|p| p.rest.trim_end().to_string())
            .collect()
    }

    pub(super) fn open_line(&mut self) {
        if self.line_open {
            return;
        }
        let mut prefix = String::new();
        for p in &mut self.prefixes {
            prefix.push_str(if p.used { &p.rest } else { &p.first });
            p.used = true;
        }
        self.line = prefix;
        self.line_width = 0;
        self.line_open = true;
    }

    pub(super) fn flush(&mut self) {
        if self.line_open {
            let line = std::mem::take(&mut self.line);
            self.lines.push(line.trim_end().to_string());
            self.line_open = false;
            self.line_width = 0;
        }
        self.pending_space = false;
    }

    pub(super) fn text(&mut self, text: &str) {
        if let Some(cell) = self.table.as_ref().map(|_| &mut self.cell) {
            cell.push_str(text);
            return;
        }
        let style = self.style();
        for (i, word) in text.split([' ', '\n']).enumerate() {
            if i > 0 {
                self.pending_space = true;
            }
            if !word.is_empty() {
                self.word(word, &style);
            }
        }
    }

    pub(super) fn word(&mut self, word: &str, style: &Style) {
        let w = width(word);
        let avail = self.avail();
        let space = usize::from(self.pending_space && self.line_width > 0);
        if self.line_open && self.line_width > 0 && self.line_width + space + w > avail {
            self.flush();
        }
        self.open_line();
        if self.pending_space && self.line_width > 0 {
            self.line.push(' ');
            self.line_width += 1;
        }
        self.pending_space = false;
        if w > avail {
            for piece in split_by_width(word, avail) {
                if self.line_width > 0 {
                    self.flush();
                    self.open_line();
                }
                self.line_width += width(&piece);
                self.line.push_str(&self.theme.paint(style, &piece));
            }
            return;
        }
        self.line.push_str(&self.theme.paint(style, word));
        self.line_width += w;
    }

    /// Text that is never split (markers, inline code).
    pub(super) fn atom(&mut self, text: &str, style: &Style) {
        self.word(text, style);
    }
}
