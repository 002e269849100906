//! AArch64 stage-1 translation tables: 4 KiB granule, 48-bit virtual
//! addresses, four levels.
//!
//! [`Mapper`] builds and edits a table tree through a [`TableMemory`], which
//! hands out zeroed table pages and gives access to them. The kernel backs it
//! with physical frames reached through its linear map; host tests back it
//! with ordinary heap memory, so the builder is tested without hardware.
//!
//! A tree whose memory is [`TableMemory::PRUNED`] (a task's) never keeps an
//! empty table below its root: each table descriptor counts the valid
//! entries of the table it points to (in bits the MMU ignores), and an
//! unmap that leaves a table with none unlinks it and hands it back
//! ([`TableMemory::free_table`]), and so on up the tree. Its tables are so
//! never more than its mappings need, whatever addresses they used.

/// Size of a page and of a translation table.
pub const PAGE_SIZE: u64 = 4096;
const ENTRIES: usize = 512;

const VALID: u64 = 1 << 0;
const TABLE_OR_PAGE: u64 = 1 << 1;
const ATTR_INDEX_SHIFT: u64 = 2;
const AP_EL0: u64 = 1 << 6;
const AP_READ_ONLY: u64 = 1 << 7;
const SH_INNER: u64 = 3 << 8;
const ACCESS_FLAG: u64 = 1 << 10;
const NOT_GLOBAL: u64 = 1 << 11;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
const ADDRESS_MASK: u64 = 0x0000_ffff_ffff_f000;
/// In a pruned tree ([`TableMemory::PRUNED`]), bits [11:2] of a table
/// descriptor hold how many valid entries (0 to 512) the table it points
/// to has. The MMU ignores them in a table descriptor (with TCR_EL1.DS and
/// the table Access flag of FEAT_HAFT off, as the boot stub sets it), so
/// they change without break-before-make; [`ADDRESS_MASK`] leaves them out.
const COUNT_SHIFT: u32 = 2;
const COUNT_MASK: u64 = 0x3ff << COUNT_SHIFT;

/// Memory types, as indices into MAIR_EL1 (set up by the boot stub:
/// 0 Device-nGnRE, 1 Normal write-back, 2 Normal non-cacheable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryType {
    Device = 0,
    Normal = 1,
    NormalNonCacheable = 2,
}

/// What a mapping allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attributes {
    pub memory: MemoryType,
    pub writable: bool,
    /// Executable at the privilege level that may access it.
    pub executable: bool,
    /// Accessible from EL0 (user). Such pages are never executable by EL1.
    pub user: bool,
    /// Tagged with the current ASID rather than global.
    pub not_global: bool,
}

impl Attributes {
    /// Kernel read-write data, never executable.
    pub const KERNEL_DATA: Attributes = Attributes {
        memory: MemoryType::Normal,
        writable: true,
        executable: false,
        user: false,
        not_global: false,
    };
    /// Kernel read-only data.
    pub const KERNEL_RODATA: Attributes = Attributes {
        writable: false,
        ..Self::KERNEL_DATA
    };
    /// Device registers for the kernel: Device-nGnRE, never executable.
    pub const KERNEL_DEVICE: Attributes = Attributes {
        memory: MemoryType::Device,
        ..Self::KERNEL_DATA
    };

    /// The leaf descriptor bits (everything but the address and type bits).
    #[inline(always)]
    pub fn descriptor_bits(self) -> u64 {
        let mut bits = ((self.memory as u64) << ATTR_INDEX_SHIFT) | ACCESS_FLAG;
        if self.memory != MemoryType::Device {
            bits |= SH_INNER;
        }
        if !self.writable {
            bits |= AP_READ_ONLY;
        }
        if self.user {
            // User pages: never executable by the kernel (PXN).
            bits |= AP_EL0 | PXN;
            if !self.executable {
                bits |= UXN;
            }
        } else {
            bits |= UXN;
            if !self.executable {
                bits |= PXN;
            }
        }
        if self.not_global {
            bits |= NOT_GLOBAL;
        }
        bits
    }

    /// Decode the attributes of a leaf descriptor.
    pub fn from_descriptor(desc: u64) -> Attributes {
        let memory = match (desc >> ATTR_INDEX_SHIFT) & 7 {
            0 => MemoryType::Device,
            2 => MemoryType::NormalNonCacheable,
            _ => MemoryType::Normal,
        };
        let user = desc & AP_EL0 != 0;
        let executable = if user { desc & UXN == 0 } else { desc & PXN == 0 };
        Attributes {
            memory,
            writable: desc & AP_READ_ONLY == 0,
            executable,
            user,
            not_global: desc & NOT_GLOBAL != 0,
        }
    }
}

/// Why a mapping request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Address or size not page aligned.
    Misaligned,
    /// Part of the range is already mapped.
    AlreadyMapped { va: u64 },
    /// No memory for another translation table.
    OutOfTables,
}

impl core::fmt::Display for MapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MapError::Misaligned => write!(f, "address or size not page aligned"),
            MapError::AlreadyMapped { va } => write!(f, "{va:#x} is already mapped"),
            MapError::OutOfTables => write!(f, "out of memory for translation tables"),
        }
    }
}

