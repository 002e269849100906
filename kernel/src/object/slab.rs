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

/// Storage for one kind of object: a directory of chunks of
/// [`Slab::PER_CHUNK`] entries. An id's index is its chunk's directory slot
/// times `PER_CHUNK` plus its place in the chunk, so entries never move.
///
/// A new object takes the lowest free entry of the lowest chunk with room;
/// without one, a new chunk in the lowest free directory slot. A chunk that
/// empties is freed at once, wherever it is. The directory (and its
/// per-slot records) stays at the most chunks it held at once.
pub struct Slab<T> {
    /// Each slot's chunk: exactly `PER_CHUNK` entries, or none (an empty
    /// list, which holds no memory).
    dir: Vec<Vec<Entry<T>>>,
    slots: Slots,
    live: usize,
}

/// What a slab knows of its directory's slots, apart from the chunks (one
/// copy of this code for every kind of object).
struct Slots {
    /// Per directory slot.
    meta: Vec<SlotMeta>,
    /// Chunks with a free entry, lowest first (each at most once: see
    /// [`SlotMeta::queued`]); slots that lost their chunk are skipped.
    room: BinaryHeap<Reverse<u32>>,
    /// Free directory slots (without a chunk), lowest first. Both heaps
    /// have room reserved for every slot the directory can hold, so
    /// freeing never allocates.
    free: BinaryHeap<Reverse<u32>>,
}

#[derive(Clone, Copy, Default)]
struct SlotMeta {
    /// Whether it has a chunk.
    present: bool,
    /// It may be in [`Slots::room`].
    queued: bool,
    /// Live entries of its chunk.
    used: u16,
    /// Retired entries of its chunk (never reused).
    retired: u16,
    /// The generation entries of a new chunk here start at: above every
    /// generation an entry of this slot ever had. [`RETIRED`]: the slot is
    /// never reused (an entry of it was retired).
    floor: u32,
}

impl Slots {
    const fn new() -> Self {
        Slots {
            meta: Vec::new(),
            room: BinaryHeap::new(),
            free: BinaryHeap::new(),
        }
    }

    /// The lowest slot whose chunk has a free entry, if any.
    #[inline(never)]
    fn with_room(&mut self, per: usize) -> Option<usize> {
        while let Some(&Reverse(c)) = self.room.peek() {
            let m = &mut self.meta[c as usize];
            if m.present && ((m.used + m.retired) as usize) < per {
                return Some(c as usize);
            }
            self.room.pop();
            m.queued = false;
        }
        None
    }

    /// A slot for a new chunk: the lowest free one, or a new one at the
    /// end when the directory (now `dir_len` slots) has room reserved for
    /// it (`capacity`). `None`: the directory must grow first.
    #[inline(never)]
    fn take_free(&mut self, dir_len: usize, capacity: usize) -> Result<Option<usize>, SlabFull> {
        if let Some(Reverse(s)) = self.free.pop() {
            return Ok(Some(s as usize));
        }
        if dir_len == capacity {
            return Ok(None);
        }
        self.meta
            .try_reserve_exact(capacity - self.meta.len())
            .map_err(|_| SlabFull)?;
        self.room
            .try_reserve(capacity - self.room.len())
            .map_err(|_| SlabFull)?;
        self.free
            .try_reserve(capacity - self.free.len())
            .map_err(|_| SlabFull)?;
        self.meta.push(SlotMeta::default());
        Ok(Some(dir_len))
    }

    /// A chunk was made in `slot` (or not: `made` false): queue it.
    #[inline(never)]
    fn made(&mut self, slot: usize, made: bool) {
        if !made {
            // Room was reserved when the directory grew.
            self.free.push(Reverse(slot as u32));
            return;
        }
        let m = &mut self.meta[slot];
        m.present = true;
        m.used = 0;
        m.retired = 0;
        if !m.queued {
            m.queued = true;
            self.room.push(Reverse(slot as u32));
        }
    }

