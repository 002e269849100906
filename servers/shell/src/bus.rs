//! `bus`: this device as the soft bus announces it, the paired devices
//! nearby with their addresses and shared services, and the packets the
//! bus refused (see `docs/BUS.md`).

use crate::table::Table;
use alloc::format;
use alloc::string::String;
use userlib::services::bus::{self as bus, Device, Forgot, PairFailure, PairedByCode, Pairing, Storage};
use userlib::{syscall, Error};

fn shares(d: &Device) -> String {
    if d.shared.is_empty() {
        String::from("nothing")
    } else {
        d.shared.join(", ")
    }
}

/// The report: `me` and `refused` from the bus's status, `nearby` its
/// paired devices.
pub fn render(me: &Device, refused: [u64; 6], nearby: &[Device]) -> String {
    let mut s = format!("this device: {} ({}), shares {}\n", me.name, me.profile, shares(me));
    if nearby.is_empty() {
        s.push_str("no paired devices nearby\n");
    } else {
        let mut t = Table::new(&["DEVICE", "PROFILE", "ADDRESS", "TRUST", "SHARES"]);
        for d in nearby {
            t.row([
                d.name.clone(),
                d.profile.clone(),
                d.addr.map_or_else(|| String::from("?"), |a| format!("{a}")),
                String::from(if d.by_code { "code" } else { "group" }),
                shares(d),
            ]);
        }
        s.push_str(&t.render());
    }
    // The reasons with a count, in this order.
    let reasons = [
        "malformed",
        "not sealed for this group",
        "replayed",
        "bad handshakes",
        "calls for services not shared",
        "pairing messages",
    ];
    let counts: alloc::vec::Vec<String> = refused
        .iter()
        .zip(reasons)
        .filter(|(n, _)| **n != 0)
        .map(|(n, why)| format!("{n} {why}"))
        .collect();
    if !counts.is_empty() {
        s.push_str(&format!("refused: {}\n", counts.join(", ")));
    }
    s
}

/// The `bus` report's line on where pairings by code are kept.
pub fn storage(s: Storage) -> &'static str {
    match s {
        Storage::Data => "pairings by code: kept in /data/.bus/pairings (they outlive a restart)\n",
        Storage::Memory => "pairings by code: in memory only, no storage here (they end when the bus restarts)\n",
        Storage::Reading => "pairings by code: being read from storage (pairing waits until then)\n",
        Storage::Unreadable => {
            "pairings by code: in memory only until the bus restarts (/data/.bus/pairings could not be read: see the bus's log)\n"
        }
    }
}

/// A pairing request's error, for a person: `WouldBlock` is the bus not
/// ready for it yet (reading its pairings from storage, or no random seed).
fn not_ready(e: Error) -> String {
    if e == Error::WouldBlock {
        String::from(
            "the bus is not ready for pairing yet (it may still be reading its pairings from storage): try again",
        )
    } else {
        crate::report::error(e).into()
    }
}

/// `pair list`: every pairing by code, with its device's key, by which
/// `pair forget` can name it (a pairing whose device's name is not known
/// yet has nothing else).
pub fn pairings(p: &[PairedByCode]) -> String {
    if p.is_empty() {
        return String::from("no pairings by code\n");
    }
    let mut t = Table::new(&["DEVICE", "KEY", "NEARBY"]);
    for k in p {
        t.row([
            if k.name.is_empty() {
                String::from("(not known yet)")
            } else {
                k.name.clone()
            },
            bus::show_key(k.key),
            String::from(if k.nearby { "yes" } else { "no" }),
        ]);
    }
    t.render() + "forget one: pair forget DEVICE or pair forget KEY\n"
}

/// `pair forget DEVICE` or `pair forget KEY`.
pub fn forget(device: &str) -> Result<String, String> {
    let fail = |e: Error| {
        format!(
            "pair: forget {device}: {}\n",
            if e == Error::InvalidArgument {
                String::from("not paired by code")
            } else {
                not_ready(e)
            }
        )
    };
    Ok(match bus::forget(device).map_err(fail)? {
        Forgot::Stored => format!("forgot {device} (and removed it from /data/.bus/pairings)\n"),
        Forgot::Memory => format!("forgot {device}\n"),
        Forgot::WriteFailed => {
            format!("forgot {device}, but the pairings file could not be written (see the bus's log)\n")
        }
    })
}

/// Why a pairing failed, for a person.
fn failure(f: PairFailure) -> &'static str {
    match f {
        PairFailure::NotConfirmed => "the code shown here was tried with a wrong code; it is used up (show a new one)",
        PairFailure::Expired => "the code shown here was not used in time",
        PairFailure::WrongCode => "wrong code: refused (show a new code on the other device)",
        PairFailure::NoOffer => "that device shows no code (run 'pair' on it)",
        PairFailure::NoAnswer => "the device did not answer (its code may be used up: show a new one)",
    }
}

/// The `bus` report's pairing line (none while idle).
pub fn pairing(p: &Pairing) -> String {
    match p {
        Pairing::Idle => String::new(),
        Pairing::Showing { code, left_ms, used } => format!(
            "pairing: code {code:06} shown, {} s left{}\n",
            left_ms / 1000,
            if *used { ", being tried" } else { "" }
        ),
        Pairing::Joining(d) => format!("pairing: pairing with {d}\n"),
        Pairing::Paired(d) => format!("pairing: paired with {d}\n"),
        Pairing::Failed(f) => format!("pairing: failed: {}\n", failure(*f)),
    }
}