/// Storage for translation tables.
pub trait TableMemory {
    /// Whether the tree counts the valid entries of each table below its
    /// root and drops a table that an unmap (or a failed map) leaves empty
    /// ([`TableMemory::free_table`]). Its root must start empty. The
    /// kernel's own tree, which the boot stub began, is not pruned.
    const PRUNED: bool = false;
    /// A zeroed, page-aligned table page; returns its physical address.
    fn allocate_table(&mut self) -> Option<u64>;
    /// The table at physical address `pa`.
    fn table(&mut self, pa: u64) -> &mut [u64; ENTRIES];
    /// Take back table `pa` (all zero) of a pruned tree, which no entry of
    /// the tree names any more. A walk may still have cached the entry
    /// that named it: the page must not be used for anything else until
    /// the TLB entries of the range the call unmapped are invalidated (at
    /// least one of its pages was in this table's range, and invalidating
    /// by address drops the cached walks for it at every level), on every
    /// CPU, after the call. Called only when [`TableMemory::PRUNED`]; by
    /// default it keeps nothing.
    fn free_table(&mut self, pa: u64) {
        let _ = pa;
    }
}

/// Block sizes that may be used for a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    /// 4 KiB pages only (finest control, e.g. guard pages nearby).
    Pages,
    /// 2 MiB and 1 GiB blocks where address, size and alignment allow.
    Blocks,
}

fn index(va: u64, level: u32) -> usize {
    ((va >> (39 - 9 * level)) & 0x1ff) as usize
}

fn level_size(level: u32) -> u64 {
    1 << (39 - 9 * level)
}

/// Builds and edits one translation table tree.
pub struct Mapper<'m, M: TableMemory> {
    root: u64,
    memory: &'m mut M,
}

impl<'m, M: TableMemory> Mapper<'m, M> {
    /// Edit the tree whose level-0 table is at physical address `root`.
    pub fn new(root: u64, memory: &'m mut M) -> Self {
        Mapper { root, memory }
    }

    /// Map `[va, va + size)` to `[pa, pa + size)`.
    ///
    /// All or nothing: on any error no page of the range is left mapped
    /// (entries written before the failure are cleared again; tables
    /// created on the way remain, owned by the tree, but in a pruned tree
    /// those left empty go as in [`Mapper::unmap`]), and existing leaf
    /// entries are never changed. The caller invalidates the TLB for the
    /// range when this fails (a cleared entry, or one naming a table freed
    /// since, may have been cached by a walk).
    pub fn map(
        &mut self,
        va: u64,
        pa: u64,
        size: u64,
        attributes: Attributes,
        granularity: Granularity,
    ) -> Result<(), MapError> {
        if (va | pa | size) & (PAGE_SIZE - 1) != 0 {
            return Err(MapError::Misaligned);
        }
        if let Some((found_va, _)) = self.first_mapped(va, size) {
            return Err(MapError::AlreadyMapped { va: found_va });
        }
        let mut offset = 0;
        while offset < size {
            let (v, p, remaining) = (va + offset, pa + offset, size - offset);
            let level = match granularity {
                Granularity::Pages => 3,
                Granularity::Blocks => {
                    if (v | p) & (level_size(1) - 1) == 0 && remaining >= level_size(1) {
                        1
                    } else if (v | p) & (level_size(2) - 1) == 0 && remaining >= level_size(2) {
                        2
                    } else {
                        3
                    }
                }
            };
            let (table, above) = match self.walk_create(v, level) {
                Ok(found) => found,
                Err(e) => {
                    // Undo what this call wrote: [va, v) was unmapped before;
                    // the tables made for `v` may be empty.
                    self.unmap(va, offset);
                    self.prune(v);
                    return Err(e);
                }
            };
            // Every page or block of the range in this table, without
            // walking again: linear in them, a few instructions each (the
            // boot's linear map of 1 GiB is some 500 blocks of 2 MiB). A
            // block's neighbours are aligned as it is; the table ends at a
            // boundary of the level above, where a larger block may start.
            let span = level_size(level);
            let first = index(v, level);
            let count = ((ENTRIES - first) as u64).min(remaining / span) as usize;
            let kind = if level == 3 { TABLE_OR_PAGE } else { 0 };
            let bits = attributes.descriptor_bits() | kind | VALID;
            let entries = &mut self.memory.table(table)[first..first + count];
            let mut p = p;
            for entry in entries {
                *entry = (p & ADDRESS_MASK) | bits;
                p += span;
            }
            // (Each was invalid: `first_mapped` found none valid.)
            self.add_count(above, count as u64);
            offset += count as u64 * span;
        }
        Ok(())
    }