    /// An entry of `slot`'s chunk went (`retired`: for good): whether the
    /// chunk is now to be freed ([`Slots::freed`]).
    #[inline(never)]
    fn emptied(&mut self, slot: usize, retired: bool) -> bool {
        let m = &mut self.meta[slot];
        m.used -= 1;
        m.retired += retired as u16;
        if m.used == 0 {
            return true;
        }
        if !m.queued {
            m.queued = true;
            self.room.push(Reverse(slot as u32));
        }
        false
    }

    /// `slot`'s chunk was freed, the highest generation of its entries
    /// `top`: a chunk made there later starts above it. A slot with a
    /// retired entry is never reused.
    #[inline(never)]
    fn freed(&mut self, slot: usize, top: u32) {
        let m = &mut self.meta[slot];
        m.present = false;
        m.floor = if m.retired > 0 { RETIRED } else { top };
        if m.floor != RETIRED {
            // Room was reserved when the directory grew.
            self.free.push(Reverse(slot as u32));
        }
    }

    fn chunks(&self) -> usize {
        self.meta.iter().filter(|m| m.present).count()
    }
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

/// The kernel heap's block for a `T` (the next power of two, at least a
/// word: what [`alloc::boxed::Box`] takes from the frames).
pub const fn box_cost<T>() -> u64 {
    let size = core::mem::size_of::<T>().next_power_of_two();
    (if size < 8 { 8 } else { size }) as u64
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

/// Bytes a slab chunk takes at most (its entries are fewer when they are
/// large: see [`Slab::PER_CHUNK`]).
pub const CHUNK_BYTES: usize = 512;

impl<T> Slab<T> {
    /// Entries a chunk holds: a power of two (an index is split with a
    /// shift and a mask), as many as fit in [`CHUNK_BYTES`], at least one.
    pub const PER_CHUNK: usize = {
        let mut n = 1;
        while n < 64 && 2 * n * entry_bytes::<T>() <= CHUNK_BYTES {
            n *= 2;
        }
        n
    };
    const SHIFT: u32 = Self::PER_CHUNK.trailing_zeros();

    pub const fn new() -> Self {
        Slab {
            dir: Vec::new(),
            slots: Slots::new(),
            live: 0,
        }
    }

    /// The directory slot and the place in its chunk of an index.
    #[inline(always)]
    fn split(index: u32) -> (usize, usize) {
        ((index >> Self::SHIFT) as usize, index as usize & (Self::PER_CHUNK - 1))
    }

    /// Store `value`; fails (without panicking) when memory runs out.
    #[inline(never)]
    pub fn insert(&mut self, value: T) -> Result<Id, SlabFull> {
        let slot = match self.slots.with_room(Self::PER_CHUNK) {
            Some(slot) => slot,
            None => self.new_chunk()?,
        };
        let chunk = &mut self.dir[slot];
        let i = chunk
            .iter()
            .position(|e| e.value.is_none() && e.generation != RETIRED)
            .unwrap_or_else(|| unreachable!());
        let entry = &mut chunk[i];
        entry.value = Some(value);
        self.slots.meta[slot].used += 1;
        self.live += 1;
        Ok(Id {
            index: ((slot << Self::SHIFT) + i) as u32,
            generation: entry.generation,
        })
    }

    /// A new, empty chunk in the lowest free directory slot, queued as
    /// having room: its slot.
    fn new_chunk(&mut self) -> Result<usize, SlabFull> {
        let slot = match self.slots.take_free(self.dir.len(), self.dir.capacity())? {
            Some(slot) => slot,
            None => {
                // Its last index must fit an id.
                u32::try_from(((self.dir.len() + 1) << Self::SHIFT) - 1).map_err(|_| SlabFull)?;
                self.dir.try_reserve(1).map_err(|_| SlabFull)?;
                self.slots
                    .take_free(self.dir.len(), self.dir.capacity())?
                    .ok_or(SlabFull)?
            }
        };
        if slot == self.dir.len() {
            self.dir.push(Vec::new());
        }
        let floor = self.slots.meta[slot].floor;
        let mut chunk = Vec::new();
        let made = chunk.try_reserve_exact(Self::PER_CHUNK).is_ok();
        self.slots.made(slot, made);
        if !made {
            return Err(SlabFull);
        }
        chunk.extend((0..Self::PER_CHUNK).map(|_| Entry {
            generation: floor,
            value: None,
        }));
        self.dir[slot] = chunk;
        Ok(slot)
    }

    #[inline]
    pub fn get(&self, id: Id) -> Option<&T> {
        self.get_inlined(id)
    }

    #[inline]
    pub fn get_mut(&mut self, id: Id) -> Option<&mut T> {
        self.get_mut_inlined(id)
    }

    /// [`Slab::get`] inlined: for the lookups on every exception entry and
    /// switch, where a call per lookup shows (`Slab::get` is out of line
    /// everywhere else: the kernel is built for size).
    #[inline(always)]
    pub fn get_inlined(&self, id: Id) -> Option<&T> {
        let (c, i) = Self::split(id.index);
        let e = self.dir.get(c)?.get(i)?;
        if e.generation == id.generation {
            e.value.as_ref()
        } else {
            None
        }
    }

    /// [`Slab::get_mut`] inlined, for the same paths as [`Slab::get_inlined`].
    #[inline(always)]
    pub fn get_mut_inlined(&mut self, id: Id) -> Option<&mut T> {
        let (c, i) = Self::split(id.index);
        let e = self.dir.get_mut(c)?.get_mut(i)?;
        if e.generation == id.generation {
            e.value.as_mut()
        } else {
            None
        }
    }

    /// Remove and return the value; the id (and every copy of it) goes
    /// stale. A chunk left with no live entry is freed at once.
    #[inline(never)]
    pub fn remove(&mut self, id: Id) -> Option<T> {
        let (c, i) = Self::split(id.index);
        let chunk = self.dir.get_mut(c)?;
        let e = chunk.get_mut(i)?;
        if e.generation != id.generation {
            return None;
        }
        let value = e.value.take()?;
        // An entry whose generation would wrap is retired, never reused: an
        // old id must not name a new object.
        let retired = e.generation >= RETIRED - 1;
        e.generation = if retired { RETIRED } else { e.generation + 1 };
        self.live -= 1;
        if self.slots.emptied(c, retired) {
            let top = chunk.iter().map(|e| e.generation).max().unwrap_or(0);
            *chunk = Vec::new();
            self.slots.freed(c, top);
        }
        Some(value)
    }

    /// Bytes its chunks hold.
    pub fn table_bytes(&self) -> usize {
        self.chunks() * Self::PER_CHUNK * entry_bytes::<T>()
    }

    /// Chunks it holds.
    pub fn chunks(&self) -> usize {
        self.slots.chunks()
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Every live entry.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter {
            dir: &self.dir,
            index: 0,
        }
    }

    /// Ids of every live entry (to iterate while mutating).
    pub fn ids(&self) -> Vec<Id> {
        self.iter().map(|(id, _)| id).collect()
    }
}

/// A slab's live entries ([`Slab::iter`]).
pub struct Iter<'a, T> {
    dir: &'a [Vec<Entry<T>>],
    /// The next index to look at.
    index: usize,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = (Id, &'a T);

    // (Out of line: one copy per kind of object, not one per loop.)
    #[inline(never)]
    fn next(&mut self) -> Option<(Id, &'a T)> {
        let per = Slab::<T>::PER_CHUNK;
        while let Some(chunk) = self.dir.get(self.index / per) {
            let i = self.index;
            let Some(e) = chunk.get(i % per) else {
                // No chunk.
                self.index = (i / per + 1) * per;
                continue;
            };
            self.index += 1;
            if let Some(v) = &e.value {
                let id = Id {
                    index: i as u32,
                    generation: e.generation,
                };
                return Some((id, v));
            }
        }
        None
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
        s.dir[0][a.index as usize].generation = u32::MAX - 1;
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
        let per = Slab::<usize>::PER_CHUNK;
        let keep = s.insert(0usize).unwrap();
        let before = s.table_bytes();
        let ids: Vec<_> = (1..5000).map(|i| s.insert(i).unwrap()).collect();
        assert!(s.table_bytes() >= 5000 * entry_bytes::<usize>());
        // Freed in the order made.
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
        // Freed in reverse.
        for id in again.iter().rev() {
            s.remove(*id);
        }
        assert_eq!(s.table_bytes(), before);
        assert_eq!(s.chunks(), 1);
        assert!(per > 1);
    }

    /// The last entry kept, the rest freed: only its chunk stays (before
    /// chunks, the table stayed at its largest size).
    #[test]
    fn a_survivor_at_the_end_keeps_only_its_chunk() {
        let mut s = Slab::new();
        let ids: Vec<_> = (0..10_000u64).map(|i| s.insert(i).unwrap()).collect();
        for id in &ids[..ids.len() - 1] {
            s.remove(*id);
        }
        assert_eq!(s.chunks(), 1);
        assert_eq!(s.table_bytes(), Slab::<u64>::PER_CHUNK * entry_bytes::<u64>());
        assert_eq!(s.get(*ids.last().unwrap()), Some(&9_999));
    }

    /// A chunk that empties in the middle goes at once; its directory slot
    /// is the next new chunk's.
    #[test]
    fn a_chunk_that_empties_in_the_middle_is_freed() {
        let mut s = Slab::new();
        let per = Slab::<u64>::PER_CHUNK;
        let ids: Vec<_> = (0..3 * per as u64).map(|i| s.insert(i).unwrap()).collect();
        assert_eq!(s.chunks(), 3);
        for id in &ids[per..2 * per] {
            s.remove(*id);
        }
        assert_eq!(s.chunks(), 2);
        let new = s.insert(7).unwrap();
        assert_eq!(new.index as usize, per, "the freed slot is reused first");
        assert_eq!(s.chunks(), 3);
        assert!(ids[per..2 * per].iter().all(|id| s.get(*id).is_none()));
    }

    /// A chunk made in a slot whose chunk went starts its generations above
    /// every generation that slot's entries had: no old id names a new
    /// object, however the slot is reused.
    #[test]
    fn generations_never_repeat_across_chunk_reuse() {
        let mut s = Slab::new();
        let per = Slab::<u64>::PER_CHUNK;
        let mut old = Vec::new();
        for round in 0..50u64 {
            // One entry churned often, then the whole chunk freed.
            let ids: Vec<_> = (0..per as u64).map(|i| s.insert(round * 100 + i).unwrap()).collect();
            let mut busy = ids[round as usize % per];
            for _ in 0..round {
                s.remove(busy);
                busy = s.insert(0).unwrap();
                old.push(busy);
            }
            for id in ids.iter().chain([&busy]) {
                s.remove(*id);
            }
            old.extend(ids);
            assert_eq!(s.chunks(), 0);
        }
        let fresh: Vec<_> = (0..per as u64).map(|i| s.insert(i).unwrap()).collect();
        for id in &old {
            assert_eq!(s.get(*id), None, "{id:?} names a new object");
            assert!(!fresh.contains(id));
        }
    }

    /// A slot with a retired entry is never reused: its chunk goes, the
    /// next chunk takes another slot.
    #[test]
    fn a_slot_with_a_retired_entry_is_not_reused() {
        let mut s = Slab::new();
        let a = s.insert(1u64).unwrap();
        s.dir[0][0].generation = u32::MAX - 1;
        let old = Id {
            index: a.index,
            generation: u32::MAX - 1,
        };
        assert_eq!(s.remove(old), Some(1));
        assert_eq!(s.chunks(), 0);
        let b = s.insert(2).unwrap();
        assert_eq!(b.index as usize, Slab::<u64>::PER_CHUNK);
        assert_eq!(s.get(old), None);
    }
}
