//! Where the volume is: a whole-disk FAT, or a partition of an MBR or GPT
//! partition table. Every field is bounds-checked against the disk; a
//! malformed table is an error, never a panic.

use crate::{le32, le64, BlockDevice, Error, SECTOR};
use alloc::vec::Vec;

/// One partition, in sectors of the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    pub start: u64,
    pub sectors: u64,
    /// Whether the table marks it as a FAT (MBR type 0x04/0x06/0x0b/0x0c/
    /// 0x0e, GPT basic data or EFI system partition).
    pub fat: bool,
}

const GPT_BASIC_DATA: [u8; 16] = guid(
    0xEBD0A0A2,
    0xB9E5,
    0x4433,
    [0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26, 0x99, 0xC7],
);
const GPT_ESP: [u8; 16] = guid(
    0xC12A7328,
    0xF81F,
    0x11D2,
    [0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B],
);

/// A GUID in its on-disk (mixed-endian) byte order.
const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7],
    ]
}

/// The partitions of the disk: `None` if sector 0 is itself a FAT boot
/// sector (a whole-disk volume, as `mkfs.vfat` on a plain file makes),
/// otherwise the MBR's (or, behind a protective MBR, the GPT's) entries.
pub fn partitions<D: BlockDevice>(dev: &mut D) -> Result<Option<Vec<Partition>>, Error> {
    let mut s0 = [0u8; SECTOR];
    dev.read(0, &mut s0)?;
    partitions_from(dev, &s0)
}

/// [`partitions`] with sector 0 already read into `s0`.
fn partitions_from<D: BlockDevice>(dev: &mut D, s0: &[u8; SECTOR]) -> Result<Option<Vec<Partition>>, Error> {
    let disk = dev.sectors();
    if crate::bpb::looks_like_fat(s0) {
        return Ok(None);
    }
    if s0[510] != 0x55 || s0[511] != 0xaa {
        return Err(Error::Unsupported);
    }
    let mut out = Vec::new();
    for i in 0..4 {
        let e = &s0[446 + 16 * i..462 + 16 * i];
        let kind = e[4];
        let (start, count) = (le32(e, 8) as u64, le32(e, 12) as u64);
        if kind == 0 || count == 0 {
            continue;
        }
        if kind == 0xee {
            return gpt(dev, disk).map(Some);
        }
        if start == 0 || start.checked_add(count).is_none_or(|e| e > disk) {
            return Err(Error::Corrupt);
        }
        out.push(Partition {
            start,
            sectors: count,
            fat: matches!(kind, 0x04 | 0x06 | 0x0b | 0x0c | 0x0e),
        });
    }
    Ok(Some(out))
}

fn gpt<D: BlockDevice>(dev: &mut D, disk: u64) -> Result<Vec<Partition>, Error> {
    let mut h = [0u8; SECTOR];
    dev.read(1, &mut h)?;
    if &h[0..8] != b"EFI PART" {
        return Err(Error::Corrupt);
    }
    let entries_lba = le64(&h, 72);
    let count = le32(&h, 80) as u64;
    let size = le32(&h, 84) as u64;
    if !(128..=SECTOR as u64).contains(&size) || !(SECTOR as u64).is_multiple_of(size) || count > 1024 {
        return Err(Error::Corrupt);
    }
    let per_sector = SECTOR as u64 / size;
    let sectors = count.div_ceil(per_sector);
    if entries_lba < 2 || entries_lba.checked_add(sectors).is_none_or(|e| e > disk) {
        return Err(Error::Corrupt);
    }
    let mut out = Vec::new();
    let mut s = [0u8; SECTOR];
    for i in 0..count {
        if i % per_sector == 0 {
            dev.read(entries_lba + i / per_sector, &mut s)?;
        }
        let off = ((i % per_sector) * size) as usize;
        let e = &s[off..off + size as usize];
        if e[0..16].iter().all(|&b| b == 0) {
            continue;
        }
        let (first, last) = (le64(e, 32), le64(e, 40));
        if first == 0 || last < first || last >= disk {
            return Err(Error::Corrupt);
        }
        out.push(Partition {
            start: first,
            sectors: last - first + 1,
            fat: e[0..16] == GPT_BASIC_DATA || e[0..16] == GPT_ESP,
        });
    }
    Ok(out)
}

/// The volume to mount: partition `index` (0-based, in table order) if
/// given, else the first FAT partition, or the whole disk. Returns its
/// first sector and length.
pub fn find_volume<D: BlockDevice>(dev: &mut D, index: Option<usize>) -> Result<(u64, u64), Error> {
    let mut s0 = [0u8; SECTOR];
    dev.read(0, &mut s0)?;
    find_volume_from(dev, index, &s0)
}

/// [`find_volume`] with the disk's sector 0 already read into `s0` (the
/// mount reads it with the sectors after it, in one request).
pub(crate) fn find_volume_from<D: BlockDevice>(
    dev: &mut D,
    index: Option<usize>,
    s0: &[u8; SECTOR],
) -> Result<(u64, u64), Error> {
    match (partitions_from(dev, s0)?, index) {
        (None, None | Some(0)) => Ok((0, dev.sectors())),
        (None, Some(_)) => Err(Error::NotFound),
        (Some(parts), Some(i)) => parts.get(i).map(|p| (p.start, p.sectors)).ok_or(Error::NotFound),
        (Some(parts), None) => parts
            .iter()
            .find(|p| p.fat)
            .map(|p| (p.start, p.sectors))
            .ok_or(Error::NotFound),
    }
}
