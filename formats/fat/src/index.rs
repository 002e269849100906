//! Directory indexes: what the volume knows of a directory without reading
//! its entries again — its sectors, its names (folded for case-blind
//! lookup), its short names in use, its free slots and its end. A lookup
//! is then a hash lookup instead of a scan of every entry, and adding an
//! entry needs no scan for free slots and short-name clashes.
//!
//! An index is built from one pass over the directory with the same
//! decoding as a scan ([`crate::volume`]'s `walk`), and kept in step by
//! every change the volume makes to the directory (entries added and
//! removed, the directory grown). It is a cache: dropped with the sector
//! cache, when its directory's clusters are freed, and beyond a budget of
//! entries ([`MAX_ENTRIES`], all directories together).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;
use core::hash::{BuildHasherDefault, Hasher};
use hashbrown::HashMap;

/// Hashes a folded name for [`DirIndex`]'s name table: a multiply per
/// byte. Names are chosen by clients and disk images, so they can collide
/// on purpose; that costs time only, and a directory is indexed only up
/// to [`MAX_ENTRIES`] entries.
#[derive(Default)]
struct NameHasher(u64);

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
}

/// The slots whose entries a folded name finds: the lowest (what a lookup
/// gets, as a scan finds it first) and any others (a long name equal to
/// another entry's short name; rare).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Slots {
    lowest: u32,
    more: Vec<u32>,
}

/// Entries all indexes together may hold (each costs a name and a few
/// tree nodes, around 150 bytes): a bigger directory is not indexed.
pub const MAX_ENTRIES: usize = 4096;

/// A name as lookups compare it: FAT names compare without case
/// (`dir::same_name`).
pub fn fold(name: &str) -> String {
    let mut s = String::new();
    fold_into(name, &mut s);
    s
}

/// [`fold`] into `out` (cleared first; a lookup reuses its allocation).
pub fn fold_into(name: &str, out: &mut String) {
    out.clear();
    if name.is_ascii() {
        out.push_str(name);
        out.make_ascii_uppercase();
    } else {
        out.extend(name.chars().flat_map(char::to_uppercase));
    }
}

/// An entry a scan reports: its name, its long-name entry count, its
/// 11-byte short name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    pub lfn: u32,
    pub short: [u8; 11],
}

#[derive(Default, Debug, PartialEq, Eq)]
pub struct DirIndex {
    /// The directory's sectors, in order.
    pub secs: Vec<u64>,
    /// Folded name -> slots of the short entries it names: the long name
    /// and the short name's display form each have a key; the lowest slot
    /// wins, as in a scan.
    names: HashMap<String, Slots, BuildHasherDefault<NameHasher>>,
    /// Slot of each short entry a scan reports -> what it reports.
    entries: BTreeMap<u32, Named>,
    /// Every short name in use, with how many entries hold it (with `.`,
    /// `..`, labels: as a scan for clashes sees them).
    pub shorts: BTreeMap<[u8; 11], u32>,
    /// Deleted slots before the end.
    pub free: BTreeSet<u32>,
    /// The first slot of the end (a 0 first byte), or the slot count.
    pub end: u32,
}

impl DirIndex {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The short entry slot a name is found at, and what a scan reports
    /// for it.
    pub fn find(&self, name: &str) -> Option<(u32, &Named)> {
        self.find_with(name, &mut String::new())
    }

    /// [`Self::find`] with the caller's `probe` for the folded name (kept
    /// between lookups: no allocation for each).
    pub fn find_with(&self, name: &str, probe: &mut String) -> Option<(u32, &Named)> {
        fold_into(name, probe);
        let slot = self.names.get(probe.as_str())?.lowest;
        Some((slot, self.entries.get(&slot)?))
    }

    /// Records an entry at `slot`, whose short name displays as `short_name`.
    pub fn add(&mut self, slot: u32, named: Named, short_name: &str) {
        self.add_name(fold(&named.name), slot);
        self.add_name(fold(short_name), slot);
        self.entries.insert(slot, named);
    }

