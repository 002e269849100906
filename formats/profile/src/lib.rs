//! The device profile schema, one definition for both ends:
//!
//! - the build tool reads `profiles/NAME.toml` into [`Profile`] (serde, the
//!   `toml` crate), checks it with [`Profile::check`] and writes it into the
//!   boot archive as `profile`, encoded by [`encode`] (postcard);
//! - init reads that file back with [`decode`], which runs the same checks.
//!
//! A profile says what a device is (display, how QEMU boots it) and which
//! drivers and servers init starts, with each task's priority, memory,
//! the services it **provides** and **uses** (init's name service routes
//! only those), and for drivers the extra physical ranges beyond their
//! device-tree node they may ask for ([`Task::device_memory`]). The schema
//! is documented in `profiles/README.md`.
#![no_std]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Deserializer, Serialize};

/// Task priorities a profile may give: 0 is the idle level and the highest
/// is init's, so its supervision always runs.
pub const PRIORITIES: core::ops::RangeInclusive<u64> = 1..=(abi::MAX_PRIORITY as u64 - 1);
/// Longest program name init takes.
pub const MAX_PROGRAM_NAME: usize = 31;
/// Longest service name (`userlib::proto::MAX_NAME`).
pub const MAX_SERVICE_NAME: usize = 32;
/// Most services a profile shares on the bus (`shared`).
pub const MAX_SHARED: usize = 16;
/// Largest display side.
pub const MAX_DISPLAY_SIDE: u64 = 8192;
/// CPUs the kernel supports (`kernel::MAX_CPUS`).
pub const MAX_SMP: u64 = 8;
/// Page size: memory limits and device ranges are whole pages.
pub const PAGE: u64 = 4096;
/// Placeholder in `[qemu] args` for the profile's disk image.
pub const DISK_PLACEHOLDER: &str = "@DISK@";

/// QEMU options that a profile's `args` must not contain: they have keys
/// of their own, or belong to the build tool (image, console).
pub const RESERVED_QEMU_OPTIONS: &[(&str, &str)] = &[
    ("-M", "use `machine`"),
    ("-machine", "use `machine`"),
    ("-cpu", "use `cpu`"),
    ("-smp", "use `smp`"),
    ("-m", "use `memory`"),
    ("-dtb", "use `dtb`"),
    ("-kernel", "the build tool passes the image"),
    ("-initrd", "the boot archive is in the image"),
    (
        "-append",
        "bootargs are given at run time (`cargo xtask run -- -append ...`)",
    ),
    ("-bios", "firmware boots are `cargo xtask run --uefi|--uboot`"),
    ("-nodefaults", "the build tool always adds it"),
    ("-nographic", "the build tool routes the console"),
    ("-serial", "the build tool routes the console"),
    ("-monitor", "the build tool routes the console"),
    ("-display", "the build tool routes the console"),
    ("-no-reboot", "only tests stop QEMU on a reboot"),
];

/// A device profile (`profiles/NAME.toml`; the boot archive's `profile`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    /// One line, shown by `cargo xtask build` and `run`.
    pub description: String,
    #[serde(default)]
    pub display: Option<Display>,
    /// Services this device offers to the paired devices of its group
    /// through the soft bus (`servers/bus`, `docs/BUS.md`): each one a
    /// service a task of this profile provides, by its exact name. A device
    /// shares nothing unless it is listed here.
    #[serde(default)]
    pub shared: Vec<String>,
    /// How QEMU boots the device. Required in the TOML file (the build tool
    /// checks); left out of the boot archive's copy.
    #[serde(default)]
    pub qemu: Option<Qemu>,
    /// `[[driver]]`: started once per device-tree node they match.
    #[serde(default, rename = "driver")]
    pub drivers: Vec<Task>,
    /// `[[server]]`: always started.
    #[serde(default, rename = "server")]
    pub servers: Vec<Task>,
}

