//! A `Map` in pieces stopped midway (issue 11, findings 1 and 6).
//!
//! A `Map` of more than 1,024 pages goes in pieces, and the call is
//! restarted between them; meanwhile its mapping is recorded whole and
//! mapped from its start only. Here such a `Map` is stopped between two
//! pieces by everything else that can happen to it:
//! - its memory capability is deleted by another thread;
//! - the task it maps into is deleted by another thread;
//! - the mapping thread is killed (the mapping stays, partly mapped, until
//!   an `Unmap` of the whole range);
//! - another thread unmaps the range;
//! - a later piece runs out of memory for translation tables (the pool is
//!   too small for them: the `Map` fails and leaves nothing mapped).
//!
//! Each must end consistent: the kernel's self-check passes while the map
//! is stopped and after (mappings are mapped from their start, recorded in
//! their capability, pool charges add up), no page of the range stays
//! mapped (one `Map` of the whole range succeeds afterwards), and the pool
//! has every byte back.
//!
//! How it is stopped: the mapping thread runs below this one on this
//! thread's CPU, while this one sleeps about half the time a whole `Map`
//! takes. The timer's interrupt lands while the mapper is in the kernel and
//! is taken where the call is restarted, between two pieces; this thread
//! then looks whether the map is midway (charged to the pool, its last page
//! not mapped yet, the call not returned). If not (the host's pace), it
//! tries again with another delay; each stop must be reached midway once.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use userlib::abi::boot_info::StartInfo;
use userlib::abi::{Error, ObjectType, PAGE_SIZE};
use userlib::{println, process, syscall, thread, Handle, Rights};

userlib::entry!(main);

/// Far from everything else (its own 1 GiB).
const BASE: u64 = 0x68_0000_0000;
/// Pages of one piece of a `Map` (`MAP_PIECE_PAGES` in the kernel).
const PIECE: u64 = 1024;
/// Tries per stop before it fails: never midway.
const ATTEMPTS: u32 = 40;

/// The mapper's result: 0 while running, 1 for `Ok`, 2 + the error's code.
static RESULT: AtomicU64 = AtomicU64::new(0);
static DONE: AtomicBool = AtomicBool::new(false);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    DeleteMemoryCap,
    DeleteTask,
    KillMapper,
    Unmap,
}

fn left() -> u64 {
    syscall::cap_info(process().pool).expect("pool info").size
}

fn check_kernel(when: &str) {
    if let Err(e) = syscall::self_check() {
        if e != Error::NotSupported {
            panic!("kernel self-check {when}: {e}");
        }
    }
}

fn main(_: &StartInfo) {
    let me = process();
    // Eight pieces, or as many as the pool allows (at least two).
    let pages = (8 * PIECE).min(left() / 3 / PAGE_SIZE as u64);
    assert!(pages >= 2 * PIECE, "the pool is too small for a Map in pieces");
    let mem = syscall::create(me.pool, ObjectType::Memory, pages).expect("memory");
    let probe = syscall::create(me.pool, ObjectType::Memory, 1).expect("probe memory");
    // This thread's CPU: the mapper runs there, below it.
    let cpu = syscall::thread_info(me.thread).expect("thread info").cpu;
    syscall::thread_configure(me.thread, me.priority, Some(cpu)).expect("pin this thread");

    // How long a whole `Map` takes (and its tables are made, and stay).
    let t0 = syscall::now_us();
    syscall::map(me.task, mem, pages, 0, BASE, Rights::READ).expect("map the range");
    let whole_us = (syscall::now_us() - t0).max(2);
    syscall::unmap(me.task, BASE, pages).expect("unmap the range");
    // A thread's stack and buffers, and the heap, have their tables too.
    thread::spawn(|| {}).expect("a thread").join().expect("join");
    println!("test-caps-map-stopped: a Map of {pages} pages takes {whole_us} us");

    for stop in [Stop::DeleteMemoryCap, Stop::DeleteTask, Stop::KillMapper, Stop::Unmap] {
        stop_midway(stop, mem, probe, pages, cpu, whole_us);
    }
    out_of_tables(mem, probe, pages);
    syscall::cap_delete(probe).expect("delete the probe");
    syscall::cap_delete(mem).expect("delete memory");
    check_kernel("at the end");
    println!("test-caps-map-stopped: every stop midway ended consistent");
}

