//! Checks of a disk image a case's guest wrote, with independent FAT
//! tools: `fsck.fat -n` must find nothing, and mtools must read the files
//! back (`BootCase::disk_check`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn sbin(tool: &str) -> PathBuf {
    let p = Path::new("/usr/sbin").join(tool);
    if p.is_file() {
        p
    } else {
        tool.into()
    }
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.env("MTOOLS_SKIP_CHECK", "1").output().map_err(|e| {
        format!(
            "{:?}: {e} (the set-up installs mtools and dosfstools)",
            cmd.get_program()
        )
    })?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{:?} failed: {}", cmd.get_program(), text.trim()))
    }
}

/// `fsck.fat -n` finds nothing to repair.
pub fn fsck_clean(img: &Path) -> Result<(), String> {
    run(Command::new(sbin("fsck.fat")).arg("-n").arg(img)).map(drop)
}

/// A file's bytes, read by mtools.
pub fn mtype(img: &Path, name: &str) -> Result<Vec<u8>, String> {
    let out = Command::new("mtype")
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(img)
        .arg(format!("::{name}"))
        .output()
        .map_err(|e| format!("mtype: {e}"))?;
    if !out.status.success() {
        return Err(format!("mtype {name}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(out.stdout)
}

/// Names in a directory (`mdir -b`), without the image prefix.
pub fn mdir(img: &Path, dir: &str) -> Result<Vec<String>, String> {
    let out = run(Command::new("mdir").args(["-b", "-i"]).arg(img).arg(format!("::{dir}")))?;
    Ok(out
        .lines()
        .map(|l| l.trim_start_matches("::").trim_start_matches('/').to_string())
        .collect())
}

/// `profile-phone-files`: the file the shell wrote and moved, the README,
/// and no trace of the removed file and directory.
pub fn profile_phone_files(img: &Path) -> Result<String, String> {
    fsck_clean(img)?;
    let note = mtype(img, "notes/hello world.txt")?;
    if note != b"Kestrel was here\n" {
        return Err(format!(
            "notes/hello world.txt holds {:?}",
            String::from_utf8_lossy(&note)
        ));
    }
    if !mtype(img, "README")?.starts_with(b"This is Kestrel's data disk") {
        return Err("README changed".into());
    }
    let root = mdir(img, "/")?;
    if root.iter().any(|n| n.ends_with("gone.txt") || n.ends_with("empty")) {
        return Err(format!("removed names still listed: {root:?}"));
    }
    Ok("fsck.fat clean, files read back by mtools".into())
}

/// A 64 MiB disk formatted FAT32 by `mkfs.vfat` (`BootCase::disk_setup`).
pub fn mkfs_fat32(img: &Path) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(img)
        .and_then(|f| f.set_len(64 << 20))
        .map_err(|e| format!("{}: {e}", img.display()))?;
    run(Command::new(sbin("mkfs.vfat"))
        .args(["-F", "32", "-n", "KESTREL"])
        .arg(img))
    .map(drop)
}

/// Only `fsck.fat -n`.
pub fn fsck_only(img: &Path) -> Result<String, String> {
    fsck_clean(img).map(|()| "fsck.fat clean".into())
}

/// The first sector and sector count of each used MBR partition entry.
pub fn mbr_partitions(img: &Path) -> Result<Vec<(u64, u64)>, String> {
    use std::io::Read;
    let mut mbr = [0u8; 512];
    std::fs::File::open(img)
        .and_then(|mut f| f.read_exact(&mut mbr))
        .map_err(|e| format!("{}: {e}", img.display()))?;
    if mbr[510..] != [0x55, 0xaa] {
        return Err(format!("{}: no MBR signature", img.display()));
    }
    Ok(mbr[446..510]
        .chunks(16)
        .filter(|e| e[4] != 0)
        .map(|e| {
            let word = |o: usize| u32::from_le_bytes(e[o..o + 4].try_into().unwrap()) as u64;
            (word(8), word(12))
        })
        .collect())
}

/// Partition `index` of `img` copied into a file of its own (fsck.fat takes
/// no offset); the copy's path.
fn partition_copy(img: &Path, index: usize) -> Result<PathBuf, String> {
    use std::io::{Read, Seek, SeekFrom};
    let parts = mbr_partitions(img)?;
    let &(start, sectors) = parts
        .get(index)
        .ok_or_else(|| format!("{}: no partition {index} in {parts:?}", img.display()))?;
    let mut bytes = vec![0u8; (sectors * 512) as usize];
    std::fs::File::open(img)
        .and_then(|mut f| {
            f.seek(SeekFrom::Start(start * 512))?;
            f.read_exact(&mut bytes)
        })
        .map_err(|e| format!("{}: {e}", img.display()))?;
    let out = img.with_extension(format!("part{index}.img"));
    std::fs::write(&out, bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

/// `rpi4-sdcard-files`: both partitions of the card pass `fsck.fat -n`
/// after the shell wrote to the data partition, and mtools reads the file
/// back there.
pub fn rpi4_card_files(img: &Path) -> Result<String, String> {
    let boot = partition_copy(img, 0)?;
    let data = partition_copy(img, 1)?;
    fsck_clean(&boot).map_err(|e| format!("boot partition: {e}"))?;
    fsck_clean(&data).map_err(|e| format!("data partition: {e}"))?;
    let note = mtype(&data, "note.txt")?;
    if note != b"written on the Pi\n" {
        return Err(format!("note.txt holds {:?}", String::from_utf8_lossy(&note)));
    }
    let _ = std::fs::remove_file(boot);
    let _ = std::fs::remove_file(data);
    Ok("both partitions fsck.fat clean, note.txt read back by mtools".into())
}
