//! Host prerequisites, checked before build/run/test: QEMU >= 9 (raspi4b),
//! the download/extract tools for the Pi 4 tree, and the Rust side.
//!
//! As root on Debian the missing packages are installed (QEMU from
//! bookworm-backports on bookworm); otherwise the exact commands are printed.

use crate::util::{self, Result};
use crate::{bail, note};
use std::process::Command;

/// QEMU 9 is the first with `-M raspi4b`.
pub const MIN_QEMU: u32 = 9;
const QEMU_PACKAGE: &str = "qemu-system-arm";
const BACKPORTS_FILE: &str = "/etc/apt/sources.list.d/kestrel-backports.sources";

/// What a subcommand needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The toolchain; QEMU is only checked (warning).
    Build,
    /// The toolchain and QEMU.
    Qemu,
    /// The download/extract tools.
    Fetch,
    /// Everything.
    Test,
}

/// What every command that boots a profile needs besides QEMU: its disk
/// image is made FAT32 (`mkfs.vfat`) with a README in it (`mcopy`).
const DISK_TOOLS: &[(&str, &str)] = &[("/usr/sbin/mkfs.vfat", "dosfstools"), ("mcopy", "mtools")];

/// The tools `need` asks for (beyond the toolchain and QEMU).
fn tools_for(need: Need) -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    let (disk, fetch) = match need {
        Need::Build => (false, false),
        Need::Qemu => (true, false),
        Need::Fetch | Need::Test => (true, true),
    };
    DISK_TOOLS
        .iter()
        .filter(move |_| disk)
        .chain(FETCH_TOOLS.iter().filter(move |_| fetch))
}

/// Command-line tools used to fetch the Pi 4 tree, and their Debian packages;
/// then what the boot media need (image, run --uefi/--uboot, their tests):
/// dtc for the Pi's overlay, mtools/fsck.fat/sfdisk to check disk images,
/// and the firmware QEMU boots (a path: checked as a file); python3 is the
/// real web server the network test fetches from (`curl` reads the
/// device's status page in it too); GNU cpio lists and extracts the boot
/// archive in xtask's own test (its entries padded to page boundaries).
const FETCH_TOOLS: &[(&str, &str)] = &[
    ("curl", "curl"),
    ("cpio", "cpio"),
    ("python3", "python3"),
    ("xz", "xz-utils"),
    ("dpkg-deb", "dpkg"),
    ("tar", "tar"),
    ("dtc", "device-tree-compiler"),
    ("/usr/sbin/fsck.fat", "dosfstools"),
    ("/usr/sbin/sfdisk", "fdisk"),
    ("/usr/share/qemu-efi-aarch64/QEMU_EFI.fd", "qemu-efi-aarch64"),
    ("/usr/lib/u-boot/qemu_arm64/u-boot.bin", "u-boot-qemu"),
];

pub fn parse_qemu_version(text: &str) -> Option<(u32, u32, u32)> {
    let rest = &text[text.find("version ")? + "version ".len()..];
    let ver: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let mut it = ver.split('.').map(|n| n.parse::<u32>().ok());
    Some((
        it.next()??,
        it.next().flatten().unwrap_or(0),
        it.next().flatten().unwrap_or(0),
    ))
}

/// Ok(version) or Err(why it will not do).
fn qemu_status() -> Result<(u32, u32, u32)> {
    let out = Command::new(crate::qemu::QEMU).arg("--version").output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => bail!("`{} --version` failed ({})", crate::qemu::QEMU, o.status),
        Err(_) => bail!("{} is not installed", crate::qemu::QEMU),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let v = parse_qemu_version(&text).ok_or_else(|| format!("cannot read the version from `{}`", text.trim()))?;
    if v.0 < MIN_QEMU {
        bail!(
            "{} is version {}.{}.{}; Kestrel needs >= {MIN_QEMU} (for -M raspi4b)",
            crate::qemu::QEMU,
            v.0,
            v.1,
            v.2
        );
    }
    Ok(v)
}

fn check_rust() -> Result<()> {
    let (_, sysroot) = util::rustc_info()?;
    let target = sysroot.join("lib/rustlib").join(crate::build::KERNEL_TARGET);
    if !target.is_dir() {
        bail!(
            "the {} target is not installed in {}; run `rustup toolchain install` in the repository (it reads rust-toolchain.toml)",
            crate::build::KERNEL_TARGET,
            sysroot.display()
        );
    }
    crate::build::llvm_objcopy()?;
    Ok(())
}