/// Whether `va` is mapped in `task`: a one-page map there fails with
/// `AlreadyMapped` (else it is undone).
fn mapped(task: Handle, probe: Handle, va: u64) -> bool {
    match syscall::map(task, probe, 1, 0, va, Rights::READ) {
        Ok(()) => {
            syscall::unmap(task, va, 1).expect("unmap the probe");
            false
        }
        Err(Error::AlreadyMapped) => true,
        Err(e) => panic!("probe at {va:#x}: {e}"),
    }
}

/// No page of the range is mapped: one `Map` of all of it succeeds.
fn assert_free(task: Handle, mem: Handle, pages: u64, what: &str) {
    match syscall::map(task, mem, pages, 0, BASE, Rights::READ) {
        Ok(()) => syscall::unmap(task, BASE, pages).expect("unmap the range"),
        Err(e) => panic!("{what}: a page of the range is still mapped ({e})"),
    }
}

/// Wait until the mapper has exited (it runs below this thread: its
/// `thread_exit` comes after its result), then free it: its charge is back
/// in the pool when this returns.
fn end(mapper: thread::JoinHandle) {
    let t0 = syscall::now_us();
    while syscall::thread_info(mapper.thread()).expect("thread info").state != Some(syscall::ThreadState::Dead) {
        assert!(syscall::now_us() - t0 < 10_000_000, "the mapper never ends");
        syscall::sleep(100);
    }
    mapper.join().expect("join the mapper");
}

fn result() -> Option<Result<(), Error>> {
    match RESULT.load(Ordering::Acquire) {
        0 => None,
        1 => Some(Ok(())),
        code => Some(Err(Error::check(code - 2).expect_err("an error"))),
    }
}

/// Start a `Map` of `pages` pages of `mem` at [`BASE`] in `task`, on a
/// thread below this one on `cpu`, stop it after about `delay_us`, and if
/// it is midway there, stop it by `stop`. Tried again with other delays
/// until once midway.
fn stop_midway(stop: Stop, mem: Handle, probe: Handle, pages: u64, cpu: usize, whole_us: u64) {
    let me = process();
    let mut delay = whole_us / 2;
    for attempt in 0..ATTEMPTS {
        let before = left();
        let target = match stop {
            Stop::DeleteTask => syscall::create(me.pool, ObjectType::Task, 0).expect("a task"),
            _ => me.task,
        };
        // The mapping is made through a copy, which the stop may delete.
        let through = syscall::cap_copy(mem, Rights::all()).expect("copy");
        RESULT.store(0, Ordering::Release);
        DONE.store(false, Ordering::Release);
        let mapper = thread::Builder::default()
            .cpu(cpu)
            .priority(me.priority.saturating_sub(1).max(1))
            .spawn(move || {
                let r = syscall::map(target, through, pages, 0, BASE, Rights::READ);
                RESULT.store(r.map_or_else(|e| e as u64 + 2, |()| 1), Ordering::Release);
                DONE.store(true, Ordering::Release);
            })
            .expect("the mapping thread");
        // Not started yet: it runs below this thread.
        let start = left();
        syscall::sleep(delay);
        let started = left() < start;
        let last = BASE + (pages - 1) * PAGE_SIZE as u64;
        let midway = started && !DONE.load(Ordering::Acquire) && !mapped(target, probe, last);
        if !midway {
            // Too soon or too late: the map finishes, and goes.
            end(mapper);
            if result() == Some(Ok(())) {
                syscall::unmap(target, BASE, pages).expect("unmap");
            }
            finish(stop, target, through, before, mem, pages);
            delay = if started { delay / 2 } else { delay * 2 }.max(1);
            continue;
        }
        // Midway: its first page is mapped, its last not.
        assert!(mapped(target, probe, BASE), "{stop:?}: the first piece is mapped");
        check_kernel("with a Map stopped midway");
        let expected: &[Error] = match stop {
            Stop::DeleteMemoryCap => {
                syscall::cap_delete(through).expect("delete the memory capability");
                // The restarted call finds its capability gone.
                &[Error::BadHandle]
            }
            Stop::DeleteTask => {
                syscall::cap_delete(target).expect("delete the task");
                &[Error::BadHandle]
            }
            Stop::Unmap => {
                syscall::unmap(target, BASE, pages).expect("unmap the range midway");
                // Removed by someone else meanwhile.
                &[Error::InvalidState]
            }
            Stop::KillMapper => {
                syscall::thread_suspend(mapper.thread()).expect("suspend the mapper");
                &[]
            }
        };
        check_kernel(&alloc::format!("after {stop:?} midway"));
        if stop == Stop::KillMapper {
            // Suspended, and its capability gone: killed in its call.
            drop(mapper);
            check_kernel("after the mapper was killed midway");
            assert!(!DONE.load(Ordering::Acquire), "the killed mapper returned");
            // Its mapping stays, partly mapped, until unmapped whole.
            assert!(
                mapped(target, probe, BASE),
                "the killed mapper's first piece stays mapped"
            );
            assert!(!mapped(target, probe, last), "the killed mapper's last page is mapped");
            syscall::unmap(target, BASE, pages).expect("unmap the killed mapper's range");
        } else {
            end(mapper);
            let r = result().expect("the mapper returned");
            assert!(
                matches!(r, Err(e) if expected.contains(&e)),
                "{stop:?} midway: the Map returned {r:?}, not one of {expected:?}"
            );
        }
        check_kernel(&alloc::format!("after the Map stopped by {stop:?}"));
        println!(
            "test-caps-map-stopped: {stop:?} midway (attempt {attempt}, after {delay} us): consistent, {}",
            match result() {
                None => alloc::string::String::from("the mapper killed in its call"),
                Some(r) => alloc::format!("the Map returned {r:?}"),
            }
        );
        if stop == Stop::DeleteMemoryCap {
            // The copy is gone already: take another for `finish`.
            let again = syscall::cap_copy(mem, Rights::all()).expect("copy");
            finish(stop, target, again, before, mem, pages);
        } else {
            finish(stop, target, through, before, mem, pages);
        }
        return;
    }
    panic!("{stop:?}: the Map was never stopped midway in {ATTEMPTS} tries");
}

