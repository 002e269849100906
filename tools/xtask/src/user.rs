//! User space: build every program for aarch64-unknown-none and pack, for a
//! device profile, the boot archive (cpio newc) that the kernel embeds
//! (`KESTREL_ARCHIVE`, see kernel/build.rs).
//!
//! Programs are the executables cargo reports for the workspace members
//! under `user/`, `drivers/` and `servers/` that have a binary target
//! (library crates such as `userlib` or `drivers/pl011` are only built as
//! dependencies). They are stripped for the archive; the unstripped ELFs
//! stay in target/user for symbolizing fault addresses.
//!
//! A profile's archive holds `init`, the generated `profile` file and the
//! programs the profile names; a test archive (the ktest image, `cargo
//! xtask bench`) adds every `test-*` program, `bench` and `bench-*`.

use crate::profile::{self, Profile};
use crate::util::{self, Result};
use crate::{bail, note};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, OnceLock};

pub const USER_TARGET: &str = "aarch64-unknown-none";

/// Workspace folders whose members with a binary target are programs.
pub const PROGRAM_DIRS: &[&str] = &["user/", "drivers/", "servers/"];

/// A program a profile names but no package builds is an error (false: a
/// warning, the program is left out of the archive and its task line stays
/// in the profile file, for init to report; for bringing up a new profile
/// before its drivers exist).
pub const MISSING_PROGRAMS_ARE_ERRORS: bool = true;

/// Cargo's target directory for user space.
pub fn target_dir() -> PathBuf {
    util::target_dir().join("user")
}

/// Where the generated files of a profile go: `target/kestrel/profile/NAME/`
/// (`profile`, `archive.cpio`, `archive-test.cpio`, `disk.img` or `sd.img`).
pub fn profile_dir(device: &str) -> PathBuf {
    crate::build::out_dir().join("profile").join(device)
}

/// Where the boot archive of `device` (with the test programs or not) is written.
pub fn archive_path(device: &str, test_programs: bool, tag: &str) -> PathBuf {
    let tests = if test_programs { "-test" } else { "" };
    let tag = if tag.is_empty() {
        String::new()
    } else {
        format!("-{tag}")
    };
    profile_dir(device).join(format!("archive{tests}{tag}.cpio"))
}

/// One built program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub name: String,
    /// As linked (with symbols).
    pub elf: PathBuf,
    /// Stripped: what goes into the archive.
    pub stripped: PathBuf,
}

/// Is this a program of the test archives only?
pub fn is_test_program(name: &str) -> bool {
    name.starts_with("test-") || name == "bench" || name.starts_with("bench-")
}

/// Builds every program once per xtask run.
pub fn programs() -> Result<BTreeMap<String, Program>> {
    static DONE: OnceLock<Result<BTreeMap<String, Program>>> = OnceLock::new();
    DONE.get_or_init(build_programs).clone()
}

/// Builds user space and the archive of `device` once per xtask run;
/// returns the archive's path (absolute).
pub fn archive(device: &str, test_programs: bool, group: Option<&Path>, tag: &str) -> Result<PathBuf> {
    type Archives = HashMap<(String, bool, Option<PathBuf>, String), Result<PathBuf>>;
    static DONE: OnceLock<Mutex<Archives>> = OnceLock::new();
    let mut done = DONE.get_or_init(Default::default).lock().unwrap();
    done.entry((
        device.to_string(),
        test_programs,
        group.map(Path::to_path_buf),
        tag.to_string(),
    ))
    .or_insert_with(|| build_archive(device, test_programs, group, tag))
    .clone()
}

/// Fewest bytes a group file holds (`bus::keys::MIN_GROUP_FILE`).
pub const MIN_GROUP_FILE: usize = 16;
/// The group file's name in the boot archive (the bus's `GROUP_ENTRY`).
pub const GROUP_ENTRY: &str = "bus.group";

