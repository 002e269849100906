//! Translation tables go with the mappings that needed them (issue 11, a
//! limit of docs/SECURITY.md): a task that maps one page at ever new
//! addresses, each in a gigabyte of its own (a new last-level and a new
//! second-level table each time, and a new first-level table past each
//! 512 GiB), and unmaps it again, gets its pool back to the same figure
//! after every unmap. Before, every table stayed until the task's
//! teardown, charged to its pool: 8 KiB a gigabyte, 2 MiB after 256.
//!
//! Each page is written through the new mapping and read back, and the
//! address is mapped again to a second memory object, which must be what
//! it reads: no stale walk through a freed table.
#![no_std]
#![no_main]

use userlib::abi::boot_info::StartInfo;
use userlib::abi::{ObjectType, PAGE_SIZE};
use userlib::{log, process, syscall, Handle, Rights};

userlib::entry!(main);

/// Far from everything else: 1 GiB apart from 256 GiB up to 512 GiB (the
/// first 512 GiB's first-level table stays: the program lives there).
const BASE: u64 = 256 << 30;
const GIB_ROUNDS: u64 = 256;
/// Then at 512 GiB apart, each in a first-level table of its own.
const L0_ROUNDS: u64 = 16;

/// Bytes left in this task's pool.
fn left() -> u64 {
    syscall::cap_info(process().pool).expect("pool info").size
}

/// Map `mem` at `va`, check its first word is `value` (as last written,
/// or still zero), write `next` there, unmap.
fn touch(mem: Handle, va: u64, value: u64, next: u64) {
    let me = process();
    syscall::map(me.task, mem, 1, 0, va, Rights::READ | Rights::WRITE).expect("map");
    let word = va as *mut u64;
    // SAFETY: the page was just mapped read-write in this task; nothing
    // else refers to it.
    let found = unsafe { core::ptr::read_volatile(word) };
    assert_eq!(found, value, "the word at {va:#x}: a stale translation?");
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(word, next) };
    syscall::unmap(me.task, va, 1).expect("unmap");
}

fn main(_: &StartInfo) {
    let me = process();
    let a = syscall::create(me.pool, ObjectType::Memory, 1).expect("memory");
    let b = syscall::create(me.pool, ObjectType::Memory, 1).expect("memory");
    let addresses = (0..GIB_ROUNDS)
        .map(|i| BASE + (i << 30))
        .chain((1..=L0_ROUNDS).map(|i| (i << 39) + PAGE_SIZE as u64));
    let (mut rounds, mut kept, mut first_kept) = (0u64, 0u64, None);
    for (i, va) in addresses.enumerate() {
        let before = left();
        // `a` then `b` at the same address, each found as last written.
        let i = i as u64;
        touch(a, va, if i == 0 { 0 } else { 2 * i - 1 }, 2 * i + 1);
        touch(b, va, if i == 0 { 0 } else { 2 * i }, 2 * i + 2);
        let after = left();
        if after != before {
            kept += before - after;
            first_kept.get_or_insert((va, before - after));
        }
        rounds += 1;
    }
    match first_kept {
        None => log::info!(
            "{rounds} maps and unmaps at fresh addresses: the pool back to its figure after each unmap"
        ),
        Some((va, bytes)) => log::info!(
            "{rounds} maps and unmaps at fresh addresses: {kept} bytes of the pool kept after the unmaps ({bytes} after the first, at {va:#x})"
        ),
    }
    assert_eq!(kept, 0, "translation tables kept after their last mapping went");
    syscall::cap_delete(a).expect("delete");
    syscall::cap_delete(b).expect("delete");
    if let Err(e) = syscall::self_check() {
        if e != userlib::Error::NotSupported {
            panic!("kernel self-check: {e}");
        }
    }
}
