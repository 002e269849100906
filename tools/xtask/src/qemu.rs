//! `cargo xtask run`: boot the image on QEMU virt with the console on the terminal.

use crate::build::{self, Options};
use crate::util::{self, Result};
use crate::{bail, note};
use std::process::Command;

pub const QEMU: &str = "qemu-system-aarch64";

/// The machine `cargo xtask run` boots (before `-kernel IMG`).
pub const DEFAULTS: &[&str] = &[
    "-M",
    "virt,gic-version=3,virtualization=on",
    "-cpu",
    "cortex-a72",
    "-smp",
    "4",
    "-m",
    "2G",
    "-nographic",
];

/// QEMU options that take no value. Every other option takes exactly one.
const FLAGS: &[&str] = &[
    "-nographic",
    "-s",
    "-S",
    "-semihosting",
    "-no-reboot",
    "-no-shutdown",
    "-snapshot",
    "-enable-kvm",
    "-daemonize",
    "-no-user-config",
    "-nodefaults",
    "-full-screen",
    "-version",
    "-help",
    "-h",
];

/// One option with its value, if any (`["-m", "2G"]`, `["-S"]`); a stray
/// non-option token forms a group of its own.
fn groups(args: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let is_opt = a.starts_with('-') && a.len() > 1;
        let takes_value = is_opt && !FLAGS.contains(&canonical(a).as_str());
        if takes_value && i + 1 < args.len() {
            out.push(vec![a.clone(), args[i + 1].clone()]);
            i += 2;
        } else {
            out.push(vec![a.clone()]);
            i += 1;
        }
    }
    out
}

/// Option name without aliases: `--machine`/`-machine` -> `-M`, `--m` -> `-m`.
fn canonical(opt: &str) -> String {
    let single = if opt.starts_with("--") { &opt[1..] } else { opt };
    match single {
        "-machine" => "-M".to_string(),
        s => s.to_string(),
    }
}

/// Default options that a user option replaces besides its own name.
fn also_replaces(opt: &str) -> &'static [&'static str] {
    match opt {
        // -nographic routes serial+monitor to stdio; a user who picks a
        // display, serial or monitor decides that themselves.
        "-display" | "-serial" | "-monitor" => &["-nographic"],
        _ => &[],
    }
}

/// Defaults overridden by user options of the same name; user options last.
pub fn merge(defaults: &[String], user: &[String]) -> Vec<String> {
    let user_groups = groups(user);
    let user_names: Vec<String> = user_groups.iter().map(|g| canonical(&g[0])).collect();
    let replaced = |name: &str| user_names.iter().any(|u| u == name || also_replaces(u).contains(&name));
    let mut out: Vec<String> = Vec::new();
    let mut dropped_nographic = false;
    for g in groups(defaults) {
        let name = canonical(&g[0]);
        if replaced(&name) {
            dropped_nographic |= name == "-nographic";
            continue;
        }
        out.extend(g);
    }
    // Without -nographic QEMU would open a window: keep it headless unless
    // the user chose a display.
    if dropped_nographic && !user_names.iter().any(|n| n == "-display" || n == "-nographic") {
        out.extend(["-display".to_string(), "none".to_string()]);
    }
    for g in user_groups {
        out.extend(g);
    }
    out
}