    /// Remove every mapping in `[va, va + size)`; returns how many leaf
    /// entries were cleared. Blocks that only partly overlap are left alone
    /// and reported in the count as 0. The caller invalidates the TLB for
    /// the range. In a pruned tree a table left with no valid entry goes
    /// ([`TableMemory::free_table`]), and its parent's entry is cleared,
    /// up to the root: constant work a table, with the counts.
    pub fn unmap(&mut self, va: u64, size: u64) -> usize {
        let mut cleared = 0;
        let mut v = va & !(PAGE_SIZE - 1);
        let end = va.saturating_add(size);
        while v < end {
            let (path, level) = self.path(v);
            let table = path[level as usize];
            let span = level_size(level);
            let next = if level == 3 {
                // The rest of the range in this last-level table, without
                // walking again.
                let first = index(v, 3);
                let count = ((ENTRIES - first) as u64).min((end - v) / PAGE_SIZE) as usize;
                if count == 0 {
                    break;
                }
                let mut here = 0;
                for entry in &mut self.memory.table(table)[first..first + count] {
                    if *entry & VALID != 0 {
                        *entry = 0;
                        here += 1;
                    }
                }
                cleared += here;
                self.release(&path, 3, v, here as u64);
                v.checked_add(count as u64 * PAGE_SIZE)
            } else {
                let desc = self.memory.table(table)[index(v, level)];
                // A block (a table there is how `path` goes on), or none:
                // nothing mapped in its whole span.
                if desc & VALID != 0 && v & (span - 1) == 0 && v + span <= end {
                    self.memory.table(table)[index(v, level)] = 0;
                    cleared += 1;
                    self.release(&path, level, v, 1);
                }
                (v & !(span - 1)).checked_add(span)
            };
            match next {
                Some(next) => v = next,
                None => break,
            }
        }
        cleared
    }

    /// Physical address and attributes that `va` translates to.
    pub fn translate(&mut self, va: u64) -> Option<(u64, Attributes)> {
        let (table, level) = self.leaf(va)?;
        let desc = self.memory.table(table)[index(va, level)];
        let offset = va & (level_size(level) - 1);
        Some((
            (desc & ADDRESS_MASK & !(level_size(level) - 1)) + offset,
            Attributes::from_descriptor(desc),
        ))
    }

    /// The last-level table whose entry maps `va` as a page, if `va` is
    /// mapped that way: [`Mapper::translate_in`] reads the entries of that
    /// table for other pages of the same 2 MiB without a walk.
    pub fn last_level_table(&mut self, va: u64) -> Option<u64> {
        match self.leaf(va)? {
            (table, 3) => Some(table),
            _ => None,
        }
    }

    /// [`Mapper::translate`] of `va` through last-level table `table`, one
    /// from [`Mapper::last_level_table`] for an address in `va`'s 2 MiB
    /// (the tables unchanged since).
    pub fn translate_in(&mut self, table: u64, va: u64) -> Option<(u64, Attributes)> {
        let desc = self.memory.table(table)[index(va, 3)];
        if desc & VALID == 0 {
            return None;
        }
        Some((
            (desc & ADDRESS_MASK) + (va & (PAGE_SIZE - 1)),
            Attributes::from_descriptor(desc),
        ))
    }

    /// The first mapped page in `[va, va + size)`.
    fn first_mapped(&mut self, va: u64, size: u64) -> Option<(u64, Attributes)> {
        let mut v = va;
        let end = va.saturating_add(size);
        while v < end {
            match self.leaf(v) {
                Some((_, _)) => return self.translate(v).map(|(_, a)| (v, a)),
                None => {
                    let (table, level) = self.deepest_table(v);
                    if level == 3 {
                        // A last-level table: look through the rest of
                        // the range in it without walking again.
                        let first = index(v, 3);
                        let count = ((ENTRIES - first) as u64).min((end - v).div_ceil(PAGE_SIZE)) as usize;
                        let entries = &self.memory.table(table)[first..first + count];
                        if let Some(i) = entries.iter().position(|e| e & VALID != 0) {
                            let found = v + i as u64 * PAGE_SIZE;
                            return self.translate(found).map(|(_, a)| (found, a));
                        }
                        match v.checked_add(count as u64 * PAGE_SIZE) {
                            Some(next) => v = next,
                            None => break,
                        }
                        continue;
                    }
                    // Skip whole unmapped subtrees quickly: the rest of
                    // the range in this table up to its next valid entry,
                    // without walking again.
                    let span = level_size(level);
                    let base = v & !(span - 1);
                    let first = index(v, level);
                    let count = ((ENTRIES - first) as u64).min((end - base).div_ceil(span)) as usize;
                    let entries = &self.memory.table(table)[first..first + count];
                    let skipped = entries.iter().position(|e| e & VALID != 0).unwrap_or(count);
                    match base.checked_add(skipped.max(1) as u64 * span) {
                        Some(next) => v = next,
                        None => break,
                    }
                }
            }
        }
        None
    }

    /// The tables the walk for `va` goes through, from the root, and the
    /// level of the last: the one whose entry for `va` is invalid or a
    /// leaf (0..=3).
    fn path(&mut self, va: u64) -> ([u64; 4], u32) {
        let mut path = [self.root; 4];
        for level in 0..3 {
            let desc = self.memory.table(path[level as usize])[index(va, level)];
            if desc & VALID == 0 || desc & TABLE_OR_PAGE == 0 {
                return (path, level);
            }
            path[level as usize + 1] = desc & ADDRESS_MASK;
        }
        (path, 3)
    }

