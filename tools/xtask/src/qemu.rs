//! `cargo xtask run`: boot a device profile's image on QEMU, as its
//! `[qemu]` table says, with the console on the terminal.

use crate::build;
use crate::profile::{Card, Profile};
use crate::sdimage;
use crate::util::{self, Result};
use crate::{bail, note};
use std::path::{Path, PathBuf};
use std::process::Command;

pub use harness::qemu::PROGRAM as QEMU;
use harness::qemu::{Console, Machine};

/// The machine of the firmware boots (`run --uefi|--uboot`, before the
/// firmware options); `run` itself boots the profile's machine.
pub const FIRMWARE_MACHINE: Machine<'static> = Machine {
    machine: "virt,gic-version=3,virtualization=on",
    cpu: Some("cortex-a72"),
    smp: Some(4),
    mem: Some("2G"),
};

/// The firmware boots' options before their firmware and disk: the
/// machine, the console on this terminal.
pub fn firmware_defaults(machine: &str) -> Vec<String> {
    let mut a = Machine {
        machine,
        ..FIRMWARE_MACHINE
    }
    .args();
    a.extend(Console::Terminal.args().map(String::from));
    a
}

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

/// Options that add something (a device, a drive, a setting) rather than
/// set a value: user options of these names come on top of the defaults'.
const ADDITIVE: &[&str] = &[
    "-device",
    "-drive",
    "-blockdev",
    "-global",
    "-netdev",
    "-nic",
    "-object",
    "-chardev",
    "-audiodev",
    "-fw_cfg",
];

/// Option name without aliases: `--machine`/`-machine` -> `-M`, `--m` -> `-m`.
fn canonical(opt: &str) -> String {
    let single = if opt.starts_with("--") { &opt[1..] } else { opt };
    match single {
        "-machine" => "-M".to_string(),
        s => s.to_string(),
    }
}

/// Defaults overridden by user options of the same name (but devices,
/// drives and the like add up, see [`ADDITIVE`]); user options last.
pub fn merge(defaults: &[String], user: &[String]) -> Vec<String> {
    let user_groups = groups(user);
    let user_names: Vec<String> = user_groups.iter().map(|g| canonical(&g[0])).collect();
    let replaced = |name: &str| !ADDITIVE.contains(&name) && user_names.iter().any(|u| u == name);
    let mut out: Vec<String> = Vec::new();
    for g in groups(defaults) {
        if !replaced(&canonical(&g[0])) {
            out.extend(g);
        }
    }
    for g in user_groups {
        out.extend(g);
    }
    out
}

/// Makes the raw disk image `path` of `size` bytes if it does not exist,
/// or anew if `fresh`; an existing one keeps its data. A disk of at least
/// [`FAT32_MIN_DISK`] is formatted FAT32 (`mkfs.vfat`) with a `README`
/// (written with mtools); a smaller one is all zeros (sparse).
pub fn make_disk(path: &Path, size: u64, fresh: bool) -> Result<PathBuf> {
    if fresh || !path.is_file() {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        f.set_len(size).map_err(|e| format!("{}: {e}", path.display()))?;
        drop(f);
        let formatted = size >= FAT32_MIN_DISK;
        if formatted {
            format_fat32(path)?;
        }
        if !fresh {
            note!(
                "{}: new {} {} disk image",
                util::relative(path),
                crate::profile::human(size),
                if formatted { "FAT32" } else { "raw" }
            );
        }
    }
    Ok(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// Smallest disk made FAT32 (FAT32 needs 65,525 clusters: 33 MiB of
/// 512-byte clusters, with room for the FATs).
pub const FAT32_MIN_DISK: u64 = 34 << 20;

/// What the default disk's `README` says.
pub const DISK_README: &str = "This is Kestrel's data disk, mounted at /data.\n\
Files written here stay across boots. Try: ls -l /data, write /data/note.txt hello, cat /data/note.txt\n";

/// Formats `path` FAT32 (volume label KESTREL, a fixed volume ID so that
/// the same size gives the same bytes) and puts [`DISK_README`] in it.
pub fn format_fat32(path: &Path) -> Result<()> {
    let mut mkfs = Command::new(crate::disk::sbin_tool("mkfs.vfat"));
    mkfs.args(["-F", "32", "-n", "KESTREL", "-i", "4b455354"]).arg(path);
    util::output(&mut mkfs).map_err(|e| format!("{e} (the set-up installs dosfstools)"))?;
    let readme = path.with_extension("README.tmp");
    std::fs::write(&readme, DISK_README).map_err(|e| format!("{}: {e}", readme.display()))?;
    let mut mcopy = Command::new("mcopy");
    mcopy
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(path)
        .arg(&readme)
        .arg("::README");
    let r = util::output(&mut mcopy).map(drop);
    let _ = std::fs::remove_file(&readme);
    r
}

/// Where `cargo xtask run` keeps a profile's disk image (without
/// `--disk`): `target/kestrel/profile/NAME/disk.img`, or `sd.img` for a
/// profile whose disk is a board's card (`[qemu] card`), so that a raw
/// disk made before the profile had a card is not taken for one.
pub fn default_disk(p: &Profile) -> PathBuf {
    crate::user::profile_dir(&p.name).join(disk_file_name(p.qemu.card))
}

fn disk_file_name(card: Option<Card>) -> &'static str {
    match card {
        Some(Card::Rpi4) => "sd.img",
        None => "disk.img",
    }
}

/// What [`profile_args`] does with the disk image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskUse {
    /// Made anew (the harness, screenshots).
    Fresh,
    /// `run`'s own: made if missing, else kept; a card gets the kernel
    /// that boots as its `kernel8.img`.
    Kept,
    /// `run --disk FILE`: made if missing, else booted as it is.
    Given,
}

