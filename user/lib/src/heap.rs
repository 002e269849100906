//! The global allocator: a first-fit linked-list heap over a static area
//! in the program's `.bss`, sized by the program through [`crate::entry!`],
//! with a cache of small freed blocks that a program may turn on
//! ([`keep_small_blocks`]).

use crate::sync::Mutex;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr::{self, NonNull};
use linked_list_allocator::Heap;

/// Heap size when the program does not choose one.
pub const DEFAULT_HEAP_SIZE: usize = 256 * 1024;

/// Backing store for the heap: a zeroed static, so it lands in `.bss` and
/// costs nothing in the file.
#[repr(C, align(4096))]
pub struct HeapArea<const N: usize>(UnsafeCell<[u8; N]>);

// SAFETY: the bytes are only ever handed (once, by the start-up code) to
// the allocator, which serialises all access through its mutex.
unsafe impl<const N: usize> Sync for HeapArea<N> {}

impl<const N: usize> HeapArea<N> {
    pub const fn new() -> Self {
        HeapArea(UnsafeCell::new([0; N]))
    }

    /// Start and size of the area.
    pub fn region(&'static self) -> (*mut u8, usize) {
        (self.0.get().cast(), N)
    }
}

impl<const N: usize> Default for HeapArea<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// The allocator type behind `#[global_allocator]`.
pub struct Allocator {
    heap: Mutex<Inner>,
}

/// The block sizes of the small classes (see [`class`]).
const CLASSES: [usize; 4] = [32, 64, 128, 256];
/// Alignment of every block of a class (the sizes are multiples of it).
const CLASS_ALIGN: usize = 16;
/// Freed blocks kept per class, at most.
const KEEP: usize = 8;

/// The small class that serves `layout`, if one does: sizes up to 256
/// bytes with alignment up to 16. Each is allocated from the heap at its
/// class's size and alignment, so a freed block serves any later request
/// of its class.
fn class(layout: Layout) -> Option<usize> {
    if layout.align() > CLASS_ALIGN {
        return None;
    }
    CLASSES.iter().position(|&c| layout.size() <= c)
}

/// The layout the heap sees for class `c`.
fn class_layout(c: usize) -> Layout {
    // The sizes are non-zero multiples of the alignment, a power of two.
    Layout::from_size_align(CLASSES[c], CLASS_ALIGN).unwrap_or(Layout::new::<u8>())
}

/// The heap and its small-block cache.
///
/// linked_list_allocator's first fit walks the free list from its start
/// for every allocation and keeps it sorted by address at every free, so
/// a program whose heap holds many holes pays for each of them on every
/// small `Vec` or `String` it makes and drops. A program that turns the
/// cache on ([`keep_small_blocks`]) gets each small request a block of
/// its class, and the last [`KEEP`] freed blocks of each class are kept
/// on a list of their own (the next block's address in each block's first
/// word) and handed out again first.
struct Inner {
    heap: Heap,
    /// The cache is on (set before the program's first allocation, never
    /// turned off: blocks of a class must go back with their class's
    /// layout).
    keep: bool,
    /// Address of the first kept block of each class (0: none).
    kept: [usize; CLASSES.len()],
    counts: [usize; CLASSES.len()],
}

impl Inner {
    /// Bytes held in the kept blocks (in use for the heap, free for the
    /// program).
    fn kept_bytes(&self) -> usize {
        self.counts.iter().zip(CLASSES).map(|(n, c)| n * c).sum()
    }
}

impl Allocator {
    pub const fn empty() -> Allocator {
        Allocator {
            heap: Mutex::new(Inner {
                heap: Heap::empty(),
                keep: false,
                kept: [0; CLASSES.len()],
                counts: [0; CLASSES.len()],
            }),
        }
    }

    /// Bytes in use and bytes free (the kept blocks count as free).
    pub fn stats(&self) -> (usize, usize) {
        let h = self.heap.lock();
        let kept = h.kept_bytes();
        (h.heap.used() - kept, h.heap.free() + kept)
    }
}

