//! The line editor: turns terminal input, one byte at a time, into lines,
//! and says what to echo so the screen shows the line being edited.
//!
//! Keys: printable ASCII inserts at the cursor; Backspace (0x7f or 0x08)
//! erases before it; Delete (`ESC [ 3 ~`) at it; Ctrl-U erases from the
//! start of the line to the cursor; Ctrl-C cancels the line; Enter (CR,
//! LF, or CRLF as one) ends it; Up/Down (`ESC [ A`/`B` or `ESC O A`/`B`)
//! walk the history; Left/Right move the cursor; Home/End (Ctrl-A/Ctrl-E,
//! `ESC [ H`/`F`, `ESC [ 1 ~`/`4 ~`) jump. Everything else is ignored,
//! including the whole of an unknown escape sequence. The state lives in
//! the editor, so a sequence may arrive split across any number of reads.
//!
//! Echo is plain VT100: characters, `\x08` to move left, `ESC [ K` to
//! clear to the end of the line, BEL when a line is full.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

/// Longest line, in characters; input beyond it is refused (with a bell).
pub const MAX_LINE: usize = 200;
/// Lines kept in the history.
pub const HISTORY: usize = 32;
/// Longest escape sequence kept track of; longer ones are dropped whole.
const MAX_ESCAPE: usize = 8;

const CTRL_A: u8 = 0x01;
const CTRL_C: u8 = 0x03;
const CTRL_E: u8 = 0x05;
const BS: u8 = 0x08;
const LF: u8 = b'\n';
const CR: u8 = b'\r';
const CTRL_U: u8 = 0x15;
const ESC: u8 = 0x1b;
const DEL: u8 = 0x7f;
const BELL: u8 = 0x07;

/// What a key completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Enter: the line (possibly empty).
    Line(String),
    /// Ctrl-C: the line was dropped.
    Cancel,
}

/// Where in an escape sequence the input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Start,
    /// After `ESC [`: parameter bytes so far (count), the first number,
    /// and whether it ended (a `;` came).
    Csi {
        len: usize,
        param: u16,
        more: bool,
    },
    /// Inside a sequence too long to be a key: skipped to its final byte.
    Skip,
    /// After `ESC O` (application cursor keys).
    Ss3,
}

pub struct Editor {
    line: Vec<u8>,
    cursor: usize,
    history: VecDeque<String>,
    /// Index into `history` while browsing it, and the line being typed
    /// before browsing started (Down past the newest entry brings it back).
    browsing: Option<usize>,
    draft: Vec<u8>,
    escape: Escape,
    /// The last byte was CR: an LF right after it is the same Enter.
    after_cr: bool,
}

impl Default for Editor {
    fn default() -> Self {
        Editor::new()
    }
}

impl Editor {
    pub fn new() -> Editor {
        Editor {
            line: Vec::new(),
            cursor: 0,
            history: VecDeque::new(),
            browsing: None,
            draft: Vec::new(),
            escape: Escape::None,
            after_cr: false,
        }
    }

    /// The line as typed so far.
    pub fn line(&self) -> &str {
        // Only printable ASCII is ever inserted.
        core::str::from_utf8(&self.line).unwrap_or("")
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// History, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &str> {
        self.history.iter().map(String::as_str)
    }

    /// Shows the line again (after the prompt, on a fresh screen line)
    /// with the cursor where it was.
    pub fn redraw(&self, echo: &mut Vec<u8>) {
        echo.extend_from_slice(&self.line);
        move_left(self.line.len() - self.cursor, echo);
    }

