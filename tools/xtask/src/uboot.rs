//! U-Boot boot disk: Debian's `u-boot-qemu` (`qemu_arm64`) runs its distro
//! boot, which scans the virtio disk's bootable partition for
//! `extlinux/extlinux.conf`, loads the kernel and starts it with `booti`.

use crate::disk::{self, Files, Spec};
use crate::util::Result;

/// U-Boot for QEMU `virt` (`-bios`).
pub const FIRMWARE: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";
/// Kernel bootargs when none are given: shows that the APPEND line reached
/// the kernel (it logs `boot: bootargs "..."`).
pub const DEFAULT_APPEND: &str = "kestrel.loader=u-boot";

/// The disk: MBR, one bootable FAT32 partition. Small: it holds a kernel.
pub const SPEC: Spec = Spec {
    part_size: 40 << 20,
    part_type: disk::TYPE_FAT32_LBA,
    bootable: true,
    label: "KESTREL",
    volume_id: 0x4b45_0b07,
    disk_id: 0x4b45_0b07,
    data: None,
};

/// `extlinux/extlinux.conf` for `append` as the kernel's bootargs.
///
/// There is no FDT/FDTDIR line on purpose: U-Boot then hands the kernel its
/// own control tree (`$fdtcontroladdr`), which on qemu_arm64 is the tree
/// QEMU generated for the machine; `booti` writes APPEND into its
/// `/chosen/bootargs`.
pub fn extlinux_conf(append: &str) -> Result<String> {
    if append.contains(['\n', '\r']) {
        crate::bail!("bootargs must be one line: {append:?}");
    }
    let mut s = String::from(
        "# Kestrel boot entry for U-Boot's distro boot (extlinux), written by cargo xtask.\n\
         # No FDT line: U-Boot passes its own device tree (QEMU's, $fdtcontroladdr),\n\
         # with APPEND as /chosen/bootargs. No PROMPT: the default label boots at once.\n\
         DEFAULT kestrel\n\
         TIMEOUT 1\n\
         \n\
         LABEL kestrel\n\
         \tMENU LABEL Kestrel\n\
         \tKERNEL /kernel.img\n",
    );
    if !append.is_empty() {
        s.push_str(&format!("\tAPPEND {append}\n"));
    }
    Ok(s)
}

/// The files on the disk.
pub fn files(kernel: Vec<u8>, append: &str) -> Result<Files> {
    let mut f = Files::new();
    f.insert("extlinux/extlinux.conf".into(), extlinux_conf(append)?.into_bytes());
    f.insert("kernel.img".into(), kernel);
    Ok(f)
}

/// The whole disk image.
pub fn disk_image(kernel: Vec<u8>, append: &str) -> Result<Vec<u8>> {
    disk::build(&SPEC, &files(kernel, append)?)
}

/// The `-drive` value for a disk image file.
pub fn drive(disk: &std::path::Path) -> String {
    format!("if=virtio,format=raw,file={}", disk.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::tests::{sbin, scratch, tool};
    use std::process::Command;

    #[test]
    fn config() {
        let c = extlinux_conf("a=1 b").unwrap();
        assert!(c.contains("\tKERNEL /kernel.img\n"));
        assert!(c.contains("\tAPPEND a=1 b\n"));
        assert!(c.contains("DEFAULT kestrel\n"));
        assert!(
            !c.lines().any(|l| !l.starts_with('#') && l.contains("FDT")),
            "U-Boot must pass its own tree"
        );
        assert!(!extlinux_conf("").unwrap().contains("\tAPPEND"));
        assert!(extlinux_conf("a\nb").is_err());
    }

    #[test]
    fn disk_checked_by_real_tools() {
        let dir = scratch("uboot");
        let img = dir.join("disk.img");
        let kernel: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        let bytes = disk_image(kernel.clone(), "x=y").unwrap();
        assert!(bytes == disk_image(kernel.clone(), "x=y").unwrap(), "not reproducible");
        crate::util::write_atomic(&img, &bytes).unwrap();
        let dump = tool(Command::new(sbin("sfdisk")).arg("--dump").arg(&img));
        assert!(dump.contains("type=c, bootable"), "{dump}");
        let out = dir.join("conf");
        disk::mcopy_out(&img, "extlinux/extlinux.conf", &out).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), extlinux_conf("x=y").unwrap());
        disk::mcopy_out(&img, "kernel.img", &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), kernel);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
