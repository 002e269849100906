//! Reproducible disk images: an MBR with a FAT partition holding a few
//! files, and optionally a second FAT32 partition for data after it. Used
//! for the Raspberry Pi 4 SD card (`sdimage`, boot and data partitions)
//! and the U-Boot disk (`uboot`).
//!
//! Same files in, same bytes out: the volume ID, disk signature and every
//! timestamp are fixed, and files and directories are written in sorted
//! order. The FAT is made by the `fatfs` crate in memory; the MBR (512
//! bytes of fixed layout) by [`mbr`] here.

use crate::bail;
use crate::util::Result;
use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::Path;

pub const SECTOR: u64 = 512;
/// Partition start: 1 MiB, the usual alignment (and what the Pi tools use).
pub const PART_START_LBA: u32 = 2048;

/// MBR partition types.
pub const TYPE_FAT32_LBA: u8 = 0x0c;

/// Every file and directory gets this time (fatfs asks a `TimeProvider`).
/// A fixed date makes the image reproducible; 2024-01-01 00:00:00 rather
/// than the FAT epoch so that listings look sane.
#[derive(Debug)]
struct FixedTime;

const FIXED_DATE: fatfs::Date = fatfs::Date {
    year: 2024,
    month: 1,
    day: 1,
};

impl fatfs::TimeProvider for FixedTime {
    fn get_current_date(&self) -> fatfs::Date {
        FIXED_DATE
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        fatfs::DateTime {
            date: FIXED_DATE,
            time: fatfs::Time {
                hour: 0,
                min: 0,
                sec: 0,
                millis: 0,
            },
        }
    }
}

static FIXED_TIME: FixedTime = FixedTime;

/// What to put on the disk.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Size of the FAT partition in bytes (a multiple of 1 MiB).
    pub part_size: u64,
    pub part_type: u8,
    /// Mark the partition active (0x80): U-Boot's distro boot scans the
    /// bootable partitions first.
    pub bootable: bool,
    /// FAT volume label (at most 11 characters, upper case).
    pub label: &'static str,
    pub volume_id: u32,
    /// MBR disk signature (Linux shows it as the PARTUUID prefix).
    pub disk_id: u32,
    /// A second partition, FAT32, right after the first.
    pub data: Option<DataPartition>,
}

/// The data partition of a [`Spec`]: an empty FAT32 volume but for the
/// files given to [`build`] under `data/`.
#[derive(Debug, Clone)]
pub struct DataPartition {
    /// Bytes (a multiple of 1 MiB, at least 33 MiB).
    pub size: u64,
    pub label: &'static str,
    pub volume_id: u32,
}

impl Spec {
    /// The whole disk's size.
    pub fn disk_size(&self) -> u64 {
        part_offset() + self.part_size + self.data.as_ref().map_or(0, |d| d.size)
    }

    /// The data partition's first sector.
    pub fn data_start_lba(&self) -> u32 {
        PART_START_LBA + (self.part_size / SECTOR) as u32
    }

    /// The MBR's partition entries.
    pub fn partitions(&self) -> Result<Vec<Partition>> {
        let sectors =
            |bytes: u64| u32::try_from(bytes / SECTOR).map_err(|_| "partition too large for an MBR".to_string());
        let mut parts = vec![Partition {
            bootable: self.bootable,
            ty: self.part_type,
            start_lba: PART_START_LBA,
            sectors: sectors(self.part_size)?,
        }];
        if let Some(d) = &self.data {
            parts.push(Partition {
                bootable: false,
                ty: TYPE_FAT32_LBA,
                start_lba: self.data_start_lba(),
                sectors: sectors(d.size)?,
            });
        }
        Ok(parts)
    }

    /// Does a disk of `len` bytes starting with sector `first` have this
    /// layout (size and partition table; the files may be anything)?
    pub fn matches(&self, first: &[u8], len: u64) -> bool {
        let Ok(parts) = self.partitions() else {
            return false;
        };
        let want = mbr(self.disk_id, &parts);
        len == self.disk_size() && first.get(446..512) == Some(&want[446..512])
    }
}

