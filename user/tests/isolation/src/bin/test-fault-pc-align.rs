//! Jumping to a misaligned address is an alignment fault.
#![no_std]
#![no_main]

use test_isolation::not_faulted;
use userlib::abi::{boot_info::StartInfo, FaultKind};

userlib::entry!(main);

fn main(_: &StartInfo) {
    let target = (not_faulted as *const () as u64) + 2;
    userlib::test::expect_fault(FaultKind::Alignment, Some(target));
    // SAFETY: none: a branch to a PC that is not 4-byte aligned faults,
    // which is the test.
    unsafe { core::arch::asm!("blr {}", in(reg) target, clobber_abi("C")) };
    not_faulted(format_args!("branched to the misaligned {target:#x}"))
}
