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

/// What `profile-phone-app-files` puts on the phone's disk for the Files
/// app to find: a directory with a file in it, and a text file of
/// [`SHOPPING_LINES`] lines.
pub fn files_app_disk(img: &Path) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("kestrel-files-app-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let shopping = dir.join("shopping.txt");
    let trip = dir.join("lisbon.txt");
    let written = std::fs::write(&shopping, SHOPPING_LINES.join("\n") + "\n")
        .and_then(|()| std::fs::write(&trip, "Tram 28 at nine.\n"));
    let r = written.map_err(|e| e.to_string()).and_then(|()| {
        let mtool =
            |tool: &str, args: &[&std::ffi::OsStr]| run(Command::new(tool).arg("-i").arg(img).args(args)).map(drop);
        mtool("mmd", &["::trips".as_ref()])?;
        mtool("mcopy", &[shopping.as_os_str(), "::shopping.txt".as_ref()])?;
        mtool("mcopy", &[trip.as_os_str(), "::trips/lisbon.txt".as_ref()])
    });
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// What `profile-phone-pair-reboot` puts on the phone's disk: a pairings
/// file of the bus's magic and version whose digest does not match (a
/// changed or torn file, docs/BUS.md), which the bus must refuse, log and
/// leave until its first write replaces it.
pub fn tampered_pairings_disk(img: &Path) -> Result<(), String> {
    let file = std::env::temp_dir().join(format!("kestrel-pairings-{}", std::process::id()));
    let mut bytes = b"KBPR\x01".to_vec();
    bytes.extend((0..96u8).map(|i| i.wrapping_mul(37)));
    let r = std::fs::write(&file, &bytes).map_err(|e| e.to_string()).and_then(|()| {
        let mtool =
            |tool: &str, args: &[&std::ffi::OsStr]| run(Command::new(tool).arg("-i").arg(img).args(args)).map(drop);
        mtool("mmd", &["::.bus".as_ref()])?;
        mtool("mcopy", &[file.as_os_str(), "::.bus/pairings".as_ref()])
    });
    let _ = std::fs::remove_file(&file);
    r
}

/// `profile-phone-pair-reboot`: the disk is clean, and the bus's pairings
/// file is one it wrote (its magic and version), with no temporary file
/// left.
pub fn profile_phone_pair_reboot(img: &Path) -> Result<String, String> {
    fsck_clean(img)?;
    let kept = mtype(img, ".bus/pairings")?;
    if !kept.starts_with(b"KBPR\x01") || kept.len() <= 5 + 32 {
        return Err(format!(".bus/pairings is not one the bus wrote: {} bytes", kept.len()));
    }
    if mtype(img, ".bus/pairings.tmp").is_ok() {
        return Err(".bus/pairings.tmp was left".into());
    }
    Ok(format!(
        "fsck.fat clean, .bus/pairings ({} bytes) written by the bus",
        kept.len()
    ))
}

/// The lines of `shopping.txt` on `profile-phone-app-files`'s disk.
pub const SHOPPING_LINES: [&str; 5] = ["eggs", "milk", "bread", "olive oil", "oranges"];

/// `profile-phone-app-terminal`: the file typed in the Terminal app is on the
/// disk with what was typed.
pub fn profile_phone_terminal(img: &Path) -> Result<String, String> {
    fsck_clean(img)?;
    let typed = mtype(img, "typed.txt")?;
    if typed != b"on the screen\n" {
        return Err(format!("typed.txt holds {:?}", String::from_utf8_lossy(&typed)));
    }
    Ok("fsck.fat clean, typed.txt read back by mtools".into())
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

/// `rpi4-sdcard-files` and `profile-rpi4-card`: both partitions of the card pass `fsck.fat -n`
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

/// `fsck.fat -n`'s report on `img`: empty when clean, else its lines
/// without the banner and the summary.
pub fn fsck_report(img: &Path) -> Result<Vec<String>, String> {
    let out = Command::new(sbin("fsck.fat"))
        .arg("-n")
        .arg(img)
        .output()
        .map_err(|e| format!("fsck.fat: {e} (the set-up installs dosfstools)"))?;
    if out.status.success() {
        return Ok(Vec::new());
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let name = img.to_string_lossy();
    Ok(text
        .lines()
        .filter(|l| !l.starts_with("fsck.fat") && !l.contains("Leaving filesystem unchanged") && !l.trim().is_empty())
        .filter(|l| !l.contains("files,") && !l.starts_with("/dev") && !l.contains(name.as_ref()))
        .map(String::from)
        .collect())
}

/// What a power cut may leave on a FAT volume whose writer orders its
/// writes (data, FATs, directories, with flushes between): the kinds of
/// damage `fsck.fat -n` reports on `img` (empty: clean), or an error naming
/// anything worse (a cross-link, a broken directory, a wrong size...).
///
/// The report is split into messages (a line at the left margin and the
/// indented lines after it); each must be one of: a stale free-cluster
/// count, or one marked unknown (0xFFFFFFFF: the FSInfo count is a hint the
/// FAT specification lets a writer leave unknown, and the file server does
/// so when the count it mounted was impossible), the second FAT lagging the
/// first, lost (unused but allocated) clusters, an orphaned long-name
/// entry, or a file whose cluster chain outlasts its size (an append whose
/// new size had not reached the directory entry: the file reads as it was).
pub fn power_cut_damage(img: &Path) -> Result<Vec<String>, String> {
    classify(&fsck_report(img)?)
}

/// [`power_cut_damage`] of `fsck.fat -n`'s report lines.
fn classify(report: &[String]) -> Result<Vec<String>, String> {
    let mut groups: Vec<String> = Vec::new();
    for l in report {
        if l.starts_with(' ') && !groups.is_empty() {
            let g = groups.last_mut().unwrap();
            g.push('\n');
            g.push_str(l.trim());
        } else {
            groups.push(l.trim().to_string());
        }
    }
    let mut kinds = Vec::new();
    let mut bad = Vec::new();
    for g in &groups {
        let kind = if g.contains("Free cluster summary wrong") {
            "stale free count"
        } else if g.contains("Free cluster summary uninitialized") {
            "free count unknown"
        } else if g.contains("FATs differ but appear to be intact") {
            "second FAT lagging"
        } else if g.contains("unused cluster") {
            "lost clusters"
        } else if g.contains("Orphaned long file name") {
            "orphaned long name"
        } else if chain_outlasts_size(g) {
            "chain longer than size"
        } else if g.starts_with('/') && !g.contains('\n') {
            // A path line that only introduces the message after it.
            continue;
        } else {
            bad.push(g.clone());
            continue;
        };
        kinds.push(kind.to_string());
    }
    if bad.is_empty() {
        kinds.sort();
        kinds.dedup();
        Ok(kinds)
    } else {
        Err(format!(
            "damage a cut must not leave: {bad:?} (full report: {report:?})"
        ))
    }
}

/// "File size is X bytes, cluster chain length is > X bytes" (or Y > X).
fn chain_outlasts_size(g: &str) -> bool {
    let Some(i) = g.find("File size is ") else { return false };
    let rest = &g[i + 13..];
    let size: u64 = rest.split(' ').next().and_then(|x| x.parse().ok()).unwrap_or(u64::MAX);
    let Some(j) = rest.find("cluster chain length is ") else {
        return false;
    };
    let chain = &rest[j + 24..];
    if chain.starts_with("> ") {
        return true;
    }
    chain
        .split(' ')
        .next()
        .and_then(|x| x.parse::<u64>().ok())
        .is_some_and(|c| c > size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(String::from).collect()
    }

    #[test]
    fn what_a_cut_may_leave_is_named_and_anything_worse_refused() {
        let ok = lines(
            "Reclaimed 23 unused clusters (11776 bytes).\n\
             Free cluster summary uninitialized (should be 128943)\n\
             Free cluster summary wrong (128950 vs. really 128943)\n\
             FATs differ but appear to be intact. Using first FAT.\n\
             /cut/3-2\n  File size is 1000 bytes, cluster chain length is > 1024 bytes.",
        );
        assert_eq!(
            classify(&ok).unwrap(),
            [
                "chain longer than size",
                "free count unknown",
                "lost clusters",
                "second FAT lagging",
                "stale free count"
            ]
        );
        for bad in [
            "/cut/3-1 and\n  /cut/4-0\n  share clusters.",
            "/cut/3-2\n  File size is 4096 bytes, cluster chain length is 2048 bytes.",
            "/cut\n  Bad short file name (3-1\u{1}).",
        ] {
            assert!(classify(&lines(bad)).is_err(), "{bad:?} passed");
        }
    }

    #[test]
    fn a_chain_longer_than_the_size_is_what_an_unfinished_append_leaves() {
        assert!(chain_outlasts_size(
            "/cut/3-2\nFile size is 1000 bytes, cluster chain length is > 1024 bytes."
        ));
        assert!(chain_outlasts_size(
            "File size is 1000 bytes, cluster chain length is 2048 bytes."
        ));
        // Shorter than the size: data the entry promises is missing.
        assert!(!chain_outlasts_size(
            "File size is 4096 bytes, cluster chain length is 2048 bytes."
        ));
        assert!(!chain_outlasts_size("Cluster 7 is cross-linked"));
    }
}
