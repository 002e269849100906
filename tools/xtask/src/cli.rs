//! The command line of `cargo xtask`, declared with clap's derive API:
//! `--help` on the tool and on every command, and for a wrong or missing
//! argument a one-line error with the usage and exit status 2.

use crate::build::{Mode, Options};
use crate::firmware::Firmware;
use crate::sdimage::Board;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    about = "Kestrel's build tool: build, run, test and measure the system, write boot media",
    long_about = "Kestrel's build tool: build, run, test and measure the system, write boot media.\n\n\
                  Device profiles (profiles/NAME.toml; default: phone) say what a device is: its \
                  display, its QEMU machine, the drivers and servers init starts."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the kernel image with the profile's boot archive; print a memory
    /// report, then the image's path last.
    Build(BuildArgs),
    /// Build, then boot the profile's QEMU machine with the console on this
    /// terminal (quit: Ctrl-A X). Piped stdin is typed a line per prompt:
    /// `printf 'help\npoweroff\n' | cargo xtask run`.
    Run(RunArgs),
    /// Boot the profile headless, optionally send taps, swipes and keys, and
    /// write the screen as a PNG (print its path last).
    Screenshot(ScreenshotArgs),
    /// Write a bootable disk image (rpi4: the Pi 4 SD card); print its path last.
    Image(ImageArgs),
    /// Write the Pi 4 SD card image to a removable, unmounted card after
    /// confirmation, then read it back and verify (docs/rpi4.md).
    Flash(FlashArgs),
    /// Build the programs (user/, drivers/, servers/) and pack the profile's
    /// boot archive; print its path last.
    User(UserArgs),
    /// Parse and check a device tree with the kernel's own reader (hal::dt).
    Dt(DtArgs),
    /// Host unit tests, then every device-tree and QEMU boot case; ends with
    /// `N passed, N failed` and writes target/kestrel/junit.xml.
    Test(TestArgs),
    /// Fuzz a parser with libFuzzer (nightly toolchain), seeded with images
    /// made by mkfs.vfat and mtools: `cargo xtask fuzz fat --time 60`.
    Fuzz(FuzzArgs),
    /// Deterministic measurements (instruction counts under QEMU -icount);
    /// writes target/bench.json.
    Bench(BenchArgs),
    /// Fetch the Raspberry Pi 4 device tree into target/cache/.
    Fetch,
    /// Check the host, and as root install what is missing (QEMU >= 9 from
    /// bookworm-backports, firmware, disk tools).
    Setup,
    /// List the host tools the commands use, what is present and what is
    /// missing, with the command that installs it. Changes nothing.
    Doctor,
    /// Prove the README's two commands on a fresh Debian bookworm root
    /// (debootstrap, root only): the run command boots the phone profile to
    /// the shell and powers off, the test command ends `N passed, 0 failed`.
    FreshCheck(FreshCheckArgs),
}

/// What every building command takes.
#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// Device profile (profiles/NAME.toml) [default: phone; for `image
    /// --board rpi4`: rpi4]
    #[arg(long, value_name = "NAME", value_parser = profile_name)]
    pub profile: Option<String>,
    /// Build the kernel in release mode (the default).
    #[arg(long, conflicts_with = "debug")]
    pub release: bool,
    /// Build the kernel in debug mode.
    #[arg(long)]
    pub debug: bool,
    /// The test image: in-kernel tests and every test program.
    #[arg(long)]
    pub test_image: bool,
    /// The device group's secret file (any bytes, at least 16): devices
    /// built with the same file pair on the soft bus (docs/BUS.md); make
    /// one with `head -c 32 /dev/urandom > FILE`.
    #[arg(long, value_name = "FILE")]
    pub group: Option<PathBuf>,
}

impl BuildArgs {
    /// The build options, with `default_profile` when none was given.
    pub fn options(&self, default_profile: &str) -> Options {
        Options {
            mode: if self.debug { Mode::Debug } else { Mode::Release },
            test_image: self.test_image,
            device: self.profile.clone().unwrap_or_else(|| default_profile.to_string()),
            test_programs: false,
            group: self.group.clone(),
            tag: "",
        }
    }
}