/// The contents of a group file (`--group FILE`), checked.
pub fn read_group(path: &Path) -> Result<Vec<u8>> {
    let data = std::fs::read(path).map_err(|e| format!("--group {}: {e}", path.display()))?;
    if data.len() < MIN_GROUP_FILE {
        bail!(
            "--group {}: a group file holds at least {MIN_GROUP_FILE} bytes of secret (make one: head -c 32 /dev/urandom > {})",
            path.display(),
            path.display()
        );
    }
    Ok(data)
}

/// The workspace members that are programs: (directory, package name).
fn program_packages() -> Result<Vec<(String, String)>> {
    let manifest = util::root().join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let mut packages = Vec::new();
    let members = workspace_members(&text).map_err(|e| format!("{}: {e}", manifest.display()))?;
    for dir in members.iter().filter(|m| PROGRAM_DIRS.iter().any(|d| m.starts_with(d))) {
        let path = util::root().join(dir).join("Cargo.toml");
        let t = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (name, explicit_bins, autobins) =
            package_info(&t).ok_or_else(|| format!("{}: no [package] name", path.display()))?;
        let src = util::root().join(dir).join("src");
        let has_bin = explicit_bins || (autobins && (src.join("main.rs").is_file() || src.join("bin").is_dir()));
        if has_bin {
            packages.push((dir.clone(), name));
        }
    }
    Ok(packages)
}

fn build_programs() -> Result<BTreeMap<String, Program>> {
    let packages = program_packages()?;
    if packages.is_empty() {
        bail!(
            "no programs among the workspace members under {}",
            PROGRAM_DIRS.join(", ")
        );
    }
    let mut cmd = util::cargo();
    cmd.args([
        "build",
        "--release",
        "--target",
        USER_TARGET,
        "--message-format=json-render-diagnostics",
    ]);
    for (_, p) in &packages {
        cmd.args(["-p", p]);
    }
    cmd.arg("--target-dir").arg(target_dir());
    note!("{}", util::shown(&cmd));
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", util::shown(&cmd)))?;
    if !out.status.success() {
        bail!("`{}` failed ({})", util::shown(&cmd), out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut built: Vec<PathBuf> = stdout.lines().filter_map(executable).map(PathBuf::from).collect();
    built.sort();
    built.dedup();
    if !built.iter().any(|p| p.file_name().is_some_and(|n| n == "init")) {
        bail!("the user build produced no `init` program");
    }

    let stripped = target_dir().join("stripped");
    std::fs::create_dir_all(&stripped).map_err(|e| format!("{}: {e}", stripped.display()))?;
    let objcopy = crate::build::llvm_objcopy()?;
    let mut programs = BTreeMap::new();
    for p in built {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let s = stripped.join(&name);
        util::run(std::process::Command::new(&objcopy).arg("--strip-all").arg(&p).arg(&s))?;
        if let Some(old) = programs.insert(
            name.clone(),
            Program {
                name: name.clone(),
                elf: p.clone(),
                stripped: s,
            },
        ) {
            bail!(
                "two packages build a program `{name}` ({} and {})",
                old.elf.display(),
                p.display()
            );
        }
    }
    Ok(programs)
}

/// The archive members of `profile`: init, the profile file, the programs
/// it names that were built (with the test programs if asked). Returns the
/// entries and the tasks whose program is missing.
pub fn archive_entries<'p>(
    profile: &'p Profile,
    programs: &BTreeMap<String, Program>,
    test_programs: bool,
    group: Option<&[u8]>,
) -> Result<(Vec<Entry>, Vec<&'p profile::Task>)> {
    let available: BTreeSet<String> = programs.keys().cloned().collect();
    let missing = profile.missing_programs(&available);
    let mut names: BTreeSet<&str> = BTreeSet::from(["init"]);
    names.extend(profile.programs().filter(|p| available.contains(*p)));
    if test_programs {
        names.extend(programs.keys().map(String::as_str).filter(|n| is_test_program(n)));
    }
    let mut entries = vec![Entry {
        name: profile::FILE_NAME.to_string(),
        mode: 0o100644,
        data: profile.encode(),
    }];
    // A profile whose tasks read the boot archive (the graphical ones) gets
    // the UI's font, read in place by every UI task: one copy in memory.
    if profile.tasks.iter().any(|t| t.spec.archive) {
        let glyphs = profile.schema.display.map(|d| d.glyphs).unwrap_or_default();
        let path = util::root().join(font_file(glyphs));
        let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        entries.push(Entry {
            name: FONT_ENTRY.to_string(),
            mode: 0o100644,
            data,
        });
    }
    // The device group's secret, for the bus (only where the bus runs).
    if let Some(g) = group.filter(|_| profile.tasks.iter().any(|t| t.program == "bus")) {
        entries.push(Entry {
            name: GROUP_ENTRY.to_string(),
            mode: 0o100600,
            data: g.to_vec(),
        });
    }
    for n in names {
        let p = &programs[n];
        let data = std::fs::read(&p.stripped).map_err(|e| format!("{}: {e}", p.stripped.display()))?;
        entries.push(Entry {
            name: n.to_string(),
            mode: 0o100755,
            data,
        });
    }
    Ok((entries, missing))
}

/// The UI's font (DejaVu Sans, from Debian's fonts-dejavu-core; licence in
/// `assets/fonts/LICENSE`) and its name in the boot archive
/// (`ui::text::FONT_FILE`).
pub const FONT: &str = "assets/fonts/DejaVuSans.ttf";
/// Its subset for U+0020..U+00FF and U+2026 (the watch: `glyphs =
/// "latin1"`), made with fontTools: `pyftsubset DejaVuSans.ttf
/// --unicodes=U+0020-007E,U+00A0-00FF,U+2026 --no-hinting
/// --output-file=DejaVuSans-Latin1.ttf`.
pub const FONT_LATIN1: &str = "assets/fonts/DejaVuSans-Latin1.ttf";
pub const FONT_ENTRY: &str = "font.ttf";

/// The font file a profile's `[display] glyphs` asks for.
pub fn font_file(glyphs: profile::Glyphs) -> &'static str {
    match glyphs {
        profile::Glyphs::All => FONT,
        profile::Glyphs::Latin1 => FONT_LATIN1,
    }
}

