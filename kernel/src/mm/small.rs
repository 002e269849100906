//! The kernel heap's blocks smaller than a page: 16 to [`LARGEST`] bytes,
//! each a power of two aligned to its size, in a buddy system inside pages
//! taken from [`super::buddy::Pages`].
//!
//! A page of small blocks keeps its bit map (where free blocks start: a
//! bit for each 16 bytes) in its last 32 bytes, so it holds at most 4,064
//! bytes of blocks: 0.8% of such a page is metadata, which no pool is
//! charged for.
//! Blocks merge with their free buddies as pages do; when every block of a
//! page is free again, the page goes back to the page allocator at once.
//! Every allocation and free is a bounded number of steps (free lists
//! linked through the blocks, doubly: [`super::freelist`]).
//!
//! A 2,048-byte block takes the first half of its page (the second half
//! holds the map, so it is never a block of that size): its other 2,016
//! bytes serve smaller blocks. Above 2,048 bytes a block is whole pages.
//! [`block_bytes`] says what a request takes, and what the kernel charges
//! for it: a thread's block costs 2 KiB, as it did before this allocator,
//! not a page (with blocks up to 1,024 bytes, a thread cost 4,112 bytes of
//! its pool and virtio-input's pool on the 4 MiB watch ran out:
//! `profile-watch` failed).

use super::buddy::{Area, Lists};
use super::pages::{Pages, PAGE};

/// The smallest block (two words of free-list links).
pub const MIN: usize = 16;
/// Block sizes: 16 to 2,048 bytes.
pub const CLASSES: usize = 8;
/// The largest small block.
pub const LARGEST: usize = MIN << (CLASSES - 1);
/// Where a page's bit map starts: a bit for each 16 bytes below it.
const MAP_AT: usize = PAGE - 32;
/// A page's free blocks when none is in use, as (size class, offset): the
/// largest aligned blocks below the map.
static WHOLE: [(u8, u16); 7] = [(7, 0), (6, 2048), (5, 3072), (4, 3584), (3, 3840), (2, 3968), (1, 4032)];

/// The block the kernel heap takes for `size` bytes aligned to `align`
/// (both as in a `Layout`): the next power of two, at least 16 bytes (a
/// small block up to [`LARGEST`], whole pages above). What a kernel object
/// is charged.
pub const fn block_bytes(size: usize, align: usize) -> usize {
    let b = if size > align { size } else { align }.next_power_of_two();
    if b < MIN {
        MIN
    } else {
        b
    }
}

/// The size class of a small block of `bytes` (a [`block_bytes`]).
pub fn class_of(bytes: usize) -> usize {
    (bytes / MIN).trailing_zeros() as usize
}

/// The page of small blocks `block` lies in.
fn area(block: usize) -> Area {
    let page = block & !(PAGE - 1);
    Area {
        start: page,
        end: page + MAP_AT,
        shift: MIN.trailing_zeros() as u8,
        orders: CLASSES as u8,
        maps: (page + MAP_AT) as *mut u64,
    }
}

/// The small blocks' free lists.
pub struct Small {
    lists: Lists,
    /// Bytes in free small blocks, and the maps of the pages of small
    /// blocks (which go back with their page).
    free: usize,
    /// A page whose blocks are all free, kept rather than given back (at
    /// most one: another that empties meanwhile goes back), so that a block
    /// that comes and goes alone does not take and give back a page each
    /// time; 0 for none.
    spare: usize,
}

impl Default for Small {
    fn default() -> Self {
        Self::new()
    }
}

impl Small {
    pub const fn new() -> Self {
        Small {
            lists: Lists::new(),
            free: 0,
            spare: 0,
        }
    }

    /// Bytes in free small blocks and in the pages' maps (in pages the page
    /// allocator counts as handed out): what a page of small blocks holds
    /// beyond the blocks in use, so that a block costs its size whichever
    /// page it comes from.
    pub fn free_bytes(&self) -> usize {
        self.free
    }

    /// A block of `class`, from a free one or from a new page of `pages`.
    pub fn alloc(&mut self, class: usize, pages: &mut Pages) -> Option<usize> {
        let Some((from, block)) = self.lists.first_from(class) else {
            // A new page, its first block the one handed out.
            let page = pages.alloc(0)?;
            // SAFETY: a page just taken, unused.
            unsafe { self.adopt(page, class) };
            return Some(page);
        };
        // SAFETY: the first block of a list at or above `class`.
        unsafe { area(block).take(&mut self.lists, block, from, class) };
        self.free -= MIN << class;
        if block & !(PAGE - 1) == self.spare {
            self.spare = 0;
        }
        Some(block)
    }

