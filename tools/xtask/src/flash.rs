//! `cargo xtask flash --device /dev/sdX [--image PATH] [--yes]`: write the
//! Raspberry Pi 4 SD card image to a card, safely.
//!
//! Before anything is written the device must be a whole disk that the
//! kernel calls removable (or an SD card in an MMC slot), with a medium, not
//! read-only, with nothing on it mounted, used as swap or held by LVM, LUKS
//! or RAID, and not holding the running system (`/` or `/boot`). Its model
//! and size are shown and the user must type `yes` (unless `--yes`). After
//! writing, the data is synced and read back from the device (bypassing the
//! page cache) and compared.
//!
//! All the checks read sysfs and procfs below a root directory, so that the
//! unit tests run them against a fake `/sys` and `/proc`.

use crate::bail;
use crate::sdimage::{self, Board};
use crate::util::Result;
use std::collections::BTreeSet;
use std::io::{BufRead, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

/// A disk that passed the safety checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Kernel name: `sdb`, `mmcblk0`.
    pub name: String,
    /// `/dev/<name>`
    pub dev: PathBuf,
    /// Vendor and model as sysfs has them (may be empty).
    pub model: String,
    pub size: u64,
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

/// `path` (absolute, as the user or /proc/mounts wrote it) inside `root`,
/// with symlinks (e.g. /dev/disk/by-id/...) resolved within `root`.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let mut cur = PathBuf::from("/");
    let mut rest: Vec<String> = path.split('/').filter(|c| !c.is_empty()).map(String::from).collect();
    rest.reverse();
    let mut hops = 0;
    while let Some(c) = rest.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        let next = cur.join(&c);
        let inside = root.join(next.strip_prefix("/").unwrap());
        match std::fs::read_link(&inside) {
            Ok(target) => {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                let t = target.to_string_lossy().into_owned();
                if t.starts_with('/') {
                    cur = PathBuf::from("/");
                }
                rest.extend(t.split('/').filter(|c| !c.is_empty()).map(String::from).rev());
            }
            Err(_) => cur = next,
        }
    }
    root.join(cur.strip_prefix("/").unwrap()).exists().then_some(cur)
}

/// The kernel block device name behind a `/dev/...` path: `/dev/sdb1` ->
/// `sdb1`, `/dev/mapper/vg-root` -> `dm-0`, by-uuid links followed.
fn block_name(root: &Path, dev_path: &str) -> Option<String> {
    let p = resolve(root, dev_path).unwrap_or_else(|| PathBuf::from(dev_path));
    let comps: Vec<String> = p
        .components()
        .filter_map(|c| {
            if let Component::Normal(s) = c {
                Some(s.to_string_lossy().into_owned())
            } else {
                None
            }
        })
        .collect();
    match comps.as_slice() {
        [dev, mapper, name] if dev == "dev" && mapper == "mapper" => dm_by_name(root, name),
        [dev, name] if dev == "dev" => Some(name.clone()),
        _ => None,
    }
}

fn dm_by_name(root: &Path, name: &str) -> Option<String> {
    let dir = std::fs::read_dir(root.join("sys/block")).ok()?;
    dir.flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|b| read_trim(&root.join("sys/block").join(b).join("dm/name")).as_deref() == Some(name))
}

