//! Pairing by a six-digit code (`docs/BUS.md`, "Pairing by code"): one
//! device shows a fresh random code, the user types it on the other, and
//! the two agree on a long-term pairing secret that only they hold.
//!
//! A six-digit code is far too weak to be a key: used as a Noise psk, one
//! recorded handshake would let an attacker try all 10^6 codes offline. So
//! the code only feeds a PAKE, **SPAKE2** (the RustCrypto `spake2` crate,
//! Ed25519 group, as in draft-irtf-cfrg-spake2): each run gives an active
//! attacker one guess at the code, and a passive one nothing. Why this
//! crate: it is RustCrypto's (the family the bus's ChaCha20-Poly1305,
//! BLAKE2 and X25519 come from), `no_std` with `alloc`, built on the
//! `curve25519-dalek` the bus already links, and takes our generator
//! (`start_*_with_rng`). Of the CPace crates, `pake-cpace` draws from
//! `getrandom` (no such source here) and `pakery-cpace` is new and little
//! used. Then key confirmation, then the secret:
//!
//! | kind | body | from |
//! |---|---|---|
//! | offer (6) | the shower's name (1..=31 printable bytes), in clear | the shower, broadcast every second while its code is unused |
//! | pair start (7) | SPAKE2 message A (33 bytes), the joiner's static X25519 key (32) | the joiner, to the offer's address |
//! | pair reply (8) | SPAKE2 message B (33), the shower's static key (32), the shower's confirmation (32) | the shower |
//! | pair confirm (9) | the joiner's confirmation (32) | the joiner |
//!
//! - **SPAKE2 inputs.** The password is the code's six ASCII digits;
//!   identity A is `kestrel-bus joiner` then the joiner's device id, B is
//!   `kestrel-bus shower` then the shower's id (8 bytes little-endian).
//!   SPAKE2 hashes both identities and both messages into its key `K`.
//! - **Transcript.** `T = BLAKE2s-256("kestrel-bus pair v1\0" || joiner id
//!   || shower id || pair start body || the first 65 bytes of the pair
//!   reply body)`: both static keys are in it.
//! - **Confirmations and the secret.** Keyed BLAKE2s-256 under `K`:
//!   the shower's confirmation is `MAC(K, "shower confirm" || T)`, the
//!   joiner's `MAC(K, "joiner confirm" || T)`, the pairing secret
//!   `MAC(K, "pairing secret" || T)`. Tags are checked in constant time.
//! - **One attempt per code.** The first pair start that is a valid SPAKE2
//!   message uses the code up, right or wrong: the shower stops offering
//!   it, answers only that same start again (its reply may have been lost)
//!   and takes no other. A code is valid for [`CODE_VALID_US`]; a used
//!   code whose joiner has not confirmed within [`PAIR_TIMEOUT_US`] has
//!   failed. On the other side a joiner takes one well-formed reply: if
//!   its confirmation does not check (a wrong code, or an impostor), the
//!   attempt ends. So an active attacker gets one guess in 10^6 per code
//!   shown, and per code typed.
//! - **After.** Each side keeps a [`Pairing`]: the other's device id and
//!   static key, and a [`GroupKey`] made from the pairing secret. Their
//!   announcements to each other are sealed under it, and their Noise
//!   sessions use its psk; the handshake must also show the pinned static
//!   key. So the pairing works for exactly those two devices. A bus with
//!   storage keeps it, with its static key, across restarts
//!   ([`crate::store`]); one without keeps it until it restarts.

use crate::keys::GroupKey;
use crate::rng::BusRng;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use blake2::digest::{FixedOutput, KeyInit, Mac, Update};
use blake2::{Blake2s256, Blake2sMac256, Digest};
use rand_core::RngCore;
use spake2::{Ed25519Group, Identity, Password, Spake2};

