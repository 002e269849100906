//! The buddy system of page frames ([`super::buddy`]): blocks of 2^j pages
//! (j below [`ORDERS`]: 4 KiB to 4 GiB).
//!
//! Free memory comes in up to [`MAX_SPANS`] spans (RAM minus the image,
//! the device tree, the initrd and reserved regions). Blocks never merge
//! across spans. The spans' bit maps (about 2 bits a page) are set aside at
//! boot from the first span that holds them: 64 KiB for 1 GiB, a page for the watch's
//! 4 MiB.
//!
//! Addresses here are where the allocator reaches the memory (the kernel's
//! linear map); the caller converts.

pub use super::buddy::ORDERS;
use super::buddy::{Area, Lists};

/// Bytes in a page.
pub const PAGE: usize = 4096;
/// Spans of free memory at most.
pub const MAX_SPANS: usize = 64;

/// Why the allocator could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// More than [`MAX_SPANS`] spans of free memory.
    TooManySpans,
    /// No span holds the bit maps and a page besides.
    NoRoomForMaps,
}

/// An unused span: all zero, so the allocator starts in `.bss`.
const NO_SPAN: Area = Area {
    start: 0,
    end: 0,
    shift: 0,
    orders: 0,
    maps: core::ptr::null_mut(),
};

/// The page frames' buddy system.
pub struct Pages {
    spans: [Area; MAX_SPANS],
    count: usize,
    lists: Lists,
    total: usize,
    used: usize,
}

// SAFETY: the raw pointers reach the allocator's own maps, set aside at
// boot and never handed out; every use is under the frame lock.
unsafe impl Send for Pages {}

impl Pages {
    pub const fn empty() -> Self {
        Pages {
            spans: [NO_SPAN; MAX_SPANS],
            count: 0,
            lists: Lists::new(),
            total: 0,
            used: 0,
        }
    }

    /// Take `ranges` (disjoint, page-aligned `(start, end)`) as the free
    /// memory; `zero` zeroes whole pages at an address (the maps). The bit maps come from the start of the first that holds
    /// them and a page besides.
    ///
    /// # Safety
    /// The ranges are memory nobody else uses, readable and writable at
    /// these addresses, for good; called once.
    pub unsafe fn set_up(
        &mut self,
        ranges: impl Iterator<Item = (usize, usize)>,
        zero: impl FnOnce(usize, usize),
    ) -> Result<(), SetupError> {
        let mut words = 0;
        for (start, end) in ranges.filter(|(s, e)| e > s) {
            let span = self.spans.get_mut(self.count).ok_or(SetupError::TooManySpans)?;
            *span = Area {
                start,
                end,
                shift: 12,
                orders: ORDERS as u8,
                maps: core::ptr::null_mut(),
            };
            words += ((end - start) / PAGE).div_ceil(64);
            self.count += 1;
        }
        let count = self.count;
        let bytes = (words * 8).next_multiple_of(PAGE);
        let first = self
            .spans
            .iter_mut()
            .take(count)
            .find(|s| s.end - s.start > bytes)
            .ok_or(SetupError::NoRoomForMaps)?;
        let mut maps = first.start as *mut u64;
        first.start += bytes;
        // The first `bytes` of that range, ours (caller) and no longer in
        // any span.
        zero(maps as usize, bytes);
        for span in self.spans.iter_mut().take(count) {
            span.maps = maps;
            // SAFETY: within the `bytes` set aside (the sum above).
            maps = unsafe { maps.add(((span.end - span.start) / PAGE).div_ceil(64)) };
        }
        for span in self.spans.iter().take(count) {
            self.total += span.end - span.start;
            let mut at = span.start;
            while at < span.end {
                let order = largest(at, span.end);
                // SAFETY: free memory of the span (caller); the largest
                // aligned blocks of a range are never buddies of each other.
                unsafe { span.put(&mut self.lists, at, order) };
                at += PAGE << order;
            }
        }
        Ok(())
    }

    /// Bytes of memory in the spans, and bytes handed out.
    pub fn stats(&self) -> (usize, usize) {
        (self.total, self.used)
    }

    /// The span `block` lies in (they are few: a look at each), and the
    /// free lists.
    fn span_of(&mut self, block: usize) -> Option<(&Area, &mut Lists)> {
        let span = self
            .spans
            .iter()
            .take(self.count)
            .find(|s| s.start <= block && block < s.end)?;
        Some((span, &mut self.lists))
    }