/// One apt source (from either file format).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AptSource {
    pub types: Vec<String>,
    pub uris: Vec<String>,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    pub signed_by: Option<String>,
}

/// `deb [opts] URI SUITE COMPONENT...` lines.
pub fn parse_one_line(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (ty, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let mut rest = rest.trim();
        let mut signed_by = None;
        if let Some(r) = rest.strip_prefix('[') {
            let Some((opts, after)) = r.split_once(']') else {
                continue;
            };
            for o in opts.split_whitespace() {
                if let Some(v) = o.strip_prefix("signed-by=") {
                    signed_by = Some(v.to_string());
                }
            }
            rest = after.trim();
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        out.push(AptSource {
            types: vec![ty.to_string()],
            uris: vec![uri.to_string()],
            suites: vec![suite.to_string()],
            components: words.map(String::from).collect(),
            signed_by,
        });
    }
    out
}

/// deb822 `.sources` stanzas (skipping `Enabled: no`).
pub fn parse_deb822(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    let mut cur = AptSource::default();
    let mut enabled = true;
    let mut last_key = String::new();
    let mut flush = |cur: &mut AptSource, enabled: &mut bool| {
        if *enabled && !cur.types.is_empty() && !cur.uris.is_empty() {
            out.push(std::mem::take(cur));
        }
        *cur = AptSource::default();
        *enabled = true;
    };
    for raw in text.lines() {
        if raw.starts_with('#') {
            continue;
        }
        if raw.trim().is_empty() {
            flush(&mut cur, &mut enabled);
            continue;
        }
        let (key, value) = if raw.starts_with([' ', '\t']) {
            (last_key.clone(), raw.trim())
        } else if let Some((k, v)) = raw.split_once(':') {
            last_key = k.trim().to_ascii_lowercase();
            (last_key.clone(), v.trim())
        } else {
            continue;
        };
        let words = || value.split_whitespace().map(String::from);
        match key.as_str() {
            "types" => cur.types.extend(words()),
            "uris" => cur.uris.extend(words()),
            "suites" => cur.suites.extend(words()),
            "components" => cur.components.extend(words()),
            "signed-by" if !value.is_empty() && !value.starts_with("-----") => cur.signed_by = Some(value.to_string()),
            "enabled" => enabled = !value.eq_ignore_ascii_case("no"),
            _ => {}
        }
    }
    flush(&mut cur, &mut enabled);
    out
}

/// Every apt source of the system (the files apt reads; others are ignored).
fn system_sources() -> Vec<AptSource> {
    let mut out = Vec::new();
    if let Ok(t) = std::fs::read_to_string("/etc/apt/sources.list") {
        out.extend(parse_one_line(&t));
    }
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<_> = dir.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            let Ok(t) = std::fs::read_to_string(&p) else {
                continue;
            };
            match p.extension().and_then(|e| e.to_str()) {
                Some("list") => out.extend(parse_one_line(&t)),
                Some("sources") => out.extend(parse_deb822(&t)),
                _ => {}
            }
        }
    }
    out
}

/// None if `<codename>-backports` is already a `deb` source; otherwise the
/// deb822 text to write: same mirror, components and key as the main suite.
pub fn backports_stanza(sources: &[AptSource], codename: &str) -> Result<Option<String>> {
    let backports = format!("{codename}-backports");
    let is_deb = |s: &&AptSource| s.types.iter().any(|t| t == "deb");
    if sources.iter().filter(is_deb).any(|s| s.suites.contains(&backports)) {
        return Ok(None);
    }
    let Some(main) = sources
        .iter()
        .filter(is_deb)
        .find(|s| s.suites.iter().any(|x| x == codename) && !s.uris.iter().any(|u| u.contains("security")))
    else {
        bail!("no apt source for the `{codename}` suite found in /etc/apt/sources.list{{,.d/}}");
    };
    let mut text = format!(
        "Types: deb\nURIs: {}\nSuites: {backports}\nComponents: {}\n",
        main.uris[0],
        if main.components.is_empty() {
            "main".to_string()
        } else {
            main.components.join(" ")
        }
    );
    if let Some(k) = &main.signed_by {
        text.push_str(&format!("Signed-By: {k}\n"));
    }
    Ok(Some(text))
}