/// `[display]`: the panel's size in pixels, and which glyphs of the UI
/// font the boot archive carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Display {
    pub width: u32,
    pub height: u32,
    #[serde(default)]
    pub glyphs: Glyphs,
}

/// `glyphs = "all"` (the default) or `"latin1"`: the UI font whole
/// (DejaVu Sans, 742 KiB) or its subset for U+0020..U+00FF and the
/// ellipsis (22 KiB), for a device whose memory cannot hold the whole
/// font (the watch). Other characters then draw as the font's missing
/// glyph box.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Glyphs {
    #[default]
    All,
    Latin1,
}

/// `[qemu]`: how `cargo xtask run --profile NAME` boots the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Qemu {
    /// `-M`.
    pub machine: String,
    /// `-cpu`.
    #[serde(default)]
    pub cpu: Option<String>,
    /// `-smp`, 1..=[`MAX_SMP`].
    #[serde(default)]
    pub smp: Option<u32>,
    /// `-m`, in QEMU's syntax (a plain number is MiB; see [`parse_qemu_memory`]).
    #[serde(default)]
    pub memory: Option<String>,
    /// A device tree the build tool fetches (`-dtb`).
    #[serde(default)]
    pub dtb: Option<String>,
    /// Size of the raw disk image [`DISK_PLACEHOLDER`] stands for.
    #[serde(default, deserialize_with = "opt_size")]
    pub disk: Option<u64>,
    /// The disk [`DISK_PLACEHOLDER`] stands for is a board's boot card
    /// (what `cargo xtask image --board BOARD` makes, with the profile's
    /// kernel) instead of a raw disk of `disk` bytes.
    #[serde(default)]
    pub card: Option<Card>,
    /// More QEMU arguments (devices).
    #[serde(default)]
    pub args: Vec<String>,
}

impl Qemu {
    /// Does any argument name the disk image?
    pub fn uses_disk(&self) -> bool {
        self.args.iter().any(|a| a.contains(DISK_PLACEHOLDER))
    }
}

/// `card = "rpi4"`: the Raspberry Pi 4 SD card (MBR, FAT32 boot partition
/// with the firmware, `config.txt` and `kernel8.img`, FAT32 data
/// partition). Its size is the card layout's, not `disk`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Card {
    Rpi4,
}

/// A driver or server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// Program name in the boot archive.
    pub program: String,
    /// Device-tree `compatible` strings it drives (drivers only; never
    /// empty for them). Virtio devices match as `virtio,deviceN` (N, the
    /// device ID, in hex).
    #[serde(default, rename = "match")]
    pub matches: Vec<String>,
    /// 1..=30 (init runs at 31).
    pub priority: u8,
    /// Memory limit in bytes (the task's pool), a positive multiple of 4 KiB.
    /// In TOML a size such as `"512K"` or a number of bytes.
    #[serde(deserialize_with = "size")]
    pub memory: u64,
    /// Passed to the program ("" = none).
    #[serde(default)]
    pub args: String,
    /// May use the supervisor's control calls (kill, restart, power).
    #[serde(default)]
    pub control: bool,
    /// Gets the boot archive, read-only: the graphical tasks read the UI's
    /// font (`font.ttf`, packed for a profile with a `[display]`) from it.
    #[serde(default)]
    pub archive: bool,
    /// Service names this task registers ([`name_matches`] patterns: `blk*`
    /// is `blk`, `blk1`, `blk2`, ...). No other task may register them.
    #[serde(default)]
    pub provides: Vec<String>,
    /// Service names (patterns) this task may look up. Each must be provided
    /// by some task of the profile.
    #[serde(default)]
    pub uses: Vec<String>,
    /// Physical ranges beyond its device-tree node's that a driver may ask
    /// the supervisor for (a framebuffer the device's firmware allocates).
    #[serde(default)]
    pub device_memory: Vec<Range>,
}

/// A physical range (`{ base = 0x3c000000, size = "64M" }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    pub base: u64,
    #[serde(deserialize_with = "size")]
    pub size: u64,
}

