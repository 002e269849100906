//! A panic reaches the supervisor as a `Panic` fault (the library's panic
//! handler exits nonzero; the kernel reports it).
#![no_std]
#![no_main]

use userlib::abi::{boot_info::StartInfo, FaultKind};

userlib::entry!(main);

fn main(_: &StartInfo) {
    userlib::test::expect_fault(FaultKind::Panic, Some(userlib::proto::PANIC_EXIT_CODE));
    panic!("deliberate panic (expected by this test)");
}
