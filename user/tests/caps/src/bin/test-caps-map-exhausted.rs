//! A map that runs out of memory for translation tables midway is all or
//! nothing (issue 11, finding 1): the task drains its pool to a few pages,
//! then maps across a 2 MiB boundary, where a second last-level table is
//! needed. Whatever the pool allowed, the map either succeeds whole or
//! fails with `OutOfMemory` leaving no page of the range mapped (before the
//! fix the first pages stayed mapped, unrecorded, and stayed so after the
//! memory was freed).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use userlib::abi::boot_info::StartInfo;
use userlib::abi::{Error, ObjectType, PAGE_SIZE};
use userlib::{log, process, syscall, Handle, Rights};

userlib::entry!(main);

/// Leave about `keep` bytes in this task's pool: pools made from it hold
/// the rest (returned by deleting them).
fn drain_to(keep: u64) -> Vec<Handle> {
    let me = process();
    let mut held = Vec::new();
    loop {
        let left = syscall::cap_info(me.pool).expect("pool info").size;
        if left <= keep + 1024 {
            return held;
        }
        match syscall::create(me.pool, ObjectType::Pool, left - keep - 1024) {
            Ok(p) => held.push(p),
            Err(e) => panic!("draining the pool: {e}"),
        }
    }
}

fn main(_: &StartInfo) {
    let me = process();
    let two_mib = 2 << 20;
    // Far from everything else: a fresh 1 GiB, so no tables exist there yet.
    let base = 0x70_0000_0000u64;
    let mut failed_partway = 0;
    for (round, keep) in (0..6u64).map(|b| b * PAGE_SIZE as u64 + 512).enumerate() {
        let va = base + round as u64 * (1 << 30) + two_mib - 2 * PAGE_SIZE as u64;
        let mem = syscall::create(me.pool, ObjectType::Memory, 4).expect("memory");
        let probe = syscall::create(me.pool, ObjectType::Memory, 1).expect("probe memory");
        let held = drain_to(keep);
        let result = syscall::map(me.task, mem, 4, 0, va, Rights::READ | Rights::WRITE);
        for p in held {
            syscall::cap_delete(p).expect("undrain");
        }
        match result {
            Ok(()) => {
                log::info!("pool of {keep} bytes: map succeeded");
                syscall::unmap(me.task, va, 4).expect("unmap");
            }
            Err(Error::OutOfMemory) => {
                failed_partway += 1;
                // No page of the range may be left mapped: each maps afresh.
                for i in 0..4 {
                    let at = va + i * PAGE_SIZE as u64;
                    match syscall::map(me.task, probe, 1, 0, at, Rights::READ) {
                        Ok(()) => syscall::unmap(me.task, at, 1).expect("unmap probe"),
                        Err(e) => userlib::fail(
                            1,
                            match e {
                                Error::AlreadyMapped => "a failed map left a page mapped",
                                _ => "probe map failed",
                            },
                        ),
                    }
                }
            }
            Err(e) => panic!("map with a pool of {keep} bytes: {e}"),
        }
        syscall::cap_delete(probe).expect("delete probe");
        syscall::cap_delete(mem).expect("delete memory");
    }
    assert!(failed_partway > 0, "the pool was never small enough to fail a map");
}
