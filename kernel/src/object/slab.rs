//! Generational slabs: kernel objects are named by index + generation, so a
//! stale reference to a freed and reused entry is detected, never followed.

use alloc::collections::BinaryHeap;
use alloc::vec::Vec;
use core::cmp::Reverse;

/// A slab entry's name. Aligned as one 64-bit word, so ids are compared,
/// loaded and stored whole.
#[derive(Clone, Copy, Debug, Eq, PartialOrd, Ord)]
#[repr(C, align(8))]
pub struct Id {
    pub index: u32,
    pub generation: u32,
}

impl Id {
    /// Both fields as one word (one compare instead of two).
    #[inline(always)]
    fn word(self) -> u64 {
        (self.generation as u64) << 32 | self.index as u64
    }
}

impl PartialEq for Id {
    #[inline(always)]
    fn eq(&self, other: &Id) -> bool {
        self.word() == other.word()
    }
}

impl core::hash::Hash for Id {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.word().hash(state);
    }
}

/// A retired entry's generation (no id has it; never reused).
const RETIRED: u32 = u32::MAX;

struct Entry<T> {
    generation: u32,
    value: Option<T>,
}

/// Storage for one kind of object.
///
/// Its table gives memory back: a new object takes the free entry with the
/// lowest index, so the entries at the end are the ones left free after a
/// burst of objects goes; free entries at the end are dropped, and once a
/// quarter or less of its capacity is in use the table moves to a smaller
/// block ([`give_back`]). What a burst made it grow to comes back when the
/// burst goes, unless an object made during the burst outlives it.
pub struct Slab<T> {
    entries: Vec<Entry<T>>,
    /// Free entries, lowest first. Indices at or beyond the table's end
    /// (left by a trim) are stale: skipped, and dropped when reached. It
    /// always has room for every index it can hold (reserved when the
    /// table grows), so freeing never allocates.
    free: BinaryHeap<Reverse<u32>>,
    live: usize,
    /// The generation new entries start at: above every generation an
    /// entry that went from the end had, so no old id names a new object.
    fresh: u32,
}

/// Bytes one entry of a `Slab<T>` takes.
pub const fn entry_bytes<T>() -> usize {
    core::mem::size_of::<Entry<T>>()
}

/// Bytes to charge for one element of a growing list (a slab's table, a
/// capability space, a task's list of threads) of `T`s: twice its size,
/// for the spare capacity the list keeps as it grows by doubling.
pub const fn list_cost<T>() -> u64 {
    2 * core::mem::size_of::<T>() as u64
}

/// Bytes to charge for one object in a `Slab<T>` ([`list_cost`] of its
/// entry).
pub const fn slab_cost<T>() -> u64 {
    2 * entry_bytes::<T>() as u64
}

/// The kernel heap's block for a `T`: what [`alloc::boxed::Box`] takes
/// from the frames ([`crate::mm::small::block_bytes`]).
pub const fn box_cost<T>() -> u64 {
    crate::mm::small::block_bytes(core::mem::size_of::<T>(), core::mem::align_of::<T>()) as u64
}

/// No memory to grow the slab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlabFull;

/// Give back a growing list's spare memory: once a quarter or less of its
/// capacity is in use, move it to the block it would have had, had it
/// grown to its length from nothing (the next power of two, at least
/// `min`, the first block it takes). So the memory a burst of objects made
/// it grow to all comes back when they go. (It holds at most four times
/// what it holds now, and moves its elements again only after as many
/// changes as it has.) Without memory for the smaller block it stays as
/// it is: nothing fails.
pub fn give_back<T>(v: &mut Vec<T>, min: usize) {
    let (len, capacity) = (v.len(), v.capacity());
    let fit = len.next_power_of_two().max(min);
    if len <= capacity / 4 && fit < capacity {
        let mut smaller = Vec::new();
        if smaller.try_reserve_exact(fit).is_ok() {
            smaller.append(v); // fits: no allocation
            *v = smaller;
        }
    }
}

/// [`give_back`] for a list that may be long: it moves to a smaller block
/// only once at most `max_len` elements are left, so that the copy is
/// bounded (the kernel copies about a byte an instruction, with interrupts
/// masked). Until then a list that was long keeps its capacity.
pub fn give_back_bounded<T>(v: &mut Vec<T>, min: usize, max_len: usize) {
    if v.len() <= max_len {
        give_back(v, min);
    }
}

