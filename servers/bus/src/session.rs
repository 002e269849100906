//! Sessions: Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s (Noise protocol
//! framework, revision 34) through the `clatter` crate, then transport
//! messages with explicit nonces.
//!
//! - Message 1 (`-> e`) and 2 (`<- e, ee, s, es`) agree on fresh ephemeral
//!   keys; message 3 (`-> s, se, psk`) mixes in the group's pre-shared
//!   key, so the responder knows the initiator is of the group once
//!   message 3 decrypts, and the initiator knows the same of the responder
//!   once the responder's first transport message decrypts (it sends
//!   [`crate::wire::SessionMsg::Confirm`] at once).
//! - The prologue binds both device ids (initiator's, then responder's),
//!   so a handshake cannot be moved between devices.
//! - Static keys are made at each start of the bus, or kept on storage
//!   with the pairings by code ([`crate::store`]). Within a group the
//!   trust is the group key; a device paired by code must also show the
//!   static key pinned at pairing ([`Session::remote_static`]).
//! - Datagrams may be lost or reordered, so each transport message carries
//!   its nonce (the header's counter); a receiver takes each nonce once,
//!   and only within [`WINDOW`] below the highest it has opened (a sliding
//!   window as in WireGuard and IPsec), so a replayed message, or one later
//!   than the window, gets nothing. A message that fails to open changes
//!   nothing.

use crate::rng::BusRng;
use alloc::vec;
use alloc::vec::Vec;
use clatter::bytearray::ByteArray;
use clatter::crypto::cipher::ChaChaPoly;
use clatter::crypto::dh::X25519;
use clatter::crypto::hash::Blake2s;
use clatter::handshakepattern::noise_xx_psk3;
use clatter::traits::{Dh, Handshaker};
use clatter::transportstate::TransportState;
use clatter::{KeyPair, NqHandshakeCore};

/// The Noise protocol name.
pub const PROTOCOL: &str = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s";

type Hs = NqHandshakeCore<X25519, ChaChaPoly, Blake2s, BusRng>;

/// A device's static X25519 key pair.
pub type StaticKey = KeyPair<<X25519 as Dh>::PubKey, <X25519 as Dh>::PrivateKey>;

/// A static key's public half.
pub fn public(s: &StaticKey) -> [u8; 32] {
    s.public
        .as_slice()
        .try_into()
        .expect("an X25519 public key is 32 bytes")
}

/// A new static key pair.
pub fn static_key() -> StaticKey {
    X25519::genkey_rng(&mut BusRng).expect("X25519 key generation does not fail")
}

/// The static key pair of a secret kept from an earlier start
/// ([`crate::store`]): any 32 bytes are an X25519 secret (clamped when
/// used), and the public half is computed from it.
pub fn static_key_from(secret: [u8; 32]) -> StaticKey {
    let secret = <X25519 as Dh>::PrivateKey::from_slice(&secret);
    let public = X25519::pubkey(&secret);
    KeyPair::new(public, secret)
}

/// A static key's secret half, to be kept ([`crate::store`]).
pub fn static_secret(s: &StaticKey) -> [u8; 32] {
    s.secret
        .as_slice()
        .try_into()
        .expect("an X25519 secret key is 32 bytes")
}

/// `kestrel-bus v1`, the initiator's id and the responder's.
fn prologue(initiator: u64, responder: u64) -> [u8; 32] {
    let mut p = [0u8; 32];
    p[..14].copy_from_slice(b"kestrel-bus v1");
    p[16..24].copy_from_slice(&initiator.to_le_bytes());
    p[24..].copy_from_slice(&responder.to_le_bytes());
    p
}

/// Room for any handshake message of this pattern (no payloads).
const HANDSHAKE_BYTES: usize = 256;

/// A handshake under way.
pub struct Handshake {
    hs: Hs,
}

impl Handshake {
    fn new(s: &StaticKey, psk: &[u8; 32], initiator: bool, i: u64, r: u64) -> Option<Handshake> {
        let mut hs = Hs::new(
            noise_xx_psk3(),
            &prologue(i, r),
            initiator,
            Some(s.clone()),
            None,
            None,
            None,
        )
        .ok()?;
        hs.push_psk(psk);
        Some(Handshake { hs })
    }

    fn write(&mut self) -> Option<Vec<u8>> {
        let mut out = vec![0u8; HANDSHAKE_BYTES];
        let n = self.hs.write_message(&[], &mut out).ok()?;
        out.truncate(n);
        Some(out)
    }

    fn read(&mut self, msg: &[u8]) -> Option<()> {
        if msg.len() > HANDSHAKE_BYTES {
            return None;
        }
        let mut payload = [0u8; HANDSHAKE_BYTES];
        self.hs.read_message(msg, &mut payload).ok().map(drop)
    }

    /// Device `me` starts a handshake with device `peer`: the handshake and
    /// message 1.
    pub fn initiate(s: &StaticKey, psk: &[u8; 32], me: u64, peer: u64) -> Option<(Handshake, Vec<u8>)> {
        let mut h = Handshake::new(s, psk, true, me, peer)?;
        let m1 = h.write()?;
        Some((h, m1))
    }