    /// Feeds one input byte; what to echo is appended to `echo`.
    pub fn key(&mut self, byte: u8, echo: &mut Vec<u8>) -> Option<Event> {
        let after_cr = core::mem::replace(&mut self.after_cr, false);
        match self.escape {
            Escape::None => {}
            Escape::Start => {
                self.escape = match byte {
                    b'[' => Escape::Csi {
                        len: 0,
                        param: 0,
                        more: false,
                    },
                    b'O' => Escape::Ss3,
                    // ESC ESC: the first was alone; start over.
                    ESC => Escape::Start,
                    _ => Escape::None,
                };
                return None;
            }
            Escape::Ss3 => {
                self.escape = Escape::None;
                self.cursor_key(byte, 0, echo);
                return None;
            }
            Escape::Skip => {
                if !matches!(byte, 0x20..=0x3f) {
                    self.escape = Escape::None;
                }
                return None;
            }
            Escape::Csi { len, param, more } => {
                match byte {
                    // Parameter and intermediate bytes.
                    0x20..=0x3f => {
                        let param = match byte {
                            b'0'..=b'9' if !more => param.saturating_mul(10).saturating_add(u16::from(byte - b'0')),
                            _ => param,
                        };
                        self.escape = if len + 1 >= MAX_ESCAPE {
                            Escape::Skip
                        } else {
                            Escape::Csi {
                                len: len + 1,
                                param,
                                more: more || byte == b';',
                            }
                        };
                    }
                    // The final byte.
                    0x40..=0x7e => {
                        self.escape = Escape::None;
                        self.cursor_key(byte, param, echo);
                    }
                    // Not part of a sequence: drop the sequence and the byte.
                    _ => self.escape = Escape::None,
                }
                return None;
            }
        }
        match byte {
            CR => {
                self.after_cr = true;
                return Some(self.enter(echo));
            }
            LF if after_cr => {}
            LF => return Some(self.enter(echo)),
            CTRL_C => {
                // To the end of the line first, so nothing is overwritten.
                echo.extend_from_slice(&self.line[self.cursor..]);
                echo.extend_from_slice(b"^C\r\n");
                self.reset();
                return Some(Event::Cancel);
            }
            ESC => self.escape = Escape::Start,
            DEL | BS => self.backspace(echo),
            CTRL_U => self.kill_to_start(echo),
            CTRL_A => self.home(echo),
            CTRL_E => self.end(echo),
            0x20..=0x7e => self.insert(byte, echo),
            _ => {}
        }
        None
    }

    /// Feeds a chunk of input; every completed line or cancel, in order.
    pub fn feed(&mut self, input: &[u8], echo: &mut Vec<u8>) -> Vec<Event> {
        input.iter().filter_map(|&b| self.key(b, echo)).collect()
    }

    fn cursor_key(&mut self, last: u8, param: u16, echo: &mut Vec<u8>) {
        match (last, param) {
            (b'A', _) => self.history_up(echo),
            (b'B', _) => self.history_down(echo),
            (b'C', _) => self.right(echo),
            (b'D', _) => self.left(echo),
            (b'H', _) | (b'~', 1 | 7) => self.home(echo),
            (b'F', _) | (b'~', 4 | 8) => self.end(echo),
            (b'~', 3) => self.delete(echo),
            _ => {}
        }
    }

    fn enter(&mut self, echo: &mut Vec<u8>) -> Event {
        echo.extend_from_slice(b"\r\n");
        let line = String::from(self.line());
        let trimmed = line.trim();
        if !trimmed.is_empty() && self.history.back().map(String::as_str) != Some(trimmed) {
            if self.history.len() == HISTORY {
                self.history.pop_front();
            }
            self.history.push_back(trimmed.into());
        }
        self.reset();
        Event::Line(line)
    }

    fn reset(&mut self) {
        self.line.clear();
        self.cursor = 0;
        self.browsing = None;
        self.draft.clear();
    }

    fn insert(&mut self, c: u8, echo: &mut Vec<u8>) {
        if self.line.len() >= MAX_LINE {
            echo.push(BELL);
            return;
        }
        self.line.insert(self.cursor, c);
        self.cursor += 1;
        echo.push(c);
        self.redraw_tail(0, echo);
    }

    fn backspace(&mut self, echo: &mut Vec<u8>) {
        if self.cursor == 0 {
            return;
        }
        self.cursor -= 1;
        self.line.remove(self.cursor);
        echo.push(BS);
        self.redraw_tail(1, echo);
    }

    fn delete(&mut self, echo: &mut Vec<u8>) {
        if self.cursor < self.line.len() {
            self.line.remove(self.cursor);
            self.redraw_tail(1, echo);
        }
    }

    fn kill_to_start(&mut self, echo: &mut Vec<u8>) {
        if self.cursor == 0 {
            return;
        }
        move_left(self.cursor, echo);
        self.line.drain(..self.cursor);
        self.cursor = 0;
        echo.extend_from_slice(&self.line);
        echo.extend_from_slice(b"\x1b[K");
        move_left(self.line.len(), echo);
    }

