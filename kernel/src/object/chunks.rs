//! A list kept in chunks of 8 KiB: it grows without copying what it holds,
//! and gives memory back as it shrinks.
//!
//! A `Vec` that grows by doubling copies all its elements each time (the
//! kernel copies about a byte an instruction, with interrupts masked), and
//! keeps its capacity when it shrinks. A [`ChunkList`] fills its first
//! chunk like a `Vec` (doubling, up to a chunk: a copy of at most 8 KiB),
//! then adds whole chunks; the chunk that empties at its end goes at once.
//! So no change copies more than a chunk of elements (plus the directory of
//! chunks, 24 bytes a chunk, when it doubles), and it holds at most its
//! length plus one chunk (the first chunk: at most four times its length,
//! as [`give_back`] leaves a list).
//!
//! Why 8 KiB and not a page: the frame allocator (a buddy system) searches
//! a block's free list for its buddy when one is freed, so many free
//! blocks of one size make every free of that size slow. Chunks freed one
//! by one as a list shrinks would lengthen the list of free pages, which a
//! task's teardown then searches for each of its page tables it frees
//! (measured: up to 80,000 instructions in one piece with 4 KiB chunks,
//! 46,000 with 8 KiB, 24,000 before chunks).

use super::slab::{give_back, FIRST_BLOCK};
use alloc::vec::Vec;

/// Bytes of a chunk (a heap block of its own, two pages).
const CHUNK_BYTES: usize = 8192;

/// A list of `T` in chunks of [`CHUNK_BYTES`], indexed like a slice. Every chunk
/// but the last is full; the last may be empty only while room for one
/// more element is reserved ([`ChunkList::reserve`]).
pub struct ChunkList<T> {
    chunks: Vec<Vec<T>>,
}

/// No memory for one more element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunksFull;

impl<T> ChunkList<T> {
    /// Elements a chunk holds.
    pub const PER_CHUNK: usize = {
        let size = core::mem::size_of::<T>();
        if size == 0 || size >= CHUNK_BYTES {
            1
        } else {
            CHUNK_BYTES / size
        }
    };

    /// Bytes to charge per element: twice its size (a list beyond its first
    /// chunk holds less than its length plus a chunk), and its share of the
    /// directory (at most four entries per chunk).
    pub const ENTRY_COST: u64 =
        (2 * core::mem::size_of::<T>() + (4 * core::mem::size_of::<Vec<T>>()).div_ceil(Self::PER_CHUNK)) as u64;

    pub const fn new() -> Self {
        ChunkList { chunks: Vec::new() }
    }

    pub fn len(&self) -> usize {
        match self.chunks.last() {
            Some(last) => (self.chunks.len() - 1) * Self::PER_CHUNK + last.len(),
            None => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // (Inline always: the tree of a task's mappings indexes a few times a
    // level, and the kernel is built for size.)
    #[inline(always)]
    pub fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / Self::PER_CHUNK)?.get(i % Self::PER_CHUNK)
    }

    #[inline(always)]
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.chunks.get_mut(i / Self::PER_CHUNK)?.get_mut(i % Self::PER_CHUNK)
    }

    pub fn last(&self) -> Option<&T> {
        self.chunks.iter().rev().find_map(|c| c.last())
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten()
    }

    /// Make room for one more element, so that the next [`ChunkList::push`]
    /// allocates nothing. The first chunk doubles (a copy of at most a
    /// chunk); past it a new chunk is added, empty.
    pub fn reserve(&mut self) -> Result<(), ChunksFull> {
        let per = Self::PER_CHUNK;
        let only = self.chunks.len() == 1;
        match self.chunks.last_mut() {
            Some(last) if last.len() < last.capacity() => Ok(()),
            Some(last) if only && last.len() < per => {
                let to = (last.capacity() * 2).clamp(FIRST_BLOCK, per);
                last.try_reserve_exact(to - last.len()).map_err(|_| ChunksFull)
            }
            _ => {
                self.chunks.try_reserve(1).map_err(|_| ChunksFull)?;
                let mut chunk = Vec::new();
                let size = if self.chunks.is_empty() {
                    FIRST_BLOCK.min(per)
                } else {
                    per
                };
                chunk.try_reserve_exact(size).map_err(|_| ChunksFull)?;
                self.chunks.push(chunk);
                Ok(())
            }
        }
    }

    /// Add `value` at the end: its index. Room must be reserved
    /// ([`ChunkList::reserve`]); without it, this reserves it and fails
    /// (giving `value` back) when it cannot.
    pub fn push(&mut self, value: T) -> Result<usize, T> {
        if self.reserve().is_err() {
            return Err(value);
        }
        let i = self.len();
        let last = self.chunks.last_mut().expect("reserved");
        // Within its capacity: no allocation, no copy.
        last.push(value);
        Ok(i)
    }

    /// Take the last element; an emptied chunk goes at once, and the first
    /// chunk gives back its spare capacity ([`give_back`]).
    pub fn pop(&mut self) -> Option<T> {
        self.trim();
        let value = self.chunks.last_mut()?.pop()?;
        self.trim();
        Some(value)
    }

    /// Remove element `i`; the last takes its place (its index becomes `i`).
    pub fn swap_remove(&mut self, i: usize) -> Option<T> {
        if i >= self.len() {
            return None;
        }
        let last = self.pop()?;
        match self.get_mut(i) {
            Some(slot) => Some(core::mem::replace(slot, last)),
            // It was the last.
            None => Some(last),
        }
    }

    /// Give back an empty last chunk (room reserved but not used) and the
    /// first chunk's spare capacity.
    pub fn trim(&mut self) {
        if self.chunks.len() > 1 && self.chunks.last().is_some_and(|c| c.is_empty()) {
            self.chunks.pop();
            give_back(&mut self.chunks, FIRST_BLOCK);
        }
        if let [first] = &mut self.chunks[..] {
            give_back(first, FIRST_BLOCK);
        }
    }

    /// Bytes it holds: its chunks' capacity and its directory.
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.capacity()).sum::<usize>() * core::mem::size_of::<T>()
            + self.chunks.capacity() * core::mem::size_of::<Vec<T>>()
    }
}

