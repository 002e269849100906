//! An unknown system-call number is a fault (with the number as FAR), not
//! an error return.
#![no_std]
#![no_main]

use test_isolation::not_faulted;
use userlib::abi::{boot_info::StartInfo, FaultKind};

userlib::entry!(main);

const NUMBER: u64 = 0xdead;

fn main(_: &StartInfo) {
    userlib::test::expect_fault(FaultKind::BadSyscall, Some(NUMBER));
    // SAFETY: an unknown call has no effect on memory; it must fault.
    let r = unsafe { userlib::sys::syscall(NUMBER, &[0; 8]) };
    not_faulted(format_args!("system call {NUMBER:#x} returned {:#x}", r[0]))
}
