//! Physical page frames: every free page of RAM, in a buddy allocator.
//!
//! `buddy_system_allocator::Heap` keeps its free lists inside the free
//! frames themselves (reached through the linear map), so the frame
//! allocator never needs the kernel heap, and the heap can grow from frames.

use super::layout::{phys_to_virt, LINEAR_BASE, PAGE_SIZE};
use super::regions::Range;
use buddy_system_allocator::Heap;
use core::alloc::Layout;
use core::ptr::NonNull;
use spin::Mutex;

/// Blocks up to 2^32 bytes.
static FRAMES: Mutex<Heap<33>> = Mutex::new(Heap::empty());

fn layout(pages: usize) -> Option<Layout> {
    let bytes = pages.checked_mul(PAGE_SIZE as usize)?.checked_next_power_of_two()?;
    Layout::from_size_align(bytes, bytes).ok()
}

/// Hand a free range (page aligned, linear-mapped) to the allocator.
pub fn add(range: Range) {
    // SAFETY: the range is free RAM, mapped read-write in the linear map and
    // owned by nobody else (computed from the device tree at boot).
    unsafe {
        FRAMES
            .lock()
            .add_to_heap(phys_to_virt(range.start) as usize, phys_to_virt(range.end) as usize)
    };
}

/// Allocate `pages` physically contiguous pages, aligned to the next power
/// of two; returns the physical address.
pub fn alloc(pages: usize) -> Option<u64> {
    let ptr = FRAMES.lock().alloc(layout(pages.max(1))?).ok()?;
    Some(ptr.as_ptr() as u64 - LINEAR_BASE)
}

/// Allocate and zero `pages` pages.
pub fn alloc_zeroed(pages: usize) -> Option<u64> {
    let pa = alloc(pages)?;
    // SAFETY: the frames were just allocated to us and are reachable through
    // the linear map; nobody else holds a reference to them.
    unsafe { core::ptr::write_bytes(phys_to_virt(pa) as *mut u8, 0, pages * PAGE_SIZE as usize) };
    Some(pa)
}

/// Return pages from [`alloc`] (same count).
pub fn free(pa: u64, pages: usize) {
    let (Some(layout), Some(ptr)) = (layout(pages.max(1)), NonNull::new(phys_to_virt(pa) as *mut u8)) else {
        return;
    };
    FRAMES.lock().dealloc(ptr, layout);
}

/// Bytes actually consumed by an allocation of `pages` pages (rounded up to
/// a power of two), for accounting.
pub fn charge(pages: usize) -> u64 {
    layout(pages.max(1)).map_or(u64::MAX, |l| l.size() as u64)
}

/// Bytes of RAM the allocator manages, and how many are free.
pub fn stats() -> (u64, u64) {
    let f = FRAMES.lock();
    (
        f.stats_total_bytes() as u64,
        (f.stats_total_bytes() - f.stats_alloc_actual()) as u64,
    )
}
