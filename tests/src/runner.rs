//! Running one case (QEMU boot, or `xtask dt` on a tree) and judging it.

use crate::cases::{Boot, BootCase, Companion, DtCase, Dtb, Edit, Exit, Image, Peer, Tree, HTTP_PEER_TEXT};
use crate::console::{find_banner, parse_ktest, FATAL_MARKERS};
use crate::fdt::{self, Fdt};
use crate::process::{self, Captured, End, Line, Stream};
use crate::qemu::{Console, Machine};
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
    /// How each device profile boots (`Boot::Profile` cases).
    pub profiles: Vec<ProfileBoot>,
}

/// A device profile's images and machine, from the build tool (which reads
/// profiles/NAME.toml and builds images with the profile's archive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileBoot {
    pub name: String,
    /// The production image with the profile's boot archive.
    pub image: PathBuf,
    /// The test image with the profile's boot archive and the test
    /// programs (cases that name the profile in `BootCase::profile`).
    pub test_image: PathBuf,
    /// The QEMU options of the profile's `[qemu]` table (machine, CPUs,
    /// memory, devices, the disk image, `-dtb`): no console, image or bootargs.
    pub args: Vec<OsString>,
    /// The disk image named in `args`, if any: each case boots a fresh one
    /// of its own of the same size instead (QEMU locks a disk image, and
    /// several cases may boot one profile at once).
    pub disk: Option<PathBuf>,
    /// Why the images or the options could not be made.
    pub error: Option<String>,
    /// Built with the test group file (`BootCase::group`).
    pub group: bool,
}

impl Env {
    /// How profile `name` boots, with or without the test group file.
    pub fn profile(&self, name: &str, group: bool) -> Option<&ProfileBoot> {
        self.profiles.iter().find(|p| p.name == name && p.group == group)
    }
}

/// The image a (not `Boot::Profile`) case boots: the default profile's, or
/// that of the profile it names.
pub fn case_image<'e>(case: &BootCase, env: &'e Env) -> Result<&'e PathBuf, String> {
    let Some(name) = case.profile else {
        return Ok(match case.image {
            Image::Test => &env.test_image,
            Image::Production => &env.prod_image,
        });
    };
    let p = env
        .profile(name, case.group)
        .ok_or_else(|| format!("profile {name}: the build tool did not prepare it (no profiles/{name}.toml?)"))?;
    if let Some(e) = &p.error {
        return Err(format!("profile {name}: {e}"));
    }
    Ok(match case.image {
        Image::Test => &p.test_image,
        Image::Production => &p.image,
    })
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
                "    ---- console log ({} lines; `!` = stderr, `>` = typed) ----\n",
                self.log.len()
            ));
            for l in &self.log {
                s.push_str(&format!("    {} {}\n", l.stream.mark(), l.text));
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
    let mut a: Vec<OsString> = case.qemu_machine().args().into_iter().map(OsString::from).collect();
    if case.semihosting {
        a.push("-semihosting".into());
    }
    a.extend(Console::Stdio.args().map(OsString::from));
    a.extend(["-kernel".into(), image.into()]);
    if let Some(d) = dtb {
        a.extend(["-dtb".into(), d.into()]);
    }
    if let Some(app) = case.append {
        a.extend(["-append".into(), app.into()]);
    }
    a.extend(case.qemu_args.iter().map(OsString::from));
    a
}

