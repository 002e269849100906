//! Physical page frames: every free page of RAM, in a buddy allocator.
//!
//! `buddy_system_allocator::Heap` keeps its free lists inside the free
//! frames themselves (reached through the linear map), so the frame
//! allocator never needs the kernel heap; the kernel heap's blocks come
//! from it too ([`alloc_block`]), so freed objects merge back into pages.

use super::layout::{phys_to_virt, LINEAR_BASE, PAGE_SIZE};
use super::regions::Range;
use crate::sync::ColdMutex as Mutex;
use buddy_system_allocator::Heap;
use core::alloc::Layout;
use core::ptr::NonNull;

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
/// of two; returns the physical address. Only `pages` pages are taken: the
/// rest of the power-of-two block goes straight back (an 806 KiB frame
/// buffer must not cost 1 MiB on a 4 MiB watch).
pub fn alloc(pages: usize) -> Option<u64> {
    let pages = pages.max(1);
    let block = layout(pages)?;
    let mut frames = FRAMES.lock();
    let ptr = frames.alloc(block).ok()?;
    let start = ptr.as_ptr() as usize;
    release(&mut frames, start + pages * PAGE_SIZE as usize, start + block.size());
    Some(start as u64 - LINEAR_BASE)
}

/// Give `start..end` (linear-map addresses, page aligned) back as the
/// largest aligned power-of-two blocks it holds, so that the allocator
/// merges them with their free buddies.
fn release(frames: &mut Heap<33>, mut start: usize, end: usize) {
    while start < end {
        let mut size = 1usize << start.trailing_zeros().min(32);
        while start + size > end {
            size >>= 1;
        }
        let (Ok(l), Some(ptr)) = (Layout::from_size_align(size, size), NonNull::new(start as *mut u8)) else {
            return;
        };
        frames.dealloc(ptr, l);
        start += size;
    }
}

/// Allocate and zero `pages` pages.
pub fn alloc_zeroed(pages: usize) -> Option<u64> {
    let pa = alloc(pages)?;
    // SAFETY: the frames were just allocated to us and are reachable through
    // the linear map; nobody else holds a reference to them.
    unsafe { core::ptr::write_bytes(phys_to_virt(pa) as *mut u8, 0, pages * PAGE_SIZE as usize) };
    Some(pa)
}

/// Zero `pages` pages at `pa` (allocated to the caller, linear-mapped);
/// returns about how many instructions it took (the work budget's units).
/// With `DC ZVA` (64 bytes an instruction on the cores Kestrel runs on) a
/// page takes about 260; without, about a byte an instruction.
pub fn zero(pa: u64, pages: usize) -> u32 {
    let start = phys_to_virt(pa) as usize;
    let bytes = pages * PAGE_SIZE as usize;
    #[cfg(target_arch = "aarch64")]
    {
        let dczid: u64;
        // SAFETY: reads an ID register.
        unsafe { core::arch::asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack)) };
        let block = 4usize << (dczid & 0xf);
        if dczid & 0x10 == 0 && (16..=2048).contains(&block) {
            let end = start + bytes;
            let mut at = start;
            while at < end {
                // SAFETY: `at` is in the caller's frames (page aligned, so
                // block aligned), Normal memory in the linear map.
                unsafe { core::arch::asm!("dc zva, {}", in(reg) at, options(nostack)) };
                at += block;
            }
            return u32::try_from(bytes / block * 4).unwrap_or(u32::MAX);
        }
    }
    // SAFETY: the caller owns the frames, reachable through the linear map.
    unsafe { core::ptr::write_bytes(start as *mut u8, 0, bytes) };
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// Return pages from [`alloc`] (same count).
pub fn free(pa: u64, pages: usize) {
    let start = phys_to_virt(pa) as usize;
    release(&mut FRAMES.lock(), start, start + pages.max(1) * PAGE_SIZE as usize);
}

/// Size of the block [`alloc_block`] takes for `layout`.
pub fn block_size(layout: Layout) -> usize {
    layout
        .size()
        .next_power_of_two()
        .max(layout.align())
        .max(core::mem::size_of::<usize>())
}

/// A block for `layout` (the kernel heap's allocations), as a linear-map
/// pointer.
pub fn alloc_block(layout: Layout) -> Option<*mut u8> {
    FRAMES.lock().alloc(layout).ok().map(NonNull::as_ptr)
}

/// Return a block from [`alloc_block`].
///
/// # Safety
/// `ptr` came from [`alloc_block`] with this `layout`.
pub unsafe fn free_block(ptr: *mut u8, layout: Layout) {
    if let Some(p) = NonNull::new(ptr) {
        FRAMES.lock().dealloc(p, layout);
    }
}

/// Shrink a block from [`alloc_block`] of `old` bytes (its
/// [`block_size`]) to its first `new` bytes (a block size too, at most
/// `old`): the rest goes back, in place (a block is aligned to its size,
/// so its halves are blocks). The allocator's count of bytes requested
/// (`stats_alloc_user`, unused here) drifts by what the caller had not
/// asked for; the count of bytes in blocks, which [`stats`] reports, is
/// exact.
///
/// # Safety
/// `ptr` came from [`alloc_block`] with a block of `old` bytes, and
/// nothing uses its bytes past `new` any more.
pub unsafe fn free_tail(ptr: *mut u8, new: usize, old: usize) {
    let start = ptr as usize;
    release(&mut FRAMES.lock(), start + new, start + old);
}

/// Bytes an allocation of `pages` pages consumes, for accounting.
pub fn charge(pages: usize) -> u64 {
    (pages.max(1) as u64).saturating_mul(PAGE_SIZE)
}

/// Bytes of RAM the allocator manages, and how many are free.
pub fn stats() -> (u64, u64) {
    let f = FRAMES.lock();
    (
        f.stats_total_bytes() as u64,
        (f.stats_total_bytes() - f.stats_alloc_actual()) as u64,
    )
}
