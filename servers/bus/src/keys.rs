//! The device-group key and what is derived from it (`docs/BUS.md`,
//! "Trust"). The group file given at build time (`cargo xtask run --group
//! FILE`) may hold any bytes (at least [`MIN_GROUP_FILE`]); it is hashed
//! into a 32-byte group secret, from which keyed BLAKE2s derives, by
//! purpose:
//!
//! - the Noise pre-shared key of every session ([`GroupKey::psk`]);
//! - each device's announcement key ([`GroupKey::announce_key`]), from its
//!   device id, so that no two devices seal under one key and nonce.
//!
//! Announcements are sealed with ChaCha20-Poly1305 (RFC 8439): the packet
//! header is the associated data, the nonce is the header's sequence
//! number (Noise's nonce layout: 4 zero bytes, then the number,
//! little-endian). A device without the key can neither read nor forge
//! one, and a changed byte anywhere makes it fail to open.

use crate::wire::{Announcement, Header, Kind, HEADER};
use alloc::vec::Vec;
use blake2::digest::{FixedOutput, KeyInit, Update};
use blake2::{Blake2s256, Blake2sMac256, Digest};
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};

/// Fewest bytes a group file may hold (a 128-bit secret).
pub const MIN_GROUP_FILE: usize = 16;
/// Bytes of a Poly1305 tag.
pub const TAG: usize = 16;

/// The group secret (32 bytes), from the group file.
#[derive(Clone)]
pub struct GroupKey([u8; 32]);

impl core::fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("GroupKey(..)")
    }
}

impl GroupKey {
    /// The group secret of a group file's contents; `None` if it is too
    /// short to be a secret.
    pub fn from_file(bytes: &[u8]) -> Option<GroupKey> {
        if bytes.len() < MIN_GROUP_FILE {
            return None;
        }
        let mut h = Blake2s256::new();
        Digest::update(&mut h, b"kestrel-bus group v1\0");
        Digest::update(&mut h, bytes);
        Some(GroupKey(h.finalize().into()))
    }

    /// The key of a pairing by code, from its pairing secret
    /// ([`crate::pair`]): the same derivations as a group's, for a group of
    /// two.
    pub fn from_secret(secret: [u8; 32]) -> GroupKey {
        GroupKey(secret)
    }

    /// The 32-byte secret [`GroupKey::from_secret`] takes: a pairing's,
    /// to be kept on storage ([`crate::store`]).
    pub fn secret(&self) -> [u8; 32] {
        self.0
    }

    fn derive(&self, purpose: &[u8], extra: &[u8]) -> [u8; 32] {
        let mut m = <Blake2sMac256 as KeyInit>::new_from_slice(&self.0).expect("a 32-byte key fits BLAKE2s");
        Update::update(&mut m, purpose);
        Update::update(&mut m, extra);
        m.finalize_fixed().into()
    }

    /// The Noise pre-shared key (`psk3` of Noise_XXpsk3).
    pub fn psk(&self) -> [u8; 32] {
        self.derive(b"noise psk", &[])
    }

    /// The key device `device` seals its announcements with.
    pub fn announce_key(&self, device: u64) -> [u8; 32] {
        self.derive(b"announce", &device.to_le_bytes())
    }

    /// A sealed announcement packet from `device`, number `seq`.
    pub fn seal_announcement(&self, device: u64, seq: u64, a: &Announcement) -> Vec<u8> {
        let header = Header {
            kind: Kind::Announce,
            from: device,
            to: 0,
            counter: seq,
        };
        let mut body = a.encode();
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.announce_key(device)));
        let tag = cipher
            .encrypt_in_place_detached(&nonce(seq), &header.encode(), &mut body)
            .expect("an announcement is far below ChaCha20's limit");
        body.extend_from_slice(&tag);
        header.with_body(&body)
    }

    /// The announcement in a packet (its header already parsed), if it was
    /// sealed with this group's key by the device the header names and
    /// nothing in it changed; `None` for anything else.
    pub fn open_announcement(&self, header: &Header, body: &[u8]) -> Option<Announcement> {
        if header.kind != Kind::Announce || header.to != 0 || body.len() < TAG {
            return None;
        }
        let (text, tag) = body.split_at(body.len() - TAG);
        let mut text = text.to_vec();
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.announce_key(header.from)));
        let aad: [u8; HEADER] = header.encode();
        cipher
            .decrypt_in_place_detached(&nonce(header.counter), &aad, &mut text, Tag::from_slice(tag))
            .ok()?;
        Announcement::decode(&text)
    }
}

/// A device's static key as people name it: the first 8 bytes of its
/// BLAKE2s-256 digest (domain-separated), shown as 16 lower-case hex
/// digits (`userlib::services::bus::show_key`). Every pairing by code has
/// one, known from the moment it is made (its device's name only comes
/// with its first announcement), so `pair forget` can name any pairing.
/// 64 bits: making a second key with a chosen one's fingerprint takes
/// about 2^64 tries.
pub fn fingerprint(static_key: &[u8; 32]) -> u64 {
    let mut h = Blake2s256::new();
    Digest::update(&mut h, b"kestrel-bus key fingerprint v1\0");
    Digest::update(&mut h, static_key);
    let d: [u8; 32] = h.finalize().into();
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// Noise's nonce layout: 4 zero bytes, then the counter little-endian.
fn nonce(n: u64) -> Nonce {
    let mut b = [0u8; 12];
    b[4..].copy_from_slice(&n.to_le_bytes());
    *Nonce::from_slice(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn ann() -> Announcement {
        Announcement {
            name: "phone".into(),
            profile: "phone".into(),
            shared: vec!["rtc".into()],
        }
    }

    #[test]
    fn fingerprints_tell_keys_apart() {
        assert_ne!(fingerprint(&[1; 32]), fingerprint(&[2; 32]));
        assert_eq!(fingerprint(&[1; 32]), fingerprint(&[1; 32]));
    }

    #[test]
    fn group_files_must_hold_a_secret() {
        assert!(GroupKey::from_file(b"short").is_none());
        let a = GroupKey::from_file(b"0123456789abcdef").unwrap();
        let b = GroupKey::from_file(b"0123456789abcdeF").unwrap();
        assert_ne!(a.psk(), b.psk());
        assert_ne!(a.psk(), a.announce_key(1));
        assert_ne!(a.announce_key(1), a.announce_key(2));
    }

    #[test]
    fn announcements_open_only_with_the_key_and_untouched() {
        let key = GroupKey::from_file(b"our group's secret").unwrap();
        let p = key.seal_announcement(42, 7, &ann());
        let (h, body) = Header::parse(&p).unwrap();
        assert_eq!((h.from, h.counter), (42, 7));
        assert_eq!(key.open_announcement(&h, body), Some(ann()));
        // Nothing of it is readable without the key.
        assert!(!p.windows(5).any(|w| w == b"phone"));
        // Another group's key.
        let other = GroupKey::from_file(b"someone else's key").unwrap();
        assert_eq!(other.open_announcement(&h, body), None);
        // Any byte changed, header or body.
        for i in 0..p.len() {
            let mut q = p.clone();
            q[i] ^= 0x40;
            if let Some((h2, b2)) = Header::parse(&q) {
                assert_eq!(key.open_announcement(&h2, b2), None, "byte {i} changed");
            }
        }
        // Cut short.
        assert_eq!(key.open_announcement(&h, &body[..body.len() - 1]), None);
        assert_eq!(key.open_announcement(&h, &[]), None);
    }
}
