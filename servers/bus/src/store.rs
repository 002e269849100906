//! What the bus keeps on storage (`docs/BUS.md`, "Pairings on storage"):
//! this device's static key and its pairings by code, so that a paired
//! device stays paired when either bus restarts, or the device reboots.
//! The task reads and writes the file ([`PATH`], on the phone's `/data`);
//! this module is its format, tested on the host.
//!
//! The file is [`MAGIC`], a version byte ([`VERSION`]), the postcard
//! encoding of a [`Stored`], then a BLAKE2s-256 digest of every byte
//! before it. A file that is too short, has another magic or version, a
//! digest that does not match (a torn write, a changed byte), a body that
//! does not decode to exactly one [`Stored`], or a value out of bounds is
//! refused whole with a [`StoreError`]: the bus logs why and starts with
//! no pairing. The digest is no seal: whoever may write `/data` may also
//! write a matching digest (and read the keys): see `docs/BUS.md`.

use crate::wire::{is_word, MAX_NAME};
use alloc::string::String;
use alloc::vec::Vec;
use blake2::{Blake2s256, Digest};
use serde::{Deserialize, Serialize};

/// The folder the file lives in (made if missing).
pub const DIR: &str = "/data/.bus";
/// The pairings file.
pub const PATH: &str = "/data/.bus/pairings";
/// Written first, then renamed over [`PATH`].
pub const TMP: &str = "/data/.bus/pairings.tmp";
/// The file's first bytes.
pub const MAGIC: [u8; 4] = *b"KBPR";
/// The format's version (the byte after [`MAGIC`]).
pub const VERSION: u8 = 1;
/// Bytes of the digest that ends the file.
pub const DIGEST: usize = 32;
/// Pairings kept, at most (the node's bound).
pub const MAX_PAIRINGS: usize = crate::node::MAX_PEERS;

/// What the file holds (version 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// This device's static X25519 secret: its paired devices pinned the
    /// public half.
    pub static_secret: [u8; 32],
    /// The devices paired by code.
    pub pairings: Vec<StoredPairing>,
}

/// One pairing by code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPairing {
    /// The device's name, as its announcements give it; empty until its
    /// first announcement came (the showing side learns it then).
    pub name: String,
    /// Its static X25519 key, pinned at pairing.
    pub peer_static: [u8; 32],
    /// The pairing's secret ([`crate::keys::GroupKey::from_secret`]).
    pub secret: [u8; 32],
}

/// Why a file was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    TooShort(usize),
    Magic,
    Version(u8),
    /// The digest does not match: torn, or changed.
    Digest,
    /// The body does not decode to exactly one value.
    Body,
    TooMany(usize),
    BadName,
    /// Two pairings with one name or one static key.
    Duplicate,
}

impl core::fmt::Display for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StoreError::TooShort(n) => write!(f, "{n} bytes: too short"),
            StoreError::Magic => f.write_str("not a pairings file (magic)"),
            StoreError::Version(v) => write!(f, "version {v}, this bus reads {VERSION}"),
            StoreError::Digest => f.write_str("digest mismatch (torn or changed)"),
            StoreError::Body => f.write_str("the body does not decode"),
            StoreError::TooMany(n) => write!(f, "{n} pairings, at most {MAX_PAIRINGS}"),
            StoreError::BadName => f.write_str("a device name that is not one"),
            StoreError::Duplicate => f.write_str("a device paired twice"),
        }
    }
}

fn digest(bytes: &[u8]) -> [u8; DIGEST] {
    Blake2s256::digest(bytes).into()
}

