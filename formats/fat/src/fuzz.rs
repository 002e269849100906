//! What the fuzzer (`cargo xtask fuzz fat`, `fuzz/`) and the hostile-image
//! tests run on an image: mount it and use it; every outcome but a panic
//! or a hang is fine.

use crate::volume::{FixedClock, OpenFlags, Volume};
use crate::{BlockDevice, Error, SECTOR};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

/// A disk of `sectors` whose first bytes are `data` and the rest zeros;
/// writes land in an overlay (cheap for a fuzzer's many runs).
pub struct SparseDisk<'a> {
    pub data: &'a [u8],
    pub sectors: u64,
    pub overlay: BTreeMap<u64, [u8; SECTOR]>,
}

impl BlockDevice for SparseDisk<'_> {
    fn sectors(&self) -> u64 {
        self.sectors
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Error> {
        if lba
            .checked_add((buf.len() / SECTOR) as u64)
            .is_none_or(|e| e > self.sectors)
        {
            return Err(Error::Io);
        }
        for (k, s) in buf.chunks_mut(SECTOR).enumerate() {
            let l = lba + k as u64;
            if let Some(d) = self.overlay.get(&l) {
                s.copy_from_slice(d);
                continue;
            }
            s.fill(0);
            let start = (l as usize).saturating_mul(SECTOR);
            if start < self.data.len() {
                let end = (start + SECTOR).min(self.data.len());
                s[..end - start].copy_from_slice(&self.data[start..end]);
            }
        }
        Ok(())
    }
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), Error> {
        if lba
            .checked_add((buf.len() / SECTOR) as u64)
            .is_none_or(|e| e > self.sectors)
        {
            return Err(Error::Io);
        }
        for (k, s) in buf.chunks(SECTOR).enumerate() {
            let mut d = [0u8; SECTOR];
            d.copy_from_slice(s);
            self.overlay.insert(lba + k as u64, d);
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// Disk size the fuzzer's images stand for: 40 MiB (room for FAT32).
pub const FUZZ_SECTORS: u64 = 40 << 11;

/// Mounts `image` and exercises it.
pub fn exercise(image: &[u8]) {
    let disk = SparseDisk {
        data: image,
        sectors: FUZZ_SECTORS.max(image.len().div_ceil(SECTOR) as u64),
        overlay: BTreeMap::new(),
    };
    let Ok(mut v) = Volume::mount(disk, None, 128, Box::new(FixedClock)) else {
        return;
    };
    let root = v.root();
    let mut cursor = 0;
    let mut seen: Vec<alloc::string::String> = Vec::new();
    while let Ok(Some((e, next))) = v.read_dir(root, cursor) {
        seen.push(e.name);
        cursor = next;
        if seen.len() > 64 {
            break;
        }
    }
    for name in seen.iter().take(4) {
        if let Ok(f) = v.open(root, name, OpenFlags::default()) {
            let mut buf = vec![0u8; 2048];
            let _ = v.read(f, 0, &mut buf);
            let _ = v.read_dir(f, 0);
            let _ = v.write(f, 700, b"hello");
            let _ = v.set_len(f, 3);
            let _ = v.close(f);
        }
        let _ = v.stat_path(root, name);
        let _ = v.rename(root, name, root, "renamed.txt");
        let _ = v.unlink(root, "renamed.txt");
        let _ = v.rmdir(root, "renamed.txt");
    }
    let _ = v.mkdir(root, "new dir");
    let create = OpenFlags {
        create: true,
        ..OpenFlags::default()
    };
    if let Ok(f) = v.open(root, "new dir/a file with a long name", create) {
        let _ = v.write(f, 0, &[7u8; 1500]);
        let _ = v.close(f);
    }
    let _ = v.statfs();
    let _ = v.sync();
    let _ = v.close(root);
}