    /// Give back a block of `class` from [`Small::alloc`]; a page whose
    /// blocks are all free again goes back to `pages`, unless it becomes
    /// the spare. A block given back
    /// twice before it merged is ignored.
    ///
    /// # Safety
    /// Nobody uses the block any more.
    pub unsafe fn free(&mut self, block: usize, class: usize, pages: &mut Pages) {
        let a = area(block);
        if class >= CLASSES || a.is_free(class, block) {
            return;
        }
        self.free += MIN << class;
        // SAFETY: unused (caller), not free: in no list.
        let (merged, c) = unsafe { a.give(&mut self.lists, block, class) };
        // Only a block that merged into one of a whole page's can have
        // made the page whole.
        if WHOLE
            .iter()
            .any(|&(wc, wo)| (usize::from(wc), usize::from(wo)) == (c, merged - a.start))
            && WHOLE
                .iter()
                .all(|&(c, offset)| a.is_free(c.into(), a.start + usize::from(offset)))
        {
            if self.spare == 0 {
                self.spare = a.start;
                return;
            }
            for &(c, offset) in &WHOLE {
                let (c, offset) = (c.into(), usize::from(offset));
                // SAFETY: free by its bit: in its list.
                unsafe { a.take(&mut self.lists, a.start + offset, c, c) };
            }
            self.free -= PAGE;
            // SAFETY: every block of the page is free and out of the lists.
            unsafe { pages.free(a.start, 0) };
        }
    }

    /// Shrink a block of `class` at `block` to its first block of `to`
    /// (smaller): the rest is free, in place.
    ///
    /// # Safety
    /// The block came from [`Small::alloc`] with `class`; nobody uses its
    /// bytes past the first `MIN << to` any more.
    pub unsafe fn free_tail(&mut self, block: usize, to: usize, class: usize) {
        for c in to..class {
            // SAFETY: the upper half at each size, unused from now on
            // (caller); its buddy, the part kept, is in use.
            unsafe { area(block).put(&mut self.lists, block + (MIN << c), c) };
            self.free += MIN << c;
        }
    }

    /// Make the one-page block `page` (handed out by `pages`) a page of
    /// small blocks whose first block, of `class`, stays in use: a block
    /// shrunk below a page, in place.
    ///
    /// # Safety
    /// The page is a whole block from `pages`; nobody uses its bytes past
    /// the first `MIN << class` any more.
    pub unsafe fn adopt(&mut self, page: usize, class: usize) {
        let a = area(page);
        // SAFETY: the page's last 32 bytes, past the block kept, unused
        // (caller).
        unsafe { core::ptr::write_bytes((page + MAP_AT) as *mut u8, 0, PAGE - MAP_AT) };
        // The page's first block of the top class holds the block kept:
        // only its upper halves are free (a free block's links are written
        // into it, so the kept bytes must never be one). Every other block
        // of a whole page is free.
        for &(c, offset) in &WHOLE[1..] {
            // SAFETY: unused, their buddies not free.
            unsafe { a.put(&mut self.lists, page + usize::from(offset), c.into()) };
        }
        // Largest first, so the block next to the one kept is the first of
        // its list, as a split leaves it.
        for c in (class..CLASSES - 1).rev() {
            // SAFETY: unused (caller), its buddy the part kept, in use.
            unsafe { a.put(&mut self.lists, page + (MIN << c), c) };
        }
        self.free += PAGE - (MIN << class);
    }
}

#[cfg(test)]
mod tests {
    use super::super::pages::tests::{pages, Arena};
    use super::*;

    #[test]
    fn block_bytes_rounds_up_and_keeps_the_map_out() {
        assert_eq!(block_bytes(1, 1), 16);
        assert_eq!(block_bytes(24, 8), 32);
        assert_eq!(block_bytes(8, 64), 64);
        assert_eq!(block_bytes(1024, 8), 1024);
        assert_eq!(block_bytes(1025, 8), 2048);
        assert_eq!(block_bytes(2048, 8), 2048);
        assert_eq!(block_bytes(2049, 8), PAGE);
        assert_eq!(block_bytes(64, 4096), PAGE);
        assert_eq!(block_bytes(5000, 8), 8192);
    }