    /// A block of 2^`order` pages, aligned to its size.
    pub fn alloc(&mut self, order: usize) -> Option<usize> {
        let (j, block) = self.lists.first_from(order)?;
        let (span, lists) = self.span_of(block)?;
        // SAFETY: the first block of list `j`, at least `order`.
        unsafe { span.take(lists, block, j, order) };
        self.used += PAGE << order;
        Some(block)
    }

    /// Give back a block of 2^`order` pages from [`Pages::alloc`] (or a
    /// part of one, see [`Pages::release`]). A block given back twice
    /// before it merged is ignored.
    ///
    /// # Safety
    /// Nobody uses the block any more.
    pub unsafe fn free(&mut self, block: usize, order: usize) {
        let Some((span, lists)) = self
            .span_of(block)
            .filter(|(s, _)| order < ORDERS && !s.is_free(order, block))
        else {
            return;
        };
        // SAFETY: unused (caller), in the span, in no list (not free).
        unsafe { span.give(lists, block, order) };
        self.used -= PAGE << order;
    }

    /// Give back `start..end` (page aligned, handed out) as the largest
    /// aligned blocks it holds, which merge with their free buddies.
    pub fn release(&mut self, mut start: usize, end: usize) {
        while start < end {
            let order = largest(start, end);
            // SAFETY: handed out, and given back by the caller.
            unsafe { self.free(start, order) };
            start += PAGE << order;
        }
    }
}

