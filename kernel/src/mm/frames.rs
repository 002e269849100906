//! Physical page frames: every free page of RAM, in a buddy system
//! ([`super::pages`]), and the kernel heap's blocks, which come from it:
//! whole pages from a page up, smaller ones from pages of small blocks
//! ([`super::small`]). A freed block merges with its free buddy, so memory
//! the kernel's objects gave back is whole pages again, for any use. Every
//! allocation and free takes a bounded number of steps.
//!
//! The allocator keeps its free lists inside the free blocks (reached
//! through the linear map), and its spans and bit maps in memory set aside
//! at boot and at the end of each page of small blocks, so it never needs
//! the kernel heap.

use super::layout::{phys_to_virt, LINEAR_BASE, PAGE_SIZE};
use super::pages::{Pages, SetupError, PAGE};
use super::regions::Range;
use super::small::{self, Small};
use crate::sync::ColdMutex as Mutex;
use core::alloc::Layout;

struct Frames {
    pages: Pages,
    small: Small,
}

static FRAMES: Mutex<Frames> = Mutex::new(Frames {
    pages: Pages::empty(),
    small: Small::new(),
});

/// Hand the free ranges (sorted, disjoint, page aligned, linear-mapped) to
/// the allocator; its spans and bit maps come from the first that holds
/// them. Once, at boot.
pub fn set_up(ranges: impl Iterator<Item = Range> + Clone) -> Result<(), SetupError> {
    let linear = ranges.map(|r| (phys_to_virt(r.start) as usize, phys_to_virt(r.end) as usize));
    // SAFETY: the ranges are free RAM, mapped read-write in the linear map
    // and owned by nobody else (computed from the device tree at boot);
    // `init` calls this once.
    unsafe { FRAMES.lock().pages.set_up(linear) }
}

/// The order of the smallest block of at least `pages` pages (past the
/// largest order for more pages than any block holds).
fn order(pages: usize) -> usize {
    pages
        .checked_next_power_of_two()
        .map_or(usize::MAX, |p| p.trailing_zeros() as usize)
}

/// Allocate `pages` physically contiguous pages, aligned to the next power
/// of two; returns the physical address. Only `pages` pages are taken: the
/// rest of the power-of-two block goes straight back (an 806 KiB frame
/// buffer must not cost 1 MiB on a 4 MiB watch).
pub fn alloc(pages: usize) -> Option<u64> {
    let pages = pages.max(1);
    let order = order(pages);
    let mut frames = FRAMES.lock();
    let start = frames.pages.alloc(order)?;
    frames.pages.release(start + pages * PAGE, start + (PAGE << order));
    Some(start as u64 - LINEAR_BASE)
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
            // Four blocks a turn while four fit (a page holds a multiple of
            // four blocks of up to 1 KiB): a loop's compare and branch per
            // four blocks, not per block (the boot's zeroing of the page
            // maps, 32 KiB for 1 GiB, saves about 800 instructions).
            while at + 4 * block <= end {
                // SAFETY: as below, for four blocks in the caller's frames.
                unsafe {
                    core::arch::asm!(
                        "dc zva, {a}", "add {a}, {a}, {b}", "dc zva, {a}", "add {a}, {a}, {b}",
                        "dc zva, {a}", "add {a}, {a}, {b}", "dc zva, {a}", "add {a}, {a}, {b}",
                        a = inout(reg) at, b = in(reg) block, options(nostack)
                    )
                };
            }
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
    FRAMES.lock().pages.release(start, start + pages.max(1) * PAGE);
}

/// Size of the block [`alloc_block`] takes for `layout`
/// ([`small::block_bytes`]).
pub fn block_size(layout: Layout) -> usize {
    small::block_bytes(layout.size(), layout.align())
}

/// A block for `layout` (the kernel heap's allocations), as a linear-map
/// pointer.
pub fn alloc_block(layout: Layout) -> Option<*mut u8> {
    let bytes = block_size(layout);
    let mut f = FRAMES.lock();
    let Frames { pages, small } = &mut *f;
    let block = if bytes <= small::LARGEST {
        small.alloc(small::class_of(bytes), pages)?
    } else {
        pages.alloc((bytes / PAGE).trailing_zeros() as usize)?
    };
    Some(block as *mut u8)
}

/// Return a block from [`alloc_block`].
///
/// # Safety
/// `ptr` came from [`alloc_block`] with this `layout`, and nobody uses it
/// any more.
pub unsafe fn free_block(ptr: *mut u8, layout: Layout) {
    let bytes = block_size(layout);
    let mut f = FRAMES.lock();
    let Frames { pages, small } = &mut *f;
    if bytes <= small::LARGEST {
        // SAFETY: a small block of this size (caller).
        unsafe { small.free(ptr as usize, small::class_of(bytes), pages) };
    } else {
        // SAFETY: a page block of this order (caller).
        unsafe { pages.free(ptr as usize, (bytes / PAGE).trailing_zeros() as usize) };
    }
}

/// Shrink a block from [`alloc_block`] of `old` bytes (its
/// [`block_size`]) to its first `new` bytes (a block size too, at most
/// `old`): the rest goes back, in place (a block is aligned to its size,
/// so its halves are blocks). A page block shrunk below a page becomes a
/// page of small blocks. Takes no memory, so it cannot fail.
///
/// # Safety
/// `ptr` came from [`alloc_block`] with a block of `old` bytes, and
/// nothing uses its bytes past `new` any more.
pub unsafe fn free_tail(ptr: *mut u8, new: usize, old: usize) {
    let start = ptr as usize;
    let mut f = FRAMES.lock();
    let Frames { pages, small } = &mut *f;
    if old <= small::LARGEST {
        // SAFETY: a small block of `old` bytes, its end unused (caller).
        unsafe { small.free_tail(start, small::class_of(new), small::class_of(old)) };
        return;
    }
    pages.release(start + new.max(PAGE), start + old);
    if new < PAGE {
        // SAFETY: a one-page block now, its bytes past `new` unused.
        unsafe { small.adopt(start, small::class_of(new)) };
    }
}

/// Bytes an allocation of `pages` pages consumes, for accounting.
pub fn charge(pages: usize) -> u64 {
    (pages.max(1) as u64).saturating_mul(PAGE_SIZE)
}

/// Bytes of RAM the allocator manages, and how many are free (in free
/// pages and free small blocks).
pub fn stats() -> (u64, u64) {
    let f = FRAMES.lock();
    let (total, used) = f.pages.stats();
    (total as u64, (total - used + f.small.free_bytes()) as u64)
}
