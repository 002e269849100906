//! Device profiles: `profiles/NAME.toml` says what a device is — its
//! display, how QEMU boots it, and which drivers and servers init starts.
//! The build tool checks a profile, packs the programs it names into the
//! boot archive with a generated text file `profile` (the only format init
//! parses), and boots it with `cargo xtask run --profile NAME`.
//!
//! The schema is documented in profiles/README.md; every error names the
//! file, the line and the key.

use crate::bail;
use crate::util::{self, Result};
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// The profile of `cargo xtask build` and `run` without `--profile`.
pub const DEFAULT: &str = "phone";

/// The name of the generated file in the boot archive.
pub const FILE_NAME: &str = "profile";

/// Placeholder in `[qemu] args` for the profile's disk image.
pub const DISK_PLACEHOLDER: &str = "@DISK@";

/// Size of the disk image when `[qemu] disk` is not given.
pub const DEFAULT_DISK_SIZE: u64 = 1 << 20;

/// Task priorities a profile may give: 0 is the idle level and the highest
/// is init's (`abi::boot_info::INIT_PRIORITY`), so its supervision always runs.
pub const PRIORITIES: std::ops::RangeInclusive<u64> = 1..=(abi::MAX_PRIORITY as u64 - 1);

/// Longest program name init takes.
pub const MAX_PROGRAM_NAME: usize = 31;

/// Largest display side init takes.
pub const MAX_DISPLAY_SIDE: u64 = 8192;

/// CPUs the kernel supports (`kernel::MAX_CPUS`).
pub const MAX_SMP: u64 = 8;

/// Device trees a profile may name in `[qemu] dtb`: the ones the build tool
/// fetches (and checks by hash).
pub const KNOWN_DTBS: &[&str] = &[crate::fetch::DTB_NAME];

/// QEMU options that a profile's `args` must not contain: they have keys
/// of their own, or belong to the build tool (image, console).
const RESERVED_QEMU_OPTIONS: &[(&str, &str)] = &[
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
    ("-nographic", "the build tool routes the console"),
    ("-serial", "the build tool routes the console"),
    ("-monitor", "the build tool routes the console"),
    ("-display", "the build tool routes the console"),
    ("-no-reboot", "only tests stop QEMU on a reboot"),
];

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

/// One task init starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub kind: Kind,
    /// Program name in the boot archive.
    pub program: String,
    /// Device-tree `compatible` strings (drivers only; never empty for them).
    /// Virtio devices match as `virtio,deviceN` (N, the device ID, in hex).
    pub matches: Vec<String>,
    pub priority: u8,
    /// Memory limit in bytes (the task's pool), a multiple of 4 KiB.
    pub memory: u64,
    /// May use the supervisor's control calls (kill/restart).
    pub control: bool,
    /// Passed to the program; `None` when absent or empty.
    pub args: Option<String>,
    /// `[[driver]] #N` or `[[server]] #N` and its line, for messages.
    pub origin: String,
}

/// How `cargo xtask run --profile NAME` boots the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qemu {
    pub machine: String,
    pub cpu: Option<String>,
    pub smp: Option<u32>,
    /// QEMU's `-m` value as written, and in bytes.
    pub memory: Option<(String, u64)>,
    /// A device tree fetched by the build tool (one of [`KNOWN_DTBS`]).
    pub dtb: Option<String>,
    /// Size of the raw disk image [`DISK_PLACEHOLDER`] stands for.
    pub disk: u64,
    pub args: Vec<String>,
}

impl Qemu {
    /// Does any argument name the disk image?
    pub fn uses_disk(&self) -> bool {
        self.args.iter().any(|a| a.contains(DISK_PLACEHOLDER))
    }

    /// QEMU options (without the program, console, image or bootargs):
    /// `-M`, `-cpu`, `-smp`, `-m`, then `args` with the disk image's path
    /// for `@DISK@`, then `-dtb`.
    pub fn args(&self, disk: Option<&Path>, dtb: Option<&Path>) -> Result<Vec<String>> {
        let mut a = vec!["-M".to_string(), self.machine.clone()];
        if let Some(cpu) = &self.cpu {
            a.extend(["-cpu".into(), cpu.clone()]);
        }
        if let Some(n) = self.smp {
            a.extend(["-smp".into(), n.to_string()]);
        }
        if let Some((m, _)) = &self.memory {
            a.extend(["-m".into(), m.clone()]);
        }
        for arg in &self.args {
            if arg.contains(DISK_PLACEHOLDER) {
                let Some(d) = disk else {
                    bail!("the QEMU arguments use {DISK_PLACEHOLDER} but no disk image was given");
                };
                a.push(arg.replace(DISK_PLACEHOLDER, &d.display().to_string()));
            } else {
                a.push(arg.clone());
            }
        }
        if self.dtb.is_some() {
            let Some(d) = dtb else {
                bail!("the profile boots with a device tree but none was given");
            };
            a.extend(["-dtb".into(), d.display().to_string()]);
        }
        Ok(a)
    }

