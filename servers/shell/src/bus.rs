//! `bus`: this device as the soft bus announces it, the paired devices
//! nearby with their addresses and shared services, and the packets the
//! bus refused (see `docs/BUS.md`).

use crate::table::Table;
use alloc::format;
use alloc::string::String;
use userlib::services::bus::Device;

fn shares(d: &Device) -> String {
    if d.shared.is_empty() {
        String::from("nothing")
    } else {
        d.shared.join(", ")
    }
}

/// The report: `me` and `refused` from the bus's status, `nearby` its
/// paired devices.
pub fn render(me: &Device, refused: [u64; 5], nearby: &[Device]) -> String {
    let mut s = format!("this device: {} ({}), shares {}\n", me.name, me.profile, shares(me));
    if nearby.is_empty() {
        s.push_str("no paired devices nearby\n");
    } else {
        let mut t = Table::new(&["DEVICE", "PROFILE", "ADDRESS", "SHARES"]);
        for d in nearby {
            t.row([
                d.name.clone(),
                d.profile.clone(),
                d.addr.map_or_else(|| String::from("?"), |a| format!("{a}")),
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
        }
    }

    #[test]
    fn the_report() {
        let me = dev("phone", &["rtc"]);
        let s = render(&me, [0; 5], &[dev("tv", &[]), dev("watch", &["rtc", "display"])]);
        let lines: vec::Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "this device: phone (phone), shares rtc");
        assert!(lines[1].starts_with("DEVICE") && lines[1].contains("SHARES"));
        assert!(lines[2].starts_with("tv ") && lines[2].contains("169.254.2.2") && lines[2].ends_with("nothing"));
        assert!(lines[3].ends_with("rtc, display"));
        assert_eq!(lines.len(), 4);
        let alone = render(&dev("tv", &[]), [1, 2, 3, 4, 5], &[]);
        assert_eq!(
            alone,
            "this device: tv (tv), shares nothing\nno paired devices nearby\n\
             refused: 1 malformed, 2 not sealed for this group, 3 replayed, 4 bad handshakes, 5 calls for services not shared\n"
        );
        // Only the reasons with a count.
        assert!(render(&me, [0, 5, 0, 0, 0], &[]).ends_with("\nrefused: 5 not sealed for this group\n"));
    }
}