/// The first block of a list grown one element at a time (`Vec`'s least
/// non-zero capacity for elements of up to 1 KiB).
pub const FIRST_BLOCK: usize = 4;

impl<T> Slab<T> {
    pub const fn new() -> Self {
        Slab {
            entries: Vec::new(),
            free: BinaryHeap::new(),
            live: 0,
            fresh: 0,
        }
    }

    /// Store `value`; fails (without panicking) when memory runs out.
    pub fn insert(&mut self, value: T) -> Result<Id, SlabFull> {
        let index = loop {
            match self.free.peek() {
                Some(&Reverse(i)) if (i as usize) < self.entries.len() => {
                    self.free.pop();
                    break i;
                }
                // The lowest is stale, so all are.
                Some(_) => self.free.clear(),
                None => {
                    let i = u32::try_from(self.entries.len()).map_err(|_| SlabFull)?;
                    self.entries.try_reserve(1).map_err(|_| SlabFull)?;
                    let room = self.entries.capacity().saturating_sub(self.free.len());
                    self.free.try_reserve(room).map_err(|_| SlabFull)?;
                    self.entries.push(Entry {
                        generation: self.fresh,
                        value: None,
                    });
                    break i;
                }
            }
        };
        let entry = &mut self.entries[index as usize];
        entry.value = Some(value);
        self.live += 1;
        Ok(Id {
            index,
            generation: entry.generation,
        })
    }

    #[inline]
    pub fn get(&self, id: Id) -> Option<&T> {
        self.get_inlined(id)
    }

    #[inline]
    pub fn get_mut(&mut self, id: Id) -> Option<&mut T> {
        let e = self.entries.get_mut(id.index as usize)?;
        if e.generation == id.generation {
            e.value.as_mut()
        } else {
            None
        }
    }

    /// [`Slab::get`] inlined: for the lookups on every exception entry and
    /// switch, where a call per lookup shows (`Slab::get` is out of line
    /// everywhere else: the kernel is built for size).
    #[inline(always)]
    pub fn get_inlined(&self, id: Id) -> Option<&T> {
        let e = self.entries.get(id.index as usize)?;
        if e.generation == id.generation {
            e.value.as_ref()
        } else {
            None
        }
    }

    /// [`Slab::get_mut`] inlined, for the same paths as [`Slab::get_inlined`].
    #[inline(always)]
    pub fn get_mut_inlined(&mut self, id: Id) -> Option<&mut T> {
        let e = self.entries.get_mut(id.index as usize)?;
        if e.generation == id.generation {
            e.value.as_mut()
        } else {
            None
        }
    }

    /// Remove and return the value; the id (and every copy of it) goes stale.
    pub fn remove(&mut self, id: Id) -> Option<T> {
        let e = self.entries.get_mut(id.index as usize)?;
        if e.generation != id.generation {
            return None;
        }
        let value = e.value.take()?;
        // An entry whose generation would wrap is retired, never reused: an
        // old id must not name a new object.
        if e.generation < RETIRED - 1 {
            e.generation += 1;
            // Room was reserved when the table grew.
            self.free.push(Reverse(id.index));
        } else {
            e.generation = RETIRED;
        }
        self.live -= 1;
        if id.index as usize + 1 == self.entries.len() {
            self.trim();
        }
        Some(value)
    }

    /// Drop the free entries at the end, and move the table to a smaller
    /// block when a quarter or less of it is used ([`give_back`]). (Each
    /// entry dropped was added once, so this costs no more than the inserts
    /// did.)
    fn trim(&mut self) {
        while let Some(last) = self.entries.last() {
            if last.value.is_some() || last.generation == RETIRED {
                break;
            }
            // Its index stays in the free list, stale.
            self.fresh = self.fresh.max(last.generation);
            self.entries.pop();
        }
        let before = self.entries.capacity();
        give_back(&mut self.entries, FIRST_BLOCK);
        if self.entries.capacity() < before {
            // The free list too: without its stale indices, with room for
            // every index the table can hold.
            let len = self.entries.len() as u32;
            self.free.retain(|&Reverse(i)| i < len);
            let mut free = core::mem::take(&mut self.free).into_vec();
            give_back(&mut free, self.entries.capacity());
            self.free = BinaryHeap::from(free);
        }
    }

