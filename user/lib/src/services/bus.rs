//! `bus`: the soft bus's view of the devices nearby (`servers/bus`; the
//! design and wire format are in `docs/BUS.md`).
//!
//! | label | words in | reply |
//! |---|---|---|
//! | [`DEVICE`] | `[index]` | record `[address, id, rtt µs or u64::MAX, trust]` + `name profile shared` ([`crate::proto::pack_record`]; `shared` comma-separated, `-` for none; `trust` 0 by the group key, 1 paired by code): the paired devices, by index |
//! | [`STATUS`] | — | record `[id, paired, malformed, unsealed, replayed, handshake, unshared, pairing, storage]` + `name profile shared`: this device, the packets it refused, by reason, and where it keeps its pairings by code ([`Storage`]; `Reading` until it has read them) |
//! | [`CONNECT`] | text `DEVICE/SERVICE` ([`crate::ipc::pack_text`]) | — + an endpoint (send, grant): the proxy for that service of that device ([`crate::names::connect_remote`]) |
//! | [`PAIR`] | — | `[code, valid ms]`: a fresh random six-digit code, shown here, for one pairing attempt (any code shown before is over) |
//! | [`JOIN`] | text `DEVICE CODE` | —: starts pairing with the device called `DEVICE` that shows `CODE` (six digits); [`PAIRING`] says how it goes |
//! | [`PAIRING`] | — | record `[state, value, ms left]` + text: where pairing by code stands ([`Pairing`]: state 0 idle; 1 a code shown, value the code, text `used` once a device tried it; 2 joining, text the device; 3 paired, text the device; 4 failed, value the [`PairFailure`]) |
//! | [`PAIRINGS`] | `[index]` | record `[key, nearby]` + text `name`: the pairings by code, by index: the device's static key's fingerprint ([`show_key`]), whether it is listed nearby now (1) and its name (empty until its first announcement came) |
//! | [`FORGET`] | text `DEVICE` or `KEY` | `[kept]` ([`Forgot`]): ends the pairing by code with that device, or whose device's key has that fingerprint ([`parse_key`]: 16 hex digits, never taken as a name; a pairing whose device's name is not known yet has only its key), here (the other device keeps its side until it forgets too), and removes it from storage; `InvalidArgument` if there is none |
//!
//! Pairing by code (see `docs/BUS.md`) runs SPAKE2 over the link: a wrong
//! code ends the attempt on both sides, and the shown code is used up.
//! [`JOIN`] fails with `InvalidArgument` for a device name that is not one
//! or a code that is not six digits, and with `WouldBlock` while the bus
//! has no network or random numbers. [`PAIR`], [`JOIN`] and [`FORGET`]
//! fail with `WouldBlock` while the bus is still reading its pairings
//! from storage ([`Storage::Reading`]).
//!
//! [`CONNECT`] fails with `WouldBlock` while the device is not paired
//! (nor has the bus a group key), and with `NoRights` if the device does
//! not share the service.
//!
//! An index past the end gets a [`crate::proto::FAILED`] reply with
//! `InvalidArgument`; so does [`DEVICE`] while the bus has no group key
//! (it pairs with no one then).

use crate::ipc::{Message, Timeout};
use crate::proto::{check_reply, unpack_record, TEXT_BYTES};
use crate::{names, syscall, Error, Handle};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::net::Ipv4Addr;

pub const NAME: &str = "bus";
pub const DEVICE: u16 = 1;
pub const STATUS: u16 = 2;
pub const CONNECT: u16 = 3;
pub const PAIR: u16 = 4;
pub const JOIN: u16 = 5;
pub const PAIRING: u16 = 6;
pub const FORGET: u16 = 7;
pub const PAIRINGS: u16 = 8;

/// Hex digits of a key's fingerprint as shown ([`show_key`]).
pub const KEY_DIGITS: usize = 16;

/// A device's static key's fingerprint (the bus's `keys::fingerprint`) as
/// people see it: [`KEY_DIGITS`] lower-case hex digits.
pub fn show_key(fingerprint: u64) -> String {
    alloc::format!("{fingerprint:016x}")
}

