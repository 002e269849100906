//! `cargo xtask fresh-check`: the README's two commands on a fresh machine.
//!
//! A machine that has been used for a while hides missing set-up steps (a
//! package installed by hand, a file left in `target/`). This check makes a
//! new Debian bookworm root with `debootstrap --variant=minbase`, gives it
//! only what the README assumes — rustup with the pinned toolchain, and what
//! rustup itself needs (a C linker, CA certificates) — puts a clean clone of
//! this repository's `HEAD` in it, and runs inside it, with an empty
//! environment:
//!
//! 1. `rustup toolchain install && cargo xtask run`, with `poweroff` typed at
//!    the shell prompt: the phone profile must reach `kestrel> ` and QEMU
//!    must exit 0;
//! 2. `rustup toolchain install && cargo xtask test`: it must end
//!    `N passed, 0 failed` and exit 0.
//!
//! Everything else (QEMU from bookworm-backports, firmware, disk tools,
//! crates from crates.io) the commands must install themselves. The toolchain
//! is copied from this host's rustup (the root has no other way to get it
//! here), as `RUSTUP_HOME`/`CARGO_HOME` under the root's `/root`, and the
//! root trusts the certificate authorities the host has locally (the site's
//! network may put a TLS proxy in front of crates.io).
//!
//! It needs root (debootstrap, chroot, mounts). The logs are kept in
//! `target/fresh-check/`; the root is removed afterwards unless `--keep`.

use crate::cli::FreshCheckArgs;
use crate::util::{self, Result};
use crate::{bail, note};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Debian packages the root gets besides minbase: what rustup and cargo need
/// before any of this project's code runs (a linker for build scripts and
/// the build tool, CA certificates for crates.io).
pub const ASSUMED_PACKAGES: &[&str] = &["ca-certificates", "gcc", "libc6-dev"];

/// Where the repository sits inside the root.
const REPO_IN_ROOT: &str = "root/kestrel";

/// The filesystems a chroot needs, mounted under the root (in this order).
const MOUNTS: &[(&str, &str, &str)] = &[
    ("proc", "proc", "proc"),
    ("sysfs", "sys", "sysfs"),
    ("devtmpfs", "dev", "devtmpfs"),
    ("devpts", "dev/pts", "devpts"),
];

/// Mounts under the root, unmounted (innermost first) when dropped. The
/// root is deleted only when nothing is mounted under it any more.
struct Mounted {
    root: PathBuf,
    points: Vec<PathBuf>,
}

impl Mounted {
    fn new(root: &Path) -> Result<Mounted> {
        let mut m = Mounted {
            root: root.to_path_buf(),
            points: Vec::new(),
        };
        for (source, dir, fstype) in MOUNTS {
            let point = root.join(dir);
            std::fs::create_dir_all(&point).map_err(|e| format!("{}: {e}", point.display()))?;
            util::run(Command::new("mount").args(["-t", fstype, source]).arg(&point))?;
            m.points.push(point);
        }
        Ok(m)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        for p in self.points.iter().rev() {
            if Command::new("umount")
                .arg(p)
                .status()
                .map(|s| !s.success())
                .unwrap_or(true)
            {
                let _ = Command::new("umount").arg("-l").arg(p).status();
            }
        }
        let left = mounts_under(&self.root);
        if !left.is_empty() {
            eprintln!("fresh-check: still mounted under the root: {left:?}");
        }
    }
}

/// Mount points at or below `root` (from /proc/self/mountinfo).
fn mounts_under(root: &Path) -> Vec<String> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return vec!["(cannot read /proc/self/mountinfo)".into()];
    };
    let root = root.display().to_string();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| *p == root || p.starts_with(&format!("{root}/")))
        .map(String::from)
        .collect()
}

/// Removes a root made by an earlier run, refusing while anything is
/// mounted in it (a recursive delete would reach the host's /dev).
fn remove_root(root: &Path) -> Result<()> {
    if !root.exists() {
        return Ok(());
    }
    let left = mounts_under(root);
    if !left.is_empty() {
        bail!(
            "{} still has mounts ({}); unmount them first",
            root.display(),
            left.join(", ")
        );
    }
    util::run(Command::new("rm").args(["-rf", "--one-file-system"]).arg(root))
}

/// The site's own certificate authorities (`/usr/local/share/ca-certificates`,
/// e.g. a TLS proxy in front of crates.io) belong to the network the machine
/// is on, not to what the project installs: the root trusts them as the host does.
const LOCAL_CAS: &str = "usr/local/share/ca-certificates";

