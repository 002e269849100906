//! A terminal's scrollback: the last lines of text shown, oldest first.

use alloc::collections::VecDeque;
use alloc::string::String;

pub struct Scrollback {
    lines: VecDeque<String>,
    max: usize,
}

impl Scrollback {
    /// Keeps at most `max` lines (at least 1).
    pub fn new(max: usize) -> Scrollback {
        Scrollback {
            lines: VecDeque::new(),
            max: max.max(1),
        }
    }

    /// Appends `text`, one line per `\n`-ended piece (a last piece without
    /// `\n` is a line too; empty text adds nothing). `\r` is dropped.
    pub fn push(&mut self, text: &str) {
        let text = text.strip_suffix('\n').unwrap_or(text);
        if text.is_empty() {
            return;
        }
        for l in text.split('\n') {
            if self.lines.len() == self.max {
                self.lines.pop_front();
            }
            self.lines.push_back(l.replace('\r', ""));
        }
    }

    pub fn lines(&self) -> impl Iterator<Item = &String> {
        self.lines.iter()
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn clear(&mut self) {
        self.lines.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn lines_are_split_bounded_and_oldest_dropped() {
        let mut s = Scrollback::new(3);
        s.push("");
        assert!(s.is_empty());
        s.push("kestrel> ps\n");
        s.push("a\r\nb\n\nc");
        let all: Vec<&str> = s.lines().map(|l| l.as_str()).collect();
        assert_eq!(all, ["b", "", "c"], "the oldest lines went; blank lines stay");
        assert_eq!(s.len(), 3);
        s.clear();
        assert!(s.is_empty());
        assert_eq!(Scrollback::new(0).max, 1);
    }
}