impl<T> Default for ChunkList<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> core::ops::Index<usize> for ChunkList<T> {
    type Output = T;

    #[inline(always)]
    fn index(&self, i: usize) -> &T {
        match self.get(i) {
            Some(value) => value,
            None => beyond(),
        }
    }
}

impl<T> core::ops::IndexMut<usize> for ChunkList<T> {
    #[inline(always)]
    fn index_mut(&mut self, i: usize) -> &mut T {
        match self.get_mut(i) {
            Some(value) => value,
            None => beyond(),
        }
    }
}

/// An index beyond the list (a compare and a branch where it is indexed,
/// not a call: the tree of a task's mappings indexes a few times a level).
#[cold]
#[inline(never)]
fn beyond() -> ! {
    panic!("index within the list")
}

#[cfg(test)]
mod tests {
    use super::*;

    type Record = [u64; 8];

    #[test]
    fn indexes_across_chunks() {
        let mut l = ChunkList::<u32>::new();
        let n = 3 * ChunkList::<u32>::PER_CHUNK + 5;
        for i in 0..n {
            assert_eq!(l.push(i as u32), Ok(i));
        }
        assert_eq!(l.len(), n);
        assert!((0..n).all(|i| l[i] == i as u32));
        assert_eq!(l.iter().count(), n);
        assert_eq!(l.last(), Some(&(n as u32 - 1)));
        assert_eq!(l.get(n), None);
        assert_eq!(l.swap_remove(1), Some(1));
        assert_eq!(l[1], n as u32 - 1);
        assert_eq!(l.swap_remove(l.len() - 1), Some(n as u32 - 2));
        assert_eq!(l.swap_remove(n), None);
        assert_eq!(l.len(), n - 2);
    }

    /// No change copies more than a chunk: every chunk but the first is
    /// allocated once, at its full size, and stays where it is.
    #[test]
    fn growing_moves_no_full_chunk() {
        let mut l = ChunkList::<Record>::new();
        let per = ChunkList::<Record>::PER_CHUNK;
        for i in 0..per {
            l.push([i as u64; 8]).unwrap();
        }
        let first = l.get(0).unwrap() as *const Record;
        for i in per..20 * per {
            l.push([i as u64; 8]).unwrap();
        }
        assert_eq!(
            l.get(0).unwrap() as *const Record,
            first,
            "the full first chunk was not moved"
        );
        assert!((0..20 * per).all(|i| l[i][0] == i as u64));
    }

    /// Memory comes back as it shrinks: an emptied chunk goes at once.
    #[test]
    fn shrinking_gives_memory_back() {
        let mut l = ChunkList::<Record>::new();
        let per = ChunkList::<Record>::PER_CHUNK;
        let small = {
            l.push([0; 8]).unwrap();
            l.bytes()
        };
        for i in 1..100 * per {
            l.push([i as u64; 8]).unwrap();
        }
        assert!(l.bytes() <= 100 * CHUNK_BYTES + 200 * 24 + 100);
        while l.len() > 2 * per + 1 {
            l.swap_remove(0);
            // Its length plus one chunk, plus the directory.
            assert!(l.bytes() <= (l.len() + per) * core::mem::size_of::<Record>() + 4 * 101 * 24);
        }
        while l.len() > 1 {
            l.pop();
        }
        assert_eq!(l.bytes(), small);
    }

    /// Room reserved and not used goes again with `trim`.
    #[test]
    fn an_unused_reservation_goes() {
        let mut l = ChunkList::<Record>::new();
        let per = ChunkList::<Record>::PER_CHUNK;
        for i in 0..per {
            l.push([i as u64; 8]).unwrap();
        }
        let before = l.bytes();
        l.reserve().unwrap();
        assert!(l.bytes() > before);
        assert_eq!(l.len(), per);
        l.trim();
        assert_eq!(l.bytes(), before);
        assert_eq!(l.pop(), Some([per as u64 - 1; 8]));
    }
}