fn build_archive(device: &str, test_programs: bool, group: Option<&Path>, tag: &str) -> Result<PathBuf> {
    let profile = profile::load(device)?;
    let group = group.map(read_group).transpose()?;
    let programs = programs()?;
    let (entries, missing) = archive_entries(&profile, &programs, test_programs, group.as_deref())?;
    if !missing.is_empty() {
        let available = programs.keys().cloned().collect();
        let msg = profile::missing_message(&profile, &missing, &available);
        if MISSING_PROGRAMS_ARE_ERRORS {
            bail!("{msg}");
        }
        note!("warning: {msg}; left out of the archive");
    }
    let dir = profile_dir(device);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    write_if_changed(&dir.join(profile::FILE_NAME), &profile.encode())?;
    let count = entries.len();
    let archive = write_cpio(entries);
    let path = archive_path(device, test_programs, tag);
    write_if_changed(&path, &archive)?;
    note!(
        "{}: profile {device}{}: {} files, {} bytes",
        util::relative(&path),
        if test_programs { " with the test programs" } else { "" },
        count,
        archive.len()
    );
    Ok(std::fs::canonicalize(&path).unwrap_or(path))
}

/// Memory a program's PT_LOAD segments occupy, each segment's
/// `[vaddr, vaddr + memsz)` widened to whole 4 KiB pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Loadable {
    /// Read-only segments that are all file bytes, at a file offset
    /// congruent to their address modulo the page: the loaders map them
    /// from the boot archive's pages (shared by every task running the
    /// program, counted once: in the kernel image that carries the archive).
    pub shared: u64,
    /// The rest (data, .bss): new memory from the task's pool.
    pub private: u64,
}