fn os_codename() -> Option<String> {
    let t = std::fs::read_to_string("/etc/os-release").ok()?;
    t.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_string())
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// The plan to install what is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// deb822 text for BACKPORTS_FILE, if it must be written.
    pub backports: Option<String>,
    /// `apt-get install -y ...` argument lists.
    pub installs: Vec<Vec<String>>,
}

pub fn plan(need_qemu: bool, packages: &[&str], codename: Option<&str>, sources: &[AptSource]) -> Result<Plan> {
    let mut p = Plan {
        backports: None,
        installs: Vec::new(),
    };
    if need_qemu {
        match codename {
            Some("bookworm") => {
                p.backports = backports_stanza(sources, "bookworm")?;
                p.installs
                    .push(vec!["-t".into(), "bookworm-backports".into(), QEMU_PACKAGE.into()]);
            }
            _ => p.installs.push(vec![QEMU_PACKAGE.into()]),
        }
    }
    if !packages.is_empty() {
        p.installs.push(packages.iter().map(|s| s.to_string()).collect());
    }
    Ok(p)
}

impl Plan {
    /// Shell commands a non-root user should run.
    pub fn commands(&self) -> Vec<String> {
        let mut c = Vec::new();
        if let Some(t) = &self.backports {
            c.push(format!("sudo tee {BACKPORTS_FILE} >/dev/null <<'EOF'\n{t}EOF"));
        }
        c.push("sudo apt-get update".into());
        for i in &self.installs {
            c.push(format!("sudo apt-get install -y {}", i.join(" ")));
        }
        c
    }

    fn execute(&self) -> Result<()> {
        if let Some(t) = &self.backports {
            note!("adding bookworm-backports: {BACKPORTS_FILE}");
            std::fs::write(BACKPORTS_FILE, t).map_err(|e| format!("{BACKPORTS_FILE}: {e}"))?;
        }
        let apt = |args: &[String]| {
            let mut c = Command::new("apt-get");
            c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
            note!("{}", util::shown(&c));
            util::run(&mut c)
        };
        apt(&["update".into()])?;
        for i in &self.installs {
            let mut args = vec!["install".to_string(), "-y".into(), "--no-install-recommends".into()];
            args.extend(i.iter().cloned());
            apt(&args)?;
        }
        Ok(())
    }
}

pub fn ensure(need: Need) -> Result<()> {
    if need != Need::Fetch {
        check_rust()?;
    }
    let qemu_problem = match need {
        Need::Fetch => None,
        _ => qemu_status().err(),
    };
    if need == Need::Build {
        if let Some(p) = qemu_problem {
            note!("warning: {p} (needed by `cargo xtask run`/`test`, not for building)");
        }
        return Ok(());
    }
    let mut missing: Vec<&str> = tools_for(need)
        .filter(|(t, _)| !util::have(t))
        .map(|(_, p)| *p)
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if qemu_problem.is_none() && missing.is_empty() {
        return Ok(());
    }
    let mut why: Vec<String> = qemu_problem.iter().cloned().collect();
    why.extend(missing.iter().map(|p| format!("package {p} is missing")));
    let why = why.join("; ");
    if !util::have("apt-get") {
        bail!("{why}: install QEMU >= {MIN_QEMU} (qemu-system-aarch64), curl, xz, dpkg-deb and tar with your package manager");
    }
    let codename = os_codename();
    let p = plan(qemu_problem.is_some(), &missing, codename.as_deref(), &system_sources())?;
    if !is_root() {
        eprintln!("xtask: {why}. Install with:\n");
        for c in p.commands() {
            eprintln!("{c}");
        }
        eprintln!();
        bail!("missing host packages (see the commands above)");
    }
    note!("{why}: installing with apt-get");
    p.execute()?;
    if qemu_problem.is_some() {
        let v = qemu_status()?;
        note!("{} {}.{}.{} installed", crate::qemu::QEMU, v.0, v.1, v.2);
    }
    if let Some(t) = tools_for(need).find(|(t, _)| !util::have(t)) {
        bail!("{} still missing after installing {}", t.0, t.1);
    }
    Ok(())
}

/// Tools only `cargo xtask fresh-check` uses (it makes a Debian root).
const FRESH_TOOLS: &[(&str, &str)] = &[("debootstrap", "debootstrap")];

/// One line of `cargo xtask doctor`: what it checked, what it found, and
/// the package that provides it when it is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub what: String,
    pub used_by: &'static str,
    pub found: Result<String>,
    pub package: Option<String>,
}