/// How many codes there are (six digits).
pub const CODES: u32 = 1_000_000;
/// How long a shown code may be used.
pub const CODE_VALID_US: u64 = 120_000_000;
/// How long a pairing attempt may take, from its first pair start.
pub const PAIR_TIMEOUT_US: u64 = 5_000_000;
/// How long a joiner looks for the device's offer.
pub const JOIN_TIMEOUT_US: u64 = 10_000_000;
/// How often a joiner sends its pair start (or confirmation) again while
/// it has no answer.
pub const RESEND_US: u64 = 500_000;
/// Bytes of a SPAKE2 message (a side byte, then a point).
pub const PAKE_MSG: usize = 33;
/// Bytes of an X25519 public key.
pub const PUBLIC: usize = 32;
/// Bytes of a confirmation tag.
pub const MAC: usize = 32;
pub const START_BODY: usize = PAKE_MSG + PUBLIC;
pub const REPLY_BODY: usize = PAKE_MSG + PUBLIC + MAC;

/// A fresh random code, `0..CODES` (from the bus's generator; the bias of
/// reducing 64 random bits is below 2^-44).
pub fn new_code() -> u32 {
    (BusRng.next_u64() % u64::from(CODES)) as u32
}

/// A code as typed: exactly six ASCII digits.
pub use userlib::services::bus::parse_code;

/// A code as shown: six digits.
pub fn show_code(code: u32) -> String {
    format!("{code:06}")
}

/// A device paired by code, as each side keeps it.
#[derive(Clone, Debug)]
pub struct Pairing {
    /// The other device's id.
    pub peer: u64,
    /// Its static X25519 key (its Noise sessions must show it).
    pub peer_static: [u8; PUBLIC],
    /// Made from the pairing secret: the announcement keys and the psk.
    pub key: GroupKey,
}

fn identities(joiner: u64, shower: u64) -> (Identity, Identity) {
    let id = |who: &[u8], d: u64| {
        let mut v = Vec::from(who);
        v.extend_from_slice(&d.to_le_bytes());
        Identity::new(&v)
    };
    (id(b"kestrel-bus joiner", joiner), id(b"kestrel-bus shower", shower))
}

fn transcript(joiner: u64, shower: u64, start: &[u8], reply: &[u8]) -> [u8; 32] {
    let mut h = Blake2s256::new();
    Digest::update(&mut h, b"kestrel-bus pair v1\0");
    Digest::update(&mut h, joiner.to_le_bytes());
    Digest::update(&mut h, shower.to_le_bytes());
    Digest::update(&mut h, start);
    Digest::update(&mut h, &reply[..PAKE_MSG + PUBLIC]);
    h.finalize().into()
}

fn mac(k: &[u8], purpose: &[u8], t: &[u8; 32]) -> Blake2sMac256 {
    // SPAKE2's key is 32 bytes (SHA-256), BLAKE2s's largest key.
    let mut m = <Blake2sMac256 as KeyInit>::new_from_slice(k).expect("a 32-byte key fits BLAKE2s");
    Update::update(&mut m, purpose);
    Update::update(&mut m, t);
    m
}

fn tag(k: &[u8], purpose: &[u8], t: &[u8; 32]) -> [u8; MAC] {
    mac(k, purpose, t).finalize_fixed().into()
}

fn checks(k: &[u8], purpose: &[u8], t: &[u8; 32], tag: &[u8]) -> bool {
    mac(k, purpose, t).verify_slice(tag).is_ok()
}

fn pairing(k: &[u8], t: &[u8; 32], peer: u64, peer_static: &[u8]) -> Pairing {
    let mut p = [0u8; PUBLIC];
    p.copy_from_slice(peer_static);
    Pairing {
        peer,
        peer_static: p,
        key: GroupKey::from_secret(tag(k, b"pairing secret", t)),
    }
}

/// What the shower did with a pair start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAnswer {
    /// Send this pair reply body (again, for the same start).
    Reply(Vec<u8>),
    /// Not a SPAKE2 message, or not for a code in use: nothing is sent and
    /// the code is as it was.
    Malformed,
    /// No code shown, or it is spent or used by another start: nothing is
    /// sent.
    Refused,
}

struct Answered {
    joiner: u64,
    start: Vec<u8>,
    reply: Vec<u8>,
    k: Vec<u8>,
    t: [u8; 32],
    at: u64,
}

