//! Blocks laid out whole: fenced code and tables.

use super::Renderer;
use crate::render::text::{split_by_width, truncate, width};

impl Renderer {
    pub(super) fn end_code(&mut self) {
        let Some((lang, buf)) = self.code.take() else {
            return;
        };
        let dim = self.theme.dim();
        let code = self.theme.code();
        let bar = if self.theme.enabled {
            self.theme.paint(&dim, "│ ")
        } else {
            "    ".to_string()
        };
        let inner = self.avail().saturating_sub(width(&bar)).max(10);
        if !lang.is_empty() && self.theme.enabled {
            self.open_line();
            self.line
                .push_str(&self.theme.paint(&dim, &format!("╭ {lang}")));
            self.flush();
        }
        for raw in buf.trim_end_matches('\n').replace('\t', "    ").split('\n') {
            let pieces = if raw.is_empty() {
                vec![String::new()]
            } else {
                split_by_width(raw, inner)
            };
            for piece in pieces {
                self.open_line();
                self.line.push_str(&bar);
                self.line.push_str(&self.theme.paint(&code, &piece));
                self.flush();
            }
        }
        self.blank_before_next = true;
    }

    pub(super) fn end_table(&mut self) {
        let Some(rows) = self.table.take() else {
            return;
        };
        let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(width(cell));
            }
        }
        let sep = self.theme.paint(&self.theme.dim(), " │ ");
        for (r, row) in rows.iter().enumerate() {
            let style = if r == 0 {
                self.theme.bold()
            } else {
                self.theme.plain()
            };
            let cells: Vec<String> = (0..columns)
                .map(|i| {
                    let cell = row.get(i).map(String::as_str).unwrap_or("");
                    let pad = " ".repeat(widths[i].saturating_sub(width(cell)));
                    format!("{}{pad}", self.theme.paint(&style, cell))
                })
                .collect();
            let line = cells.join(&sep);
            self.open_line();
            let avail = self.avail();
            if width(&line) > avail && !self.theme.enabled {
                self.line.push_str(&truncate(&line, avail));
            } else {
                self.line.push_str(&line);
            }
            self.flush();
            if r == 0 {
                let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
                self.open_line();
                self.line
                    .push_str(&self.theme.paint(&self.theme.dim(), &rule.join("─┼─")));
                self.flush();
            }
        }
        self.blank_before_next = true;
    }
}
