//! Boot cases that start the kernel the way a real device does: through
//! UEFI or U-Boot firmware, or from the Raspberry Pi 4 SD card image
//! (`cases::Boot`). The build tool makes the medium (an ESP, a disk image,
//! the card and what the Pi firmware would load from it) through
//! [`crate::Env::media`]; this module turns it into QEMU arguments.

use crate::cases::{Boot, BootCase};
use crate::qemu::Console;
use crate::runner::{qemu_args, Env};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// How the kernel reaches the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Medium {
    /// QEMU loads it (`-kernel`, `-dtb`, and the case's `-append`), with
    /// the SD card image it came from, if any, in the SD slot.
    Kernel {
        image: PathBuf,
        dtb: Option<PathBuf>,
        sd_card: Option<PathBuf>,
    },
    /// Firmware (`-bios`) finds and starts it on a disk (`-drive` value).
    /// The case's `append` is the medium's business (extlinux.conf).
    Firmware { bios: PathBuf, drive: String },
}

/// Where the medium of a `Boot::RpiSdCard` case made in `dir` keeps its
/// SD card image (what the guest wrote stays there for `disk_check`).
pub fn sd_card(dir: &Path, case: &BootCase) -> PathBuf {
    dir.join(case.name).join("sd.img")
}

/// Makes the medium of `case` in the scratch directory `dir` from `image`
/// (the kernel image the case names).
pub type MediaFn = fn(case: &BootCase, image: &Path, dir: &Path) -> Result<Medium, String>;

/// QEMU arguments (without the program) for a case booting from `medium`.
pub fn medium_args(case: &BootCase, medium: &Medium) -> Vec<OsString> {
    match medium {
        Medium::Kernel { image, dtb, sd_card } => {
            let mut a = qemu_args(case, image, dtb.as_deref());
            if let Some(card) = sd_card {
                let mut drive = OsString::from("if=sd,format=raw,file=");
                drive.push(card);
                a.extend(["-drive".into(), drive]);
            }
            a
        }
        Medium::Firmware { bios, drive } => {
            let mut a: Vec<OsString> = case.qemu_machine().args().into_iter().map(OsString::from).collect();
            a.push("-semihosting".into());
            a.extend(Console::Stdio.args().map(OsString::from));
            a.extend(["-bios".into(), bios.into(), "-drive".into(), drive.into()]);
            a
        }
    }
}

/// QEMU arguments for a case that does not boot directly (`None` for one
/// that does: the runner's own `-kernel` arguments apply).
pub fn prepare(case: &BootCase, env: &Env, image: &Path) -> Result<Option<Vec<OsString>>, String> {
    if case.boot == Boot::Direct {
        return Ok(None);
    }
    let make = env
        .media
        .ok_or("this case boots from a medium that only the build tool makes (Env::media is not set)")?;
    let medium = make(case, image, &env.work_dir.join("media"))?;
    Ok(Some(medium_args(case, &medium)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::KTEST;

    #[test]
    fn firmware_arguments() {
        let case = BootCase {
            boot: Boot::Uefi,
            machine: "virt,acpi=off",
            append: Some("ignored"),
            ..KTEST
        };
        let m = Medium::Firmware {
            bios: "/fw.fd".into(),
            drive: "if=virtio,format=raw,file=fat:rw:/esp".into(),
        };
        let a: Vec<String> = medium_args(&case, &m)
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        let a = a.join(" ");
        assert!(
            a.starts_with("-nodefaults -M virt,acpi=off -cpu cortex-a72 -smp 1 -m 128M -semihosting"),
            "{a}"
        );
        assert!(
            a.ends_with("-bios /fw.fd -drive if=virtio,format=raw,file=fat:rw:/esp"),
            "{a}"
        );
        assert!(!a.contains("-kernel") && !a.contains("-append"), "{a}");
    }

    #[test]
    fn kernel_from_a_medium() {
        let case = BootCase {
            boot: Boot::RpiSdCard,
            machine: "raspi4b",
            ..KTEST
        };
        let m = Medium::Kernel {
            image: "/k8.img".into(),
            dtb: Some("/t.dtb".into()),
            sd_card: Some("/sd.img".into()),
        };
        let a: Vec<String> = medium_args(&case, &m)
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        assert!(
            a.join(" ")
                .ends_with("-kernel /k8.img -dtb /t.dtb -drive if=sd,format=raw,file=/sd.img"),
            "{a:?}"
        );
    }

    #[test]
    fn direct_cases_need_no_medium() {
        let env = Env {
            qemu: "q".into(),
            test_image: "t".into(),
            prod_image: "p".into(),
            rpi4_dtb: "d".into(),
            work_dir: "w".into(),
            dt_command: vec![],
            media: None,
            profiles: vec![],
        };
        assert_eq!(prepare(&KTEST, &env, Path::new("t")).unwrap(), None);
        let uefi = BootCase {
            boot: Boot::Uefi,
            ..KTEST
        };
        assert!(prepare(&uefi, &env, Path::new("t")).unwrap_err().contains("build tool"));
    }
}