/// A code shown on this device.
pub struct Shown {
    pub code: u32,
    /// When it stops being valid.
    pub until: u64,
    answered: Option<Answered>,
}

impl Shown {
    /// Code `code`, shown at `now`.
    pub fn new(code: u32, now: u64) -> Shown {
        Shown {
            code,
            until: now + CODE_VALID_US,
            answered: None,
        }
    }

    /// Whether a pair start has used the code.
    pub fn is_used(&self) -> bool {
        self.answered.is_some()
    }

    /// Whether the code can no longer pair anyone: past its time, or used
    /// and not confirmed in time.
    pub fn is_over(&self, now: u64) -> bool {
        now >= self.until
            || self
                .answered
                .as_ref()
                .is_some_and(|a| now.saturating_sub(a.at) > PAIR_TIMEOUT_US)
    }

    /// Pair start `body` from device `joiner`, to this device `me` whose
    /// static key is `my_static`.
    pub fn on_start(&mut self, me: u64, my_static: &[u8; PUBLIC], joiner: u64, body: &[u8], now: u64) -> StartAnswer {
        if body.len() != START_BODY {
            return StartAnswer::Malformed;
        }
        if let Some(a) = &self.answered {
            return if a.joiner == joiner && a.start == body {
                StartAnswer::Reply(a.reply.clone())
            } else {
                StartAnswer::Refused
            };
        }
        if self.is_over(now) {
            return StartAnswer::Refused;
        }
        let (ida, idb) = identities(joiner, me);
        let pw = Password::new(show_code(self.code).as_bytes());
        let (state, msg_b) = Spake2::<Ed25519Group>::start_b_with_rng(&pw, &ida, &idb, BusRng);
        let Ok(k) = state.finish(&body[..PAKE_MSG]) else {
            // Not a point, or not side A: no guess was made.
            return StartAnswer::Malformed;
        };
        let mut reply = msg_b;
        reply.extend_from_slice(my_static);
        let t = transcript(joiner, me, body, &reply);
        reply.extend_from_slice(&tag(&k, b"shower confirm", &t));
        self.answered = Some(Answered {
            joiner,
            start: body.to_vec(),
            reply: reply.clone(),
            k,
            t,
            at: now,
        });
        StartAnswer::Reply(reply)
    }

    /// Pair confirm `body` from device `joiner`: the pairing, if it is the
    /// joiner that used the code and its confirmation checks. Anything else
    /// changes nothing.
    pub fn on_confirm(&self, joiner: u64, body: &[u8], now: u64) -> Option<Pairing> {
        let a = self.answered.as_ref().filter(|a| a.joiner == joiner)?;
        if self.is_over(now) || body.len() != MAC || !checks(&a.k, b"joiner confirm", &a.t, body) {
            return None;
        }
        Some(pairing(&a.k, &a.t, joiner, &a.start[PAKE_MSG..]))
    }
}

/// This device's half of a pairing it started (the joiner's side), once
/// it knows the shower's id.
pub struct Joiner {
    state: Spake2<Ed25519Group>,
    /// The pair start body (sent again until a reply comes).
    pub start: Vec<u8>,
    me: u64,
    shower: u64,
}

impl Joiner {
    /// Device `me` (static key `my_static`) starts pairing with device
    /// `shower` by `code`: the state and the pair start body.
    pub fn start(me: u64, my_static: &[u8; PUBLIC], shower: u64, code: u32) -> Joiner {
        let (ida, idb) = identities(me, shower);
        let pw = Password::new(show_code(code).as_bytes());
        let (state, mut start) = Spake2::<Ed25519Group>::start_a_with_rng(&pw, &ida, &idb, BusRng);
        start.extend_from_slice(my_static);
        Joiner {
            state,
            start,
            me,
            shower,
        }
    }

    /// Whether `body` is shaped as a pair reply (the right length and
    /// SPAKE2 side). Only such a reply is taken as the one answer.
    pub fn is_reply(body: &[u8]) -> bool {
        body.len() == REPLY_BODY && body[0] == b'B'
    }