/// After a try: no page of the range is mapped, the objects of the try
/// go, and the pool has every byte back.
fn finish(stop: Stop, target: Handle, through: Handle, before: u64, mem: Handle, pages: u64) {
    if stop == Stop::DeleteTask {
        // (Gone already after a stop midway: `BadHandle` then.)
        let _ = syscall::cap_delete(target);
    } else {
        assert_free(target, mem, pages, &alloc::format!("{stop:?}"));
    }
    syscall::cap_delete(through).expect("delete the copy");
    check_kernel("after a try");
    let after = left();
    assert_eq!(
        after, before,
        "{stop:?}: the pool has {after} bytes left, {before} before"
    );
}

/// Leave about `keep` bytes in this task's pool: pools made from it hold
/// the rest (returned by deleting them).
fn drain_to(keep: u64) -> Vec<Handle> {
    let me = process();
    let mut held = Vec::new();
    loop {
        let left = left();
        if left <= keep + 1024 {
            return held;
        }
        held.push(syscall::create(me.pool, ObjectType::Pool, left - keep - 1024).expect("draining the pool"));
    }
}

/// A `Map` whose second piece needs a translation table the pool cannot
/// pay for: its first piece's tables exist, the rest of the range (in a
/// fresh 1 GiB) has none. The `Map` fails with `OutOfMemory` after its
/// first piece, and leaves nothing mapped and nothing charged.
fn out_of_tables(mem: Handle, probe: Handle, pages: u64) {
    let me = process();
    let va = BASE + (1 << 30);
    // The first piece's tables: a page at each of its two 2 MiB ranges.
    for at in [va, va + 512 * PAGE_SIZE as u64] {
        assert!(!mapped(me.task, probe, at), "fresh range");
    }
    let before = left();
    let held = drain_to(512);
    let r = syscall::map(me.task, mem, pages, 0, va, Rights::READ);
    for p in held {
        syscall::cap_delete(p).expect("undrain");
    }
    assert_eq!(
        r,
        Err(Error::OutOfMemory),
        "a Map whose second piece has no memory for its tables"
    );
    check_kernel("after a Map out of tables midway");
    let after = left();
    assert_eq!(
        after, before,
        "out of tables: the pool has {after} bytes left, {before} before"
    );
    // Nothing of it stays mapped: the whole range maps now (making its
    // tables), and goes.
    syscall::map(me.task, mem, pages, 0, va, Rights::READ).expect("the range maps whole after the failed Map");
    syscall::unmap(me.task, va, pages).expect("unmap");
    check_kernel("at the end of out of tables");
    println!(
        "test-caps-map-stopped: a Map out of memory for tables after its first piece failed with OutOfMemory: nothing mapped, nothing charged"
    );
}