/// A profile's QEMU options with its disk image at `disk` and the device
/// tree it names fetched. The disk ([`DiskUse`]) is a raw disk of `[qemu]
/// disk` bytes ([`make_disk`]), or for `[qemu] card` the board's card with
/// `kernel` on it ([`sdimage::rpi4_card`]).
pub fn profile_args(p: &Profile, disk: &Path, how: DiskUse, kernel: &Path) -> Result<Vec<String>> {
    let fresh = how == DiskUse::Fresh;
    let disk = match (p.qemu.uses_disk(), p.qemu.card) {
        (false, _) => None,
        (true, None) => Some(make_disk(disk, p.qemu.disk, fresh)?),
        (true, Some(Card::Rpi4)) => {
            let what = sdimage::rpi4_card(disk, kernel, fresh, how == DiskUse::Kept)?;
            if !fresh {
                note!("{}: {}", util::relative(disk), card_note(what));
            }
            Some(std::fs::canonicalize(disk).unwrap_or_else(|_| disk.to_path_buf()))
        }
    };
    let dtb = match &p.qemu.dtb {
        Some(_) => Some(crate::fetch::rpi4_dtb()?),
        None => None,
    };
    p.qemu.args(disk.as_deref(), dtb.as_deref())
}

/// What `run` says about the card it boots.
fn card_note(what: sdimage::CardUpdate) -> &'static str {
    match what {
        sdimage::CardUpdate::Made => {
            "new SD card image (boot partition at /boot, data partition at /data), kept across runs; delete it to start over"
        }
        sdimage::CardUpdate::Kernel => "SD card kept; kernel8.img on its boot partition updated to this kernel",
        sdimage::CardUpdate::Unchanged => "SD card kept (its kernel8.img is this kernel)",
        sdimage::CardUpdate::Kept => "SD card booted as it is (--disk: kernel8.img not updated)",
        sdimage::CardUpdate::NotACard => {
            "not a Raspberry Pi 4 card image of `cargo xtask image --board rpi4`'s layout: booted as it is (kernel8.img not updated)"
        }
    }
}