    /// The table and level whose entry for `va` is invalid or a leaf (0..=3).
    fn deepest_table(&mut self, va: u64) -> (u64, u32) {
        let mut table = self.root;
        for level in 0..4 {
            let desc = self.memory.table(table)[index(va, level)];
            if desc & VALID == 0 || level == 3 || desc & TABLE_OR_PAGE == 0 {
                return (table, level);
            }
            table = desc & ADDRESS_MASK;
        }
        (table, 3)
    }

    /// In a pruned tree, add `n` to the count of valid entries that the
    /// table descriptor at `slot` (a table and an index in it) keeps for
    /// the table it names.
    fn add_count(&mut self, slot: Option<(u64, usize)>, n: u64) {
        if let (true, Some((table, i))) = (M::PRUNED, slot) {
            self.memory.table(table)[i] += n << COUNT_SHIFT;
        }
    }

    /// In a pruned tree, table `path[level]` (on the walk for `va`) lost
    /// `removed` valid entries: if none is left, it goes, and its entry in
    /// the table above is cleared, which may empty that one in turn. The
    /// root stays.
    fn release(&mut self, path: &[u64; 4], level: u32, va: u64, removed: u64) {
        if !M::PRUNED {
            return;
        }
        let (mut level, mut removed) = (level as usize, removed);
        while level > 0 {
            let (above, i) = (path[level - 1], index(va, level as u32 - 1));
            let desc = self.memory.table(above)[i];
            let left = ((desc & COUNT_MASK) >> COUNT_SHIFT) - removed;
            if left > 0 {
                self.memory.table(above)[i] = (desc & !COUNT_MASK) | ((left << COUNT_SHIFT) & COUNT_MASK);
                return;
            }
            self.memory.table(above)[i] = 0;
            self.memory.free_table(path[level]);
            (level, removed) = (level - 1, 1);
        }
    }

    /// In a pruned tree, drop the tables on the walk for `va` that are
    /// empty (made by a map that failed further down).
    fn prune(&mut self, va: u64) {
        if !M::PRUNED {
            return;
        }
        let (path, level) = self.path(va);
        self.release(&path, level, va, 0);
    }

    /// Look through the whole tree: the number of tables below the root,
    /// or, in a pruned tree, the first address whose table is empty or has
    /// a count of valid entries other than its own (a self-check: 512
    /// entries a table).
    pub fn check_tree(&mut self) -> Result<u64, u64> {
        let root = self.root;
        self.check_table(root, 0, 0)
    }

    fn check_table(&mut self, table: u64, level: u32, base: u64) -> Result<u64, u64> {
        let mut tables = 0;
        for i in 0..ENTRIES {
            let desc = self.memory.table(table)[i];
            if level == 3 || desc & VALID == 0 || desc & TABLE_OR_PAGE == 0 {
                continue;
            }
            let va = base + i as u64 * level_size(level);
            let child = desc & ADDRESS_MASK;
            let valid = self.memory.table(child).iter().filter(|e| *e & VALID != 0).count() as u64;
            if M::PRUNED && (valid == 0 || valid != (desc & COUNT_MASK) >> COUNT_SHIFT) {
                return Err(va);
            }
            tables += 1 + self.check_table(child, level + 1, va)?;
        }
        Ok(tables)
    }

    /// The table and level holding the valid leaf entry for `va`.
    fn leaf(&mut self, va: u64) -> Option<(u64, u32)> {
        let mut table = self.root;
        for level in 0..4 {
            let desc = self.memory.table(table)[index(va, level)];
            if desc & VALID == 0 {
                return None;
            }
            if level == 3 || desc & TABLE_OR_PAGE == 0 {
                return Some((table, level));
            }
            table = desc & ADDRESS_MASK;
        }
        None
    }

