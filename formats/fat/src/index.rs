//! Directory indexes: what the volume knows of a directory without reading
//! its entries again — its sectors, its names (folded for case-blind
//! lookup), its short names in use, its free slots and its end. A lookup
//! is then a tree search instead of a scan of every entry, and adding an
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
    /// (folded name, slot of the short entry): the long name and the short
    /// name's display form each have a key; the lowest slot wins, as in a
    /// scan.
    names: BTreeSet<(String, u32)>,
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
        self.find_with(name, &mut (String::new(), 0))
    }

    /// [`Self::find`] with the caller's `probe` for the folded name (kept
    /// between lookups: no allocation for each).
    pub fn find_with(&self, name: &str, probe: &mut (String, u32)) -> Option<(u32, &Named)> {
        use core::ops::Bound;
        fold_into(name, &mut probe.0);
        probe.1 = 0;
        let (key, slot) = self.names.range((Bound::Included(&*probe), Bound::Unbounded)).next()?;
        if *key != probe.0 {
            return None;
        }
        Some((*slot, self.entries.get(slot)?))
    }

    /// Records an entry at `slot`, whose short name displays as `short_name`.
    pub fn add(&mut self, slot: u32, named: Named, short_name: &str) {
        self.names.insert((fold(&named.name), slot));
        self.names.insert((fold(short_name), slot));
        self.entries.insert(slot, named);
    }

    /// Forgets the entry at `slot` (its name keys), as removed.
    pub fn remove(&mut self, slot: u32, short_name: &str) {
        if let Some(n) = self.entries.remove(&slot) {
            self.names.remove(&(fold(&n.name), slot));
            self.names.remove(&(fold(short_name), slot));
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
