//! After revoke, a page mapped through a derived capability is gone: the
//! next access faults.
#![no_std]
#![no_main]

use userlib::abi::{boot_info::StartInfo, FaultKind, ObjectType};
use userlib::{process, syscall, vspace, Rights};

userlib::entry!(main);

fn main(_: &StartInfo) {
    let me = process();
    let mem = syscall::create(me.pool, ObjectType::Memory, 1).expect("memory");
    let derived = syscall::cap_copy(mem, Rights::FULL).expect("copy");
    let addr = vspace::reserve(1);
    syscall::map(me.task, derived, 1, 0, addr, Rights::READ | Rights::WRITE).expect("map");
    // SAFETY: mapped read-write just above.
    unsafe { core::ptr::write_volatile(addr as *mut u64, 7) };
    syscall::cap_revoke(mem).expect("revoke");
    userlib::test::expect_fault(FaultKind::DataAbort, Some(addr));
    // SAFETY: none: revoke unmapped the page; this read must fault, which
    // is the test.
    let v = unsafe { core::ptr::read_volatile(addr as *const u64) };
    userlib::fail(
        1,
        if v == 7 {
            "the page is still mapped after revoke"
        } else {
            "read after revoke did not fault"
        },
    )
}
