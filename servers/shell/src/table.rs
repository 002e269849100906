//! Text tables with aligned columns: a header row, then one row per item;
//! columns two spaces apart, numbers right-aligned, no trailing blanks.

use alloc::string::String;
use alloc::vec::Vec;

pub struct Table {
    header: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| String::from(*h)).collect(),
            right: alloc::vec![false; header.len()],
            rows: Vec::new(),
        }
    }

    /// Right-aligns the given columns (numbers).
    pub fn right(mut self, columns: &[usize]) -> Table {
        for &c in columns {
            if let Some(r) = self.right.get_mut(c) {
                *r = true;
            }
        }
        self
    }

    /// Adds a row; missing cells are blank, extra ones dropped.
    pub fn row(&mut self, cells: impl IntoIterator<Item = String>) {
        let mut r: Vec<String> = cells.into_iter().take(self.header.len()).collect();
        r.resize(self.header.len(), String::new());
        self.rows.push(r);
    }

    pub fn render(&self) -> String {
        let n = self.header.len();
        let width = |c: usize| {
            core::iter::once(&self.header)
                .chain(&self.rows)
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..n).map(width).collect();
        let mut out = String::new();
        for r in core::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (c, cell) in r.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                let pad = widths[c] - cell.chars().count();
                if self.right[c] {
                    line.extend(core::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.extend(core::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_columns() {
        let mut t = Table::new(&["ID", "NAME", "CPU"]).right(&[0, 2]);
        t.row(["1".into(), "console".into(), "0.005 s".into()]);
        t.row(["12".into(), "rtc-pl031".into(), "12.000 s".into()]);
        t.row(["3".into()]);
        assert_eq!(
            t.render(),
            "ID  NAME            CPU\n 1  console     0.005 s\n12  rtc-pl031  12.000 s\n 3\n"
        );
    }
}
