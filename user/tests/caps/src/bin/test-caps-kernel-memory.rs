//! Kernel memory is a pool's, at its real size (issue 11, finding 2), run
//! on a 128 MiB machine (case `utest-virt-128m-kernel-memory`):
//! - a sibling pool of 5 MiB is set aside; then this task fills the rest
//!   of its pool with threads and endpoints (kernel objects on the kernel
//!   heap) until the kernel says `OutOfMemory`, which must be because the
//!   pool is spent, not the machine;
//! - the sibling pool's 5 MiB can then still be allocated, whole;
//! - after teardown the kernel's free memory is back (the heap keeps no
//!   frames; the object tables keep what they grew to, so a second round
//!   must give back everything), the kernel's self-check passes, and the
//!   whole pool can be allocated as one memory object.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use userlib::abi::boot_info::StartInfo;
use userlib::abi::{Error, ObjectType, PAGE_SIZE};
use userlib::{log, process, syscall, Handle};

userlib::entry!(main);

const SIBLING: u64 = 5 << 20;
/// Kernel memory that may stay in use after the first teardown: the object
/// tables (slabs) keep the capacity they grew to, in power-of-two blocks
/// (4,096 capabilities' entries take a 1 MiB block), and this task's
/// capability space its 4,096 slots (256 KiB, until it ends).
const SLACK_BYTES: u64 = 4 << 20;
/// What a second round may keep beyond the first: nothing but noise.
const ROUND_SLACK_BYTES: u64 = 64 * 1024;

fn left(pool: Handle) -> u64 {
    syscall::cap_info(pool).expect("pool info").size
}

extern "C" fn never_runs(_: u64) -> ! {
    syscall::thread_exit(0)
}

fn main(_: &StartInfo) {
    let me = process();
    let free = || syscall::kernel_stats(me.pool).expect("stats").free_bytes;
    let before = free();
    cycle();
    let once = free();
    // The second time round the kernel's tables have grown already: all of
    // the rest must come back.
    cycle();
    let twice = free();
    log::info!("kernel memory free: {before} before, {once} after one round, {twice} after two");
    assert!(
        once + SLACK_BYTES >= before,
        "the kernel kept {} bytes after teardown",
        before - once
    );
    assert!(
        twice + ROUND_SLACK_BYTES >= once,
        "a second round kept {} bytes more",
        once - twice
    );
    // And the pool is whole again: spend it in one memory object.
    let pages = left(me.pool) / PAGE_SIZE as u64 - 4;
    let mem = syscall::create(me.pool, ObjectType::Memory, pages).expect("the whole pool as memory");
    syscall::cap_delete(mem).expect("delete");
}

/// Fill the pool with kernel objects, check, and tear it all down.
fn cycle() {
    let me = process();
    let sibling = syscall::create(me.pool, ObjectType::Pool, SIBLING).expect("sibling pool");
    // Fill: threads (never started) and endpoints, until the kernel refuses.
    let mut held = Vec::new();
    held.try_reserve(4100).expect("room for handles");
    let error = loop {
        if held.len() >= 4000 {
            // Out of handles first: spend the rest of the pool in pools.
            let rest = left(me.pool).saturating_sub(1024);
            match syscall::create(me.pool, ObjectType::Pool, rest) {
                Ok(p) => held.push(p),
                Err(e) => break e,
            }
            continue;
        }
        let r = if held.len() % 2 == 0 {
            syscall::thread_create(me.pool, me.task, never_runs as *const () as u64, 0, 0, 0)
        } else {
            syscall::create(me.pool, ObjectType::Endpoint, 0)
        };
        match r {
            Ok(h) => held.push(h),
            Err(e) => break e,
        }
    };
    let pool_left = left(me.pool);
    log::info!(
        "filled: {} objects, then {error:?} with {pool_left} bytes left in the pool",
        held.len()
    );
    assert_eq!(error, Error::OutOfMemory, "filling the pool");
    assert!(
        pool_left < 4 * PAGE_SIZE as u64,
        "the kernel ran out with {pool_left} bytes still in the pool"
    );
    // The sibling's budget is real memory: all of it, in one piece.
    let pages = (SIBLING - 4096) / PAGE_SIZE as u64;
    let mem = syscall::create(sibling, ObjectType::Memory, pages).expect("the sibling pool's 5 MiB");
    syscall::cap_delete(mem).expect("delete");
    syscall::self_check().expect("kernel self-check (full)");
    for h in held {
        syscall::cap_delete(h).expect("delete");
    }
    syscall::cap_delete(sibling).expect("delete sibling");
    syscall::self_check().expect("kernel self-check (after teardown)");
}
