//! The buddy system of page frames ([`super::buddy`]): blocks of 2^j pages
//! (j below [`ORDERS`]: 4 KiB to 4 GiB).
//!
//! Free memory comes in up to [`MAX_SPANS`] spans (RAM minus the image,
//! the device tree, the initrd and reserved regions). Blocks never merge
//! across spans. The spans and their bit maps (a bit a page: 32 KiB for
//! 1 GiB, a page for the watch's 4 MiB) are set aside at boot from the
//! first span that holds them, and not cleared (see [`Pages`]).
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

/// The page frames' buddy system.
///
/// Its bit maps (a bit a page, [`Area`]) are not cleared at boot: a bit
/// counts only where a free block starts (set, its node giving its order)
/// and on pages handed out (clear). Inside a free block the bits are
/// whatever RAM held: [`Pages::alloc`] clears those of the block it hands
/// out, and a merge or a split writes the bits of the blocks it makes.
/// What a free looks at, its buddy, is never inside a free block (that
/// block would hold the block freed too), so it reads only bits that count.
pub struct Pages {
    /// The spans ([`Area`]s of `count`), in the memory set aside at boot
    /// with their maps (not in the kernel's `.bss`, which the boot clears).
    spans: *mut Area,
    count: usize,
    lists: Lists,
    total: usize,
    used: usize,
}

// SAFETY: the raw pointers reach the allocator's own spans and maps, set
// aside at boot and never handed out; every use is under the frame lock.
unsafe impl Send for Pages {}

impl Pages {
    pub const fn empty() -> Self {
        Pages {
            spans: core::ptr::null_mut(),
            count: 0,
            lists: Lists::new(),
            total: 0,
            used: 0,
        }
    }

    /// The spans.
    fn spans(&self) -> &[Area] {
        if self.count == 0 {
            return &[];
        }
        // SAFETY: `set_up` wrote `count` spans there, kept for good.
        unsafe { core::slice::from_raw_parts(self.spans, self.count) }
    }

    /// Take `ranges` (disjoint, page-aligned `(start, end)`) as the free
    /// memory. The spans and their bit maps come from the start of the
    /// first that holds them and a page besides; nothing is cleared (see
    /// [`Pages`]).
    ///
    /// # Safety
    /// The ranges are memory nobody else uses, readable and writable at
    /// these addresses, for good; called once.
    pub unsafe fn set_up(&mut self, ranges: impl Iterator<Item = (usize, usize)> + Clone) -> Result<(), SetupError> {
        let ranges = ranges.filter(|(s, e)| e > s);
        let (mut count, mut words) = (0, 0);
        for (start, end) in ranges.clone() {
            count += 1;
            words += ((end - start) / PAGE).div_ceil(64);
        }
        if count > MAX_SPANS {
            return Err(SetupError::TooManySpans);
        }
        let bytes = (count * core::mem::size_of::<Area>() + words * 8).next_multiple_of(PAGE);
        let (held, (base, _)) = ranges
            .clone()
            .enumerate()
            .find(|(_, (s, e))| e - s > bytes)
            .ok_or(SetupError::NoRoomForMaps)?;
        let spans = base as *mut Area;
        // SAFETY: the first `bytes` of range `held`, ours (caller) and in
        // no span; page aligned, so aligned for spans, then for words.
        let mut maps = unsafe { spans.add(count) }.cast::<u64>();
        for (n, (start, end)) in ranges.enumerate() {
            let start = if n == held { start + bytes } else { start };
            let span = Area {
                start,
                end,
                shift: 12,
                orders: ORDERS as u8,
                maps,
            };
            // SAFETY: within the `bytes` set aside (the sums above).
            unsafe {
                spans.add(n).write(span);
                maps = maps.add(((end - start) / PAGE).div_ceil(64));
            }
            self.total += end - start;
            let mut at = start;
            while at < end {
                let order = largest(at, end);
                // SAFETY: free memory of the span (caller); the largest
                // aligned blocks of a range are never buddies of each other.
                unsafe { span.put_inlined(&mut self.lists, at, order) };
                at += PAGE << order;
            }
        }
        self.spans = spans;
        self.count = count;
        Ok(())
    }

