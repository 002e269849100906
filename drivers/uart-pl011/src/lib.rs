//! The pure parts of the PL011 console driver, tested on the host: the
//! input ring and the translations of output (newlines for the UART's own
//! transmitter, text for the kernel's console writer).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// Bytes of input kept while nobody reads (a pasted screenful; more is
/// dropped, newest first, as a full hardware FIFO would).
pub const RING_BYTES: usize = 4096;

/// Received bytes waiting for a `READ`.
pub struct Ring {
    bytes: VecDeque<u8>,
    /// Bytes lost to a full ring since the start.
    pub dropped: u64,
}

impl Ring {
    pub const fn new() -> Ring {
        Ring {
            bytes: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Appends a received byte; `false` (and counted) if the ring is full.
    pub fn push(&mut self, byte: u8) -> bool {
        if self.bytes.len() >= RING_BYTES {
            self.dropped += 1;
            return false;
        }
        self.bytes.push_back(byte);
        true
    }

    /// Takes up to `max` of the oldest bytes.
    pub fn take(&mut self, max: usize) -> Vec<u8> {
        let n = max.min(self.bytes.len());
        self.bytes.drain(..n).collect()
    }

    /// Puts bytes taken by [`Ring::take`] back in front (their reader gave
    /// up before the reply), so no input is lost; what no longer fits is
    /// dropped from the newest end.
    pub fn unread(&mut self, taken: &[u8]) {
        for &b in taken.iter().rev() {
            self.bytes.push_front(b);
        }
        while self.bytes.len() > RING_BYTES {
            self.bytes.pop_back();
            self.dropped += 1;
        }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl Default for Ring {
    fn default() -> Self {
        Ring::new()
    }
}

/// Terminal output: a `\n` not already preceded by `\r` goes out as
/// `\r\n` (the kernel's log does the same). `last` is the byte sent before
/// `bytes` (kept across writes so a `\r` `\n` split between two writes is
/// not doubled).
pub fn expand_newlines(bytes: &[u8], last: &mut u8, mut emit: impl FnMut(u8)) {
    for &b in bytes {
        if b == b'\n' && *last != b'\r' {
            emit(b'\r');
        }
        emit(b);
        *last = b;
    }
}

/// Output for the kernel's console writer (`ConsoleWrite`), which takes
/// UTF-8 and itself sends every `\n` as `\r\n`: bytes that are not UTF-8
/// become U+FFFD, and the `\r` of a `\r\n` is dropped so it is not
/// doubled. A lone `\r` (a shell redrawing its line) stays.
pub fn console_text(bytes: &[u8]) -> alloc::string::String {
    let mut text = alloc::string::String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        let mut valid = chunk.valid();
        while let Some(i) = valid.find("\r\n") {
            text.push_str(&valid[..i]);
            valid = &valid[i + 1..];
        }
        text.push_str(valid);
        if !chunk.invalid().is_empty() {
            text.push(char::REPLACEMENT_CHARACTER);
        }
    }
    text
}

/// Server threads on the one endpoint: at most `THREADS - 1` of them wait
/// in a `READ`, so one is always free for writers. (Readers: a shell, a
/// program reading besides it, one whose caller just gave up.)
pub const THREADS: usize = 4;

/// Whether another reader may block, with `waiting` already blocked.
pub fn reader_may_wait(waiting: usize) -> bool {
    waiting < THREADS - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_takes_in_order_and_unreads_in_front() {
        let mut r = Ring::new();
        for b in b"hello" {
            assert!(r.push(*b));
        }
        assert_eq!(r.take(2), b"he");
        assert_eq!(r.take(100), b"llo");
        assert!(r.is_empty());
        for b in b"abc" {
            r.push(*b);
        }
        let t = r.take(2);
        r.push(b'd');
        r.unread(&t);
        assert_eq!(r.take(10), b"abcd");
    }

    #[test]
    fn ring_is_bounded() {
        let mut r = Ring::new();
        for i in 0..RING_BYTES + 10 {
            r.push(i as u8);
        }
        assert_eq!(r.len(), RING_BYTES);
        assert_eq!(r.dropped, 10);
        // Unreading into a full ring keeps the oldest bytes.
        let t = r.take(3);
        r.push(1);
        r.push(2);
        r.push(3);
        r.push(4);
        r.unread(&t);
        assert_eq!(r.len(), RING_BYTES);
        assert_eq!(r.take(3), t);
        // One push found the ring full, and unreading pushed three out.
        assert_eq!(r.dropped, 14);
    }

    #[test]
    fn console_text_is_utf8_without_doubled_returns() {
        assert_eq!(console_text(b"a\r\nb\n\rc\r"), "a\nb\n\rc\r");
        assert_eq!(console_text(b"x\xffy\xe2\x82"), "x\u{fffd}y\u{fffd}");
        assert_eq!(console_text("é\r\n".as_bytes()), "é\n");
        assert_eq!(console_text(b""), "");
    }

    #[test]
    fn newlines_become_crlf_once() {
        let mut out = Vec::new();
        let mut last = 0;
        expand_newlines(b"a\nb\r\nc\r", &mut last, |b| out.push(b));
        expand_newlines(b"\n\n", &mut last, |b| out.push(b));
        assert_eq!(out, b"a\r\nb\r\nc\r\n\r\n");
    }

    #[test]
    fn one_thread_stays_free_for_writers() {
        assert!(reader_may_wait(0));
        assert!(!reader_may_wait(THREADS - 1));
    }
}