/// Partitions of a disk (`sdb1`, `mmcblk0p1`).
fn partitions(root: &Path, disk: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(root.join("sys/block").join(disk)) else {
        return Vec::new();
    };
    let mut v: Vec<String> = dir
        .flatten()
        .filter(|e| e.path().join("partition").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The whole disk a partition belongs to.
fn disk_of_partition(root: &Path, part: &str) -> Option<String> {
    let dir = std::fs::read_dir(root.join("sys/block")).ok()?;
    dir.flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|d| root.join("sys/block").join(d).join(part).join("partition").is_file())
}

/// The whole disks a block device lives on: itself, the disk of a
/// partition, or (device mapper, md) the disks under its slaves.
fn disks_under(root: &Path, name: &str, depth: u32) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if depth > 8 {
        return out;
    }
    if let Some(d) = disk_of_partition(root, name) {
        out.insert(d);
        return out;
    }
    let slaves: Vec<String> = std::fs::read_dir(root.join("sys/block").join(name).join("slaves"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if slaves.is_empty() {
        out.insert(name.to_string());
    }
    for s in slaves {
        out.extend(disks_under(root, &s, depth + 1));
    }
    out
}

/// `/proc/mounts` fields are octal-escaped (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points whose source lives on `disk`: (source, mount point).
fn mounts_on(root: &Path, disk: &str) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(root.join("proc/mounts")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((unescape(f.next()?), unescape(f.next()?)))
        })
        .filter(|(src, _)| src.starts_with("/dev/"))
        .filter(|(src, _)| block_name(root, src).is_some_and(|b| disks_under(root, &b, 0).contains(disk)))
        .collect()
}

fn swaps_on(root: &Path, disk: &str) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(root.join("proc/swaps")) else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(unescape))
        .filter(|src| {
            src.starts_with("/dev/") && block_name(root, src).is_some_and(|b| disks_under(root, &b, 0).contains(disk))
        })
        .collect()
}

/// Is this an SD card in an MMC slot? Built-in readers often report
/// `removable` 0, but an SD card (unlike soldered eMMC, type "MMC") is
/// removable media.
fn is_sd_card(root: &Path, name: &str) -> bool {
    name.starts_with("mmcblk")
        && read_trim(&root.join("sys/block").join(name).join("device/type")).as_deref() == Some("SD")
}