/// `cargo xtask run [--profile NAME] [--gdb] [--disk FILE] [--debug|--release] [--test-image] [-- QEMU ARGS...]`
pub fn main(args: &crate::cli::RunArgs) -> Result<()> {
    let opts = args.build.options(crate::profile::DEFAULT);
    let (user, gdb) = (&args.qemu, args.gdb);
    if let Some(name) = &args.name {
        crate::profile::set_device_name(name)?;
    }
    let profile = crate::profile::load(&opts.device)?;
    crate::setup::ensure(crate::setup::Need::Qemu)?;
    if profile.qemu.card.is_some() {
        // The card's firmware is fetched and its overlay compiled.
        crate::setup::ensure(crate::setup::Need::Fetch)?;
    }
    let built = build::build(&opts)?;

    // The profile's machine, the console on this terminal (stdin and
    // stdout, so `printf 'help\n' | cargo xtask run` works), the image.
    // The profile's disk, or the one `--disk` names (made like the
    // default one if it does not exist).
    let (disk, how) = match &args.disk {
        Some(d) => (d.clone(), DiskUse::Given),
        None => (default_disk(&profile), DiskUse::Kept),
    };
    let mut defaults = profile_args(&profile, &disk, how, &built.img)?;
    defaults.extend(Console::Terminal.args().map(String::from));
    defaults.extend(["-kernel".to_string(), built.img.display().to_string()]);
    let nic = network_card(args, &profile.name)?;
    if let Some(url) = &nic.url {
        note!("the device's status page will be at {url} (port 80 on the device)");
    }
    defaults.extend(nic.args);
    let mut user = user.clone();
    if args.window {
        let has_display = ["DISPLAY", "WAYLAND_DISPLAY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
        let (display, message) = window_display(has_display);
        note!("{message}");
        user.extend(["-display".to_string(), display.to_string()]);
    }
    if gdb {
        user.extend(["-s".to_string(), "-S".to_string()]);
    }
    let args = merge(&defaults, &user);
    let mut cmd = Command::new(QEMU);
    cmd.args(&args);
    if gdb {
        let elf = std::fs::canonicalize(&built.elf).unwrap_or(built.elf.clone());
        let entry = built.header.qemu_entry(profile.qemu.ram_base());
        eprintln!("QEMU waits for the debugger (-s -S: gdbstub on tcp::1234). In another terminal:");
        eprintln!();
        // One source directory for the remapped prefixes (the first registry).
        let mut substitutes = String::new();
        let mut seen = Vec::new();
        for (from, to) in crate::build::source_remaps()? {
            if !seen.contains(&to) {
                seen.push(to);
                substitutes += &format!(" -ex 'set substitute-path {to} {}'", from.display());
            }
        }
        eprintln!(
            "    gdb-multiarch -q {}{substitutes} -ex 'target remote localhost:1234'",
            elf.display()
        );
        eprintln!();
        eprintln!("The ELF is linked at its final virtual address, so symbols and source lines");
        eprintln!("match once the MMU is on: `hbreak kernel_main`, `continue` (use hbreak: a");
        eprintln!("software `break` cannot be planted before the kernel is mapped). Before that");
        eprintln!(
            "the CPU runs at physical addresses: on {} the image is entered at {entry:#x};",
            profile.qemu.machine
        );
        eprintln!("use `hbreak *{entry:#x}` and `stepi`/`x/8i $pc` for the pre-MMU boot path.");
        eprintln!("Quit QEMU with Ctrl-A X.");
        eprintln!();
    }
    note!("profile {}: {}", profile.name, profile.description);
    note!("{}", util::shown(&cmd));
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        exec(cmd)
    } else {
        type_input(cmd)
    }
}

/// `-display` for `run --window`: a GTK window on a host with a display,
/// else a VNC server on localhost only; and what to tell the user.
pub fn window_display(has_display: bool) -> (&'static str, &'static str) {
    if has_display {
        ("gtk", "the screen is in a GTK window")
    } else {
        (
            "vnc=127.0.0.1:0",
            "no display on this host: the screen is on VNC at 127.0.0.1:5900 (e.g. `vncviewer 127.0.0.1:0`)",
        )
    }
}

/// The network card `--net user` or `--link NAME` asks for, and the URL
/// of the device's status page.
struct Nic {
    args: Vec<String>,
    url: Option<String>,
}

fn network_card(args: &crate::cli::RunArgs, profile: &str) -> Result<Nic> {
    let name = args.name.as_deref().unwrap_or(profile);
    if args.net.is_some() {
        let port = match args.http_port {
            Some(p) => p,
            None => std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .map_err(|e| format!("no free port for --net user: {e}"))?,
        };
        return Ok(Nic {
            args: user_net_args(port),
            url: Some(format!("http://127.0.0.1:{port}/")),
        });
    }
    match &args.link {
        Some(link) => Ok(Nic {
            args: link_args(link, name, std::process::id()),
            url: None,
        }),
        None => Ok(Nic {
            args: Vec::new(),
            url: None,
        }),
    }
}

/// A virtio-net card on QEMU user networking, host port `port` (on
/// 127.0.0.1 only) forwarded to the device's port 80.
pub fn user_net_args(port: u16) -> Vec<String> {
    vec![
        "-netdev".into(),
        format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:80"),
        "-device".into(),
        "virtio-net-device,netdev=n0".into(),
    ]
}

/// FNV-1a: a stable hash for link groups and MAC addresses.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A virtio-net card on link `link`: a multicast group on the loopback
/// interface chosen by the link's name (so devices with the same `--link`
/// share it), and a locally administered MAC from the device's name and
/// `instance` (the build tool's pid: two devices of one name differ).
pub fn link_args(link: &str, device: &str, instance: u32) -> Vec<String> {
    let h = fnv(link.as_bytes());
    let group = format!("239.255.{}.{}", (h >> 8) as u8, (h as u8).max(1));
    let port = 20000 + (h >> 16) % 20000;
    let m = fnv(format!("{device}/{instance}").as_bytes()).to_be_bytes();
    vec![
        "-netdev".into(),
        format!("socket,id=n0,mcast={group}:{port},localaddr=127.0.0.1"),
        "-device".into(),
        format!(
            "virtio-net-device,netdev=n0,mac=52:54:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3]
        ),
    ]
}