/// `cargo xtask run [--gdb] [--debug|--release] [--test-image] [-- QEMU ARGS...]`
pub fn main(args: &[String]) -> Result<()> {
    let (ours, user) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (args, &[][..]),
    };
    let (opts, rest) = Options::parse(ours);
    let mut gdb = false;
    for a in rest {
        match a.as_str() {
            "--gdb" => gdb = true,
            _ => bail!("run: unknown argument `{a}` (QEMU arguments go after `--`)"),
        }
    }
    crate::setup::ensure(crate::setup::Need::Qemu)?;
    let built = build::build(opts)?;

    let mut defaults: Vec<String> = DEFAULTS.iter().map(|s| s.to_string()).collect();
    defaults.extend(["-kernel".to_string(), built.img.display().to_string()]);
    let mut user = user.to_vec();
    if gdb {
        user.extend(["-s".to_string(), "-S".to_string()]);
    }
    let args = merge(&defaults, &user);
    let mut cmd = Command::new(QEMU);
    cmd.args(&args);
    if gdb {
        let elf = std::fs::canonicalize(&built.elf).unwrap_or(built.elf.clone());
        let entry = built.header.qemu_entry(0x4000_0000);
        eprintln!("QEMU waits for the debugger (-s -S: gdbstub on tcp::1234). In another terminal:");
        eprintln!();
        eprintln!(
            "    gdb-multiarch -q {} -ex 'target remote localhost:1234'",
            elf.display()
        );
        eprintln!();
        eprintln!("The ELF is linked at its final virtual address, so symbols and source lines");
        eprintln!("match once the MMU is on: `hbreak kernel_main`, `continue` (use hbreak: a");
        eprintln!("software `break` cannot be planted before the kernel is mapped). Before that");
        eprintln!("the CPU runs at physical addresses: on virt the image is entered at {entry:#x};");
        eprintln!("use `hbreak *{entry:#x}` and `stepi`/`x/8i $pc` for the pre-MMU boot path.");
        eprintln!("Quit QEMU with Ctrl-A X.");
        eprintln!();
    }
    note!("{}", util::shown(&cmd));
    exec(cmd)
}

/// Replaces this process with QEMU, so the terminal, Ctrl-A X and the exit
/// status all belong to QEMU.
fn exec(mut cmd: Command) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let err = cmd.exec();
    bail!("cannot run {QEMU}: {err}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn defaults() -> Vec<String> {
        let mut d: Vec<String> = DEFAULTS.iter().map(|s| s.to_string()).collect();
        d.extend(v("-kernel k.img"));
        d
    }

    #[test]
    fn no_user_args_keeps_defaults() {
        assert_eq!(merge(&defaults(), &[]), defaults());
    }

    #[test]
    fn same_option_overrides() {
        let m = merge(&defaults(), &v("-smp 1 -M virt,gic-version=2"));
        assert_eq!(
            m.join(" "),
            "-cpu cortex-a72 -m 2G -nographic -kernel k.img -smp 1 -M virt,gic-version=2"
        );
    }

    #[test]
    fn aliases_override() {
        let m = merge(&defaults(), &v("-machine raspi4b --m 1G"));
        assert_eq!(
            m.join(" "),
            "-cpu cortex-a72 -smp 4 -nographic -kernel k.img -machine raspi4b --m 1G"
        );
    }

    #[test]
    fn flags_and_new_options_are_appended() {
        let m = merge(&defaults(), &v("-s -S -d int,guest_errors -append ktest.filter=mm"));
        assert_eq!(&m[..defaults().len()], &defaults()[..]);
        assert_eq!(
            m[defaults().len()..].join(" "),
            "-s -S -d int,guest_errors -append ktest.filter=mm"
        );
    }

    #[test]
    fn serial_replaces_nographic_and_stays_headless() {
        let m = merge(&defaults(), &v("-serial stdio -monitor none"));
        assert!(!m.contains(&"-nographic".to_string()));
        assert_eq!(m.join(" "), "-M virt,gic-version=3,virtualization=on -cpu cortex-a72 -smp 4 -m 2G -kernel k.img -display none -serial stdio -monitor none");
        let m = merge(&defaults(), &v("-display gtk"));
        assert_eq!(m.iter().filter(|a| *a == "-display").count(), 1);
    }

    #[test]
    fn repeated_user_options_all_kept() {
        let m = merge(&defaults(), &v("-device a -device b"));
        assert_eq!(m.iter().filter(|a| *a == "-device").count(), 2);
    }
}
