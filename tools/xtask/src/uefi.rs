//! UEFI boot media: an EFI system partition for AAVMF (Debian's
//! `qemu-efi-aarch64`) holding the image as `EFI/BOOT/BOOTAA64.EFI`, and the
//! check that the image really is the EFI application `boot/src/efi.S` makes
//! of it.

use crate::bail;
use crate::util::Result;
use std::path::{Path, PathBuf};

/// AAVMF, the UEFI firmware for QEMU `virt` (`-bios`).
pub const FIRMWARE: &str = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd";
/// Where UEFI looks for a boot loader on removable media (AArch64).
pub const BOOT_PATH: &str = "EFI/BOOT/BOOTAA64.EFI";

/// What the PE/COFF header says (the fields the firmware acts on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeInfo {
    pub entry: u32,
    pub size_of_image: u32,
    pub size_of_headers: u32,
    pub section_alignment: u32,
    /// (name, virtual address, virtual size, file offset, file size)
    pub sections: Vec<(String, u32, u32, u32, u32)>,
}

fn u16_at(b: &[u8], o: usize) -> Result<u16> {
    b.get(o..o + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| format!("PE header: truncated at {o:#x}"))
}

fn u32_at(b: &[u8], o: usize) -> Result<u32> {
    b.get(o..o + 4)
        .map(|s| u32::from_le_bytes(s.try_into().unwrap()))
        .ok_or_else(|| format!("PE header: truncated at {o:#x}"))
}

/// Checks that `img` is an AArch64 EFI application that a firmware loads as
/// one piece laid out like the file: what `efi.S` promises, and what the
/// Image header (image_size) agrees with.
pub fn check_pe(img: &[u8]) -> Result<PeInfo> {
    if img.get(..2) != Some(b"MZ") {
        bail!("no \"MZ\" at offset 0: not an EFI application");
    }
    let pe = u32_at(img, 0x3c)? as usize;
    if img.get(pe..pe + 4) != Some(b"PE\0\0") {
        bail!("no \"PE\\0\\0\" signature at the offset {pe:#x} that the header's e_lfanew gives");
    }
    let coff = pe + 4;
    let machine = u16_at(img, coff)?;
    if machine != 0xaa64 {
        bail!("PE machine is {machine:#x}, not 0xaa64 (AArch64)");
    }
    let nsections = u16_at(img, coff + 2)? as usize;
    let opt_size = u16_at(img, coff + 16)? as usize;
    let characteristics = u16_at(img, coff + 18)?;
    if characteristics & 0x0002 == 0 {
        bail!("PE characteristics {characteristics:#x} lack EXECUTABLE_IMAGE");
    }
    if characteristics & 0x0001 != 0 {
        bail!("PE characteristics {characteristics:#x} say relocations stripped: the firmware could not load the image anywhere but ImageBase");
    }
    let opt = coff + 20;
    if u16_at(img, opt)? != 0x20b {
        bail!("PE optional header is not PE32+");
    }
    let info = PeInfo {
        entry: u32_at(img, opt + 16)?,
        section_alignment: u32_at(img, opt + 32)?,
        size_of_image: u32_at(img, opt + 56)?,
        size_of_headers: u32_at(img, opt + 60)?,
        sections: Vec::new(),
    };
    let file_alignment = u32_at(img, opt + 36)?;
    let subsystem = u16_at(img, opt + 68)?;
    if subsystem != 10 {
        bail!("PE subsystem {subsystem}, not 10 (EFI application)");
    }
    if info.section_alignment != 4096 || file_alignment == 0 || file_alignment > 4096 {
        bail!("PE alignment: sections {:#x} (must be 4 KiB: the entry stub needs a page-aligned image), file {file_alignment:#x}", info.section_alignment);
    }
    let le = |o: usize| u64::from_le_bytes(img[o..o + 8].try_into().unwrap());
    let image_size = le(16);
    if u64::from(info.size_of_image) != image_size {
        bail!(
            "PE SizeOfImage {:#x} differs from the Image header's image_size {image_size:#x}",
            info.size_of_image
        );
    }
    let mut sections = Vec::new();
    let table = opt + opt_size;
    for i in 0..nsections {
        let s = table + 40 * i;
        let name = img.get(s..s + 8).ok_or("PE section table truncated")?;
        let name = String::from_utf8_lossy(name).trim_end_matches('\0').to_string();
        let (vsize, va, raw_size, raw_ptr) = (
            u32_at(img, s + 8)?,
            u32_at(img, s + 12)?,
            u32_at(img, s + 16)?,
            u32_at(img, s + 20)?,
        );
        sections.push((name, va, vsize, raw_ptr, raw_size));
    }
    let mut expect_va = info.size_of_headers;
    for (name, va, vsize, raw_ptr, raw_size) in &sections {
        if *va != expect_va || va % info.section_alignment != 0 {
            bail!("PE section {name} at RVA {va:#x}: expected {expect_va:#x}, page aligned and right after the previous one");
        }
        if raw_ptr != va {
            bail!("PE section {name}: file offset {raw_ptr:#x} differs from its RVA {va:#x}; the image would not be laid out like the file");
        }
        if raw_size > vsize || u64::from(*raw_ptr) + u64::from(*raw_size) > img.len() as u64 {
            bail!("PE section {name}: {raw_size:#x} bytes at {raw_ptr:#x} do not fit the section or the file ({:#x} bytes)", img.len());
        }
        expect_va = va + vsize;
    }
    if expect_va != info.size_of_image {
        bail!(
            "PE sections end at {expect_va:#x}, SizeOfImage is {:#x}",
            info.size_of_image
        );
    }
    let file_end = sections.last().map(|s| s.3 + s.4).unwrap_or(0);
    if file_end as usize != img.len() {
        bail!(
            "PE sections cover the file up to {file_end:#x}, but it has {:#x} bytes",
            img.len()
        );
    }
    let text = sections.first().ok_or("PE image has no sections")?;
    if info.entry < text.1 || info.entry >= text.1 + text.2 {
        bail!("PE entry point {:#x} is outside the first (code) section", info.entry);
    }
    Ok(PeInfo { sections, ..info })
}