impl Range {
    /// Does `[start, start + bytes)` lie within this range?
    pub fn contains(&self, start: u64, bytes: u64) -> bool {
        let end = self.base.saturating_add(self.size);
        start >= self.base && bytes <= end - self.base && start - self.base <= end - self.base - bytes
    }
}

/// What kind of task a profile starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `[[driver]]`: bound to the devices whose `compatible` it matches.
    Driver,
    /// `[[server]]`: started unconditionally.
    Server,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::Driver => "driver",
            Kind::Server => "server",
        }
    }
}

/// Where a problem is: the key, and the table it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A top-level key.
    Top(&'static str),
    Display(&'static str),
    Qemu(&'static str),
    /// A key of the `index`th (from 0) `[[driver]]` or `[[server]]`.
    Task {
        kind: Kind,
        index: usize,
        key: &'static str,
    },
}

impl Place {
    /// The key named.
    pub fn key(&self) -> &'static str {
        match *self {
            Place::Top(k) | Place::Display(k) | Place::Qemu(k) => k,
            Place::Task { key, .. } => key,
        }
    }
}

/// The table a place is in: `the profile`, `[qemu]`, `[[driver]] #2`.
impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Place::Top(_) => f.write_str("the profile"),
            Place::Display(_) => f.write_str("[display]"),
            Place::Qemu(_) => f.write_str("[qemu]"),
            Place::Task { kind, index, .. } => write!(f, "[[{}]] #{}", kind.word(), index + 1),
        }
    }
}