/// The host as the commands need it: QEMU, the Rust side, every tool.
fn findings() -> Vec<Finding> {
    let mut out = vec![Finding {
        what: crate::qemu::QEMU.to_string(),
        used_by: "run, test, bench",
        found: qemu_status().map(|v| format!("{}.{}.{}", v.0, v.1, v.2)),
        package: Some(QEMU_PACKAGE.to_string()),
    }];
    out.push(Finding {
        what: format!("Rust toolchain with {}", crate::build::KERNEL_TARGET),
        used_by: "every command",
        found: check_rust().map(|()| "present".to_string()),
        package: None,
    });
    let tool = |(t, p): &(&str, &'static str), used_by| Finding {
        what: t.to_string(),
        used_by,
        found: if util::have(t) {
            Ok("present".to_string())
        } else {
            Err("missing".to_string())
        },
        package: Some(p.to_string()),
    };
    out.extend(
        DISK_TOOLS
            .iter()
            .map(|t| tool(t, "run, test, bench, screenshot (a profile's disk)")),
    );
    out.extend(
        FETCH_TOOLS
            .iter()
            .map(|t| tool(t, "test, fetch, image, run --uefi/--uboot")),
    );
    out.extend(FRESH_TOOLS.iter().map(|t| tool(t, "fresh-check")));
    out
}