/// Makes (or refreshes) an ESP directory whose only file is the image as
/// `EFI/BOOT/BOOTAA64.EFI`, after checking its PE header.
pub fn make_esp(image: &Path, dir: &Path) -> Result<PathBuf> {
    let bytes = std::fs::read(image).map_err(|e| format!("{}: {e}", image.display()))?;
    check_pe(&bytes).map_err(|e| format!("{}: {e}", image.display()))?;
    // A fresh directory: QEMU's vvfat serves every file in it.
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let dest = dir.join(BOOT_PATH);
    std::fs::create_dir_all(dest.parent().unwrap()).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::write(&dest, &bytes).map_err(|e| format!("{}: {e}", dest.display()))?;
    Ok(dir.to_path_buf())
}

/// The `-drive` value that serves an ESP directory as a FAT disk.
pub fn drive(esp: &Path) -> String {
    format!("if=virtio,format=raw,file=fat:rw:{}", esp.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic image laid out like link.ld + efi.S make it.
    fn image() -> Vec<u8> {
        let mut v = vec![0u8; 0x3200];
        v[0..4].copy_from_slice(&0xfa40_5a4d_u32.to_le_bytes());
        v[16..24].copy_from_slice(&0x8000u64.to_le_bytes()); // image_size
        v[56..60].copy_from_slice(b"ARM\x64");
        v[60..64].copy_from_slice(&64u32.to_le_bytes());
        let pe = 64;
        v[pe..pe + 4].copy_from_slice(b"PE\0\0");
        let c = pe + 4;
        v[c..c + 2].copy_from_slice(&0xaa64u16.to_le_bytes());
        v[c + 2..c + 4].copy_from_slice(&2u16.to_le_bytes());
        v[c + 16..c + 18].copy_from_slice(&160u16.to_le_bytes());
        v[c + 18..c + 20].copy_from_slice(&0x206u16.to_le_bytes());
        let o = c + 20;
        let put32 = |v: &mut Vec<u8>, at: usize, x: u32| v[at..at + 4].copy_from_slice(&x.to_le_bytes());
        v[o..o + 2].copy_from_slice(&0x20bu16.to_le_bytes());
        put32(&mut v, o + 16, 0x1800);
        put32(&mut v, o + 32, 0x1000);
        put32(&mut v, o + 36, 0x200);
        put32(&mut v, o + 56, 0x8000);
        put32(&mut v, o + 60, 0x1000);
        v[o + 68..o + 70].copy_from_slice(&10u16.to_le_bytes());
        let t = o + 160;
        v[t..t + 5].copy_from_slice(b".text");
        for (i, x) in [0x1000u32, 0x1000, 0x1000, 0x1000].iter().enumerate() {
            put32(&mut v, t + 8 + 4 * i, *x);
        }
        let d = t + 40;
        v[d..d + 5].copy_from_slice(b".data");
        for (i, x) in [0x6000u32, 0x2000, 0x1200, 0x2000].iter().enumerate() {
            put32(&mut v, d + 8 + 4 * i, *x);
        }
        v
    }

    #[test]
    fn good_header() {
        let info = check_pe(&image()).unwrap();
        assert_eq!(info.entry, 0x1800);
        assert_eq!(info.sections.len(), 2);
        assert_eq!(info.sections[1], (".data".to_string(), 0x2000, 0x6000, 0x2000, 0x1200));
    }

    #[test]
    fn bad_headers() {
        let mut v = image();
        v[0] = b'X';
        assert!(check_pe(&v).unwrap_err().contains("MZ"));
        let mut v = image();
        v[60] = 0;
        assert!(check_pe(&v).unwrap_err().contains("PE\\0\\0"));
        let mut v = image();
        v[16..24].copy_from_slice(&0x9000u64.to_le_bytes());
        assert!(check_pe(&v).unwrap_err().contains("image_size"));
        let mut v = image();
        v.truncate(0x3000);
        assert!(check_pe(&v).unwrap_err().contains("do not fit"));
        let mut v = image();
        v.extend_from_slice(&[0; 512]);
        assert!(check_pe(&v).unwrap_err().contains("cover the file"));
        let mut v = image();
        v[64 + 4 + 18] |= 1; // relocations stripped
        assert!(check_pe(&v).unwrap_err().contains("stripped"));
    }

    #[test]
    fn esp_layout() {
        let dir = crate::disk::tests::scratch("esp");
        let img = dir.join("k.img");
        std::fs::write(&img, image()).unwrap();
        let esp = make_esp(&img, &dir.join("esp")).unwrap();
        assert_eq!(std::fs::read(esp.join(BOOT_PATH)).unwrap(), image());
        assert_eq!(
            drive(&esp),
            format!("if=virtio,format=raw,file=fat:rw:{}", esp.display())
        );
        std::fs::write(&img, b"not an image").unwrap();
        assert!(make_esp(&img, &dir.join("esp")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