/// QEMU arguments of a device-profile case (without the program): the
/// profile's options, the console on stdio, `-no-reboot` (a reboot ends the
/// run instead of booting again) unless the case reboots
/// ([`BootCase::reboot`]), the image, the case's bootargs.
pub fn profile_qemu_args(case: &BootCase, p: &ProfileBoot) -> Vec<OsString> {
    let mut a = p.args.clone();
    if case.semihosting {
        a.push("-semihosting".into());
    }
    a.extend(Console::Stdio.args().map(OsString::from));
    if !case.reboot {
        a.push("-no-reboot".into());
    }
    a.extend(["-kernel".into(), p.image.clone().into()]);
    if let Some(app) = case.append {
        a.extend(["-append".into(), app.into()]);
    }
    a.extend(case.qemu_args.iter().map(OsString::from));
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
    c.args(Machine { machine, cpu, smp, mem }.args())
        .arg("-machine")
        .arg(format!("dumpdtb={}", out.display()))
        .args(Console::Null.args());
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
    c.args(
        Machine {
            machine: "raspi4b",
            ..Default::default()
        }
        .args(),
    )
    .arg("-machine")
    .arg(format!("dumpdtb={}", out.display()))
    .arg("-dtb")
    .arg(&env.rpi4_dtb)
    .arg("-kernel")
    .arg(&dummy)
    .args(Console::Null.args());
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
        Edit::SetProp(path, name, value) => {
            let mut t = Fdt::parse(blob)?;
            t.set_prop(path, name, fdt::cells(value))?;
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

    /// (Only output counts, not the scripted input.)
    pub fn all_expected_seen(&self, lines: &[Line]) -> bool {
        self.expect
            .iter()
            .all(|re| lines.iter().any(|l| l.is_output() && re.is_match(&l.text)))
    }

    pub fn first_forbidden<'a>(&self, lines: &'a [Line]) -> Option<&'a Line> {
        lines
            .iter()
            .find(|l| l.is_output() && self.forbid.iter().any(|re| re.is_match(&l.text)))
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
        if !lines.iter().any(|l| l.is_output() && re.is_match(&l.text)) {
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

/// The QEMU arguments of a boot case and the command line to show, or
/// (command, why it cannot run).
fn boot_command(case: &BootCase, env: &Env) -> Result<(Vec<OsString>, String), (String, String)> {
    let shown_args =
        |a: &[OsString]| shell_quote(std::iter::once(env.qemu.clone().into_os_string()).chain(a.iter().cloned()));
    if let Boot::Profile(name) = case.boot {
        let Some(p) = env.profile(name, case.group) else {
            return Err((
                String::new(),
                format!("profile {name}: the build tool did not prepare it (no profiles/{name}.toml?)"),
            ));
        };
        let args = profile_qemu_args(case, p);
        let command = shown_args(&args);
        if let Some(e) = &p.error {
            return Err((command, format!("profile {name}: {e}")));
        }
        if !p.image.is_file() {
            return Err((
                command,
                format!("{} does not exist (build it first)", p.image.display()),
            ));
        }
        let args = own_disk(p, env, case.name, case.disk_setup, args).map_err(|e| (command, e))?;
        let command = shown_args(&args);
        return Ok((args, command));
    }
    let image = case_image(case, env).map_err(|e| (String::new(), e))?;
    let shown = |dtb: Option<&Path>| shown_args(&qemu_args(case, image, dtb));
    let dtb = match prepare_boot_dtb(case, env) {
        Ok(d) => d,
        Err(e) => return Err((shown(None), format!("preparing the device tree: {e}"))),
    };
    let args = qemu_args(case, image, dtb.as_deref());
    let command = shown(dtb.as_deref());
    if !image.is_file() {
        return Err((command, format!("{} does not exist (build it first)", image.display())));
    }
    // Through firmware or from a boot medium (made by the build tool).
    match crate::media::prepare(case, env, image) {
        Ok(None) => Ok((args, command)),
        Ok(Some(a)) => {
            let c = shown_args(&a);
            Ok((a, c))
        }
        Err(e) => Err((command, format!("preparing the boot medium: {e}"))),
    }
}

/// A profile's arguments with its disk image replaced by a copy of the
/// profile's fresh disk (formatted as `cargo xtask run` makes it) named
/// `own` (the work directory's `disks/OWN.img`, see `case_disk`), so that
/// cases do not share one (QEMU locks a disk image); `setup` (the case's
/// [`BootCase::disk_setup`]) then adds to the copy.
fn own_disk(
    p: &ProfileBoot,
    env: &Env,
    own: &str,
    setup: Option<crate::cases::DiskSetup>,
    args: Vec<OsString>,
) -> Result<Vec<OsString>, String> {
    let Some(disk) = &p.disk else {
        return Ok(args);
    };
    let own = env.work_dir.join("disks").join(format!("{own}.img"));
    let made = std::fs::create_dir_all(own.parent().unwrap_or(&env.work_dir))
        .and_then(|()| std::fs::copy(disk, &own).map(drop));
    if let Err(e) = made {
        return Err(format!("{}: {e}", own.display()));
    }
    if let Some(setup) = setup {
        setup(&own).map_err(|e| format!("disk set-up: {e}"))?;
    }
    let (from, to) = (disk.to_string_lossy(), own.to_string_lossy());
    Ok(args
        .into_iter()
        .map(|a| a.to_string_lossy().replace(&*from, &to).into())
        .collect())
}

/// The QEMU arguments of one of a case's companions (without the program):
/// its profile's options with a disk of its own (named by its label), the console on stdio,
/// `-no-reboot`, the image, then the companion's `qemu_args`.
fn companion_args(case: &BootCase, c: &Companion, env: &Env) -> Result<Vec<OsString>, String> {
    let Some(p) = env.profile(c.profile, case.group) else {
        return Err(format!(
            "companion profile {}: the build tool did not prepare it",
            c.profile
        ));
    };
    if let Some(e) = &p.error {
        return Err(format!("companion profile {}: {e}", c.profile));
    }
    if !p.image.is_file() {
        return Err(format!("{} does not exist (build it first)", p.image.display()));
    }
    let mut a = own_disk(p, env, &format!("{}-{}", case.name, c.label), None, p.args.clone())?;
    a.extend(Console::Stdio.args().map(OsString::from));
    a.push("-no-reboot".into());
    a.extend(["-kernel".into(), p.image.clone().into()]);
    a.extend(c.qemu_args.iter().map(OsString::from));
    Ok(a)
}

/// A `-netdev` value for one run's private link (`@LINK@`): a socket
/// netdev on a loopback multicast group and port no other run picks (the
/// port is a free UDP port of this host; the group comes from this
/// process, the time and the case).
fn link_netdev(case: &str) -> std::io::Result<String> {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let h = case.bytes().fold(t ^ u64::from(std::process::id()), |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    Ok(format!(
        "socket,id=n0,mcast=239.255.{}.{}:{port},localaddr=127.0.0.1",
        (h >> 8) as u8,
        (h as u8).max(1)
    ))
}

/// Why a case's scripted input is incomplete, if it is.
pub fn judge_input(case: &BootCase, sent: usize) -> Option<String> {
    let step = case.input.get(sent)?;
    Some(format!(
        "the console never showed {:?}, so input step {} of {} ({:?}) was not sent",
        step.after,
        sent + 1,
        case.input.len(),
        step.send
    ))
}

/// Why a case's companions' input is incomplete, if it is: the first
/// companion's whose is (`sent`: how many steps of each were sent).
pub fn judge_companions(case: &BootCase, sent: &[usize]) -> Option<String> {
    case.companions.iter().enumerate().find_map(|(i, c)| {
        let sent = sent.get(i).copied().unwrap_or(0);
        let step = c.input.get(sent)?;
        Some(format!(
            "the {} console never showed {:?}, so its input step {} of {} ({:?}) was not sent",
            c.label,
            step.after,
            sent + 1,
            c.input.len(),
            step.send
        ))
    })
}

/// Why a case's companions cannot be told apart, if they cannot: two with
/// one label (their log prefix and disk image).
pub fn check_companions(case: &BootCase) -> Result<(), String> {
    let labels = case.companions.iter().map(|c| c.label);
    for (i, l) in labels.clone().enumerate() {
        if l.is_empty() || labels.clone().skip(i + 1).any(|m| m == l) {
            return Err(format!(
                "companion label {l:?}: empty or given twice (the labels name the machines)"
            ));
        }
    }
    Ok(())
}

/// Why a case's monitor commands are incomplete, if they are.
pub fn judge_monitor(case: &BootCase, sent: usize) -> Option<String> {
    let step = case.monitor.get(sent)?;
    Some(format!(
        "the console never showed {:?}, so monitor command {} of {} ({:?}) was not typed",
        step.after,
        sent + 1,
        case.monitor.len(),
        step.send
    ))
}

/// The log lines after a monitor command: for `screendump FILE`, the
/// picture's size and the colours down its middle column, top to bottom,
/// as runs (`ff0000 x292, ...`; at most 12), then a second line with the
/// whole picture's most common colours and their pixel counts
/// (`harness: screen colours: 101820 520000, ...`; at most 8), so that a
/// case can check what the guest displayed.
///
/// `pixels FILE X,Y ...` (a harness command, not QEMU's) reports the
/// colours at those points of a screendump taken before:
/// `harness: pixels X,Y rrggbb, ...`; `region FILE X,Y,W,H` reports the
/// most common colours of that rectangle, as `screen colours` does for the
/// whole picture: `harness: region X,Y,W,H: rrggbb COUNT, ...`.
pub fn screen_report(command: &str) -> Option<String> {
    if let Some(rest) = command.trim().strip_prefix("pixels ") {
        return Some(pixels_report(rest));
    }
    if let Some(rest) = command.trim().strip_prefix("region ") {
        return Some(region_report(rest));
    }
    let file = command.trim().strip_prefix("screendump ")?.trim();
    let bytes = std::fs::read(file).map_err(|e| e.to_string());
    let summary = bytes
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|b| ppm_column_runs(b).ok_or_else(|| "not a binary PPM".into()));
    Some(match summary {
        Ok(s) => {
            // A PNG next to it, for a person to look at.
            if let Some(png) = bytes.as_ref().ok().and_then(|b| crate::png::ppm_to_png(b)) {
                let _ = std::fs::write(std::path::Path::new(file).with_extension("png"), png);
            }
            let colours = bytes.ok().and_then(|b| ppm_colours(&b)).unwrap_or_default();
            format!("harness: screendump {s}\nharness: screen colours: {colours}")
        }
        Err(e) => format!("harness: screendump {file}: {e}"),
    })
}

/// `FILE X,Y ...` -> `harness: pixels X,Y rrggbb, ...` (`outside` past
/// the picture's edge), or the error.
fn pixels_report(args: &str) -> String {
    let mut words = args.split_whitespace();
    let file = words.next().unwrap_or("");
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => return format!("harness: pixels {file}: {e}"),
    };
    let Some((w, h, px)) = ppm_pixels(&bytes) else {
        return format!("harness: pixels {file}: not a binary PPM");
    };
    let mut out = Vec::new();
    for point in words {
        let xy = point
            .split_once(',')
            .and_then(|(x, y)| Some((x.parse::<usize>().ok()?, y.parse::<usize>().ok()?)));
        out.push(match xy {
            Some((x, y)) if x < w && y < h => {
                let p = &px[(y * w + x) * 3..][..3];
                format!("{point} {:02x}{:02x}{:02x}", p[0], p[1], p[2])
            }
            Some(_) => format!("{point} outside"),
            None => format!("{point} not X,Y"),
        });
    }
    format!("harness: pixels {}", out.join(", "))
}

/// `FILE X,Y,W,H` -> `harness: region X,Y,W,H: rrggbb COUNT, ...` (the
/// rectangle cut to the picture), or the error.
fn region_report(args: &str) -> String {
    let (file, rect) = args.trim().rsplit_once(' ').unwrap_or((args, ""));
    let bytes = match std::fs::read(file.trim()) {
        Ok(b) => b,
        Err(e) => return format!("harness: region {file}: {e}"),
    };
    let Some((w, h, px)) = ppm_pixels(&bytes) else {
        return format!("harness: region {file}: not a binary PPM");
    };
    let r: Vec<usize> = rect.split(',').filter_map(|v| v.trim().parse().ok()).collect();
    let [x, y, rw, rh] = r[..] else {
        return format!("harness: region {rect}: not X,Y,W,H");
    };
    let (x1, y1) = ((x + rw).min(w), (y + rh).min(h));
    let rows = (y.min(y1)..y1).flat_map(|row| px[(row * w + x.min(x1)) * 3..(row * w + x1) * 3].chunks_exact(3));
    format!("harness: region {rect}: {}", colour_counts(rows))
}

/// Width, height and pixels (3 bytes each, rows `3 * width` apart) of a
/// binary PPM (P6, maxval 255).
///
/// QEMU's `screendump` (10.0, `ppm_save`) writes each row with its line
/// buffer's stride, `3 * width` rounded up to 4 bytes, not `3 * width` as
/// the format says: a picture whose width is not a multiple of 4 (the
/// watch's 454) would read sheared, its colour bytes rotated. Such a file
/// (exactly that padded size) is read with the padding dropped.
pub fn ppm_pixels(ppm: &[u8]) -> Option<(usize, usize, std::borrow::Cow<'_, [u8]>)> {
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while ppm.get(at)?.is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !ppm.get(at)?.is_ascii_whitespace() {
            at += 1;
        }
        fields.push(std::str::from_utf8(&ppm[start..at]).ok()?);
    }
    let (w, h): (usize, usize) = (fields[1].parse().ok()?, fields[2].parse().ok()?);
    if fields[0] != "P6" || fields[3] != "255" || w == 0 {
        return None;
    }
    let data = ppm.get(at + 1..)?;
    let (row, padded) = (w * 3, (w * 3).next_multiple_of(4));
    if padded != row && data.len() == padded * h {
        let rows = data.chunks_exact(padded).flat_map(|r| &r[..row]);
        return Some((w, h, std::borrow::Cow::Owned(rows.copied().collect())));
    }
    Some((w, h, std::borrow::Cow::Borrowed(data.get(..row * h)?)))
}

