//! Device profiles: `profiles/NAME.toml` says what a device is — its
//! display, how QEMU boots it, which drivers and servers init starts, and
//! how their services are routed. The schema is the `profile` crate
//! (`formats/profile`), shared with init: the build tool reads the TOML file
//! into it (serde), checks it there, packs the programs it names into the
//! boot archive with the profile in its binary form (`profile`, postcard),
//! and boots it with `cargo xtask run --profile NAME`.
//!
//! The schema is documented in profiles/README.md; every error names the
//! file, the line and the key.

use crate::bail;
use crate::util::{self, Result};
#[cfg(test)]
use schema::parse_size;
pub use schema::{parse_qemu_memory, Card, Glyphs, Kind, DISK_PLACEHOLDER};
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};

/// The profile of `cargo xtask build` and `run` without `--profile`.
pub const DEFAULT: &str = "phone";

/// The name of the generated file in the boot archive.
pub const FILE_NAME: &str = "profile";

/// Size of the disk image when `[qemu] disk` is not given.
pub const DEFAULT_DISK_SIZE: u64 = 1 << 20;

/// Device trees a profile may name in `[qemu] dtb`: the ones the build tool
/// fetches (and checks by hash).
pub const KNOWN_DTBS: &[&str] = &[crate::fetch::DTB_NAME];

/// One task init starts: its entry in the schema, and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub kind: Kind,
    pub spec: schema::Task,
    /// `[[driver]] #N` or `[[server]] #N` and its line, for messages.
    pub origin: String,
}

impl std::ops::Deref for Task {
    type Target = schema::Task;
    fn deref(&self) -> &schema::Task {
        &self.spec
    }
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
    /// `card = "rpi4"`: [`DISK_PLACEHOLDER`] stands for the board's boot
    /// card (`cargo xtask image --board rpi4`), not a raw disk.
    pub card: Option<Card>,
    pub args: Vec<String>,
}

impl Qemu {
    /// Does any argument name the disk image?
    pub fn uses_disk(&self) -> bool {
        self.args.iter().any(|a| a.contains(DISK_PLACEHOLDER))
    }

    /// QEMU options (without the program, console, image or bootargs):
    /// `-nodefaults`, `-M`, `-cpu`, `-smp`, `-m`, then `args` with the disk image's path
    /// for `@DISK@`, then `-dtb`.
    pub fn args(&self, disk: Option<&Path>, dtb: Option<&Path>) -> Result<Vec<String>> {
        let mut a = harness::qemu::Machine {
            machine: &self.machine,
            cpu: self.cpu.as_deref(),
            smp: self.smp,
            mem: self.memory.as_ref().map(|(m, _)| m.as_str()),
        }
        .args();
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
    /// The whole profile as the schema has it (what init gets).
    pub schema: schema::Profile,
    /// The device's name (`cargo xtask run --name`); `None`: the
    /// profile's name.
    pub device: Option<String>,
}

/// Placeholders in a task's `args`, filled in by [`Profile::encode`]: the
/// device's name and the profile's.
pub const NAME_PLACEHOLDER: &str = "@NAME@";
pub const PROFILE_PLACEHOLDER: &str = "@PROFILE@";

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
    let mut p = parse(&util::relative(&path), name, &text)?;
    p.device = DEVICE_NAME.get().cloned();
    Ok(p)
}

