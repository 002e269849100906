//! Reading kernel memory from EL0 faults (the kernel half is never
//! accessible to user space).
#![no_std]
#![no_main]

use test_isolation::not_faulted;
use userlib::abi::{boot_info::StartInfo, FaultKind};

userlib::entry!(main);

/// The kernel image's virtual base.
const KERNEL: u64 = 0xffff_ffff_8000_0000;

fn main(_: &StartInfo) {
    userlib::test::expect_fault(FaultKind::DataAbort, Some(KERNEL));
    // SAFETY: none: this read must fault, which is the test.
    let v = unsafe { core::ptr::read_volatile(KERNEL as *const u64) };
    not_faulted(format_args!("read {v:#x} from kernel address {KERNEL:#x}"))
}
