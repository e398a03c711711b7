//! Aligned columns for lists (projects, discussions, models).

use super::style::Theme;
use super::text::{truncate, width};

/// A table: a header row and rows of cells; the last column takes what is left.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The lines, at most `max_width` wide when given (the last column is cut).
    pub fn render(&self, theme: Theme, max_width: Option<usize>) -> Vec<String> {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(width(cell));
            }
        }
        let mut lines = Vec::new();
        let all = std::iter::once(&self.header).chain(self.rows.iter());
        for (r, row) in all.enumerate() {
            let mut line = String::new();
            let mut used = 0;
            for (i, cell) in row.iter().enumerate().take(columns) {
                let last = i + 1 == columns;
                let cell = match (last, max_width) {
                    (true, Some(max)) => truncate(cell, max.saturating_sub(used).max(8)),
                    _ => cell.clone(),
                };
                let pad = if last {
                    0
                } else {
                    widths[i] - width(&cell) + 2
                };
                let styled = if r == 0 && !cell.is_empty() {
                    theme.paint(&theme.bold(), &cell)
                } else {
                    cell.clone()
                };
                line.push_str(&styled);
                line.push_str(&" ".repeat(pad));
                used += width(&cell) + pad;
            }
            lines.push(line.trim_end().to_string());
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_the_last_is_cut() {
        let mut t = Table::new(&["ID", "NAME"]);
        t.row(vec!["1".into(), "a very long name indeed".into()]);
        t.row(vec!["22".into(), "b".into()]);
        let lines = t.render(Theme::new(false), Some(14));
        assert_eq!(lines, ["ID  NAME", "1   a very lo…", "22  b"]);
    }
}
