//! `console`: line-oriented terminal I/O for the whole system (the PL011
//! driver serves it).
//!
//! | label | words in | reply |
//! |---|---|---|
//! | [`WRITE`] | bytes ([`super::pack_bytes`]) | [`crate::proto::OK`] |
//! | [`READ`] | `[max bytes, timeout µs]` | bytes: at least one, as many as are buffered up to max |
//!
//! `READ` blocks until input arrives (use a call timeout to bound it, and
//! pass about the same timeout in word 1, 0 for none, so that the server
//! gives up too: otherwise a server thread stays blocked for a reader that has
//! left, until input arrives). It fails with `TimedOut` at the timeout,
//! `WouldBlock` if too many readers wait already. The server runs several
//! threads on its endpoint, so a blocked `READ` does not hold up writers.

use super::{pack_bytes, unpack_bytes, MAX_BYTES};
use crate::ipc::{Message, Timeout};
use crate::names::Connection;
use crate::Error;

/// The service name.
pub const NAME: &str = "console";
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
    pub fn read<'a>(&mut self, out: &'a mut [u8; MAX_BYTES], timeout: Timeout) -> Result<&'a [u8], Error> {
        // The server's limit ends a little before the call's, so that it
        // answers `TimedOut` and its thread is free before a next call.
        let server_timeout = match timeout {
            Timeout::Micros(us) => (us - (us / 8).min(20_000)).max(1),
            Timeout::NonBlocking => 1,
            Timeout::Forever => 0,
        };
        let reply = self
            .conn
            .call(&Message::with_words(READ, &[MAX_BYTES as u64, server_timeout]), timeout)?;
        Ok(unpack_bytes(&reply, out))
    }
}

impl Default for Console {
    fn default() -> Self {
        Console::new()
    }
}
