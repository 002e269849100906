//! FAT16 and FAT32 with long file names (VFAT), on a whole disk or in an
//! MBR or GPT partition, over any [`BlockDevice`]. `no_std` with `alloc`;
//! everything runs on the host too, so the partition and FAT readers are
//! unit-tested against images made by `mkfs.vfat` and mtools, checked
//! with `fsck.fat`, cut at random writes (power cuts) and fuzzed.
//!
//! Written here rather than taken from crates.io: `fatfs` 0.3 (the
//! maintained FAT crate, which the build tool uses on the host) needs its
//! `std` feature, and without it the `core_io` crate, which builds only on
//! old nightly compilers; `embedded-sdmmc` cannot create long names,
//! rename or remove directories, and neither lets the caller order writes
//! for crash safety (data, then both FATs, then directory entries, with a
//! device flush between), which the block cache here ([`cache`]) does.
//!
//! - [`part`]: finds the volume (MBR, GPT, or none).
//! - [`bpb`]: the boot sector: geometry, FAT16 or FAT32.
//! - [`cache`]: the sector cache: read-ahead, write-back, ordered flush.
//! - [`dir`]: directory entries, 8.3 and long names.
//! - [`index`]: directory indexes (lookups without scans).
//! - [`volume`]: the file system: nodes, paths, read/write, mkdir, rename...
//! - [`fuzz`]: what the fuzzer and the hostile-image tests run.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod bpb;
pub mod cache;
pub mod dir;
pub mod fuzz;
pub mod index;
pub mod part;
pub mod volume;

pub use volume::{Clock, DirEntry, Metadata, NodeId, OpenFlags, StatFs, Volume};

/// Bytes in a sector. Only 512-byte sectors are supported (what
/// virtio-blk, SD cards and `mkfs.vfat` use).
pub const SECTOR: usize = 512;

/// What went wrong. The file server maps these one to one onto its
/// protocol's error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No such file or directory.
    NotFound,
    /// The name exists already.
    Exists,
    /// A path component, or the target of a directory operation, is a file.
    NotADirectory,
    /// A file operation on a directory.
    IsADirectory,
    /// `rmdir` of a directory that has entries.
    NotEmpty,
    /// No free cluster, or a directory that cannot grow (FAT16's root).
    NoSpace,
    /// The device or the volume is read-only.
    ReadOnly,
    /// Not a valid FAT name (empty, too long, reserved characters, `.`).
    InvalidName,
    /// A file would exceed FAT's 4 GiB - 1 limit.
    TooLarge,
    /// The node is open or in use (unlink of an open file, moving a
    /// directory into itself).
    Busy,
    /// A path tried to leave the directory it is resolved in (`..` past
    /// the start).
    Escape,
    /// The block device failed a request.
    Io,
    /// The block device is not there now (the file server's: its driver
    /// died, is restarting or never came): the request may work once it
    /// is back. Changes waiting in the cache stay there until a write of
    /// them succeeds.
    Unavailable,
    /// The on-disk structures are inconsistent (bad cluster number, loop).
    Corrupt,
    /// No FAT file system here (or FAT12, or sectors other than 512 bytes).
    Unsupported,
    /// A stale or unknown node.
    BadNode,
}

/// A disk of 512-byte sectors. Requests may span many sectors; `buf`'s
/// length is a multiple of [`SECTOR`].
pub trait BlockDevice {
    /// Capacity in sectors.
    fn sectors(&self) -> u64;
    fn read_only(&self) -> bool {
        false
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Error>;
    /// Reads `n` sectors from `lba` and hands them to `sink` in order, a
    /// piece at a time: the index of the piece's first sector among the
    /// `n`, and whole sectors. The block cache reads this way, straight
    /// into its slots; a device that has the data in a buffer of its own
    /// (the file server's shared buffer with the driver) passes that, and
    /// the default reads into a temporary buffer.
    fn read_each(&mut self, lba: u64, n: usize, sink: &mut dyn FnMut(usize, &[u8])) -> Result<(), Error> {
        let mut buf = alloc::vec![0u8; n * SECTOR];
        self.read(lba, &mut buf)?;
        sink(0, &buf);
        Ok(())
    }
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), Error>;
    /// Makes every completed write durable.
    fn flush(&mut self) -> Result<(), Error>;
}

/// A disk in memory (tests, fuzzing, the power-cut model).
#[derive(Clone, Debug, Default)]
pub struct MemDisk {
    pub data: alloc::vec::Vec<u8>,
}

impl BlockDevice for MemDisk {
    fn sectors(&self) -> u64 {
        (self.data.len() / SECTOR) as u64
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Error> {
        let start = (lba as usize).checked_mul(SECTOR).ok_or(Error::Io)?;
        let src = self.data.get(start..start + buf.len()).ok_or(Error::Io)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), Error> {
        let start = (lba as usize).checked_mul(SECTOR).ok_or(Error::Io)?;
        let dst = self.data.get_mut(start..start + buf.len()).ok_or(Error::Io)?;
        dst.copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// A window of a device: the partition a volume lives in.
pub struct Slice<D> {
    pub dev: D,
    pub start: u64,
    pub sectors: u64,
}

impl<D: BlockDevice> BlockDevice for Slice<D> {
    fn sectors(&self) -> u64 {
        self.sectors
    }
    fn read_only(&self) -> bool {
        self.dev.read_only()
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.check(lba, buf.len())?;
        self.dev.read(self.start + lba, buf)
    }
    fn read_each(&mut self, lba: u64, n: usize, sink: &mut dyn FnMut(usize, &[u8])) -> Result<(), Error> {
        self.check(lba, n * SECTOR)?;
        self.dev.read_each(self.start + lba, n, sink)
    }
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), Error> {
        self.check(lba, buf.len())?;
        self.dev.write(self.start + lba, buf)
    }
    fn flush(&mut self) -> Result<(), Error> {
        self.dev.flush()
    }
}

impl<D> Slice<D> {
    fn check(&self, lba: u64, len: usize) -> Result<(), Error> {
        let n = (len / SECTOR) as u64;
        if !len.is_multiple_of(SECTOR) || lba.checked_add(n).is_none_or(|e| e > self.sectors) {
            return Err(Error::Io);
        }
        Ok(())
    }
}

pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}

#[cfg(test)]
mod tests;
