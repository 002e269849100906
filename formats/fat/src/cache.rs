//! The sector cache: read-ahead on misses, write-back, and a flush that
//! orders writes so that a power cut at any point leaves a volume
//! `fsck.fat` finds consistent (at worst lost clusters or a stale free
//! count):
//!
//! 1. file data;
//! 2. the FATs (every copy), as they stand with this flush's *releases*
//!    undone: entries that were freed or cut short keep their old values,
//!    so the chains the directory entries on disk still name stay whole,
//!    while newly allocated chains are already complete;
//! 3. directory sectors (new entries, sizes, deletions);
//! 4. the released FAT entries (every copy) and the FSInfo sector.
//!
//! with a device flush after each step. A cluster released since the last
//! flush is not allocated again before the next one (the volume keeps
//! that set), so no new data lands in a cluster a directory entry on disk
//! still names. A dirty sector that must leave the cache triggers the
//! whole ordered flush.

use crate::{BlockDevice, Error, SECTOR};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::hash::{BuildHasherDefault, Hasher};
use hashbrown::HashMap;

/// Hashes a sector number for the cache's index: one multiply (sector
/// numbers are not chosen by an adversary who could gain from collisions:
/// a bad spread costs time only).
#[derive(Default)]
struct LbaHasher(u64);

impl Hasher for LbaHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// What a sector holds; decides its step in [`Cache::flush`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Data,
    Fat,
    Dir,
    Meta,
}

/// A slot's bookkeeping; its bytes are in [`Cache`]'s one buffer, at
/// `SECTOR` times the slot's index (so sectors in consecutive slots are
/// consecutive bytes: [`Cache::hit_run`], [`Cache::slot_bytes`]).
struct Slot {
    lba: u64,
    dirty: bool,
    class: Class,
    referenced: bool,
    /// Being filled by a device read: not a victim.
    pinned: bool,
}

/// Counters for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub read_requests: u64,
    pub sectors_read: u64,
    pub write_requests: u64,
    pub sectors_written: u64,
    pub flushes: u64,
}

/// Most sectors one device request moves.
pub const MAX_RUN: usize = 128;
/// Most sectors one miss reads, itself and those after it (one block
/// request's worth, 64 KiB).
pub const READ_AHEAD: u32 = 128;

pub struct Cache<D> {
    pub dev: D,
    slots: Vec<Slot>,
    /// Every slot's bytes, slot `i` at `base + i * SECTOR`; grown a sector
    /// per new slot within its capacity, reserved at the start (so it
    /// never moves). `base` brings slot 0 to 16-byte alignment: copies to
    /// and from buffers aligned alike take the memcpy's widest loop
    /// (userlib's `mem.rs`).
    store: Vec<u8>,
    base: usize,
    /// Sector number -> slot.
    map: HashMap<u64, usize, BuildHasherDefault<LbaHasher>>,
    /// Slots waiting to be written.
    dirty: usize,
    hand: usize,
    capacity: usize,
    /// FAT #0's first sector, its length and the number of copies.
    fat: (u64, u64, u32),
    /// Per FAT sector: byte ranges whose old contents step 2 writes.
    releases: BTreeMap<u64, Vec<(usize, [u8; 4], usize)>>,
    /// The slots a read fills, in sector order (kept to save allocations).
    filling: Vec<usize>,
    pub stats: Stats,
}

