//! What the kernel command line asks of init.
//!
//! - `utest`: run every `test-*` program of the archive, one at a time,
//!   report each, print the result line and exit (0: all passed).
//! - `utest=A,B`: run only the test programs named `A`, `test-A`, or
//!   starting with either (so `utest=iso` runs every `test-iso-*`); any
//!   other program by its full name (e.g. `utest=bench`).
//! - `utest.timeout=SECONDS`: per-program time limit (default: see
//!   [`default_timeout`]).
//! - `start=A,B`: (without `utest`) start these programs and supervise them,
//!   restarting them after faults.
//! - `arg.PROGRAM.KEY=VALUE`: the profile's server PROGRAM gets `KEY=VALUE`
//!   in its arguments, in place of its own `KEY=...` (see [`set_args`]):
//!   the input-to-photon benchmark makes itself the compositor's home with
//!   `arg.compositor.home=bench-photon`. The command line is part of the
//!   boot configuration, as trusted as the image.

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Run programs as tests; an empty filter list means every `test-*`.
    Test {
        filters: Vec<String>,
        timeout_s: Option<u64>,
    },
    /// Start and supervise these programs.
    Serve { programs: Vec<String> },
}

pub fn parse(bootargs: &str) -> Mode {
    let mut test: Option<Vec<String>> = None;
    let mut timeout_s = None;
    let mut programs = Vec::new();
    let list = |v: &str| {
        v.split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    for token in bootargs.split_whitespace() {
        match token.split_once('=') {
            None if token == "utest" => {
                test.get_or_insert_with(Vec::new);
            }
            Some(("utest", v)) => test.get_or_insert_with(Vec::new).extend(list(v)),
            Some(("utest.timeout", v)) => timeout_s = v.parse().ok(),
            Some(("start", v)) => programs.extend(list(v)),
            _ => {}
        }
    }
    match test {
        Some(filters) => Mode::Test { filters, timeout_s },
        None => Mode::Serve { programs },
    }
}

/// The `arg.PROGRAM.KEY=VALUE` settings of `bootargs` applied to `args`,
/// the arguments of program `program`: each replaces the first `KEY=...`
/// word, or is added at the end. Words without `=` and other programs'
/// settings are left alone.
pub fn set_args(bootargs: &str, program: &str, args: &str) -> String {
    let mut words: Vec<String> = args.split_whitespace().map(String::from).collect();
    for token in bootargs.split_whitespace() {
        let Some(rest) = token.strip_prefix("arg.") else {
            continue;
        };
        let Some((prog, kv)) = rest.split_once('.') else {
            continue;
        };
        let Some((key, _)) = kv.split_once('=') else { continue };
        if prog != program || key.is_empty() {
            continue;
        }
        match words
            .iter_mut()
            .find(|w| w.split_once('=').is_some_and(|(k, _)| k == key))
        {
            Some(w) => *w = String::from(kv),
            None => words.push(String::from(kv)),
        }
    }
    words.join(" ")
}

/// The programs a test run covers, in name order.
pub fn select<'a>(programs: &[&'a str], filters: &[String]) -> Vec<&'a str> {
    let mut v: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|name| {
            if filters.is_empty() {
                return name.starts_with("test-");
            }
            // Prefixes select test programs; anything else (a driver, the
            // benchmarks) only by its full name.
            let Some(short) = name.strip_prefix("test-") else {
                return filters.iter().any(|f| f == name);
            };
            filters
                .iter()
                .any(|f| name.starts_with(f.as_str()) || short.starts_with(f.as_str()))
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The services each test program is routed to (its `uses`, as a
/// profile's task has them; see `profile::name_matches` for `*`). A test
/// program not listed here is routed to nothing: its lookups get
/// `NoRights`. Test programs provide no services. Add a row with a new test
/// program that talks to a service.
pub const TEST_ROUTES: &[(&str, &[&str])] = &[
    ("test-blk", &["blk*"]),
    ("test-sdcard", &["blk*"]),
    ("test-sdeject", &["blk*"]),
    ("test-fs", &["fs", "blk*"]),
    ("test-powercut", &["fs"]),
    ("test-net-hostile", &["net"]),
    ("test-rng", &["rng"]),
    ("test-console", &["console"]),
    ("test-rtc", &["rtc"]),
    ("test-gpio", &["gpio"]),
    ("test-mbox-fb", &["display"]),
    ("test-display", &["display"]),
    ("test-caps-kernel-memory", &["display"]),
    ("test-input", &["keyboard*", "touch*", "mouse*", "input*"]),
    // A hostile client of the display server.
    ("test-compositor", &["compositor"]),
    ("test-compositor-after", &["compositor"]),
    ("test-surface-revoke", &["compositor"]),
    // The routing test itself: `console` only (it must be refused the rest).
    ("test-routes", &["console"]),
    // A client that sends capabilities with every request (issue 11).
    ("test-capflood", &["console", "rtc"]),
    // The display benchmarks: the driver's only client (`servers=none`).
    ("bench-display", &["display"]),
    // Input to photon: the compositor's home (`servers=compositor
    // arg.compositor.home=bench-photon`), so the keys come to it.
    ("bench-photon", &["compositor"]),
    // The file-server benchmarks (with the file server only: `servers=fs`).
    ("bench-fs", &["fs"]),
    // TCP from the host (`servers=net`), and the soft bus between two
    // devices: the caller (`servers=net,bus`) and its peer, which writes
    // the file the caller reads (`servers=fs,net,bus`).
    ("bench-net", &["net"]),
    ("bench-bus", &["net", "bus"]),
    ("bench-bus-peer", &["fs", "net"]),
];

/// Test programs that get the counters capability (`READ`: kernel
/// statistics and the cycle counter; `StartInfo::counters`): the ones that
/// measure. No other task gets it (least privilege: it tells how busy the
/// machine is, a timing channel).
pub const TEST_COUNTERS: &[&str] = &[
    "bench",
    "bench-display",
    "bench-photon",
    "bench-fs",
    "bench-net",
    "bench-bus",
    "test-blk",
    "test-caps-kernel-memory",
    "test-caps-task-cost",
    "test-caps-counters",
    "test-capflood",
    "test-hostile",
];

/// Whether test program `name` gets the counters capability.
pub fn test_counters(name: &str) -> bool {
    TEST_COUNTERS.contains(&name)
}

/// The `uses` of test program `name`.
pub fn test_routes(name: &str) -> Vec<String> {
    TEST_ROUTES
        .iter()
        .find(|(program, _)| *program == name)
        .map(|(_, uses)| uses.iter().map(|u| String::from(*u)).collect())
        .unwrap_or_default()
}

/// Seconds a program may run in a test run before it counts as hung: long
/// for the stress tests, short for the rest; `None` (no deadline) for the
/// benchmarks. They run under `-icount shift=0,sleep=off`, where a CPU
/// that idles (a driver waiting for its device's interrupt) jumps the
/// virtual clock at once to the next QEMU timer, and one is always armed
/// (QEMU's PMU model times the overflow of the 32-bit instruction counter,
/// up to about 4.3 s ahead): a deadline would pass after a few dozen
/// device waits. The host's timeout (`cargo xtask bench`) bounds them
/// instead.
pub fn default_timeout(name: &str) -> Option<u64> {
    if name.starts_with("bench") {
        None
    } else if ["test-hostile", "test-smp"].iter().any(|p| name.starts_with(p)) {
        Some(600)
    } else {
        Some(120)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn test_routes_are_exact() {
        assert_eq!(test_routes("test-blk"), s(&["blk*"]));
        assert!(test_routes("test-hostile").is_empty(), "unlisted: routed to nothing");
        assert!(test_routes("test-bl").is_empty() && test_routes("test-blk2").is_empty());
        for (program, uses) in TEST_ROUTES {
            assert!(
                program.starts_with("test-") || program.starts_with("bench-"),
                "{program}"
            );
            assert!(!uses.is_empty(), "{program}: list only tests that use a service");
        }
    }

    #[test]
    fn parses_modes() {
        assert_eq!(parse(""), Mode::Serve { programs: vec![] });
        assert_eq!(
            parse("console=x start=a,b"),
            Mode::Serve {
                programs: s(&["a", "b"])
            }
        );
        assert_eq!(
            parse("utest"),
            Mode::Test {
                filters: vec![],
                timeout_s: None
            }
        );
        assert_eq!(
            parse("ktest.filter=x utest=ipc,caps utest.timeout=30 start=a"),
            Mode::Test {
                filters: s(&["ipc", "caps"]),
                timeout_s: Some(30)
            }
        );
        assert_eq!(
            parse("utest= "),
            Mode::Test {
                filters: vec![],
                timeout_s: None
            }
        );
    }

    #[test]
    fn sets_a_servers_args() {
        let args = "bar=statusbar home=home panel=control density=160";
        assert_eq!(set_args("", "compositor", args), args);
        assert_eq!(
            set_args("utest=x arg.compositor.home=bench-photon", "compositor", args),
            "bar=statusbar home=bench-photon panel=control density=160"
        );
        // Another program's setting, a malformed one, and one that adds.
        assert_eq!(
            set_args(
                "arg.home.bar=x arg.compositor arg.compositor.=1 arg.compositor.dpi=2",
                "compositor",
                "a=1"
            ),
            "a=1 dpi=2"
        );
        // A key is a whole word's key (`bar` is not `bar_height`); later wins.
        assert_eq!(
            set_args("arg.c.bar=1 arg.c.bar=2", "c", "bar_height=9 bar=0 x"),
            "bar_height=9 bar=2 x"
        );
    }

    #[test]
    fn selects_programs() {
        let names = [
            "rtc-pl031",
            "test-rtc",
            "test-ipc",
            "init",
            "test-iso-mmio",
            "bench",
            "test-iso-kernel-read",
            "test-caps",
        ];
        assert_eq!(
            select(&names, &[]),
            [
                "test-caps",
                "test-ipc",
                "test-iso-kernel-read",
                "test-iso-mmio",
                "test-rtc"
            ]
        );
        assert_eq!(select(&names, &s(&["iso"])), ["test-iso-kernel-read", "test-iso-mmio"]);
        assert_eq!(select(&names, &s(&["test-ipc", "bench"])), ["bench", "test-ipc"]);
        assert_eq!(select(&names, &s(&["ipc", "test-ipc"])), ["test-ipc"]);
        assert!(select(&names, &s(&["nothing"])).is_empty());
        assert_eq!(select(&names, &s(&["rtc"])), ["test-rtc"]);
        assert_eq!(select(&names, &s(&["rtc-pl031"])), ["rtc-pl031"]);
    }

    #[test]
    fn timeouts() {
        assert_eq!(default_timeout("test-hostile"), Some(600));
        assert_eq!(default_timeout("test-ipc"), Some(120));
        assert_eq!(default_timeout("bench-display"), None);
    }
}
