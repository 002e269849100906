//! The kernel heap: `linked_list_allocator` over a virtual window that grows
//! page by page from the frame allocator, so kernel objects draw on all of
//! RAM rather than a fixed carve-out.

use super::{frames, kernel_space, layout};
use crate::sync::ColdMutex as Mutex;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use linked_list_allocator::Heap;

struct KernelHeap(Mutex<Heap>);

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(Mutex::new(Heap::empty()));

/// Bytes added per growth step (at least the failed request).
const GROW_STEP: usize = 64 * 1024;

// SAFETY: allocation and deallocation are serialised by the mutex and
// delegate to `Heap`, which upholds the GlobalAlloc contract; growth only
// adds freshly mapped, unused memory at the heap's top.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        loop {
            if let Ok(p) = self.0.lock().allocate_first_fit(layout) {
                return p.as_ptr();
            }
            // The heap lock is released here: growing takes frames and page
            // tables, neither of which uses the heap.
            if !grow(layout.size() + layout.align()) {
                return core::ptr::null_mut();
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            self.0.lock().deallocate(p, layout);
        }
    }
}

/// Map more frames at the top of the heap window and give them to the heap.
fn grow(at_least: usize) -> bool {
    let bytes = layout::align_up(at_least.max(GROW_STEP) as u64, layout::PAGE_SIZE);
    let top = HEAP.0.lock().top() as u64;
    let mut mapped = 0;
    while mapped < bytes {
        let Some(pa) = frames::alloc_zeroed(1) else { break };
        if kernel_space::map_heap_page(top + mapped, pa).is_err() {
            frames::free(pa, 1);
            break;
        }
        mapped += layout::PAGE_SIZE;
    }
    if mapped == 0 {
        return false;
    }
    let mut heap = HEAP.0.lock();
    if heap.top() as u64 == top {
        // SAFETY: [top, top + mapped) was just mapped read-write and is unused.
        unsafe { heap.extend(mapped as usize) };
    }
    true
}

/// Give the heap its first pages at the start of the heap window.
pub fn init(initial: usize) -> bool {
    let base = layout::HEAP_BASE;
    let mut mapped = 0u64;
    while mapped < initial as u64 {
        let Some(pa) = frames::alloc_zeroed(1) else {
            return false;
        };
        if kernel_space::map_heap_page(base + mapped, pa).is_err() {
            return false;
        }
        mapped += layout::PAGE_SIZE;
    }
    // SAFETY: the window's first `mapped` bytes were just mapped read-write
    // and belong to the heap alone.
    unsafe { HEAP.0.lock().init(base as *mut u8, mapped as usize) };
    true
}

/// Heap size and bytes in use.
pub fn stats() -> (usize, usize) {
    let heap = HEAP.0.lock();
    (heap.size(), heap.used())
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