/// `pair`: a fresh code shown here.
pub fn show_code() -> Result<String, String> {
    let fail = |e: Error| format!("pair: {}\n", not_ready(e));
    let (code, valid_ms) = bus::show_code().map_err(fail)?;
    let (me, _, _) = bus::status().map_err(fail)?;
    Ok(format!(
        "pairing code {code:06} (one attempt, valid {} s)\non the other device type: pair {} {code:06}\n",
        valid_ms / 1000,
        me.name
    ))
}

/// How long `pair DEVICE CODE` waits for the outcome, then for the device
/// to be listed (its session to come up).
const JOIN_WAIT_MS: u64 = 15_000;

/// `pair DEVICE CODE`: pairs, and waits until the device is listed or the
/// pairing failed.
pub fn join(device: &str, code: u32) -> Result<String, String> {
    let fail = |e: Error| format!("pair: {device}: {}\n", not_ready(e));
    bus::join(device, code).map_err(fail)?;
    let start = syscall::now_us();
    loop {
        syscall::sleep_ms(200);
        match bus::pairing().map_err(fail)? {
            Pairing::Failed(f) => return Err(format!("pair: {device}: {}\n", failure(f))),
            Pairing::Paired(name) if name == device => return Ok(format!("paired with {device}\n")),
            _ => {}
        }
        if syscall::now_us().saturating_sub(start) > JOIN_WAIT_MS * 1000 {
            return Err(format!("pair: {device}: no outcome in {} s\n", JOIN_WAIT_MS / 1000));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use userlib::net::Ipv4Addr;

    fn dev(name: &str, shared: &[&str]) -> Device {
        Device {
            name: name.into(),
            profile: name.into(),
            shared: shared.iter().map(|s| String::from(*s)).collect(),
            addr: Some(Ipv4Addr::new(169, 254, 2, 2)),
            id: 1,
            rtt_us: None,
            by_code: name == "watch",
        }
    }

    #[test]
    fn a_pairing_request_the_bus_is_not_ready_for_says_so() {
        assert!(not_ready(Error::WouldBlock).contains("not ready for pairing yet"));
        assert_eq!(not_ready(Error::NoRights), crate::report::error(Error::NoRights));
    }

    #[test]
    fn pairings_show_every_key() {
        assert_eq!(pairings(&[]), "no pairings by code\n");
        let s = pairings(&[
            PairedByCode {
                name: "tv".into(),
                key: 0xabc,
                nearby: true,
            },
            PairedByCode {
                name: String::new(),
                key: 0x0123_4567_89ab_cdef,
                nearby: false,
            },
        ]);
        let lines: vec::Vec<&str> = s.lines().collect();
        assert!(lines[0].starts_with("DEVICE") && lines[0].contains("KEY"));
        assert!(lines[1].starts_with("tv ") && lines[1].contains(" 0000000000000abc ") && lines[1].ends_with("yes"));
        assert!(lines[2].starts_with("(not known yet) ") && lines[2].contains(" 0123456789abcdef "));
        assert!(lines[2].ends_with("no"));
        assert_eq!(lines.len(), 4);
        // The key as shown is what `pair forget` takes.
        let key = lines[2].split_whitespace().nth(3).unwrap();
        assert_eq!(bus::parse_key(key), Some(0x0123_4567_89ab_cdef));
        assert_eq!(
            crate::command::parse(&alloc::format!("pair forget {key}")),
            Ok(Some(crate::command::Command::Unpair(key.into())))
        );
    }

    #[test]
    fn storage_lines_tell_the_cases_apart() {
        let all = [Storage::Memory, Storage::Data, Storage::Reading, Storage::Unreadable];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(storage(*a), storage(*b));
            }
        }
        // Storage that did not answer is not "no storage".
        assert!(!storage(Storage::Unreadable).contains("no storage"));
    }

    #[test]
    fn the_report() {
        let me = dev("phone", &["rtc"]);
        let s = render(&me, [0; 6], &[dev("tv", &[]), dev("watch", &["rtc", "display"])]);
        let lines: vec::Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "this device: phone (phone), shares rtc");
        assert!(lines[1].starts_with("DEVICE") && lines[1].contains("SHARES"));
        assert!(lines[2].starts_with("tv ") && lines[2].contains("169.254.2.2") && lines[2].ends_with("nothing"));
        assert!(lines[2].contains(" group "));
        assert!(lines[3].ends_with("rtc, display") && lines[3].contains(" code "));
        assert_eq!(lines.len(), 4);
        let alone = render(&dev("tv", &[]), [1, 2, 3, 4, 5, 6], &[]);
        assert_eq!(
            alone,
            "this device: tv (tv), shares nothing\nno paired devices nearby\n\
             refused: 1 malformed, 2 not sealed for this group, 3 replayed, 4 bad handshakes, 5 calls for services not shared, 6 pairing messages\n"
        );
        // Only the reasons with a count.
        assert!(render(&me, [0, 5, 0, 0, 0, 0], &[]).ends_with("\nrefused: 5 not sealed for this group\n"));
        assert_eq!(pairing(&Pairing::Idle), "");
        assert_eq!(
            pairing(&Pairing::Showing {
                code: 42,
                left_ms: 119_500,
                used: false
            }),
            "pairing: code 000042 shown, 119 s left\n"
        );
        assert!(pairing(&Pairing::Failed(PairFailure::WrongCode)).starts_with("pairing: failed: wrong code"));
    }
}