    /// Device `me` answers message 1 from device `peer`: the handshake and
    /// message 2; `None` if it is not a message 1.
    pub fn respond(s: &StaticKey, psk: &[u8; 32], peer: u64, me: u64, m1: &[u8]) -> Option<(Handshake, Vec<u8>)> {
        let mut h = Handshake::new(s, psk, false, peer, me)?;
        h.read(m1)?;
        let m2 = h.write()?;
        Some((h, m2))
    }

    /// The initiator takes message 2: the session and message 3; `None`
    /// if message 2 does not check out.
    pub fn finish(mut self, m2: &[u8]) -> Option<(Session, Vec<u8>)> {
        self.read(m2)?;
        let m3 = self.write()?;
        let remote = self.remote_static()?;
        Some((Session::new(self.hs.finalize().ok()?, remote), m3))
    }

    /// The responder takes message 3: the session, if the initiator holds
    /// the group key.
    pub fn complete(mut self, m3: &[u8]) -> Option<Session> {
        self.read(m3)?;
        let remote = self.remote_static()?;
        Some(Session::new(self.hs.finalize().ok()?, remote))
    }

    fn remote_static(&self) -> Option<[u8; 32]> {
        self.hs.get_remote_static()?.as_slice().try_into().ok()
    }
}

/// Bytes of a transport message's tag (Poly1305).
pub const TAG: usize = 16;

/// How far below the highest nonce opened a message may still open (once):
/// the fragments of an object are sent back to back and may be reordered.
pub const WINDOW: u64 = 64;

/// An established session.
pub struct Session {
    t: TransportState<ChaChaPoly, Blake2s>,
    /// The highest nonce opened so far.
    newest: Option<u64>,
    /// Bit `i`: nonce `newest - i` was opened.
    seen: u64,
    /// The other device's static key, as its handshake showed it.
    pub remote_static: [u8; 32],
}

impl Session {
    fn new(t: TransportState<ChaChaPoly, Blake2s>, remote_static: [u8; 32]) -> Session {
        Session {
            t,
            newest: None,
            seen: 0,
            remote_static,
        }
    }

    /// `plain` sealed: its nonce and the ciphertext with its tag (the
    /// tests' shorthand for [`Session::seal_in_place`]).
    #[cfg(test)]
    pub fn seal(&mut self, plain: &[u8]) -> Option<(u64, Vec<u8>)> {
        let mut out = Vec::with_capacity(plain.len() + TAG);
        out.extend_from_slice(plain);
        let nonce = self.seal_in_place(&mut out, 0)?;
        Some((nonce, out))
    }

    /// Seals `packet[at..]` where it is (ChaCha20-Poly1305 encrypts in
    /// place) and appends its tag; the nonce it is sealed under. Nothing
    /// is copied: a packet's header, then its plaintext, is made in one
    /// buffer and sent as it is.
    pub fn seal_in_place(&mut self, packet: &mut Vec<u8>, at: usize) -> Option<u64> {
        let nonce = self.t.sending_nonce();
        let len = packet.len().checked_sub(at)?;
        packet.resize(packet.len() + TAG, 0);
        self.t.send_in_place(&mut packet[at..], len).ok()?;
        Some(nonce)
    }

    /// The plaintext of message `nonce`, as [`Session::open_in_place`]
    /// gives it (the tests' shorthand).
    #[cfg(test)]
    pub fn open(&mut self, nonce: u64, sealed: &[u8]) -> Option<Vec<u8>> {
        let mut out = sealed.to_vec();
        let n = self.open_in_place(nonce, &mut out)?.len();
        out.truncate(n);
        Some(out)
    }