    /// Bytes of memory in the spans, and bytes handed out.
    pub fn stats(&self) -> (usize, usize) {
        (self.total, self.used)
    }

    /// The span `block` lies in (they are few: a look at each), and the
    /// free lists.
    fn span_of(&mut self, block: usize) -> Option<(&Area, &mut Lists)> {
        let span = self.spans().iter().find(|s| s.start <= block && block < s.end)?;
        // SAFETY: the spans are not in `self` (they are where `spans`
        // points), so the lists are borrowed apart from them.
        let span = unsafe { &*(span as *const Area) };
        Some((span, &mut self.lists))
    }

    /// A block of 2^`order` pages, aligned to its size.
    pub fn alloc(&mut self, order: usize) -> Option<usize> {
        let (j, block) = self.lists.first_from(order)?;
        let (span, lists) = self.span_of(block)?;
        // SAFETY: the first block of list `j`, at least `order`.
        unsafe { span.take(lists, block, j, order) };
        // Its pages but the first (cleared by `take`) had bits of a free
        // block's inside: a block handed out has all its bits clear.
        if order > 0 {
            span.clear(block + PAGE, (1 << order) - 1);
        }
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
/// (`end` above `start`.)
fn largest(start: usize, end: usize) -> usize {
    // Aligned to it: at most the alignment of `start`; ends by `end`: at
    // most the largest power of two in `end - start`.
    let fits = (usize::BITS - 1 - (end - start).leading_zeros()).min(start.trailing_zeros());
    (fits as usize - 12).min(ORDERS - 1)
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
            Arena::filled(bytes, 0x5a5a_5a5a_5a5a_5a5a)
        }

        /// An arena whose every word is `word`: garbage, as RAM may hold
        /// at boot.
        pub(crate) fn filled(bytes: usize, word: u64) -> Arena {
            let layout = Layout::from_size_align(bytes, bytes).unwrap();
            // SAFETY: non-zero size.
            let base = unsafe { alloc(layout) } as usize;
            assert_ne!(base, 0);
            for i in 0..bytes / 8 {
                unsafe { (base as *mut u64).add(i).write(word) };
            }
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
            )
        }
        .unwrap();
        p
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

    /// The maps are not cleared at boot: garbage whose bits say "free"
    /// and whose words look like a free block's node of some order (every
    /// page inside a free block looks free) is never taken for one. With
    /// `alloc` leaving a block's bits as they were inside it, the tail
    /// given back here looked already free and was kept (a free "ignored
    /// as given twice"), and pages went missing.
    #[test]
    fn garbage_in_the_maps_is_never_taken_for_a_free_block() {
        for order in 0..4 {
            let arena = Arena::filled(1 << 20, 0xffff_ffff_ffff_f000 | order);
            let mut p = pages(&arena, &[(0, 256)]);
            let free = free_bytes(&p);
            let b = p.alloc(3).unwrap();
            p.release(b + 5 * PAGE, b + 8 * PAGE);
            assert_eq!(free_bytes(&p), free - 5 * PAGE);
            let mut got = Vec::new();
            for o in [0, 2, 1, 4, 0, 3, 0] {
                got.push((p.alloc(o).unwrap(), o));
            }
            p.release(b, b + 5 * PAGE);
            for &(g, o) in got.iter().rev() {
                unsafe { p.free(g, o) };
            }
            assert_eq!(free_bytes(&p), free);
            assert_eq!(p.alloc(7), Some(arena.base + 128 * PAGE), "whole again");
        }
    }

    #[test]
    fn set_up_refuses_what_it_cannot_hold() {
        let arena = Arena::new(1 << 20);
        let mut p = Pages::empty();
        let many = (0..=MAX_SPANS).map(|i| (arena.base + 2 * i * PAGE, arena.base + (2 * i + 1) * PAGE));
        assert_eq!(unsafe { p.set_up(many) }.err(), Some(SetupError::TooManySpans));
        let mut p = Pages::empty();
        let one = core::iter::once((arena.base, arena.base + PAGE));
        assert_eq!(unsafe { p.set_up(one) }.err(), Some(SetupError::NoRoomForMaps));
    }
}
