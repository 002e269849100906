//! Executing a page mapped without EXECUTE faults, even if it holds valid
//! code (here a `ret`).
#![no_std]
#![no_main]

use test_isolation::not_faulted;
use userlib::abi::{boot_info::StartInfo, FaultKind};
use userlib::vspace::Mapping;
use userlib::Rights;

userlib::entry!(main);

/// `ret`
const RET: u32 = 0xd65f_03c0;

fn main(_: &StartInfo) {
    let mut page = Mapping::new(1, Rights::READ | Rights::WRITE).expect("data memory");
    page.as_mut_slice()[..4].copy_from_slice(&RET.to_le_bytes());
    let addr = page.addr();
    userlib::test::expect_fault(FaultKind::InstructionAbort, Some(addr));
    // SAFETY: none: the page is not executable; the call must fault, which
    // is the test.
    let f: extern "C" fn() = unsafe { core::mem::transmute(addr as usize) };
    f();
    not_faulted(format_args!("executed the non-executable page at {addr:#x}"))
}
