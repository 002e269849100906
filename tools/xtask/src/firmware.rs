//! Booting through firmware, as on a real device: `cargo xtask run --uefi`
//! (AAVMF starts the image as `BOOTAA64.EFI` from an EFI system partition)
//! and `cargo xtask run --uboot` (U-Boot's distro boot finds it through
//! `extlinux.conf` on a disk image); and the boot media of the test cases
//! that do the same ([`media`], called by the harness).

use crate::build;
use crate::qemu::{self, QEMU};
use crate::sdimage::{self, Board};
use crate::util::{self, Result};
use crate::{bail, disk, note, uboot, uefi};
use harness::cases::{Boot, BootCase};
use harness::media::Medium;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Which firmware `run` boots through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    Uefi,
    UBoot,
}

/// QEMU's `-M` for a firmware boot: `run`'s machine, and for UEFI with
/// `acpi=off`, because AAVMF hands over a device tree only then.
pub fn machine(fw: Firmware) -> String {
    let m = qemu::FIRMWARE_MACHINE.machine;
    match fw {
        Firmware::Uefi => format!("{m},acpi=off"),
        Firmware::UBoot => m.to_string(),
    }
}

/// `cargo xtask run --uefi|--uboot [--profile NAME] [--debug] [--test-image] [--append ARGS] [-- QEMU ARGS...]`
pub fn run(args: &crate::cli::RunArgs) -> Result<()> {
    let opts = args.build.options(crate::profile::DEFAULT);
    let (append, user) = (&args.append, &args.qemu);
    let fw = args.firmware().ok_or("run: --uefi or --uboot")?;
    crate::setup::ensure(crate::setup::Need::Test)?;
    let built = build::build(&opts)?;
    let stem = if opts.test_image { "-test" } else { "" };
    let (bios, drive) = match fw {
        Firmware::Uefi => {
            if append.is_some() {
                bail!(
                    "--append is for --uboot: under UEFI the kernel takes its bootargs from the firmware's device tree"
                );
            }
            let esp = uefi::make_esp(&built.img, &build::out_dir().join(format!("esp{stem}")))?;
            note!(
                "ESP: {} (EFI/BOOT/BOOTAA64.EFI = {})",
                util::relative(&esp),
                util::relative(&built.img)
            );
            (uefi::FIRMWARE, uefi::drive(&esp))
        }
        Firmware::UBoot => {
            let disk = sdimage::default_output(Board::UBoot, opts.test_image);
            let kernel = std::fs::read(&built.img).map_err(|e| format!("{}: {e}", built.img.display()))?;
            sdimage::write_image(Board::UBoot, kernel, &disk, append.as_deref())?;
            (uboot::FIRMWARE, uboot::drive(&disk))
        }
    };
    let mut defaults = qemu::firmware_defaults(&machine(fw));
    defaults.extend(["-bios", bios, "-drive", &drive].map(String::from));
    let args = qemu::merge(&defaults, user);
    let mut cmd = Command::new(QEMU);
    cmd.args(&args);
    note!("{}", util::shown(&cmd));
    note!("firmware boot: UEFI takes about 6 s, U-Boot about 2 s before the kernel prints (quit: Ctrl-A X)");
    use std::os::unix::process::CommandExt;
    let err = cmd.exec();
    bail!("cannot run {QEMU}: {err}")
}

/// The boot medium of a test case that does not boot with `-kernel`
/// (`harness::Env::media`): made in `dir` from `image`, the built kernel.
pub fn media(case: &BootCase, image: &Path, dir: &Path) -> Result<Medium, String> {
    let card = harness::media::sd_card(dir, case);
    let dir = dir.join(case.name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    match case.boot {
        Boot::Direct => Ok(Medium::Kernel {
            image: image.to_path_buf(),
            dtb: None,
            sd_card: None,
        }),
        Boot::Uefi => {
            let esp = uefi::make_esp(image, &dir.join("esp"))?;
            Ok(Medium::Firmware {
                bios: uefi::FIRMWARE.into(),
                drive: uefi::drive(&esp),
            })
        }
        Boot::UBoot => {
            let disk = dir.join("disk.img");
            sdimage::write_image(Board::UBoot, read(image)?, &disk, Some(case.append.unwrap_or("")))?;
            Ok(Medium::Firmware {
                bios: uboot::FIRMWARE.into(),
                drive: uboot::drive(&disk),
            })
        }
        Boot::Profile(p) => bail!("profile {p}: a device profile boots directly (the harness runs it)"),
        Boot::RpiSdCard => {
            // The real card image (real firmware, tree, overlay), then what
            // the Pi's firmware would load, copied out with mtools.
            let kernel_bytes = read(image)?;
            sdimage::write_image(Board::Rpi4, kernel_bytes.clone(), &card, None)?;
            // Real tools read it, and the same inputs give the same bytes.
            let names: Vec<&str> = sdimage::rpi4_names();
            disk::check_with_tools(&card, &sdimage::RPI4_SPEC, &names)?;
            let again = dir.join("sd-again.img");
            sdimage::write_image(Board::Rpi4, kernel_bytes, &again, None)?;
            let (a, b) = (util::sha256_file(&card)?, util::sha256_file(&again)?);
            let _ = std::fs::remove_file(&again);
            if a != b {
                bail!("two SD card images from the same inputs differ: {a} vs {b}");
            }
            let kernel = dir.join("kernel8.img");
            let dtb = dir.join(crate::fetch::DTB_NAME);
            let overlay = dir.join("disable-bt.dtbo");
            disk::mcopy_out(&card, "kernel8.img", &kernel)?;
            disk::mcopy_out(&card, crate::fetch::DTB_NAME, &dtb)?;
            disk::mcopy_out(&card, "overlays/disable-bt.dtbo", &overlay)?;
            // config.txt's dtoverlay=disable-bt, applied as the firmware would.
            let applied: PathBuf = dir.join("bcm2711-rpi-4-b+disable-bt.dtb");
            util::output(
                Command::new("fdtoverlay")
                    .arg("-i")
                    .arg(&dtb)
                    .arg("-o")
                    .arg(&applied)
                    .arg(&overlay),
            )?;
            // The card stays in the slot: the kernel's SD driver reads it.
            Ok(Medium::Kernel {
                image: kernel,
                dtb: Some(applied),
                sd_card: Some(card),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machines() {
        assert!(machine(Firmware::Uefi).starts_with("virt") && machine(Firmware::Uefi).ends_with(",acpi=off"));
        assert!(!machine(Firmware::UBoot).contains("acpi"));
    }
}
