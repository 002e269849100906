//! The kernel heap: allocations come straight from the frame allocator's
//! buddy system (through the linear map), in blocks of the next power of
//! two. A freed block merges with its free buddy, so memory the kernel's
//! objects gave back is whole pages again, for any use: the heap holds no
//! frames of its own and never keeps what teardown freed.

use super::frames;
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

struct KernelHeap;

#[global_allocator]
static HEAP: KernelHeap = KernelHeap;

/// Bytes in heap blocks now (each block counted at its full size).
static USED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: both calls delegate to the frame allocator, which hands out
// blocks of at least the layout's size and alignment and takes them back
// with the same layout.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match frames::alloc_block(layout) {
            Some(p) => {
                USED.fetch_add(frames::block_size(layout), Ordering::Relaxed);
                p
            }
            None => core::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { frames::free_block(ptr, layout) };
        USED.fetch_sub(frames::block_size(layout), Ordering::Relaxed);
    }
}

/// The heap's size and the bytes in use: the same, its blocks (it holds
/// nothing beyond them).
pub fn stats() -> (usize, usize) {
    let used = USED.load(Ordering::Relaxed);
    (used, used)
}

/// Allocate a `Box` without panicking when memory runs out.
pub fn try_box<T>(value: T) -> Option<alloc::boxed::Box<T>> {
    let layout = Layout::new::<T>();
    if layout.size() == 0 {
        return Some(alloc::boxed::Box::new(value));
    }
    // SAFETY: layout has non-zero size; on success the memory is written
    // with `value` before the Box takes ownership of it.
    unsafe {
        let p = alloc::alloc::alloc(layout) as *mut T;
        if p.is_null() {
            return None;
        }
        p.write(value);
        Some(alloc::boxed::Box::from_raw(p))
    }
}
