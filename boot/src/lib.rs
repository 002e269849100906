//! Boot protocols for the Kestrel kernel.
//!
//! The image begins with a Linux arm64 Image header, so QEMU `-kernel`, U-Boot
//! `booti` and the Raspberry Pi firmware (`kernel8.img`) all load it. The entry
//! stub (`entry.S`) takes the DTB pointer from x0, leaves EL2 for EL1 if it
//! was entered at EL2, maps the image at its link address in the upper half
//! with W^X page permissions, turns the MMU on and calls the kernel:
//!
//! ```text
//! extern "C" fn kernel_main(dtb_pa: u64, image_pa: u64, entry_el: u64) -> !
//! extern "C" fn kernel_secondary_main(cpu_index: u64, stack_top: u64) -> !
//! ```
//!
//! Secondary CPUs enter at [`secondary_entry_offset`] from the image base,
//! claim [`SECONDARY_MAILBOX`] and find their stack there.
//!
//! The same image is an EFI application too (`efi.S`: a PE/COFF header inside
//! the Image header, as Linux does; [`efi`]: the EFI entry). Started by UEFI,
//! it takes the device tree from the configuration table and the RAM from
//! the memory map ([`efi_memory_map`]), exits boot services and enters the
//! stub above with the MMU off, like any other boot loader would.
#![cfg_attr(not(test), no_std)]

use core::sync::atomic::AtomicU64;

// One assembly unit, entry.S first: efi.S continues entry.S's .text.head
// (the PE header follows the 64-byte Image header) and branches to its
// local `primary_entry`.
#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(include_str!("entry.S"), include_str!("efi.S"));

pub mod efi;
pub use efi::{efi_memory_map, RamRange, EFI_MAP_CAPACITY, EFI_MEMORY_MAP};

/// Where the boot CPU tells a starting secondary CPU its stack and index.
///
/// The boot CPU fills it and cleans it to the point of coherency before it
/// releases the CPU. The CPU (`entry.S`, MMU on) first claims it: it swaps
/// [`SecondaryMailbox::offer`] from [`offered`]`(its MPIDR)` to
/// [`claimed`]`(its MPIDR)`, and only then takes the stack and index. If the
/// offer is not its own (the boot CPU gave up waiting for it and took the
/// offer back, or already offers the slot to another CPU), it parks in a
/// `wfe` loop without touching any stack. So a CPU that comes up late
/// never shares a stack or index with another.
#[repr(C)]
pub struct SecondaryMailbox {
    /// Top of the CPU's kernel stack (virtual address).
    pub stack_top: AtomicU64,
    /// Logical index of the CPU being started.
    pub cpu_index: AtomicU64,
    /// Whom the slot is offered to, and whether it was taken (see above);
    /// 0: to nobody.
    pub offer: AtomicU64,
}

// The offsets `entry.S` uses.
const _: () = {
    assert!(core::mem::offset_of!(SecondaryMailbox, stack_top) == 0);
    assert!(core::mem::offset_of!(SecondaryMailbox, cpu_index) == 8);
    assert!(core::mem::offset_of!(SecondaryMailbox, offer) == 16);
};

/// Bit 63 of [`SecondaryMailbox::offer`]: offered to that MPIDR.
pub const OFFERED: u64 = 1 << 63;
/// Bit 62: claimed by that MPIDR.
pub const CLAIMED: u64 = 1 << 62;

/// The offer word for the CPU with MPIDR affinity `affinity` (Aff3..Aff0,
/// as `hal::cpu::mpidr_affinity` gives it).
pub const fn offered(affinity: u64) -> u64 {
    affinity | OFFERED
}

/// The word once that CPU took the offer.
pub const fn claimed(affinity: u64) -> u64 {
    affinity | CLAIMED
}

/// The mailbox `entry.S` reads (by symbol name) on a secondary CPU.
#[no_mangle]
pub static SECONDARY_MAILBOX: SecondaryMailbox = SecondaryMailbox {
    stack_top: AtomicU64::new(0),
    cpu_index: AtomicU64::new(0),
    offer: AtomicU64::new(0),
};

/// Link-time virtual address of the image (see `link.ld`).
pub const KERNEL_VBASE: u64 = 0xffff_ffff_8000_0000;

#[cfg(target_arch = "aarch64")]
extern "C" {
    fn secondary_entry();
    static __image_start: u8;
    static __image_end: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __bss_start: u8;
    static __bss_end: u8;
    static __ktests_start: u8;
    static __ktests_end: u8;
    static boot_l0_hi: u8;
}

/// Virtual address ranges of the image's sections, from the linker script.
#[derive(Clone, Copy, Debug)]
pub struct ImageLayout {
    pub start: u64,
    pub text_end: u64,
    pub rodata_end: u64,
    pub bss_start: u64,
    pub bss_end: u64,
    pub end: u64,
    pub ktests_start: u64,
    pub ktests_end: u64,
    /// Virtual address of the root TTBR1 translation table built at boot.
    pub kernel_root_table: u64,
}

#[cfg(target_arch = "aarch64")]
pub fn image_layout() -> ImageLayout {
    // Only the addresses of linker symbols are taken; nothing is read.
    ImageLayout {
        start: core::ptr::addr_of!(__image_start) as u64,
        text_end: core::ptr::addr_of!(__text_end) as u64,
        rodata_end: core::ptr::addr_of!(__rodata_end) as u64,
        bss_start: core::ptr::addr_of!(__bss_start) as u64,
        bss_end: core::ptr::addr_of!(__bss_end) as u64,
        end: core::ptr::addr_of!(__image_end) as u64,
        ktests_start: core::ptr::addr_of!(__ktests_start) as u64,
        ktests_end: core::ptr::addr_of!(__ktests_end) as u64,
        kernel_root_table: core::ptr::addr_of!(boot_l0_hi) as u64,
    }
}

/// Offset of the secondary CPU entry point from the image base: add the
/// image's physical load address to get the address for PSCI `CPU_ON` or a
/// spin-table release.
#[cfg(target_arch = "aarch64")]
pub fn secondary_entry_offset() -> u64 {
    secondary_entry as *const () as u64 - core::ptr::addr_of!(__image_start) as u64
}