fn trust_local_cas(root: &Path) -> Result<()> {
    let from = Path::new("/").join(LOCAL_CAS);
    let Ok(entries) = std::fs::read_dir(&from) else {
        return Ok(());
    };
    let to = root.join(LOCAL_CAS);
    std::fs::create_dir_all(&to).map_err(|e| format!("{}: {e}", to.display()))?;
    for e in entries.flatten() {
        let dest = to.join(e.file_name());
        std::fs::copy(e.path(), &dest).map_err(|err| format!("{}: {err}", dest.display()))?;
    }
    util::run(
        Command::new("chroot")
            .arg(root)
            .arg("update-ca-certificates")
            .stdout(Stdio::null()),
    )
}

/// The host's toolchain for `rust-toolchain.toml`'s channel, and the rustup
/// binary, copied into the root's `/root/.rustup` and `/root/.cargo/bin`.
fn copy_toolchain(root: &Path) -> Result<String> {
    let pinned = std::fs::read_to_string(util::root().join("rust-toolchain.toml"))
        .map_err(|e| format!("rust-toolchain.toml: {e}"))?;
    let channel = pinned
        .lines()
        .find_map(|l| l.trim().strip_prefix("channel"))
        .and_then(|v| v.split('"').nth(1))
        .ok_or("rust-toolchain.toml names no channel")?
        .to_string();
    let (_, sysroot) = util::rustc_info()?;
    let sysroot = std::fs::canonicalize(&sysroot).map_err(|e| format!("{}: {e}", sysroot.display()))?;
    let host = sysroot
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split_once('-').map(|(_, t)| t.to_string()))
        .ok_or_else(|| format!("cannot tell the host triple from {}", sysroot.display()))?;
    let rustup_home = root.join("root/.rustup");
    let dest = rustup_home.join("toolchains").join(format!("{channel}-{host}"));
    std::fs::create_dir_all(dest.parent().unwrap()).map_err(|e| e.to_string())?;
    // cp -a of the directory (dereferenced: the host's may be a link).
    util::run(
        Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", sysroot.display()))
            .arg(&dest),
    )?;
    std::fs::write(
        rustup_home.join("settings.toml"),
        "version = \"12\"\nprofile = \"minimal\"\nauto_self_update = \"disable\"\n",
    )
    .map_err(|e| e.to_string())?;
    let rustup = util::which("rustup").ok_or("rustup is not on PATH")?;
    let bin = root.join("root/.cargo/bin");
    std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    util::run(Command::new("cp").arg(&rustup).arg(bin.join("rustup")))?;
    for proxy in [
        "cargo",
        "rustc",
        "rustdoc",
        "rustfmt",
        "cargo-fmt",
        "cargo-clippy",
        "clippy-driver",
    ] {
        let link = bin.join(proxy);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("rustup", &link).map_err(|e| format!("{}: {e}", link.display()))?;
    }
    Ok(format!("{channel}-{host}"))
}

