//! The Kestrel microkernel.
//!
//! Boot order (see [`init`]): the boot stub turns the MMU on and calls
//! `kernel_main`, which reads the machine from the device tree, brings up the
//! console, memory, interrupts and timer, starts the other CPUs and prints
//! the banner. Pure logic (memory-region arithmetic, formatting) is built and
//! unit-tested on the host too; hardware-facing modules only for the target.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod boot_task;
pub mod cpu_slots;
pub mod mm;
pub mod object;
pub mod ratio;

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod cap;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod init;
#[cfg(target_os = "none")]
mod ipc;
#[cfg(target_os = "none")]
mod irq;
#[cfg(target_os = "none")]
pub mod ktest;
#[cfg(target_os = "none")]
mod logger;
#[cfg(target_os = "none")]
mod masked;
#[cfg(target_os = "none")]
mod panic;
#[cfg(target_os = "none")]
mod percpu;
#[cfg(target_os = "none")]
mod power;
#[cfg(target_os = "none")]
mod sched;
#[cfg(target_os = "none")]
mod smp;
#[cfg(target_os = "none")]
mod sync;
#[cfg(target_os = "none")]
mod syscall;
#[cfg(target_os = "none")]
mod task;
#[cfg(target_os = "none")]
mod thread;
#[cfg(target_os = "none")]
mod time;

/// Kernel version, shown in the banner.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Most CPUs the kernel runs on.
pub const MAX_CPUS: usize = 8;