// SAFETY: allocation and deallocation go to linked_list_allocator's Heap
// under a lock; it returns blocks that fit `layout` or null. A small
// request gets a block of its class (at least its size, aligned to 16),
// either from the heap or a kept one; kept blocks were freed by the
// program (no one else uses them) and came from the heap with their
// class's layout, the layout they go back with.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut h = self.heap.lock();
        let Some(c) = class(layout).filter(|_| h.keep) else {
            return h
                .heap
                .allocate_first_fit(layout)
                .map_or(ptr::null_mut(), |p| p.as_ptr());
        };
        let first = h.kept[c];
        if first != 0 {
            // SAFETY: `first` is a kept block of class `c` (at least 32
            // bytes, 16-aligned, not in use); its first word holds the next
            // kept block's address, written by `dealloc`.
            h.kept[c] = unsafe { (first as *const usize).read() };
            h.counts[c] -= 1;
            return first as *mut u8;
        }
        h.heap
            .allocate_first_fit(class_layout(c))
            .map_or(ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(p) = NonNull::new(ptr) else { return };
        let mut h = self.heap.lock();
        match class(layout).filter(|_| h.keep) {
            Some(c) if h.counts[c] < KEEP => {
                // SAFETY: GlobalAlloc's contract: `ptr` came from `alloc`
                // with this `layout`, so it is a block of class `c`, now
                // free: its first word (it is 16-aligned and at least 32
                // bytes) links it to the class's kept blocks.
                unsafe { (ptr as *mut usize).write(h.kept[c]) };
                h.kept[c] = ptr as usize;
                h.counts[c] += 1;
            }
            // SAFETY: `ptr` came from the heap with the class's layout.
            Some(c) => unsafe { h.heap.deallocate(p, class_layout(c)) },
            // SAFETY: GlobalAlloc's contract: `ptr` came from `alloc` with
            // this `layout`, which the heap served as it is.
            None => unsafe { h.heap.deallocate(p, layout) },
        }
    }

    /// A block whose new size stays in its class is already big enough
    /// (a `Vec` growing from 8 to 32 bytes moves no byte); otherwise a new
    /// block, the bytes copied, the old one freed.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        if self.heap.lock().keep && class(layout).is_some() && class(new) == class(layout) {
            return ptr;
        }
        // SAFETY: GlobalAlloc's contract for `alloc` (`new` is non-zero
        // sized: `realloc`'s contract) and `dealloc` (`ptr` came from here
        // with `layout`); the two blocks do not overlap, and the copy is
        // no longer than either.
        unsafe {
            let to = self.alloc(new);
            if !to.is_null() {
                ptr::copy_nonoverlapping(ptr, to, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            to
        }
    }
}

#[cfg_attr(all(target_arch = "aarch64", target_os = "none"), global_allocator)]
pub static ALLOCATOR: Allocator = Allocator::empty();

/// Gives the heap its memory; the start-up code calls this once.
pub(crate) fn init(region: (*mut u8, usize)) {
    let mut h = ALLOCATOR.heap.lock();
    if h.heap.size() == 0 && region.1 > 0 {
        // SAFETY: `region` is a HeapArea static that nothing else uses,
        // and this runs once (the heap is empty until now).
        unsafe { h.heap.init(region.0, region.1) }
    }
}

/// Turns the small-block cache on for this program (see [`Allocator`]'s
/// notes): for a program that makes and drops many small `Vec`s (the
/// bus: about 1,800 instructions less a remote call). Not for one whose
/// heap buffers go to a device: the virtio HAL bounces a small buffer
/// through a copy of its page, and kept blocks may spread a driver's
/// buffers over more pages (the display and file benchmarks got worse
/// with the cache on for every program). Takes effect only while the
/// program has allocated nothing (a block allocated without the cache
/// must not come back as one of a class): `false` otherwise.
pub fn keep_small_blocks() -> bool {
    let mut h = ALLOCATOR.heap.lock();
    if h.heap.used() != 0 {
        return false;
    }
    h.keep = true;
    true
}