/// The program's [`Loadable`] memory.
pub fn loadable_bytes(elf_bytes: &[u8]) -> Result<Loadable> {
    use elf::abi::{PF_W, PT_LOAD};
    use elf::endian::AnyEndian;
    let file = elf::ElfBytes::<AnyEndian>::minimal_parse(elf_bytes).map_err(|e| format!("not an ELF file: {e}"))?;
    let segments = file.segments().ok_or("the ELF file has no program headers")?;
    const PAGE: u64 = 4096;
    let mut total = Loadable::default();
    for s in segments.iter().filter(|s| s.p_type == PT_LOAD && s.p_memsz > 0) {
        let start = s.p_vaddr / PAGE * PAGE;
        let end = s
            .p_vaddr
            .checked_add(s.p_memsz)
            .ok_or("segment wraps around")?
            .div_ceil(PAGE)
            * PAGE;
        if s.p_flags & PF_W == 0 && s.p_filesz == s.p_memsz && s.p_offset % PAGE == s.p_vaddr % PAGE {
            total.shared += end - start;
        } else {
            total.private += end - start;
        }
    }
    Ok(total)
}

/// Keeps the file's mtime when nothing changed, so the kernel is not
/// rebuilt for an identical archive.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(());
    }
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// `workspace.members` of the root manifest (plain paths, no globs).
pub fn workspace_members(manifest: &str) -> Result<Vec<String>> {
    let doc = toml::de::DeTable::parse(manifest).map_err(|e| e.to_string())?;
    let members = doc
        .get_ref()
        .get("workspace")
        .and_then(|w| w.get_ref().get("members"))
        .and_then(|m| m.get_ref().as_array())
        .ok_or("no [workspace] members")?;
    members
        .iter()
        .map(|m| {
            m.get_ref()
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| "a workspace member is not a string".to_string())
        })
        .collect()
}

/// Of a package manifest: the package name, whether it declares `[[bin]]`
/// targets, and whether cargo discovers binaries itself (`autobins`).
pub fn package_info(manifest: &str) -> Option<(String, bool, bool)> {
    let doc = toml::de::DeTable::parse(manifest).ok()?;
    let doc = doc.get_ref();
    let package = doc.get("package")?.get_ref();
    let name = package.get("name")?.get_ref().as_str()?.to_string();
    let bins = doc
        .get("bin")
        .and_then(|b| b.get_ref().as_array())
        .is_some_and(|a| !a.is_empty());
    let autobins = package
        .get("autobins")
        .and_then(|a| a.get_ref().as_bool())
        .unwrap_or(true);
    Some((name, bins, autobins))
}

/// The `"executable"` path of a cargo `compiler-artifact` JSON message.
pub fn executable(line: &str) -> Option<String> {
    if !line.contains("\"reason\":\"compiler-artifact\"") {
        return None;
    }
    let at = line.find("\"executable\":")? + "\"executable\":".len();
    json_string(line[at..].trim_start())
}

/// A JSON string literal at the start of `s` (None for `null`).
fn json_string(s: &str) -> Option<String> {
    let mut chars = s.strip_prefix('"')?.chars();
    let mut out = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// One archive member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub mode: u32,
    pub data: Vec<u8>,
}

/// A cpio newc archive of `entries`, reproducible: sorted by name, inode
/// numbers 1, 2, ... in that order, mtime 0, uid/gid 0, one link each,
/// ending with the `TRAILER!!!` entry and zero padding to 512 bytes (as
/// GNU cpio writes it). Each file's data starts on a 4 KiB boundary
/// (`newc::PAGE_ALIGN`: its name is padded with NULs, which cpio readers
/// ignore as they read names up to the first NUL), so no two files' data
/// share a page and the loaders map programs' read-only segments from the
/// archive's pages instead of copying them.
pub fn write_cpio(mut entries: Vec<Entry>) -> Vec<u8> {
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        push_entry(&mut out, i as u32 + 1, e.mode, &e.name, &e.data);
    }
    push_entry(&mut out, 0, 0, newc::TRAILER, &[]);
    out.resize(out.len().next_multiple_of(512), 0);
    out
}

