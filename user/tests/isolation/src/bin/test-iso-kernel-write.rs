//! Writing kernel memory from EL0 faults.
#![no_std]
#![no_main]

use test_isolation::not_faulted;
use userlib::abi::{boot_info::StartInfo, FaultKind};

userlib::entry!(main);

/// Somewhere in the kernel's linear map of RAM (the upper half).
const KERNEL: u64 = 0xffff_0000_4000_0000;

fn main(_: &StartInfo) {
    userlib::test::expect_fault(FaultKind::DataAbort, Some(KERNEL));
    // SAFETY: none: this write must fault, which is the test.
    unsafe { core::ptr::write_volatile(KERNEL as *mut u64, 0xdead_beef) };
    not_faulted(format_args!("wrote kernel address {KERNEL:#x}"))
}