/// The fingerprint `text` shows: exactly [`KEY_DIGITS`] hex digits
/// (either case); `None` for anything else (a device's name).
pub fn parse_key(text: &str) -> Option<u64> {
    if text.len() != KEY_DIGITS || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

/// A pairing by code ([`PAIRINGS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairedByCode {
    /// Its device's name; empty until the device's first announcement came.
    pub name: String,
    /// Its device's static key's fingerprint ([`show_key`]).
    pub key: u64,
    /// Its device is listed nearby now.
    pub nearby: bool,
}

/// Where the bus keeps its pairings by code ([`STATUS`]'s last value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// In its memory only: they end when the bus restarts (a device
    /// without storage for the bus).
    Memory = 0,
    /// In `/data/.bus/pairings` too, with this device's static key: they
    /// outlive a restart (docs/BUS.md).
    Data = 1,
    /// Not known yet: the bus is still asking the file server (which may
    /// itself wait for its disk). Pairing by code waits until it knows.
    Reading = 2,
    /// In its memory only until it restarts: this device has storage for
    /// them, but reading it failed at start (the bus logs why), so the
    /// file is left as it is.
    Unreadable = 3,
}

/// What [`FORGET`] did with storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forgot {
    /// Nothing to write: pairings are kept in memory only.
    Memory = 0,
    /// The pairings file was written without the device.
    Stored = 1,
    /// The file could not be written (the bus logs why): the pairing is
    /// gone from memory, but a restart would read it back.
    WriteFailed = 2,
}

/// Why a pairing by code failed ([`PAIRING`]'s value in state 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairFailure {
    /// The code shown here was tried and not confirmed: a wrong code was
    /// typed (it is used up; show a new one).
    NotConfirmed = 1,
    /// The code shown here was not used in time.
    Expired = 2,
    /// The code typed here was wrong (or another device answered).
    WrongCode = 3,
    /// No device of that name showed a code.
    NoOffer = 4,
    /// The device showing a code did not answer (its code is used up?).
    NoAnswer = 5,
}

impl PairFailure {
    pub fn from_u64(v: u64) -> Option<PairFailure> {
        Some(match v {
            1 => PairFailure::NotConfirmed,
            2 => PairFailure::Expired,
            3 => PairFailure::WrongCode,
            4 => PairFailure::NoOffer,
            5 => PairFailure::NoAnswer,
            _ => return None,
        })
    }
}

/// Where pairing by code stands ([`PAIRING`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pairing {
    Idle,
    /// Code `code` is shown here for `left_ms` more; `used`: a device
    /// tried it (one attempt).
    Showing {
        code: u32,
        left_ms: u64,
        used: bool,
    },
    /// Pairing with this device, by a code typed here.
    Joining(String),
    /// The last pairing succeeded, with this device.
    Paired(String),
    Failed(PairFailure),
}

impl Pairing {
    /// The record of a [`PAIRING`] reply.
    pub fn record(&self) -> ([u64; 3], String) {
        match self {
            Pairing::Idle => ([0, 0, 0], String::new()),
            Pairing::Showing { code, left_ms, used } => (
                [1, u64::from(*code), *left_ms],
                String::from(if *used { "used" } else { "" }),
            ),
            Pairing::Joining(d) => ([2, 0, 0], d.clone()),
            Pairing::Paired(d) => ([3, 0, 0], d.clone()),
            Pairing::Failed(f) => ([4, *f as u64, 0], String::new()),
        }
    }

    /// A [`PAIRING`] record's state; `None` if it is not one.
    pub fn parse(values: &[u64], text: &str) -> Option<Pairing> {
        let at = |i: usize| values.get(i).copied();
        Some(match at(0)? {
            0 => Pairing::Idle,
            1 => Pairing::Showing {
                code: u32::try_from(at(1)?).ok().filter(|&c| c < 1_000_000)?,
                left_ms: at(2)?,
                used: text == "used",
            },
            2 => Pairing::Joining(text.to_string()),
            3 => Pairing::Paired(text.to_string()),
            4 => Pairing::Failed(PairFailure::from_u64(at(1)?)?),
            _ => return None,
        })
    }
}

