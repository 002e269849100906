//! What the commands print, from what the supervisor and the RTC answer:
//! tables, sizes, durations, dates, and one-line error messages.

use crate::table::Table;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use userlib::proto::TaskRecord;
use userlib::Error;

/// `512 B`, `4 KiB`, `1.50 MiB`, `300 KiB`, `1.99 GiB`: three significant
/// digits, cut rather than rounded (so a nearly full 2 GiB does not show
/// as 2), no decimals when exact.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut unit = 1024u64;
    let mut i = 0;
    while i + 1 < UNITS.len() && n >= unit * 1024 {
        unit *= 1024;
        i += 1;
    }
    let whole = n / unit;
    if n.is_multiple_of(unit) || whole >= 100 {
        return format!("{whole} {}", UNITS[i]);
    }
    let decimals = if whole >= 10 { 1 } else { 2 };
    let scale = 10u128.pow(decimals);
    let frac = u128::from(n % unit) * scale / u128::from(unit);
    format!("{whole}.{frac:0w$} {}", UNITS[i], w = decimals as usize)
}

/// CPU time: seconds with milliseconds, `0.005s`.
pub fn cpu(us: u64) -> String {
    format!("{}.{:03}s", us / 1_000_000, us / 1000 % 1000)
}

/// Time since boot: `up 42.125 s`, `up 5 min 3 s`, `up 2 h 5 min`, `up 3 days 2 h 5 min`.
pub fn uptime(us: u64) -> String {
    let s = us / 1_000_000;
    let (days, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    let d = match days {
        0 => String::new(),
        1 => "1 day ".into(),
        n => format!("{n} days "),
    };
    match (days, h, m) {
        (0, 0, 0) => format!("up {}.{:03} s", s, us / 1000 % 1000),
        (0, 0, _) => format!("up {m} min {sec} s"),
        _ => format!("up {d}{h} h {m} min"),
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` of seconds since the Unix epoch.
pub fn date(seconds: u64) -> String {
    let (y, mo, d, h, mi, s) = userlib::services::rtc::civil_from_unix(seconds);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

/// Why a system call or request failed, for a one-line message.
pub fn error(e: Error) -> &'static str {
    match e {
        Error::NoRights => "not permitted (the shell lacks the supervisor's control right)",
        Error::TimedOut => "no answer (timed out)",
        Error::PeerDied | Error::BadHandle => "the server went away",
        Error::NotSupported => "not supported on this machine",
        Error::InvalidArgument => "no such task",
        Error::InvalidState => "not possible in the task's state",
        Error::OutOfMemory => "out of memory",
        Error::WouldBlock => "not available",
        Error::CapsRefused => "refused: the reply carried more capabilities than the call accepts",
        _ => "failed",
    }
}

/// `ps`: one row per task.
pub fn ps(tasks: &[TaskRecord]) -> String {
    let mut t = Table::new(&[
        "ID", "NAME", "STATE", "MEM", "LIMIT", "CPU", "RESTARTS", "PRIO", "DEVICE",
    ])
    .right(&[0, 3, 4, 5, 6, 7]);
    for r in tasks {
        t.row([
            r.id.to_string(),
            r.name.clone(),
            r.state.as_str().into(),
            bytes(r.memory_used),
            if r.memory_limit == 0 {
                "-".into()
            } else {
                bytes(r.memory_limit)
            },
            cpu(r.cpu_us),
            r.restarts.to_string(),
            r.priority.to_string(),
            if r.device.is_empty() {
                "-".into()
            } else {
                r.device.clone()
            },
        ]);
    }
    t.render()
}

/// `mem`: `[pool total, pool free, kernel objects, free RAM, kernel heap]`.
pub fn mem(m: [u64; 5]) -> String {
    let mut t =
        Table::new(&["POOL TOTAL", "POOL FREE", "KERNEL OBJECTS", "FREE RAM", "KERNEL HEAP"]).right(&[0, 1, 2, 3, 4]);
    t.row([bytes(m[0]), bytes(m[1]), m[2].to_string(), bytes(m[3]), bytes(m[4])]);
    t.render()
}

/// `devices`: records `([physical, size, irq], "node compatible driver")`,
/// with size 0 for no region, irq 0 for no interrupt (0 is never a device
/// interrupt: it is a software-generated one) and driver `-` when no
/// driver took the node.
pub fn devices(records: &[(Vec<u64>, String)]) -> String {
    let mut t = Table::new(&["NODE", "ADDRESS", "SIZE", "IRQ", "COMPATIBLE", "DRIVER"]).right(&[2, 3]);
    for (v, text) in records {
        let words: Vec<&str> = text.split_ascii_whitespace().collect();
        let (node, compatible, driver) = match words.as_slice() {
            [] => ("?", String::new(), "-"),
            [n] => (*n, String::new(), "-"),
            [n, c] => (*n, String::from(*c), "-"),
            [n, c @ .., d] => (*n, c.join(" "), *d),
        };
        let size = v.get(1).copied().unwrap_or(0);
        let irq = v.get(2).copied().unwrap_or(0);
        t.row([
            node.into(),
            if size == 0 { "-".into() } else { format!("{:#x}", v[0]) },
            if size == 0 { "-".into() } else { bytes(size) },
            if irq == 0 { "-".into() } else { irq.to_string() },
            if compatible.is_empty() { "-".into() } else { compatible },
            driver.into(),
        ]);
    }
    t.render()
}

/// `services`: the routes, records `([provider id, clients, registered],
/// "name provider users")` (see `userlib::proto::NS_LIST`). A route whose
/// provider has not registered it (down, restarting) shows `-` for its id
/// and clients.
pub fn services(records: &[(Vec<u64>, String)]) -> String {
    let mut t = Table::new(&["SERVICE", "PROVIDER", "ID", "CLIENTS", "ROUTED TO"]).right(&[2, 3]);
    for (v, text) in records {
        let mut w = text.split(' ');
        let mut word = || w.next().filter(|s| !s.is_empty()).unwrap_or("-").to_string();
        let (name, provider, users) = (word(), word(), word());
        let up = v.get(2).is_none_or(|&r| r != 0);
        let num = |i: usize| match v.get(i) {
            Some(n) if up => n.to_string(),
            _ => "-".into(),
        };
        t.row([name, provider, num(0), num(1), users]);
    }
    t.render()
}

/// The task a `kill`/`restart` argument names: an id (all digits) or a
/// unique name. `Err` is the message for `command`.
pub fn resolve<'a>(command: &str, target: &str, tasks: &'a [TaskRecord]) -> Result<&'a TaskRecord, String> {
    let found = find(command, target, tasks)?;
    if found.id == 0 {
        // Task 0 is init, the supervisor itself.
        return Err(format!("{command}: init is not a target"));
    }
    Ok(found)
}

fn find<'a>(command: &str, target: &str, tasks: &'a [TaskRecord]) -> Result<&'a TaskRecord, String> {
    if !target.is_empty() && target.bytes().all(|b| b.is_ascii_digit()) {
        let id: Option<u64> = target.parse().ok();
        return tasks
            .iter()
            .find(|t| Some(t.id) == id)
            .ok_or_else(|| format!("{command}: no task with id {target}"));
    }
    let named: Vec<&TaskRecord> = tasks.iter().filter(|t| t.name == target).collect();
    match named.as_slice() {
        [] => Err(format!("{command}: no task named '{target}'")),
        [one] => Ok(one),
        many => {
            let ids: Vec<String> = many.iter().map(|t| t.id.to_string()).collect();
            Err(format!(
                "{command}: {} tasks are named '{target}'; give an id ({})",
                many.len(),
                ids.join(", ")
            ))
        }
    }
}

