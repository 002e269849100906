//! Running one case (QEMU boot, or `xtask dt` on a tree) and judging it.

use crate::cases::{BootCase, DtCase, Dtb, Edit, Exit, Image, Tree};
use crate::console::{find_banner, parse_ktest, FATAL_MARKERS};
use crate::fdt::{self, Fdt};
use crate::process::{self, Captured, End, Line, Stream};
use regex_lite::Regex;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Where things are; filled in by the build tool.
#[derive(Debug, Clone)]
pub struct Env {
    /// `qemu-system-aarch64`
    pub qemu: PathBuf,
    pub test_image: PathBuf,
    pub prod_image: PathBuf,
    /// The fetched `bcm2711-rpi-4-b.dtb`.
    pub rpi4_dtb: PathBuf,
    /// Scratch directory for generated trees.
    pub work_dir: PathBuf,
    /// Program and leading arguments of the `dt` command (the tree's path is appended).
    pub dt_command: Vec<OsString>,
    /// Makes the boot medium of cases that do not boot with `-kernel` (see `media`).
    pub media: Option<crate::media::MediaFn>,
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub passed: bool,
    pub elapsed: Duration,
    /// Short extra facts for the ok line, e.g. "4/4 CPUs, 2044 MiB, GICv3, 12 ktests".
    pub summary: String,
    /// Why it failed (empty when passed).
    pub reason: String,
    /// The command line, for reproducing by hand.
    pub command: String,
    pub log: Vec<Line>,
}

impl Outcome {
    fn error(command: String, reason: String) -> Outcome {
        Outcome {
            passed: false,
            elapsed: Duration::ZERO,
            summary: String::new(),
            reason,
            command,
            log: Vec::new(),
        }
    }

    /// `boot NAME ... ok (123 ms, extra)` or `... FAILED` + reason + command + full log.
    pub fn report(&self, kind: &str, name: &str) -> String {
        let ms = self.elapsed.as_millis();
        let extra = if self.summary.is_empty() {
            String::new()
        } else {
            format!(", {}", self.summary)
        };
        if self.passed {
            return format!("{kind} {name} ... ok ({ms} ms{extra})");
        }
        let mut s = format!(
            "{kind} {name} ... FAILED ({ms} ms)\n    reason: {}\n    command: {}\n",
            self.reason, self.command
        );
        if self.log.is_empty() {
            s.push_str("    (no output)\n");
        } else {
            s.push_str(&format!(
                "    ---- console log ({} lines; `!` = stderr) ----\n",
                self.log.len()
            ));
            for l in &self.log {
                let mark = if l.stream == Stream::Stderr { '!' } else { '|' };
                s.push_str(&format!("    {mark} {}\n", l.text));
            }
            s.push_str("    ---- end of log ----\n");
        }
        s.trim_end().to_string()
    }
}