/// A profile that breaks a rule: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub place: Option<Place>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match &self.place {
            Some(p) => write!(f, "`{}` in {p}: {}", p.key(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn problem(place: Place, message: impl Into<String>) -> Problem {
    Problem {
        place: Some(place),
        message: message.into(),
    }
}

impl Profile {
    /// Every task: drivers then servers, each in file order.
    pub fn tasks(&self) -> impl Iterator<Item = (Kind, usize, &Task)> {
        let d = self.drivers.iter().enumerate().map(|(i, t)| (Kind::Driver, i, t));
        let s = self.servers.iter().enumerate().map(|(i, t)| (Kind::Server, i, t));
        d.chain(s)
    }

    /// The driver for a device with these match keys (the first driver of
    /// the profile that names any of them, in the keys' order).
    pub fn driver_for(&self, keys: &[&str]) -> Option<&Task> {
        keys.iter()
            .find_map(|k| self.drivers.iter().find(|t| t.matches.iter().any(|m| m == k)))
    }

    /// The task that provides service `name`, if any.
    pub fn provider_of(&self, name: &str) -> Option<&Task> {
        self.tasks().map(|(_, _, t)| t).find(|t| t.provides(name))
    }

    /// Checks every rule of the schema that the types alone do not: ranges,
    /// names, routes. The first problem found is returned.
    pub fn check(&self) -> Result<(), Problem> {
        if !valid_profile_name(&self.name) {
            return Err(problem(
                Place::Top("name"),
                "a profile name is lower-case letters, digits and `-`, starting with a letter",
            ));
        }
        if self.description.contains(['\n', '\r']) {
            return Err(problem(Place::Top("description"), "must be one line"));
        }
        if let Some(d) = &self.display {
            for (key, v) in [("width", d.width), ("height", d.height)] {
                if !(1..=MAX_DISPLAY_SIDE).contains(&u64::from(v)) {
                    return Err(problem(
                        Place::Display(key),
                        format!("is {v}, outside 1..={MAX_DISPLAY_SIDE}"),
                    ));
                }
            }
        }
        if let Some(q) = &self.qemu {
            q.check()?;
        }
        let mut programs: Vec<&str> = Vec::new();
        for (kind, index, t) in self.tasks() {
            let at = |key| Place::Task { kind, index, key };
            t.check(kind, at)?;
            if programs.contains(&t.program.as_str()) {
                return Err(problem(
                    at("program"),
                    format!("program `{}` is listed twice", t.program),
                ));
            }
            programs.push(&t.program);
        }
        // Shared services: exact names, each provided here, at most
        // MAX_SHARED, none twice.
        if self.shared.len() > MAX_SHARED {
            return Err(problem(
                Place::Top("shared"),
                format!("lists {} services: at most {MAX_SHARED}", self.shared.len()),
            ));
        }
        for (i, name) in self.shared.iter().enumerate() {
            if !valid_service_pattern(name) || name.ends_with('*') {
                return Err(problem(
                    Place::Top("shared"),
                    format!(
                        "\"{name}\" is not a service name (printable, no spaces, at most {MAX_SERVICE_NAME} bytes)"
                    ),
                ));
            }
            if self.shared[..i].contains(name) {
                return Err(problem(Place::Top("shared"), format!("`{name}` is listed twice")));
            }
            if self.provider_of(name).is_none() {
                return Err(problem(
                    Place::Top("shared"),
                    format!("no task of the profile provides `{name}`: only a service of this device can be shared"),
                ));
            }
            // The bus carries out other devices' calls under its own
            // routes: it must use what it shares.
            match self.tasks().find(|(_, _, t)| t.program == "bus") {
                None => {
                    return Err(problem(
                        Place::Top("shared"),
                        format!("shares `{name}` but runs no `bus` task to serve it"),
                    ))
                }
                Some((kind, index, t)) if !t.uses.iter().any(|u| u == name) => {
                    return Err(problem(
                        Place::Task {
                            kind,
                            index,
                            key: "uses",
                        },
                        format!("the bus shares `{name}` (`shared`): its `uses` must list it"),
                    ))
                }
                Some(_) => {}
            }
        }
        // Routes: one provider per name; every use has a provider.
        for (kind, index, t) in self.tasks() {
            let at = |key| Place::Task { kind, index, key };
            for name in &t.provides {
                let other = self.tasks().find(|(k, i, o)| {
                    (*k, *i) != (kind, index) && o.provides.iter().any(|p| patterns_overlap(p, name))
                });
                if let Some((_, _, o)) = other {
                    return Err(problem(
                        at("provides"),
                        format!(
                            "`{name}` is also provided by `{}`: a service has one provider",
                            o.program
                        ),
                    ));
                }
            }
            for name in &t.uses {
                let provided = self
                    .tasks()
                    .any(|(_, _, o)| o.provides.iter().any(|p| patterns_overlap(p, name)));
                if !provided {
                    return Err(problem(
                        at("uses"),
                        format!("no task of the profile provides `{name}` (add it to that task's `provides`)"),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Qemu {
    fn check(&self) -> Result<(), Problem> {
        let at = Place::Qemu;
        if self.machine.trim().is_empty() {
            return Err(problem(at("machine"), "is empty"));
        }
        if let Some(n) = self.smp {
            if !(1..=MAX_SMP).contains(&u64::from(n)) {
                return Err(problem(at("smp"), format!("is {n}, outside 1..={MAX_SMP}")));
            }
        }
        if let Some(m) = &self.memory {
            parse_qemu_memory(m).map_err(|e| problem(at("memory"), e))?;
        }
        for x in &self.args {
            let opt = x.strip_prefix('-').map(|o| format!("-{}", o.trim_start_matches('-')));
            if let Some((o, why)) = RESERVED_QEMU_OPTIONS.iter().find(|(o, _)| opt.as_deref() == Some(*o)) {
                return Err(problem(at("args"), format!("must not contain {o}: {why}")));
            }
            let rest = x.replace(DISK_PLACEHOLDER, "");
            if let Some(i) = rest.find('@') {
                if rest[i + 1..].contains('@') {
                    return Err(problem(
                        at("args"),
                        format!("unknown placeholder in \"{x}\" (only {DISK_PLACEHOLDER})"),
                    ));
                }
            }
        }
        if self.card.is_some() {
            if !self.uses_disk() {
                return Err(problem(
                    at("card"),
                    format!("is set but no argument uses {DISK_PLACEHOLDER}"),
                ));
            }
            if self.disk.is_some() {
                return Err(problem(
                    at("disk"),
                    "must not be set with `card`: the card's layout fixes its size",
                ));
            }
        }
        if let Some(d) = self.disk {
            if !self.uses_disk() {
                return Err(problem(
                    at("disk"),
                    format!("is set but no argument uses {DISK_PLACEHOLDER}"),
                ));
            }
            if d == 0 || !d.is_multiple_of(512) {
                return Err(problem(at("disk"), "must be a positive multiple of 512 bytes"));
            }
        }
        Ok(())
    }
}

impl Task {
    fn check(&self, kind: Kind, at: impl Fn(&'static str) -> Place) -> Result<(), Problem> {
        if !valid_program(&self.program) {
            return Err(problem(
                at("program"),
                format!(
                    "\"{}\" is not a program name (lower-case letters, digits, `-`, `_`; at most {MAX_PROGRAM_NAME})",
                    self.program
                ),
            ));
        }
        if self.program == "init" {
            return Err(problem(
                at("program"),
                "`init` is started by the kernel, not by a profile",
            ));
        }
        match kind {
            Kind::Driver if self.matches.is_empty() => {
                return Err(problem(
                    at("match"),
                    "is empty or missing: a driver must match a device",
                ));
            }
            Kind::Server if !self.matches.is_empty() => {
                return Err(problem(at("match"), "only a [[driver]] matches devices"));
            }
            _ => {}
        }
        if let Some(bad) = self.matches.iter().find(|s| !valid_compatible(s)) {
            return Err(problem(
                at("match"),
                format!("\"{bad}\" is not a compatible string (printable, no spaces)"),
            ));
        }
        if !PRIORITIES.contains(&u64::from(self.priority)) {
            return Err(problem(
                at("priority"),
                format!(
                    "is {}, outside {}..={}",
                    self.priority,
                    PRIORITIES.start(),
                    PRIORITIES.end()
                ),
            ));
        }
        if self.memory == 0 || !self.memory.is_multiple_of(PAGE) {
            return Err(problem(
                at("memory"),
                format!("is {} bytes: it must be a positive multiple of 4 KiB", self.memory),
            ));
        }
        if self.args.contains(['\n', '\r']) {
            return Err(problem(at("args"), "must be one line"));
        }
        for (key, list) in [("provides", &self.provides), ("uses", &self.uses)] {
            if let Some(bad) = list.iter().find(|n| !valid_service_pattern(n)) {
                return Err(problem(
                    at(key),
                    format!(
                        "\"{bad}\" is not a service name (printable, no spaces, at most {MAX_SERVICE_NAME} bytes; a trailing `*` allows a number after it)"
                    ),
                ));
            }
        }
        if kind == Kind::Server && !self.device_memory.is_empty() {
            return Err(problem(at("device_memory"), "only a [[driver]] has device memory"));
        }
        for r in &self.device_memory {
            if r.size == 0
                || !r.base.is_multiple_of(PAGE)
                || !r.size.is_multiple_of(PAGE)
                || r.base.checked_add(r.size).is_none()
            {
                return Err(problem(
                    at("device_memory"),
                    format!(
                        "{:#x}+{:#x} is not a range of whole pages (base and size multiples of 4 KiB, size > 0)",
                        r.base, r.size
                    ),
                ));
            }
        }
        Ok(())
    }

    /// May this task register service `name`?
    pub fn provides(&self, name: &str) -> bool {
        self.provides.iter().any(|p| name_matches(p, name))
    }

    /// May this task look up service `name`?
    pub fn uses(&self, name: &str) -> bool {
        self.uses.iter().any(|p| name_matches(p, name))
    }

    /// May this driver ask for `[start, start + bytes)` beyond its node?
    pub fn may_map(&self, start: u64, bytes: u64) -> bool {
        self.device_memory.iter().any(|r| r.contains(start, bytes))
    }
}

/// Does service `name` match `pattern`? A pattern is a name, or a name
/// followed by `*`, which also matches that name followed by a decimal
/// number (`blk*`: `blk`, `blk1`, `blk12`; not `blkx`).
pub fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        None => pattern == name,
        Some(base) => name
            .strip_prefix(base)
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())),
    }
}

/// Could some name match both patterns?
pub fn patterns_overlap(a: &str, b: &str) -> bool {
    let base = |p: &str| String::from(p.strip_suffix('*').unwrap_or(p));
    name_matches(a, &base(b)) || name_matches(b, &base(a))
}

fn valid_service_pattern(p: &str) -> bool {
    let name = p.strip_suffix('*').unwrap_or(p);
    !name.is_empty() && p.len() <= MAX_SERVICE_NAME && name.bytes().all(|b| b.is_ascii_graphic() && b != b'*')
}

/// A profile name is a file stem and part of image names: lower-case
/// letters, digits and `-`, starting with a letter.
pub fn valid_profile_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A program name: what the archive and init can carry.
pub fn valid_program(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= MAX_PROGRAM_NAME
        && p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A `compatible` string (printable, no spaces).
pub fn valid_compatible(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic())
}

/// `256K`, `1M`, `2G` (binary units; `KiB`, `MiB`, `GiB` too), or a plain
/// number of bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    parse_size_with(s, 1)
}

/// QEMU's `-m` syntax: a number with an optional K/M/G/T suffix; a plain
/// number means MiB.
pub fn parse_qemu_memory(s: &str) -> Result<u64, String> {
    parse_size_with(s, 1 << 20)
}

fn parse_size_with(s: &str, plain: u64) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (like 256K, 1M, 2G)"))?;
    let mult = match unit.trim() {
        "" => plain,
        "B" if plain == 1 => 1,
        "K" | "k" | "KiB" => 1 << 10,
        "M" | "m" | "MiB" => 1 << 20,
        "G" | "g" | "GiB" => 1 << 30,
        "T" | "t" | "TiB" => 1 << 40,
        u => return Err(format!("`{s}`: unknown unit `{u}` (K, M, G)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("`{s}` is too large"))
}

/// A size: in a human-readable format (TOML) a string like `"256K"` or a
/// number of bytes; in the binary form a `u64`.
fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a size (\"256K\") or a number of bytes")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("{v} is not a size")))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<u64, E> {
            parse_size(v).map_err(E::custom)
        }
    }
    if d.is_human_readable() {
        d.deserialize_any(V)
    } else {
        u64::deserialize(d)
    }
}

fn opt_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    struct S(#[serde(deserialize_with = "size")] u64);
    Ok(Option::<S>::deserialize(d)?.map(|s| s.0))
}

/// The boot archive's form of a profile (postcard).
pub fn encode(p: &Profile) -> Vec<u8> {
    postcard::to_allocvec(p).expect("a profile always serializes")
}

/// Reads the boot archive's form and checks it.
pub fn decode(bytes: &[u8]) -> Result<Profile, Problem> {
    let p: Profile = postcard::from_bytes(bytes).map_err(|e| Problem {
        place: None,
        message: format!("the profile file is not a profile: {e}"),
    })?;
    p.check()?;
    Ok(p)
}

/// The profile's name alone, from [`encode`]'s bytes (their first field),
/// the rest neither decoded nor checked: for a task that only shows it
/// (the control center), without the code of the whole decoder.
pub fn decode_name(bytes: &[u8]) -> Option<String> {
    let (name, _) = postcard::take_from_bytes::<String>(bytes).ok()?;
    valid_profile_name(&name).then_some(name)
}

#[cfg(test)]
mod tests;
