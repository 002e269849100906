//! An undefined instruction is reported to the supervisor.
#![no_std]
#![no_main]

use test_isolation::not_faulted;
use userlib::abi::{boot_info::StartInfo, FaultKind};

userlib::entry!(main);

fn main(_: &StartInfo) {
    userlib::test::expect_fault(FaultKind::UndefinedInstruction, None);
    // SAFETY: none: `udf` always traps, which is the test.
    unsafe { core::arch::asm!("udf #0x4b") };
    not_faulted(format_args!("udf did not trap"))
}