/// The order of the largest block aligned to its size that starts at
/// `start` (page aligned) and ends by `end`.
fn largest(start: usize, end: usize) -> usize {
    let mut order = ((start.trailing_zeros() as usize).saturating_sub(12)).min(ORDERS - 1);
    while start + (PAGE << order) > end {
        order -= 1;
    }
    order
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::alloc::{alloc, dealloc, Layout};

    /// Memory for a test allocator, aligned to its size.
    pub(crate) struct Arena {
        pub base: usize,
        layout: Layout,
    }

    impl Arena {
        pub(crate) fn new(bytes: usize) -> Arena {
            let layout = Layout::from_size_align(bytes, bytes).unwrap();
            // SAFETY: non-zero size.
            let base = unsafe { alloc(layout) } as usize;
            assert_ne!(base, 0);
            // Garbage, as RAM may hold at boot.
            unsafe { core::ptr::write_bytes(base as *mut u8, 0x5a, bytes) };
            Arena { base, layout }
        }
    }

    impl Drop for Arena {
        fn drop(&mut self) {
            // SAFETY: allocated with this layout.
            unsafe { dealloc(self.base as *mut u8, self.layout) };
        }
    }

    pub(crate) fn pages(arena: &Arena, ranges: &[(usize, usize)]) -> Pages {
        let mut p = Pages::empty();
        // SAFETY: the arena is ours for the test.
        unsafe {
            p.set_up(
                ranges
                    .iter()
                    .map(|&(s, e)| (arena.base + s * PAGE, arena.base + e * PAGE)),
                zero,
            )
        }
        .unwrap();
        p
    }

    /// Garbage first: the maps must not depend on memory being zero.
    fn zero(at: usize, bytes: usize) {
        unsafe {
            core::ptr::write_bytes(at as *mut u8, 0xa5, bytes);
            core::ptr::write_bytes(at as *mut u8, 0, bytes);
        }
    }

    fn free_bytes(p: &Pages) -> usize {
        p.stats().0 - p.stats().1
    }

    #[test]
    fn blocks_split_and_merge_back_whole() {
        let arena = Arena::new(4 << 20);
        let mut p = pages(&arena, &[(0, 1024)]);
        // One page of maps at the start.
        assert_eq!(p.stats(), (1023 * PAGE, 0));
        let a = p.alloc(0).unwrap();
        assert_eq!(a, arena.base + PAGE, "the lowest page after the maps");
        let b = p.alloc(3).unwrap();
        assert_eq!(b % (8 * PAGE), 0, "aligned to its size");
        assert_eq!(free_bytes(&p), 1023 * PAGE - 9 * PAGE);
        unsafe {
            p.free(a, 0);
            p.free(b, 3);
        }
        assert_eq!(free_bytes(&p), 1023 * PAGE);
        // Merged back: the largest aligned block after the maps is whole.
        let big = p.alloc(9).unwrap();
        assert_eq!(big, arena.base + 512 * PAGE);
        unsafe { p.free(big, 9) };
    }

    #[test]
    fn a_free_is_bounded_whatever_the_lists_hold() {
        // Thousands of one-page blocks freed apart from their buddies:
        // before, each further free searched all of them.
        let arena = Arena::new(128 << 20);
        let mut p = pages(&arena, &[(0, 32768)]);
        let mut held = Vec::new();
        while let Some(b) = p.alloc(0) {
            held.push(b);
        }
        assert_eq!(held.len() * PAGE, p.stats().0, "every page but the maps'");
        held.sort();
        let (odd, even): (Vec<usize>, Vec<usize>) = held.iter().partition(|b| (*b / PAGE) % 2 == 1);
        for &b in &odd {
            unsafe { p.free(b, 0) };
        }
        assert_eq!(p.lists.first_from(1), None, "no two free pages are buddies");
        // Every even page merges with its odd buddy, and up: all memory is
        // whole again.
        for &b in &even {
            unsafe { p.free(b, 0) };
        }
        assert_eq!(free_bytes(&p), held.len() * PAGE);
        assert_eq!(p.alloc(14), Some(arena.base + 16384 * PAGE));
    }

    #[test]
    fn blocks_never_merge_across_spans_or_twice() {
        let arena = Arena::new(1 << 20);
        // Two spans that touch at page 128: a block from one never merges
        // with the other's.
        let mut p = pages(&arena, &[(0, 128), (128, 256)]);
        assert_eq!(p.stats().0, 255 * PAGE);
        let mut got = Vec::new();
        while let Some(b) = p.alloc(0) {
            got.push(b);
        }
        for &b in &got {
            unsafe { p.free(b, 0) };
        }
        assert_eq!(p.lists.first_from(8), None, "no 256-page block across the spans");
        // The maps came from the first span.
        assert_eq!(p.alloc(7), Some(arena.base + 128 * PAGE));
        // A double free changes nothing.
        let a = p.alloc(0).unwrap();
        unsafe {
            p.free(a, 0);
            p.free(a, 0);
        }
        assert_eq!(p.stats().1, 128 * PAGE);
    }

    #[test]
    fn unaligned_spans_keep_their_edges() {
        // A span from page 3 to page 45: blocks stick out of it at both
        // ends at every order; none of them may be handed out.
        let arena = Arena::new(1 << 20);
        let mut p = pages(&arena, &[(3, 45), (64, 200)]);
        let mut got = Vec::new();
        for order in (0..8).rev() {
            while let Some(b) = p.alloc(order) {
                got.push((b, order));
            }
        }
        let (total, used) = p.stats();
        assert_eq!(total, used);
        let in_spans = |b: usize, o: usize| {
            let (s, e) = (b - arena.base, b - arena.base + (PAGE << o));
            (3 * PAGE <= s && e <= 45 * PAGE) || (64 * PAGE <= s && e <= 200 * PAGE)
        };
        assert!(got.iter().all(|&(b, o)| in_spans(b, o) && b % (PAGE << o) == 0));
        assert_eq!(got.iter().map(|&(_, o)| PAGE << o).sum::<usize>(), total);
        for &(b, o) in &got {
            unsafe { p.free(b, o) };
        }
        assert_eq!(p.stats().1, 0);
    }

    #[test]
    fn release_gives_back_a_blocks_tail() {
        let arena = Arena::new(1 << 20);
        let mut p = pages(&arena, &[(0, 256)]);
        let free = free_bytes(&p);
        let b = p.alloc(3).unwrap();
        p.release(b + 5 * PAGE, b + 8 * PAGE);
        assert_eq!(free_bytes(&p), free - 5 * PAGE);
        p.release(b, b + 5 * PAGE);
        assert_eq!(free_bytes(&p), free);
        assert_eq!(p.alloc(7), Some(arena.base + 128 * PAGE));
    }

    #[test]
    fn set_up_refuses_what_it_cannot_hold() {
        let arena = Arena::new(1 << 20);
        let mut p = Pages::empty();
        let many = (0..=MAX_SPANS).map(|i| (arena.base + 2 * i * PAGE, arena.base + (2 * i + 1) * PAGE));
        assert_eq!(unsafe { p.set_up(many, zero) }.err(), Some(SetupError::TooManySpans));
        let mut p = Pages::empty();
        let one = core::iter::once((arena.base, arena.base + PAGE));
        assert_eq!(unsafe { p.set_up(one, zero) }.err(), Some(SetupError::NoRoomForMaps));
    }
}