/// A six-digit code as typed: exactly six ASCII digits.
pub fn parse_code(s: &str) -> Option<u32> {
    if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A device, as the bus reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub name: String,
    pub profile: String,
    pub shared: Vec<String>,
    pub addr: Option<Ipv4Addr>,
    pub id: u64,
    /// Round trip of the last ping answered, in µs.
    pub rtt_us: Option<u64>,
    /// Paired by code (else trusted by the group key).
    pub by_code: bool,
}

/// The text of a device record: `name profile shared`.
pub fn device_text(name: &str, profile: &str, shared: &[String]) -> String {
    let shared = if shared.is_empty() {
        String::from("-")
    } else {
        shared.join(",")
    };
    alloc::format!("{name} {profile} {shared}")
}

/// A [`DEVICE`] record's device.
pub fn parse_device(values: &[u64], text: &str) -> Option<Device> {
    let mut w = text.split(' ');
    let (name, profile, shared) = (w.next()?, w.next()?, w.next()?);
    Some(Device {
        name: name.to_string(),
        profile: profile.to_string(),
        shared: shared
            .split(',')
            .filter(|s| !s.is_empty() && *s != "-")
            .map(String::from)
            .collect(),
        addr: values.first().and_then(|&a| crate::services::net::word_ip(a)),
        id: values.get(1).copied().unwrap_or(0),
        rtt_us: values.get(2).copied().filter(|&r| r != u64::MAX),
        by_code: values.get(3) == Some(&1),
    })
}

fn call(ep: Handle, msg: &Message) -> Result<Message, Error> {
    check_reply(syscall::call_timeout(ep, msg, Timeout::millis(2000))?.0)
}

/// The paired devices nearby.
pub fn devices() -> Result<Vec<Device>, Error> {
    devices_within(Timeout::millis(2000))
}

