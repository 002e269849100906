//! The kernel heap: one region of RAM managed by `linked_list_allocator`.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use linked_list_allocator::Heap;
use spin::Mutex;

struct KernelHeap(Mutex<Heap>);

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(Mutex::new(Heap::empty()));

// SAFETY: allocation and deallocation are serialised by the mutex and
// delegate to `Heap`, which upholds the GlobalAlloc contract.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0
            .lock()
            .allocate_first_fit(layout)
            .map_or(core::ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            self.0.lock().deallocate(p, layout);
        }
    }
}

/// Give the heap its memory.
///
/// # Safety
/// `[start, start + size)` must be mapped, writable, unused memory that
/// belongs to the heap from now on.
pub unsafe fn init(start: usize, size: usize) {
    HEAP.0.lock().init(start as *mut u8, size);
}

/// Heap size and bytes in use.
pub fn stats() -> (usize, usize) {
    let heap = HEAP.0.lock();
    (heap.size(), heap.used())
}