/// Replaces this process with QEMU, so the terminal, Ctrl-A X and the exit
/// status all belong to QEMU.
fn exec(mut cmd: Command) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let err = cmd.exec();
    bail!("cannot run {QEMU}: {err}")
}

/// How long the console must stay quiet after a prompt before the next
/// line of piped input is typed.
const QUIET: std::time::Duration = std::time::Duration::from_millis(300);

/// Paces piped input: a line is due once the console has shown an
/// unfinished line (a prompt) since the previous one was typed and has then
/// been quiet for [`QUIET`].
#[derive(Debug, Default)]
struct Pacer {
    prompted: bool,
    last_output: Option<std::time::Instant>,
}

impl Pacer {
    fn output(&mut self, chunk: &[u8], now: std::time::Instant) {
        if chunk.last().is_some_and(|&b| b != b'\n') {
            self.prompted = true;
        }
        self.last_output = Some(now);
    }

    fn due(&self, now: std::time::Instant) -> bool {
        self.prompted && self.last_output.is_some_and(|t| now.duration_since(t) >= QUIET)
    }

    fn typed(&mut self) {
        self.prompted = false;
    }
}

/// `cargo xtask run` with stdin not a terminal (`printf 'help\n' | cargo
/// xtask run`): QEMU runs as a child with the console relayed to stdout,
/// and each line of stdin is typed once the system waits for input (see
/// [`Pacer`]) — input typed during the boot would be lost. Ends with QEMU's
/// exit status.
fn type_input(mut cmd: Command) -> Result<()> {
    use std::io::{BufRead, Read, Write};
    use std::process::Stdio;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};
    enum Event {
        Output(Vec<u8>),
        Input(Vec<u8>),
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot run {QEMU}: {e}"))?;
    let mut to_qemu = child.stdin.take();
    let mut from_qemu = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let out_tx = tx.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = from_qemu.read(&mut buf) {
            if out_tx.send(Event::Output(buf[..n].to_vec())).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            match stdin.read_until(b'\n', &mut line) {
                Ok(1..) if tx.send(Event::Input(line)).is_ok() => {}
                _ => break,
            }
        }
    });
    let mut pending: std::collections::VecDeque<Vec<u8>> = Default::default();
    let mut pacer = Pacer::default();
    let mut stdout = std::io::stdout().lock();
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Event::Output(b)) => {
                pacer.output(&b, Instant::now());
                let _ = stdout.write_all(&b).and_then(|()| stdout.flush());
            }
            Ok(Event::Input(line)) => pending.push_back(line),
            Err(_) => {}
        }
        if pacer.due(Instant::now()) {
            if let (Some(line), Some(w)) = (pending.pop_front(), to_qemu.as_mut()) {
                if w.write_all(&line).and_then(|()| w.flush()).is_err() {
                    to_qemu = None;
                }
                pacer.typed();
            }
        }
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            // The console's last words.
            while let Ok(Event::Output(b)) = rx.recv_timeout(Duration::from_millis(100)) {
                let _ = stdout.write_all(&b);
            }
            let _ = stdout.flush();
            std::process::exit(status.code().unwrap_or(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_cards_are_named_and_links_shared() {
        assert_eq!(
            user_net_args(8080).join(" "),
            "-netdev user,id=n0,hostfwd=tcp:127.0.0.1:8080-:80 -device virtio-net-device,netdev=n0"
        );
        let a = link_args("home", "phone", 1);
        let b = link_args("home", "watch", 2);
        let c = link_args("office", "phone", 1);
        assert_eq!(a[1], b[1], "one link, one segment");
        assert_ne!(a[1], c[1], "another link, another segment");
        assert!(a[1].starts_with("socket,id=n0,mcast=239.255.") && a[1].ends_with(",localaddr=127.0.0.1"));
        assert_ne!(a[3], b[3], "each device its own MAC");
        assert_ne!(link_args("home", "phone", 1)[3], link_args("home", "phone", 2)[3]);
        assert!(a[3].starts_with("virtio-net-device,netdev=n0,mac=52:54:"));
    }

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn defaults() -> Vec<String> {
        let mut d = firmware_defaults(FIRMWARE_MACHINE.machine);
        d.extend(v("-kernel k.img"));
        d
    }

    #[test]
    fn window_replaces_the_headless_display() {
        let (d, _) = window_display(false);
        assert_eq!(d, "vnc=127.0.0.1:0", "VNC listens on localhost only");
        assert_eq!(window_display(true).0, "gtk");
        let m = merge(
            &v("-M virt -display none -serial mon:stdio"),
            &v(&format!("-display {d}")),
        );
        assert_eq!(m, v("-M virt -serial mon:stdio -display vnc=127.0.0.1:0"));
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
            "-nodefaults -cpu cortex-a72 -m 2G -display none -serial mon:stdio -kernel k.img -smp 1 -M virt,gic-version=2"
        );
    }

    #[test]
    fn aliases_override() {
        let m = merge(&defaults(), &v("-machine raspi4b --m 1G"));
        assert_eq!(
            m.join(" "),
            "-nodefaults -cpu cortex-a72 -smp 4 -display none -serial mon:stdio -kernel k.img -machine raspi4b --m 1G"
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
    fn user_console_and_display_replace_the_defaults() {
        let m = merge(&defaults(), &v("-serial stdio -monitor none"));
        assert_eq!(m.join(" "), "-nodefaults -M virt,gic-version=3,virtualization=on -cpu cortex-a72 -smp 4 -m 2G -display none -kernel k.img -serial stdio -monitor none");
        let m = merge(&defaults(), &v("-display gtk"));
        assert_eq!(m.iter().filter(|a| *a == "-display").count(), 1);
        assert!(m.ends_with(&v("-display gtk")));
    }

    #[test]
    fn profile_options_with_user_overrides() {
        let text = "name = \"tv\"\ndescription = \"x\"\n[qemu]\nmachine = \"virt\"\nsmp = 4\nmemory = \"1G\"\n\
                    args = [\"-device\", \"virtio-keyboard-device\", \"-drive\", \"if=none,id=d,format=raw,file=@DISK@\"]\n";
        let p = crate::profile::parse("profiles/tv.toml", "tv", text).unwrap();
        let dir = std::env::temp_dir().join(format!("xtask-qemu-disk-{}", std::process::id()));
        let disk = dir.join("d.img");
        let mut d = profile_args(&p, &disk, DiskUse::Kept, Path::new("k.img")).unwrap();
        assert_eq!(std::fs::metadata(&disk).unwrap().len(), 1 << 20);
        std::fs::write(&disk, b"data").unwrap();
        profile_args(&p, &disk, DiskUse::Kept, Path::new("k.img")).unwrap();
        assert_eq!(
            std::fs::read(&disk).unwrap(),
            b"data",
            "an existing disk keeps its data"
        );
        profile_args(&p, &disk, DiskUse::Fresh, Path::new("k.img")).unwrap();
        assert_eq!(std::fs::metadata(&disk).unwrap().len(), 1 << 20, "fresh");
        d.extend(v("-display none -serial mon:stdio -kernel k.img"));
        let m = merge(&d, &v("-smp 1 -device virtio-rng-device"));
        let shown = m.join(" ");
        assert!(
            shown.starts_with(
                "-nodefaults -M virt -m 1G -device virtio-keyboard-device -drive if=none,id=d,format=raw,file=/"
            ),
            "{shown}"
        );
        assert!(
            shown.ends_with("d.img -display none -serial mon:stdio -kernel k.img -smp 1 -device virtio-rng-device"),
            "{shown}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn piped_input_waits_for_a_quiet_prompt() {
        use std::time::{Duration, Instant};
        let t = Instant::now();
        let ms = |n| t + Duration::from_millis(n);
        let mut p = Pacer::default();
        p.output(b"[    0.1] INFO  booting\n", ms(0));
        assert!(!p.due(ms(1000)), "no prompt yet");
        p.output(b"kestrel> ", ms(1000));
        assert!(!p.due(ms(1100)), "not quiet yet");
        p.output(b"init: a late log line\n", ms(1200));
        assert!(!p.due(ms(1400)));
        assert!(p.due(ms(1500)), "prompted, then quiet");
        p.typed();
        assert!(!p.due(ms(5000)), "a new prompt is awaited");
        p.output(b"help\r\nCOMMAND\r\nkestrel> ", ms(5000));
        assert!(p.due(ms(5300)));
    }

    #[test]
    fn repeated_user_options_all_kept() {
        let m = merge(&defaults(), &v("-device a -device b"));
        assert_eq!(m.iter().filter(|a| *a == "-device").count(), 2);
    }
}