pub fn human(bytes: u64) -> String {
    let gib = bytes as f64 / (1u64 << 30) as f64;
    if gib >= 1.0 {
        format!("{gib:.1} GiB")
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

/// All the safety checks; `root` is `/` except in tests.
pub fn check_device(root: &Path, device: &str) -> Result<Target> {
    if !device.starts_with("/dev/") {
        bail!("{device}: give the device as /dev/NAME (e.g. /dev/sdb or /dev/mmcblk0)");
    }
    let Some(name) = resolve(root, device).and_then(|_| block_name(root, device)) else {
        bail!("{device}: no such device");
    };
    let sys = root.join("sys/block").join(&name);
    if !sys.is_dir() {
        if let Some(disk) = disk_of_partition(root, &name) {
            bail!("{device} is a partition ({name}); give the whole card, /dev/{disk}");
        }
        bail!("{device} ({name}) is not a disk the kernel knows (no /sys/block/{name})");
    }
    let removable = read_trim(&sys.join("removable")).as_deref() == Some("1");
    if !removable && !is_sd_card(root, &name) {
        bail!("refusing /dev/{name}: it is not removable (/sys/block/{name}/removable is not 1), so it may be an internal disk. Use a card reader for the SD card");
    }
    let sectors: u64 = read_trim(&sys.join("size")).and_then(|s| s.parse().ok()).unwrap_or(0);
    if sectors == 0 {
        bail!("/dev/{name} has no medium (size 0): is the card inserted?");
    }
    if read_trim(&sys.join("ro")).as_deref() == Some("1") {
        bail!("/dev/{name} is read-only (the card's write-protect switch?)");
    }
    // The running system first: the most important refusal to explain.
    let mounts = mounts_on(root, &name);
    if let Some((src, mp)) = mounts
        .iter()
        .find(|(_, mp)| mp == "/" || mp == "/boot" || mp.starts_with("/boot/"))
    {
        bail!("refusing /dev/{name}: it holds the running system ({src} is mounted at {mp})");
    }
    if !mounts.is_empty() {
        let list: Vec<String> = mounts.iter().map(|(s, m)| format!("{s} on {m}")).collect();
        bail!(
            "refusing /dev/{name}: it is mounted ({}); unmount it first, e.g. `sudo umount {}`",
            list.join(", "),
            mounts[0].0
        );
    }
    let swaps = swaps_on(root, &name);
    if !swaps.is_empty() {
        bail!(
            "refusing /dev/{name}: it is in use as swap ({}); `sudo swapoff` it first",
            swaps.join(", ")
        );
    }
    for b in std::iter::once(name.clone()).chain(partitions(root, &name)) {
        let dir = if b == name {
            sys.join("holders")
        } else {
            sys.join(&b).join("holders")
        };
        let holders: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if !holders.is_empty() {
            bail!(
                "refusing /dev/{name}: /dev/{b} is in use by {} (LVM, LUKS or RAID); release it first",
                holders.join(", ")
            );
        }
    }
    let dev = sys.join("device");
    let vendor = read_trim(&dev.join("vendor")).unwrap_or_default();
    let model = read_trim(&dev.join("model"))
        .or_else(|| read_trim(&dev.join("name")))
        .unwrap_or_default();
    let model = format!("{vendor} {model}").trim().to_string();
    Ok(Target {
        dev: PathBuf::from("/dev").join(&name),
        name,
        model: if model.is_empty() {
            "(unknown model)".into()
        } else {
            model
        },
        size: sectors * 512,
    })
}

const CHUNK: usize = 4 << 20;
const ALIGN: usize = 4096;

/// Writes `image` to `dev`, syncs, reads it back and compares. A block
/// device is opened exclusively (the kernel refuses if anything has it
/// mounted) and read back with O_DIRECT, so the comparison sees the card,
/// not the page cache. Regular files (tests) are written plainly.
pub fn write_and_verify(image: &Path, dev: &Path, progress: bool) -> Result<()> {
    let err = |what: &str, e: std::io::Error| format!("{what} {}: {e}", dev.display());
    let is_block = std::fs::metadata(dev)
        .map(|m| m.file_type().is_block_device())
        .unwrap_or(false);
    let mut src = std::fs::File::open(image).map_err(|e| format!("{}: {e}", image.display()))?;
    let len = src.metadata().map_err(|e| e.to_string())?.len();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if is_block {
        opts.custom_flags(libc::O_EXCL);
    }
    let mut out = opts.open(dev).map_err(|e| err("cannot open", e))?;
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    loop {
        let n = read_full(&mut src, &mut buf).map_err(|e| format!("{}: {e}", image.display()))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(|e| err("writing", e))?;
        done += n as u64;
        if progress {
            eprint!("\rxtask: written {} of {} MiB", done >> 20, len >> 20);
        }
    }
    out.sync_all().map_err(|e| err("syncing", e))?;
    drop(out);
    if progress {
        eprintln!();
    }
    verify(image, dev, is_block)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Compares `dev` with `image` over the image's length.
pub fn verify(image: &Path, dev: &Path, direct: bool) -> Result<()> {
    let mut want = std::fs::File::open(image).map_err(|e| format!("{}: {e}", image.display()))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    if direct {
        opts.custom_flags(libc::O_DIRECT);
    }
    let mut got = opts
        .open(dev)
        .map_err(|e| format!("cannot open {} to verify: {e}", dev.display()))?;
    // O_DIRECT wants an aligned buffer and whole blocks.
    let mut raw = vec![0u8; CHUNK + ALIGN];
    let off = raw.as_ptr().align_offset(ALIGN);
    let got_buf = &mut raw[off..off + CHUNK];
    let mut want_buf = vec![0u8; CHUNK];
    let mut pos = 0u64;
    loop {
        let n = read_full(&mut want, &mut want_buf).map_err(|e| format!("{}: {e}", image.display()))?;
        if n == 0 {
            return Ok(());
        }
        let whole = n.div_ceil(ALIGN) * ALIGN;
        let m = read_full(&mut got, &mut got_buf[..whole.min(CHUNK)])
            .map_err(|e| format!("reading back {}: {e}", dev.display()))?;
        if m < n {
            bail!(
                "verify failed: {} ends at byte {}, the image has more",
                dev.display(),
                pos + m as u64
            );
        }
        if let Some(i) = (0..n).find(|&i| got_buf[i] != want_buf[i]) {
            bail!(
                "verify failed: {} differs from the image at byte {}",
                dev.display(),
                pos + i as u64
            );
        }
        pos += n as u64;
    }
}

fn confirm(question: &str) -> Result<bool> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to ask for confirmation on; pass --yes if you are sure");
    }
    eprint!("{question}");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    Ok(line.trim() == "yes")
}

/// `cargo xtask flash --device /dev/sdX [--image PATH] [--yes]`
pub fn main(args: &crate::cli::FlashArgs) -> Result<()> {
    let (device, image, yes) = (&args.device, args.image.clone(), args.yes);
    // Check the device before building anything: a refusal comes at once.
    let target = check_device(Path::new("/"), device)?;
    let image = match image {
        Some(p) => p,
        None => {
            crate::setup::ensure(crate::setup::Need::Fetch)?;
            let opts = crate::build::Options {
                device: "rpi4".to_string(),
                ..Default::default()
            };
            sdimage::make(Board::Rpi4, &opts, None, None)?
        }
    };
    let len = std::fs::metadata(&image)
        .map_err(|e| format!("{}: {e}", image.display()))?
        .len();
    let mut head = [0u8; 512];
    std::fs::File::open(&image)
        .and_then(|mut f| f.read_exact(&mut head))
        .map_err(|e| format!("{}: {e}", image.display()))?;
    if head[510..] != [0x55, 0xaa] {
        bail!("{} has no MBR signature: not a disk image", image.display());
    }
    if len > target.size {
        bail!(
            "{} ({}) does not fit on {} ({})",
            image.display(),
            human(len),
            target.dev.display(),
            human(target.size)
        );
    }
    eprintln!("xtask: image:  {} ({})", image.display(), human(len));
    eprintln!(
        "xtask: device: {} - {}, {}, removable",
        target.dev.display(),
        target.model,
        human(target.size)
    );
    if !yes
        && !confirm(&format!(
            "Everything on {} ({}, {}) will be lost. Type yes to write: ",
            target.dev.display(),
            target.model,
            human(target.size)
        ))?
    {
        bail!("not confirmed; nothing written");
    }
    // Checked again right before opening: the card may have been mounted
    // (desktop automount) while we waited for the answer.
    check_device(Path::new("/"), device)?;
    write_and_verify(&image, &target.dev, true)?;
    println!(
        "{}: written and verified; you can remove the card",
        target.dev.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::tests::scratch;

    /// A fake machine: sda (internal, holds /), sdb (a USB card reader with
    /// a card, two partitions), mmcblk0 (SD slot), mmcblk1 (eMMC), dm-0.
    struct Fake {
        root: PathBuf,
    }

    impl Fake {
        fn new(name: &str) -> Fake {
            let root = scratch(name);
            let f = Fake { root };
            f.disk("sda", "0", 500 << 21, "ATA", "Internal SSD", &["sda1", "sda2"]);
            f.disk("sdb", "1", 30 << 21, "Generic", "SD Card Reader", &["sdb1", "sdb2"]);
            f.disk("mmcblk0", "0", 16 << 21, "", "SD16G", &["mmcblk0p1"]);
            f.write("sys/block/mmcblk0/device/type", "SD\n");
            f.disk("mmcblk1", "0", 32 << 21, "", "EMMC32", &["mmcblk1p1"]);
            f.write("sys/block/mmcblk1/device/type", "MMC\n");
            f.mounts("/dev/sda2 / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n/dev/sda1 /boot/efi vfat rw 0 0\n");
            f.write("proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n");
            f
        }

        fn write(&self, rel: &str, text: &str) {
            let p = self.root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }

        fn disk(&self, name: &str, removable: &str, sectors: u64, vendor: &str, model: &str, parts: &[&str]) {
            let s = format!("sys/block/{name}");
            self.write(&format!("{s}/removable"), &format!("{removable}\n"));
            self.write(&format!("{s}/size"), &format!("{sectors}\n"));
            self.write(&format!("{s}/ro"), "0\n");
            self.write(&format!("{s}/device/vendor"), &format!("{vendor}  \n"));
            self.write(&format!("{s}/device/model"), &format!("{model}\n"));
            std::fs::create_dir_all(self.root.join(&s).join("holders")).unwrap();
            self.write(&format!("dev/{name}"), "");
            for (i, p) in parts.iter().enumerate() {
                self.write(&format!("{s}/{p}/partition"), &format!("{}\n", i + 1));
                std::fs::create_dir_all(self.root.join(&s).join(p).join("holders")).unwrap();
                self.write(&format!("dev/{p}"), "");
            }
        }

        fn mounts(&self, text: &str) {
            self.write("proc/mounts", text);
        }

        fn check(&self, dev: &str) -> Result<Target> {
            check_device(&self.root, dev)
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    #[test]
    fn accepts_a_removable_card() {
        let f = Fake::new("flash-ok");
        let t = f.check("/dev/sdb").unwrap();
        assert_eq!(
            t,
            Target {
                name: "sdb".into(),
                dev: "/dev/sdb".into(),
                model: "Generic SD Card Reader".into(),
                size: 30 << 30
            }
        );
        assert_eq!(human(t.size), "30.0 GiB");
        // by-id links are followed
        std::fs::create_dir_all(f.root.join("dev/disk/by-id")).unwrap();
        std::os::unix::fs::symlink("../../sdb", f.root.join("dev/disk/by-id/usb-Generic_SD-0:0")).unwrap();
        assert_eq!(f.check("/dev/disk/by-id/usb-Generic_SD-0:0").unwrap().name, "sdb");
        // an SD card in a built-in slot that says removable=0
        assert_eq!(f.check("/dev/mmcblk0").unwrap().model, "SD16G");
    }

    #[test]
    fn refuses_internal_disks() {
        let f = Fake::new("flash-internal");
        let e = f.check("/dev/sda").unwrap_err();
        assert!(e.contains("not removable"), "{e}");
        let e = f.check("/dev/mmcblk1").unwrap_err();
        assert!(e.contains("not removable"), "{e}");
    }

    #[test]
    fn refuses_bad_names() {
        let f = Fake::new("flash-names");
        assert!(f.check("/dev/sdz").unwrap_err().contains("no such device"));
        assert!(f.check("sdb").unwrap_err().contains("/dev/NAME"));
        let e = f.check("/dev/sdb1").unwrap_err();
        assert!(e.contains("is a partition") && e.contains("/dev/sdb"), "{e}");
        f.write("dev/null", "");
        assert!(f.check("/dev/null").unwrap_err().contains("not a disk"));
    }

    #[test]
    fn refuses_mounted_cards() {
        let f = Fake::new("flash-mounted");
        f.mounts("/dev/sda2 / ext4 rw 0 0\n/dev/sdb1 /media/me/BOOT\\040CARD vfat rw 0 0\n");
        let e = f.check("/dev/sdb").unwrap_err();
        assert!(
            e.contains("is mounted") && e.contains("/dev/sdb1 on /media/me/BOOT CARD") && e.contains("umount"),
            "{e}"
        );
        // mounted through a by-uuid link
        std::fs::create_dir_all(f.root.join("dev/disk/by-uuid")).unwrap();
        std::os::unix::fs::symlink("../../sdb2", f.root.join("dev/disk/by-uuid/1234-ABCD")).unwrap();
        f.mounts("/dev/disk/by-uuid/1234-ABCD /mnt vfat rw 0 0\n");
        assert!(f.check("/dev/sdb").unwrap_err().contains("is mounted"));
        // the whole disk mounted without a partition table
        f.mounts("/dev/sdb /mnt vfat rw 0 0\n");
        assert!(f.check("/dev/sdb").unwrap_err().contains("is mounted"));
    }

    #[test]
    fn refuses_the_running_system() {
        let f = Fake::new("flash-system");
        f.mounts("/dev/sdb2 / ext4 rw 0 0\n/dev/sdb1 /boot vfat rw 0 0\n");
        let e = f.check("/dev/sdb").unwrap_err();
        assert!(e.contains("running system") && e.contains("mounted at /"), "{e}");
        f.mounts("/dev/sda2 / ext4 rw 0 0\n/dev/sdb1 /boot/firmware vfat rw 0 0\n");
        assert!(f.check("/dev/sdb").unwrap_err().contains("running system"));
        // root on LVM over the card: /dev/mapper/vg-root = dm-0 over sdb2
        f.write("sys/block/dm-0/dm/name", "vg-root\n");
        std::fs::create_dir_all(f.root.join("sys/block/dm-0/slaves/sdb2")).unwrap();
        f.write("dev/mapper/vg-root", "");
        f.mounts("/dev/mapper/vg-root / ext4 rw 0 0\n");
        let e = f.check("/dev/sdb").unwrap_err();
        assert!(e.contains("running system") && e.contains("/dev/mapper/vg-root"), "{e}");
    }

    #[test]
    fn refuses_cards_in_use() {
        let f = Fake::new("flash-inuse");
        f.write(
            "proc/swaps",
            "Filename\tType\tSize\tUsed\tPriority\n/dev/sdb2\tpartition\t1024\t0\t-2\n",
        );
        assert!(f.check("/dev/sdb").unwrap_err().contains("swap"));
        f.write("proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n");
        std::fs::create_dir_all(f.root.join("sys/block/sdb/sdb2/holders/dm-3")).unwrap();
        let e = f.check("/dev/sdb").unwrap_err();
        assert!(e.contains("in use by dm-3"), "{e}");
    }

    #[test]
    fn refuses_empty_or_locked_readers() {
        let f = Fake::new("flash-medium");
        f.write("sys/block/sdb/size", "0\n");
        assert!(f.check("/dev/sdb").unwrap_err().contains("no medium"));
        f.write("sys/block/sdb/size", "1000\n");
        f.write("sys/block/sdb/ro", "1\n");
        assert!(f.check("/dev/sdb").unwrap_err().contains("read-only"));
    }

    #[test]
    fn write_then_verify() {
        let dir = scratch("flash-write");
        let img = dir.join("img");
        let dev = dir.join("dev");
        let data: Vec<u8> = (0..(CHUNK + 12345) as u32).map(|i| (i % 241) as u8).collect();
        std::fs::write(&img, &data).unwrap();
        std::fs::write(&dev, vec![0xffu8; data.len() + 4096]).unwrap();
        write_and_verify(&img, &dev, false).unwrap();
        let written = std::fs::read(&dev).unwrap();
        assert_eq!(&written[..data.len()], &data[..]);
        // a device that does not hold the image fails verification
        let mut bad = data.clone();
        bad[CHUNK + 7] ^= 1;
        std::fs::write(&dev, &bad).unwrap();
        let e = verify(&img, &dev, false).unwrap_err();
        assert!(e.contains(&format!("at byte {}", CHUNK + 7)), "{e}");
        std::fs::write(&dev, &data[..100]).unwrap();
        assert!(verify(&img, &dev, false).unwrap_err().contains("ends at byte 100"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// On a real block device (root only, e.g. a loop device:
    /// `KESTREL_FLASH_TEST_DEV=$(sudo losetup -f --show FILE) cargo test -p xtask -- --ignored`):
    /// the real /sys refuses it (loop devices are not removable), and the
    /// O_EXCL write and O_DIRECT read-back work.
    #[test]
    #[ignore]
    fn real_block_device() {
        let dev = std::env::var("KESTREL_FLASH_TEST_DEV").expect("KESTREL_FLASH_TEST_DEV=/dev/loopN");
        let e = check_device(Path::new("/"), &dev).unwrap_err();
        assert!(e.contains("not removable"), "{e}");
        let dir = scratch("flash-real");
        let img = dir.join("img");
        let data: Vec<u8> = (0..(3 * CHUNK + 512) as u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&img, &data).unwrap();
        write_and_verify(&img, Path::new(&dev), false).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mount_escapes() {
        assert_eq!(unescape("/media/a\\040b\\011c"), "/media/a b\tc");
        assert_eq!(unescape("plain\\"), "plain\\");
    }
}