    fn left(&mut self, echo: &mut Vec<u8>) {
        if self.cursor > 0 {
            self.cursor -= 1;
            echo.push(BS);
        }
    }

    fn right(&mut self, echo: &mut Vec<u8>) {
        if self.cursor < self.line.len() {
            // Rewriting the character moves right on any terminal.
            echo.push(self.line[self.cursor]);
            self.cursor += 1;
        }
    }

    fn home(&mut self, echo: &mut Vec<u8>) {
        move_left(self.cursor, echo);
        self.cursor = 0;
    }

    fn end(&mut self, echo: &mut Vec<u8>) {
        echo.extend_from_slice(&self.line[self.cursor..]);
        self.cursor = self.line.len();
    }

    /// Rewrites the line from the cursor on, blanks `erased` characters
    /// after it (the line got shorter), and puts the cursor back.
    fn redraw_tail(&self, erased: usize, echo: &mut Vec<u8>) {
        let tail = &self.line[self.cursor..];
        if tail.is_empty() && erased == 0 {
            return;
        }
        echo.extend_from_slice(tail);
        echo.extend(core::iter::repeat_n(b' ', erased));
        move_left(tail.len() + erased, echo);
    }

    /// Replaces the whole line (history), cursor at its end.
    fn replace(&mut self, new: Vec<u8>, echo: &mut Vec<u8>) {
        move_left(self.cursor, echo);
        echo.extend_from_slice(&new);
        echo.extend_from_slice(b"\x1b[K");
        self.cursor = new.len();
        self.line = new;
    }

    fn history_up(&mut self, echo: &mut Vec<u8>) {
        let i = match self.browsing {
            None if self.history.is_empty() => return,
            None => {
                self.draft = core::mem::take(&mut self.line);
                self.history.len() - 1
            }
            Some(0) => return,
            Some(i) => i - 1,
        };
        self.browsing = Some(i);
        self.replace(self.history[i].as_bytes().to_vec(), echo);
    }

    fn history_down(&mut self, echo: &mut Vec<u8>) {
        let Some(i) = self.browsing else { return };
        if i + 1 < self.history.len() {
            self.browsing = Some(i + 1);
            self.replace(self.history[i + 1].as_bytes().to_vec(), echo);
        } else {
            self.browsing = None;
            let draft = core::mem::take(&mut self.draft);
            self.replace(draft, echo);
        }
    }
}