/// The device name `cargo xtask run --name` gives (see [`set_device_name`]).
static DEVICE_NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Names the device for every profile loaded from now on (its tasks'
/// `@NAME@`); set once, by `cargo xtask run --name`, before building.
pub fn set_device_name(name: &str) -> Result<()> {
    if !valid_device_name(name) {
        bail!("a device name is 1 to 31 letters, digits, `-` or `_`: `{name}`");
    }
    let _ = DEVICE_NAME.set(name.to_string());
    Ok(())
}

/// Device names go into task arguments and the bus's announcements: short,
/// no blanks.
pub fn valid_device_name(name: &str) -> bool {
    (1..=31).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A profile name is a file stem and part of image names: lower-case
/// letters, digits and `-`; `test` and `bench` (and `test-*`, `bench-*`)
/// are taken by the test images.
pub fn check_name(name: &str) -> Result<()> {
    if !schema::valid_profile_name(name) {
        bail!("a profile name is lower-case letters, digits and `-`, starting with a letter");
    }
    for reserved in ["test", "bench"] {
        if name == reserved || name.starts_with(&format!("{reserved}-")) {
            bail!("`{reserved}` and `{reserved}-*` are reserved for the test images");
        }
    }
    Ok(())
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

/// The TOML document with its spans, to say where a problem is.
struct Spans<'a> {
    file: &'a str,
    text: &'a str,
    doc: DeTable<'a>,
}

type Value<'i> = toml::Spanned<DeValue<'i>>;

impl<'a> Spans<'a> {
    fn new(file: &'a str, text: &'a str) -> Result<Spans<'a>> {
        let doc = DeTable::parse(text).map_err(|e| format!("{file}: {}", e.to_string().trim_end()))?;
        Ok(Spans {
            file,
            text,
            doc: doc.into_inner(),
        })
    }

    fn line(&self, at: usize) -> usize {
        line_of(self.text, at)
    }

    /// The `[[driver]]`/`[[server]]` items of the document.
    fn items(&self, kind: Kind) -> &[Value<'a>] {
        match self.doc.get(kind.word()).map(|v| v.get_ref()) {
            Some(DeValue::Array(a)) => a,
            _ => &[],
        }
    }

    /// `[[driver]] #2 (line 19)`
    fn origin(&self, kind: Kind, index: usize) -> String {
        let line = self.items(kind).get(index).map_or(0, |v| self.line(v.span().start));
        format!("[[{}]] #{} (line {line})", kind.word(), index + 1)
    }

    /// The span of a place: its key's value, else its table.
    fn span_of(&self, place: &schema::Place) -> Range<usize> {
        use schema::Place;
        let in_table = |v: Option<&Value>, key: &str| -> Option<Range<usize>> {
            let v = v?;
            let t = v.get_ref().as_table();
            Some(t.and_then(|t| t.get(key)).map_or(v.span(), |k| k.span()))
        };
        let span = match *place {
            Place::Top(k) => self.doc.get(k).map(|v| v.span()),
            Place::Display(k) => in_table(self.doc.get("display"), k),
            Place::Qemu(k) => in_table(self.doc.get("qemu"), k),
            Place::Task { kind, index, key } => in_table(self.items(kind).get(index), key),
        };
        span.unwrap_or(0..0)
    }

    /// `FILE:LINE: `KEY` in TABLE: message` for a rule the schema checks.
    fn problem(&self, p: &schema::Problem) -> String {
        let line = p.place.map_or(1, |pl| self.line(self.span_of(&pl).start));
        format!("{}:{line}: {p}", self.file)
    }

    /// Which table and key the byte at `at` is in.
    fn context(&self, at: usize) -> (String, Option<String>) {
        let inside = |r: Range<usize>| r.contains(&at);
        let key_at = |t: &DeTable| {
            t.iter()
                .find(|(k, v)| inside(k.span()) || inside(v.span()))
                .map(|(k, _)| k.get_ref().to_string())
        };
        for (k, v) in self.doc.iter() {
            let name = k.get_ref().as_ref();
            match (name, v.get_ref()) {
                ("display" | "qemu", DeValue::Table(t)) => {
                    if let Some(key) = key_at(t) {
                        return (format!("[{name}]"), Some(key));
                    }
                    if inside(v.span()) || inside(k.span()) {
                        return (format!("[{name}]"), None);
                    }
                }
                ("driver" | "server", DeValue::Array(items)) => {
                    let kind = if name == "driver" { Kind::Driver } else { Kind::Server };
                    for (i, item) in items.iter().enumerate() {
                        if let Some(key) = item.get_ref().as_table().and_then(key_at) {
                            return (self.origin(kind, i), Some(key));
                        }
                    }
                    for (i, item) in items.iter().enumerate() {
                        if inside(item.span()) {
                            return (self.origin(kind, i), None);
                        }
                    }
                }
                _ if inside(k.span()) || inside(v.span()) => return ("the profile".into(), Some(name.to_string())),
                _ => {}
            }
        }
        ("the profile".into(), None)
    }

    /// A type error or an unknown key, as serde found it.
    fn serde_error(&self, e: &toml::de::Error) -> String {
        let Some(span) = e.span() else {
            return format!("{}: {}", self.file, e.message());
        };
        let (table, key) = self.context(span.start);
        let line = self.line(span.start);
        match key {
            Some(k) => format!("{}:{line}: `{k}` in {table}: {}", self.file, e.message()),
            None => format!("{}:{line}: in {table}: {}", self.file, e.message()),
        }
    }
}

/// Parses and checks a profile. `file` names it in messages; `name` is
/// what it must call itself (its file stem).
pub fn parse(file: &str, name: &str, text: &str) -> Result<Profile> {
    let spans = Spans::new(file, text)?;
    if let Some((k, v)) = spans
        .doc
        .iter()
        .find(|(k, v)| matches!(k.get_ref().as_ref(), "driver" | "server") && !matches!(v.get_ref(), DeValue::Array(_)))
    {
        let key = k.get_ref();
        return Err(format!(
            "{file}:{}: `{key}` must be an array of tables: write each as [[{key}]]",
            spans.line(v.span().start)
        ));
    }
    let p: schema::Profile = toml::from_str(text).map_err(|e| spans.serde_error(&e))?;
    p.check().map_err(|e| spans.problem(&e))?;
    let at = |place| {
        spans.problem(&schema::Problem {
            place: Some(place),
            message: String::new(),
        })
    };
    if p.name != name {
        let mut e = at(schema::Place::Top("name"));
        e.push_str(&format!(
            "is \"{}\" but the file is {name}.toml: they must agree",
            p.name
        ));
        return Err(e);
    }
    let Some(q) = &p.qemu else {
        bail!("{file}: the profile has no [qemu] table (how `cargo xtask run` boots it)");
    };
    if let Some(d) = q.dtb.as_ref().filter(|d| !KNOWN_DTBS.contains(&d.as_str())) {
        let mut e = at(schema::Place::Qemu("dtb"));
        e.push_str(&format!(
            "is \"{d}\"; the build tool fetches only {}",
            KNOWN_DTBS.join(", ")
        ));
        return Err(e);
    }
    let qemu = Qemu {
        machine: q.machine.clone(),
        cpu: q.cpu.clone(),
        smp: q.smp,
        memory: q
            .memory
            .as_ref()
            .map(|m| Ok::<_, String>((m.clone(), parse_qemu_memory(m)?)))
            .transpose()?,
        dtb: q.dtb.clone(),
        disk: q.disk.unwrap_or(DEFAULT_DISK_SIZE),
        card: q.card,
        args: q.args.clone(),
    };
    let tasks = p
        .tasks()
        .map(|(kind, i, t)| Task {
            kind,
            spec: t.clone(),
            origin: spans.origin(kind, i),
        })
        .collect();
    Ok(Profile {
        name: p.name.clone(),
        description: p.description.clone(),
        source: file.to_string(),
        display: p.display.map(|d| (d.width, d.height)),
        qemu,
        tasks,
        schema: p,
        device: None,
    })
}

impl Profile {
    /// The boot archive's `profile` file: the schema's binary form
    /// (`schema::encode`, postcard) without `[qemu]`, which only the build
    /// tool needs. init reads it with `schema::decode`.
    /// Task arguments get the device's and the profile's names for
    /// [`NAME_PLACEHOLDER`] and [`PROFILE_PLACEHOLDER`].
    pub fn encode(&self) -> Vec<u8> {
        let name = self.device.as_deref().unwrap_or(&self.name);
        let fill = |tasks: &[schema::Task]| -> Vec<schema::Task> {
            tasks
                .iter()
                .map(|t| schema::Task {
                    args: t
                        .args
                        .replace(NAME_PLACEHOLDER, name)
                        .replace(PROFILE_PLACEHOLDER, &self.name),
                    ..t.clone()
                })
                .collect()
        };
        schema::encode(&schema::Profile {
            qemu: None,
            drivers: fill(&self.schema.drivers),
            servers: fill(&self.schema.servers),
            ..self.schema.clone()
        })
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
        .filter(|n| !crate::user::is_test_program(n) && *n != "init")
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
    fn task_args_get_the_device_and_profile_names() {
        let mut p = phone();
        p.schema.servers[0].args = "name=@NAME@ profile=@PROFILE@".into();
        let back = schema::decode(&p.encode()).unwrap();
        assert_eq!(back.servers[0].args, "name=phone profile=phone");
        p.device = Some("kitchen".into());
        let back = schema::decode(&p.encode()).unwrap();
        assert_eq!(back.servers[0].args, "name=kitchen profile=phone");
    }

    #[test]
    fn encodes_the_profile_file_for_init() {
        let p = phone();
        let back = schema::decode(&p.encode()).unwrap();
        assert_eq!(back.qemu, None, "init does not get [qemu]");
        assert_eq!(
            back,
            schema::Profile {
                qemu: None,
                ..p.schema.clone()
            }
        );
        assert_eq!(back.servers[0].args, "--banner hello world");
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
        assert_eq!(p.tasks[0].args, "", "empty args");
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
            "-nodefaults -M virt,gic-version=3 -cpu cortex-a72 -smp 8 -m 2G -device virtio-blk-device,drive=d -drive if=none,id=d,format=raw,file=/t/disk.img"
        );
        assert!(p.qemu.args(None, None).unwrap_err().contains("@DISK@"));
        let rpi =
            "name = \"phone\"\ndescription = \"x\"\n[qemu]\nmachine = \"raspi4b\"\ndtb = \"bcm2711-rpi-4-b.dtb\"\n";
        let q = parse("p", "phone", rpi).unwrap().qemu;
        assert_eq!(q.ram_base(), 0);
        assert_eq!(
            q.args(None, Some(Path::new("/c/x.dtb"))).unwrap().join(" "),
            "-nodefaults -M raspi4b -dtb /c/x.dtb"
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
        assert!(p.tasks.is_empty() && p.display.is_none());
        assert_eq!(p.qemu.args(None, None).unwrap(), ["-nodefaults", "-M", "virt"]);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = err(&PHONE.replace("priority = 24", "prioity = 150"));
        assert!(
            e.starts_with("profiles/phone.toml:22: `prioity` in [[driver]] #2 (line 19): unknown field `prioity`, expected one of `program`"),
            "{e}"
        );
        let e = err(&PHONE.replace("[display]", "colour = 1\n[display]"));
        assert!(
            e.starts_with("profiles/phone.toml:4: `colour` in the profile: unknown field `colour`"),
            "{e}"
        );
        let e = err(&PHONE.replace("height = 1170", "height = 1170\ndepth = 3"));
        assert!(e.contains(":7: `depth` in [display]: unknown field"), "{e}");
        let e = err(&PHONE.replace("smp = 8", "smp = 8\nsmpp = 2"));
        assert!(e.contains(":11: `smpp` in [qemu]: unknown field"), "{e}");
        let e = err(&PHONE.replace("control = true", "control = true\nmatch = [\"x\"]"));
        assert_eq!(
            e,
            "profiles/phone.toml:29: `match` in [[server]] #1: only a [[driver]] matches devices"
        );
        let e = err(&PHONE.replace("[[server]]", "[[server]]\nuses = [\"display\"]"));
        assert!(
            e.starts_with("profiles/phone.toml:25: `uses` in [[server]] #1: no task of the profile provides `display`"),
            "{e}"
        );
    }

    #[test]
    fn priority_range() {
        for bad in ["0", "31", "200"] {
            let e = err(&PHONE.replace("priority = 26", &format!("priority = {bad}")));
            assert_eq!(
                e,
                format!("profiles/phone.toml:16: `priority` in [[driver]] #1: is {bad}, outside 1..=30")
            );
        }
        for bad in ["-1", "256", "\"high\""] {
            let e = err(&PHONE.replace("priority = 26", &format!("priority = {bad}")));
            assert!(
                e.starts_with("profiles/phone.toml:16: `priority` in [[driver]] #1 (line 13): invalid"),
                "{e}"
            );
        }
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
        let e = err(&PHONE.replace("name = \"phone\"\n", ""));
        assert!(e.contains("missing field `name`"), "{e}");
        let e = err(&PHONE.replace("machine = \"virt,gic-version=3\"\n", ""));
        assert!(e.contains("in [qemu]: missing field `machine`"), "{e}");
        let e = err(&PHONE.replace("program = \"virtio-blk\"\n", ""));
        assert!(e.contains("in [[driver]] #2 (line 19): missing field `program`"), "{e}");
        let e = err(&PHONE.replace("[qemu]\n", "[qemux]\n"));
        assert!(e.contains("unknown field `qemux`"), "{e}");
        let e = err(&PHONE.replace("match = [\"arm,pl011\"]", "match = []"));
        assert!(e.contains("a driver must match a device"), "{e}");
        let e = err(&PHONE.replace("match = [\"arm,pl011\"]", "match = \"arm,pl011\""));
        assert!(
            e.contains(
                ":15: `match` in [[driver]] #1 (line 13): invalid type: string \"arm,pl011\", expected a sequence"
            ),
            "{e}"
        );
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
        // `run --profile rpi4` boots the Pi's card, as the board does.
        assert_eq!(load("rpi4").unwrap().qemu.card, Some(Card::Rpi4));
        for c in harness::BOOT_CASES {
            if let Boot::Profile(p) = c.boot {
                assert!(names.iter().any(|n| n == p), "{}: no profiles/{p}.toml", c.name);
            }
        }
    }
}
