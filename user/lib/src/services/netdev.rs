//! `netdev`: Ethernet frames to and from a network card (the virtio-net
//! driver serves it; the network stack, `servers/net`, is its client).
//!
//! Frames travel through one shared memory object that the driver owns
//! and hands out with [`ATTACH`]: [`RX_SLOTS`] receive slots, then
//! [`TX_SLOTS`] transmit slots, each [`SLOT_BYTES`] long, a frame at the
//! start of its slot. The driver signals the notification given with
//! [`ATTACH`] (bit [`RX_BIT`]) when frames may be waiting; the client
//! then fetches them with [`RECV`].
//!
//! | label | words in | capability in | reply |
//! |---|---|---|---|
//! | [`INFO`] | — | — | `[mac (6 bytes, big-endian in the low 48 bits), mtu]` |
//! | [`ATTACH`] | — | notification (`SEND`) | [`crate::proto::OK`] + the frame memory (`READ`\|`WRITE`\|`MAP`) |
//! | [`RECV`] | — | — | `[n, len_0 .. len_n-1]`: frames in receive slots `0..n` (n ≤ [`RX_SLOTS`]; 0: none waiting) |
//! | [`SEND`] | `[n, len_0 .. len_n-1]` | — | `OK` once the card took the frames in transmit slots `0..n` |
//!
//! Only the latest [`ATTACH`] is served (a restarted stack attaches
//! again): [`RECV`] and [`SEND`] from any other client get
//! `InvalidState`. A length over [`MAX_FRAME`] or `n` over the slot count
//! gets `InvalidArgument`.

pub const NAME: &str = "netdev";

pub const INFO: u16 = 1;
pub const ATTACH: u16 = 2;
pub const RECV: u16 = 3;
pub const SEND: u16 = 4;

/// Bytes per frame slot.
pub const SLOT_BYTES: usize = 2048;
/// Longest Ethernet frame (without FCS) a slot carries: 1500 bytes of
/// payload and the 14-byte header.
pub const MAX_FRAME: usize = 1514;
pub const RX_SLOTS: usize = 16;
pub const TX_SLOTS: usize = 16;
/// Size of the frame memory.
pub const SHARED_BYTES: usize = (RX_SLOTS + TX_SLOTS) * SLOT_BYTES;
/// Notification bit: frames may be waiting.
pub const RX_BIT: u64 = 1;

/// Offset of receive slot `i` in the frame memory.
pub const fn rx_slot(i: usize) -> usize {
    i * SLOT_BYTES
}

/// Offset of transmit slot `i` in the frame memory.
pub const fn tx_slot(i: usize) -> usize {
    (RX_SLOTS + i) * SLOT_BYTES
}

/// The MAC address in an [`INFO`] reply's word 0.
pub fn mac_from_word(w: u64) -> [u8; 6] {
    let b = w.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

pub fn mac_to_word(mac: [u8; 6]) -> u64 {
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(&mac);
    u64::from_be_bytes(b)
}

/// The frame lengths of a `[n, len...]` message (its words), if every one
/// is valid and there are at most `slots`.
pub fn lengths(words: &[u64], slots: usize) -> Option<impl Iterator<Item = usize> + '_> {
    let n = words.first().copied().unwrap_or(0) as usize;
    if n > slots || n + 1 > words.len() {
        return None;
    }
    let lens = &words[1..1 + n];
    if lens.iter().any(|&l| l == 0 || l as usize > MAX_FRAME) {
        return None;
    }
    Some(lens.iter().map(|&l| l as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trip() {
        let mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
        assert_eq!(mac_from_word(mac_to_word(mac)), mac);
    }

    #[test]
    fn slots_do_not_overlap() {
        assert_eq!(tx_slot(0), rx_slot(RX_SLOTS));
        assert_eq!(tx_slot(TX_SLOTS - 1) + SLOT_BYTES, SHARED_BYTES);
        assert!(MAX_FRAME <= SLOT_BYTES);
    }

    #[test]
    fn hostile_lengths() {
        assert_eq!(
            lengths(&[2, 60, 1514], 16).map(|l| l.collect::<alloc::vec::Vec<_>>()),
            Some(alloc::vec![60, 1514])
        );
        assert!(lengths(&[1, 1515], 16).is_none(), "too long");
        assert!(lengths(&[1, 0], 16).is_none(), "empty");
        assert!(lengths(&[3, 60], 16).is_none(), "count beyond the words");
        assert!(lengths(&[17], 16).is_none(), "more than the slots");
        assert_eq!(lengths(&[0], 16).map(|l| l.count()), Some(0));
    }
}
