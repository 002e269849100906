//! User space: build every program under user/ for aarch64-unknown-none and
//! pack them into the boot archive (cpio newc) that the kernel embeds
//! (`KESTREL_ARCHIVE`, see kernel/build.rs).
//!
//! Programs are the executables cargo reports for the workspace members
//! under `user/` (JSON messages, so nothing is guessed from file names).
//! They are stripped for the archive; the unstripped ELFs stay in
//! target/user for symbolizing fault addresses.

use crate::util::{self, Result};
use crate::{bail, note};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

pub const USER_TARGET: &str = "aarch64-unknown-none";

/// Cargo's target directory for user space.
pub fn target_dir() -> PathBuf {
    util::target_dir().join("user")
}

/// Where the boot archive is written.
pub fn archive_path() -> PathBuf {
    crate::build::out_dir().join("archive.cpio")
}

/// Builds user space and the archive once per xtask run; returns the
/// archive's path (absolute).
pub fn archive() -> Result<PathBuf> {
    static DONE: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    DONE.get_or_init(build_archive).clone()
}

fn build_archive() -> Result<PathBuf> {
    let manifest = util::root().join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let mut packages = Vec::new();
    for dir in workspace_members(&text).iter().filter(|m| m.starts_with("user/")) {
        let path = util::root().join(dir).join("Cargo.toml");
        let t = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        packages.push(package_name(&t).ok_or_else(|| format!("{}: no package name", path.display()))?);
    }
    if packages.is_empty() {
        bail!("no user/ crates among the workspace members");
    }

    let mut cmd = util::cargo();
    cmd.args([
        "build",
        "--release",
        "--target",
        USER_TARGET,
        "--message-format=json-render-diagnostics",
    ]);
    for p in &packages {
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
    let mut programs: Vec<PathBuf> = stdout.lines().filter_map(executable).map(PathBuf::from).collect();
    programs.sort();
    programs.dedup();
    if !programs.iter().any(|p| p.file_name().is_some_and(|n| n == "init")) {
        bail!("the user build produced no `init` program");
    }

    let stripped = target_dir().join("stripped");
    std::fs::create_dir_all(&stripped).map_err(|e| format!("{}: {e}", stripped.display()))?;
    let objcopy = crate::build::llvm_objcopy()?;
    let mut entries = Vec::new();
    for p in &programs {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let s = stripped.join(&name);
        util::run(std::process::Command::new(&objcopy).arg("--strip-all").arg(p).arg(&s))?;
        let bytes = std::fs::read(&s).map_err(|e| format!("{}: {e}", s.display()))?;
        entries.push(Entry {
            name,
            mode: 0o100755,
            data: bytes,
        });
    }
    let archive = write_cpio(entries);
    let path = archive_path();
    std::fs::create_dir_all(path.parent().unwrap()).map_err(|e| format!("{}: {e}", path.display()))?;
    write_if_changed(&path, &archive)?;
    note!(
        "{}: {} programs, {} bytes",
        util::relative(&path),
        programs.len(),
        archive.len()
    );
    Ok(std::fs::canonicalize(&path).unwrap_or(path))
}

/// Keeps the file's mtime when nothing changed, so the kernel is not
/// rebuilt for an identical archive.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(());
    }
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// `members = [...]` of a workspace manifest (plain strings, no globs).
pub fn workspace_members(manifest: &str) -> Vec<String> {
    let Some(start) = manifest
        .find("\nmembers")
        .or_else(|| manifest.strip_prefix("members").map(|_| 0))
    else {
        return Vec::new();
    };
    let rest = &manifest[start..];
    let (Some(open), Some(close)) = (rest.find('['), rest.find(']')) else {
        return Vec::new();
    };
    rest[open + 1..close]
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.split(','))
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `name = "..."` of a package manifest's `[package]` table.
pub fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package {
            if let Some(v) = line
                .strip_prefix("name")
                .map(str::trim_start)
                .and_then(|r| r.strip_prefix('='))
            {
                return Some(v.trim().trim_matches('"').to_string());
            }
        }
    }
    None
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
/// GNU cpio writes it).
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
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// `cargo xtask user`: build user space and the archive; print its path.
pub fn main(args: &[String]) -> Result<()> {
    if let Some(a) = args.first() {
        bail!("user: unknown argument `{a}`");
    }
    println!("{}", archive()?.display());
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
    }

    #[test]
    fn cpio_is_reproducible() {
        let mut reversed = entries();
        reversed.reverse();
        assert_eq!(write_cpio(entries()), write_cpio(reversed));
    }

    #[test]
    fn cpio_tool_lists_the_archive() {
        if !util::have("cpio") {
            eprintln!("cpio not installed: skipping the cross-check");
            return;
        }
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
    fn finds_user_members_and_names() {
        let m = "[workspace]\nresolver = \"2\"\nmembers = [\n    \"abi\", \"kernel\",\n    # user space\n    \"user/lib\", \"user/init\",\n]\ndefault-members = [\"abi\"]\n";
        assert_eq!(workspace_members(m), ["abi", "kernel", "user/lib", "user/init"]);
        assert_eq!(workspace_members("members = [\"a\"]"), ["a"]);
        let p = "[package]\nname = \"test-ipc\"\nversion = \"1\"\n[dependencies]\nname = \"x\"\n";
        assert_eq!(package_name(p).as_deref(), Some("test-ipc"));
        assert_eq!(package_name("[dependencies]\nname = \"x\"\n"), None);
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