impl<D: BlockDevice> Cache<D> {
    /// A cache of `capacity` sectors (at least 2 × [`READ_AHEAD`]); of
    /// half as many, or a quarter..., if the memory for them cannot be
    /// reserved (their bytes are reserved at once, in one piece).
    pub fn new(dev: D, capacity: usize) -> Cache<D> {
        let least = 2 * READ_AHEAD as usize;
        let mut capacity = capacity.max(least);
        let mut store = Vec::new();
        while capacity > least
            && capacity
                .checked_mul(SECTOR)
                .and_then(|n| n.checked_add(15))
                .is_none_or(|n| store.try_reserve_exact(n).is_err())
        {
            capacity = (capacity / 2).max(least);
        }
        store.reserve_exact(capacity * SECTOR + 15);
        let base = (16 - store.as_ptr() as usize % 16) % 16;
        store.resize(base, 0);
        Cache {
            dev,
            slots: Vec::new(),
            store,
            base,
            map: HashMap::default(),
            dirty: 0,
            hand: 0,
            capacity,
            fat: (0, 0, 1),
            releases: BTreeMap::new(),
            filling: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// Where the FATs are (sector of FAT #0, sectors per FAT, copies):
    /// FAT sectors are cached once and written to every copy.
    pub fn set_fat_layout(&mut self, start: u64, sectors: u64, copies: u32) {
        self.fat = (start, sectors, copies.max(1));
    }

    /// The sector, read (with up to `ahead` following sectors) if absent.
    pub fn read(&mut self, lba: u64, class: Class, ahead: u32) -> Result<&[u8; SECTOR], Error> {
        let i = self.load(lba, class, ahead)?;
        Ok(self.bytes(i))
    }

    /// Slot `i`'s bytes.
    fn bytes(&self, i: usize) -> &[u8; SECTOR] {
        let at = self.base + i * SECTOR;
        self.store[at..at + SECTOR]
            .first_chunk()
            .expect("a slot is SECTOR bytes")
    }

    fn bytes_mut(&mut self, i: usize) -> &mut [u8; SECTOR] {
        let at = self.base + i * SECTOR;
        self.store[at..at + SECTOR]
            .first_chunk_mut()
            .expect("a slot is SECTOR bytes")
    }

    /// The sector for changing, read first if absent; marked dirty.
    pub fn modify(&mut self, lba: u64, class: Class) -> Result<&mut [u8; SECTOR], Error> {
        let i = self.load(lba, class, 0)?;
        self.dirty(i, class)
    }

    /// The sector for overwriting whole: not read; zeroed if it was absent.
    pub fn overwrite(&mut self, lba: u64, class: Class) -> Result<&mut [u8; SECTOR], Error> {
        if lba >= self.dev.sectors() {
            return Err(Error::Corrupt);
        }
        let i = match self.map.get(&lba) {
            Some(&i) => i,
            None => {
                let i = self.slot()?;
                self.install(i, lba, class);
                self.bytes_mut(i).fill(0);
                i
            }
        };
        self.dirty(i, class)
    }

    /// Records that bytes `offset..offset + len` of FAT sector `lba` held
    /// `old` before a release (the first record since the last flush wins).
    pub fn note_release(&mut self, lba: u64, offset: usize, old: [u8; 4], len: usize) {
        let v = self.releases.entry(lba).or_default();
        if !v.iter().any(|&(o, _, _)| o == offset) {
            v.push((offset, old, len));
        }
    }

    /// Writes sector `lba` now if it is dirty (a new directory cluster:
    /// its contents must be on the disk before anything links to it).
    pub fn write_now(&mut self, lba: u64) -> Result<(), Error> {
        if let Some(&i) = self.map.get(&lba) {
            if self.slots[i].dirty {
                let at = self.base + i * SECTOR;
                self.dev.write(lba, &self.store[at..at + SECTOR])?;
                self.stats.write_requests += 1;
                self.stats.sectors_written += 1;
                self.slots[i].dirty = false;
                self.dirty -= 1;
            }
        }
        Ok(())
    }

    /// The sector if it is cached (as recently used).
    pub fn hit(&mut self, lba: u64) -> Option<&[u8; SECTOR]> {
        let &i = self.map.get(&lba)?;
        self.slots[i].referenced = true;
        Some(self.bytes(i))
    }

    /// The run of sectors from `lba` on (at most `max`, at least 1) that
    /// sit in consecutive slots, all cached: the first one's slot and how
    /// many, marked used; `None` if `lba` is not cached. Slot `hint` is
    /// tried before the index (a sequential reader passes the slot after
    /// its last run: sectors read or written in order mostly sit in
    /// consecutive slots). Their bytes: [`Self::slot_bytes`].
    pub fn hit_run(&mut self, lba: u64, max: usize, hint: usize) -> Option<(usize, usize)> {
        let i = match self.slots.get(hint) {
            Some(s) if s.lba == lba => hint,
            _ => *self.map.get(&lba)?,
        };
        let mut n = 0;
        for s in self.slots[i..].iter_mut().take(max.max(1)) {
            if s.lba != lba + n as u64 {
                break;
            }
            s.referenced = true;
            n += 1;
        }
        Some((i, n))
    }

    /// The bytes of `n` consecutive slots from slot `i` on (as
    /// [`Self::hit_run`] found them; valid until the cache reads or
    /// installs another sector).
    pub fn slot_bytes(&self, i: usize, n: usize) -> &[u8] {
        let at = self.base + i * SECTOR;
        &self.store[at..at + n * SECTOR]
    }

    /// [`Self::read`], giving the sector's slot instead (for
    /// [`Self::hit_run`]).
    pub fn read_slot(&mut self, lba: u64, class: Class, ahead: u32) -> Result<usize, Error> {
        self.load(lba, class, ahead)
    }

    /// How many sectors it holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether any sector waits to be written.
    pub fn is_dirty(&self) -> bool {
        self.dirty > 0
    }

    fn dirty(&mut self, i: usize, class: Class) -> Result<&mut [u8; SECTOR], Error> {
        if self.dev.read_only() {
            return Err(Error::ReadOnly);
        }
        let s = &mut self.slots[i];
        if !s.dirty {
            self.dirty += 1;
        }
        s.dirty = true;
        s.class = class;
        s.referenced = true;
        Ok(self.bytes_mut(i))
    }

    fn install(&mut self, i: usize, lba: u64, class: Class) {
        let s = &mut self.slots[i];
        if s.dirty {
            self.dirty -= 1;
        }
        s.lba = lba;
        s.class = class;
        s.dirty = false;
        s.referenced = true;
        self.map.insert(lba, i);
    }

    fn load(&mut self, lba: u64, class: Class, ahead: u32) -> Result<usize, Error> {
        if let Some(&i) = self.map.get(&lba) {
            self.slots[i].referenced = true;
            return Ok(i);
        }
        let total = self.dev.sectors();
        if lba >= total {
            return Err(Error::Corrupt);
        }
        let mut n = 1u64;
        while n <= ahead.min(READ_AHEAD - 1) as u64 && lba + n < total && !self.map.contains_key(&(lba + n)) {
            n += 1;
        }
        // The slots first (finding them may flush), pinned so that none
        // is taken again for a later sector of the same read; then the
        // device reads straight into them.
        let mut filling = core::mem::take(&mut self.filling);
        filling.clear();
        let mut r = Ok(());
        for k in 0..n {
            match self.slot() {
                Ok(i) => {
                    self.install(i, lba + k, class);
                    self.slots[i].pinned = true;
                    filling.push(i);
                }
                Err(e) => {
                    r = Err(e);
                    break;
                }
            }
        }
        if r.is_ok() {
            let Cache { dev, store, base, .. } = self;
            let mut got = 0;
            r = dev.read_each(lba, n as usize, &mut |k0, data| {
                for (j, s) in data.chunks_exact(SECTOR).enumerate() {
                    if let Some(&i) = filling.get(k0 + j) {
                        let at = *base + i * SECTOR;
                        store[at..at + SECTOR].copy_from_slice(s);
                        got += 1;
                    }
                }
            });
            if r.is_ok() && got != filling.len() {
                r = Err(Error::Io);
            }
        }
        for (k, &i) in filling.iter().enumerate() {
            let s = &mut self.slots[i];
            s.pinned = false;
            // Read-ahead sectors are not referenced yet: first to go.
            s.referenced = k == 0;
            if r.is_err() {
                self.map.remove(&s.lba);
                s.lba = u64::MAX;
            }
        }
        let first = filling.first().copied();
        self.filling = filling;
        r?;
        self.stats.read_requests += 1;
        self.stats.sectors_read += n;
        first.ok_or(Error::Io)
    }

    /// A free slot: a new one while below capacity, else a clean victim
    /// by the clock algorithm (a dirty one forces a flush first).
    fn slot(&mut self) -> Result<usize, Error> {
        if self.slots.len() < self.capacity {
            self.store.resize(self.store.len() + SECTOR, 0);
            self.slots.push(Slot {
                lba: u64::MAX,
                dirty: false,
                class: Class::Data,
                referenced: false,
                pinned: false,
            });
            return Ok(self.slots.len() - 1);
        }
        loop {
            for _ in 0..2 * self.capacity {
                self.hand = (self.hand + 1) % self.slots.len();
                let s = &mut self.slots[self.hand];
                if s.referenced {
                    s.referenced = false;
                } else if !s.dirty && !s.pinned {
                    let lba = s.lba;
                    self.map.remove(&lba);
                    s.lba = u64::MAX;
                    return Ok(self.hand);
                }
            }
            self.flush()?;
        }
    }

    /// Writes every dirty sector in the order described at the top.
    pub fn flush(&mut self) -> Result<(), Error> {
        if !self.is_dirty() {
            return Ok(());
        }
        self.write_class(Class::Data, false)?;
        self.write_class(Class::Fat, true)?;
        self.write_class(Class::Dir, false)?;
        if !self.releases.is_empty() {
            self.write_class(Class::Fat, false)?;
            self.releases.clear();
        }
        self.write_class(Class::Meta, false)?;
        Ok(())
    }

    /// Writes the dirty sectors of `class` in runs, then flushes the
    /// device. FAT sectors go to every copy, `undo_releases` giving step
    /// 2's contents; only then (or for other classes) they become clean.
    fn write_class(&mut self, class: Class, undo_releases: bool) -> Result<(), Error> {
        let mut lbas: Vec<(u64, usize)> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.dirty && s.class == class && s.lba != u64::MAX)
            .map(|(i, s)| (s.lba, i))
            .collect();
        // Slots fill in the clock hand's order, so the sectors come in a
        // few ascending runs: a merge sort (which finds runs) is linear
        // on them, where `sort_unstable` took about 15% of the host
        // `fsbench write` (callgrind).
        lbas.sort();
        if lbas.is_empty() {
            return Ok(());
        }
        let copies = if class == Class::Fat { self.fat.2 as u64 } else { 1 };
        let mut run: Vec<u8> = Vec::new();
        let mut k = 0;
        while k < lbas.len() {
            let start = lbas[k].0;
            run.clear();
            while k < lbas.len() && lbas[k].0 == start + (run.len() / SECTOR) as u64 && run.len() < MAX_RUN * SECTOR {
                let (lba, i) = lbas[k];
                let at = run.len();
                let from = self.base + i * SECTOR;
                run.extend_from_slice(&self.store[from..from + SECTOR]);
                if undo_releases {
                    for &(off, old, len) in self.releases.get(&lba).map(|v| &v[..]).unwrap_or(&[]) {
                        run[at + off..at + off + len].copy_from_slice(&old[..len]);
                    }
                }
                k += 1;
            }
            for c in 0..copies {
                self.dev.write(start + c * self.fat.1, &run)?;
                self.stats.write_requests += 1;
                self.stats.sectors_written += (run.len() / SECTOR) as u64;
            }
        }
        self.dev.flush()?;
        self.stats.flushes += 1;
        for (lba, i) in lbas {
            // Sectors with releases are written again, whole, in step 4.
            if !(undo_releases && self.releases.contains_key(&lba)) {
                self.slots[i].dirty = false;
                self.dirty -= 1;
            }
        }
        Ok(())
    }

    /// Drops every clean sector (the next reads go to the device: cold
    /// reads in benchmarks and after a device restart).
    pub fn drop_clean(&mut self) {
        for s in self.slots.iter_mut() {
            if !s.dirty && s.lba != u64::MAX {
                self.map.remove(&s.lba);
                s.lba = u64::MAX;
                s.referenced = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemDisk;

    /// A capacity whose memory cannot be reserved makes a smaller cache,
    /// not a failed allocation; what fits is kept as asked.
    #[test]
    fn capacity_shrinks_to_what_can_be_reserved() {
        let disk = || MemDisk {
            data: alloc::vec![7u8; 1024 * SECTOR],
        };
        assert_eq!(Cache::new(disk(), 1000).capacity(), 1000);
        assert_eq!(Cache::new(disk(), 3).capacity(), 2 * READ_AHEAD as usize);
        let mut c = Cache::new(disk(), usize::MAX / 4);
        assert!(c.capacity() < usize::MAX / 4 && c.capacity() >= 2 * READ_AHEAD as usize);
        assert_eq!(c.read(5, Class::Data, 3).unwrap()[..], [7u8; SECTOR][..]);
    }
}
