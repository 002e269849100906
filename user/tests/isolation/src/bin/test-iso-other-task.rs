//! Another task's memory is not reachable: a page mapped (with a known
//! value) into a second task at an address that is free here faults when
//! this task reads the same address.
#![no_std]
#![no_main]

use test_isolation::not_faulted;
use userlib::abi::{boot_info::StartInfo, FaultKind, ObjectType};
use userlib::vspace::Mapping;
use userlib::{process, syscall, Rights};

userlib::entry!(main);

const THEIRS: u64 = 0x7000_0000;

fn main(_: &StartInfo) {
    let me = process();
    let other = syscall::create(me.pool, ObjectType::Task, 0).expect("create a second task");
    let mut page = Mapping::new(1, Rights::READ | Rights::WRITE).expect("memory");
    page.as_mut_slice()[..8].copy_from_slice(&0x5ec2e7u64.to_le_bytes());
    syscall::map(other, page.handle(), 1, 0, THEIRS, Rights::READ).expect("map into the other task");
    userlib::test::expect_fault(FaultKind::DataAbort, Some(THEIRS));
    // SAFETY: none: THEIRS is mapped only in the other task; this read
    // must fault, which is the test.
    let v = unsafe { core::ptr::read_volatile(THEIRS as *const u64) };
    not_faulted(format_args!("read {v:#x} at {THEIRS:#x}, mapped only in another task"))
}
