//! The global allocator: a first-fit linked-list heap over a static area
//! in the program's `.bss`, sized by the program through [`crate::entry!`].

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
    heap: Mutex<Heap>,
}

impl Allocator {
    pub const fn empty() -> Allocator {
        Allocator {
            heap: Mutex::new(Heap::empty()),
        }
    }

    /// Bytes in use and bytes free.
    pub fn stats(&self) -> (usize, usize) {
        let h = self.heap.lock();
        (h.used(), h.free())
    }
}

// SAFETY: allocation and deallocation go to linked_list_allocator's Heap
// under a lock; it returns blocks that fit `layout` or null.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.heap
            .lock()
            .allocate_first_fit(layout)
            .map_or(ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: GlobalAlloc's contract: `ptr` came from `alloc` with
            // this `layout`.
            unsafe { self.heap.lock().deallocate(p, layout) }
        }
    }
}

#[cfg_attr(all(target_arch = "aarch64", target_os = "none"), global_allocator)]
pub static ALLOCATOR: Allocator = Allocator::empty();

/// Gives the heap its memory; the start-up code calls this once.
pub(crate) fn init(region: (*mut u8, usize)) {
    let mut h = ALLOCATOR.heap.lock();
    if h.size() == 0 && region.1 > 0 {
        // SAFETY: `region` is a HeapArea static that nothing else uses,
        // and this runs once (the heap is empty until now).
        unsafe { h.init(region.0, region.1) }
    }
}

/// Heap bytes in use and free.
pub fn stats() -> (usize, usize) {
    ALLOCATOR.stats()
}
