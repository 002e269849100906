//! The file system: a mounted volume, its open nodes, and every operation
//! the file server offers. Paths are resolved inside the directory node
//! they are given with: `.` and empty components are skipped, `..` goes
//! back a component of the same path and never above its start, and an
//! absolute path is refused ([`Error::Escape`]).
//!
//! Nodes are reference counted: opening a file that is open already gives
//! the same node, so every handle sees one size. Directory entries are
//! updated in the cache as a file changes; [`Volume::sync`] writes
//! everything in the cache's crash-safe order.

use crate::bpb::{FatType, Geometry};
use crate::cache::{Cache, Class};
use crate::dir::{self, ENTRY};
use crate::index::{self, DirIndex, Named};
use crate::{le32, BlockDevice, Error, Slice, SECTOR};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;

/// Index of an open node.
pub type NodeId = usize;

/// FAT `(date, time)` for timestamps.
pub trait Clock {
    fn now(&self) -> (u16, u16);
}

/// 2024-01-01 00:00:00, for volumes without a clock (and tests).
pub struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> (u16, u16) {
        (((2024 - 1980) << 9) | (1 << 5) | 1, 0)
    }
}

/// How [`Volume::open`] treats a missing or existing name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenFlags {
    /// Create the file if it is missing.
    pub create: bool,
    /// With `create`: fail with [`Error::Exists`] if it exists.
    pub exclusive: bool,
    /// Cut an existing file to length 0.
    pub truncate: bool,
    /// The node must be a directory.
    pub directory: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub is_dir: bool,
    pub size: u64,
    /// FAT `(date, time)` of the last change.
    pub modified: (u16, u16),
    pub read_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub meta: Metadata,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatFs {
    pub cluster_bytes: u64,
    pub clusters: u64,
    pub free_clusters: u64,
    pub fat32: bool,
}

/// A directory's storage: FAT16's fixed root, or a cluster chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum DirRef {
    Root16,
    Chain(u32),
}

/// Where a node's short entry is: its directory and slot (32-byte index),
/// with `lfn` long-name slots just before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Loc {
    dir: DirRef,
    slot: u32,
    lfn: u32,
}

struct Node {
    is_dir: bool,
    /// `None` for the root directory.
    loc: Option<Loc>,
    first: u32,
    size: u32,
    refs: u32,
    /// The chain as far as looked up, in runs of consecutive clusters:
    /// (index in the chain, first cluster, length). Reads find a cluster
    /// by a search here instead of following the FAT.
    extents: Vec<(u32, u32, u32)>,
}

/// Most runs a node's extent list keeps (a badly fragmented file beyond
/// this follows the FAT from the last run on each lookup).
const MAX_EXTENTS: usize = 1024;

/// Sectors the mount's first device request reads from sector 0 on: with
/// the 32 reserved sectors `mkfs.vfat` gives FAT32, the boot sector, the
/// FSInfo sector and the first 17 sectors of the FAT (the root directory's
/// chain is looked up there).
const MOUNT_READ: u64 = 49;

/// An entry found in a directory.
struct Found {
    name: String,
    entry: [u8; ENTRY],
    loc: Loc,
}

/// Most entries in one directory (FAT's limit: 2 MiB of entries).
const MAX_DIR_SLOTS: u32 = 65536;

/// A short name, its case flags (NT reserved byte) and the long-name
/// entries that go before it.
type ShortName = ([u8; 11], u8, Vec<[u8; ENTRY]>);

pub struct Volume<D> {
    cache: Cache<Slice<D>>,
    geo: Geometry,
    nodes: Vec<Option<Node>>,
    free: Option<u32>,
    next_free: u32,
    /// Clusters freed since the last flush: not reused before it.
    released: BTreeSet<u32>,
    read_only: bool,
    clock: alloc::boxed::Box<dyn Clock + Send>,
    /// Directories indexed (see [`crate::index`]).
    indexes: BTreeMap<DirRef, DirIndex>,
    /// A lookup's folded name ([`DirIndex::find_with`]).
    probe: String,
}

fn eoc(t: FatType) -> u32 {
    match t {
        FatType::Fat16 => 0xffff,
        FatType::Fat32 => 0x0fff_ffff,
    }
}

impl<D: BlockDevice> Volume<D> {
    /// Mounts the FAT volume on `dev`: partition `part` (0-based) if
    /// given, else the first FAT partition or the whole disk. The cache
    /// holds `cache_sectors` sectors.
    pub fn mount(
        dev: D,
        part: Option<usize>,
        cache_sectors: usize,
        clock: alloc::boxed::Box<dyn Clock + Send>,
    ) -> Result<Volume<D>, Error> {
        // Sector 0 and the sectors after it in one request, into a cache
        // of the whole disk: on a whole-disk FAT32 volume the FSInfo
        // sector and the start of the FAT, which the mount reads next, are
        // among them. A partition gets a cache of its own.
        let disk = dev.sectors();
        let read_only = dev.read_only();
        let mut cache = Cache::new(
            Slice {
                dev,
                start: 0,
                sectors: disk,
            },
            cache_sectors,
        );
        let mut s0 = [0u8; SECTOR];
        s0.copy_from_slice(cache.read(0, Class::Meta, MOUNT_READ as u32 - 1)?);
        let (start, sectors) = crate::part::find_volume_from(&mut cache.dev.dev, part, &s0)?;
        if (start, sectors) != (0, disk) {
            let dev = cache.dev.dev;
            let mut slice = Slice { dev, start, sectors };
            slice.read(0, &mut s0)?;
            cache = Cache::new(slice, cache_sectors);
        }
        let geo = crate::bpb::parse(&s0, sectors)?;
        cache.set_fat_layout(geo.fat_start, geo.fat_sectors, geo.fats);
        let mut v = Volume {
            cache,
            geo,
            nodes: Vec::new(),
            free: None,
            next_free: 2,
            released: BTreeSet::new(),
            read_only,
            clock,
            indexes: BTreeMap::new(),
            probe: String::new(),
        };
        if let Some(fsinfo) = geo.fsinfo {
            // Read on to the start of the FAT and a little of it (the root
            // directory's chain is looked up next): one device request
            // instead of two (the reserved sectors between are few: 32 from
            // mkfs.vfat). A whole-disk volume has them from the first
            // request.
            let ahead = (geo.fat_start + 16)
                .saturating_sub(fsinfo)
                .min(crate::cache::READ_AHEAD as u64 - 1) as u32;
            let s = v.cache.read(fsinfo, Class::Meta, ahead)?;
            if le32(s, 0) == 0x4161_5252 && le32(s, 484) == 0x6141_7272 {
                let (free, next) = (le32(s, 488), le32(s, 492));
                if free <= geo.clusters {
                    v.free = Some(free);
                }
                if geo.valid_cluster(next) {
                    v.next_free = next;
                }
            }
        }
        // The root directory must be readable.
        let root = v.root_dir();
        v.dir_sectors(root)?;
        Ok(v)
    }

    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    pub fn cache_stats(&self) -> crate::cache::Stats {
        self.cache.stats
    }

    /// Drops clean cached sectors and the directory indexes (cold reads).
    pub fn drop_caches(&mut self) {
        self.cache.drop_clean();
        self.indexes.clear();
    }

    pub fn device(&mut self) -> &mut D {
        &mut self.cache.dev.dev
    }