fn profile_name(s: &str) -> Result<String, String> {
    crate::profile::check_name(s)?;
    Ok(s.to_string())
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Start QEMU halted with a GDB stub and print the gdb command that attaches.
    #[arg(long, conflicts_with_all = ["uefi", "uboot"])]
    pub gdb: bool,
    /// The device's disk image instead of target/kestrel/profile/NAME/disk.img
    /// (made FAT32 with a README if it does not exist; files persist in it);
    /// for a profile with `[qemu] card` (rpi4) instead of .../NAME/sd.img,
    /// made as that card if it does not exist.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["uefi", "uboot"])]
    pub disk: Option<std::path::PathBuf>,
    /// Boot through UEFI firmware (AAVMF), as on a device.
    #[arg(long, conflicts_with = "uboot")]
    pub uefi: bool,
    /// Boot through U-Boot's distro boot, as on a device.
    #[arg(long)]
    pub uboot: bool,
    /// Show the screen: a GTK window where the host has a display, else a VNC
    /// server on localhost (its address is printed).
    #[arg(long, conflicts_with = "gdb")]
    pub window: bool,
    /// Kernel command line for --uboot (extlinux APPEND).
    #[arg(long, value_name = "ARGS", requires = "uboot")]
    pub append: Option<String>,
    /// A network card on QEMU user networking (`user`, the only mode): DHCP
    /// and the host's 127.0.0.1 at 10.0.2.2; a host port forwards to the
    /// device's port 80 (the status page), and the URL is printed.
    #[arg(long, value_name = "MODE", value_parser = ["user"], conflicts_with = "link")]
    pub net: Option<String>,
    /// The host port `--net user` forwards to port 80 [default: a free one].
    #[arg(long, value_name = "PORT", requires = "net")]
    pub http_port: Option<u16>,
    /// A network card on the virtual Ethernet segment NAME, shared by every
    /// device started with the same NAME (QEMU's socket netdev on a loopback
    /// multicast group; no root needed). No DHCP there: devices take
    /// link-local addresses (169.254/16).
    #[arg(long, value_name = "NAME")]
    pub link: Option<String>,
    /// The device's name (its status page, the bus) [default: the profile's].
    #[arg(long, value_name = "DEVICE")]
    pub name: Option<String>,
    /// QEMU options after `--`: they replace the profile's options of the same
    /// name (devices add up), e.g. `-- -smp 1`.
    #[arg(last = true, value_name = "QEMU ARGS")]
    pub qemu: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ScreenshotArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Input played once the UI is up, `;`-separated: `tap X,Y`, `swipe X,Y
    /// X,Y`, `key NAME...` (QEMU qcodes: ret, esc, up, f1, a), `sleep MS`;
    /// e.g. `swipe 270,5 270,600; tap 100,300; key ret`.
    #[arg(long, value_name = "STEPS")]
    pub input: Option<String>,
    /// The PNG to write.
    #[arg(value_name = "OUT.png")]
    pub out: PathBuf,
}

impl RunArgs {
    pub fn firmware(&self) -> Option<Firmware> {
        match (self.uefi, self.uboot) {
            (true, _) => Some(Firmware::Uefi),
            (_, true) => Some(Firmware::UBoot),
            _ => None,
        }
    }
}

#[derive(Debug, Args)]
pub struct ImageArgs {
    /// The board the disk boots.
    #[arg(long, value_enum)]
    pub board: Board,
    #[command(flatten)]
    pub build: BuildArgs,
    /// Put this prebuilt kernel image on the disk instead of building one.
    #[arg(long, value_name = "IMAGE")]
    pub kernel: Option<PathBuf>,
    /// Where to write the disk image.
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Kernel command line (U-Boot's extlinux APPEND; the Pi's cmdline).
    #[arg(long, value_name = "ARGS")]
    pub append: Option<String>,
}

