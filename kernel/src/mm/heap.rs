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

    /// A block that shrinks stays where it is and gives back its end: so
    /// giving memory back (`Vec::shrink_to`, as
    /// [`crate::object::slab::give_back`] does) never needs memory, and
    /// never fails. One that grows past its block moves to a new one, as
    /// `GlobalAlloc`'s default does.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new) = Layout::from_size_align(new_size, layout.align()) else {
            return core::ptr::null_mut();
        };
        let (old_block, new_block) = (frames::block_size(layout), frames::block_size(new));
        if new_block <= old_block {
            // SAFETY: `ptr` came from `alloc` with `layout` (a block of
            // `old_block` bytes), and the caller uses only its first
            // `new_size` bytes from now on.
            unsafe { frames::free_tail(ptr, new_block, old_block) };
            USED.fetch_sub(old_block - new_block, Ordering::Relaxed);
            return ptr;
        }
        // SAFETY: `new` has a non-zero size (larger than a block).
        let moved = unsafe { self.alloc(new) };
        if !moved.is_null() {
            // SAFETY: both blocks are ours and distinct; the old one holds
            // `layout.size()` bytes, fewer than the new one; it came from
            // `alloc` with `layout`.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, moved, layout.size());
                self.dealloc(ptr, layout);
            }
        }
        moved
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
