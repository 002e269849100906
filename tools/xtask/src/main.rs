//! `cargo xtask`: Kestrel's build tool (build, run, dt, test, bench).
//! Each subcommand lives in its own module; this file only dispatches.

mod bench;
mod build;
mod disk;
mod dt;
mod fetch;
mod firmware;
mod flash;
mod profile;
mod qemu;
mod sdimage;
mod setup;
mod test;
mod uboot;
mod uefi;
mod user;
mod util;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command> [args]

  Device profiles (profiles/NAME.toml; default: phone) say what a device is:
  its display, its QEMU machine, the drivers and servers init starts.

  build [--profile NAME] [--release|--debug] [--test-image]
        Build the kernel with the profile's boot archive (test image:
        --features ktest, plus every test program) and write
        target/kestrel/kernel[-test][-NAME].{elf,img}; prints a memory
        report of the profile's tasks, then the image path last.
  run [--profile NAME] [--gdb] [--debug] [--test-image] [-- QEMU ARGS...]
        Build, then boot as the profile's [qemu] table says, with the
        console on stdin/stdout (quit: Ctrl-A X). Piped stdin is typed a
        line per prompt: printf 'help\\npoweroff\\n' | cargo xtask run.
        QEMU ARGS replace options of the same name (devices add up), e.g.
        `-- -smp 1`. --gdb waits for a debugger.
  run --uefi|--uboot [--profile NAME] [--debug] [--test-image] [--append ARGS] [-- QEMU ARGS...]
        Boot through firmware as on a device: AAVMF starts the image as
        EFI/BOOT/BOOTAA64.EFI from an ESP (acpi=off), or U-Boot's distro boot
        finds it via extlinux/extlinux.conf (APPEND = ARGS) on a disk image.
  image --board rpi4|uboot [--profile NAME] [--test-image] [--debug] [--kernel IMAGE] [--output PATH] [--append ARGS]
        Write a bootable disk image (rpi4: the Raspberry Pi 4 SD card with
        firmware, DTB, config.txt, kernel8.img; profile rpi4 unless given);
        prints its path last. --kernel puts a prebuilt image on it instead.
  flash --device /dev/sdX [--image PATH] [--yes]
        Write the Pi 4 SD card image to a removable, unmounted card after
        confirmation, then read it back and verify. See docs/rpi4.md.
  user [--profile NAME] [--tests]
        Build the programs (user/, drivers/, servers/) and pack the
        profile's boot archive (target/kestrel/profile/NAME/archive.cpio);
        prints its path last.
  dt FILE.dtb
        Parse and check a device tree with the kernel's own reader (hal::dt).
  test [FILTER] [-j N] [-v]
        Host unit tests, then every device-tree and QEMU boot case (only
        those whose name contains FILTER; profile-NAME boots a profile);
        ends with `N passed, N failed`.
  bench
        Deterministic boot measurements (QEMU -icount); writes target/bench.json.
  fetch
        Fetch the Raspberry Pi 4 device tree into target/cache/.
  setup
        Check (as root: install) QEMU >= 9 and the other host tools.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("help", &[][..]),
    };
    let result = match cmd {
        "build" => build::main(rest).map(|()| ExitCode::SUCCESS),
        "run" if firmware::requested(rest).is_some() => firmware::run(rest).map(|()| ExitCode::SUCCESS),
        "run" => qemu::main(rest).map(|()| ExitCode::SUCCESS),
        "image" => sdimage::main(rest).map(|()| ExitCode::SUCCESS),
        "flash" => flash::main(rest).map(|()| ExitCode::SUCCESS),
        "user" => user::main(rest).map(|()| ExitCode::SUCCESS),
        "dt" => dt::main(rest),
        "test" => test::main(rest),
        "bench" => bench::main(rest),
        "fetch" => fetch::main(rest).map(|()| ExitCode::SUCCESS),
        "setup" => setup::main(rest).map(|()| ExitCode::SUCCESS),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
