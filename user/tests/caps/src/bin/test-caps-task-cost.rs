//! ASIDs are charged (issue 11, finding 2): a task costs its pool a share
//! of the ASIDs (the root pool's size over their number), so taking every
//! ASID would take a pool as large as all of memory: no pool can starve
//! the others of tasks. Before, a task cost about 5 KiB, and 65,535 of
//! them (every 16-bit ASID) fit in a few hundred MiB.
#![no_std]
#![no_main]

use userlib::abi::boot_info::StartInfo;
use userlib::abi::ObjectType;
use userlib::{log, process, syscall};

userlib::entry!(main);

/// The most ASIDs a CPU has (16-bit); with fewer, each costs more.
const MOST_ASIDS: u64 = (1 << 16) - 1;

fn main(_: &StartInfo) {
    let me = process();
    let left = || syscall::cap_info(me.pool).expect("pool info").size;
    let before = left();
    let task = syscall::create(me.pool, ObjectType::Task, 0).expect("task");
    let cost = before - left();
    syscall::cap_delete(task).expect("delete");
    assert_eq!(left(), before, "deleting the task refunds it");
    let free = syscall::kernel_stats(me.counters).expect("stats").free_bytes;
    log::info!("a task costs {cost} bytes; {free} bytes of kernel memory free");
    assert!(
        cost.saturating_mul(MOST_ASIDS) >= free,
        "every ASID would cost only {} bytes, of {free} free",
        cost * MOST_ASIDS
    );
}
