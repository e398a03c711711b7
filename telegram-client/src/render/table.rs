//! Markdown tables, which Telegram cannot show, as monospaced text with
//! padded columns.

/// A Markdown table being collected: rows of cells as plain text.
#[derive(Default)]
pub(super) struct Table {
    pub(super) rows: Vec<Vec<String>>,
    pub(super) header_rows: usize,
}

impl Table {
    pub(super) fn cell(&mut self) -> Option<&mut String> {
        self.rows.last_mut().and_then(|row| row.last_mut())
    }

    /// The table as monospaced lines with padded columns.
    pub(super) fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.trim().chars().count());
            }
        }
        let mut lines = Vec::new();
        for (r, row) in self.rows.iter().enumerate() {
            let cells: Vec<String> = (0..columns)
                .map(|i| {
                    let cell = row.get(i).map_or("", |c| c.trim());
                    format!("{cell:<width$}", width = widths[i])
                })
                .collect();
            lines.push(cells.join(" | ").trim_end().to_owned());
            if r + 1 == self.header_rows {
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                lines.push(rule.join("-+-"));
            }
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_and_the_header_ruled() {
        let table = Table {
            rows: vec![
                vec!["name".into(), "n".into()],
                vec!["a".into(), "10".into()],
            ],
            header_rows: 1,
        };
        assert_eq!(table.render(), "name | n\n-----+---\na    | 10");
    }
}