/// The picture's 8 most common colours: `rrggbb COUNT, ...`, most first.
pub fn ppm_colours(ppm: &[u8]) -> Option<String> {
    let (_, _, pixels) = ppm_pixels(ppm)?;
    Some(colour_counts(pixels.chunks_exact(3)))
}

/// The 8 most common of `pixels` (3 bytes each): `rrggbb COUNT, ...`.
fn colour_counts<'a>(pixels: impl Iterator<Item = &'a [u8]>) -> String {
    let mut counts = std::collections::HashMap::<u32, usize>::new();
    for p in pixels {
        *counts.entry(u32::from_be_bytes([0, p[0], p[1], p[2]])).or_default() += 1;
    }
    let mut v: Vec<(u32, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.iter()
        .take(8)
        .map(|(c, n)| format!("{c:06x} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `WxH, column X: rrggbb xN, ...` of a binary PPM (P6, maxval 255).
pub fn ppm_column_runs(ppm: &[u8]) -> Option<String> {
    // Header: magic, width, height, maxval, separated by whitespace (no comments:
    // QEMU writes none), then one whitespace byte and the pixels.
    let (w, h, pixels) = ppm_pixels(ppm)?;
    let x = w / 2;
    let mut runs: Vec<(u32, usize)> = Vec::new();
    for y in 0..h {
        let p = &pixels[(y * w + x) * 3..][..3];
        let rgb = u32::from_be_bytes([0, p[0], p[1], p[2]]);
        match runs.last_mut() {
            Some((c, n)) if *c == rgb => *n += 1,
            _ => runs.push((rgb, 1)),
        }
    }
    let mut text: Vec<String> = runs.iter().take(12).map(|(c, n)| format!("{c:06x} x{n}")).collect();
    if runs.len() > 12 {
        text.push("...".into());
    }
    Some(format!("{w}x{h}, column {x}: {}", text.join(", ")))
}

/// The case's own disk image: the SD card it booted from (made by the
/// build tool, see [`crate::media::sd_card`]), or the `@DISK@` image.
fn case_disk(case: &BootCase, env: &Env) -> PathBuf {
    if case.boot == crate::cases::Boot::RpiSdCard {
        return crate::media::sd_card(&env.work_dir.join("media"), case);
    }
    env.work_dir.join("disks").join(format!("{}.img", case.name))
}

/// Makes the case's disk image, fresh, if its QEMU arguments name one
/// (`@DISK@`, see [`BootCase::qemu_args`]), and puts its path in.
fn with_disk(
    case: &BootCase,
    env: &Env,
    args: Vec<OsString>,
    command: String,
) -> Result<(Vec<OsString>, String), (String, String)> {
    if !args.iter().any(|a| a.to_string_lossy().contains("@DISK@")) {
        return Ok((args, command));
    }
    let disk = case_disk(case, env);
    let made = disk
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::File::create(&disk))
        .and_then(|f| f.set_len(case.disk_bytes));
    if let Err(e) = made {
        return Err((command, format!("{}: {e}", disk.display())));
    }
    if let Some(setup) = case.disk_setup {
        setup(&disk).map_err(|e| (command.clone(), format!("disk set-up: {e}")))?;
    }
    let path = disk.to_string_lossy().into_owned();
    let args = args
        .into_iter()
        .map(|a| a.to_string_lossy().replace("@DISK@", &path).into())
        .collect();
    Ok((args, command.replace("@DISK@", &path)))
}

/// A free TCP port on 127.0.0.1 (free when asked; nothing holds it).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A host program started for a case; killed when dropped.
struct PeerProcess(std::process::Child);

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The ports the placeholders of [`crate::cases::Peer`] stand for, and
/// the peer process, started and accepting connections.
struct Ports {
    http: u16,
    fwd: u16,
    /// The `-netdev` value `@LINK@` stands for.
    link: String,
    _peer: Option<PeerProcess>,
}

impl Ports {
    fn fill(&self, text: &str) -> String {
        text.replace("@HTTP_PORT@", &self.http.to_string())
            .replace("@FWD_PORT@", &self.fwd.to_string())
            .replace("@LINK@", &self.link)
            .replace("@TESTS@", env!("CARGO_MANIFEST_DIR"))
    }
}

fn start_peer(case: &BootCase, env: &Env) -> Result<Ports, String> {
    let fwd = free_port().map_err(|e| format!("no free port: {e}"))?;
    let link = link_netdev(case.name).map_err(|e| format!("no free UDP port: {e}"))?;
    let Some(Peer::HttpServer) = case.peer else {
        return Ok(Ports {
            http: 0,
            fwd,
            link,
            _peer: None,
        });
    };
    let dir = env.work_dir.join("peers").join(case.name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::write(dir.join("hello.txt"), format!("{HTTP_PEER_TEXT}\n"))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let http = free_port().map_err(|e| format!("no free port: {e}"))?;
    let child = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &http.to_string(),
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("python3 -m http.server (install python3): {e}"))?;
    let peer = PeerProcess(child);
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", http)).is_err() {
        if std::time::Instant::now() >= until {
            return Err(format!("python3 -m http.server never listened on 127.0.0.1:{http}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Ports {
        http,
        fwd,
        link,
        _peer: Some(peer),
    })
}

/// Boots one case in QEMU and judges it.
pub fn run_boot(case: &BootCase, env: &Env) -> Outcome {
    let (args, command) = match boot_command(case, env).and_then(|(a, c)| with_disk(case, env, a, c)) {
        Ok(x) => x,
        Err((command, why)) => return Outcome::error(command, why),
    };
    if case.power_cuts > 0 {
        let start = std::time::Instant::now();
        let (verdict, log) = crate::powercut::run(case, &env.qemu, &args, &case_disk(case, env), |lines, end| {
            judge_boot(case, lines, end)
        });
        return Outcome {
            passed: verdict.is_ok(),
            elapsed: start.elapsed(),
            summary: verdict.clone().unwrap_or_default(),
            reason: verdict.err().unwrap_or_default(),
            command,
            log,
        };
    }
    let ports = match start_peer(case, env) {
        Ok(p) => p,
        Err(why) => return Outcome::error(command, why),
    };
    let args: Vec<OsString> = args.iter().map(|a| ports.fill(&a.to_string_lossy()).into()).collect();
    let command = ports.fill(&command);
    let ex = match Expectations::new(case) {
        Ok(e) => e,
        Err(e) => return Outcome::error(command, e),
    };
    // A monitor on a unix socket for the case's monitor commands.
    let (mut args, mut command) = (args, command);
    let socket = env.work_dir.join("monitor").join(format!("{}.sock", case.name));
    let screen = socket.with_extension("ppm");
    // Named screenshots a case keeps (`screendump @SCREENS@/NAME.ppm`; a
    // PNG is written next to each).
    let screens = env.work_dir.join("screens");
    let _ = std::fs::create_dir_all(&screens);
    if !case.monitor.is_empty() {
        let _ = std::fs::create_dir_all(env.work_dir.join("monitor"));
        let _ = std::fs::remove_file(&socket);
        let _ = std::fs::remove_file(&screen);
        let qmp = socket.with_extension("qmp");
        let _ = std::fs::remove_file(&qmp);
        let more = [
            "-chardev".into(),
            format!("socket,id=harness-mon,path={},server=on,wait=off", socket.display()),
            "-mon".into(),
            "chardev=harness-mon,mode=readline".into(),
            // Input steps (`input WxH STEPS`) go through QMP.
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", qmp.display()),
        ];
        command = format!("{command} {}", shell_quote(&more));
        args.extend(more.map(OsString::from));
    }
    let monitor_sends: Vec<String> = case
        .monitor
        .iter()
        .map(|i| {
            i.send
                .replace("@SCREEN@", &screen.to_string_lossy())
                .replace("@SCREENS@", &screens.to_string_lossy())
        })
        .collect();
    let monitor_script: Vec<process::Step> = case
        .monitor
        .iter()
        .zip(&monitor_sends)
        .map(|(i, send)| process::Step { after: i.after, send })
        .collect();
    let report = |c: &str| screen_report(c);
    let monitor = (!case.monitor.is_empty()).then(|| process::Monitor {
        socket: socket.clone(),
        script: &monitor_script,
        report: &report,
    });
    let mut cmd = Command::new(&env.qemu);
    cmd.args(&args);
    let running = matches!(case.exit, Exit::Running | Exit::RunningOr(_));
    let done = |lines: &[Line]| {
        ex.first_forbidden(lines).is_some()
            || (running && ex.all_expected_seen(lines) && (case.banner.is_none() || find_banner(lines).is_some()))
    };
    let sends: Vec<String> = case.input.iter().map(|i| ports.fill(i.send)).collect();
    let script: Vec<process::Step> = case
        .input
        .iter()
        .zip(&sends)
        .map(|(i, send)| process::Step { after: i.after, send })
        .collect();
    let host_sends: Vec<String> = case.host.iter().map(|i| ports.fill(i.send)).collect();
    let host_script: Vec<process::Step> = case
        .host
        .iter()
        .zip(&host_sends)
        .map(|(i, send)| process::Step { after: i.after, send })
        .collect();
    let host = (!case.host.is_empty()).then_some(process::HostScript { script: &host_script });
    if let Err(why) = check_companions(case) {
        return Outcome::error(command, why);
    }
    let peer_sends: Vec<Vec<String>> = case
        .companions
        .iter()
        .map(|c| c.input.iter().map(|i| ports.fill(i.send)).collect())
        .collect();
    let peer_scripts: Vec<Vec<process::Step>> = case
        .companions
        .iter()
        .zip(&peer_sends)
        .map(|(c, sends)| {
            c.input
                .iter()
                .zip(sends)
                .map(|(i, send)| process::Step { after: i.after, send })
                .collect()
        })
        .collect();
    let mut companions = Vec::new();
    for (c, script) in case.companions.iter().zip(&peer_scripts) {
        let args: Vec<OsString> = match companion_args(case, c, env) {
            Ok(a) => a.iter().map(|a| ports.fill(&a.to_string_lossy()).into()).collect(),
            Err(why) => return Outcome::error(command, why),
        };
        command = format!(
            "{command}\n[{}] {}",
            c.label,
            shell_quote(std::iter::once(env.qemu.clone().into_os_string()).chain(args.iter().cloned()))
        );
        let mut cmd = Command::new(&env.qemu);
        cmd.args(&args);
        companions.push(process::Companion {
            cmd,
            script,
            prefix: format!("[{}] ", c.label),
        });
    }
    match process::run_with_monitor(
        cmd,
        Duration::from_secs(case.timeout_s),
        GRACE,
        &script,
        monitor,
        host,
        companions,
        done,
    ) {
        Err(e) => Outcome::error(command, format!("could not start {}: {e}", env.qemu.display())),
        Ok(Captured {
            lines,
            end,
            elapsed,
            sent,
            monitor_sent,
            peer_sent,
            ..
        }) => {
            let incomplete = judge_input(case, sent)
                .or_else(|| judge_monitor(case, monitor_sent))
                .or_else(|| judge_companions(case, &peer_sent));
            let mut verdict = match (judge_boot(case, &lines, end), incomplete) {
                (v, None) => v,
                (Ok(_), Some(why)) => Err(why),
                (Err(e), Some(why)) => Err(format!("{why}; {e}")),
            };
            // What the guest left on its disk, checked by host tools.
            if let (Ok(summary), Some(check)) = (&verdict, case.disk_check) {
                verdict = match check(&case_disk(case, env)) {
                    Ok(more) => Ok(format!("{summary}, {more}")),
                    Err(e) => Err(format!("disk check: {e}")),
                };
            }
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
        Ok(Captured {
            lines, end, elapsed, ..
        }) => {
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
    fn profile_cases() {
        use crate::cases::Input;
        let case = BootCase {
            name: "profile-x",
            image: Image::Production,
            boot: Boot::Profile("x"),
            semihosting: false,
            append: Some("init.verbose"),
            input: &[
                Input {
                    after: "kestrel> ",
                    send: "help\n",
                },
                Input {
                    after: "kestrel> ",
                    send: "poweroff\n",
                },
            ],
            ..KTEST
        };
        let p = ProfileBoot {
            name: "x".into(),
            image: "/k/kernel-x.img".into(),
            test_image: "/k/kernel-test-x.img".into(),
            args: ["-M", "virt", "-smp", "2", "-device", "virtio-rng-device"]
                .map(OsString::from)
                .to_vec(),
            disk: None,
            error: None,
            group: true,
        };
        assert_eq!(
            shell_quote(profile_qemu_args(&case, &p)),
            "-M virt -smp 2 -device virtio-rng-device -display none -serial stdio -no-reboot -kernel /k/kernel-x.img -append init.verbose"
        );
        // A case that reboots boots again on the same disk.
        let again = BootCase { reboot: true, ..case };
        assert_eq!(
            shell_quote(profile_qemu_args(&again, &p)),
            "-M virt -smp 2 -device virtio-rng-device -display none -serial stdio -kernel /k/kernel-x.img -append init.verbose"
        );
        assert_eq!(judge_input(&case, 2), None);
        let why = judge_input(&case, 1).unwrap();
        assert!(
            why.contains("\"kestrel> \"") && why.contains("step 2 of 2") && why.contains("poweroff"),
            "{why}"
        );

        let env = |profiles: Vec<ProfileBoot>| Env {
            qemu: "qemu".into(),
            test_image: "t".into(),
            prod_image: "p".into(),
            rpi4_dtb: "d".into(),
            work_dir: "w".into(),
            dt_command: vec![],
            media: None,
            profiles,
        };
        let o = run_boot(&case, &env(vec![]));
        assert!(!o.passed && o.reason.contains("did not prepare it"), "{}", o.reason);
        let broken = ProfileBoot {
            error: Some("no profiles/x.toml".into()),
            ..p.clone()
        };
        let o = run_boot(&case, &env(vec![broken]));
        assert!(o.reason.contains("profile x: no profiles/x.toml"), "{}", o.reason);
        assert!(o.command.starts_with("qemu -M virt"), "{}", o.command);
        let o = run_boot(&case, &env(vec![p.clone()]));
        assert!(o.reason.contains("kernel-x.img does not exist"), "{}", o.reason);

        // A direct boot of a profile's test image.
        let direct = BootCase {
            profile: Some("x"),
            ..KTEST
        };
        assert_eq!(
            case_image(&direct, &env(vec![p.clone()])).unwrap(),
            Path::new("/k/kernel-test-x.img")
        );
        assert_eq!(case_image(&KTEST, &env(vec![p.clone()])).unwrap(), Path::new("t"));
        assert!(case_image(&direct, &env(vec![]))
            .unwrap_err()
            .contains("did not prepare"));
        let o = run_boot(&direct, &env(vec![p]));
        assert!(o.reason.contains("kernel-test-x.img does not exist"), "{}", o.reason);
    }

    #[test]
    fn typed_lines_are_not_output() {
        let case = BootCase {
            expect: &["^help$"],
            forbid: &["poweroff"],
            ktest: false,
            exit: Exit::RunningOr(0),
            ..KTEST
        };
        let typed = |t: &str| Line {
            stream: Stream::Stdin,
            text: t.into(),
        };
        let ex = Expectations::new(&case).unwrap();
        assert!(!ex.all_expected_seen(&[typed("help")]));
        assert!(ex.first_forbidden(&[typed("poweroff")]).is_none());
        assert!(judge_boot(&case, &[typed("help")], End::Stopped).is_err());
        assert!(judge_boot(&case, &[typed("poweroff"), Line::out("help")], End::Stopped).is_ok());
    }

    #[test]
    fn quoting() {
        assert_eq!(
            shell_quote(["qemu", "-append", "ktest.crash=panic"]),
            "qemu -append ktest.crash=panic"
        );
        assert_eq!(shell_quote(["a b", "it's"]), r"'a b' 'it'\''s'");
    }

    /// QEMU's screendump pads each row to 4 bytes (a 454-pixel watch
    /// screen: 1,364 bytes a row, not 1,362); read as the format says, the
    /// second row would start 2 bytes early, its colours rotated.
    #[test]
    fn screendump_with_padded_rows() {
        let (w, h) = (2usize, 3usize);
        let mut ppm = format!("P6\n{w} {h}\n255\n").into_bytes();
        for y in 0..h {
            for _ in 0..w {
                ppm.extend_from_slice(if y == 0 { &[0xff, 0, 0] } else { &[0x10, 0x20, 0x30] });
            }
            ppm.extend_from_slice(&[0xee, 0xee]);
        }
        assert_eq!(ppm_column_runs(&ppm).unwrap(), "2x3, column 1: ff0000 x1, 102030 x2");
        assert_eq!(ppm_colours(&ppm).unwrap(), "102030 4, ff0000 2");
        // Unpadded, the same picture reads the same.
        let mut plain = format!("P6\n{w} {h}\n255\n").into_bytes();
        plain.extend_from_slice(&[0xff, 0, 0, 0xff, 0, 0]);
        plain.extend_from_slice(&[0x10, 0x20, 0x30].repeat(4));
        assert_eq!(ppm_colours(&plain).unwrap(), "102030 4, ff0000 2");
    }

    #[test]
    fn screendump_reports() {
        let (w, h) = (4usize, 6usize);
        let mut ppm = format!("P6\n{w} {h}\n255\n").into_bytes();
        for y in 0..h {
            for _ in 0..w {
                ppm.extend_from_slice(if y < 2 { &[0xff, 0, 0] } else { &[0x10, 0x20, 0x30] });
            }
        }
        assert_eq!(ppm_column_runs(&ppm).unwrap(), "4x6, column 2: ff0000 x2, 102030 x4");
        assert_eq!(ppm_colours(&ppm).unwrap(), "102030 16, ff0000 8");
        let file = std::env::temp_dir().join(format!("harness-screen-{}.ppm", std::process::id()));
        std::fs::write(&file, &ppm).unwrap();
        let r = screen_report(&format!("screendump {}", file.display())).unwrap();
        let _ = std::fs::remove_file(&file);
        assert_eq!(
            r,
            "harness: screendump 4x6, column 2: ff0000 x2, 102030 x4\nharness: screen colours: 102030 16, ff0000 8"
        );
        assert_eq!(ppm_column_runs(&ppm[..ppm.len() - 1]), None, "short");
        assert_eq!(ppm_column_runs(b"P3\n1 1\n255\n000"), None);
        assert_eq!(ppm_column_runs(b""), None);
        let pf = std::env::temp_dir().join(format!("harness-pixels-{}.ppm", std::process::id()));
        std::fs::write(&pf, &ppm).unwrap();
        let r = screen_report(&format!("pixels {} 2,0 2,5 9,9 x", pf.display())).unwrap();
        assert_eq!(r, "harness: pixels 2,0 ff0000, 2,5 102030, 9,9 outside, x not X,Y");
        // A region across the colour edge, one cut by the picture's edge,
        // one outside it, and a malformed one.
        let region = |r: &str| screen_report(&format!("region {} {r}", pf.display())).unwrap();
        assert_eq!(region("1,1,2,2"), "harness: region 1,1,2,2: 102030 2, ff0000 2");
        assert_eq!(region("3,4,10,10"), "harness: region 3,4,10,10: 102030 2");
        assert_eq!(region("9,9,2,2"), "harness: region 9,9,2,2: ");
        assert_eq!(region("1,1,2"), "harness: region 1,1,2: not X,Y,W,H");
        let _ = std::fs::remove_file(&pf);
        assert_eq!(screen_report("sendkey a"), None);
        let r = screen_report("screendump /nonexistent/x.ppm").unwrap();
        assert!(r.starts_with("harness: screendump /nonexistent/x.ppm: "), "{r}");
    }
}
