//! The protocols of the system's services: the name each registers under
//! ([`crate::names`]), its message labels and layouts, and a typed client.
//! Drivers implement the server side; replies use [`crate::proto::OK`] and
//! [`crate::proto::reply_error`].
//!
//! Bytes travel as [`pack_bytes`] messages (word 0 the length, then the
//! bytes little-endian); bulk data through shared memory objects.

pub mod blk;
pub mod bus;
pub mod compositor;
pub mod console;
pub mod display;
pub mod fs;
pub mod gpio;
pub mod input;
pub mod net;
pub mod netdev;
pub mod rng;
pub mod rtc;

use crate::ipc::Message;
use abi::BUFFER_WORDS;

/// Most bytes one [`pack_bytes`] message carries.
pub const MAX_BYTES: usize = (BUFFER_WORDS - 1) * 8;

/// A message carrying `bytes` (at most [`MAX_BYTES`]; the rest is cut).
pub fn pack_bytes(label: u16, bytes: &[u8]) -> Message {
    let bytes = &bytes[..bytes.len().min(MAX_BYTES)];
    let mut m = Message::new(label);
    m.push(bytes.len() as u64);
    for chunk in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        m.push(u64::from_le_bytes(w));
    }
    m
}

/// The bytes of a [`pack_bytes`] message, copied into `out`; a length
/// beyond what the message holds is cut to what it holds.
pub fn unpack_bytes<'a>(msg: &Message, out: &'a mut [u8; MAX_BYTES]) -> &'a [u8] {
    let len = (msg.word(0) as usize)
        .min(MAX_BYTES)
        .min(msg.len().saturating_sub(1) * 8);
    for (i, w) in msg.words().iter().skip(1).enumerate().take(MAX_BYTES / 8) {
        out[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    &out[..len]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_hostile_lengths() {
        let data: alloc::vec::Vec<u8> = (0..=255u8).cycle().take(600).collect();
        let m = pack_bytes(1, &data);
        let mut out = [0u8; MAX_BYTES];
        assert_eq!(unpack_bytes(&m, &mut out), &data[..MAX_BYTES]);
        let lying = Message::with_words(1, &[1000, 0x4142]);
        assert_eq!(unpack_bytes(&lying, &mut out), &[0x42, 0x41, 0, 0, 0, 0, 0, 0]);
        assert!(unpack_bytes(&Message::new(1), &mut out).is_empty());
    }
}