/// [`devices`], waiting at most `timeout` for the bus to be registered
/// (`TimedOut`; `Timeout::NonBlocking` not to wait while it restarts).
pub fn devices_within(timeout: Timeout) -> Result<Vec<Device>, Error> {
    let ep = names::connect(NAME, timeout)?;
    let mut out = Vec::new();
    let mut text = [0u8; TEXT_BYTES];
    let r = (|| {
        for i in 0..64u64 {
            match call(ep, &Message::with_words(DEVICE, &[i])) {
                Ok(m) => {
                    let (values, t) = unpack_record(&m, &mut text);
                    out.extend(parse_device(&values, t));
                }
                Err(Error::InvalidArgument) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })();
    let _ = syscall::cap_delete(ep);
    r.map(|()| out)
}

/// This device as the bus announces it, how many packets it refused
/// (`[malformed, unsealed, replayed, handshake, unshared, pairing]`), and
/// where it keeps its pairings by code.
pub fn status() -> Result<(Device, [u64; 6], Storage), Error> {
    let ep = names::connect(NAME, Timeout::millis(2000))?;
    let r = call(ep, &Message::new(STATUS));
    let _ = syscall::cap_delete(ep);
    let m = r?;
    let mut text = [0u8; TEXT_BYTES];
    let (v, t) = unpack_record(&m, &mut text);
    let me = parse_device(&[0, v.first().copied().unwrap_or(0), u64::MAX], t).ok_or(Error::InvalidState)?;
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    let storage = match at(8) {
        w if w == Storage::Data as u64 => Storage::Data,
        w if w == Storage::Reading as u64 => Storage::Reading,
        w if w == Storage::Unreadable as u64 => Storage::Unreadable,
        _ => Storage::Memory,
    };
    Ok((me, [at(2), at(3), at(4), at(5), at(6), at(7)], storage))
}

fn ask(msg: &Message) -> Result<Message, Error> {
    let ep = names::connect(NAME, Timeout::millis(2000))?;
    let r = call(ep, msg);
    let _ = syscall::cap_delete(ep);
    r
}

/// Shows a fresh pairing code here: `(code, valid ms)`.
pub fn show_code() -> Result<(u32, u64), Error> {
    let m = ask(&Message::new(PAIR))?;
    let code = u32::try_from(m.word(0)).map_err(|_| Error::InvalidState)?;
    Ok((code, m.word(1)))
}

/// Starts pairing with `device`, which shows `code`; [`pairing`] says how
/// it goes.
pub fn join(device: &str, code: u32) -> Result<(), Error> {
    ask(&crate::ipc::pack_text(JOIN, &alloc::format!("{device} {code:06}"))).map(drop)
}

/// Ends the pairing by code with `device` here, and on storage.
pub fn forget(device: &str) -> Result<Forgot, Error> {
    let m = ask(&crate::ipc::pack_text(FORGET, device))?;
    Ok(match m.word(0) {
        1 => Forgot::Stored,
        2 => Forgot::WriteFailed,
        _ => Forgot::Memory,
    })
}

/// Every pairing by code.
pub fn pairings() -> Result<Vec<PairedByCode>, Error> {
    let ep = names::connect(NAME, Timeout::millis(2000))?;
    let mut out = Vec::new();
    let mut text = [0u8; TEXT_BYTES];
    let r = (|| {
        for i in 0..64u64 {
            match call(ep, &Message::with_words(PAIRINGS, &[i])) {
                Ok(m) => {
                    let (v, t) = unpack_record(&m, &mut text);
                    out.push(PairedByCode {
                        name: t.to_string(),
                        key: v.first().copied().ok_or(Error::InvalidState)?,
                        nearby: v.get(1) == Some(&1),
                    });
                }
                Err(Error::InvalidArgument) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })();
    let _ = syscall::cap_delete(ep);
    r.map(|()| out)
}

/// Where pairing by code stands.
pub fn pairing() -> Result<Pairing, Error> {
    let m = ask(&Message::new(PAIRING))?;
    let mut text = [0u8; TEXT_BYTES];
    let (v, t) = unpack_record(&m, &mut text);
    Pairing::parse(&v, t).ok_or(Error::InvalidState)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn device_records_round_trip() {
        let shared = vec![String::from("rtc"), String::from("blk")];
        let t = device_text("phone", "phone", &shared);
        assert_eq!(t, "phone phone rtc,blk");
        let d = parse_device(&[u32::from(Ipv4Addr::new(169, 254, 1, 1)) as u64, 7, 1500], &t).unwrap();
        assert_eq!(d.shared, shared);
        assert_eq!(d.addr, Some(Ipv4Addr::new(169, 254, 1, 1)));
        assert_eq!((d.id, d.rtt_us), (7, Some(1500)));
        let none = parse_device(&[0, 1, u64::MAX], &device_text("tv", "tv", &[])).unwrap();
        assert!(none.shared.is_empty());
        assert_eq!(none.rtt_us, None);
        assert_eq!(parse_device(&[], "only-a-name"), None);
        assert!(parse_device(&[0, 1, 2, 1], &t).unwrap().by_code);
        assert!(!d.by_code);
    }

    #[test]
    fn keys_as_shown_read_back() {
        let k = 0x0123_4567_89ab_cdef;
        assert_eq!(show_key(k), "0123456789abcdef");
        assert_eq!(parse_key(&show_key(k)), Some(k));
        assert_eq!(parse_key("0123456789ABCDEF"), Some(k));
        assert_eq!(show_key(0x1f), "000000000000001f");
        for not in [
            "",
            "tv",
            "1f",
            "000000000000001",
            "0000000000000001f",
            "000000000000001g",
            "+00000000000001f",
        ] {
            assert_eq!(parse_key(not), None, "{not}");
        }
    }

    #[test]
    fn pairing_records_round_trip() {
        for p in [
            Pairing::Idle,
            Pairing::Showing {
                code: 12,
                left_ms: 5000,
                used: false,
            },
            Pairing::Showing {
                code: 999_999,
                left_ms: 0,
                used: true,
            },
            Pairing::Joining("phone".into()),
            Pairing::Paired("tv".into()),
            Pairing::Failed(PairFailure::WrongCode),
            Pairing::Failed(PairFailure::NoAnswer),
        ] {
            let (v, t) = p.record();
            assert_eq!(Pairing::parse(&v, &t), Some(p));
        }
        for bad in [&[][..], &[9, 0, 0], &[4, 0, 0], &[4, 6, 0], &[1, 1_000_000, 0], &[1, 5]] {
            assert_eq!(Pairing::parse(bad, ""), None, "{bad:?}");
        }
        assert_eq!(parse_code("000123"), Some(123));
        for bad in ["12345", "1234567", "12 456", "abcdef", "+12345"] {
            assert_eq!(parse_code(bad), None);
        }
    }
}