    /// Bytes the table holds (its capacity).
    pub fn table_bytes(&self) -> usize {
        self.entries.capacity() * core::mem::size_of::<Entry<T>>()
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Every live entry.
    pub fn iter(&self) -> impl Iterator<Item = (Id, &T)> {
        self.entries.iter().enumerate().filter_map(|(i, e)| {
            e.value.as_ref().map(|v| {
                (
                    Id {
                        index: i as u32,
                        generation: e.generation,
                    },
                    v,
                )
            })
        })
    }

    /// Ids of every live entry (to iterate while mutating).
    pub fn ids(&self) -> Vec<Id> {
        self.iter().map(|(id, _)| id).collect()
    }
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_ids_are_rejected_after_reuse() {
        let mut s = Slab::new();
        let a = s.insert("a").unwrap();
        assert_eq!(s.remove(a), Some("a"));
        let b = s.insert("b").unwrap();
        assert_eq!(a.index, b.index);
        assert_ne!(a.generation, b.generation);
        assert_eq!(s.get(a), None);
        assert_eq!(s.remove(a), None);
        assert_eq!(s.get(b), Some(&"b"));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn an_entry_is_retired_before_its_generation_wraps() {
        let mut s = Slab::new();
        let a = s.insert(1).unwrap();
        s.entries[a.index as usize].generation = u32::MAX - 1;
        let old = Id {
            index: a.index,
            generation: u32::MAX - 1,
        };
        assert_eq!(s.remove(old), Some(1));
        let b = s.insert(2).unwrap();
        assert_ne!(b.index, a.index, "a retired entry is not reused");
        assert_eq!(s.get(old), None);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn inlined_lookup_agrees() {
        let mut s = Slab::new();
        let a = s.insert(1).unwrap();
        s.remove(a);
        let b = s.insert(2).unwrap();
        assert_eq!(s.get_inlined(a), None);
        assert_eq!(s.get_inlined(b), Some(&2));
        assert_eq!(
            s.get_inlined(Id {
                index: 9,
                generation: 0
            }),
            None
        );
    }

    #[test]
    fn iterates_live_entries() {
        let mut s = Slab::new();
        let ids: Vec<_> = (0..5).map(|i| s.insert(i).unwrap()).collect();
        s.remove(ids[2]);
        assert_eq!(s.iter().map(|(_, v)| *v).collect::<Vec<_>>(), vec![0, 1, 3, 4]);
    }

    #[test]
    fn the_table_gives_its_memory_back() {
        let mut s = Slab::new();
        let keep = s.insert(0usize).unwrap();
        let before = s.table_bytes();
        let ids: Vec<_> = (1..5000).map(|i| s.insert(i).unwrap()).collect();
        assert!(s.table_bytes() >= 5000 * entry_bytes::<usize>());
        // Freed in the order made: the end goes only with the last.
        for id in &ids {
            assert!(s.remove(*id).is_some());
        }
        assert_eq!(s.len(), 1);
        assert_eq!(s.table_bytes(), before);
        assert_eq!(s.get(keep), Some(&0));
        // No old id names a new object, at the indices that went either.
        let again: Vec<_> = (0..4999).map(|i| s.insert(i).unwrap()).collect();
        for (old, new) in ids.iter().zip(&again) {
            assert_eq!(old.index, new.index);
            assert_eq!(s.get(*old), None);
        }
        // Freed in reverse: each removal at the end trims.
        for id in again.iter().rev() {
            s.remove(*id);
        }
        assert_eq!(s.table_bytes(), before);
    }

    #[test]
    fn free_entries_in_the_middle_are_reused_after_a_trim() {
        let mut s = Slab::new();
        let ids: Vec<_> = (0..100).map(|i| s.insert(i).unwrap()).collect();
        // Free 10..100 but 60: the end goes down to 61, the rest stays on
        // the free list.
        for id in ids[10..].iter().filter(|id| id.index != 60) {
            s.remove(*id);
        }
        let fresh: Vec<_> = (0..50).map(|i| s.insert(i).unwrap()).collect();
        assert!(fresh.iter().all(|id| (10..60).contains(&id.index)));
        assert_eq!(s.insert(7).unwrap().index, 61);
        assert_eq!(s.len(), 62);
    }
}