    /// Whether changes wait in the cache.
    pub fn is_dirty(&self) -> bool {
        self.cache.is_dirty()
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn root_dir(&self) -> DirRef {
        match self.geo.fat_type {
            FatType::Fat16 => DirRef::Root16,
            FatType::Fat32 => DirRef::Chain(self.geo.root_cluster),
        }
    }

    /// The directory a cluster number in an entry names (0: the root).
    fn dir_of(&self, first: u32) -> Result<DirRef, Error> {
        if first == 0 || (self.geo.fat_type == FatType::Fat32 && first == self.geo.root_cluster) {
            Ok(self.root_dir())
        } else if self.geo.valid_cluster(first) {
            Ok(DirRef::Chain(first))
        } else {
            Err(Error::Corrupt)
        }
    }

    fn writable(&self) -> Result<(), Error> {
        if self.read_only {
            Err(Error::ReadOnly)
        } else {
            Ok(())
        }
    }

    // ---- the FAT ----

    fn fat_pos(&self, c: u32) -> (u64, usize, usize) {
        let width = if self.geo.fat_type == FatType::Fat16 { 2 } else { 4 };
        let byte = c as u64 * width as u64;
        (
            self.geo.fat_start + byte / SECTOR as u64,
            (byte % SECTOR as u64) as usize,
            width,
        )
    }

    fn fat_get(&mut self, c: u32) -> Result<u32, Error> {
        let (lba, off, w) = self.fat_pos(c);
        let s = self.cache.read(lba, Class::Fat, 16)?;
        Ok(if w == 2 {
            crate::le16(s, off) as u32
        } else {
            le32(s, off) & 0x0fff_ffff
        })
    }

    fn fat_set(&mut self, c: u32, v: u32) -> Result<(), Error> {
        let old = self.fat_get(c)?;
        self.fat_put(c, old, v)
    }

    /// [`Self::fat_set`] of an entry the caller has just read as `old`.
    fn fat_put(&mut self, c: u32, old: u32, v: u32) -> Result<(), Error> {
        let (lba, off, w) = self.fat_pos(c);
        if old != 0 && (v == 0 || v >= eoc(self.geo.fat_type) - 7) {
            let s = self.cache.read(lba, Class::Fat, 0)?;
            let mut bytes = [0u8; 4];
            bytes[..w].copy_from_slice(&s[off..off + w]);
            self.cache.note_release(lba, off, bytes, w);
        }
        let s = self.cache.modify(lba, Class::Fat)?;
        if w == 2 {
            s[off..off + 2].copy_from_slice(&(v as u16).to_le_bytes());
        } else {
            let keep = le32(s, off) & 0xf000_0000;
            s[off..off + 4].copy_from_slice(&(keep | (v & 0x0fff_ffff)).to_le_bytes());
        }
        if let Some(f) = self.free.as_mut() {
            if old == 0 && v != 0 {
                *f = f.saturating_sub(1);
            } else if old != 0 && v == 0 {
                *f += 1;
            }
        }
        if v == 0 {
            self.released.insert(c);
        }
        Ok(())
    }

    /// The cluster after `c`, `None` at the chain's end.
    fn next(&mut self, c: u32) -> Result<Option<u32>, Error> {
        let v = self.fat_get(c)?;
        if v >= eoc(self.geo.fat_type) - 7 {
            Ok(None)
        } else if self.geo.valid_cluster(v) {
            Ok(Some(v))
        } else {
            Err(Error::Corrupt)
        }
    }

    fn chain(&mut self, first: u32) -> Result<Vec<u32>, Error> {
        let mut out = Vec::new();
        if first == 0 {
            return Ok(out);
        }
        if !self.geo.valid_cluster(first) {
            return Err(Error::Corrupt);
        }
        let mut c = first;
        loop {
            out.push(c);
            if out.len() > self.geo.clusters as usize {
                return Err(Error::Corrupt); // a loop
            }
            match self.next(c)? {
                Some(n) => c = n,
                None => return Ok(out),
            }
        }
    }

    /// Allocates a cluster (marked end of chain) and links it after
    /// `prev`, the end of a chain (its entry an end-of-chain mark: linking
    /// it frees nothing and changes no free count, so it is not read again).
    fn alloc(&mut self, prev: Option<u32>) -> Result<u32, Error> {
        if self.free == Some(0) {
            return Err(Error::NoSpace);
        }
        let n = self.geo.clusters;
        let mut c = self.next_free.clamp(2, n + 1);
        for _ in 0..n {
            if self.fat_get(c)? == 0 && !self.released.contains(&c) {
                let end = eoc(self.geo.fat_type);
                self.fat_put(c, 0, end)?;
                if let Some(p) = prev {
                    self.fat_put(p, end, c)?;
                }
                self.next_free = if c + 1 >= n + 2 { 2 } else { c + 1 };
                return Ok(c);
            }
            c = if c + 1 >= n + 2 { 2 } else { c + 1 };
        }
        Err(Error::NoSpace)
    }

    fn free_chain(&mut self, first: u32) -> Result<(), Error> {
        // Were it a directory, its index goes with it.
        self.indexes.remove(&DirRef::Chain(first));
        for c in self.chain(first)? {
            self.fat_set(c, 0)?;
        }
        Ok(())
    }

    /// Clears a new directory cluster, with `first` as its first entries,
    /// and writes it to the disk at once: nothing links to it yet, and
    /// it must be complete before anything does.
    fn new_dir_cluster(&mut self, c: u32, first: &[[u8; ENTRY]]) -> Result<(), Error> {
        let lba = self.geo.cluster_sector(c);
        for k in 0..self.geo.sectors_per_cluster as u64 {
            let s = self.cache.overwrite(lba + k, Class::Dir)?;
            s.fill(0);
            if k == 0 {
                for (i, e) in first.iter().enumerate() {
                    s[i * ENTRY..(i + 1) * ENTRY].copy_from_slice(e);
                }
            }
            self.cache.write_now(lba + k)?;
        }
        Ok(())
    }

    // ---- directories ----

    fn dir_sectors(&mut self, d: DirRef) -> Result<Vec<u64>, Error> {
        if let Some(i) = self.indexes.get(&d) {
            return Ok(i.secs.clone());
        }
        match d {
            DirRef::Root16 => Ok((self.geo.root_start..self.geo.root_start + self.geo.root_sectors).collect()),
            DirRef::Chain(first) => {
                let spc = self.geo.sectors_per_cluster as u64;
                let chain = self.chain(first)?;
                if chain.len() as u64 * spc * (SECTOR / ENTRY) as u64 > MAX_DIR_SLOTS as u64 * 2 {
                    return Err(Error::Corrupt);
                }
                Ok(chain
                    .into_iter()
                    .flat_map(|c| {
                        let s = self.geo.cluster_sector(c);
                        (0..spc).map(move |k| s + k)
                    })
                    .collect())
            }
        }
    }

    fn slot_pos(secs: &[u64], slot: u32) -> Result<(u64, usize), Error> {
        let per = (SECTOR / ENTRY) as u32;
        let lba = *secs.get((slot / per) as usize).ok_or(Error::Corrupt)?;
        Ok((lba, (slot % per) as usize * ENTRY))
    }

    /// Calls `f` for each entry from `from` (slot) on, until it returns
    /// `false`. Skips `.`/`..`, deleted entries and volume labels.
    fn walk(&mut self, d: DirRef, from: u32, mut f: impl FnMut(Found) -> bool) -> Result<(), Error> {
        let secs = self.dir_sectors(d)?;
        let per = (SECTOR / ENTRY) as u32;
        let mut lfn = dir::LfnCollector::default();
        let total = secs.len() as u32 * per;
        for slot in from..total {
            let (lba, off) = Self::slot_pos(&secs, slot)?;
            let ahead = (secs.len() as u32 - slot / per - 1).min(8);
            let s = self.cache.read(lba, Class::Dir, ahead)?;
            let mut e = [0u8; ENTRY];
            e.copy_from_slice(&s[off..off + ENTRY]);
            if e[0] == 0 {
                break;
            }
            if e[0] == dir::DELETED {
                lfn.reset();
                continue;
            }
            if dir::attr(&e) & 0x3f == dir::ATTR_LFN {
                lfn.feed(&e);
                continue;
            }
            if dir::attr(&e) & dir::ATTR_VOLUME != 0 || e[0] == b'.' {
                lfn.reset();
                continue;
            }
            let (name, n) = lfn.finish(&e).unwrap_or_else(|| (dir::short_display(&e), 0));
            let found = Found {
                name,
                entry: e,
                loc: Loc { dir: d, slot, lfn: n },
            };
            if !f(found) {
                break;
            }
        }
        Ok(())
    }

    fn find(&mut self, d: DirRef, name: &str) -> Result<Option<Found>, Error> {
        if self.indexed(d)? {
            return Ok(self
                .find_indexed(d, name, true)?
                .map(|(entry, loc, name)| Found { name, entry, loc }));
        }
        self.scan_find(d, name)
    }

    /// [`Self::find`] without the entry's name (a stat needs none).
    fn find_entry(&mut self, d: DirRef, name: &str) -> Result<Option<([u8; ENTRY], Loc)>, Error> {
        if self.indexed(d)? {
            return Ok(self.find_indexed(d, name, false)?.map(|(e, loc, _)| (e, loc)));
        }
        Ok(self.scan_find(d, name)?.map(|f| (f.entry, f.loc)))
    }

    /// A lookup in `d`'s index (which exists): the short entry, where it
    /// is, and with `named` the name a scan reports (else empty).
    fn find_indexed(
        &mut self,
        d: DirRef,
        name: &str,
        named: bool,
    ) -> Result<Option<([u8; ENTRY], Loc, String)>, Error> {
        let Some(idx) = self.indexes.get(&d) else {
            return Err(Error::Corrupt);
        };
        let Some((slot, n)) = idx.find_with(name, &mut self.probe) else {
            return Ok(None);
        };
        let (lfn, name) = (n.lfn, if named { n.name.clone() } else { String::new() });
        let (lba, off) = Self::slot_pos(&idx.secs, slot)?;
        let mut entry = [0u8; ENTRY];
        entry.copy_from_slice(&self.cache.read(lba, Class::Dir, 0)?[off..off + ENTRY]);
        Ok(Some((entry, Loc { dir: d, slot, lfn }, name)))
    }

    /// Whether directory `d` has an index, built now if it had none and
    /// fits the budget ([`index::MAX_ENTRIES`]).
    fn indexed(&mut self, d: DirRef) -> Result<bool, Error> {
        if self.indexes.contains_key(&d) {
            return Ok(true);
        }
        let secs = self.dir_sectors(d)?;
        let per = (SECTOR / ENTRY) as u32;
        let total = secs.len() as u32 * per;
        let mut idx = DirIndex::default();
        idx.end = total;
        // Short names, free slots and the end, as insert's scan sees them.
        for slot in 0..total {
            let (lba, off) = Self::slot_pos(&secs, slot)?;
            let ahead = (secs.len() as u32 - slot / per - 1).min(8);
            let s = self.cache.read(lba, Class::Dir, ahead)?;
            match s[off] {
                0 => {
                    idx.end = slot;
                    break;
                }
                dir::DELETED => {
                    idx.free.insert(slot);
                }
                _ if s[off + 11] & 0x3f != dir::ATTR_LFN => {
                    let mut n = [0u8; 11];
                    n.copy_from_slice(&s[off..off + 11]);
                    idx.add_short(n);
                }
                _ => {}
            }
            if slot as usize >= index::MAX_ENTRIES * 2 {
                return Ok(false);
            }
        }
        // Names, as a scan reports them.
        let mut found = Vec::new();
        self.walk(d, 0, |f| {
            found.push(f);
            found.len() <= index::MAX_ENTRIES
        })?;
        if found.len() > index::MAX_ENTRIES {
            return Ok(false);
        }
        let used: usize = self.indexes.values().map(DirIndex::len).sum();
        if used + found.len() > index::MAX_ENTRIES {
            self.indexes.clear();
        }
        for f in found {
            let mut short = [0u8; 11];
            short.copy_from_slice(&f.entry[..11]);
            let named = Named {
                name: f.name,
                lfn: f.loc.lfn,
                short,
            };
            idx.add(f.loc.slot, named, &dir::short_display(&f.entry));
        }
        idx.secs = secs;
        self.indexes.insert(d, idx);
        Ok(true)
    }

    /// Each directory index against one built afresh from the disk's
    /// entries (tests: the kept ones must not drift).
    #[cfg(test)]
    pub(crate) fn check_indexes(&mut self) -> Result<usize, String> {
        let dirs: Vec<DirRef> = self.indexes.keys().copied().collect();
        for &d in &dirs {
            let kept = self.indexes.remove(&d).ok_or("gone")?;
            let others = core::mem::take(&mut self.indexes);
            let built = self.indexed(d).map_err(|e| alloc::format!("{d:?}: {e:?}"))?;
            let fresh = self.indexes.remove(&d);
            self.indexes = others;
            if !built || fresh.as_ref() != Some(&kept) {
                return Err(alloc::format!("{d:?}: kept {kept:?}\nfresh {fresh:?}"));
            }
            self.indexes.insert(d, kept);
        }
        Ok(dirs.len())
    }

    /// [`Self::find`] by reading every entry.
    fn scan_find(&mut self, d: DirRef, name: &str) -> Result<Option<Found>, Error> {
        let mut out = None;
        self.walk(d, 0, |f| {
            if dir::same_name(&f.name, name) || dir::same_name(&dir::short_display(&f.entry), name) {
                out = Some(f);
                false
            } else {
                true
            }
        })?;
        Ok(out)
    }

    fn write_slot(&mut self, secs: &[u64], slot: u32, e: &[u8; ENTRY]) -> Result<(), Error> {
        let (lba, off) = Self::slot_pos(secs, slot)?;
        self.cache.modify(lba, Class::Dir)?[off..off + ENTRY].copy_from_slice(e);
        Ok(())
    }

    /// Adds entry `short` (its name bytes are filled in here) under `name`.
    fn insert(&mut self, d: DirRef, name: &str, short: [u8; ENTRY]) -> Result<Loc, Error> {
        dir::validate(name)?;
        if self.indexed(d)? {
            return self.insert_indexed(d, name, short);
        }
        self.insert_scanning(d, name, short)
    }

    /// The short name for `name` (exact, or an alias free among `taken`),
    /// its case flags and its long-name entries.
    fn short_name(name: &str, taken: impl Fn(&[u8; 11]) -> bool) -> Result<ShortName, Error> {
        Ok(match dir::exact_short(name) {
            Some((n, case)) if !taken(&n) => (n, case, Vec::new()),
            _ => {
                let mut k = 1;
                let n = loop {
                    let a = dir::alias(name, k);
                    if !taken(&a) {
                        break a;
                    }
                    k += 1;
                    if k > 999_999 {
                        return Err(Error::NoSpace);
                    }
                };
                (n, 0, dir::lfn_entries(name, dir::checksum(&n)))
            }
        })
    }

    /// [`Self::insert`] with the directory's index: no scan.
    fn insert_indexed(&mut self, d: DirRef, name: &str, mut short: [u8; ENTRY]) -> Result<Loc, Error> {
        let idx = self.indexes.get(&d).ok_or(Error::Corrupt)?;
        let (name11, case, lfns) = Self::short_name(name, |n| idx.shorts.contains_key(n))?;
        short[..11].copy_from_slice(&name11);
        short[12] = case;
        let need = lfns.len() as u32 + 1;
        let per = (SECTOR / ENTRY) as u32;
        let (mut secs, free, end) = (idx.secs.clone(), idx.free_run(need), idx.end);
        let start = match free {
            Some(st) => st,
            None => {
                while end + need > secs.len() as u32 * per {
                    let DirRef::Chain(first) = d else {
                        return Err(Error::NoSpace);
                    };
                    if secs.len() as u32 * per + per * self.geo.sectors_per_cluster >= MAX_DIR_SLOTS {
                        return Err(Error::NoSpace);
                    }
                    let last = *self.chain(first)?.last().ok_or(Error::Corrupt)?;
                    let c = self.alloc(Some(last))?;
                    self.new_dir_cluster(c, &[])?;
                    let lba = self.geo.cluster_sector(c);
                    secs.extend((0..self.geo.sectors_per_cluster as u64).map(|k| lba + k));
                    if let Some(idx) = self.indexes.get_mut(&d) {
                        idx.secs = secs.clone();
                    }
                }
                end
            }
        };
        for (i, e) in lfns.iter().enumerate() {
            self.write_slot(&secs, start + i as u32, e)?;
        }
        let slot = start + need - 1;
        self.write_slot(&secs, slot, &short)?;
        // The scan's view of the directory now: the same as the index's,
        // unless the slot after a new end is not the end (a hostile
        // image): then the index goes and the next lookup scans.
        let past_end = free.is_none() && start + need < secs.len() as u32 * per && {
            let (lba, off) = Self::slot_pos(&secs, start + need)?;
            self.cache.read(lba, Class::Dir, 0)?[off] != 0
        };
        let Some(idx) = self.indexes.get_mut(&d) else {
            return Err(Error::Corrupt);
        };
        if past_end {
            self.indexes.remove(&d);
        } else {
            match free {
                Some(st) => {
                    for s in st..st + need {
                        idx.free.remove(&s);
                    }
                }
                None => idx.end = start + need,
            }
            idx.add_short(name11);
            let shown = dir::short_display(&short);
            let reported = if lfns.is_empty() { shown.clone() } else { name.into() };
            idx.add(
                slot,
                Named {
                    name: reported,
                    lfn: need - 1,
                    short: name11,
                },
                &shown,
            );
        }
        Ok(Loc {
            dir: d,
            slot,
            lfn: need - 1,
        })
    }

    /// [`Self::insert`] by reading every entry.
    fn insert_scanning(&mut self, d: DirRef, name: &str, mut short: [u8; ENTRY]) -> Result<Loc, Error> {
        let mut shorts = BTreeSet::new();
        let mut secs = self.dir_sectors(d)?;
        let per = (SECTOR / ENTRY) as u32;
        // Existing short names, and the first run of free slots.
        let mut names: Vec<[u8; 11]> = Vec::new();
        let mut free_runs: Vec<(u32, u32)> = Vec::new(); // (start, length)
        let mut end = secs.len() as u32 * per;
        for slot in 0..secs.len() as u32 * per {
            let (lba, off) = Self::slot_pos(&secs, slot)?;
            let s = self.cache.read(lba, Class::Dir, 8)?;
            let b0 = s[off];
            if b0 == 0 {
                end = slot;
                break;
            }
            if b0 == dir::DELETED {
                match free_runs.last_mut() {
                    Some((st, len)) if *st + *len == slot => *len += 1,
                    _ => free_runs.push((slot, 1)),
                }
            } else if s[off + 11] & 0x3f != dir::ATTR_LFN {
                let mut n = [0u8; 11];
                n.copy_from_slice(&s[off..off + 11]);
                names.push(n);
            }
        }
        for n in names {
            shorts.insert(n);
        }
        let (name11, case, lfns) = Self::short_name(name, |n| shorts.contains(n))?;
        short[..11].copy_from_slice(&name11);
        short[12] = case;
        let need = lfns.len() as u32 + 1;
        let start = match free_runs.iter().find(|(_, len)| *len >= need) {
            Some(&(st, _)) => st,
            None => {
                // After the end marker: grow the directory if needed.
                let total = secs.len() as u32 * per;
                while end + need > secs.len() as u32 * per {
                    let DirRef::Chain(first) = d else {
                        return Err(Error::NoSpace);
                    };
                    if total + per * self.geo.sectors_per_cluster >= MAX_DIR_SLOTS {
                        return Err(Error::NoSpace);
                    }
                    let last = *self.chain(first)?.last().ok_or(Error::Corrupt)?;
                    let c = self.alloc(Some(last))?;
                    self.new_dir_cluster(c, &[])?;
                    secs = self.dir_sectors(d)?;
                }
                end
            }
        };
        for (i, e) in lfns.iter().enumerate() {
            self.write_slot(&secs, start + i as u32, e)?;
        }
        let slot = start + need - 1;
        self.write_slot(&secs, slot, &short)?;
        Ok(Loc {
            dir: d,
            slot,
            lfn: need - 1,
        })
    }

    fn remove_entry(&mut self, loc: Loc) -> Result<(), Error> {
        let secs = self.dir_sectors(loc.dir)?;
        if self.indexes.contains_key(&loc.dir) {
            let (lba, off) = Self::slot_pos(&secs, loc.slot)?;
            let mut e = [0u8; ENTRY];
            e.copy_from_slice(&self.cache.read(lba, Class::Dir, 0)?[off..off + ENTRY]);
            if let Some(idx) = self.indexes.get_mut(&loc.dir) {
                idx.remove(loc.slot, &dir::short_display(&e));
                let mut short = [0u8; 11];
                short.copy_from_slice(&e[..11]);
                idx.remove_short(&short);
                idx.free.extend(loc.slot - loc.lfn..=loc.slot);
            }
        }
        for slot in loc.slot - loc.lfn..=loc.slot {
            let (lba, off) = Self::slot_pos(&secs, slot)?;
            self.cache.modify(lba, Class::Dir)?[off] = dir::DELETED;
        }
        Ok(())
    }

    fn read_entry(&mut self, loc: Loc) -> Result<[u8; ENTRY], Error> {
        let secs = self.dir_sectors(loc.dir)?;
        let (lba, off) = Self::slot_pos(&secs, loc.slot)?;
        let mut e = [0u8; ENTRY];
        e.copy_from_slice(&self.cache.read(lba, Class::Dir, 0)?[off..off + ENTRY]);
        Ok(e)
    }

    fn update_entry(&mut self, loc: Loc, f: impl FnOnce(&mut [u8])) -> Result<(), Error> {
        let secs = self.dir_sectors(loc.dir)?;
        let (lba, off) = Self::slot_pos(&secs, loc.slot)?;
        f(&mut self.cache.modify(lba, Class::Dir)?[off..off + ENTRY]);
        Ok(())
    }

    // ---- nodes and paths ----

    fn node(&self, id: NodeId) -> Result<&Node, Error> {
        self.nodes.get(id).and_then(|n| n.as_ref()).ok_or(Error::BadNode)
    }

    fn node_mut(&mut self, id: NodeId) -> Result<&mut Node, Error> {
        self.nodes.get_mut(id).and_then(|n| n.as_mut()).ok_or(Error::BadNode)
    }

    fn dir_ref(&self, id: NodeId) -> Result<DirRef, Error> {
        let n = self.node(id)?;
        if !n.is_dir {
            return Err(Error::NotADirectory);
        }
        self.dir_of(n.first)
    }

    /// The root directory, as a new reference.
    pub fn root(&mut self) -> NodeId {
        let first = match self.geo.fat_type {
            FatType::Fat16 => 0,
            FatType::Fat32 => self.geo.root_cluster,
        };
        if let Some(i) = self
            .nodes
            .iter()
            .position(|n| n.as_ref().is_some_and(|n| n.loc.is_none()))
        {
            if let Some(n) = self.nodes[i].as_mut() {
                n.refs += 1;
            }
            return i;
        }
        self.add_node(Node {
            is_dir: true,
            loc: None,
            first,
            size: 0,
            refs: 1,
            extents: Vec::new(),
        })
    }

    fn add_node(&mut self, n: Node) -> NodeId {
        match self.nodes.iter().position(|n| n.is_none()) {
            Some(i) => {
                self.nodes[i] = Some(n);
                i
            }
            None => {
                self.nodes.push(Some(n));
                self.nodes.len() - 1
            }
        }
    }

    /// A new reference to an open node.
    pub fn dup(&mut self, id: NodeId) -> Result<NodeId, Error> {
        self.node_mut(id)?.refs += 1;
        Ok(id)
    }

    /// Drops a reference; the node goes with the last one.
    pub fn close(&mut self, id: NodeId) -> Result<(), Error> {
        let n = self.node_mut(id)?;
        n.refs -= 1;
        if n.refs == 0 {
            self.nodes[id] = None;
        }
        Ok(())
    }

    /// Open nodes (for leak checks).
    pub fn open_nodes(&self) -> usize {
        self.nodes.iter().filter(|n| n.is_some()).count()
    }

    fn node_for(&mut self, f: &Found) -> NodeId {
        let is_dir = dir::attr(&f.entry) & dir::ATTR_DIRECTORY != 0;
        let first = dir::first_cluster(&f.entry);
        if let Some(i) = self.open_at(f.loc) {
            if let Some(n) = self.nodes[i].as_mut() {
                n.refs += 1;
            }
            return i;
        }
        self.add_node(Node {
            is_dir,
            loc: Some(f.loc),
            first,
            size: if is_dir { 0 } else { dir::size(&f.entry) },
            refs: 1,
            extents: Vec::new(),
        })
    }

    fn open_at(&self, loc: Loc) -> Option<NodeId> {
        self.nodes
            .iter()
            .position(|n| n.as_ref().is_some_and(|n| n.loc == Some(loc)))
    }

    /// Splits `path` into components resolved against its start: `.` and
    /// empty ones skipped, `..` taking one back. Leaving the start, or an
    /// absolute path, is [`Error::Escape`].
    pub fn components(path: &str) -> Result<Vec<&str>, Error> {
        if path.starts_with('/') {
            return Err(Error::Escape);
        }
        let mut out = Vec::new();
        for c in path.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    out.pop().ok_or(Error::Escape)?;
                }
                c => out.push(c),
            }
        }
        Ok(out)
    }

    /// Whether `path`, resolved under directory `start` as every request
    /// resolves it ([`Self::components`]), is entry `name` of `start` or
    /// lies inside it: its first component names that entry as a lookup
    /// would find it, by the same name without case ([`dir::same_name`];
    /// whether the entry exists or not) or, the entry existing, by its
    /// other name (its short alias, say `BUS~1` for `.bus`). A path that
    /// leaves `start` is [`Error::Escape`].
    pub fn within(&mut self, start: NodeId, path: &str, name: &str) -> Result<bool, Error> {
        let comps = Self::components(path)?;
        let Some(first) = comps.first() else {
            return Ok(false);
        };
        if dir::same_name(first, name) {
            return Ok(true);
        }
        let d = self.dir_ref(start)?;
        let Some((_, at)) = self.find_entry(d, first)? else {
            return Ok(false);
        };
        Ok(self.find_entry(d, name)?.is_some_and(|(_, loc)| loc == at))
    }

    /// Whether open node `id` is the volume's root directory.
    pub fn is_root(&self, id: NodeId) -> bool {
        self.node(id).is_ok_and(|n| n.loc.is_none())
    }

    /// The directory holding the last component, and that component
    /// (`None`: the path names the start itself).
    fn parent<'p>(&mut self, start: NodeId, path: &'p str) -> Result<(DirRef, Option<&'p str>), Error> {
        // One plain name (the common case): no list of components.
        if !path.contains('/') && !matches!(path, "" | "." | "..") {
            return Ok((self.dir_ref(start)?, Some(path)));
        }
        let comps = Self::components(path)?;
        let mut d = self.dir_ref(start)?;
        let Some((last, init)) = comps.split_last() else {
            return Ok((d, None));
        };
        for c in init {
            let f = self.find(d, c)?.ok_or(Error::NotFound)?;
            if dir::attr(&f.entry) & dir::ATTR_DIRECTORY == 0 {
                return Err(Error::NotADirectory);
            }
            d = self.dir_of(dir::first_cluster(&f.entry))?;
        }
        Ok((d, Some(last)))
    }

    fn lookup(&mut self, start: NodeId, path: &str) -> Result<Option<Found>, Error> {
        match self.parent(start, path)? {
            (d, Some(name)) => self.find(d, name),
            (_, None) => Ok(None),
        }
    }

    /// Opens `path` under directory `start`.
    pub fn open(&mut self, start: NodeId, path: &str, flags: OpenFlags) -> Result<NodeId, Error> {
        let (d, name) = self.parent(start, path)?;
        let Some(name) = name else {
            if flags.truncate || (flags.create && flags.exclusive) {
                return Err(if flags.truncate {
                    Error::IsADirectory
                } else {
                    Error::Exists
                });
            }
            return self.dup(start);
        };
        match self.find(d, name)? {
            Some(f) => {
                if flags.create && flags.exclusive {
                    return Err(Error::Exists);
                }
                let is_dir = dir::attr(&f.entry) & dir::ATTR_DIRECTORY != 0;
                if flags.directory && !is_dir {
                    return Err(Error::NotADirectory);
                }
                if is_dir && flags.truncate {
                    return Err(Error::IsADirectory);
                }
                let id = self.node_for(&f);
                if flags.truncate {
                    if let Err(e) = self.set_len(id, 0) {
                        let _ = self.close(id);
                        return Err(e);
                    }
                }
                Ok(id)
            }
            None if flags.create && !flags.directory => {
                self.writable()?;
                let t = self.clock.now();
                let e = dir::short_entry(&[b' '; 11], 0, dir::ATTR_ARCHIVE, 0, t);
                let loc = self.insert(d, name, e)?;
                let f = Found {
                    name: name.into(),
                    entry: e,
                    loc,
                };
                Ok(self.node_for(&f))
            }
            None => Err(Error::NotFound),
        }
    }

    pub fn stat(&mut self, id: NodeId) -> Result<Metadata, Error> {
        let n = self.node(id)?;
        let (is_dir, size, loc) = (n.is_dir, n.size, n.loc);
        let Some(loc) = loc else {
            return Ok(Metadata {
                is_dir: true,
                size: 0,
                modified: (0, 0),
                read_only: self.read_only,
            });
        };
        let e = self.read_entry(loc)?;
        Ok(Metadata {
            is_dir,
            size: size as u64,
            modified: (crate::le16(&e, 24), crate::le16(&e, 22)),
            read_only: dir::attr(&e) & dir::ATTR_READ_ONLY != 0,
        })
    }

    /// Metadata of `path` under `start` without opening it.
    pub fn stat_path(&mut self, start: NodeId, path: &str) -> Result<Metadata, Error> {
        match self.parent(start, path)? {
            (d, Some(name)) => match self.find_entry(d, name)? {
                Some((entry, loc)) => match self.open_at(loc) {
                    Some(id) => self.stat(id),
                    None => Ok(meta(&entry)),
                },
                None => Err(Error::NotFound),
            },
            (_, None) => self.stat(start),
        }
    }

    /// The entry of directory `id` at or after slot `cursor`, and the
    /// cursor of the next one.
    pub fn read_dir(&mut self, id: NodeId, cursor: u32) -> Result<Option<(DirEntry, u32)>, Error> {
        let d = self.dir_ref(id)?;
        let mut out = None;
        self.walk(d, cursor, |f| {
            out = Some((
                DirEntry {
                    name: f.name,
                    meta: meta(&f.entry),
                },
                f.loc.slot + 1,
            ));
            false
        })?;
        Ok(out)
    }

    // ---- file data ----

    /// Cluster `index` of a file's chain, from the node's extents (which
    /// it extends by following the FAT when needed).
    fn cluster_at(&mut self, id: NodeId, index: u32) -> Result<u32, Error> {
        self.run_at(id, index).map(|(c, _)| c)
    }

    /// Cluster `index` of a file's chain and how many consecutive clusters
    /// the node's extents know from there on (at least 1; the run may go
    /// on beyond what has been looked up so far).
    fn run_at(&mut self, id: NodeId, index: u32) -> Result<(u32, u32), Error> {
        if let Some(r) = self.extent_at(id, index)? {
            return Ok(r);
        }
        let first = self.node(id)?.first;
        let mut ext = core::mem::take(&mut self.node_mut(id)?.extents);
        let r = self.extend_extents(&mut ext, first, index);
        let run = match ext.last() {
            Some(&(i0, _, len)) if i0 <= index && index < i0 + len => i0 + len - index,
            _ => 1,
        };
        self.node_mut(id)?.extents = ext;
        r.map(|c| (c, run))
    }

    /// [`Self::run_at`] from the extents known so far (no device reads);
    /// `None` if they do not reach cluster `index`.
    fn extent_at(&self, id: NodeId, index: u32) -> Result<Option<(u32, u32)>, Error> {
        let n = self.node(id)?;
        let k = n.extents.partition_point(|e| e.0 <= index);
        Ok(match k.checked_sub(1).and_then(|k| n.extents.get(k)) {
            Some(&(i0, c0, len)) if index < i0 + len => Some((c0 + (index - i0), i0 + len - index)),
            _ => None,
        })
    }

    /// Follows the chain from the end of `ext` (or from `first`) to
    /// cluster `index`, recording runs (up to [`MAX_EXTENTS`]).
    fn extend_extents(&mut self, ext: &mut Vec<(u32, u32, u32)>, first: u32, index: u32) -> Result<u32, Error> {
        if ext.is_empty() {
            if !self.geo.valid_cluster(first) {
                return Err(Error::Corrupt);
            }
            ext.push((0, first, 1));
        }
        let &(i0, c0, len) = ext.last().ok_or(Error::Corrupt)?;
        let (mut i, mut c) = (i0 + len - 1, c0 + len - 1);
        while i < index {
            let next = self.next(c)?.ok_or(Error::Corrupt)?;
            i += 1;
            let grows = ext.last().is_some_and(|l| next == c + 1 && l.0 + l.2 == i);
            if grows {
                if let Some(l) = ext.last_mut() {
                    l.2 += 1;
                }
            } else if ext.len() < MAX_EXTENTS {
                ext.push((i, next, 1));
            }
            c = next;
        }
        Ok(c)
    }

    /// Reads at `offset` into `buf`; the bytes read (fewer than asked
    /// only at the end of the file).
    pub fn read(&mut self, id: NodeId, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
        let mut done = 0;
        self.read_to(id, offset, buf.len(), &mut |bytes| {
            buf[done..done + bytes.len()].copy_from_slice(bytes);
            done += bytes.len();
            Ok(())
        })
    }

    /// Reads up to `len` bytes at `offset` and hands them to `sink` in
    /// order, straight from the cache: one call per run of sectors that
    /// sit in consecutive cache slots (a whole request, when the cache
    /// read it in one go), so the caller copies each run once, where it
    /// wants it. Returns the bytes handed over, fewer than `len` only at
    /// the end of the file. An error (of the device, or the sink's, which
    /// stops the read) is returned as it is; the sink may have taken part
    /// of the data by then.
    pub fn read_to(
        &mut self,
        id: NodeId,
        offset: u64,
        len: usize,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<usize, Error> {
        let n = self.node(id)?;
        if n.is_dir {
            return Err(Error::IsADirectory);
        }
        let size = n.size as u64;
        if offset >= size {
            return Ok(0);
        }
        let len = (len as u64).min(size - offset) as usize;
        if len == 0 {
            return Ok(0);
        }
        let cb = self.geo.cluster_bytes();
        let spc = self.geo.sectors_per_cluster as u64;
        // The chain is looked up to the request's last cluster first, so
        // that the extents give each run of consecutive clusters whole: a
        // run's sectors are found without looking its clusters up, and a
        // miss reads ahead to the run's end (or the request's).
        let last = ((offset + len as u64 - 1) / cb) as u32;
        self.cluster_at(id, last)?;
        // Bytes found but not yet handed over: a slot, the offset in it
        // and the length. They go to the sink before anything that may
        // read into the cache (which could reuse their slots), or when
        // the next run does not follow them in the cache.
        let mut pending: Option<(usize, usize, usize)> = None;
        let hand = |cache: &Cache<Slice<D>>,
                    (i, skip, n): (usize, usize, usize),
                    sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>| {
            sink(&cache.slot_bytes(i, (skip + n).div_ceil(SECTOR))[skip..skip + n])
        };
        // The slot after the last run found (none yet).
        let mut hint = usize::MAX;
        let mut done = 0;
        while done < len {
            let pos = offset + done as u64;
            let index = (pos / cb) as u32;
            let (c, run) = match self.extent_at(id, index)? {
                Some(r) => r,
                None => {
                    // Following the FAT reads into the cache.
                    if let Some(p) = pending.take() {
                        hand(&self.cache, p, sink)?;
                    }
                    self.run_at(id, index)?
                }
            };
            let run = run.min(last - index + 1) as u64;
            let mut sector = self.geo.cluster_sector(c) + (pos % cb) / SECTOR as u64;
            let end = self.geo.cluster_sector(c) + run * spc;
            let mut skip = (pos % SECTOR as u64) as usize;
            while sector < end && done < len {
                let want = ((len - done + skip).div_ceil(SECTOR) as u64).min(end - sector) as usize;
                let (i, m) = match self.cache.hit_run(sector, want, hint) {
                    Some(r) => r,
                    None => {
                        if let Some(p) = pending.take() {
                            hand(&self.cache, p, sink)?;
                        }
                        // A miss: read ahead as far as the run and the
                        // request go.
                        let ahead = want.min(crate::cache::READ_AHEAD as usize) - 1;
                        let i = self.cache.read_slot(sector, Class::Data, ahead as u32)?;
                        self.cache.hit_run(sector, want, i).ok_or(Error::Io)?
                    }
                };
                let k = (m * SECTOR - skip).min(len - done);
                pending = match pending {
                    // (Pending bytes end at a slot's end unless they are
                    // the request's last.)
                    Some((p, pskip, pn)) if skip == 0 && p * SECTOR + pskip + pn == i * SECTOR => {
                        Some((p, pskip, pn + k))
                    }
                    p => {
                        if let Some(p) = p {
                            hand(&self.cache, p, sink)?;
                        }
                        Some((i, skip, k))
                    }
                };
                done += k;
                sector += m as u64;
                skip = 0;
                hint = i + m;
            }
        }
        if let Some(p) = pending {
            hand(&self.cache, p, sink)?;
        }
        Ok(len)
    }

    /// Makes the file's chain hold at least `bytes` (newly added clusters
    /// are not cleared).
    fn ensure_clusters(&mut self, id: NodeId, bytes: u64) -> Result<(), Error> {
        let cb = self.geo.cluster_bytes();
        let need = bytes.div_ceil(cb) as u32;
        if need == 0 {
            return Ok(());
        }
        let n = self.node(id)?;
        let have_bytes = (n.size as u64).div_ceil(cb) as u32;
        let (first, _) = (n.first, n.size);
        let mut last = if first == 0 {
            let c = self.alloc(None)?;
            let n = self.node_mut(id)?;
            n.first = c;
            n.extents.clear();
            (0u32, c)
        } else {
            // Walk to the current end (the chain may be longer than the size).
            let idx = have_bytes.max(1) - 1;
            let mut c = self.cluster_at(id, idx)?;
            let mut i = idx;
            while let Some(x) = self.next(c)? {
                c = x;
                i += 1;
            }
            (i, c)
        };
        while last.0 + 1 < need {
            let c = self.alloc(Some(last.1))?;
            last = (last.0 + 1, c);
        }
        Ok(())
    }

    fn write_bytes(&mut self, id: NodeId, offset: u64, data: Option<&[u8]>, len: usize) -> Result<(), Error> {
        let cb = self.geo.cluster_bytes();
        let mut done = 0;
        while done < len {
            let pos = offset + done as u64;
            let c = self.cluster_at(id, (pos / cb) as u32)?;
            let sector = self.geo.cluster_sector(c) + (pos % cb) / SECTOR as u64;
            let in_sector = (pos % SECTOR as u64) as usize;
            let k = (SECTOR - in_sector).min(len - done);
            let s = if k == SECTOR {
                self.cache.overwrite(sector, Class::Data)?
            } else {
                self.cache.modify(sector, Class::Data)?
            };
            match data {
                Some(d) => s[in_sector..in_sector + k].copy_from_slice(&d[done..done + k]),
                None => s[in_sector..in_sector + k].fill(0),
            }
            done += k;
        }
        Ok(())
    }

    fn sync_entry(&mut self, id: NodeId) -> Result<(), Error> {
        let n = self.node(id)?;
        let (loc, first, size) = (n.loc, n.first, n.size);
        let t = self.clock.now();
        if let Some(loc) = loc {
            self.update_entry(loc, |e| {
                dir::set_first_cluster(e, first);
                dir::set_size(e, size);
                dir::set_mtime(e, t);
                e[11] |= dir::ATTR_ARCHIVE;
            })?;
        }
        Ok(())
    }

    /// Writes `data` at `offset` (a gap past the end reads as zeros).
    pub fn write(&mut self, id: NodeId, offset: u64, data: &[u8]) -> Result<usize, Error> {
        self.writable()?;
        let n = self.node(id)?;
        if n.is_dir {
            return Err(Error::IsADirectory);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let end = offset.checked_add(data.len() as u64).ok_or(Error::TooLarge)?;
        if end > u32::MAX as u64 {
            return Err(Error::TooLarge);
        }
        let size = n.size as u64;
        if let Err(e) = self.ensure_clusters(id, end) {
            // No half-grown chain stays behind (disk full).
            let _ = self.set_len(id, size);
            return Err(e);
        }
        if offset > size {
            self.write_bytes(id, size, None, (offset - size) as usize)?;
        }
        self.write_bytes(id, offset, Some(data), data.len())?;
        let n = self.node_mut(id)?;
        n.size = n.size.max(end as u32);
        self.sync_entry(id)?;
        Ok(data.len())
    }

    /// Sets a file's length: cut (clusters past it freed) or extended
    /// with zeros.
    pub fn set_len(&mut self, id: NodeId, len: u64) -> Result<(), Error> {
        self.writable()?;
        let n = self.node(id)?;
        if n.is_dir {
            return Err(Error::IsADirectory);
        }
        if len > u32::MAX as u64 {
            return Err(Error::TooLarge);
        }
        let size = n.size as u64;
        let first = n.first;
        if len > size {
            self.ensure_clusters(id, len)?;
            self.write_bytes(id, size, None, (len - size) as usize)?;
        } else if first != 0 {
            let cb = self.geo.cluster_bytes();
            let keep = len.div_ceil(cb) as u32;
            if keep == 0 {
                self.free_chain(first)?;
                let n = self.node_mut(id)?;
                n.first = 0;
                n.extents.clear();
            } else {
                let last = self.cluster_at(id, keep - 1)?;
                if let Some(rest) = self.next(last)? {
                    self.fat_set(last, eoc(self.geo.fat_type))?;
                    self.free_chain(rest)?;
                }
                self.node_mut(id)?.extents.clear();
            }
        }
        self.node_mut(id)?.size = len as u32;
        self.sync_entry(id)
    }

    // ---- names ----

    pub fn mkdir(&mut self, start: NodeId, path: &str) -> Result<(), Error> {
        self.writable()?;
        let (d, name) = self.parent(start, path)?;
        let name = name.ok_or(Error::Exists)?;
        if self.find(d, name)?.is_some() {
            return Err(Error::Exists);
        }
        dir::validate(name)?;
        let c = self.alloc(None)?;
        let t = self.clock.now();
        let parent_cluster = match d {
            DirRef::Root16 => 0,
            DirRef::Chain(p) if self.geo.fat_type == FatType::Fat32 && p == self.geo.root_cluster => 0,
            DirRef::Chain(p) => p,
        };
        self.new_dir_cluster(
            c,
            &[
                dir::short_entry(b".          ", 0, dir::ATTR_DIRECTORY, c, t),
                dir::short_entry(b"..         ", 0, dir::ATTR_DIRECTORY, parent_cluster, t),
            ],
        )?;
        let e = dir::short_entry(&[b' '; 11], 0, dir::ATTR_DIRECTORY, c, t);
        if let Err(err) = self.insert(d, name, e) {
            self.free_chain(c)?;
            return Err(err);
        }
        Ok(())
    }

    /// Removes a file.
    pub fn unlink(&mut self, start: NodeId, path: &str) -> Result<(), Error> {
        self.writable()?;
        let f = self.lookup(start, path)?.ok_or(Error::NotFound)?;
        if dir::attr(&f.entry) & dir::ATTR_DIRECTORY != 0 {
            return Err(Error::IsADirectory);
        }
        if self.open_at(f.loc).is_some() {
            return Err(Error::Busy);
        }
        self.remove_entry(f.loc)?;
        self.free_chain(dir::first_cluster(&f.entry))
    }

    fn is_empty_dir(&mut self, first: u32) -> Result<bool, Error> {
        let mut empty = true;
        self.walk(self.dir_of(first)?, 0, |_| {
            empty = false;
            false
        })?;
        Ok(empty)
    }

    /// Removes an empty directory.
    pub fn rmdir(&mut self, start: NodeId, path: &str) -> Result<(), Error> {
        self.writable()?;
        let f = self.lookup(start, path)?.ok_or(Error::NotFound)?;
        if dir::attr(&f.entry) & dir::ATTR_DIRECTORY == 0 {
            return Err(Error::NotADirectory);
        }
        let first = dir::first_cluster(&f.entry);
        if self.open_at(f.loc).is_some() {
            return Err(Error::Busy);
        }
        if !self.is_empty_dir(first)? {
            return Err(Error::NotEmpty);
        }
        self.remove_entry(f.loc)?;
        self.free_chain(first)
    }

    /// Whether directory `inner` is `outer` or lies inside it (by `..`).
    fn is_within(&mut self, inner: DirRef, outer: u32) -> Result<bool, Error> {
        let mut d = inner;
        for _ in 0..4096 {
            let DirRef::Chain(c) = d else { return Ok(false) };
            if c == outer {
                return Ok(true);
            }
            if self.geo.fat_type == FatType::Fat32 && c == self.geo.root_cluster {
                return Ok(false);
            }
            let secs = self.dir_sectors(d)?;
            let (lba, off) = Self::slot_pos(&secs, 1)?;
            let e = &self.cache.read(lba, Class::Dir, 0)?[off..off + ENTRY];
            if &e[..2] != b".." {
                return Err(Error::Corrupt);
            }
            let up = dir::first_cluster(e);
            d = self.dir_of(up)?;
        }
        Err(Error::Corrupt)
    }

    /// Moves `from` (under `from_dir`) to `to` (under `to_dir`), replacing
    /// a file there, or an empty directory when moving a directory.
    pub fn rename(&mut self, from_dir: NodeId, from: &str, to_dir: NodeId, to: &str) -> Result<(), Error> {
        self.writable()?;
        let src = self.lookup(from_dir, from)?.ok_or(Error::NotFound)?;
        let (td, tname) = self.parent(to_dir, to)?;
        let tname = tname.ok_or(Error::Busy)?;
        dir::validate(tname)?;
        let src_is_dir = dir::attr(&src.entry) & dir::ATTR_DIRECTORY != 0;
        let src_first = dir::first_cluster(&src.entry);
        if src_is_dir && self.is_within(td, src_first)? {
            return Err(Error::Busy);
        }
        let mut free_after = None;
        if let Some(t) = self.find(td, tname)? {
            if t.loc == src.loc {
                if t.name == tname {
                    return Ok(());
                }
                // A change of case only: falls through, the entry is rewritten.
            } else {
                let t_is_dir = dir::attr(&t.entry) & dir::ATTR_DIRECTORY != 0;
                match (src_is_dir, t_is_dir) {
                    (false, true) => return Err(Error::IsADirectory),
                    (true, false) => return Err(Error::NotADirectory),
                    (true, true) if !self.is_empty_dir(dir::first_cluster(&t.entry))? => return Err(Error::NotEmpty),
                    _ => {}
                }
                if self.open_at(t.loc).is_some() {
                    return Err(Error::Busy);
                }
                self.remove_entry(t.loc)?;
                free_after = Some(dir::first_cluster(&t.entry));
            }
        }
        let new = self.insert(td, tname, src.entry)?;
        self.remove_entry(src.loc)?;
        if src_is_dir && td != src.loc.dir {
            let parent = match td {
                DirRef::Chain(p) if !(self.geo.fat_type == FatType::Fat32 && p == self.geo.root_cluster) => p,
                _ => 0,
            };
            let secs = self.dir_sectors(DirRef::Chain(src_first))?;
            let (lba, off) = Self::slot_pos(&secs, 1)?;
            dir::set_first_cluster(&mut self.cache.modify(lba, Class::Dir)?[off..off + ENTRY], parent);
        }
        if let Some(i) = self.open_at(src.loc) {
            self.node_mut(i)?.loc = Some(new);
        }
        if let Some(c) = free_after {
            self.free_chain(c)?;
        }
        Ok(())
    }

    // ---- the volume ----

    /// Writes everything cached, in the crash-safe order.
    pub fn sync(&mut self) -> Result<(), Error> {
        if self.read_only || !self.cache.is_dirty() {
            return Ok(());
        }
        if let Some(fsinfo) = self.geo.fsinfo {
            let (free, next) = (self.free.unwrap_or(0xffff_ffff), self.next_free);
            let s = self.cache.read(fsinfo, Class::Meta, 0)?;
            if le32(s, 0) == 0x4161_5252 && (le32(s, 488), le32(s, 492)) != (free, next) {
                let s = self.cache.modify(fsinfo, Class::Meta)?;
                s[488..492].copy_from_slice(&free.to_le_bytes());
                s[492..496].copy_from_slice(&next.to_le_bytes());
            }
        }
        self.cache.flush()?;
        self.released.clear();
        Ok(())
    }

    pub fn statfs(&mut self) -> Result<StatFs, Error> {
        let free = match self.free {
            Some(f) => f,
            None => {
                let mut f = 0;
                for c in 2..self.geo.clusters + 2 {
                    if self.fat_get(c)? == 0 {
                        f += 1;
                    }
                }
                self.free = Some(f);
                f
            }
        };
        Ok(StatFs {
            cluster_bytes: self.geo.cluster_bytes(),
            clusters: self.geo.clusters as u64,
            free_clusters: free as u64,
            fat32: self.geo.fat_type == FatType::Fat32,
        })
    }
}

fn meta(e: &[u8]) -> Metadata {
    let is_dir = dir::attr(e) & dir::ATTR_DIRECTORY != 0;
    Metadata {
        is_dir,
        size: if is_dir { 0 } else { dir::size(e) as u64 },
        modified: (crate::le16(e, 24), crate::le16(e, 22)),
        read_only: dir::attr(e) & dir::ATTR_READ_ONLY != 0,
    }
}