/// Where files for the data partition go in [`Files`]: `data/NAME` is
/// `NAME` there.
pub const DATA_PREFIX: &str = "data/";

/// Files by path inside the volume (`/`-separated, no leading `/`).
/// A BTreeMap, so they are always written in the same (sorted) order.
pub type Files = BTreeMap<String, Vec<u8>>;

/// Builds the whole disk image in memory: `files` on the first partition,
/// those under [`DATA_PREFIX`] on the data partition.
pub fn build(spec: &Spec, files: &Files) -> Result<Vec<u8>> {
    let sizes = std::iter::once(spec.part_size).chain(spec.data.as_ref().map(|d| d.size));
    for size in sizes {
        if !size.is_multiple_of(1 << 20) || size < (33 << 20) {
            bail!("partition size {size} is not a whole number of MiB of at least 33 MiB (FAT32 needs 65525 clusters)");
        }
    }
    let (data_files, boot_files): (Files, Files) =
        files.clone().into_iter().partition(|(p, _)| p.starts_with(DATA_PREFIX));
    let start = part_offset();
    let mut disk = vec![0u8; spec.disk_size() as usize];
    let parts = spec.partitions()?;
    let volume = fat_volume(spec.part_size, spec.label, spec.volume_id, &boot_files, PART_START_LBA)?;
    disk[start as usize..(start + spec.part_size) as usize].copy_from_slice(&volume);
    if let Some(d) = &spec.data {
        let data_files: Files = data_files
            .into_iter()
            .map(|(p, b)| (p[DATA_PREFIX.len()..].to_string(), b))
            .collect();
        let lba = spec.data_start_lba();
        let volume = fat_volume(d.size, d.label, d.volume_id, &data_files, lba)?;
        let at = u64::from(lba) * SECTOR;
        disk[at as usize..(at + d.size) as usize].copy_from_slice(&volume);
    } else if !data_files.is_empty() {
        bail!("files under {DATA_PREFIX} but no data partition");
    }
    disk[..512].copy_from_slice(&mbr(spec.disk_id, &parts));
    Ok(disk)
}

fn io(what: &str) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("FAT volume: {what}: {e}")
}

/// A FAT32 volume of `size` bytes holding `files`, to start at sector
/// `start_lba` of its disk.
pub fn fat_volume(size: u64, label_text: &str, volume_id: u32, files: &Files, start_lba: u32) -> Result<Vec<u8>> {
    let mut label = [b' '; 11];
    if label_text.len() > 11
        || !label_text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        bail!("bad FAT volume label {label_text:?}");
    }
    label[..label_text.len()].copy_from_slice(label_text.as_bytes());
    let mut cursor = Cursor::new(vec![0u8; size as usize]);
    let opts = fatfs::FormatVolumeOptions::new()
        .fat_type(fatfs::FatType::Fat32)
        // 512-byte clusters: FAT32 is valid from 33 MiB on, and small files
        // waste little.
        .bytes_per_cluster(512)
        .volume_id(volume_id)
        .volume_label(label);
    fatfs::format_volume(&mut cursor, opts).map_err(io("format"))?;
    {
        let fs = fatfs::FileSystem::new(
            &mut cursor,
            fatfs::FsOptions::new()
                .time_provider(&FIXED_TIME)
                .update_accessed_date(false),
        )
        .map_err(io("mount"))?;
        let root = fs.root_dir();
        let mut made_dirs = std::collections::BTreeSet::new();
        for (path, data) in files {
            check_path(path)?;
            let mut dir_path = String::new();
            let parts: Vec<&str> = path.split('/').collect();
            for d in &parts[..parts.len() - 1] {
                if !dir_path.is_empty() {
                    dir_path.push('/');
                }
                dir_path.push_str(d);
                if made_dirs.insert(dir_path.clone()) {
                    root.create_dir(&dir_path).map_err(io(&dir_path))?;
                }
            }
            let mut f = root.create_file(path).map_err(io(path))?;
            f.truncate().map_err(io(path))?;
            f.write_all(data).map_err(io(path))?;
            f.flush().map_err(io(path))?;
        }
        drop(root);
        fs.unmount().map_err(io("unmount"))?;
    }
    let mut volume = cursor.into_inner();
    repair_fat32(&mut volume)?;
    set_hidden_sectors(&mut volume, start_lba)?;
    Ok(volume)
}