    #[test]
    fn a_page_of_small_blocks_goes_back_when_they_all_do() {
        let arena = Arena::new(1 << 20);
        let mut p = pages(&arena, &[(0, 256)]);
        let mut s = Small::new();
        let used = p.stats().1;
        // 254 blocks of 16 bytes fill a page (4,064 bytes); the 255th takes
        // a second.
        let blocks: Vec<usize> = (0..255).map(|_| s.alloc(0, &mut p).unwrap()).collect();
        assert_eq!(p.stats().1, used + 2 * PAGE);
        let first_page = blocks[0] & !(PAGE - 1);
        assert!(blocks[..254].iter().all(|b| b & !(PAGE - 1) == first_page));
        assert!(blocks.iter().all(|b| b % 16 == 0 && b & (PAGE - 1) < MAP_AT));
        let mut sorted = blocks.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 255, "no block handed out twice");
        for &b in blocks.iter().rev() {
            unsafe { s.free(b, 0, &mut p) };
        }
        assert_eq!(p.stats().1, used + PAGE, "one page back, one kept: the spare");
        assert_eq!(s.free_bytes(), PAGE);
        // The spare serves the next block; a block that comes and goes
        // alone takes no page.
        let again = s.alloc(0, &mut p).unwrap();
        assert_eq!(p.stats().1, used + PAGE);
        unsafe { s.free(again, 0, &mut p) };
        assert_eq!(p.stats().1, used + PAGE);
    }

    #[test]
    fn mixed_sizes_merge_back_in_any_order() {
        let arena = Arena::new(4 << 20);
        let mut p = pages(&arena, &[(0, 1024)]);
        let mut s = Small::new();
        let used = p.stats().1;
        let mut held = Vec::new();
        let mut x = 12345u64;
        for _ in 0..2000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let class = (x >> 33) as usize % CLASSES;
            let b = s.alloc(class, &mut p).unwrap();
            assert_eq!(b % (MIN << class), 0, "aligned to its size");
            // Write the whole block: nothing else may live there.
            unsafe { core::ptr::write_bytes(b as *mut u8, 0xa5, MIN << class) };
            held.push((b, class));
            if x & (1 << 20) != 0 {
                let i = (x >> 40) as usize % held.len();
                let (b, c) = held.swap_remove(i);
                unsafe { s.free(b, c, &mut p) };
            }
        }
        let in_use: usize = held.iter().map(|(_, c)| MIN << c).sum();
        assert!(in_use <= p.stats().1 - used - s.free_bytes());
        while let Some((b, c)) = held.pop() {
            unsafe { s.free(b, c, &mut p) };
        }
        assert_eq!(p.stats().1, used + PAGE, "all back but the spare");
        assert_eq!(s.free_bytes(), PAGE);
    }

    #[test]
    fn a_block_shrinks_in_place_even_below_a_page() {
        let arena = Arena::new(1 << 20);
        let mut p = pages(&arena, &[(0, 256)]);
        let mut s = Small::new();
        let used = p.stats().1;
        // 1,024 to 64 bytes: the rest free at once, the same address.
        let b = s.alloc(6, &mut p).unwrap();
        unsafe { s.free_tail(b, 2, 6) };
        assert_eq!(s.alloc(5, &mut p), Some(b + 512));
        unsafe { s.free(b + 512, 5, &mut p) };
        unsafe { s.free(b, 2, &mut p) };
        assert_eq!(p.stats().1, used + PAGE, "the spare");
        // A page block shrunk to 32 bytes: the page becomes small blocks.
        let page = p.alloc(0).unwrap();
        unsafe { core::ptr::write_bytes(page as *mut u8, 0x77, 32) };
        unsafe { s.adopt(page, 1) };
        // The 32 bytes kept are untouched (no free list's links in them).
        assert!(unsafe { core::slice::from_raw_parts(page as *const u8, 32) }
            .iter()
            .all(|&b| b == 0x77));
        assert_eq!(s.free_bytes(), PAGE + PAGE - 32);
        assert_eq!(s.alloc(1, &mut p), Some(page + 32));
        unsafe {
            s.free(page + 32, 1, &mut p);
            s.free(page, 1, &mut p);
        }
        assert_eq!(p.stats().1, used + PAGE, "back, but for the spare");
        assert_eq!(s.free_bytes(), PAGE);
    }
}
