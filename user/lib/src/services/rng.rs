//! `rng`: random bytes from a hardware entropy source (the virtio-rng
//! driver serves it).
//!
//! | label | words in | reply |
//! |---|---|---|
//! | [`READ`] | `[n]`, 1 ≤ n ≤ [`MAX_READ`] | n bytes ([`super::pack_bytes`]) |
//!
//! Any other `n` gets a [`crate::proto::FAILED`] reply with `InvalidArgument`.

use super::{unpack_bytes, MAX_BYTES};
use crate::ipc::{Message, Timeout};
use crate::names::Connection;
use crate::Error;

pub const NAME: &str = "rng";
pub const READ: u16 = 1;
/// Most bytes one [`READ`] returns.
pub const MAX_READ: usize = 256;

/// A client connection to the entropy source.
pub fn connection() -> Connection {
    Connection::new(NAME)
}

/// Fills `out` with random bytes (several requests if it is long).
pub fn fill(conn: &mut Connection, out: &mut [u8]) -> Result<(), Error> {
    let mut buf = [0u8; MAX_BYTES];
    for chunk in out.chunks_mut(MAX_READ) {
        let reply = conn.call(&Message::with_words(READ, &[chunk.len() as u64]), Timeout::millis(5000))?;
        let got = unpack_bytes(&reply, &mut buf);
        if got.len() != chunk.len() {
            return Err(Error::InvalidState);
        }
        chunk.copy_from_slice(got);
    }
    Ok(())
}