    /// Takes pair reply `body` (one shaped as [`Joiner::is_reply`] says):
    /// the pairing and the pair confirm body, or `None` if the shower's
    /// confirmation does not check (a wrong code, or an impostor). Either
    /// way the attempt is over.
    pub fn finish(self, body: &[u8]) -> Option<(Pairing, Vec<u8>)> {
        if !Joiner::is_reply(body) {
            return None;
        }
        let k = self.state.finish(&body[..PAKE_MSG]).ok()?;
        let t = transcript(self.me, self.shower, &self.start, body);
        if !checks(&k, b"shower confirm", &t, &body[PAKE_MSG + PUBLIC..]) {
            return None;
        }
        let confirm = tag(&k, b"joiner confirm", &t).to_vec();
        Some((
            pairing(&k, &t, self.shower, &body[PAKE_MSG..PAKE_MSG + PUBLIC]),
            confirm,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOINER: u64 = 20;
    const SHOWER: u64 = 10;
    const JS: [u8; 32] = [0x11; 32];
    const SS: [u8; 32] = [0x22; 32];

    fn run(shown: u32, typed: u32) -> (Shown, Option<(Pairing, Vec<u8>)>) {
        crate::rng::seed([5; 32]);
        let mut s = Shown::new(shown, 0);
        let j = Joiner::start(JOINER, &JS, SHOWER, typed);
        let StartAnswer::Reply(reply) = s.on_start(SHOWER, &SS, JOINER, &j.start.clone(), 1) else {
            panic!("no reply");
        };
        (s, j.finish(&reply))
    }

    #[test]
    fn codes_are_six_digits() {
        assert_eq!(parse_code("012345"), Some(12345));
        assert_eq!(show_code(12345), "012345");
        for bad in ["12345", "1234567", "12a456", "", " 12345", "-12345", "+12345"] {
            assert_eq!(parse_code(bad), None, "{bad:?}");
        }
        crate::rng::seed([1; 32]);
        let codes: Vec<u32> = (0..50).map(|_| new_code()).collect();
        assert!(codes.iter().all(|&c| c < CODES));
        assert!(codes.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn the_right_code_pairs_both_sides_with_one_secret() {
        let (s, j) = run(123_456, 123_456);
        let (pj, confirm) = j.expect("the joiner pairs");
        let ps = s.on_confirm(JOINER, &confirm, 2).expect("the shower pairs");
        assert_eq!((pj.peer, ps.peer), (SHOWER, JOINER));
        assert_eq!((pj.peer_static, ps.peer_static), (SS, JS));
        assert_eq!(pj.key.psk(), ps.key.psk());
        // Another run with the same code gives another secret.
        crate::rng::seed([6; 32]);
        let mut s2 = Shown::new(123_456, 0);
        let j2 = Joiner::start(JOINER, &JS, SHOWER, 123_456);
        let StartAnswer::Reply(r2) = s2.on_start(SHOWER, &SS, JOINER, &j2.start.clone(), 1) else {
            panic!()
        };
        let (p2, _) = j2.finish(&r2).unwrap();
        assert_ne!(p2.key.psk(), pj.key.psk());
    }

    #[test]
    fn a_wrong_code_pairs_no_one_and_uses_the_code_up() {
        let (mut s, j) = run(123_456, 123_457);
        assert!(j.is_none(), "the joiner sees the shower's confirmation fail");
        assert!(s.is_used());
        // The right code now: refused, the code is spent.
        let j = Joiner::start(JOINER, &JS, SHOWER, 123_456);
        assert_eq!(s.on_start(SHOWER, &SS, JOINER, &j.start, 2), StartAnswer::Refused);
        let other = Joiner::start(JOINER + 1, &JS, SHOWER, 123_456);
        assert_eq!(
            s.on_start(SHOWER, &SS, JOINER + 1, &other.start, 2),
            StartAnswer::Refused
        );
        // A confirmation guessed by the wrong-code joiner does not check.
        assert!(s.on_confirm(JOINER, &[0; MAC], 2).is_none());
        // And the code is over once the attempt's time has passed.
        assert!(!s.is_over(PAIR_TIMEOUT_US));
        assert!(s.is_over(PAIR_TIMEOUT_US + 2));
    }

    #[test]
    fn a_lost_reply_is_sent_again_for_the_same_start_only() {
        crate::rng::seed([7; 32]);
        let mut s = Shown::new(42, 0);
        let j = Joiner::start(JOINER, &JS, SHOWER, 42);
        let first = s.on_start(SHOWER, &SS, JOINER, &j.start, 1);
        assert_eq!(s.on_start(SHOWER, &SS, JOINER, &j.start, 2), first);
        // The same start from another device id: refused.
        assert_eq!(s.on_start(SHOWER, &SS, JOINER + 1, &j.start, 2), StartAnswer::Refused);
        let StartAnswer::Reply(r) = first else { panic!() };
        assert!(j.finish(&r).is_some());
    }

    #[test]
    fn malformed_starts_do_not_use_the_code() {
        crate::rng::seed([8; 32]);
        let mut s = Shown::new(42, 0);
        let j = Joiner::start(JOINER, &JS, SHOWER, 42);
        for bad in [
            Vec::new(),
            j.start[..START_BODY - 1].to_vec(),
            [j.start.clone(), alloc::vec![0]].concat(),
            // Side B's message where A's is due.
            {
                let mut b = j.start.clone();
                b[0] = b'B';
                b
            },
        ] {
            assert_eq!(s.on_start(SHOWER, &SS, JOINER, &bad, 1), StartAnswer::Malformed);
        }
        assert!(!s.is_used());
        assert!(matches!(
            s.on_start(SHOWER, &SS, JOINER, &j.start, 1),
            StartAnswer::Reply(_)
        ));
    }

    #[test]
    fn a_code_expires() {
        crate::rng::seed([9; 32]);
        let mut s = Shown::new(42, 0);
        let j = Joiner::start(JOINER, &JS, SHOWER, 42);
        assert_eq!(
            s.on_start(SHOWER, &SS, JOINER, &j.start, CODE_VALID_US),
            StartAnswer::Refused
        );
        assert!(!s.is_used());
    }

    #[test]
    fn tampered_messages_pair_no_one() {
        // Any byte of the start changed on the way: the shower answers (a
        // start is a guess it cannot tell from a wrong code), and the
        // joiner's check of the reply fails.
        for i in [0, 1, 16, PAKE_MSG, START_BODY - 1] {
            crate::rng::seed([10; 32]);
            let mut s = Shown::new(42, 0);
            let j = Joiner::start(JOINER, &JS, SHOWER, 42);
            let mut bad = j.start.clone();
            bad[i] ^= 0x04;
            if let StartAnswer::Reply(r) = s.on_start(SHOWER, &SS, JOINER, &bad, 1) {
                assert!(j.finish(&r).is_none(), "start byte {i}");
            }
        }
        // Bytes of the reply changed (of each part): the joiner refuses it.
        for i in (0..REPLY_BODY).step_by(5).chain([PAKE_MSG, REPLY_BODY - 1]) {
            crate::rng::seed([11; 32]);
            let mut s = Shown::new(42, 0);
            let j = Joiner::start(JOINER, &JS, SHOWER, 42);
            let StartAnswer::Reply(mut r) = s.on_start(SHOWER, &SS, JOINER, &j.start, 1) else {
                panic!()
            };
            r[i] ^= 0x04;
            assert!(j.finish(&r).is_none(), "reply byte {i}");
        }
        // Any byte of the confirmation changed: the shower refuses it, and
        // still takes the genuine one.
        let (s, j) = run(42, 42);
        let (_, confirm) = j.unwrap();
        for i in 0..MAC {
            let mut bad = confirm.clone();
            bad[i] ^= 0x04;
            assert!(s.on_confirm(JOINER, &bad, 2).is_none(), "confirm byte {i}");
        }
        assert!(s.on_confirm(JOINER + 1, &confirm, 2).is_none(), "from another device");
        assert!(s.on_confirm(JOINER, &confirm, 2).is_some());
    }
}
