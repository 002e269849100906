//! The device profile: which drivers and servers this device runs.
//!
//! `cargo xtask` turns `profiles/NAME.toml` into the `profile` file of the
//! boot archive, one line per item:
//!
//! ```text
//! # comment
//! profile phone
//! display 540 1170
//! driver uart-pl011 priority=26 memory=262144 match=arm,pl011 match=arm,primecell
//! server shell priority=12 memory=262144 control=yes args=any text
//! ```
//!
//! `match=` names one `compatible` (repeat it for more); `args=` takes the
//! rest of its line. [`parse`] checks everything and
//! names the line of the first error.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Whether a task drives devices or serves others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Driver,
    Server,
}

/// One driver or server of the profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskSpec {
    pub kind: Kind,
    pub program: String,
    pub priority: u8,
    pub memory: u64,
    /// `compatible` strings it drives (drivers).
    pub matches: Vec<String>,
    /// May use the supervisor's control calls.
    pub control: bool,
    pub args: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub display: Option<(u32, u32)>,
    pub tasks: Vec<TaskSpec>,
}

impl Profile {
    /// The driver for a device with these match keys (the first driver of
    /// the profile that names any of them, in the keys' order).
    pub fn driver_for(&self, keys: &[&str]) -> Option<&TaskSpec> {
        keys.iter().find_map(|k| {
            self.tasks
                .iter()
                .find(|t| t.kind == Kind::Driver && t.matches.iter().any(|m| m == k))
        })
    }
}

/// Highest priority a profile may give (init runs above it).
pub const MAX_TASK_PRIORITY: u8 = userlib::abi::MAX_PRIORITY - 1;

/// Parses a profile file; the error names the line.
pub fn parse(text: &str) -> Result<Profile, String> {
    let mut p = Profile::default();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |what: &str| alloc::format!("profile line {}: {what}: `{line}`", n + 1);
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "profile" => {
                let name = rest.trim();
                if name.is_empty() || name.contains(' ') {
                    return Err(err("expected `profile NAME`"));
                }
                p.name = name.to_string();
            }
            "display" => {
                let mut it = rest.split_whitespace().map(|v| v.parse::<u32>());
                match (it.next(), it.next(), it.next()) {
                    (Some(Ok(w)), Some(Ok(h)), None) if w > 0 && h > 0 && w <= 8192 && h <= 8192 => {
                        p.display = Some((w, h))
                    }
                    _ => return Err(err("expected `display WIDTH HEIGHT`")),
                }
            }
            "driver" | "server" => p.tasks.push(task(word, rest).map_err(|e| err(&e))?),
            _ => return Err(err("unknown item")),
        }
    }
    if p.name.is_empty() {
        return Err("profile: no `profile NAME` line".into());
    }
    Ok(p)
}

fn task(kind: &str, rest: &str) -> Result<TaskSpec, String> {
    let (program, mut keys) = rest.trim().split_once(' ').unwrap_or((rest.trim(), ""));
    if program.is_empty() || program.len() > 31 {
        return Err("missing or overlong program name".into());
    }
    let mut t = TaskSpec {
        kind: if kind == "driver" { Kind::Driver } else { Kind::Server },
        program: program.into(),
        priority: 0,
        memory: 0,
        matches: Vec::new(),
        control: false,
        args: String::new(),
    };
    loop {
        keys = keys.trim_start();
        if keys.is_empty() {
            break;
        }
        if let Some(args) = keys.strip_prefix("args=") {
            t.args = args.trim().into();
            break;
        }
        let (pair, next) = keys.split_once(' ').unwrap_or((keys, ""));
        keys = next;
        let (k, v) = pair.split_once('=').ok_or("expected key=value")?;
        match k {
            "priority" => {
                t.priority = v
                    .parse()
                    .ok()
                    .filter(|p| (1..=MAX_TASK_PRIORITY).contains(p))
                    .ok_or("priority must be 1..=30")?
            }
            "memory" => t.memory = v.parse().ok().filter(|m| *m >= 4096).ok_or("bad memory size")?,
            // Compatible strings contain commas: one per `match=`.
            "match" if !v.is_empty() => t.matches.push(v.into()),
            "control" => t.control = v == "yes",
            _ => return Err(alloc::format!("unknown key `{k}`")),
        }
    }
    if t.priority == 0 || t.memory == 0 {
        return Err("priority= and memory= are required".into());
    }
    if t.kind == Kind::Driver && t.matches.is_empty() {
        return Err("a driver needs match=".into());
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE: &str = "# generated\nprofile phone\ndisplay 540 1170\n\
        driver uart-pl011 priority=26 memory=262144 match=arm,pl011 match=arm,sbsa-uart\n\
        driver virtio-blk priority=24 memory=524288 match=virtio,device2 args=name=blk cache=off\n\
        server shell priority=12 memory=262144 control=yes\n";

    #[test]
    fn parses_a_profile() {
        let p = parse(PHONE).unwrap();
        assert_eq!(p.name, "phone");
        assert_eq!(p.display, Some((540, 1170)));
        assert_eq!(p.tasks.len(), 3);
        assert_eq!(p.tasks[1].args, "name=blk cache=off");
        assert_eq!(p.tasks[1].matches, ["virtio,device2"]);
        assert_eq!(p.tasks[0].matches, ["arm,pl011", "arm,sbsa-uart"]);
        assert!(p.tasks[2].control && !p.tasks[0].control);
        assert_eq!(
            p.driver_for(&["virtio,mmio", "virtio,device2"]).unwrap().program,
            "virtio-blk"
        );
        assert!(p.driver_for(&["arm,pl031"]).is_none());
    }

    #[test]
    fn rejects_bad_lines_with_their_number() {
        for (text, what) in [
            ("driver x priority=5 memory=8192 match=a", "no `profile NAME`"),
            ("profile p\nfrobnicate", "line 2: unknown item"),
            ("profile p\ndriver x priority=99 memory=8192 match=a", "priority"),
            ("profile p\ndriver x priority=5 memory=lots match=a", "memory"),
            ("profile p\ndriver x priority=5 memory=8192", "match="),
            ("profile p\nserver x memory=8192", "required"),
            (
                "profile p\nserver x priority=5 memory=8192 colour=red",
                "unknown key `colour`",
            ),
            ("profile p\ndisplay 0 10", "display"),
            ("profile p\nserver x priority=5 memory=8192 junk", "key=value"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(what), "{text:?}: {e}");
        }
    }
}