/// Little-endian fields of a FAT32 volume.
fn le16(b: &[u8], at: usize) -> u32 {
    u32::from(u16::from_le_bytes([b[at], b[at + 1]]))
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

const DIR_ENTRY: usize = 32;
const ATTR_LFN: u8 = 0x0f;
const ATTR_DIR: u8 = 0x10;

/// The geometry of a FAT32 volume, from its boot sector.
struct Fat32 {
    sector: usize,
    cluster_bytes: usize,
    fat_offset: usize,
    data_offset: usize,
    clusters: u32,
    root_cluster: u32,
    fs_info_offset: usize,
}

impl Fat32 {
    fn parse(v: &[u8]) -> Result<Fat32> {
        if v.len() < 512 || v[510..512] != [0x55, 0xaa] {
            bail!("FAT volume: no boot sector signature");
        }
        let sector = le16(v, 11) as usize;
        let spc = v[13] as usize;
        let reserved = le16(v, 14) as usize;
        let fats = v[16] as usize;
        let total = le32(v, 32) as usize;
        let fat_sectors = le32(v, 36) as usize;
        let data_sectors = total.saturating_sub(reserved + fats * fat_sectors);
        if sector == 0 || spc == 0 || fat_sectors == 0 || total * sector > v.len() {
            bail!("FAT volume: not a FAT32 boot sector");
        }
        Ok(Fat32 {
            sector,
            cluster_bytes: sector * spc,
            fat_offset: reserved * sector,
            data_offset: (reserved + fats * fat_sectors) * sector,
            clusters: (data_sectors / spc) as u32,
            root_cluster: le32(v, 44),
            fs_info_offset: le16(v, 48) as usize * sector,
        })
    }

    fn next(&self, v: &[u8], cluster: u32) -> u32 {
        le32(v, self.fat_offset + 4 * cluster as usize) & 0x0fff_ffff
    }

    /// The clusters of a chain, in order.
    fn chain(&self, v: &[u8], first: u32) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        let mut c = first;
        while (2..self.clusters + 2).contains(&c) {
            if out.len() > self.clusters as usize {
                bail!("FAT volume: cluster chain loops");
            }
            out.push(c);
            c = self.next(v, c);
        }
        Ok(out)
    }

    fn cluster_range(&self, c: u32) -> std::ops::Range<usize> {
        let start = self.data_offset + (c as usize - 2) * self.cluster_bytes;
        start..start + self.cluster_bytes
    }
}

/// The BPB's "hidden sectors" (sectors before the partition), in the boot
/// sector and its backup: fatfs formats a bare volume and leaves it 0.
fn set_hidden_sectors(v: &mut [u8], sectors: u32) -> Result<()> {
    let g = Fat32::parse(v)?;
    let backup = le16(v, 50) as usize;
    for at in [0, backup * g.sector] {
        if at + 512 <= v.len() && v[at + 510..at + 512] == [0x55, 0xaa] {
            v[at + 28..at + 32].copy_from_slice(&sectors.to_le_bytes());
        }
    }
    Ok(())
}