    /// The table at `level` covering `va`, creating intermediate tables,
    /// and, in a pruned tree, the entry (a table and an index in it) that
    /// names it.
    fn walk_create(&mut self, va: u64, level: u32) -> Result<(u64, Option<(u64, usize)>), MapError> {
        let mut table = self.root;
        let mut above = None;
        for l in 0..level {
            let i = index(va, l);
            let desc = self.memory.table(table)[i];
            let next = if desc & VALID == 0 {
                let new = self.memory.allocate_table().ok_or(MapError::OutOfTables)?;
                self.memory.table(table)[i] = new | TABLE_OR_PAGE | VALID;
                self.add_count(above, 1);
                new
            } else if desc & TABLE_OR_PAGE == 0 {
                return Err(MapError::AlreadyMapped { va });
            } else {
                desc & ADDRESS_MASK
            };
            if M::PRUNED {
                above = Some((table, i));
            }
            table = next;
        }
        Ok((table, above))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Tables in host memory, at made-up physical addresses; a pruned
    /// tree (`PRUNE`) or not.
    struct HostTables<const PRUNE: bool> {
        tables: HashMap<u64, Box<[u64; ENTRIES]>>,
        next: u64,
        limit: usize,
        freed: usize,
    }

    impl<const PRUNE: bool> HostTables<PRUNE> {
        fn with_limit(limit: usize) -> (Self, u64) {
            let mut t = HostTables {
                tables: HashMap::new(),
                next: 0x1000_0000,
                limit,
                freed: 0,
            };
            let root = t.allocate_table().unwrap();
            (t, root)
        }
    }

    impl HostTables<false> {
        fn new(limit: usize) -> (Self, u64) {
            Self::with_limit(limit)
        }
    }

    impl HostTables<true> {
        fn pruned(limit: usize) -> (Self, u64) {
            Self::with_limit(limit)
        }
    }

    impl<const PRUNE: bool> TableMemory for HostTables<PRUNE> {
        const PRUNED: bool = PRUNE;

        fn allocate_table(&mut self) -> Option<u64> {
            if self.tables.len() >= self.limit {
                return None;
            }
            let pa = self.next;
            self.next += PAGE_SIZE;
            self.tables.insert(pa, Box::new([0; ENTRIES]));
            Some(pa)
        }
        fn table(&mut self, pa: u64) -> &mut [u64; ENTRIES] {
            self.tables.get_mut(&pa).expect("table exists")
        }
        fn free_table(&mut self, pa: u64) {
            assert!(PRUNE, "only a pruned tree frees tables");
            let table = self.tables.remove(&pa).expect("a table of the tree");
            assert!(table.iter().all(|e| *e == 0), "a table freed with entries");
            self.freed += 1;
        }
    }

    const GIB: u64 = 1 << 30;
    const USER: Attributes = Attributes {
        memory: MemoryType::Normal,
        writable: true,
        executable: false,
        user: true,
        not_global: true,
    };

    /// The issue-11 pattern: one page at ever new addresses, each in a
    /// gigabyte (and some in 512 GiB) of its own, mapped and unmapped. A
    /// pruned tree is back to its root alone after every unmap; a tree that
    /// is not keeps two or three tables each time.
    #[test]
    fn pruned_tree_frees_what_an_unmap_empties() {
        let addresses: Vec<u64> = (0..64u64)
            .map(|i| (256 + i) * GIB + (i % 512) * PAGE_SIZE)
            .chain((1..8u64).map(|i| (i << 39) + 5 * PAGE_SIZE))
            .collect();
        let (mut mem, root) = HostTables::pruned(8);
        for &va in &addresses {
            let mut m = Mapper::new(root, &mut mem);
            m.map(va, 0x4000_0000, PAGE_SIZE, USER, Granularity::Pages).unwrap();
            assert_eq!(m.translate(va + 8).unwrap().0, 0x4000_0008);
            assert!(m.check_tree().unwrap() >= 3);
            assert_eq!(m.unmap(va, PAGE_SIZE), 1);
            assert_eq!(m.check_tree(), Ok(0), "{va:#x}");
            assert!(m.translate(va).is_none());
            assert_eq!(mem.tables.len(), 1, "only the root left after {va:#x}");
            assert!(mem.tables[&root].iter().all(|e| *e == 0));
        }
        // L1, L2 and L3 each time (the root maps nothing else).
        assert_eq!(mem.freed, (64 + 7) * 3);
        // Not pruned: every table stays (a limit of 8 would not do).
        let (mut mem, root) = HostTables::new(1 << 10);
        for &va in &addresses {
            let mut m = Mapper::new(root, &mut mem);
            m.map(va, 0x4000_0000, PAGE_SIZE, USER, Granularity::Pages).unwrap();
            m.unmap(va, PAGE_SIZE);
        }
        assert_eq!(mem.tables.len(), 1 + 64 * 2 + 1 + 7 * 3);
    }

    /// A table goes with its last valid entry, not before: counts per
    /// table, across tables and levels, and blocks count as entries.
    #[test]
    fn pruned_tree_keeps_tables_that_hold_entries() {
        let (mut mem, root) = HostTables::pruned(16);
        let mut m = Mapper::new(root, &mut mem);
        let va = 3 * GIB + 510 * PAGE_SIZE;
        // Two pages in one last-level table, two in the next; a 2 MiB
        // block in the same L2 table.
        m.map(va, 0x10_0000, 4 * PAGE_SIZE, USER, Granularity::Pages).unwrap();
        m.map(3 * GIB + (8 << 20), 0x20_0000, 2 << 20, USER, Granularity::Blocks)
            .unwrap();
        assert_eq!(m.check_tree(), Ok(4)); // L1, L2, two L3
        assert_eq!(m.unmap(va, PAGE_SIZE), 1);
        assert_eq!(m.check_tree(), Ok(4));
        assert_eq!(m.unmap(va + PAGE_SIZE, PAGE_SIZE), 1);
        assert_eq!(m.check_tree(), Ok(3), "the first L3 goes");
        assert!(m.translate(va + 2 * PAGE_SIZE).is_some());
        // Both of the next, and more around them: its L3 goes, the L2 stays
        // for the block.
        assert_eq!(m.unmap(va - 4 * PAGE_SIZE, 10 * PAGE_SIZE), 2);
        assert_eq!(m.check_tree(), Ok(2));
        assert_eq!(m.translate(3 * GIB + (9 << 20)).unwrap().0, 0x30_0000);
        assert_eq!(m.unmap(3 * GIB + (8 << 20), 2 << 20), 1);
        assert_eq!(m.check_tree(), Ok(0));
        assert_eq!(mem.tables.len(), 1);
    }

    /// A map that runs out of tables after making some leaves none empty
    /// in a pruned tree: what it made goes again.
    #[test]
    fn failed_map_leaves_no_empty_table_in_a_pruned_tree() {
        // The range crosses from one GiB into the next: root, L1, and an
        // L2 and an L3 in each; each limit below 6 fails somewhere else.
        for limit in 1..8 {
            let (mut mem, root) = HostTables::pruned(limit);
            let mut m = Mapper::new(root, &mut mem);
            let va = 5 * GIB - 2 * PAGE_SIZE;
            let r = m.map(va, 0x4000_0000, 4 * PAGE_SIZE, USER, Granularity::Pages);
            if limit < 6 {
                assert_eq!(r, Err(MapError::OutOfTables), "limit {limit}");
                assert_eq!(m.check_tree(), Ok(0), "limit {limit}");
                assert_eq!(mem.tables.len(), 1, "limit {limit}");
            } else {
                assert_eq!(r, Ok(()));
                assert_eq!(m.check_tree(), Ok(5));
            }
        }
    }

    /// Random maps and unmaps of runs of pages in a small corner of the
    /// address space, against a model: translations, the counts and the
    /// tables agree at every step, and all go with the last page.
    #[test]
    fn pruned_tree_follows_random_maps_and_unmaps() {
        let (mut mem, root) = HostTables::pruned(1 << 12);
        let mut model = std::collections::BTreeMap::new();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        // Pages around the boundaries of 2 MiB, 1 GiB and 512 GiB.
        let bases = [
            GIB - (1 << 20),
            (1 << 39) - 8 * PAGE_SIZE,
            7 * GIB + (2 << 20) - PAGE_SIZE,
        ];
        for step in 0..2000 {
            let mut m = Mapper::new(root, &mut mem);
            let va = bases[next(3) as usize] + next(700) * PAGE_SIZE;
            let pages = 1 + next(if step % 50 == 0 { 1200 } else { 40 });
            if next(2) == 0 {
                let pa = 0x8000_0000 + next(1 << 16) * PAGE_SIZE;
                let free = (0..pages).all(|i| !model.contains_key(&(va + i * PAGE_SIZE)));
                let r = m.map(va, pa, pages * PAGE_SIZE, USER, Granularity::Pages);
                assert_eq!(r.is_ok(), free, "step {step}");
                if free {
                    for i in 0..pages {
                        model.insert(va + i * PAGE_SIZE, pa + i * PAGE_SIZE);
                    }
                }
            } else {
                let expected = (0..pages)
                    .filter(|i| model.remove(&(va + i * PAGE_SIZE)).is_some())
                    .count();
                assert_eq!(m.unmap(va, pages * PAGE_SIZE), expected, "step {step}");
            }
            m.check_tree()
                .unwrap_or_else(|va| panic!("step {step}: table for {va:#x}"));
            for _ in 0..8 {
                let probe = bases[next(3) as usize] + next(800) * PAGE_SIZE;
                assert_eq!(m.translate(probe).map(|(pa, _)| pa), model.get(&probe).copied());
            }
        }
        let mut m = Mapper::new(root, &mut mem);
        for base in bases {
            m.unmap(base, 2000 * PAGE_SIZE);
        }
        assert_eq!(m.check_tree(), Ok(0));
        assert_eq!(mem.tables.len(), 1);
    }

    const KVA: u64 = 0xffff_ffff_8000_0000;

    #[test]
    fn maps_pages_and_translates() {
        let (mut mem, root) = HostTables::new(16);
        let mut m = Mapper::new(root, &mut mem);
        m.map(
            KVA,
            0x4008_0000,
            3 * PAGE_SIZE,
            Attributes::KERNEL_DATA,
            Granularity::Pages,
        )
        .unwrap();
        assert_eq!(m.translate(KVA + 0x1234).unwrap().0, 0x4008_1234);
        assert_eq!(m.translate(KVA + 0x2fff).unwrap().0, 0x4008_2fff);
        assert!(m.translate(KVA + 0x3000).is_none());
        assert_eq!(m.translate(KVA).unwrap().1, Attributes::KERNEL_DATA);
        // root + L1 + L2 + L3
        assert_eq!(mem.tables.len(), 4);
    }

    #[test]
    fn uses_blocks_when_aligned() {
        let (mut mem, root) = HostTables::new(16);
        let linear = 0xffff_0000_0000_0000u64;
        let mut m = Mapper::new(root, &mut mem);
        // 1 GiB + 2 MiB + 4 KiB starting at 1 GiB: one L1 block, one L2 block, one page.
        let size = (1 << 30) + (2 << 20) + PAGE_SIZE;
        m.map(
            linear + (1 << 30),
            1 << 30,
            size,
            Attributes::KERNEL_DATA,
            Granularity::Blocks,
        )
        .unwrap();
        assert_eq!(m.translate(linear + (1 << 30) + 5).unwrap().0, (1 << 30) + 5);
        assert_eq!(
            m.translate(linear + (2 << 30) + 0x1f_ffff).unwrap().0,
            (2 << 30) + 0x1f_ffff
        );
        assert_eq!(
            m.translate(linear + (2 << 30) + (2 << 20) + 8).unwrap().0,
            (2 << 30) + (2 << 20) + 8
        );
        assert!(m.translate(linear + (2 << 30) + (2 << 20) + PAGE_SIZE).is_none());
        // root, L1, L2 (for GiB 2), L3 (for the page)
        assert_eq!(mem.tables.len(), 4);
    }

    /// Runs of blocks are written a table at a time, and the check for
    /// what is mapped skips invalid entries a table at a time: the same
    /// entries and the same overlap found as one block at a time.
    #[test]
    fn runs_of_blocks_and_an_overlap_past_a_gap() {
        let (mut mem, root) = HostTables::new(16);
        let linear = 0xffff_0000_0000_0000u64;
        let (gib, mib2) = (1u64 << 30, 2u64 << 20);
        let mut m = Mapper::new(root, &mut mem);
        let attrs = Attributes::KERNEL_DATA;
        m.map(
            linear + gib + 3 * mib2,
            gib + 3 * mib2,
            mib2,
            attrs,
            Granularity::Blocks,
        )
        .unwrap();
        // Two invalid entries, then the block: found past them.
        assert_eq!(
            m.map(linear + gib + mib2, gib + mib2, 6 * mib2, attrs, Granularity::Blocks),
            Err(MapError::AlreadyMapped {
                va: linear + gib + 3 * mib2
            })
        );
        // Before it, and from after it to the end of the table, then a
        // GiB block and a page.
        m.map(linear + gib, gib, 3 * mib2, attrs, Granularity::Blocks).unwrap();
        let rest = gib - 4 * mib2;
        m.map(
            linear + gib + 4 * mib2,
            gib + 4 * mib2,
            rest + gib + PAGE_SIZE,
            attrs,
            Granularity::Blocks,
        )
        .unwrap();
        for off in [
            0,
            3 * mib2 + 8,
            4 * mib2,
            100 * mib2 + 5,
            gib - 1,
            gib,
            2 * gib - 1,
            2 * gib,
        ] {
            assert_eq!(m.translate(linear + gib + off).unwrap().0, gib + off, "offset {off:#x}");
        }
        assert!(m.translate(linear + 3 * gib + PAGE_SIZE).is_none());
        // root, L1, L2s for GiB 1 and GiB 3 (GiB 2 a block), an L3 for
        // the page
        assert_eq!(mem.tables.len(), 5);
        let l2 = mem
            .tables
            .values()
            .find(|t| t.iter().filter(|e| *e & VALID != 0).count() == ENTRIES)
            .expect("a full table of 2 MiB blocks");
        assert!(l2.iter().all(|e| e & TABLE_OR_PAGE == 0), "blocks, not tables");
    }

    #[test]
    fn refuses_overlap_and_misalignment() {
        let (mut mem, root) = HostTables::new(16);
        let mut m = Mapper::new(root, &mut mem);
        m.map(KVA, 0x1000, PAGE_SIZE, Attributes::KERNEL_DATA, Granularity::Pages)
            .unwrap();
        assert_eq!(
            m.map(KVA, 0x2000, PAGE_SIZE, Attributes::KERNEL_DATA, Granularity::Pages),
            Err(MapError::AlreadyMapped { va: KVA })
        );
        assert_eq!(
            m.map(KVA + 1, 0x2000, PAGE_SIZE, Attributes::KERNEL_DATA, Granularity::Pages),
            Err(MapError::Misaligned)
        );
        // Existing mapping untouched.
        assert_eq!(m.translate(KVA).unwrap().0, 0x1000);
    }

    #[test]
    fn reports_out_of_tables() {
        let (mut mem, root) = HostTables::new(2);
        let mut m = Mapper::new(root, &mut mem);
        assert_eq!(
            m.map(KVA, 0x1000, PAGE_SIZE, Attributes::KERNEL_DATA, Granularity::Pages),
            Err(MapError::OutOfTables)
        );
    }

    #[test]
    fn map_that_runs_out_of_tables_leaves_nothing_mapped() {
        // Root, L1, L2, L3: enough for the first 2 MiB only; the range
        // crosses into the next 2 MiB, whose L3 table cannot be made.
        let (mut mem, root) = HostTables::new(4);
        let mut m = Mapper::new(root, &mut mem);
        let va = 0x20_0000 - 2 * PAGE_SIZE;
        assert_eq!(
            m.map(
                va,
                0x4000_0000,
                4 * PAGE_SIZE,
                Attributes::KERNEL_DATA,
                Granularity::Pages
            ),
            Err(MapError::OutOfTables)
        );
        for i in 0..4 {
            assert!(m.translate(va + i * PAGE_SIZE).is_none(), "page {i} left mapped");
        }
        // Whatever is mapped later in that range maps cleanly.
        m.map(
            va,
            0x5000_0000,
            2 * PAGE_SIZE,
            Attributes::KERNEL_DATA,
            Granularity::Pages,
        )
        .unwrap();
        assert_eq!(m.translate(va).unwrap().0, 0x5000_0000);
    }

    #[test]
    fn page_runs_cross_tables_and_overlap_is_found_inside_a_table() {
        let (mut mem, root) = HostTables::new(16);
        let mut m = Mapper::new(root, &mut mem);
        // 600 pages from the 500th entry of a table: three last-level tables.
        let va = KVA + 500 * PAGE_SIZE;
        m.map(
            va,
            0x100_0000,
            600 * PAGE_SIZE,
            Attributes::KERNEL_DATA,
            Granularity::Pages,
        )
        .unwrap();
        for i in [0u64, 11, 12, 599] {
            assert_eq!(m.translate(va + i * PAGE_SIZE).unwrap().0, 0x100_0000 + i * PAGE_SIZE);
        }
        assert!(m.translate(va + 600 * PAGE_SIZE).is_none());
        assert!(m.translate(va - PAGE_SIZE).is_none());
        // An overlap found by looking inside an existing table.
        assert_eq!(
            m.map(
                va - 3 * PAGE_SIZE,
                0x2000,
                4 * PAGE_SIZE,
                Attributes::KERNEL_DATA,
                Granularity::Pages
            ),
            Err(MapError::AlreadyMapped { va })
        );
        assert!(m.translate(va - 3 * PAGE_SIZE).is_none());
        assert_eq!(m.unmap(va + 10 * PAGE_SIZE, 580 * PAGE_SIZE), 580);
        assert!(m.translate(va + 9 * PAGE_SIZE).is_some());
        assert!(m.translate(va + 10 * PAGE_SIZE).is_none());
        assert!(m.translate(va + 589 * PAGE_SIZE).is_none());
        assert!(m.translate(va + 590 * PAGE_SIZE).is_some());
        // Unmapping what is left, and more, clears only what was mapped.
        assert_eq!(m.unmap(va - 8 * PAGE_SIZE, 700 * PAGE_SIZE), 20);
        // A partial page at the end is left alone.
        m.map(va, 0x3000, 2 * PAGE_SIZE, Attributes::KERNEL_DATA, Granularity::Pages)
            .unwrap();
        assert_eq!(m.unmap(va, PAGE_SIZE + 1), 1);
        assert!(m.translate(va + PAGE_SIZE).is_some());
    }

    #[test]
    fn unmap_clears_only_the_range() {
        let (mut mem, root) = HostTables::new(16);
        let mut m = Mapper::new(root, &mut mem);
        m.map(
            KVA,
            0x10_0000,
            4 * PAGE_SIZE,
            Attributes::KERNEL_DATA,
            Granularity::Pages,
        )
        .unwrap();
        assert_eq!(m.unmap(KVA + PAGE_SIZE, 2 * PAGE_SIZE), 2);
        assert!(m.translate(KVA).is_some());
        assert!(m.translate(KVA + PAGE_SIZE).is_none());
        assert!(m.translate(KVA + 2 * PAGE_SIZE).is_none());
        assert!(m.translate(KVA + 3 * PAGE_SIZE).is_some());
    }

    #[test]
    fn descriptor_bits_enforce_w_xor_x_and_user_pxn() {
        let text = Attributes {
            writable: false,
            executable: true,
            ..Attributes::KERNEL_DATA
        };
        let bits = text.descriptor_bits();
        assert_eq!(bits & PXN, 0);
        assert_ne!(bits & UXN, 0);
        assert_ne!(bits & AP_READ_ONLY, 0);
        let data = Attributes::KERNEL_DATA.descriptor_bits();
        assert_ne!(data & PXN, 0);
        assert_ne!(data & UXN, 0);
        let user_code = Attributes {
            user: true,
            executable: true,
            writable: false,
            ..Attributes::KERNEL_DATA
        };
        let bits = user_code.descriptor_bits();
        assert_ne!(bits & PXN, 0, "user pages are never kernel-executable");
        assert_eq!(bits & UXN, 0);
        for a in [text, Attributes::KERNEL_DATA, Attributes::KERNEL_DEVICE, user_code] {
            assert_eq!(Attributes::from_descriptor(a.descriptor_bits() | 3), a);
        }
        // Matches the constants the boot stub uses for the image.
        assert_eq!(text.descriptor_bits() | 3, 0x0040_0000_0000_0787);
        assert_eq!(Attributes::KERNEL_RODATA.descriptor_bits() | 3, 0x0060_0000_0000_0787);
        assert_eq!(Attributes::KERNEL_DATA.descriptor_bits() | 3, 0x0060_0000_0000_0707);
    }
}
