//! Writing a read-only mapping faults (and reading it works).
#![no_std]
#![no_main]

use test_isolation::not_faulted;
use userlib::abi::{boot_info::StartInfo, FaultKind};
use userlib::vspace::Mapping;
use userlib::Rights;

userlib::entry!(main);

fn main(_: &StartInfo) {
    let page = Mapping::new(1, Rights::READ).expect("read-only memory");
    assert_eq!(page.as_slice()[0], 0, "new memory is zeroed");
    let addr = page.addr() + 8;
    userlib::test::expect_fault(FaultKind::DataAbort, Some(addr));
    // SAFETY: none: the page is mapped read-only; this write must fault,
    // which is the test.
    unsafe { core::ptr::write_volatile(addr as *mut u64, 1) };
    not_faulted(format_args!("wrote the read-only page at {addr:#x}"))
}
