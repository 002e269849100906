//! Kernel memory exhaustion on demand, for tests of the paths that must
//! fail cleanly (or not need memory at all) when it runs out.

use crate::mm::{frames, heap, layout};

/// While it lives, every free frame is taken and the kernel heap is full:
/// the next allocation of either fails. Dropping it gives everything back.
pub struct Exhausted {
    /// Taken blocks of frames, linked through their first words (no
    /// memory needed).
    frames: Option<u64>,
    /// Heap blocks, linked likewise.
    blocks: *mut usize,
}

const BLOCK: core::alloc::Layout = match core::alloc::Layout::from_size_align(16, 8) {
    Ok(l) => l,
    Err(_) => panic!("layout"),
};

impl Exhausted {
    pub fn all() -> Exhausted {
        let mut e = Exhausted {
            frames: None,
            blocks: core::ptr::null_mut(),
        };
        // Largest blocks first, so that it takes few steps.
        for order in (0..=20).rev() {
            while let Some(pa) = frames::alloc(1 << order) {
                // SAFETY: frames just taken, reached through the linear map:
                // the first two words hold the link and the block's order.
                unsafe {
                    let p = layout::phys_to_virt(pa) as *mut u64;
                    *p = e.frames.unwrap_or(u64::MAX);
                    *p.add(1) = order;
                }
                e.frames = Some(pa);
            }
        }
        loop {
            // SAFETY: a non-zero-size layout; the block is used only here.
            let p = unsafe { alloc::alloc::alloc(BLOCK) } as *mut usize;
            if p.is_null() {
                break;
            }
            // SAFETY: 16 writable bytes just allocated.
            unsafe { *p = e.blocks as usize };
            e.blocks = p;
        }
        e
    }

    /// Whether the heap is really full (an allocation fails).
    pub fn heap_full(&self) -> bool {
        heap::try_box(0u64).is_none()
    }
}

impl Drop for Exhausted {
    fn drop(&mut self) {
        while !self.blocks.is_null() {
            let p = self.blocks;
            // SAFETY: a block this value allocated, holding the next link.
            unsafe {
                self.blocks = *p as *mut usize;
                alloc::alloc::dealloc(p as *mut u8, BLOCK);
            }
        }
        while let Some(pa) = self.frames {
            // SAFETY: frames this value took, holding the link and order.
            let (next, order) = unsafe {
                let p = layout::phys_to_virt(pa) as *const u64;
                (*p, *p.add(1))
            };
            frames::free(pa, 1 << order);
            self.frames = (next != u64::MAX).then_some(next);
        }
    }
}