/// Puts right what fatfs 0.3.6 (the newest release) gets wrong, so that
/// `fsck.fat` passes and firmware walks the tree safely:
///
/// - it gives every entry long-name (LFN) entries, even `.` and `..`, so the
///   dot entries are not in a new directory's first two slots: those LFN
///   entries are removed;
/// - a top-level directory's `..` names the root's cluster, where FAT32
///   wants 0;
/// - the FSInfo free-cluster count is left "unknown": it is filled in.
pub fn repair_fat32(v: &mut [u8]) -> Result<()> {
    let g = Fat32::parse(v)?;
    let mut pending = vec![(g.root_cluster, true)];
    while let Some((dir, is_root)) = pending.pop() {
        let chain = g.chain(v, dir)?;
        let mut entries: Vec<[u8; DIR_ENTRY]> = Vec::new();
        'read: for &c in &chain {
            for e in v[g.cluster_range(c)].chunks_exact(DIR_ENTRY) {
                if e[0] == 0 {
                    break 'read;
                }
                entries.push(e.try_into().unwrap());
            }
        }
        let is_dot =
            |e: &[u8; DIR_ENTRY]| e[11] != ATTR_LFN && (&e[..11] == b".          " || &e[..11] == b"..         ");
        let mut kept: Vec<[u8; DIR_ENTRY]> = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            if e[11] == ATTR_LFN && e[0] != 0xe5 {
                // An LFN run belongs to the short entry after it.
                let owner = entries[i..].iter().find(|x| x[11] != ATTR_LFN);
                if owner.is_some_and(is_dot) {
                    continue;
                }
            }
            let mut e = *e;
            if &e[..11] == b"..         " && e[11] & ATTR_DIR != 0 {
                let target = (le16(&e, 20) << 16) | le16(&e, 26);
                if target == g.root_cluster {
                    e[20..22].fill(0);
                    e[26..28].fill(0);
                }
            }
            if e[11] & ATTR_DIR != 0 && e[11] != ATTR_LFN && e[0] != 0xe5 && !is_dot(&e) {
                let first = (le16(&e, 20) << 16) | le16(&e, 26);
                pending.push((first, false));
            }
            kept.push(e);
        }
        if !is_root && (kept.len() < 2 || !is_dot(&kept[0]) || !is_dot(&kept[1])) {
            bail!("FAT volume: a directory does not start with . and ..");
        }
        // Write the entries back into the same clusters; zeroes after them
        // mark the end of the directory.
        let mut bytes = kept.concat();
        bytes.resize(chain.len() * g.cluster_bytes, 0);
        for (c, chunk) in chain.iter().zip(bytes.chunks(g.cluster_bytes)) {
            let r = g.cluster_range(*c);
            v[r].copy_from_slice(chunk);
        }
    }
    // FSInfo: free clusters and a hint where the next free one is.
    let free: Vec<u32> = (2..g.clusters + 2).filter(|&c| g.next(v, c) == 0).collect();
    let fsi = g.fs_info_offset;
    if le32(v, fsi) != 0x4161_5252 || le32(v, fsi + 484) != 0x6141_7272 {
        bail!("FAT volume: no FSInfo sector");
    }
    v[fsi + 488..fsi + 492].copy_from_slice(&(free.len() as u32).to_le_bytes());
    v[fsi + 492..fsi + 496].copy_from_slice(&free.first().copied().unwrap_or(0xffff_ffff).to_le_bytes());
    Ok(())
}

fn check_path(path: &str) -> Result<()> {
    if path.is_empty()
        || path.starts_with('/')
        || path.ends_with('/')
        || path.split('/').any(|c| c.is_empty() || c == "." || c == "..")
    {
        bail!("bad path on the FAT volume: {path:?}");
    }
    Ok(())
}

/// One primary partition.
#[derive(Debug, Clone, Copy)]
pub struct Partition {
    pub bootable: bool,
    pub ty: u8,
    pub start_lba: u32,
    pub sectors: u32,
}

/// CHS address of an LBA in the conventional 255-head, 63-sector geometry,
/// saturating at the largest CHS value (as fdisk does for big disks).
fn chs(lba: u32) -> [u8; 3] {
    const HEADS: u32 = 255;
    const SPT: u32 = 63;
    let c = lba / (HEADS * SPT);
    if c > 1023 {
        return [0xfe, 0xff, 0xff];
    }
    let h = (lba / SPT) % HEADS;
    let s = lba % SPT + 1;
    [h as u8, (((c >> 2) & 0xc0) | s) as u8, c as u8]
}