/// Heap bytes in use and free.
pub fn stats() -> (usize, usize) {
    ALLOCATOR.stats()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// An allocator over its own 64 KiB (leaked: a test's heap).
    fn allocator() -> Allocator {
        let a = Allocator::empty();
        let area: &'static mut [u8] = alloc::vec![0u8; 64 << 10].leak();
        // SAFETY: the area is this allocator's alone, for the rest of the
        // test run (leaked).
        unsafe { a.heap.lock().heap.init(area.as_mut_ptr(), area.len()) };
        a.heap.lock().keep = true;
        a
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn small_blocks_are_kept_and_handed_out_again() {
        let a = allocator();
        let (used0, free0) = a.stats();
        // SAFETY (the unsafe calls below): each pointer is freed once,
        // with the layout it was allocated with.
        let p = unsafe { a.alloc(layout(40, 8)) };
        assert!(!p.is_null());
        assert_eq!(a.stats().0, used0 + 64, "a 40-byte request takes a 64-byte block");
        unsafe { a.dealloc(p, layout(40, 8)) };
        assert_eq!(a.stats(), (used0, free0), "a kept block counts as free");
        let q = unsafe { a.alloc(layout(64, 16)) };
        assert_eq!(q, p, "the kept block serves its class again");
        let r = unsafe { a.alloc(layout(64, 16)) };
        assert_ne!(r, q);
        unsafe {
            a.dealloc(q, layout(64, 16));
            a.dealloc(r, layout(64, 16));
        }
        assert_eq!(a.stats(), (used0, free0));
    }

    #[test]
    fn kept_blocks_are_bounded_and_the_rest_go_back() {
        let a = allocator();
        let (used0, free0) = a.stats();
        let blocks: Vec<*mut u8> = (0..3 * KEEP).map(|_| unsafe { a.alloc(layout(100, 8)) }).collect();
        assert!(blocks.iter().all(|p| !p.is_null() && *p as usize % CLASS_ALIGN == 0));
        for &p in &blocks {
            unsafe { a.dealloc(p, layout(100, 8)) };
        }
        let h = a.heap.lock();
        assert_eq!(h.counts, [0, 0, KEEP, 0]);
        assert_eq!(h.heap.used(), KEEP * 128, "only KEEP blocks stay out of the heap");
        drop(h);
        assert_eq!(a.stats(), (used0, free0));
    }

    #[test]
    fn without_the_cache_every_block_goes_back() {
        let a = allocator();
        a.heap.lock().keep = false;
        let (used0, _) = a.stats();
        let p = unsafe { a.alloc(layout(40, 8)) };
        assert_eq!(a.stats().0, used0 + 40, "the request's own size");
        let q = unsafe { a.realloc(p, layout(40, 8), 48) };
        unsafe { a.dealloc(q, layout(48, 8)) };
        let h = a.heap.lock();
        assert_eq!(h.counts, [0; 4]);
        assert_eq!(h.heap.used(), used0);
    }

    #[test]
    fn large_or_strictly_aligned_requests_go_to_the_heap() {
        let a = allocator();
        assert_eq!(class(layout(257, 8)), None);
        assert_eq!(class(layout(32, 32)), None);
        assert_eq!(class(layout(1, 1)), Some(0));
        assert_eq!(class(layout(256, 16)), Some(3));
        let p = unsafe { a.alloc(layout(64, 64)) };
        assert_eq!(p as usize % 64, 0);
        unsafe { a.dealloc(p, layout(64, 64)) };
        assert_eq!(a.heap.lock().counts, [0; 4], "not kept");
    }

    #[test]
    fn realloc_keeps_the_block_within_its_class_and_the_bytes_across() {
        let a = allocator();
        unsafe {
            let p = a.alloc(layout(8, 1));
            p.copy_from_nonoverlapping(b"abcdefgh".as_ptr(), 8);
            let q = a.realloc(p, layout(8, 1), 32);
            assert_eq!(q, p, "8 to 32 bytes stays in the 32-byte block");
            let r = a.realloc(q, layout(32, 1), 300);
            assert_ne!(r, q);
            assert_eq!(core::slice::from_raw_parts(r, 8), b"abcdefgh");
            let s = a.realloc(r, layout(300, 1), 20);
            assert_eq!(core::slice::from_raw_parts(s, 8), b"abcdefgh");
            a.dealloc(s, layout(20, 1));
        }
        let h = a.heap.lock();
        // The shrink took the block the growth freed: one kept.
        assert_eq!(h.counts, [1, 0, 0, 0]);
    }
}
