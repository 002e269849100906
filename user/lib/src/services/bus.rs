//! `bus`: the soft bus's view of the devices nearby (`servers/bus`; the
//! design and wire format are in `docs/BUS.md`).
//!
//! | label | words in | reply |
//! |---|---|---|
//! | [`DEVICE`] | `[index]` | record `[address, id, rtt µs or u64::MAX]` + `name profile shared` ([`crate::proto::pack_record`]; `shared` comma-separated, `-` for none): the paired devices, by index |
//! | [`STATUS`] | — | record `[id, paired, malformed, unsealed, replayed, handshake, unshared]` + `name profile shared`: this device, and the packets it refused, by reason |
//! | [`CONNECT`] | text `DEVICE/SERVICE` ([`crate::ipc::pack_text`]) | — + an endpoint (send, grant): the proxy for that service of that device ([`crate::names::connect_remote`]) |
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

/// This device as the bus announces it, and how many packets it refused:
/// `(device, [malformed, unsealed, replayed, handshake, unshared])`.
pub fn status() -> Result<(Device, [u64; 5]), Error> {
    let ep = names::connect(NAME, Timeout::millis(2000))?;
    let r = call(ep, &Message::new(STATUS));
    let _ = syscall::cap_delete(ep);
    let m = r?;
    let mut text = [0u8; TEXT_BYTES];
    let (v, t) = unpack_record(&m, &mut text);
    let me = parse_device(&[0, v.first().copied().unwrap_or(0), u64::MAX], t).ok_or(Error::InvalidState)?;
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    Ok((me, [at(2), at(3), at(4), at(5), at(6)]))
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
    }
}
