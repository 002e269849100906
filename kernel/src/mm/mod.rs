//! Memory management: physical frames, the kernel heap and the kernel's
//! address space.

pub mod layout;
pub mod regions;

#[cfg(target_os = "none")]
pub mod frames;
#[cfg(target_os = "none")]
pub mod heap;
#[cfg(target_os = "none")]
pub mod kernel_space;
