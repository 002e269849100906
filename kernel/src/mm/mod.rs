//! Memory management: physical frames, the kernel heap and the kernel's
//! address space.

pub mod buddy;
pub mod extents;
pub mod layout;
pub mod pages;
pub mod physical;
pub mod regions;
pub mod small;

#[cfg(target_os = "none")]
pub mod frames;
#[cfg(target_os = "none")]
pub mod heap;
#[cfg(target_os = "none")]
pub mod kernel_space;

/// Memory the kernel could still hand out: free frames (the heap's blocks
/// come from them and go back when freed), plus kernel page tables (counted
/// as free here), so a change in this figure is a real allocation or leak.
#[cfg(target_os = "none")]
pub fn available_bytes() -> u64 {
    let (_, frames_free) = frames::stats();
    frames_free + kernel_space::table_bytes()
}
