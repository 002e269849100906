//! Memory management: physical frames, the kernel heap and the kernel's
//! address space.

pub mod layout;
pub mod physical;
pub mod regions;

#[cfg(target_os = "none")]
pub mod frames;
#[cfg(target_os = "none")]
pub mod heap;
#[cfg(target_os = "none")]
pub mod kernel_space;

/// Memory the kernel could still hand out: free frames plus free heap.
/// Growing the heap moves bytes between the two (plus page tables, counted
/// as free here), so a change in this figure is a real allocation or leak.
#[cfg(target_os = "none")]
pub fn available_bytes() -> u64 {
    let (_, frames_free) = frames::stats();
    let (heap_size, heap_used) = heap::stats();
    frames_free + (heap_size - heap_used) as u64 + kernel_space::table_bytes()
}