    /// RAM base of the machine (where QEMU loads `-kernel` relative to).
    pub fn ram_base(&self) -> u64 {
        if self.machine.starts_with("raspi") {
            0
        } else {
            0x4000_0000
        }
    }
}

/// A parsed and checked profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// The file it came from, relative to the workspace (for messages and
    /// the generated file's first line).
    pub source: String,
    pub display: Option<(u32, u32)>,
    pub qemu: Qemu,
    /// Drivers then servers, each in file order.
    pub tasks: Vec<Task>,
}

/// `profiles/`
pub fn dir() -> PathBuf {
    util::root().join("profiles")
}

/// The names of every profile (`profiles/*.toml`), sorted.
pub fn names() -> Result<Vec<String>> {
    names_in(&dir())
}

fn names_in(d: &Path) -> Result<Vec<String>> {
    let rd = std::fs::read_dir(d).map_err(|e| format!("{}: {e}", d.display()))?;
    let mut v: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
        .collect();
    v.sort();
    Ok(v)
}

/// Reads and checks `profiles/NAME.toml`.
pub fn load(name: &str) -> Result<Profile> {
    check_name(name).map_err(|e| format!("profile `{name}`: {e}"))?;
    let path = dir().join(format!("{name}.toml"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let known = names().unwrap_or_default().join(", ");
            bail!(
                "no profile `{name}`: {} does not exist (profiles: {known})",
                util::relative(&path)
            );
        }
        Err(e) => bail!("{}: {e}", path.display()),
    };
    parse(&util::relative(&path), name, &text)
}

/// A profile name is a file stem and part of image names: lower-case
/// letters, digits and `-`; `test` and `bench` (and `test-*`, `bench-*`)
/// are taken by the test images.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || !name.starts_with(|c: char| c.is_ascii_lowercase())
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        bail!("a profile name is lower-case letters, digits and `-`, starting with a letter");
    }
    for reserved in ["test", "bench"] {
        if name == reserved || name.starts_with(&format!("{reserved}-")) {
            bail!("`{reserved}` and `{reserved}-*` are reserved for the test images");
        }
    }
    Ok(())
}

/// A program name: what the archive and init's task lines can carry.
fn valid_program(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= MAX_PROGRAM_NAME
        && p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A `compatible` string as a task line carries it (printable, no spaces).
fn valid_compatible(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic())
}

/// `256K`, `1M`, `2G` (binary units; `KiB`, `MiB`, `GiB` too), or a plain
/// number of bytes.
pub fn parse_size(s: &str) -> Result<u64> {
    parse_size_with(s, 1)
}

/// QEMU's `-m` syntax: a number with an optional K/M/G/T suffix; a plain
/// number means MiB.
pub fn parse_qemu_memory(s: &str) -> Result<u64> {
    parse_size_with(s, 1 << 20)
}

fn parse_size_with(s: &str, plain: u64) -> Result<u64> {
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
        u => bail!("`{s}`: unknown unit `{u}` (K, M, G)"),
    };
    n.checked_mul(mult).ok_or_else(|| format!("`{s}` is too large"))
}

/// Human-readable bytes: `256 KiB`, `1.5 MiB`, `12 B`.
pub fn human(b: u64) -> String {
    let units = [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in units {
        if b >= size {
            let v = b as f64 / size as f64;
            return if b.is_multiple_of(size) {
                format!("{} {unit}", b / size)
            } else {
                format!("{v:.1} {unit}")
            };
        }
    }
    format!("{b} B")
}

/// Line number (1-based) of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// Walks the parsed document with the file's name and text at hand, so
/// that every message says `FILE:LINE: ...`.
struct Checker<'a> {
    file: &'a str,
    text: &'a str,
}

type Table<'i> = DeTable<'i>;
type Value<'i> = Spanned<DeValue<'i>>;