fn push_entry(out: &mut Vec<u8>, ino: u32, mode: u32, name: &str, data: &[u8]) {
    // The name with its NUL and the padding NULs that start the data on a
    // page boundary (the trailer has no data and no padding).
    let unpadded = out.len() + newc::HEADER_LEN + name.len() + 1;
    let name_size = if data.is_empty() {
        name.len() + 1
    } else {
        unpadded.next_multiple_of(newc::PAGE_ALIGN) - out.len() - newc::HEADER_LEN
    };
    let fields = [
        ino,
        mode,
        0,
        0,
        1,
        0,
        data.len() as u32,
        0,
        0,
        0,
        0,
        name_size as u32,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.resize(out.len() + name_size - name.len(), 0);
    out.resize(out.len().next_multiple_of(4), 0);
    debug_assert!(data.is_empty() || out.len().is_multiple_of(newc::PAGE_ALIGN));
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// `cargo xtask user [--profile NAME] [--tests] [--group FILE]`: build user
/// space and the archive of a profile; print its path.
pub fn main(args: &crate::cli::UserArgs) -> Result<()> {
    println!(
        "{}",
        archive(&args.profile, args.tests, args.group.as_deref(), "")?.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<Entry> {
        vec![
            Entry {
                name: "test-b".into(),
                mode: 0o100755,
                data: (0..=255u8).cycle().take(5001).collect(),
            },
            Entry {
                name: "init".into(),
                mode: 0o100755,
                data: b"\x7fELF".to_vec(),
            },
            Entry {
                name: "empty".into(),
                mode: 0o100644,
                data: vec![],
            },
        ]
    }

    #[test]
    fn cpio_round_trips_through_the_parser() {
        let a = write_cpio(entries());
        assert_eq!(a.len() % 512, 0);
        let got: Vec<newc::Entry> = newc::Archive::new(&a).map(|e| e.unwrap()).collect();
        let names: Vec<&str> = got.iter().map(|e| e.name).collect();
        assert_eq!(names, ["empty", "init", "test-b"]);
        assert_eq!(got.iter().map(|e| e.ino).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(got.iter().all(|e| e.mtime == 0 && e.is_file()));
        let mut sorted = entries();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        for (g, e) in got.iter().zip(&sorted) {
            assert_eq!((g.mode, g.data), (e.mode, &e.data[..]));
        }
        // Each file's data starts on a page of its own.
        for g in got.iter().filter(|g| !g.data.is_empty()) {
            let offset = g.data.as_ptr() as usize - a.as_ptr() as usize;
            assert_eq!(offset % newc::PAGE_ALIGN, 0, "{} at {offset:#x}", g.name);
        }
    }

    #[test]
    fn cpio_is_reproducible() {
        let mut reversed = entries();
        reversed.reverse();
        assert_eq!(write_cpio(entries()), write_cpio(reversed));
    }

    #[test]
    fn cpio_tool_lists_the_archive() {
        assert!(
            util::have("cpio"),
            "GNU cpio is not installed: `cargo xtask setup` installs it (this cross-check must run)"
        );
        let dir = std::env::temp_dir().join(format!("xtask-cpio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.cpio");
        std::fs::write(&path, write_cpio(entries())).unwrap();
        let listing = util::output(
            std::process::Command::new("cpio")
                .args(["-t", "--quiet", "-F"])
                .arg(&path),
        )
        .unwrap();
        assert_eq!(listing.lines().collect::<Vec<_>>(), ["empty", "init", "test-b"]);
        // And extract one member to compare its bytes.
        util::output(
            std::process::Command::new("cpio")
                .args(["-i", "--quiet", "-F"])
                .arg(&path)
                .arg("test-b")
                .current_dir(&dir),
        )
        .unwrap();
        assert_eq!(std::fs::read(dir.join("test-b")).unwrap(), entries()[0].data);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn finds_members_and_package_names() {
        let m = "[workspace]\nresolver = \"2\"\nmembers = [\n    \"abi\", \"kernel\",\n    # user space\n    \"user/lib\", \"user/init\",\n]\ndefault-members = [\"abi\"]\n";
        assert_eq!(
            workspace_members(m).unwrap(),
            ["abi", "kernel", "user/lib", "user/init"]
        );
        assert!(workspace_members("[package]\nname = \"x\"").is_err());
        let p = "[package]\nname = \"test-ipc\"\nversion = \"1\"\n[dependencies]\nname = \"x\"\n";
        assert_eq!(package_info(p), Some(("test-ipc".to_string(), false, true)));
        let bin = "[package]\nname = \"init\"\nautobins = false\n[[bin]]\nname = \"init\"\npath = \"src/main.rs\"\n";
        assert_eq!(package_info(bin), Some(("init".to_string(), true, false)));
        assert_eq!(package_info("[dependencies]\nname = \"x\"\n"), None);
    }

    #[test]
    fn the_workspace_programs() {
        let pk = program_packages().unwrap();
        let names: Vec<&str> = pk.iter().map(|(_, n)| n.as_str()).collect();
        assert!(names.contains(&"init") && names.contains(&"test-ipc"), "{names:?}");
        // Libraries are built as dependencies only; drivers/pl011 is the kernel's too.
        assert!(!names.contains(&"userlib") && !names.contains(&"pl011"), "{names:?}");
    }

    fn program(name: &str, dir: &Path) -> Program {
        let stripped = dir.join(name);
        std::fs::write(&stripped, format!("ELF of {name}")).unwrap();
        Program {
            name: name.into(),
            elf: stripped.clone(),
            stripped,
        }
    }

    #[test]
    fn archive_members_of_a_profile() {
        let dir = std::env::temp_dir().join(format!("xtask-members-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let programs: BTreeMap<String, Program> = ["init", "shell", "uart-pl011", "test-ipc", "bench", "other"]
            .iter()
            .map(|n| (n.to_string(), program(n, &dir)))
            .collect();
        let text = "name = \"w\"\ndescription = \"d\"\n[qemu]\nmachine = \"virt\"\n\
            [[driver]]\nprogram = \"uart-pl011\"\nmatch = [\"arm,pl011\"]\npriority = 26\nmemory = \"256K\"\n\
            [[driver]]\nprogram = \"virtio-gpu\"\nmatch = [\"virtio,device10\"]\npriority = 24\nmemory = \"1M\"\n\
            [[server]]\nprogram = \"shell\"\npriority = 12\nmemory = \"256K\"\n";
        let p = profile::parse("profiles/w.toml", "w", text).unwrap();
        let (entries, missing) = archive_entries(&p, &programs, false, None).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["profile", "init", "shell", "uart-pl011"]);
        assert_eq!(entries[0].data, p.encode());
        assert_eq!(entries[0].mode, 0o100644);
        assert_eq!(entries[2].data, b"ELF of shell");
        assert_eq!(
            missing.iter().map(|t| t.program.as_str()).collect::<Vec<_>>(),
            ["virtio-gpu"]
        );
        let (entries, _) = archive_entries(&p, &programs, true, None).unwrap();
        let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["bench", "init", "profile", "shell", "test-ipc", "uart-pl011"]);
        // A group file goes only where the bus runs.
        let (entries, _) = archive_entries(&p, &programs, false, Some(b"0123456789abcdef")).unwrap();
        assert!(!entries.iter().any(|e| e.name == GROUP_ENTRY));
        let with_bus = format!("{text}[[server]]\nprogram = \"bus\"\npriority = 12\nmemory = \"256K\"\n");
        let p = profile::parse("profiles/w.toml", "w", &with_bus).unwrap();
        let (entries, _) = archive_entries(&p, &programs, false, Some(b"0123456789abcdef")).unwrap();
        let g = entries.iter().find(|e| e.name == GROUP_ENTRY).expect("bus.group");
        assert_eq!(g.data, b"0123456789abcdef");
        let (entries, _) = archive_entries(&p, &programs, false, None).unwrap();
        assert!(!entries.iter().any(|e| e.name == GROUP_ENTRY));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn group_files_are_checked() {
        let dir = std::env::temp_dir().join(format!("xtask-group-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (short, good) = (dir.join("short"), dir.join("good"));
        std::fs::write(&short, "too short").unwrap();
        std::fs::write(&good, [7u8; 32]).unwrap();
        assert!(read_group(&short).unwrap_err().contains("at least 16 bytes"));
        assert!(read_group(&dir.join("missing")).is_err());
        assert_eq!(read_group(&good).unwrap(), [7u8; 32]);
        assert!(read_group(&util::root().join(crate::test::TEST_GROUP)).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn loadable_memory_of_an_elf() {
        // A minimal ELF64 little-endian AArch64 executable with two PT_LOAD
        // segments: 0x400000+0x1800 (2 pages) and 0x410010+0x10 (1 page),
        // and a PT_GNU_STACK that does not count.
        let mut f = vec![0u8; 64 + 3 * 56];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2; // 64-bit
        f[5] = 1; // little-endian
        f[6] = 1; // version
        f[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        f[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
        f[20..24].copy_from_slice(&1u32.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        f[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        f[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        f[56..58].copy_from_slice(&3u16.to_le_bytes()); // e_phnum
        let ph = |f: &mut Vec<u8>, i: usize, ty: u32, flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64| {
            let o = 64 + i * 56;
            f[o..o + 4].copy_from_slice(&ty.to_le_bytes());
            f[o + 4..o + 8].copy_from_slice(&flags.to_le_bytes());
            f[o + 8..o + 16].copy_from_slice(&offset.to_le_bytes());
            f[o + 16..o + 24].copy_from_slice(&vaddr.to_le_bytes());
            f[o + 32..o + 40].copy_from_slice(&filesz.to_le_bytes());
            f[o + 40..o + 48].copy_from_slice(&memsz.to_le_bytes());
        };
        // Text (R X, all file bytes): shared; data + .bss (R W): private.
        ph(&mut f, 0, 1, 5, 0x1000, 0x40_0000, 0x1800, 0x1800);
        ph(&mut f, 1, 1, 6, 0x3010, 0x41_0010, 0x8, 0x10);
        ph(&mut f, 2, 0x6474_e551, 6, 0, 0, 0, 0x10000);
        assert_eq!(
            loadable_bytes(&f).unwrap(),
            Loadable {
                shared: 2 * 4096,
                private: 4096
            }
        );
        // Read-only but with zero-fill, or at an offset that does not
        // match its address in the page: copied, private.
        ph(&mut f, 0, 1, 4, 0x1000, 0x40_0000, 0x1000, 0x1800);
        assert_eq!(loadable_bytes(&f).unwrap().private, 3 * 4096);
        ph(&mut f, 0, 1, 5, 0x1008, 0x40_0000, 0x1800, 0x1800);
        assert_eq!(loadable_bytes(&f).unwrap().private, 3 * 4096);
        assert!(loadable_bytes(b"not an elf").is_err());
    }

    #[test]
    fn reads_executables_from_cargo_messages() {
        let bin = r#"{"reason":"compiler-artifact","package_id":"x","target":{"kind":["bin"]},"filenames":["/t/init"],"executable":"/t/a\"b\\c/init","fresh":true}"#;
        assert_eq!(executable(bin).as_deref(), Some("/t/a\"b\\c/init"));
        let lib = r#"{"reason":"compiler-artifact","filenames":["/t/libx.rlib"],"executable":null,"fresh":true}"#;
        assert_eq!(executable(lib), None);
        assert_eq!(executable(r#"{"reason":"build-finished","success":true}"#), None);
    }
}
