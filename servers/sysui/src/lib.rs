//! What the system UI shows, gathered from the services that know it (the
//! RTC, init's supervisor), and the event loop the UI tasks share.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;

pub mod browser;
pub mod panel;
pub mod scrollback;

/// `HH:MM` of a Unix time (UTC).
pub fn clock_text(unix: u64) -> String {
    let s = unix % 86_400;
    format!("{:02}:{:02}", s / 3600, s / 60 % 60)
}

/// `YYYY-MM-DD` of a Unix time.
pub fn date_text(unix: u64) -> String {
    let (y, mo, d, ..) = userlib::services::rtc::civil_from_unix(unix);
    format!("{y:04}-{mo:02}-{d:02}")
}

/// `1 h 02 min` / `3 min 04 s` from microseconds.
pub fn uptime_text(us: u64) -> String {
    let s = us / 1_000_000;
    if s >= 3600 {
        format!("{} h {:02} min", s / 3600, s / 60 % 60)
    } else {
        format!("{} min {:02} s", s / 60, s % 60)
    }
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{}.{} MiB", bytes >> 20, ((bytes & 0xf_ffff) * 10) >> 20)
}

/// CPU use over an interval: the tasks' CPU time over the wall time, as
/// a percentage of one CPU.
pub fn cpu_percent(cpu_us: u64, wall_us: u64) -> u64 {
    (cpu_us * 100).checked_div(wall_us).unwrap_or(0)
}

#[cfg(not(test))]
pub mod sys {
    //! Reading the system (not on the host).
    use alloc::string::String;
    use userlib::names::supervisor;

    pub fn unix_time(rtc: &mut userlib::names::Connection) -> Option<u64> {
        userlib::services::rtc::now(rtc).ok()
    }

    /// The device profile's name (from the boot archive's `profile`).
    pub fn profile() -> String {
        userlib::loader::archive()
            .and_then(|a| userlib::cpio::Archive::new(a).find("profile").ok().flatten())
            .and_then(|e| profile::decode_name(e.data))
            .unwrap_or_else(|| "?".into())
    }

    /// Sum of every task's CPU time, microseconds.
    pub fn cpu_total() -> u64 {
        supervisor::tasks()
            .map(|t| t.iter().map(|t| t.cpu_us).sum())
            .unwrap_or(0)
    }

    /// (used, total) bytes of the memory init hands out.
    pub fn memory() -> (u64, u64) {
        supervisor::memory()
            .map(|m| (m[0].saturating_sub(m[1]), m[0]))
            .unwrap_or((0, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        assert_eq!(clock_text(1_700_000_000), "22:13");
        assert_eq!(date_text(1_700_000_000), "2023-11-14");
        assert_eq!(uptime_text(3_723_000_000), "1 h 02 min");
        assert_eq!(uptime_text(184_000_000), "3 min 04 s");
        assert_eq!(mib(3 << 19), "1.5 MiB");
        assert_eq!(cpu_percent(50_000, 1_000_000), 5);
        assert_eq!(cpu_percent(5, 0), 0);
    }
}