    fn add_name(&mut self, key: String, slot: u32) {
        match self.names.get_mut(&key) {
            None => {
                self.names.insert(
                    key,
                    Slots {
                        lowest: slot,
                        more: Vec::new(),
                    },
                );
            }
            Some(s) if s.lowest == slot || s.more.contains(&slot) => {}
            Some(s) if slot < s.lowest => {
                let old = core::mem::replace(&mut s.lowest, slot);
                s.more.push(old);
            }
            Some(s) => s.more.push(slot),
        }
    }

    fn remove_name(&mut self, key: &str, slot: u32) {
        let Some(s) = self.names.get_mut(key) else {
            return;
        };
        if s.lowest == slot {
            match s.more.iter().enumerate().min_by_key(|&(_, &v)| v) {
                Some((i, _)) => s.lowest = s.more.swap_remove(i),
                None => {
                    self.names.remove(key);
                }
            }
        } else {
            s.more.retain(|&v| v != slot);
        }
    }

    /// Forgets the entry at `slot` (its name keys), as removed.
    pub fn remove(&mut self, slot: u32, short_name: &str) {
        if let Some(n) = self.entries.remove(&slot) {
            self.remove_name(&fold(&n.name), slot);
            self.remove_name(&fold(short_name), slot);
        }
    }

    pub fn add_short(&mut self, short: [u8; 11]) {
        *self.shorts.entry(short).or_insert(0) += 1;
    }

    pub fn remove_short(&mut self, short: &[u8; 11]) {
        if let Some(n) = self.shorts.get_mut(short) {
            *n -= 1;
            if *n == 0 {
                self.shorts.remove(short);
            }
        }
    }

    /// The first run of `need` free slots before the end.
    pub fn free_run(&self, need: u32) -> Option<u32> {
        let mut run: Option<(u32, u32)> = None;
        for &s in &self.free {
            run = match run {
                Some((start, len)) if start + len == s => Some((start, len + 1)),
                _ => Some((s, 1)),
            };
            if let Some((start, len)) = run {
                if len >= need {
                    return Some(start);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> Named {
        Named {
            name: name.into(),
            lfn: 0,
            short: [b' '; 11],
        }
    }

    #[test]
    fn finds_without_case_lowest_slot_first_and_forgets() {
        let mut d = DirIndex::default();
        d.add(7, named("Notes.txt"), "NOTES~1.TXT");
        d.add(3, named("notes.TXT"), "NOTES.TXT");
        assert_eq!(d.find("NOTES.txt").map(|(s, _)| s), Some(3));
        assert_eq!(
            d.find("notes~1.txt").map(|(s, n)| (s, n.name.as_str())),
            Some((7, "Notes.txt"))
        );
        d.remove(3, "NOTES.TXT");
        assert_eq!(d.find("notes.txt").map(|(s, _)| s), Some(7));
        assert!(d.find("other").is_none());
        assert_eq!(d.len(), 1);
        // Three entries under one folded name, added out of order: the
        // lowest slot answers until it goes; the last removal forgets it.
        d.add(9, named("x"), "A~1");
        d.add(5, named("y"), "A");
        d.add(2, named("a"), "A~2");
        assert_eq!(d.find("a").map(|(s, _)| s), Some(2));
        d.remove(2, "A~2");
        assert_eq!(d.find("a").map(|(s, _)| s), Some(5));
        d.remove(5, "A");
        assert!(d.find("a").is_none());
        assert_eq!(d.find("a~1").map(|(s, _)| s), Some(9));
        d.remove(9, "A~1");
        d.remove(7, "NOTES~1.TXT");
        assert!(d.names.is_empty(), "every key forgotten: {:?}", d.names);
    }

    #[test]
    fn free_runs() {
        let mut d = DirIndex::default();
        d.free.extend([2, 4, 5, 9, 10, 11]);
        assert_eq!(d.free_run(1), Some(2));
        assert_eq!(d.free_run(2), Some(4));
        assert_eq!(d.free_run(3), Some(9));
        assert_eq!(d.free_run(4), None);
    }
}
