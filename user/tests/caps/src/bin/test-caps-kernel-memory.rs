//! Kernel memory is a pool's, at its real size (issue 11, finding 2), run
//! on a 128 MiB machine (case `utest-virt-128m-kernel-memory`):
//! - a sibling pool of 5 MiB is set aside; then this task fills the rest
//!   of its pool with threads and endpoints (kernel objects on the kernel
//!   heap) until the kernel says `OutOfMemory`, which must be because the
//!   pool is spent, not the machine;
//! - the sibling pool's 5 MiB can then still be allocated, whole, and
//!   the virtio-gpu driver, restarted (where there is one: case
//!   `utest-virt-128m-kernel-memory-gpu`), gets its DMA memory again;
//! - after teardown the kernel's free memory is back to the byte (alone,
//!   `profile=none`; else within what other tasks' objects hold), after
//!   each of two rounds (the heap keeps no frames; the object tables,
//!   capability spaces and lists give back what they grew to), the
//!   kernel's self-check passes, and the whole pool can be allocated as one
//!   memory object.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use userlib::abi::boot_info::StartInfo;
use userlib::abi::{Error, ObjectType, PAGE_SIZE};
use userlib::ipc::Timeout;
use userlib::names::{self, supervisor, Connection};
use userlib::services::display::{self, Info};
use userlib::{log, process, syscall, Handle, Message};

userlib::entry!(main);

const SIBLING: u64 = 5 << 20;
/// What the kernel's tables may stay grown by after a round when other
/// tasks run beside it (see `main`); alone, nothing.
const BESIDE_OTHERS_BYTES: u64 = 4 << 20;

fn left(pool: Handle) -> u64 {
    syscall::cap_info(pool).expect("pool info").size
}

extern "C" fn never_runs(_: u64) -> ! {
    syscall::thread_exit(0)
}

fn main(_: &StartInfo) {
    let me = process();
    let free = || syscall::kernel_stats(me.counters).expect("stats").free_bytes;
    // The log's connection is made by the first line: before the rounds,
    // so that it is not an object made during one that outlives it.
    log::info!("two rounds of filling the pool");
    let gpu = supervisor::devices()
        .unwrap_or_default()
        .iter()
        .any(|(_, text)| text.split_whitespace().nth(2) == Some("virtio-gpu"));
    if gpu {
        // The driver up first (its framebuffer allocated), so that the
        // figures before and after count it alike.
        display_info();
    }
    let before = free();
    cycle(gpu);
    let once = free();
    // Again: nothing is left over from the first round to be reused.
    cycle(gpu);
    let twice = free();
    log::info!("kernel memory free: {before} before, {once} after one round, {twice} after two");
    if process().args().split_whitespace().any(|w| w == "profile=none") {
        // Alone (no drivers or servers): exact. The heap keeps no frames,
        // and the tables (slabs, capability spaces, lists) give back what
        // the round made them grow to.
        assert_eq!(
            once,
            before,
            "the kernel kept {} bytes after teardown",
            before as i64 - once as i64
        );
        assert_eq!(
            twice,
            before,
            "a second round kept {} bytes",
            before as i64 - twice as i64
        );
    } else {
        // Beside a profile's tasks, an object one of them makes during a
        // round (its tables full) takes an entry at their end and holds
        // them at that size after the round; and they make and free
        // objects meanwhile.
        assert!(
            once + BESIDE_OTHERS_BYTES >= before,
            "the kernel kept {} bytes after teardown",
            before - once
        );
        assert!(
            twice + BESIDE_OTHERS_BYTES >= before,
            "the kernel kept {} bytes after two rounds",
            before - twice
        );
    }
    // And the pool is whole again: spend it in one memory object.
    let pages = left(me.pool) / PAGE_SIZE as u64 - 4;
    let mem = syscall::create(me.pool, ObjectType::Memory, pages).expect("the whole pool as memory");
    syscall::cap_delete(mem).expect("delete");
}

/// Fill the pool with kernel objects, check, and tear it all down.
fn cycle(gpu: bool) {
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
    // Room in this pool for one more capability (the memory's).
    syscall::cap_delete(held.pop().expect("objects")).expect("delete");
    let pages = (SIBLING - 4096) / PAGE_SIZE as u64;
    let mem = syscall::create(sibling, ObjectType::Memory, pages).expect("the sibling pool's 5 MiB");
    syscall::cap_delete(mem).expect("delete");
    if gpu {
        restart_display();
    }
    syscall::self_check().expect("kernel self-check (full)");
    for h in held {
        syscall::cap_delete(h).expect("delete");
    }
    syscall::cap_delete(sibling).expect("delete sibling");
    syscall::self_check().expect("kernel self-check (after teardown)");
}

/// With this pool spent, the virtio-gpu driver is restarted: it allocates
/// its framebuffer's DMA memory again, from its own pool, and must come
/// back (on the old kernel heap it could not, and stayed down).
fn restart_display() {
    supervisor::restart("virtio-gpu").expect("restart virtio-gpu");
    let info = display_info();
    log::info!(
        "virtio-gpu restarted with this pool spent: {}x{} framebuffer",
        info.width,
        info.height
    );
}

/// The `display` service's INFO, waiting for it to be there (the
/// connection is not kept: no object made during a round outlives it).
fn display_info() -> Info {
    let ep = names::connect(display::NAME, Timeout::millis(20_000)).expect("the display service");
    let reply = Connection::with_endpoint(display::NAME, ep)
        .call(&Message::new(display::INFO), Timeout::millis(5_000))
        .expect("INFO from virtio-gpu");
    syscall::cap_delete(ep).expect("delete");
    Info::from_words(reply.words()).expect("INFO reply")
}