/// A classic MBR: no boot code, up to four primary partitions.
///
/// Written here rather than with a crate: the layout is 16-byte entries at
/// fixed offsets, and the partitioning crates (e.g. mbrman) bring serde,
/// bincode and bitvec for these 512 bytes.
pub fn mbr(disk_id: u32, parts: &[Partition]) -> [u8; 512] {
    assert!(parts.len() <= 4, "an MBR holds four primary partitions");
    let mut m = [0u8; 512];
    m[440..444].copy_from_slice(&disk_id.to_le_bytes());
    for (i, p) in parts.iter().enumerate() {
        let e = &mut m[446 + 16 * i..446 + 16 * (i + 1)];
        e[0] = if p.bootable { 0x80 } else { 0 };
        e[1..4].copy_from_slice(&chs(p.start_lba));
        e[4] = p.ty;
        e[5..8].copy_from_slice(&chs(p.start_lba + p.sectors - 1));
        e[8..12].copy_from_slice(&p.start_lba.to_le_bytes());
        e[12..16].copy_from_slice(&p.sectors.to_le_bytes());
    }
    m[510] = 0x55;
    m[511] = 0xaa;
    m
}

/// Byte offset of the first partition (for `mtools`' `IMAGE@@OFFSET`).
pub fn part_offset() -> u64 {
    u64::from(PART_START_LBA) * SECTOR
}

/// `/usr/sbin/NAME` if it is there (a user's PATH may lack /usr/sbin), else NAME.
pub fn sbin_tool(name: &str) -> std::path::PathBuf {
    let p = Path::new("/usr/sbin").join(name);
    if p.is_file() {
        p
    } else {
        name.into()
    }
}

/// Checks a disk image made by [`build`] with independent tools: the
/// partition table with `sfdisk`, the filesystem with `fsck.fat -n`, and
/// that `mdir` lists every one of `names`.
pub fn check_with_tools(image: &Path, spec: &Spec, names: &[&str]) -> Result<()> {
    let dump = crate::util::output(std::process::Command::new(sbin_tool("sfdisk")).arg("--dump").arg(image))?;
    let want = format!(
        "start={:>12}, size={:>12}, type={:x}",
        PART_START_LBA,
        spec.part_size / SECTOR,
        spec.part_type
    );
    if !dump.lines().any(|l| l.contains(&want)) {
        bail!(
            "{}: sfdisk does not show the partition `{want}`:\n{dump}",
            image.display()
        );
    }
    if let Some(d) = &spec.data {
        let want = format!(
            "start={:>12}, size={:>12}, type=c",
            spec.data_start_lba(),
            d.size / SECTOR
        );
        if !dump.lines().any(|l| l.contains(&want)) {
            bail!(
                "{}: sfdisk does not show the data partition `{want}`:\n{dump}",
                image.display()
            );
        }
    }
    let bytes = std::fs::read(image).map_err(|e| format!("{}: {e}", image.display()))?;
    let mut volumes = vec![(part_offset(), spec.part_size)];
    if let Some(d) = &spec.data {
        volumes.push((u64::from(spec.data_start_lba()) * SECTOR, d.size));
    }
    for (offset, size) in volumes {
        let part = image.with_extension("part.tmp");
        let range = offset as usize..(offset + size).min(bytes.len() as u64) as usize;
        std::fs::write(&part, &bytes[range]).map_err(|e| format!("{}: {e}", part.display()))?;
        let fsck = crate::util::output(std::process::Command::new(sbin_tool("fsck.fat")).arg("-n").arg(&part));
        let _ = std::fs::remove_file(&part);
        fsck.map_err(|e| {
            format!(
                "{}: the FAT filesystem at byte {offset} does not check out: {e}",
                image.display()
            )
        })?;
    }
    let mut mdir = std::process::Command::new("mdir");
    mdir.env("MTOOLS_SKIP_CHECK", "1")
        .args(["-b", "-/", "-i"])
        .arg(format!("{}@@{}", image.display(), part_offset()))
        .arg("::");
    let listing = crate::util::output(&mut mdir)?;
    for n in names.iter().filter(|n| !n.starts_with(DATA_PREFIX)) {
        if !listing.lines().any(|l| l == format!("::/{n}")) {
            bail!("{}: mdir does not list {n}:\n{listing}", image.display());
        }
    }
    Ok(())
}