/// Quotes a command for display (copy-paste into a shell).
pub fn shell_quote<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> String {
    args.into_iter()
        .map(|a| {
            let a = a.as_ref().to_string_lossy().into_owned();
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_=.,/:@+%".contains(c)) {
                a
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// QEMU arguments of a boot case (without the program).
pub fn qemu_args(case: &BootCase, image: &Path, dtb: Option<&Path>) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["-M".into(), case.machine.into()];
    if let Some(cpu) = case.cpu {
        a.extend(["-cpu".into(), cpu.into()]);
    }
    if let Some(n) = case.smp {
        a.extend(["-smp".into(), n.to_string().into()]);
    }
    if let Some(m) = case.mem {
        a.extend(["-m".into(), m.into()]);
    }
    if case.semihosting {
        a.push("-semihosting".into());
    }
    for s in ["-display", "none", "-serial", "stdio", "-monitor", "none"] {
        a.push(s.into());
    }
    a.extend(["-kernel".into(), image.into()]);
    if let Some(d) = dtb {
        a.extend(["-dtb".into(), d.into()]);
    }
    if let Some(app) = case.append {
        a.extend(["-append".into(), app.into()]);
    }
    a
}

fn run_quiet(cmd: &mut Command) -> Result<(), String> {
    let shown = shell_quote(std::iter::once(cmd.get_program()).chain(cmd.get_args()));
    let out = cmd.output().map_err(|e| format!("{shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{shown}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Dumps QEMU's own virt tree for these options.
pub fn dump_virt(
    env: &Env,
    machine: &str,
    cpu: Option<&str>,
    smp: Option<u32>,
    mem: Option<&str>,
    out: &Path,
) -> Result<Vec<u8>, String> {
    let mut c = Command::new(&env.qemu);
    c.args(["-M", machine])
        .arg("-machine")
        .arg(format!("dumpdtb={}", out.display()));
    if let Some(cpu) = cpu {
        c.args(["-cpu", cpu]);
    }
    if let Some(n) = smp {
        c.args(["-smp", &n.to_string()]);
    }
    if let Some(m) = mem {
        c.args(["-m", m]);
    }
    c.args(["-display", "none", "-serial", "null", "-monitor", "none"]);
    let _ = std::fs::remove_file(out);
    run_quiet(&mut c)?;
    std::fs::read(out).map_err(|e| format!("{}: {e}", out.display()))
}

/// The Pi 4 tree the way QEMU's raspi4b hands it to a kernel: dumped with a
/// dummy Image (QEMU only builds the tree when it has a kernel to boot).
pub fn dump_rpi4_booted(env: &Env, out: &Path) -> Result<Vec<u8>, String> {
    let dummy = env.work_dir.join("dummy-Image");
    let mut img = vec![0u8; 4096];
    img[56..60].copy_from_slice(b"ARM\x64");
    img[16..24].copy_from_slice(&4096u64.to_le_bytes()); // image_size
    std::fs::write(&dummy, &img).map_err(|e| e.to_string())?;
    let mut c = Command::new(&env.qemu);
    c.args(["-M", "raspi4b"])
        .arg("-machine")
        .arg(format!("dumpdtb={}", out.display()))
        .arg("-dtb")
        .arg(&env.rpi4_dtb)
        .arg("-kernel")
        .arg(&dummy)
        .args(["-display", "none", "-serial", "null", "-monitor", "none"]);
    let _ = std::fs::remove_file(out);
    run_quiet(&mut c)?;
    std::fs::read(out).map_err(|e| format!("{}: {e}", out.display()))
}

/// Applies an edit to a good tree.
pub fn apply_edit(blob: &[u8], edit: Edit) -> Result<Vec<u8>, String> {
    Ok(match edit {
        Edit::None => blob.to_vec(),
        Edit::Remove(sel) => {
            let mut t = Fdt::parse(blob)?;
            if t.remove(sel) == 0 {
                return Err(format!("no node matches {sel:?}"));
            }
            t.to_bytes()
        }
        Edit::Nop(sel) => {
            // Compact first: QEMU's dumps are padded to 1 MiB, and QEMU
            // doubles that when it loads a -dtb, past the 2 MiB the arm64
            // boot protocol allows — the kernel would reject it for that.
            let mut b = Fdt::parse(blob)?.to_bytes();
            if fdt::nop_nodes(&mut b, sel)? == 0 {
                return Err(format!("no node matches {sel:?}"));
            }
            b
        }
        Edit::RootAddressCells(n) => {
            let mut t = Fdt::parse(blob)?;
            t.set_prop("/", "#address-cells", fdt::cells(&[n]))?;
            t.to_bytes()
        }
        Edit::Truncate => {
            let b = Fdt::parse(blob)?.to_bytes();
            b[..b.len() / 2].to_vec()
        }
        Edit::BadMagic => {
            let mut b = blob.to_vec();
            b[..4].copy_from_slice(&0xdead_beef_u32.to_be_bytes());
            b
        }
        Edit::Empty => Vec::new(),
    })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Produces the `-dtb` file of a boot case, if it has one.
pub fn prepare_boot_dtb(case: &BootCase, env: &Env) -> Result<Option<PathBuf>, String> {
    match case.dtb {
        Dtb::Builtin => Ok(None),
        Dtb::Rpi4 => {
            if !env.rpi4_dtb.is_file() {
                return Err(format!(
                    "{} is missing (it is fetched by `cargo xtask test`)",
                    env.rpi4_dtb.display()
                ));
            }
            Ok(Some(env.rpi4_dtb.clone()))
        }
        Dtb::Virt(edit) => {
            let dir = env.work_dir.join("boot");
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let orig = dir.join(format!("{}.orig.dtb", case.name));
            let good = dump_virt(env, case.machine, case.cpu, case.smp, case.mem, &orig)?;
            let out = dir.join(format!("{}.dtb", case.name));
            write(&out, &apply_edit(&good, edit)?)?;
            Ok(Some(out))
        }
    }
}

/// Produces the tree of a dt case.
pub fn prepare_dt_tree(case: &DtCase, env: &Env) -> Result<PathBuf, String> {
    let dir = env.work_dir.join("dt");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let orig = dir.join(format!("{}.orig.dtb", case.name));
    let good = match case.tree {
        Tree::Virt { machine, cpu, smp, mem } => dump_virt(env, machine, Some(cpu), Some(smp), Some(mem), &orig)?,
        Tree::Rpi4 => std::fs::read(&env.rpi4_dtb).map_err(|e| format!("{}: {e}", env.rpi4_dtb.display()))?,
        Tree::Rpi4Booted => dump_rpi4_booted(env, &orig)?,
    };
    let out = dir.join(format!("{}.dtb", case.name));
    write(&out, &apply_edit(&good, case.edit)?)?;
    Ok(out)
}

fn exit_meaning(code: i32) -> &'static str {
    match code {
        0 => " = all passed",
        1 => " = a ktest failed",
        101 => " = kernel panic",
        102 => " = kernel fault",
        103 => " = boot error",
        _ => "",
    }
}

/// Compiled expectations of a boot case.
pub struct Expectations {
    pub expect: Vec<Regex>,
    pub forbid: Vec<Regex>,
}

impl Expectations {
    pub fn new(case: &BootCase) -> Result<Expectations, String> {
        let re = |s: &str| Regex::new(s).map_err(|e| format!("bad regex {s:?}: {e}"));
        let expect = case.expect.iter().map(|s| re(s)).collect::<Result<Vec<_>, _>>()?;
        // A fatal marker stays forbidden unless an expected pattern names it.
        let mut forbid: Vec<Regex> = FATAL_MARKERS
            .iter()
            .filter(|m| !case.expect.iter().any(|e| e.contains(*m)))
            .map(|m| re(&regex_lite::escape(m)))
            .collect::<Result<_, _>>()?;
        for f in case.forbid {
            forbid.push(re(f)?);
        }
        Ok(Expectations { expect, forbid })
    }

    pub fn all_expected_seen(&self, lines: &[Line]) -> bool {
        self.expect.iter().all(|re| lines.iter().any(|l| re.is_match(&l.text)))
    }

    pub fn first_forbidden<'a>(&self, lines: &'a [Line]) -> Option<&'a Line> {
        lines.iter().find(|l| self.forbid.iter().any(|re| re.is_match(&l.text)))
    }
}

/// The verdict on a boot case: Ok(summary) or Err(reasons).
pub fn judge_boot(case: &BootCase, lines: &[Line], end: End) -> Result<String, String> {
    let ex = Expectations::new(case)?;
    let mut why: Vec<String> = Vec::new();
    match (case.exit, end) {
        (Exit::Code(c), End::Exited(x)) if c == x => {}
        (Exit::Running | Exit::RunningOr(_), End::Stopped) => {}
        (Exit::RunningOr(c), End::Exited(x)) if c == x => {}
        (_, End::TimedOut) => why.push(format!("timed out after {} s", case.timeout_s)),
        (_, End::Signaled) => why.push("QEMU was killed by a signal".into()),
        (Exit::Code(c), End::Exited(x)) => why.push(format!(
            "exit code {x}{}, expected {c}{}",
            exit_meaning(x),
            exit_meaning(c)
        )),
        (Exit::Code(c), End::Stopped) => why.push(format!("killed after a fatal line, expected exit code {c}")),
        (Exit::Running, End::Exited(x)) => {
            why.push(format!("QEMU exited with code {x}, but this image should keep running"))
        }
        (Exit::RunningOr(c), End::Exited(x)) => why.push(format!(
            "QEMU exited with code {x}, expected it to keep running or exit with {c}"
        )),
    }
    if let Some(l) = ex.first_forbidden(lines) {
        why.push(format!("forbidden line: {:?}", l.text));
    }
    for (re, src) in ex.expect.iter().zip(case.expect) {
        if !lines.iter().any(|l| re.is_match(&l.text)) {
            why.push(format!("no line matches /{src}/"));
        }
    }
    let mut facts = Vec::new();
    if let Some(want) = case.banner {
        match find_banner(lines) {
            None => why.push("no boot banner".into()),
            Some(b) => {
                facts.push(format!(
                    "{}/{} CPUs, {} MiB, GICv{}",
                    b.cpus_online, b.cpus_total, b.ram_mib, b.gic
                ));
                if b.cpus_online != want.cpus || b.cpus_total != want.cpus {
                    why.push(format!(
                        "banner: {}/{} CPUs online, expected {2}/{2}",
                        b.cpus_online, b.cpus_total, want.cpus
                    ));
                }
                if b.ram_mib < want.ram_mib.0 || b.ram_mib > want.ram_mib.1 {
                    why.push(format!(
                        "banner: {} MiB usable, expected {}..={} MiB",
                        b.ram_mib, want.ram_mib.0, want.ram_mib.1
                    ));
                }
                if b.gic != want.gic {
                    why.push(format!("banner: GICv{}, expected GICv{}", b.gic, want.gic));
                }
            }
        }
    }
    if case.ktest {
        match parse_ktest(lines).verdict() {
            Ok(s) => facts.push(s),
            Err(e) => why.push(e),
        }
    }
    if why.is_empty() {
        Ok(facts.join(", "))
    } else {
        Err(why.join("; "))
    }
}

/// How long to keep collecting after all expectations are met, or after a
/// forbidden line (the fault report follows its first line).
const GRACE: Duration = Duration::from_millis(700);

/// Boots one case in QEMU and judges it.
pub fn run_boot(case: &BootCase, env: &Env) -> Outcome {
    let image = match case.image {
        Image::Test => &env.test_image,
        Image::Production => &env.prod_image,
    };
    let shown = |dtb: Option<&Path>| {
        shell_quote(std::iter::once(env.qemu.clone().into_os_string()).chain(qemu_args(case, image, dtb)))
    };
    let dtb = match prepare_boot_dtb(case, env) {
        Ok(d) => d,
        Err(e) => return Outcome::error(shown(None), format!("preparing the device tree: {e}")),
    };
    let args = qemu_args(case, image, dtb.as_deref());
    let command = shown(dtb.as_deref());
    if !image.is_file() {
        return Outcome::error(command, format!("{} does not exist (build it first)", image.display()));
    }
    // Through firmware or from a boot medium (made by the build tool).
    let (args, command) = match crate::media::prepare(case, env, image) {
        Ok(None) => (args, command),
        Ok(Some(a)) => {
            let c = shell_quote(std::iter::once(env.qemu.clone().into_os_string()).chain(a.iter().cloned()));
            (a, c)
        }
        Err(e) => return Outcome::error(command, format!("preparing the boot medium: {e}")),
    };
    let ex = match Expectations::new(case) {
        Ok(e) => e,
        Err(e) => return Outcome::error(command, e),
    };
    let mut cmd = Command::new(&env.qemu);
    cmd.args(&args);
    let running = matches!(case.exit, Exit::Running | Exit::RunningOr(_));
    let done = |lines: &[Line]| {
        ex.first_forbidden(lines).is_some()
            || (running && ex.all_expected_seen(lines) && (case.banner.is_none() || find_banner(lines).is_some()))
    };
    match process::run(cmd, Duration::from_secs(case.timeout_s), GRACE, done) {
        Err(e) => Outcome::error(command, format!("could not start {}: {e}", env.qemu.display())),
        Ok(Captured { lines, end, elapsed }) => {
            let verdict = judge_boot(case, &lines, end);
            Outcome {
                passed: verdict.is_ok(),
                elapsed,
                summary: verdict.clone().unwrap_or_default(),
                reason: verdict.err().unwrap_or_default(),
                command,
                log: lines,
            }
        }
    }
}

/// The verdict on a dt case.
pub fn judge_dt(case: &DtCase, lines: &[Line], end: End) -> Result<String, String> {
    let mut why = Vec::new();
    if let Some(l) = lines.iter().find(|l| l.text.contains("panicked")) {
        why.push(format!("panicked: {:?}", l.text));
    }
    match end {
        End::Exited(0) if case.ok => {}
        End::Exited(c) if case.ok => why.push(format!("exit code {c}, expected success")),
        End::Exited(0) => why.push("exit code 0, expected failure".into()),
        End::Exited(101) => why.push("exit code 101 (a Rust panic)".into()),
        End::Exited(_) => {}
        End::Signaled => why.push("killed by a signal (abort?)".into()),
        End::TimedOut | End::Stopped => why.push("timed out".into()),
    }
    if !case.ok
        && !lines
            .iter()
            .any(|l| l.stream == Stream::Stderr && l.text.starts_with("error: "))
    {
        why.push("no `error: ...` line on stderr".into());
    }
    for src in case.expect {
        let re = Regex::new(src).map_err(|e| e.to_string())?;
        if !lines.iter().any(|l| re.is_match(&l.text)) {
            why.push(format!("no line matches /{src}/"));
        }
    }
    if why.is_empty() {
        Ok(String::new())
    } else {
        Err(why.join("; "))
    }
}

/// Runs `xtask dt` on a (generated) tree and judges it.
pub fn run_dt(case: &DtCase, env: &Env) -> Outcome {
    let tree = match prepare_dt_tree(case, env) {
        Ok(t) => t,
        Err(e) => return Outcome::error(shell_quote(&env.dt_command), format!("preparing the tree: {e}")),
    };
    let mut argv = env.dt_command.clone();
    argv.push(tree.into_os_string());
    let command = shell_quote(&argv);
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    match process::run(cmd, Duration::from_secs(30), Duration::ZERO, |_| false) {
        Err(e) => Outcome::error(command, format!("could not start: {e}")),
        Ok(Captured { lines, end, elapsed }) => {
            let verdict = judge_dt(case, &lines, end);
            Outcome {
                passed: verdict.is_ok(),
                elapsed,
                summary: String::new(),
                reason: verdict.err().unwrap_or_default(),
                command,
                log: lines,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::{Banner, KTEST};
    use crate::process::Line;

    fn out(v: &[&str]) -> Vec<Line> {
        v.iter().map(|s| Line::out(s)).collect()
    }

    const BANNER4: &str = "[    0.05] INFO  Kestrel v0.1.0 booted on QEMU virt: 2040 MiB RAM usable, 4/4 CPUs online, GICv3, boot took 123 cycles";

    fn ktest_case() -> BootCase {
        BootCase {
            name: "t",
            smp: Some(4),
            banner: Some(Banner {
                cpus: 4,
                ram_mib: (1984, 2048),
                gic: 3,
            }),
            ..KTEST
        }
    }

    fn good_log() -> Vec<Line> {
        out(&[
            BANNER4,
            "ktest: running 1 tests",
            "ktest: a ... ok",
            "ktest: result: 1 passed, 0 failed",
        ])
    }

    #[test]
    fn passing_ktest_case() {
        let s = judge_boot(&ktest_case(), &good_log(), End::Exited(0)).unwrap();
        assert_eq!(s, "4/4 CPUs, 2040 MiB, GICv3, 1 ktests");
    }

    #[test]
    fn wrong_exit_code_and_banner() {
        let case = BootCase {
            banner: Some(Banner {
                cpus: 1,
                ram_mib: (96, 128),
                gic: 2,
            }),
            ..ktest_case()
        };
        let why = judge_boot(&case, &good_log(), End::Exited(1)).unwrap_err();
        assert!(why.contains("exit code 1 = a ktest failed, expected 0"), "{why}");
        assert!(why.contains("4/4 CPUs online, expected 1/1"), "{why}");
        assert!(why.contains("2040 MiB usable"), "{why}");
        assert!(why.contains("GICv3, expected GICv2"), "{why}");
        assert!(judge_boot(&case, &good_log(), End::TimedOut)
            .unwrap_err()
            .contains("timed out"));
    }

    #[test]
    fn fatal_markers_forbidden_unless_expected() {
        let mut log = good_log();
        log.push(Line {
            stream: Stream::Stderr,
            text: "KERNEL PANIC on CPU 0: oops at kernel/src/x.rs:3".into(),
        });
        let why = judge_boot(&ktest_case(), &log, End::Exited(0)).unwrap_err();
        assert!(why.contains("forbidden line"), "{why}");

        let panic_case = BootCase {
            expect: &[r"KERNEL PANIC on CPU \d+: .+ at \S+:\d+"],
            exit: Exit::Code(101),
            ktest: false,
            banner: None,
            ..KTEST
        };
        assert!(judge_boot(&panic_case, &log, End::Exited(101)).is_ok());
        // but other markers stay forbidden
        log.push(Line::out("BOOT ERROR: no GIC"));
        assert!(judge_boot(&panic_case, &log, End::Exited(101))
            .unwrap_err()
            .contains("BOOT ERROR"));
        let why = judge_boot(&panic_case, &out(&["hello"]), End::Exited(101)).unwrap_err();
        assert!(why.contains("no line matches"), "{why}");
    }

    #[test]
    fn running_cases() {
        let case = BootCase {
            image: Image::Production,
            exit: Exit::Running,
            ktest: false,
            expect: &["Kestrel v"],
            ..ktest_case()
        };
        let ex = Expectations::new(&case).unwrap();
        assert!(ex.all_expected_seen(&out(&[BANNER4])));
        assert!(!ex.all_expected_seen(&out(&["booting"])));
        assert!(judge_boot(&case, &out(&[BANNER4]), End::Stopped).is_ok());
        let why = judge_boot(&case, &out(&[BANNER4]), End::Exited(0)).unwrap_err();
        assert!(why.contains("should keep running"), "{why}");

        let or_off = BootCase {
            exit: Exit::RunningOr(0),
            ..case
        };
        assert!(judge_boot(&or_off, &out(&[BANNER4]), End::Stopped).is_ok());
        assert!(judge_boot(&or_off, &out(&[BANNER4]), End::Exited(0)).is_ok());
        let why = judge_boot(&or_off, &out(&[BANNER4]), End::Exited(3)).unwrap_err();
        assert!(why.contains("keep running or exit with 0"), "{why}");
        // an early power-off does not excuse a missing banner
        assert!(judge_boot(&or_off, &out(&["hi"]), End::Exited(0)).is_err());
    }

    #[test]
    fn dt_verdicts() {
        let ok = DtCase {
            name: "d",
            tree: Tree::Rpi4,
            edit: Edit::None,
            ok: true,
            expect: &["GICv2"],
        };
        assert!(judge_dt(&ok, &out(&["machine: GICv2"]), End::Exited(0)).is_ok());
        assert!(judge_dt(&ok, &out(&["machine: GICv3"]), End::Exited(0)).is_err());
        let bad = DtCase {
            ok: false,
            expect: &[],
            ..ok
        };
        let err = |t: &str| Line {
            stream: Stream::Stderr,
            text: t.into(),
        };
        assert!(judge_dt(&bad, &[err("error: bad magic")], End::Exited(1)).is_ok());
        assert!(judge_dt(&bad, &[err("error: bad magic")], End::Exited(0)).is_err());
        assert!(judge_dt(&bad, &out(&["error: on stdout"]), End::Exited(1)).is_err());
        let why = judge_dt(
            &bad,
            &[err("thread 'main' panicked at hal/src/dt/mod.rs:1:1")],
            End::Signaled,
        )
        .unwrap_err();
        assert!(why.contains("panicked") && why.contains("signal"), "{why}");
    }

    #[test]
    fn edits() {
        let mut root = fdt::Node::new("");
        root.set_prop("#address-cells", fdt::cells(&[2]));
        let mut t = fdt::Node::new("timer");
        t.set_prop("compatible", b"arm,armv8-timer\0".to_vec());
        root.children.push(t);
        let good = Fdt {
            boot_cpuid_phys: 0,
            reserved: vec![],
            root,
        }
        .to_bytes();
        let no_timer = apply_edit(&good, Edit::Remove(fdt::Select::Compatible(crate::cases::TIMER))).unwrap();
        assert!(Fdt::parse(&no_timer).unwrap().root.children.is_empty());
        assert!(apply_edit(&good, Edit::Remove(fdt::Select::Path("/nope"))).is_err());
        let mut padded = good.clone();
        padded.resize(1 << 20, 0); // like QEMU's dumps
        padded[4..8].copy_from_slice(&(1u32 << 20).to_be_bytes());
        let nop = apply_edit(&padded, Edit::Nop(fdt::Select::Path("/timer"))).unwrap();
        assert_eq!(nop.len(), good.len(), "compacted");
        assert!(Fdt::parse(&nop).unwrap().root.children.is_empty());
        assert!(nop.windows(4).any(|w| w == [0, 0, 0, 4]), "FDT_NOP tokens");
        let cells = apply_edit(&good, Edit::RootAddressCells(1)).unwrap();
        assert_eq!(
            Fdt::parse(&cells).unwrap().root.prop("#address-cells").unwrap(),
            &[0, 0, 0, 1]
        );
        assert!(Fdt::parse(&apply_edit(&good, Edit::Truncate).unwrap()).is_err());
        assert!(Fdt::parse(&apply_edit(&good, Edit::BadMagic).unwrap()).is_err());
        assert!(apply_edit(&good, Edit::Empty).unwrap().is_empty());
    }

    #[test]
    fn quoting() {
        assert_eq!(
            shell_quote(["qemu", "-append", "ktest.crash=panic"]),
            "qemu -append ktest.crash=panic"
        );
        assert_eq!(shell_quote(["a b", "it's"]), r"'a b' 'it'\''s'");
    }
}
