//! Hardware abstraction for the Kestrel kernel.
//!
//! Everything here is board-independent: a board is described by its device
//! tree (see [`dt`]), never by code. Modules that touch CPU or device
//! registers are compiled only for AArch64; the pure logic (device-tree
//! reading, translation-table building) also builds and is tested on the host.
#![cfg_attr(not(test), no_std)]

pub mod dt;
pub mod esr;
pub mod mmio;
pub mod mmu;

#[cfg(target_arch = "aarch64")]
pub mod cpu;
// The GICv2 driver and the acknowledge value also build on the host, for
// their unit tests over plain memory; GICv3's system registers do not.
#[cfg(any(target_arch = "aarch64", test))]
pub mod gic;
#[cfg(target_arch = "aarch64")]
pub mod psci;
#[cfg(target_arch = "aarch64")]
pub mod semihosting;
pub mod timer;