/// Copies one file out of the image's FAT partition with `mcopy` (a real,
/// independent FAT implementation: tests use it to check our images).
pub fn mcopy_out(image: &Path, file: &str, dest: &Path) -> Result<()> {
    mcopy_out_at(image, part_offset(), file, dest)
}

/// [`mcopy_out`] from the FAT volume at byte `offset` of the image.
pub fn mcopy_out_at(image: &Path, offset: u64, file: &str, dest: &Path) -> Result<()> {
    let mut c = std::process::Command::new("mcopy");
    c.env("MTOOLS_SKIP_CHECK", "1")
        .arg("-o")
        .arg("-n")
        .arg("-i")
        .arg(format!("{}@@{offset}", image.display()))
        .arg(format!("::{file}"))
        .arg(dest);
    crate::util::output(&mut c).map(|_| ())
}

/// Copies `src` into the FAT volume at byte `offset` of the image as
/// `file`, replacing a file of that name (`mcopy -o`).
pub fn mcopy_in_at(image: &Path, offset: u64, src: &Path, file: &str) -> Result<()> {
    let mut c = std::process::Command::new("mcopy");
    c.env("MTOOLS_SKIP_CHECK", "1")
        .arg("-o")
        .arg("-i")
        .arg(format!("{}@@{offset}", image.display()))
        .arg(src)
        .arg(format!("::{file}"));
    crate::util::output(&mut c).map(|_| ())
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;

    pub fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// sfdisk and fsck.fat live in /usr/sbin, which a user's PATH may lack.
    pub fn sbin(tool: &str) -> PathBuf {
        sbin_tool(tool)
    }

    /// Runs a host tool; the tools are part of the setup (mtools, dosfstools, fdisk).
    pub fn tool(cmd: &mut Command) -> String {
        let out = cmd
            .env("MTOOLS_SKIP_CHECK", "1")
            .output()
            .unwrap_or_else(|e| panic!("{:?}: {e} (run `cargo xtask setup`)", cmd.get_program()));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{cmd:?} failed: {text}");
        text
    }

    pub fn spec() -> Spec {
        Spec {
            part_size: 40 << 20,
            part_type: TYPE_FAT32_LBA,
            bootable: true,
            label: "KTEST",
            volume_id: 0x1234_abcd,
            disk_id: 0x4b45_5354,
            data: None,
        }
    }

    #[test]
    fn mbr_layout() {
        let m = mbr(
            0xdead_beef,
            &[Partition {
                bootable: true,
                ty: 0x0c,
                start_lba: 2048,
                sectors: 131072,
            }],
        );
        assert_eq!(&m[510..], &[0x55, 0xaa]);
        assert_eq!(&m[440..444], &0xdead_beef_u32.to_le_bytes());
        assert_eq!(m[446], 0x80);
        assert_eq!(m[450], 0x0c);
        assert_eq!(&m[454..458], &2048u32.to_le_bytes());
        assert_eq!(&m[458..462], &131072u32.to_le_bytes());
        assert!(m[462..510].iter().all(|&b| b == 0));
        // LBA 2048 = C0 H32 S33 in 255/63 geometry
        assert_eq!(&m[447..450], &[32, 33, 0]);
        assert_eq!(chs(u32::MAX), [0xfe, 0xff, 0xff]);
    }

    #[test]
    fn a_layout_is_known_by_its_size_and_partition_table() {
        let s = spec();
        let parts = s.partitions().unwrap();
        let first = mbr(s.disk_id, &parts);
        assert!(s.matches(&first, s.disk_size()));
        assert!(!s.matches(&first, s.disk_size() * 2), "another size");
        assert!(!s.matches(&[0u8; 512], s.disk_size()), "no partition table");
        assert!(!s.matches(&first[..100], s.disk_size()), "short");
        let other = Partition {
            sectors: parts[0].sectors - 8,
            ..parts[0]
        };
        assert!(
            !s.matches(&mbr(s.disk_id, &[other]), s.disk_size()),
            "another partition"
        );
        // The disk signature may differ (the layout is the partitions).
        assert!(s.matches(&mbr(7, &parts), s.disk_size()));
        let with_data = Spec {
            data: Some(DataPartition {
                size: 34 << 20,
                label: "D",
                volume_id: 1,
            }),
            ..spec()
        };
        assert_eq!(with_data.partitions().unwrap().len(), 2);
        assert!(!with_data.matches(&first, with_data.disk_size()), "no data partition");
    }

    #[test]
    fn bad_inputs() {
        let mut f = Files::new();
        f.insert("../x".into(), vec![]);
        assert!(build(&spec(), &f).unwrap_err().contains("bad path"));
        assert!(build(
            &Spec {
                part_size: 1 << 20,
                ..spec()
            },
            &Files::new()
        )
        .is_err());
        assert!(build(
            &Spec {
                label: "lower",
                ..spec()
            },
            &Files::new()
        )
        .is_err());
        let mut data = Files::new();
        data.insert("data/x".into(), vec![1]);
        let e = build(&spec(), &data).unwrap_err();
        assert!(e.contains("no data partition"), "{e}");
        let small = DataPartition {
            size: 8 << 20,
            label: "D",
            volume_id: 1,
        };
        let e = build(
            &Spec {
                data: Some(small),
                ..spec()
            },
            &Files::new(),
        )
        .unwrap_err();
        assert!(e.contains("at least 33 MiB"), "{e}");
    }

    /// The image checked by real tools: sfdisk (partition table), fsck.fat
    /// (filesystem), mtools (contents), and built twice for reproducibility.
    #[test]
    fn real_tools_read_the_image() {
        let dir = scratch("disk");
        let mut files = Files::new();
        files.insert("extlinux/extlinux.conf".into(), b"LABEL x\n".to_vec());
        let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        files.insert("kernel.img".into(), big.clone());
        files.insert("a/b/c.txt".into(), b"deep".to_vec());
        let img = build(&spec(), &files).unwrap();
        assert_eq!(img.len() as u64, part_offset() + (40 << 20));
        let path = dir.join("disk.img");
        crate::util::write_atomic(&path, &img).unwrap();

        let dump = tool(Command::new(sbin("sfdisk")).arg("--dump").arg(&path));
        assert!(dump.contains("label: dos"), "{dump}");
        assert!(dump.contains("label-id: 0x4b455354"), "{dump}");
        assert!(
            dump.contains("start=        2048, size=       81920, type=c, bootable"),
            "{dump}"
        );

        tool(
            Command::new(sbin("fsck.fat"))
                .arg("-n")
                .arg("-v")
                .arg(path_of_partition(&dir, &img)),
        );

        let listing = tool(
            Command::new("mdir")
                .arg("-i")
                .arg(format!("{}@@{}", path.display(), part_offset()))
                .arg("-/")
                .arg("::"),
        );
        assert!(listing.contains("KTEST"), "{listing}");
        assert!(listing.contains("1234-ABCD"), "{listing}");
        assert!(listing.contains("2024-01-01"), "{listing}");
        let out = dir.join("kernel.out");
        mcopy_out(&path, "kernel.img", &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), big);
        mcopy_out(&path, "extlinux/extlinux.conf", &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"LABEL x\n");

        check_with_tools(&path, &spec(), &["kernel.img", "extlinux/extlinux.conf", "a/b/c.txt"]).unwrap();
        let e = check_with_tools(&path, &spec(), &["missing.txt"]).unwrap_err();
        assert!(e.contains("does not list missing.txt"), "{e}");

        let again = build(&spec(), &files).unwrap();
        assert!(again == img, "two builds from the same files differ");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// fsck.fat checks a filesystem image, not a partitioned disk.
    fn path_of_partition(dir: &Path, img: &[u8]) -> PathBuf {
        let p = dir.join("part.img");
        std::fs::write(&p, &img[part_offset() as usize..]).unwrap();
        p
    }
}