/// Runs `script` with bash in the root, with a clean environment, output
/// to `log`; its exit status and how long it took.
fn in_root(root: &Path, script: &str, log: &Path, timeout: Duration) -> Result<(bool, Duration)> {
    let file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut child = Command::new("chroot")
        .arg(root)
        .args(["/usr/bin/env", "-i"])
        .args([
            "HOME=/root",
            "PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "RUSTUP_AUTO_INSTALL=0",
            "LANG=C.UTF-8",
            "TERM=dumb",
        ])
        .args([
            "/bin/bash",
            "-c",
            &format!("set -eo pipefail; cd /{REPO_IN_ROOT}; {script}"),
        ])
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot run chroot: {e}"))?;
    loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok((s.success(), start.elapsed()));
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            // QEMU runs in its own process group under xtask: end any left.
            let _ = Command::new("pkill")
                .args(["-f", &format!("{}/", root.display())])
                .status();
            return Ok((false, start.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn tail(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// What the two commands must show: the shell's prompt and a clean exit;
/// the closing line `N passed, 0 failed` with N > 0.
pub fn run_ok(log: &str) -> bool {
    log.contains("kestrel> ")
}

pub fn test_ok(log: &str) -> Option<u32> {
    let last = log.lines().rev().find(|l| !l.trim().is_empty())?;
    let (passed, failed) = last.trim().split_once(" passed, ")?;
    let passed: u32 = passed.parse().ok()?;
    (failed == "0 failed" && passed > 0).then_some(passed)
}

pub fn main(args: &FreshCheckArgs) -> Result<ExitCode> {
    crate::setup::ensure_fresh_tools()?;
    let start = Instant::now();
    let root = args
        .root
        .clone()
        .unwrap_or_else(|| util::target_dir().join("fresh-root"));
    let root = if root.is_absolute() {
        root
    } else {
        std::env::current_dir().map_err(|e| e.to_string())?.join(root)
    };
    let logs = util::target_dir().join("fresh-check");
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    remove_root(&root)?;

    let step = |what: &str| note!("fresh-check: {what} ({:.0} s)", start.elapsed().as_secs_f64());
    step("debootstrap --variant=minbase bookworm");
    let mut deboot = Command::new("debootstrap");
    deboot
        .args([
            "--variant=minbase",
            &format!("--include={}", ASSUMED_PACKAGES.join(",")),
        ])
        .arg("bookworm")
        .arg(&root)
        .arg(&args.mirror)
        .stdout(Stdio::null());
    util::run(&mut deboot)?;
    std::fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf")).map_err(|e| format!("/etc/resolv.conf: {e}"))?;
    trust_local_cas(&root)?;

    step("rustup with the pinned toolchain");
    let toolchain = copy_toolchain(&root)?;
    step("a clean clone of HEAD");
    util::run(
        Command::new("git")
            .args(["clone", "--quiet", "--no-local", "--no-hardlinks"])
            .arg(util::root())
            .arg(root.join(REPO_IN_ROOT)),
    )?;

    let mounted = Mounted::new(&root)?;
    let run_log = logs.join("run.log");
    let test_log = logs.join("test.log");
    step("README command 1: rustup toolchain install && cargo xtask run (typing `poweroff`)");
    let (run_status, run_time) = in_root(
        &root,
        "printf 'poweroff\\n' | (rustup toolchain install && cargo xtask run)",
        &run_log,
        Duration::from_secs(40 * 60),
    )?;
    let run_text = std::fs::read_to_string(&run_log).unwrap_or_default();
    let run_passed = run_status && run_ok(&run_text);
    step(&format!(
        "run: {} in {:.0} s",
        if run_passed { "ok" } else { "FAILED" },
        run_time.as_secs_f64()
    ));
    step("README command 2: rustup toolchain install && cargo xtask test");
    let (test_status, test_time) = in_root(
        &root,
        "rustup toolchain install && cargo xtask test",
        &test_log,
        Duration::from_secs(60 * 60),
    )?;
    let test_text = std::fs::read_to_string(&test_log).unwrap_or_default();
    let count = test_ok(&test_text).filter(|_| test_status);
    step(&format!(
        "test: {} in {:.0} s",
        match count {
            Some(n) => format!("ok ({n} passed, 0 failed)"),
            None => "FAILED".to_string(),
        },
        test_time.as_secs_f64()
    ));
    drop(mounted);
    if !args.keep {
        remove_root(&root)?;
    }

    println!(
        "fresh-check: toolchain {toolchain} copied in; packages given: minbase + {}",
        ASSUMED_PACKAGES.join(" ")
    );
    println!(
        "fresh-check: run  ... {} ({:.0} s; log {})",
        if run_passed { "ok" } else { "FAILED" },
        run_time.as_secs_f64(),
        util::relative(&run_log)
    );
    if !run_passed {
        println!("{}", tail(&run_log, 40));
    }
    println!(
        "fresh-check: test ... {} ({:.0} s; log {})",
        match count {
            Some(n) => format!("ok, {n} passed, 0 failed"),
            None => "FAILED".into(),
        },
        test_time.as_secs_f64(),
        util::relative(&test_log)
    );
    if count.is_none() {
        println!("{}", tail(&test_log, 60));
    }
    println!("fresh-check: {:.0} s in all", start.elapsed().as_secs_f64());
    Ok(if run_passed && count.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_the_two_commands() {
        assert!(run_ok("[ 0.1] INFO ...\nkestrel> poweroff\n"));
        assert!(!run_ok(
            "qemu-system-aarch64: failed to find romfile \"efi-virtio.rom\"\n"
        ));
        assert_eq!(test_ok("unit ...\n331 passed, 0 failed\n\n"), Some(331));
        assert_eq!(test_ok("289 passed, 42 failed\n"), None);
        assert_eq!(test_ok("0 passed, 0 failed\n"), None);
        assert_eq!(test_ok("331 passed, 0 failed\nerror: something after\n"), None);
    }

    #[test]
    fn finds_mounts_only_under_the_root() {
        assert!(mounts_under(Path::new("/nonexistent-kestrel-root")).is_empty());
        assert!(mounts_under(Path::new("/proc")).contains(&"/proc".to_string()));
        // A path that only begins with a mount point's name is not under it.
        assert!(mounts_under(Path::new("/pro")).is_empty());
    }
}
