//! Console output: `print!`/`println!` and the `log` backend, both through
//! the `ConsoleWrite` system call with the task's console capability.
//!
//! Output is gathered into 256-byte chunks (the most one call takes). A
//! full chunk is sent up to its last line end, the partial line after it
//! kept for the next: so a line of at most 256 bytes reaches the console
//! in one piece, and another task's line falls between two lines, not
//! inside one ([`whole_lines`]).

#[cfg(not(test))]
use crate::syscall;
use crate::syscall::CONSOLE_CHUNK;
use abi::Handle;
use core::fmt;

/// A chunking writer to the console; output is sent when the buffer is
/// full and on [`Writer::flush`] (and drop).
pub struct Writer {
    console: Handle,
    len: usize,
    buf: [u8; CONSOLE_CHUNK],
}

impl Writer {
    /// A writer to this task's console (output is dropped if it has none).
    pub fn new() -> Writer {
        Writer::to(crate::rt::process().console)
    }

    /// A writer to a given console capability.
    pub const fn to(console: Handle) -> Writer {
        Writer {
            console,
            len: 0,
            buf: [0; CONSOLE_CHUNK],
        }
    }

    /// Sends what is buffered.
    pub fn flush(&mut self) {
        if self.len > 0 {
            send(self.console, &self.buf[..self.len]);
        }
        self.len = 0;
    }

    /// Sends what is buffered up to its last line end, and keeps the
    /// partial line after it; all of it if it holds no line end (a line
    /// longer than the buffer goes in pieces).
    fn flush_lines(&mut self) {
        let n = whole_lines(&self.buf[..self.len]);
        if n == self.len {
            return self.flush();
        }
        send(self.console, &self.buf[..n]);
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

/// One `ConsoleWrite` (none without a console). Console errors have
/// nowhere to go: output is best effort. (A host test keeps what it would
/// send.)
fn send(console: Handle, bytes: &[u8]) {
    if console == Handle::NULL {
        return;
    }
    #[cfg(not(test))]
    let _ = syscall::console_write(console, bytes);
    #[cfg(test)]
    tests::SENT.with(|sent| sent.borrow_mut().push(bytes.to_vec()));
}

/// How much of `bytes` to send so that no line is cut: up to and with its
/// last `\n`, or all of it if it has none (then a line is longer than what
/// one write takes, and has to be cut).
pub fn whole_lines(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b == b'\n').map_or(bytes.len(), |i| i + 1)
}

impl Default for Writer {
    fn default() -> Self {
        Writer::new()
    }
}

impl fmt::Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Chunks end on character boundaries: the kernel prints a chunk
        // that is not valid UTF-8 as a placeholder.
        let mut rest = s;
        while !rest.is_empty() {
            let mut n = rest.len().min(self.buf.len() - self.len);
            while !rest.is_char_boundary(n) {
                n -= 1;
            }
            if n == 0 {
                self.flush_lines();
                continue;
            }
            self.buf[self.len..self.len + n].copy_from_slice(&rest.as_bytes()[..n]);
            self.len += n;
            rest = &rest[n..];
        }
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.flush();
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    let mut w = Writer::new();
    let _ = fmt::Write::write_fmt(&mut w, args);
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::_print(format_args!($($arg)*)) };
}

/// Prints a line to the console (no prefix: for output other programs
/// parse, such as test results; use `log` for diagnostics).
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::_print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// The `log` backend: `name: message`, with `warning:`/`error:` (and
/// `debug:`/`trace:`) after the name for levels other than info.
pub struct Logger;

pub static LOGGER: Logger = Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut w = Writer::new();
        let level = match record.level() {
            log::Level::Error => "error: ",
            log::Level::Warn => "warning: ",
            log::Level::Info => "",
            log::Level::Debug => "debug: ",
            log::Level::Trace => "trace: ",
        };
        let _ = fmt::Write::write_fmt(
            &mut w,
            format_args!("{}: {}{}\n", crate::rt::process().name(), level, record.args()),
        );
    }

    fn flush(&self) {}
}

/// A fixed-size text buffer implementing `fmt::Write` that truncates (on a
/// character boundary) instead of failing: for formatting without the heap
/// (panic messages, reasons sent to the supervisor).
pub struct FixedText<const N: usize> {
    len: usize,
    buf: [u8; N],
}

impl<const N: usize> FixedText<N> {
    pub const fn new() -> Self {
        FixedText { len: 0, buf: [0; N] }
    }

    pub fn as_str(&self) -> &str {
        // Only whole characters are ever copied in.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl<const N: usize> Default for FixedText<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for FixedText<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            let n = c.len_utf8();
            if self.len + n > N {
                break;
            }
            c.encode_utf8(&mut self.buf[self.len..self.len + n]);
            self.len += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;
    use std::cell::RefCell;
    use std::vec::Vec;

    std::thread_local! {
        /// What [`send`] would have written, one entry a `ConsoleWrite`.
        pub(super) static SENT: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    }

    #[test]
    fn a_full_chunk_goes_up_to_its_last_line_end() {
        // Rows of 100 bytes written as one text (as the console driver
        // writes what the shell sent): two rows and a half fill the
        // 256-byte chunk; the half row waits for the rest of its line.
        let row: Vec<u8> = (0..99).map(|_| b'x').chain([b'\n']).collect();
        let text: Vec<u8> = (0..5).flat_map(|_| row.iter().copied()).collect();
        SENT.with(|sent| sent.borrow_mut().clear());
        {
            let mut w = Writer::to(Handle::new(1, 1));
            w.write_str(core::str::from_utf8(&text).unwrap()).unwrap();
        }
        let sent = SENT.with(|sent| sent.take());
        assert_eq!(sent.iter().map(|c| c.len()).collect::<Vec<_>>(), [200, 200, 100]);
        assert!(sent.iter().all(|c| c.ends_with(b"\n")));
        assert_eq!(sent.concat(), text);
    }

    #[test]
    fn a_line_longer_than_a_chunk_is_cut_and_nothing_is_lost() {
        let text: std::string::String = (0..600u32).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        SENT.with(|sent| sent.borrow_mut().clear());
        {
            let mut w = Writer::to(Handle::new(1, 1));
            w.write_str("ab\n").unwrap();
            w.write_str(&text).unwrap();
        }
        let sent = SENT.with(|sent| sent.take());
        assert_eq!(sent.concat(), [b"ab\n", text.as_bytes()].concat());
        assert_eq!(sent[0], b"ab\n");
        assert!(sent[1..].iter().all(|c| c.len() <= CONSOLE_CHUNK));
        assert_eq!(whole_lines(b"no end"), 6);
        assert_eq!(whole_lines(b"a\nb"), 2);
    }

    #[test]
    fn fixed_text_truncates_on_char_boundary() {
        let mut t = FixedText::<5>::new();
        write!(t, "aé{}", 123).unwrap();
        assert_eq!(t.as_str(), "aé12");
        write!(t, "é").unwrap();
        assert_eq!(t.as_str(), "aé12");
    }

    #[test]
    fn writer_keeps_characters_whole() {
        let mut w = Writer::to(Handle::NULL);
        w.write_str(&"a".repeat(CONSOLE_CHUNK - 1)).unwrap();
        w.write_str("é").unwrap();
        assert_eq!(w.len, 2, "the partial chunk was flushed before the character");
    }

    #[test]
    fn writer_without_console_drops_output() {
        let mut w = Writer::to(Handle::NULL);
        for _ in 0..100 {
            w.write_str("0123456789").unwrap();
        }
        assert!(w.len <= CONSOLE_CHUNK);
        w.flush();
        assert_eq!(w.len, 0);
    }
}
