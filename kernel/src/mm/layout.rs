//! The kernel's virtual address map (upper half, TTBR1, 48-bit).
//!
//! ```text
//! 0xffff_0000_0000_0000  linear map of all RAM (virtual = physical + base)
//! 0xffff_fc00_0000_0000  early mappings (the device tree)
//! 0xffff_fd00_0000_0000  kernel stacks, 64 KiB slots: 32 KiB guard + 32 KiB stack
//! 0xffff_fe00_0000_0000  device registers (Device-nGnRE)
//! 0xffff_ffff_8000_0000  the kernel image (text RX, rodata R, data RW)
//! ```

pub const PAGE_SIZE: u64 = 4096;
pub const LINEAR_BASE: u64 = 0xffff_0000_0000_0000;
/// The linear map covers physical addresses below this (64 TiB).
pub const LINEAR_LIMIT: u64 = 1 << 46;
pub const EARLY_BASE: u64 = 0xffff_fc00_0000_0000;
pub const EARLY_SIZE: u64 = 1 << 30;
pub const STACK_BASE: u64 = 0xffff_fd00_0000_0000;
/// A stack slot: the lower half is an unmapped guard, the upper half the stack.
/// Slots are aligned to their size so bit 15 of SP tells stack from guard.
pub const STACK_SLOT: u64 = 64 * 1024;
pub const STACK_SIZE: u64 = STACK_SLOT / 2;
pub const DEVICE_BASE: u64 = 0xffff_fe00_0000_0000;
pub const DEVICE_SIZE: u64 = 1 << 39;

/// Virtual address of physical `pa` in the linear map.
pub const fn phys_to_virt(pa: u64) -> u64 {
    pa + LINEAR_BASE
}

pub const fn align_down(x: u64, align: u64) -> u64 {
    x & !(align - 1)
}

pub const fn align_up(x: u64, align: u64) -> u64 {
    (x + align - 1) & !(align - 1)
}