/// `cargo xtask doctor`: what the host has and lacks, and the commands that
/// install what is missing. Exit status 1 when something is missing.
pub fn doctor() -> Result<std::process::ExitCode> {
    let found = findings();
    let width = found.iter().map(|f| f.what.len()).max().unwrap_or(0);
    for f in &found {
        let (mark, state) = match &f.found {
            Ok(v) => ("ok     ", v.clone()),
            Err(e) => ("MISSING", e.clone()),
        };
        println!("{mark} {:width$}  {state}  (used by: {})", f.what, f.used_by);
    }
    let missing: Vec<&Finding> = found.iter().filter(|f| f.found.is_err()).collect();
    if missing.is_empty() {
        println!("\nnothing is missing");
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let need_qemu = missing.iter().any(|f| f.package.as_deref() == Some(QEMU_PACKAGE));
    let mut packages: Vec<&str> = missing
        .iter()
        .filter_map(|f| f.package.as_deref())
        .filter(|p| *p != QEMU_PACKAGE)
        .collect();
    packages.dedup();
    println!("\nto install what is missing:\n");
    if missing.iter().any(|f| f.package.is_none()) {
        println!("rustup toolchain install    # in the repository: reads rust-toolchain.toml");
    }
    if need_qemu || !packages.is_empty() {
        let codename = os_codename();
        let p = plan(need_qemu, &packages, codename.as_deref(), &system_sources())?;
        for c in p.commands() {
            println!("{c}");
        }
        println!("\n(as root, `cargo xtask setup` runs these itself)");
    }
    Ok(std::process::ExitCode::FAILURE)
}

/// Installs (as root) or names the tools of `cargo xtask fresh-check`.
pub fn ensure_fresh_tools() -> Result<()> {
    let missing: Vec<&str> = FRESH_TOOLS
        .iter()
        .filter(|(t, _)| !util::have(t))
        .map(|(_, p)| *p)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let p = plan(false, &missing, os_codename().as_deref(), &system_sources())?;
    if !is_root() {
        bail!("fresh-check runs as root (debootstrap, chroot, mount)");
    }
    note!("installing {}", missing.join(" "));
    p.execute()
}

/// `cargo xtask setup`: check (and as root install) everything.
pub fn main() -> Result<()> {
    ensure(Need::Test)?;
    let v = qemu_status()?;
    println!(
        "ok: {} {}.{}.{}, toolchain and fetch tools present",
        crate::qemu::QEMU,
        v.0,
        v.1,
        v.2
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn booting_a_profile_installs_what_its_disk_needs() {
        // `cargo xtask run` makes the profile's disk with mkfs.vfat and
        // mcopy (qemu::format_fat32); a fresh root once lacked dosfstools.
        for need in [Need::Qemu, Need::Test] {
            let tools: Vec<&str> = tools_for(need).map(|(t, _)| *t).collect();
            assert!(tools.iter().any(|t| t.ends_with("mkfs.vfat")), "{need:?}: {tools:?}");
            assert!(tools.contains(&"mcopy"), "{need:?}: {tools:?}");
        }
        assert_eq!(tools_for(Need::Build).count(), 0);
    }

    use super::*;

    const DEBIAN_SOURCES: &str = "\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

    #[test]
    fn qemu_versions() {
        assert_eq!(
            parse_qemu_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\nCopyright"),
            Some((10, 0, 2))
        );
        assert_eq!(
            parse_qemu_version("QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u13)"),
            Some((7, 2, 15))
        );
        assert_eq!(parse_qemu_version("QEMU emulator version 9.1"), Some((9, 1, 0)));
        assert_eq!(parse_qemu_version("garbage"), None);
    }

    #[test]
    fn deb822_parsing() {
        let s = parse_deb822(DEBIAN_SOURCES);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(s[0].uris, ["http://deb.debian.org/debian"]);
        assert_eq!(
            s[0].signed_by.as_deref(),
            Some("/usr/share/keyrings/debian-archive-keyring.gpg")
        );
        let disabled =
            parse_deb822("Types: deb\nURIs: http://x\nSuites: bookworm-backports\nComponents: main\nEnabled: no\n");
        assert!(disabled.is_empty());
        let multi = parse_deb822(
            "Types: deb deb-src\nURIs:\n http://a\n http://b\nSuites: bookworm\nComponents: main contrib\n",
        );
        assert_eq!(multi[0].uris, ["http://a", "http://b"]);
        assert_eq!(multi[0].types, ["deb", "deb-src"]);
    }

    #[test]
    fn one_line_parsing() {
        let s = parse_one_line(
            "# comment\ndeb http://ftp.de.debian.org/debian bookworm main contrib non-free-firmware\n\
             deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://security.debian.org/debian-security bookworm-security main\n\
             deb-src http://ftp.de.debian.org/debian bookworm main\n",
        );
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].components, ["main", "contrib", "non-free-firmware"]);
        assert_eq!(s[1].signed_by.as_deref(), Some("/usr/share/keyrings/k.gpg"));
        assert_eq!(s[2].types, ["deb-src"]);
    }

    #[test]
    fn backports_from_deb822_main_suite() {
        let text = backports_stanza(&parse_deb822(DEBIAN_SOURCES), "bookworm")
            .unwrap()
            .unwrap();
        assert_eq!(
            text,
            "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        );
    }

    #[test]
    fn backports_from_one_line_main_suite() {
        let s = parse_one_line("deb http://security.debian.org/debian-security bookworm-security main\ndeb http://mirror.example/debian bookworm main contrib\n");
        let text = backports_stanza(&s, "bookworm").unwrap().unwrap();
        assert!(text.contains("URIs: http://mirror.example/debian\n"), "{text}");
        assert!(text.contains("Components: main contrib\n"), "{text}");
        assert!(!text.contains("Signed-By"));
    }

    #[test]
    fn backports_already_configured_or_impossible() {
        let mut s = parse_deb822(DEBIAN_SOURCES);
        s.extend(parse_one_line(
            "deb http://deb.debian.org/debian bookworm-backports main",
        ));
        assert_eq!(backports_stanza(&s, "bookworm").unwrap(), None);
        // deb-src backports alone does not count
        let mut s = parse_deb822(DEBIAN_SOURCES);
        s.extend(parse_one_line(
            "deb-src http://deb.debian.org/debian bookworm-backports main",
        ));
        assert!(backports_stanza(&s, "bookworm").unwrap().is_some());
        assert!(backports_stanza(&[], "bookworm").is_err());
    }

    #[test]
    fn plans_and_printed_commands() {
        let s = parse_deb822(DEBIAN_SOURCES);
        let p = plan(true, &["curl"], Some("bookworm"), &s).unwrap();
        let c = p.commands();
        assert_eq!(c.len(), 4);
        assert!(c[0].starts_with(
            "sudo tee /etc/apt/sources.list.d/kestrel-backports.sources >/dev/null <<'EOF'\nTypes: deb\n"
        ));
        assert!(c[0].ends_with("\nEOF"));
        assert_eq!(c[1], "sudo apt-get update");
        assert_eq!(c[2], "sudo apt-get install -y -t bookworm-backports qemu-system-arm");
        assert_eq!(c[3], "sudo apt-get install -y curl");
        let p = plan(true, &[], Some("trixie"), &s).unwrap();
        assert_eq!(
            p.commands(),
            ["sudo apt-get update", "sudo apt-get install -y qemu-system-arm"]
        );
    }
}