impl Stored {
    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::from(MAGIC);
        out.push(VERSION);
        out.extend(postcard::to_allocvec(self).expect("postcard encodes into a vector"));
        let d = digest(&out);
        out.extend_from_slice(&d);
        out
    }

    /// The file's contents, if they are a whole, valid version-1 file.
    pub fn decode(bytes: &[u8]) -> Result<Stored, StoreError> {
        let head = MAGIC.len() + 1;
        if bytes.len() < head + DIGEST {
            return Err(StoreError::TooShort(bytes.len()));
        }
        if bytes[..MAGIC.len()] != MAGIC {
            return Err(StoreError::Magic);
        }
        if bytes[MAGIC.len()] != VERSION {
            return Err(StoreError::Version(bytes[MAGIC.len()]));
        }
        let (signed, d) = bytes.split_at(bytes.len() - DIGEST);
        if digest(signed) != d {
            return Err(StoreError::Digest);
        }
        let s = match postcard::take_from_bytes::<Stored>(&signed[head..]) {
            Ok((s, [])) => s,
            _ => return Err(StoreError::Body),
        };
        if s.pairings.len() > MAX_PAIRINGS {
            return Err(StoreError::TooMany(s.pairings.len()));
        }
        for (i, p) in s.pairings.iter().enumerate() {
            if !p.name.is_empty() && !is_word(&p.name, MAX_NAME) {
                return Err(StoreError::BadName);
            }
            let twice = s.pairings[..i]
                .iter()
                .any(|q| q.peer_static == p.peer_static || (!p.name.is_empty() && q.name == p.name));
            if twice {
                return Err(StoreError::Duplicate);
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sample() -> Stored {
        Stored {
            static_secret: [7; 32],
            pairings: vec![
                StoredPairing {
                    name: "tv".into(),
                    peer_static: [1; 32],
                    secret: [2; 32],
                },
                StoredPairing {
                    name: String::new(),
                    peer_static: [3; 32],
                    secret: [4; 32],
                },
            ],
        }
    }

    #[test]
    fn a_file_round_trips() {
        let s = sample();
        let f = s.encode();
        assert_eq!(&f[..5], b"KBPR\x01");
        assert_eq!(Stored::decode(&f), Ok(s));
        let empty = Stored {
            static_secret: [9; 32],
            pairings: vec![],
        };
        assert_eq!(Stored::decode(&empty.encode()), Ok(empty));
    }

    #[test]
    fn a_torn_or_changed_file_is_refused_whole() {
        let f = sample().encode();
        // Cut anywhere (a write torn by a power cut).
        for n in 0..f.len() {
            assert!(Stored::decode(&f[..n]).is_err(), "cut at {n}");
        }
        // Any bit changed anywhere.
        for i in 0..f.len() {
            for bit in 0..8 {
                let mut g = f.clone();
                g[i] ^= 1 << bit;
                assert!(Stored::decode(&g).is_err(), "byte {i} bit {bit}");
            }
        }
        // Bytes added.
        let mut g = f.clone();
        g.push(0);
        assert_eq!(Stored::decode(&g), Err(StoreError::Digest));
        assert_eq!(Stored::decode(b"KBPR"), Err(StoreError::TooShort(4)));
        let mut other = f.clone();
        other[4] = 2;
        assert_eq!(Stored::decode(&other), Err(StoreError::Version(2)));
    }

    /// A file whose digest matches but whose contents are not valid: what
    /// a writer who recomputed the digest could make.
    fn signed(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::from(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(body);
        let d = digest(&out);
        out.extend_from_slice(&d);
        out
    }

    #[test]
    fn a_valid_digest_over_invalid_contents_is_refused() {
        let ok = postcard::to_allocvec(&sample()).unwrap();
        assert!(Stored::decode(&signed(&ok)).is_ok());
        // Trailing bytes in the body.
        let mut more = ok.clone();
        more.push(0);
        assert_eq!(Stored::decode(&signed(&more)), Err(StoreError::Body));
        // A body cut short.
        assert_eq!(Stored::decode(&signed(&ok[..ok.len() - 1])), Err(StoreError::Body));
        // A name that is not one, duplicates, too many.
        let mut s = sample();
        s.pairings[0].name = "a b".into();
        assert_eq!(Stored::decode(&s.encode()), Err(StoreError::BadName));
        let mut s = sample();
        s.pairings[1].peer_static = s.pairings[0].peer_static;
        assert_eq!(Stored::decode(&s.encode()), Err(StoreError::Duplicate));
        let mut s = sample();
        s.pairings[1].name = "tv".into();
        assert_eq!(Stored::decode(&s.encode()), Err(StoreError::Duplicate));
        let mut s = sample();
        s.pairings = (0..=MAX_PAIRINGS as u8)
            .map(|i| StoredPairing {
                name: String::new(),
                peer_static: [i; 32],
                secret: [0; 32],
            })
            .collect();
        assert_eq!(Stored::decode(&s.encode()), Err(StoreError::TooMany(MAX_PAIRINGS + 1)));
        // A vector length far beyond the file: no huge allocation, refused.
        let mut huge = vec![7u8; 32];
        huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(Stored::decode(&signed(&huge)), Err(StoreError::Body));
    }
}
