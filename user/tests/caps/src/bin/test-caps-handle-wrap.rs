//! A deleted handle stays invalid for good (issue 11, finding 9): one slot
//! is emptied and refilled past the point where a 12-bit generation
//! wrapped (4,096 cycles); the first handle never names the new objects.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use userlib::abi::boot_info::StartInfo;
use userlib::abi::{Error, ObjectType};
use userlib::{log, process, syscall};

userlib::entry!(main);

const CYCLES: u32 = 4096 + 100;

fn main(_: &StartInfo) {
    let pool = process().pool;
    let first = syscall::create(pool, ObjectType::Notification, 0).expect("create");
    syscall::cap_delete(first).expect("delete");
    // Lower free slots are filled (and kept) so that the same slot cycles.
    let mut held = Vec::new();
    let mut cycles = 0;
    while cycles < CYCLES {
        let h = syscall::create(pool, ObjectType::Notification, 0).expect("create");
        if h.index() != first.index() {
            held.push(h);
            assert!(held.len() < 4096, "the slot never came round again");
            continue;
        }
        cycles += 1;
        if h == first {
            userlib::fail(1, "a deleted handle names a new object");
        }
        match syscall::cap_info(first) {
            Err(Error::BadHandle) => {}
            _ => userlib::fail(1, "a deleted handle is valid again"),
        }
        syscall::cap_delete(h).expect("delete");
    }
    log::info!("{CYCLES} cycles of one slot: the first handle stayed invalid");
    for h in held {
        syscall::cap_delete(h).expect("delete");
    }
}