/// `ls` without `-l`: names, directories with a trailing `/`, one per line.
pub fn ls(entries: &[userlib::fs::DirEntry]) -> String {
    let mut s = String::new();
    for e in entries {
        s.push_str(&e.name);
        if e.stat.is_dir {
            s.push('/');
        }
        s.push('\n');
    }
    s
}

/// `ls -l`: type, size, modification time, name.
pub fn ls_long(entries: &[userlib::fs::DirEntry]) -> String {
    let mut t = Table::new(&["TYPE", "SIZE", "MODIFIED", "NAME"]).right(&[1]);
    for e in entries {
        t.row([
            String::from(if e.stat.is_dir { "dir" } else { "file" }),
            if e.stat.is_dir {
                String::from("-")
            } else {
                e.stat.size.to_string()
            },
            e.stat.modified(),
            e.name.clone(),
        ]);
    }
    t.render()
}

/// `df`: one row per mount, `(name, [cluster bytes, clusters, free clusters, fat32])`.
pub fn df(rows: &[(String, Result<[u64; 4], userlib::fs::Error>)]) -> String {
    let mut t = Table::new(&["MOUNT", "TYPE", "SIZE", "USED", "FREE", "USE%"]).right(&[2, 3, 4, 5]);
    let mut errors = String::new();
    for (name, r) in rows {
        match r {
            Ok([cb, n, free, fat32]) => {
                let (size, free) = (cb * n, cb * free);
                let used = size.saturating_sub(free);
                t.row([
                    format!("/{name}"),
                    String::from(if *fat32 != 0 { "FAT32" } else { "FAT16" }),
                    bytes(size),
                    bytes(used),
                    bytes(free),
                    format!("{}%", (used * 100).checked_div(size).unwrap_or(0)),
                ]);
            }
            Err(e) => errors.push_str(&format!("df: /{name}: {e}\n")),
        }
    }
    t.render() + &errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings() {
        use userlib::fs::DirEntry;
        use userlib::services::fs::Stat;
        let e = [
            DirEntry {
                name: "notes.txt".into(),
                stat: Stat {
                    size: 1234,
                    date: (44 << 9) | (3 << 5) | 9,
                    time: 13 << 11,
                    ..Stat::default()
                },
            },
            DirEntry {
                name: "My Photos".into(),
                stat: Stat {
                    is_dir: true,
                    date: (44 << 9) | (1 << 5) | 1,
                    ..Stat::default()
                },
            },
        ];
        assert_eq!(ls(&e), "notes.txt\nMy Photos/\n");
        let l = ls_long(&e);
        assert!(l.contains("file  1234  2024-03-09 13:00  notes.txt"), "{l}");
        assert!(l.contains("dir      -  2024-01-01 00:00  My Photos"), "{l}");
        let d = df(&[
            ("data".into(), Ok([512, 131072, 65536, 1])),
            ("boot".into(), Err(userlib::fs::Error::Unsupported)),
        ]);
        assert!(d.contains("/data  FAT32  64 MiB  32 MiB  32 MiB   50%"), "{d}");
        assert!(d.ends_with("df: /boot: not a FAT file system\n"), "{d}");
    }
    use userlib::proto::TaskState;

    fn task(id: u64, name: &str, device: &str) -> TaskRecord {
        TaskRecord {
            id,
            state: TaskState::Running,
            memory_limit: 16 << 20,
            memory_used: 300 * 1024 + 512,
            cpu_us: 1_234_567,
            restarts: 0,
            priority: 20,
            name: name.into(),
            device: device.into(),
        }
    }

    #[test]
    fn error_texts() {
        // A reply refused for its capabilities (a hostile or broken
        // server) is named, not a bare "failed".
        assert_eq!(
            error(Error::CapsRefused),
            "refused: the reply carried more capabilities than the call accepts"
        );
        assert_eq!(error(Error::TimedOut), "no answer (timed out)");
        assert_eq!(error(Error::NoSlots), "failed");
    }

    #[test]
    fn sizes_and_times() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(4096), "4 KiB");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(2046 << 20), "1.99 GiB");
        assert_eq!(bytes(300 * 1024 + 512), "300 KiB");
        assert_eq!(bytes(15 * 1024 + 1000), "15.9 KiB");
        assert_eq!(bytes(u64::MAX), "16777215 TiB");
        assert_eq!(cpu(5_000), "0.005s");
        assert_eq!(cpu(61_250_999), "61.250s");
        assert_eq!(uptime(42_125_000), "up 42.125 s");
        assert_eq!(uptime(303_000_000), "up 5 min 3 s");
        assert_eq!(uptime(7_503_000_000), "up 2 h 5 min");
        assert_eq!(uptime(86_400_000_000 + 60_000_000), "up 1 day 0 h 1 min");
        assert_eq!(uptime(3 * 86_400_000_000), "up 3 days 0 h 0 min");
        assert_eq!(date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(date(1_795_000_000), "2026-11-18 11:06:40 UTC");
    }

    #[test]
    fn ps_table() {
        let mut tasks = [task(1, "pl011", "pl011@9000000"), task(12, "shell", "")];
        tasks[1].state = TaskState::Stopped;
        tasks[1].restarts = 3;
        let s = ps(&tasks);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines,
            [
                "ID  NAME   STATE        MEM   LIMIT     CPU  RESTARTS  PRIO  DEVICE",
                " 1  pl011  running  300 KiB  16 MiB  1.234s         0    20  pl011@9000000",
                "12  shell  stopped  300 KiB  16 MiB  1.234s         3    20  -",
            ]
        );
    }

    #[test]
    fn mem_devices_services_tables() {
        let m = mem([2 << 30, 1 << 30, 123, 3 << 30, 40 << 10]);
        assert_eq!(
            m,
            "POOL TOTAL  POOL FREE  KERNEL OBJECTS  FREE RAM  KERNEL HEAP\n     2 GiB      1 GiB             123     3 GiB       40 KiB\n"
        );
        let d = devices(&[
            (
                alloc::vec![0x9000000, 0x1000, 33],
                "pl011@9000000 arm,pl011 pl011".into(),
            ),
            (
                alloc::vec![0xa000000, 0x200, 48],
                "virtio_mmio@a000000 virtio,mmio -".into(),
            ),
            (alloc::vec![0, 0, 0], "timer arm,armv8-timer -".into()),
        ]);
        let lines: Vec<&str> = d.lines().collect();
        assert_eq!(
            lines,
            [
                "NODE                 ADDRESS     SIZE  IRQ  COMPATIBLE       DRIVER",
                "pl011@9000000        0x9000000  4 KiB   33  arm,pl011        pl011",
                "virtio_mmio@a000000  0xa000000  512 B   48  virtio,mmio      -",
                "timer                -              -    -  arm,armv8-timer  -",
            ]
        );
        let s = services(&[
            (alloc::vec![3, 2, 1], "console pl011 shell,test-x".into()),
            (alloc::vec![4, 0, 0], "blk* virtio-blk shell".into()),
            (alloc::vec![], "rtc".into()),
        ]);
        assert_eq!(
            s,
            "SERVICE  PROVIDER    ID  CLIENTS  ROUTED TO\n\
             console  pl011        3        2  shell,test-x\n\
             blk*     virtio-blk   -        -  shell\n\
             rtc      -            -        -  -\n"
        );
    }

    #[test]
    fn resolving_targets() {
        let tasks = [
            task(0, "init", ""),
            task(3, "virtio-blk", "a"),
            task(4, "virtio-blk", "b"),
            task(5, "rtc-pl031", ""),
        ];
        assert_eq!(resolve("kill", "rtc-pl031", &tasks).unwrap().id, 5);
        assert_eq!(resolve("kill", "4", &tasks).unwrap().name, "virtio-blk");
        assert_eq!(resolve("kill", "x", &tasks).unwrap_err(), "kill: no task named 'x'");
        assert_eq!(
            resolve("restart", "9", &tasks).unwrap_err(),
            "restart: no task with id 9"
        );
        assert_eq!(
            resolve("kill", "99999999999999999999999", &tasks).unwrap_err(),
            "kill: no task with id 99999999999999999999999"
        );
        assert_eq!(
            resolve("kill", "virtio-blk", &tasks).unwrap_err(),
            "kill: 2 tasks are named 'virtio-blk'; give an id (3, 4)"
        );
        assert_eq!(
            resolve("kill", "init", &tasks).unwrap_err(),
            "kill: init is not a target"
        );
        assert_eq!(resolve("kill", "0", &tasks).unwrap_err(), "kill: init is not a target");
    }
}