impl Checker<'_> {
    fn at(&self, span: &Range<usize>, msg: impl std::fmt::Display) -> String {
        format!("{}:{}: {msg}", self.file, line_of(self.text, span.start))
    }

    /// Every key of `t` must be in `allowed`.
    fn only(&self, t: &Table, allowed: &[&str], what: &str) -> Result<()> {
        for k in t.keys() {
            if !allowed.contains(&k.get_ref().as_ref()) {
                return Err(self.at(
                    &k.span(),
                    format!(
                        "unknown key `{}` in {what} (known: {})",
                        k.get_ref(),
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn get<'t, 'i>(&self, t: &'t Table<'i>, key: &str) -> Option<&'t Value<'i>> {
        t.get(key)
    }

    fn require<'t, 'i>(&self, t: &'t Table<'i>, span: &Range<usize>, key: &str, what: &str) -> Result<&'t Value<'i>> {
        self.get(t, key)
            .ok_or_else(|| self.at(span, format!("{what} has no `{key}`")))
    }

    fn wrong_type(&self, v: &Value, key: &str, what: &str, want: &str) -> String {
        self.at(
            &v.span(),
            format!("`{key}` in {what} must be {want}, not a {}", v.get_ref().type_str()),
        )
    }

    fn string(&self, v: &Value, key: &str, what: &str) -> Result<String> {
        match v.get_ref() {
            DeValue::String(s) => {
                if s.contains(['\n', '\r']) {
                    return Err(self.at(&v.span(), format!("`{key}` in {what} must be one line")));
                }
                Ok(s.to_string())
            }
            _ => Err(self.wrong_type(v, key, what, "a string")),
        }
    }

    fn integer(&self, v: &Value, key: &str, what: &str, range: std::ops::RangeInclusive<u64>) -> Result<u64> {
        let DeValue::Integer(i) = v.get_ref() else {
            return Err(self.wrong_type(v, key, what, "an integer"));
        };
        let n = u64::from_str_radix(i.as_str(), i.radix())
            .ok()
            .filter(|n| range.contains(n));
        n.ok_or_else(|| {
            self.at(
                &v.span(),
                format!("`{key}` in {what} is {i}, outside {}..={}", range.start(), range.end()),
            )
        })
    }

    fn boolean(&self, v: &Value, key: &str, what: &str) -> Result<bool> {
        v.get_ref()
            .as_bool()
            .ok_or_else(|| self.wrong_type(v, key, what, "true or false"))
    }

    fn strings(&self, v: &Value, key: &str, what: &str) -> Result<Vec<String>> {
        let DeValue::Array(a) = v.get_ref() else {
            return Err(self.wrong_type(v, key, what, "an array of strings"));
        };
        a.iter().map(|e| self.string(e, key, what)).collect()
    }

    fn table<'t, 'i>(&self, v: &'t Value<'i>, key: &str, what: &str) -> Result<&'t Table<'i>> {
        v.get_ref()
            .as_table()
            .ok_or_else(|| self.wrong_type(v, key, what, "a table"))
    }

    /// A size: a string like "256K" or an integer number of bytes.
    fn size(&self, v: &Value, key: &str, what: &str) -> Result<u64> {
        let r = match v.get_ref() {
            DeValue::String(s) => parse_size(s),
            DeValue::Integer(_) => Ok(self.integer(v, key, what, 0..=u64::MAX)?),
            _ => return Err(self.wrong_type(v, key, what, "a size (\"256K\") or a number of bytes")),
        };
        r.map_err(|e| self.at(&v.span(), format!("`{key}` in {what}: {e}")))
    }
}

const TOP_KEYS: &[&str] = &["name", "description", "display", "qemu", "driver", "server"];
const DISPLAY_KEYS: &[&str] = &["width", "height"];
const QEMU_KEYS: &[&str] = &["machine", "cpu", "smp", "memory", "dtb", "disk", "args"];
const DRIVER_KEYS: &[&str] = &["program", "match", "priority", "memory", "args", "control"];
const SERVER_KEYS: &[&str] = &["program", "priority", "memory", "args", "control"];

/// Parses and checks a profile. `file` names it in messages (and in the
/// generated file); `name` is what it must call itself (its file stem).
pub fn parse(file: &str, name: &str, text: &str) -> Result<Profile> {
    let doc = DeTable::parse(text).map_err(|e| format!("{file}: {}", e.to_string().trim_end()))?;
    let c = Checker { file, text };
    let top = doc.get_ref();
    let whole = 0..0;
    c.only(top, TOP_KEYS, "the profile")?;

    let n = c.require(top, &whole, "name", "the profile")?;
    let got = c.string(n, "name", "the profile")?;
    if got != name {
        return Err(c.at(
            &n.span(),
            format!("`name` is \"{got}\" but the file is {name}.toml: they must agree"),
        ));
    }
    let description = c.string(
        c.require(top, &whole, "description", "the profile")?,
        "description",
        "the profile",
    )?;

    let display = match c.get(top, "display") {
        None => None,
        Some(v) => {
            let t = c.table(v, "display", "the profile")?;
            c.only(t, DISPLAY_KEYS, "[display]")?;
            let side = 1..=MAX_DISPLAY_SIDE;
            let w = c.integer(
                c.require(t, &v.span(), "width", "[display]")?,
                "width",
                "[display]",
                side.clone(),
            )?;
            let h = c.integer(
                c.require(t, &v.span(), "height", "[display]")?,
                "height",
                "[display]",
                side,
            )?;
            Some((w as u32, h as u32))
        }
    };

    let qv = c.require(top, &whole, "qemu", "the profile")?;
    let qemu = parse_qemu(&c, qv)?;

    let mut tasks = Vec::new();
    for kind in [Kind::Driver, Kind::Server] {
        let key = kind.word();
        let Some(v) = c.get(top, key) else { continue };
        let DeValue::Array(items) = v.get_ref() else {
            return Err(c.at(
                &v.span(),
                format!("`{key}` must be an array of tables: write each as [[{key}]]"),
            ));
        };
        for (i, item) in items.iter().enumerate() {
            let origin = format!("[[{key}]] #{} (line {})", i + 1, line_of(text, item.span().start));
            tasks.push(parse_task(&c, kind, item, &origin)?);
        }
    }
    let mut seen = BTreeSet::new();
    for t in &tasks {
        if t.program == "init" {
            bail!(
                "{file}: {}: `init` is started by the kernel, not by a profile",
                t.origin
            );
        }
        if !seen.insert(t.program.as_str()) {
            bail!("{file}: {}: program `{}` is listed twice", t.origin, t.program);
        }
    }
    Ok(Profile {
        name: name.to_string(),
        description,
        source: file.to_string(),
        display,
        qemu,
        tasks,
    })
}

fn parse_qemu(c: &Checker, qv: &Value) -> Result<Qemu> {
    let w = "[qemu]";
    let q = c.table(qv, "qemu", "the profile")?;
    c.only(q, QEMU_KEYS, w)?;
    let machine = c.string(c.require(q, &qv.span(), "machine", w)?, "machine", w)?;
    if machine.is_empty() {
        return Err(c.at(&qv.span(), "`machine` in [qemu] is empty"));
    }
    let opt_string = |key: &str| -> Result<Option<String>> { q.get(key).map(|v| c.string(v, key, w)).transpose() };
    let cpu = opt_string("cpu")?;
    let smp = q
        .get("smp")
        .map(|v| c.integer(v, "smp", w, 1..=MAX_SMP))
        .transpose()?
        .map(|n| n as u32);
    let memory = match q.get("memory") {
        None => None,
        Some(v) => {
            let s = c.string(v, "memory", w)?;
            let b = parse_qemu_memory(&s).map_err(|e| c.at(&v.span(), format!("`memory` in [qemu]: {e}")))?;
            Some((s, b))
        }
    };
    let dtb = match q.get("dtb") {
        None => None,
        Some(v) => {
            let s = c.string(v, "dtb", w)?;
            if !KNOWN_DTBS.contains(&s.as_str()) {
                return Err(c.at(
                    &v.span(),
                    format!(
                        "`dtb` in [qemu] is \"{s}\"; the build tool fetches only {}",
                        KNOWN_DTBS.join(", ")
                    ),
                ));
            }
            Some(s)
        }
    };
    let args = match q.get("args") {
        None => Vec::new(),
        Some(v) => {
            let a = c.strings(v, "args", w)?;
            for x in &a {
                let opt = x.strip_prefix('-').map(|o| format!("-{}", o.trim_start_matches('-')));
                if let Some((o, why)) = RESERVED_QEMU_OPTIONS.iter().find(|(o, _)| Some(o.to_string()) == opt) {
                    return Err(c.at(&v.span(), format!("`args` in [qemu] must not contain {o}: {why}")));
                }
                let rest = x.replace(DISK_PLACEHOLDER, "");
                if let Some(i) = rest.find('@') {
                    if rest[i + 1..].contains('@') {
                        return Err(c.at(
                            &v.span(),
                            format!("`args` in [qemu]: unknown placeholder in \"{x}\" (only {DISK_PLACEHOLDER})"),
                        ));
                    }
                }
            }
            a
        }
    };
    let mut qemu = Qemu {
        machine,
        cpu,
        smp,
        memory,
        dtb,
        disk: DEFAULT_DISK_SIZE,
        args,
    };
    if let Some(v) = q.get("disk") {
        if !qemu.uses_disk() {
            return Err(c.at(
                &v.span(),
                format!("`disk` in [qemu] is set but no argument uses {DISK_PLACEHOLDER}"),
            ));
        }
        qemu.disk = c.size(v, "disk", w)?;
        if qemu.disk == 0 || !qemu.disk.is_multiple_of(512) {
            return Err(c.at(&v.span(), "`disk` in [qemu] must be a positive multiple of 512 bytes"));
        }
    }
    Ok(qemu)
}

fn parse_task(c: &Checker, kind: Kind, item: &Value, origin: &str) -> Result<Task> {
    let t = c.table(item, kind.word(), "the profile")?;
    let w = origin;
    c.only(
        t,
        match kind {
            Kind::Driver => DRIVER_KEYS,
            Kind::Server => SERVER_KEYS,
        },
        w,
    )?;
    let span = item.span();
    let pv = c.require(t, &span, "program", w)?;
    let program = c.string(pv, "program", w)?;
    if !valid_program(&program) {
        return Err(c.at(
            &pv.span(),
            format!("`program` \"{program}\" is not a program name (lower-case letters, digits, `-`, `_`; at most {MAX_PROGRAM_NAME})"),
        ));
    }
    let matches = match kind {
        Kind::Server => Vec::new(),
        Kind::Driver => {
            let mv = c.require(t, &span, "match", w)?;
            let m = c.strings(mv, "match", w)?;
            if m.is_empty() {
                return Err(c.at(
                    &mv.span(),
                    format!("`match` in {w} is empty: a driver must match a device"),
                ));
            }
            if let Some(bad) = m.iter().find(|s| !valid_compatible(s)) {
                return Err(c.at(
                    &mv.span(),
                    format!("`match` in {w}: \"{bad}\" is not a compatible string (printable, no spaces)"),
                ));
            }
            m
        }
    };
    let priority = c.integer(c.require(t, &span, "priority", w)?, "priority", w, PRIORITIES)? as u8;
    let mv = c.require(t, &span, "memory", w)?;
    let memory = c.size(mv, "memory", w)?;
    if memory == 0 || !memory.is_multiple_of(4096) {
        return Err(c.at(
            &mv.span(),
            format!("`memory` in {w} is {memory} bytes: it must be a positive multiple of 4 KiB"),
        ));
    }
    let control = t
        .get("control")
        .map(|v| c.boolean(v, "control", w))
        .transpose()?
        .unwrap_or(false);
    let args = t
        .get("args")
        .map(|v| c.string(v, "args", w))
        .transpose()?
        .filter(|a| !a.trim().is_empty());
    Ok(Task {
        kind,
        program,
        matches,
        priority,
        memory,
        control,
        args,
        origin: origin.to_string(),
    })
}

impl Profile {
    /// The text file `profile` of the boot archive (init parses it):
    ///
    /// ```text
    /// # generated by cargo xtask from profiles/phone.toml
    /// profile phone
    /// display 540 1170
    /// driver uart-pl011 priority=26 memory=262144 match=arm,pl011 match=arm,sbsa-uart
    /// server shell priority=12 memory=262144 control=yes args=--banner hello
    /// ```
    ///
    /// Task lines: `priority=N`, `memory=BYTES`, one `match=COMPATIBLE` per
    /// string (drivers; compatible strings contain commas), `control=yes`
    /// (if set), then `args=...` last, taking the rest of the line (left out
    /// when empty). init's parser is user/init/src/profile.rs.
    pub fn render(&self) -> String {
        let mut s = format!(
            "# generated by cargo xtask from {}\nprofile {}\n",
            self.source, self.name
        );
        if let Some((w, h)) = self.display {
            s.push_str(&format!("display {w} {h}\n"));
        }
        for t in &self.tasks {
            s.push_str(&format!(
                "{} {} priority={} memory={}",
                t.kind.word(),
                t.program,
                t.priority,
                t.memory
            ));
            for m in &t.matches {
                s.push_str(&format!(" match={m}"));
            }
            if t.control {
                s.push_str(" control=yes");
            }
            if let Some(a) = &t.args {
                s.push_str(&format!(" args={a}"));
            }
            s.push('\n');
        }
        s
    }

    /// Programs the profile names that are not in `available`, each with
    /// where it is named.
    pub fn missing_programs<'a>(&'a self, available: &BTreeSet<String>) -> Vec<&'a Task> {
        self.tasks.iter().filter(|t| !available.contains(&t.program)).collect()
    }

    /// The programs of its tasks.
    pub fn programs(&self) -> impl Iterator<Item = &str> {
        self.tasks.iter().map(|t| t.program.as_str())
    }
}

/// The error for programs a profile names that no package builds.
pub fn missing_message(p: &Profile, missing: &[&Task], available: &BTreeSet<String>) -> String {
    let list: Vec<String> = missing
        .iter()
        .map(|t| format!("`{}` ({})", t.program, t.origin))
        .collect();
    let have: Vec<&str> = available
        .iter()
        .map(String::as_str)
        .filter(|n| !n.starts_with("test-") && *n != "bench" && *n != "init")
        .collect();
    format!(
        "{}: no program {} in the build (programs are the binaries of the workspace members under user/, drivers/ and servers/; have: {})",
        p.source,
        list.join(", "),
        if have.is_empty() { "none".to_string() } else { have.join(", ") }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE: &str = r#"
name = "phone"
description = "Handset"
[display]
width = 540
height = 1170
[qemu]
machine = "virt,gic-version=3"
cpu = "cortex-a72"
smp = 8
memory = "2G"
args = ["-device", "virtio-blk-device,drive=d", "-drive", "if=none,id=d,format=raw,file=@DISK@"]
[[driver]]
program = "uart-pl011"
match = ["arm,pl011"]
priority = 26
memory = "256K"
args = ""
[[driver]]
program = "virtio-blk"
match = ["virtio,device2", "virtio,device1042"]
priority = 24
memory = 1048576
[[server]]
program = "shell"
priority = 12
memory = "256K"
control = true
args = "--banner hello world"
"#;

    fn phone() -> Profile {
        parse("profiles/phone.toml", "phone", PHONE).unwrap()
    }

    fn err(text: &str) -> String {
        parse("profiles/phone.toml", "phone", text).unwrap_err()
    }

    #[test]
    fn renders_the_profile_file() {
        assert_eq!(
            phone().render(),
            "# generated by cargo xtask from profiles/phone.toml\n\
             profile phone\n\
             display 540 1170\n\
             driver uart-pl011 priority=26 memory=262144 match=arm,pl011\n\
             driver virtio-blk priority=24 memory=1048576 match=virtio,device2 match=virtio,device1042\n\
             server shell priority=12 memory=262144 control=yes args=--banner hello world\n"
        );
    }

    #[test]
    fn parses_every_field() {
        let p = phone();
        assert_eq!(p.display, Some((540, 1170)));
        assert_eq!(p.qemu.smp, Some(8));
        assert_eq!(p.qemu.memory, Some(("2G".to_string(), 2 << 30)));
        assert_eq!(p.qemu.disk, DEFAULT_DISK_SIZE);
        assert!(p.qemu.uses_disk());
        assert_eq!(p.tasks.len(), 3);
        assert_eq!(p.tasks[0].args, None, "empty args are left out");
        assert_eq!(p.tasks[1].matches, ["virtio,device2", "virtio,device1042"]);
        assert!(p.tasks[2].control && p.tasks[2].kind == Kind::Server);
        assert!(
            p.tasks[1].origin.starts_with("[[driver]] #2 (line "),
            "{}",
            p.tasks[1].origin
        );
    }

    #[test]
    fn qemu_arguments() {
        let p = phone();
        let a = p.qemu.args(Some(Path::new("/t/disk.img")), None).unwrap();
        assert_eq!(
            a.join(" "),
            "-M virt,gic-version=3 -cpu cortex-a72 -smp 8 -m 2G -device virtio-blk-device,drive=d -drive if=none,id=d,format=raw,file=/t/disk.img"
        );
        assert!(p.qemu.args(None, None).unwrap_err().contains("@DISK@"));
        let rpi =
            "name = \"phone\"\ndescription = \"x\"\n[qemu]\nmachine = \"raspi4b\"\ndtb = \"bcm2711-rpi-4-b.dtb\"\n";
        let q = parse("p", "phone", rpi).unwrap().qemu;
        assert_eq!(q.ram_base(), 0);
        assert_eq!(
            q.args(None, Some(Path::new("/c/x.dtb"))).unwrap().join(" "),
            "-M raspi4b -dtb /c/x.dtb"
        );
        assert!(q.args(None, None).is_err());
    }

    #[test]
    fn minimal_profile_without_display_or_tasks() {
        let p = parse(
            "f",
            "tiny",
            "name = \"tiny\"\ndescription = \"\"\n[qemu]\nmachine = \"virt\"\n",
        )
        .unwrap();
        assert_eq!(p.render(), "# generated by cargo xtask from f\nprofile tiny\n");
        assert_eq!(p.qemu.args(None, None).unwrap(), ["-M", "virt"]);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = err(&PHONE.replace("priority = 24", "prioity = 150"));
        assert!(
            e.starts_with("profiles/phone.toml:22: unknown key `prioity` in [[driver]] #2"),
            "{e}"
        );
        let e = err(&PHONE.replace("[display]", "colour = 1\n[display]"));
        assert!(
            e.starts_with("profiles/phone.toml:4: unknown key `colour` in the profile"),
            "{e}"
        );
        let e = err(&PHONE.replace("height = 1170", "height = 1170\ndepth = 3"));
        assert!(e.contains(":7: unknown key `depth` in [display]"), "{e}");
        let e = err(&PHONE.replace("smp = 8", "smp = 8\nsmpp = 2"));
        assert!(e.contains(":11: unknown key `smpp` in [qemu]"), "{e}");
        let e = err(&PHONE.replace("control = true", "control = true\nmatch = [\"x\"]"));
        assert!(e.contains("unknown key `match` in [[server]] #1"), "{e}");
    }

    #[test]
    fn priority_range() {
        for bad in ["0", "31", "-1", "200"] {
            let e = err(&PHONE.replace("priority = 26", &format!("priority = {bad}")));
            assert!(
                e.contains(":16: `priority`") && e.contains("outside 1..=30"),
                "{bad}: {e}"
            );
        }
        assert!(err(&PHONE.replace("priority = 26", "priority = \"high\"")).contains("must be an integer"));
        let p = parse("f", "phone", &PHONE.replace("priority = 26", "priority = 30")).unwrap();
        assert_eq!(p.tasks[0].priority, 30);
    }

    #[test]
    fn memory_values() {
        let e = err(&PHONE.replace("memory = \"256K\"\nargs = \"\"", "memory = \"lots\"\nargs = \"\""));
        assert!(
            e.contains(":17: `memory` in [[driver]] #1") && e.contains("not a size"),
            "{e}"
        );
        let e = err(&PHONE.replace("memory = 1048576", "memory = 1000"));
        assert!(e.contains("multiple of 4 KiB"), "{e}");
        let e = err(&PHONE.replace("memory = 1048576", "memory = \"12Q\""));
        assert!(e.contains("unknown unit `Q`"), "{e}");
        let e = err(&PHONE.replace("memory = \"2G\"", "memory = \"2X\""));
        assert!(e.contains(":11: `memory` in [qemu]"), "{e}");
        assert_eq!(parse_size("256K").unwrap(), 262144);
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("4096B").unwrap(), 4096);
        assert!(parse_size("").is_err() && parse_size("K").is_err() && parse_size("99999999999G").is_err());
        assert_eq!(parse_qemu_memory("4M").unwrap(), 4 << 20);
        assert_eq!(parse_qemu_memory("512").unwrap(), 512 << 20);
        assert_eq!(parse_qemu_memory("2G").unwrap(), 2 << 30);
    }

    #[test]
    fn other_errors() {
        assert!(err(&PHONE.replace("name = \"phone\"", "name = \"tv\"")).contains("the file is phone.toml"));
        assert!(err(&PHONE.replace("name = \"phone\"\n", "")).contains("the profile has no `name`"));
        assert!(err(&PHONE.replace("machine = \"virt,gic-version=3\"\n", "")).contains("[qemu] has no `machine`"));
        let e = err(&PHONE.replace("program = \"virtio-blk\"\n", ""));
        assert!(e.contains("[[driver]] #2") && e.contains("has no `program`"), "{e}");
        let e = err(&PHONE.replace("match = [\"arm,pl011\"]", "match = []"));
        assert!(e.contains("a driver must match a device"), "{e}");
        let e = err(&PHONE.replace("match = [\"arm,pl011\"]", "match = \"arm,pl011\""));
        assert!(e.contains("must be an array of strings, not a string"), "{e}");
        let e = err(&PHONE.replace("program = \"shell\"", "program = \"uart-pl011\""));
        assert!(e.contains("program `uart-pl011` is listed twice"), "{e}");
        assert!(err(&PHONE.replace("program = \"shell\"", "program = \"init\"")).contains("started by the kernel"));
        assert!(err(&PHONE.replace("program = \"shell\"", "program = \"Shell!\"")).contains("not a program name"));
        let long = format!("program = \"{}\"", "x".repeat(32));
        assert!(err(&PHONE.replace("program = \"shell\"", &long)).contains("at most 31"));
        assert!(err(&PHONE.replace("width = 540", "width = 8193")).contains("outside 1..=8192"));
        assert!(err(&PHONE.replace("smp = 8", "smp = 9")).contains("outside 1..=8"));
        let e = err(&PHONE.replace("args = [\"-device\"", "args = [\"-m\", \"1G\", \"-device\""));
        assert!(e.contains("must not contain -m: use `memory`"), "{e}");
        assert!(err(&PHONE.replace(
            "\"-device\", \"virtio-blk",
            "\"--machine\", \"virt\", \"-device\", \"virtio-blk"
        ))
        .contains("-machine"));
        assert!(err(&PHONE.replace("file=@DISK@", "file=@DSK@")).contains("unknown placeholder"));
        assert!(err(&PHONE.replace("memory = \"2G\"", "memory = \"2G\"\ndtb = \"x.dtb\"")).contains("fetches only"));
        assert!(err(&PHONE.replace("memory = \"2G\"", "memory = \"2G\"\ndisk = \"1000\"")).contains("multiple of 512"));
        let p = parse(
            "f",
            "phone",
            &PHONE.replace("memory = \"2G\"", "memory = \"2G\"\ndisk = \"8M\""),
        )
        .unwrap();
        assert_eq!(p.qemu.disk, 8 << 20);
        assert!(err(&PHONE.replace("args = \"--banner hello world\"", "args = \"a\\nb\"")).contains("one line"));
        assert!(err(&PHONE.replace("[[server]]", "[server]")).contains("write each as [[server]]"));
        let e = err("name = \"phone\"\nname = \"x\"\n");
        assert!(e.starts_with("profiles/phone.toml: TOML parse error at line 2"), "{e}");
    }

    #[test]
    fn profile_names() {
        for ok in ["phone", "tv", "rpi4", "my-watch2"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "Phone", "4k", "a_b", "test", "bench", "test-x", "bench-1", "a/b", "-x",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn missing_programs() {
        let p = phone();
        let have: BTreeSet<String> = ["init", "shell", "test-ipc", "uart-pl011"].map(String::from).into();
        let m = p.missing_programs(&have);
        assert_eq!(m.iter().map(|t| t.program.as_str()).collect::<Vec<_>>(), ["virtio-blk"]);
        let msg = missing_message(&p, &m, &have);
        assert!(
            msg.starts_with("profiles/phone.toml: no program `virtio-blk` ([[driver]] #2 (line 19))"),
            "{msg}"
        );
        assert!(msg.ends_with("have: shell, uart-pl011)"), "{msg}");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(262144), "256 KiB");
        assert_eq!(human(1536 * 1024), "1.5 MiB");
        assert_eq!(human(12), "12 B");
        assert_eq!(human(4 << 20), "4 MiB");
    }

    /// Every profile in the tree parses, is named after its file, and has a
    /// boot case `profile-NAME` in the harness (and every such case a profile).
    #[test]
    fn the_profiles_in_the_tree() {
        use harness::cases::Boot;
        let names = names().unwrap();
        assert!(names.contains(&DEFAULT.to_string()), "{names:?}");
        for n in &names {
            let p = load(n).unwrap_or_else(|e| panic!("{e}"));
            assert!(!p.description.is_empty(), "{n}: describe it");
            let case = format!("profile-{n}");
            assert!(
                harness::BOOT_CASES
                    .iter()
                    .any(|c| c.name == case && matches!(c.boot, Boot::Profile(x) if x == p.name)),
                "no boot case {case} in tests/src/cases.rs"
            );
        }
        for c in harness::BOOT_CASES {
            if let Boot::Profile(p) = c.boot {
                assert!(names.iter().any(|n| n == p), "{}: no profiles/{p}.toml", c.name);
            }
        }
    }
}