#[derive(Debug, Args)]
pub struct FlashArgs {
    /// The card's block device, e.g. /dev/sdb (see `lsblk -d -o NAME,RM,SIZE,MODEL`).
    #[arg(long, value_name = "/dev/sdX")]
    pub device: String,
    /// The image to write [default: a freshly built Pi 4 SD card image].
    #[arg(long, value_name = "PATH")]
    pub image: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long, short)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct UserArgs {
    /// Device profile (profiles/NAME.toml).
    #[arg(long, value_name = "NAME", default_value = crate::profile::DEFAULT, value_parser = profile_name)]
    pub profile: String,
    /// Also pack every test program.
    #[arg(long)]
    pub tests: bool,
    /// The device group's secret file, packed for the bus (see `build --group`).
    #[arg(long, value_name = "FILE")]
    pub group: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DtArgs {
    /// The flattened device tree (.dtb) to check.
    pub file: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// Run only the cases whose name contains FILTER (profile-NAME boots a profile).
    pub filter: Option<String>,
    /// QEMU cases run in parallel [default: one per core, at most 4].
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Print the console log of passing cases too.
    #[arg(short, long)]
    pub verbose: bool,
    /// Run shard K of N: a deterministic 1/N of the cases (by name), for a CI matrix.
    #[arg(long, value_name = "K/N", value_parser = crate::test::parse_shard)]
    pub shard: Option<crate::test::Shard>,
    /// Where to write the JUnit XML report [default: target/kestrel/junit.xml].
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Only the file server's rows (the boot with a disk); prints the table
    /// and leaves target/bench.json as it was.
    #[arg(long)]
    pub fs: bool,
}

#[derive(Debug, Args)]
pub struct FuzzArgs {
    /// What to fuzz: fat (the FAT and partition readers).
    pub target: String,
    /// How long to run, in seconds.
    #[arg(long, value_name = "S", default_value_t = 60)]
    pub time: u64,
}

#[derive(Debug, Args)]
pub struct FreshCheckArgs {
    /// Where to make the fresh root [default: target/fresh-root].
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Debian mirror for debootstrap and apt.
    #[arg(long, default_value = "http://deb.debian.org/debian")]
    pub mirror: String,
    /// Keep the root afterwards (it is removed otherwise).
    #[arg(long)]
    pub keep: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("cargo xtask").chain(args.iter().copied()))
    }

    #[test]
    fn the_declaration_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_is_help() {
        for args in [&["--help"][..], &["dt", "--help"], &["run", "--help"], &["test", "-h"]] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::DisplayHelp, "{args:?}");
            assert_eq!(e.exit_code(), 0, "{args:?}");
        }
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        for args in [
            &["frob"][..],
            &["build", "--frob"],
            &["dt"],
            &["flash"],
            &["image"],
            &["image", "--board", "pc"],
            &["test", "-j", "0"],
            &["test", "a", "b"],
            &["test", "--shard", "3/2"],
            &["run", "--uefi", "--uboot"],
            &["run", "--append", "x"],
            &["build", "--profile", "../etc"],
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
        }
    }

    #[test]
    fn run_takes_qemu_arguments_after_the_separator() {
        let Command::Run(r) = parse(&["run", "--profile", "tv", "--", "-smp", "1"]).unwrap().command else {
            panic!()
        };
        assert_eq!(r.qemu, ["-smp", "1"]);
        assert_eq!(r.build.options("phone").device, "tv");
        assert_eq!(r.firmware(), None);
        let Command::Run(r) = parse(&["run", "--uboot", "--append", "utest"]).unwrap().command else {
            panic!()
        };
        assert_eq!(
            (r.firmware(), r.append.as_deref()),
            (Some(Firmware::UBoot), Some("utest"))
        );
        let Command::Run(r) = parse(&["run", "--", "--uefi"]).unwrap().command else {
            panic!()
        };
        assert_eq!(
            (r.firmware(), &r.qemu[..]),
            (None, &["--uefi".to_string()][..]),
            "QEMU's, not ours"
        );
    }

    #[test]
    fn test_options() {
        let Command::Test(t) = parse(&["test", "crash", "-j", "3", "-v", "--shard", "2/4"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!((t.filter.as_deref(), t.jobs, t.verbose), (Some("crash"), Some(3), true));
        assert_eq!(t.shard, Some(crate::test::Shard { index: 2, count: 4 }));
    }
}
