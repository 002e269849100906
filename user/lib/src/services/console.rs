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

    /// Writes all of `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        for chunk in bytes.chunks(MAX_BYTES) {
            self.conn.call(&pack_bytes(WRITE, chunk), Timeout::Forever)?;
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

impl Default for Console {
    fn default() -> Self {
        Console::new()
    }
}