    /// The plaintext of message `nonce`, if it opens and its nonce is new:
    /// not opened before, and above the highest opened less [`WINDOW`].
    /// Opened in place: `sealed` (ciphertext and tag) becomes the
    /// plaintext (all but its last [`TAG`] bytes), which is returned. The
    /// tag is checked before anything is decrypted, so a message that
    /// fails to open is left as it came.
    pub fn open_in_place<'a>(&mut self, nonce: u64, sealed: &'a mut [u8]) -> Option<&'a [u8]> {
        let fresh = match self.newest {
            None => true,
            Some(n) if nonce > n => true,
            Some(n) => n - nonce < WINDOW && self.seen & (1 << (n - nonce)) == 0,
        };
        if !fresh || nonce == u64::MAX || sealed.len() < TAG || sealed.len() > crate::wire::MAX_PACKET {
            return None;
        }
        self.t.set_receiving_nonce(nonce);
        let len = sealed.len();
        let n = self.t.receive_in_place(sealed, len).ok()?;
        match self.newest {
            Some(n) if nonce <= n => self.seen |= 1 << (n - nonce),
            Some(n) => {
                let shift = nonce - n;
                self.seen = if shift >= WINDOW { 0 } else { self.seen << shift };
                self.seen |= 1;
                self.newest = Some(nonce);
            }
            None => {
                self.seen = 1;
                self.newest = Some(nonce);
            }
        }
        Some(&sealed[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (StaticKey, StaticKey, [u8; 32]) {
        crate::rng::seed([7; 32]);
        (static_key(), static_key(), [3; 32])
    }

    fn pair(psk_a: &[u8; 32], psk_b: &[u8; 32]) -> Option<(Session, Session)> {
        let (a, b, _) = setup();
        let (ha, m1) = Handshake::initiate(&a, psk_a, 1, 2)?;
        let (hb, m2) = Handshake::respond(&b, psk_b, 1, 2, &m1)?;
        let (sa, m3) = ha.finish(&m2)?;
        let sb = hb.complete(&m3)?;
        Some((sa, sb))
    }

    #[test]
    fn a_group_talks() {
        let psk = [3; 32];
        let (mut a, mut b) = pair(&psk, &psk).expect("handshake");
        let (n, c) = a.seal(b"hello").unwrap();
        assert_eq!(b.open(n, &c).as_deref(), Some(&b"hello"[..]));
        let (n2, c2) = b.seal(b"back").unwrap();
        assert_eq!(a.open(n2, &c2).as_deref(), Some(&b"back"[..]));
    }

    #[test]
    fn another_group_gets_nothing() {
        assert!(
            pair(&[3; 32], &[4; 32]).is_none(),
            "message 3 must not open under another key"
        );
    }

    #[test]
    fn replayed_tampered_and_lost_messages() {
        let psk = [3; 32];
        let (mut a, mut b) = pair(&psk, &psk).unwrap();
        let (n0, c0) = a.seal(b"zero").unwrap();
        let (n1, c1) = a.seal(b"one").unwrap();
        let (n2, c2) = a.seal(b"two").unwrap();
        // Message 0 is late: 1 still opens, and 0 opens after it (once).
        assert_eq!(b.open(n1, &c1).as_deref(), Some(&b"one"[..]));
        // Replayed: nothing.
        assert_eq!(b.open(n1, &c1), None);
        assert_eq!(b.open(n0, &c0).as_deref(), Some(&b"zero"[..]));
        assert_eq!(b.open(n0, &c0), None);
        assert_eq!(b.open(n1, &c1), None);
        // Tampered: nothing, and it spoils nothing.
        let mut bad = c2.clone();
        bad[0] ^= 1;
        assert_eq!(b.open(n2, &bad), None);
        assert_eq!(b.open(n2 + 5, &c2), None, "under another nonce");
        assert_eq!(b.open(n2, &c2).as_deref(), Some(&b"two"[..]));
        // Later than the window: nothing, though never opened.
        let (n3, c3) = a.seal(b"three").unwrap();
        let mut last = None;
        for _ in 0..WINDOW {
            last = Some(a.seal(b"x").unwrap());
        }
        let (nl, cl) = last.unwrap();
        assert!(b.open(nl, &cl).is_some());
        assert_eq!(b.open(n3, &c3), None, "{} below the newest", nl - n3);
    }

    /// Sealing in place leaves the bytes before `at` (a packet's header)
    /// alone and makes what `seal` makes; opening in place gives the
    /// plaintext, and a tampered message is left as it came (the tag is
    /// checked before anything is decrypted) and still opens once mended.
    #[test]
    fn in_place_seal_and_open() {
        let psk = [3; 32];
        let (mut a, mut b) = pair(&psk, &psk).unwrap();
        let mut packet = b"header".to_vec();
        packet.extend_from_slice(b"in place");
        let n = a.seal_in_place(&mut packet, 6).unwrap();
        assert_eq!(&packet[..6], b"header");
        assert_eq!(packet.len(), 6 + 8 + TAG);
        assert_eq!(b.open(n, &packet[6..]).as_deref(), Some(&b"in place"[..]));
        let (n2, sealed) = a.seal(b"in place").unwrap();
        assert_eq!(n2, n + 1);
        let mut bad = sealed.clone();
        bad[3] ^= 0x80;
        let kept = bad.clone();
        assert_eq!(b.open_in_place(n2, &mut bad), None);
        assert_eq!(bad, kept, "a message that fails to open is left as it came");
        bad[3] ^= 0x80;
        assert_eq!(b.open_in_place(n2, &mut bad), Some(&b"in place"[..]));
        assert_eq!(b.open_in_place(n2, &mut sealed.clone()), None, "replayed");
    }

    #[test]
    fn handshakes_are_bound_to_the_devices() {
        let (a, b, psk) = setup();
        let (_, m1) = Handshake::initiate(&a, &psk, 1, 2).unwrap();
        // The responder believes message 1 came from device 9, or was for
        // device 3: the prologue differs, and message 1 (whose empty
        // payload is sealed once the psk modifier has mixed in `e`) fails.
        assert!(Handshake::respond(&b, &psk, 9, 2, &m1).is_none());
        assert!(Handshake::respond(&b, &psk, 1, 3, &m1).is_none());
        assert!(Handshake::respond(&b, &psk, 1, 2, &m1).is_some());
        // Garbage is no message 1.
        assert!(Handshake::respond(&b, &psk, 1, 2, &[1, 2, 3]).is_none());
        assert!(Handshake::respond(&b, &psk, 1, 2, &[0; 300]).is_none());
    }
}