fn move_left(n: usize, echo: &mut Vec<u8>) {
    echo.extend(core::iter::repeat_n(BS, n));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-line terminal: what the user would see, and where the cursor is.
    #[derive(Default)]
    struct Screen {
        row: Vec<u8>,
        col: usize,
        /// Finished rows.
        done: Vec<String>,
        bells: usize,
    }

    impl Screen {
        fn show(&mut self, bytes: &[u8]) {
            let mut i = 0;
            while i < bytes.len() {
                match bytes[i] {
                    b'\r' => self.col = 0,
                    b'\n' => {
                        self.done
                            .push(String::from_utf8(core::mem::take(&mut self.row)).unwrap());
                        self.col = 0;
                    }
                    BS => self.col = self.col.saturating_sub(1),
                    BELL => self.bells += 1,
                    ESC => {
                        assert_eq!(&bytes[i..i + 3], b"\x1b[K", "only ESC [ K is echoed");
                        self.row.truncate(self.col);
                        i += 2;
                    }
                    c @ 0x20..=0x7e => {
                        if self.col < self.row.len() {
                            self.row[self.col] = c;
                        } else {
                            assert_eq!(self.col, self.row.len());
                            self.row.push(c);
                        }
                        self.col += 1;
                    }
                    c => panic!("unexpected echo byte {c:#x}"),
                }
                i += 1;
            }
        }

        fn text(&self) -> &str {
            core::str::from_utf8(&self.row).unwrap().trim_end()
        }
    }

    /// An editor and its screen, fed in chunks.
    struct Term {
        ed: Editor,
        screen: Screen,
        events: Vec<Event>,
    }

    impl Term {
        fn new() -> Term {
            Term {
                ed: Editor::new(),
                screen: Screen::default(),
                events: Vec::new(),
            }
        }

        fn feed(&mut self, input: &[u8]) -> &mut Self {
            let mut echo = Vec::new();
            let ev = self.ed.feed(input, &mut echo);
            self.events.extend(ev);
            self.screen.show(&echo);
            // The screen and the editor always agree.
            assert_eq!(self.screen.text(), self.ed.line(), "screen vs line");
            assert_eq!(self.screen.col, self.ed.cursor(), "screen vs cursor");
            self
        }

        fn lines(&self) -> Vec<&str> {
            self.events
                .iter()
                .filter_map(|e| match e {
                    Event::Line(l) => Some(l.as_str()),
                    Event::Cancel => None,
                })
                .collect()
        }
    }

    #[test]
    fn typing_and_enter() {
        let mut t = Term::new();
        t.feed(b"help\r");
        assert_eq!(t.events, [Event::Line("help".into())]);
        assert_eq!(t.screen.done, ["help"]);
        t.feed(b"ps\n");
        assert_eq!(t.lines(), ["help", "ps"]);
    }

    #[test]
    fn crlf_is_one_enter_and_empty_lines_count() {
        let mut t = Term::new();
        t.feed(b"ps\r\nmem\r\n\r\n");
        assert_eq!(t.lines(), ["ps", "mem", ""]);
        // The LF of a CRLF split across reads is still part of it.
        let mut t = Term::new();
        t.feed(b"ps\r").feed(b"\nmem\r").feed(b"\n");
        assert_eq!(t.lines(), ["ps", "mem"]);
        // LF then CR is two lines; LF LF too.
        let mut t = Term::new();
        t.feed(b"a\n\rb\n\n");
        assert_eq!(t.lines(), ["a", "", "b", ""]);
    }

    #[test]
    fn backspace_erases_on_screen() {
        for bs in [DEL, BS] {
            let mut t = Term::new();
            t.feed(b"hepl").feed(&[bs, bs]).feed(b"lp");
            assert_eq!(t.ed.line(), "help");
            // Backspace on an empty line does nothing.
            let mut t2 = Term::new();
            t2.feed(&[bs, bs]).feed(b"x");
            assert_eq!(t2.ed.line(), "x");
        }
        let mut t = Term::new();
        t.feed(b"abc").feed(&[DEL, DEL, DEL]);
        assert_eq!(t.screen.text(), "");
        assert_eq!(t.screen.row.len(), 3, "blanked, not just cursor-moved");
        assert!(t.screen.row.iter().all(|&c| c == b' '));
    }

    #[test]
    fn cursor_movement_and_editing_in_the_middle() {
        let mut t = Term::new();
        t.feed(b"kil tsk").feed(b"\x1b[D\x1b[D").feed(b"a");
        assert_eq!(t.ed.line(), "kil task");
        t.feed(b"\x1b[H").feed(b"\x1b[C\x1b[C\x1b[C").feed(b"l");
        assert_eq!(t.ed.line(), "kill task");
        t.feed(&[CTRL_E, DEL]).feed(&[CTRL_A]).feed(b"\x1b[3~");
        assert_eq!(t.ed.line(), "ill tas");
        // Moving past either end does nothing.
        t.feed(b"\x1b[D\x1b[D").feed(b"\x1b[F\x1b[C\x1b[C");
        assert_eq!(t.ed.cursor(), 7);
        t.feed(b"\x1b[1~\x1b[3~\x1b[4~");
        assert_eq!(t.ed.line(), "ll tas");
        assert_eq!(t.ed.cursor(), 6);
        t.feed(b"\r");
        assert_eq!(t.lines(), ["ll tas"]);
    }

    #[test]
    fn ctrl_u_kills_to_start_and_ctrl_c_cancels() {
        let mut t = Term::new();
        t.feed(b"garbage").feed(&[CTRL_U]).feed(b"ps");
        assert_eq!(t.ed.line(), "ps");
        t.feed(b"\x1b[D").feed(&[CTRL_U]);
        assert_eq!((t.ed.line(), t.ed.cursor()), ("s", 0));
        t.feed(&[CTRL_C]);
        assert_eq!(t.events, [Event::Cancel]);
        assert_eq!(t.screen.done, ["s^C"]);
        t.feed(b"mem\r");
        assert_eq!(t.lines(), ["mem"]);
        assert_eq!(
            t.ed.history().collect::<Vec<_>>(),
            ["mem"],
            "a cancelled line is not history"
        );
    }

    #[test]
    fn history_navigation() {
        let mut t = Term::new();
        t.feed(b"ps\rmem\rdate\r");
        t.feed(b"upt");
        t.feed(b"\x1b[A");
        assert_eq!(t.ed.line(), "date");
        t.feed(b"\x1b[A\x1b[A");
        assert_eq!(t.ed.line(), "ps");
        t.feed(b"\x1b[A"); // stays at the oldest
        assert_eq!(t.ed.line(), "ps");
        t.feed(b"\x1bOB"); // application-mode Down
        assert_eq!(t.ed.line(), "mem");
        t.feed(b"\x1b[B\x1b[B");
        assert_eq!(t.ed.line(), "upt", "the draft comes back");
        t.feed(b"\x1b[B");
        assert_eq!(t.ed.line(), "upt");
        // A recalled line can be edited and entered.
        t.feed(b"\x1bOA").feed(&[DEL, DEL]).feed(b"e\r");
        assert_eq!(t.lines().last(), Some(&"dae"));
        // Repeats are not stored twice; blank lines not at all.
        t.feed(b"dae\r  \r");
        assert_eq!(t.ed.history().collect::<Vec<_>>(), ["ps", "mem", "date", "dae"]);
        // Down without browsing does nothing.
        t.feed(b"x\x1b[B");
        assert_eq!(t.ed.line(), "x");
    }

    #[test]
    fn redraw_puts_the_cursor_back() {
        let mut t = Term::new();
        t.feed(b"restart x\x1b[D\x1b[D");
        let mut echo = Vec::new();
        t.ed.redraw(&mut echo);
        let mut fresh = Screen::default();
        fresh.show(&echo);
        assert_eq!((fresh.text(), fresh.col), ("restart x", 7));
    }

    #[test]
    fn history_is_bounded() {
        let mut t = Term::new();
        for i in 0..HISTORY + 5 {
            t.feed(format!("cmd{i}\r").as_bytes());
        }
        let h: Vec<_> = t.ed.history().collect();
        assert_eq!(h.len(), HISTORY);
        assert_eq!(h[0], "cmd5");
    }

    #[test]
    fn escape_sequences_split_across_reads() {
        let mut t = Term::new();
        t.feed(b"ps\r").feed(b"x");
        for b in b"\x1b[A" {
            t.feed(&[*b]);
        }
        assert_eq!(t.ed.line(), "ps");
        t.feed(b"\x1b").feed(b"O").feed(b"B");
        assert_eq!(t.ed.line(), "x");
        t.feed(b"\x1b[").feed(b"3").feed(b"~");
        assert_eq!(t.ed.line(), "x", "delete at the end does nothing");
        t.feed(b"\x1b[D\x1b").feed(b"[3").feed(b"~");
        assert_eq!(t.ed.line(), "");
        assert!(t.events.len() == 1);
    }

    #[test]
    fn unknown_keys_and_sequences_are_ignored() {
        let mut t = Term::new();
        // Tab, Ctrl-B, Ctrl-D, NUL, high bytes, function keys, a CSI with
        // a long parameter list, a stray ESC before a letter, ESC ESC.
        t.feed(b"a\t\x02\x04\x00\xc3\xa9\xff");
        t.feed(b"\x1b[15~\x1bOP\x1b[1;5C\x1b[?25h\x1b[200~");
        t.feed(b"\x1b[1;2;3;4;5;6;7;8;9A");
        t.feed(b"\x1bx\x1b\x1b[Cb");
        assert_eq!(t.ed.line(), "ab");
        assert!(t.events.is_empty());
        // A control byte inside a sequence ends it, and is dropped with it.
        t.feed(b"\x1b[1\x07c");
        assert_eq!(t.ed.line(), "abc");
    }

    #[test]
    fn overlong_lines_are_bounded() {
        let mut t = Term::new();
        let long = [b'x'; MAX_LINE + 50];
        t.feed(&long);
        assert_eq!(t.ed.line().len(), MAX_LINE);
        assert_eq!(t.screen.bells, 50);
        // Editing still works at the limit, and the line comes out whole.
        t.feed(&[DEL]).feed(b"yz\r");
        let lines = t.lines();
        assert_eq!(lines[0].len(), MAX_LINE);
        assert!(lines[0].ends_with("xy"));
    }
}
