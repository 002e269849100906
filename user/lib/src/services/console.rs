//! `console`: line-oriented terminal I/O for the whole system (the PL011
//! driver serves it).
//!
//! | label | words in | reply |
//! |---|---|---|
//! | [`WRITE`] | bytes ([`super::pack_bytes`]) | [`crate::proto::OK`] |
//! | [`READ`] | `[max bytes, timeout µs]` | bytes: at least one, as many as are buffered up to max |
//!
//! `READ` blocks until input arrives (pass a timeout in word 1, 0 for
//! none, and call with a longer timeout, so that the server gives up first
//! and answers: otherwise a server thread stays blocked for a reader that
//! has left, until input arrives or its limit passes). It fails with
//! `TimedOut` at the timeout, `WouldBlock` if too many readers wait already. The server runs several
//! threads on its endpoint, so a blocked `READ` does not hold up writers.

use super::{pack_bytes, unpack_bytes, MAX_BYTES};
use crate::ipc::{Message, Timeout};
use crate::names::Connection;
use crate::Error;

/// The service name.
pub const NAME: &str = "console";
/// How much longer than its limit [`Console::read`] waits for the server's
/// own `TimedOut`.
pub const READ_GRACE_US: u64 = 1_000_000;
pub const WRITE: u16 = 1;
pub const READ: u16 = 2;

/// A console client (reconnects after the driver restarts).
pub struct Console {
    conn: Connection,
}

impl Console {
    pub const fn new() -> Console {
        Console {
            conn: Connection::new(NAME),
        }
    }

    /// A client over an endpoint `names::connect(NAME, ..)` returned.
    pub const fn with_endpoint(ep: crate::Handle) -> Console {
        Console {
            conn: Connection::with_endpoint(NAME, ep),
        }
    }

    /// Writes all of `bytes`, in [`pieces`] of whole lines where they fit
    /// (another task's line falls between two lines, not inside one).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        for piece in pieces(bytes) {
            self.conn.call(&pack_bytes(WRITE, piece), Timeout::Forever)?;
        }
        Ok(())
    }

    /// Waits for input; returns the bytes read into `out`.
    ///
    /// The server keeps the limit asked for, and answers `TimedOut` itself
    /// when it passes; the call waits [`READ_GRACE_US`] longer for that
    /// answer, so that the server thread is free before a next call even
    /// when a loaded machine delays the request or the answer (with a call
    /// that gave up first, the server thread waited on, and the next
    /// reader could find them all busy: `WouldBlock`).
    pub fn read<'a>(&mut self, out: &'a mut [u8; MAX_BYTES], timeout: Timeout) -> Result<&'a [u8], Error> {
        let (server_timeout, call_timeout) = match timeout {
            Timeout::Micros(us) => (us.max(1), Timeout::Micros(us.saturating_add(READ_GRACE_US))),
            Timeout::NonBlocking => (1, Timeout::NonBlocking),
            Timeout::Forever => (0, Timeout::Forever),
        };
        let reply = self.conn.call(
            &Message::with_words(READ, &[MAX_BYTES as u64, server_timeout]),
            call_timeout,
        )?;
        Ok(unpack_bytes(&reply, out))
    }
}

/// `bytes` in pieces of at most [`MAX_BYTES`] (what one `WRITE` carries),
/// each cut after its last line end ([`crate::console::whole_lines`]) if
/// more follows; a line longer than a piece is cut.
pub fn pieces(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = if rest.len() <= MAX_BYTES {
            rest.len()
        } else {
            crate::console::whole_lines(&rest[..MAX_BYTES])
        };
        let (piece, after) = rest.split_at(n);
        rest = after;
        Some(piece)
    })
}

impl Default for Console {
    fn default() -> Self {
        Console::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn pieces_end_at_line_ends() {
        // Rows of 100 bytes: five fit in a piece (504 bytes), the sixth
        // would be cut at byte 504 (as `chunks` cut the shell's tables).
        let row: Vec<u8> = (0..99).map(|_| b'x').chain([b'\n']).collect();
        let text: Vec<u8> = (0..12).flat_map(|_| row.iter().copied()).collect();
        let got: Vec<&[u8]> = pieces(&text).collect();
        assert_eq!(got.iter().map(|p| p.len()).collect::<Vec<_>>(), [500, 500, 200]);
        assert!(got.iter().all(|p| p.ends_with(b"\n")));
        assert_eq!(got.concat(), text);
    }

    #[test]
    fn a_line_longer_than_a_piece_is_cut_and_nothing_is_lost() {
        let text: Vec<u8> = (0..1200u32).map(|i| b'a' + (i % 26) as u8).collect();
        let got: Vec<&[u8]> = pieces(&text).collect();
        assert_eq!(
            got.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [MAX_BYTES, MAX_BYTES, 1200 - 2 * MAX_BYTES]
        );
        assert_eq!(got.concat(), text);
        assert_eq!(pieces(b"").count(), 0);
        assert_eq!(
            pieces(b"short, no line end").collect::<Vec<_>>(),
            [&b"short, no line end"[..]]
        );
    }
}
