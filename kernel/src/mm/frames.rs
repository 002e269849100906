//! Physical page frames: every free page of RAM, in a buddy allocator.

use super::layout::{phys_to_virt, PAGE_SIZE};
use super::regions::Range;
use buddy_system_allocator::FrameAllocator;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;

/// Largest block: 2^31 pages.
static FRAMES: Mutex<FrameAllocator<32>> = Mutex::new(FrameAllocator::new());
static TOTAL_PAGES: AtomicU64 = AtomicU64::new(0);
static FREE_PAGES: AtomicU64 = AtomicU64::new(0);

/// Hand a free range (page aligned) to the allocator.
pub fn add(range: Range) {
    let (first, last) = (range.start / PAGE_SIZE, range.end / PAGE_SIZE);
    FRAMES.lock().add_frame(first as usize, last as usize);
    TOTAL_PAGES.fetch_add(last - first, Ordering::Relaxed);
    FREE_PAGES.fetch_add(last - first, Ordering::Relaxed);
}

/// Allocate `pages` physically contiguous pages (aligned to the next power
/// of two); returns the physical address.
pub fn alloc(pages: usize) -> Option<u64> {
    let first = FRAMES.lock().alloc(pages)?;
    FREE_PAGES.fetch_sub(pages as u64, Ordering::Relaxed);
    Some(first as u64 * PAGE_SIZE)
}

/// Allocate and zero `pages` pages.
pub fn alloc_zeroed(pages: usize) -> Option<u64> {
    let pa = alloc(pages)?;
    let bytes = pages * PAGE_SIZE as usize;
    // SAFETY: the frames were just allocated to us and are reachable through
    // the linear map; nobody else holds a reference to them.
    unsafe { core::ptr::write_bytes(phys_to_virt(pa) as *mut u8, 0, bytes) };
    Some(pa)
}

/// Return pages from [`alloc`].
pub fn free(pa: u64, pages: usize) {
    FRAMES.lock().dealloc((pa / PAGE_SIZE) as usize, pages);
    FREE_PAGES.fetch_add(pages as u64, Ordering::Relaxed);
}

/// Bytes of RAM the allocator manages, and how many are free.
pub fn stats() -> (u64, u64) {
    (
        TOTAL_PAGES.load(Ordering::Relaxed) * PAGE_SIZE,
        FREE_PAGES.load(Ordering::Relaxed) * PAGE_SIZE,
    )
}
