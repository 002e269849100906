//! Kernel work is bounded under the kernel lock (issue 11, finding 6).
//!
//! Three ways to make the kernel drop 32,768 mappings with one call: delete
//! the capability they were made through, revoke its parent, and delete
//! the last capability to a task they were made in (its teardown). Before,
//! each ran to its end under the kernel lock with interrupts masked: the
//! delete took 1.65 s, quadratic in the mappings, and a thread on another
//! CPU got no system call through meanwhile. Now each goes in bounded
//! pieces (the call is restarted between them). Under `-icount` (case
//! `utest-virt-icount-bounded`, where time is instructions, so the figures
//! do not depend on the host's load):
//! - a thread on another CPU keeps making system calls, and its longest
//!   wait for one is bounded;
//! - under `-icount` on one CPU (where the kernel's instruction count is
//!   that CPU's: under SMP QEMU counts the machine's), no stretch with
//!   interrupts masked is longer than 50,000 instructions.
//!
//! Elsewhere (every other `utest` run) it drops 4,096 mappings each way and
//! reports the figures, which follow the host's load, without bounds.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use userlib::abi::boot_info::StartInfo;
use userlib::abi::{ObjectType, PAGE_SIZE};
use userlib::{println, process, syscall, thread, Handle, Rights};

userlib::entry!(main);

/// Mappings dropped by each call: under -icount, and elsewhere.
const MAPPINGS_ICOUNT: u64 = 32_768;
const MAPPINGS_OTHER: u64 = 4_096;
/// Far from everything else (1 GiB apart per phase).
const BASE: u64 = 0x60_0000_0000;
/// The goal for a masked stretch, in instructions (under -icount).
const MASKED_GOAL: u64 = 50_000;
/// Longest wait for a system call on another CPU under -icount, in
/// microseconds of virtual time (about 1,000 instructions each; QEMU runs
/// the CPUs in turn, 10 ms each). Before, the wait was the whole delete
/// (1.64 s on a quiet host).
const WAIT_BOUND_US: u64 = 50_000;

static STOP: AtomicBool = AtomicBool::new(false);
static WORST_US: AtomicU64 = AtomicU64::new(0);
static CALLS: AtomicU64 = AtomicU64::new(0);

fn main(_: &StartInfo) {
    let me = process();
    let mem = syscall::create(me.pool, ObjectType::Memory, 1).expect("memory");
    // Under -icount the kernel measures masked stretches; elsewhere not.
    let icount = syscall::masked_max().is_ok();
    let watcher = (me.cpus > 1).then(|| {
        thread::Builder::default()
            .cpu(1)
            .spawn(|| {
                let mut prev = syscall::now_us();
                while !STOP.load(Ordering::Relaxed) {
                    let now = syscall::now_us();
                    WORST_US.fetch_max(now.saturating_sub(prev), Ordering::Relaxed);
                    CALLS.fetch_add(1, Ordering::Relaxed);
                    prev = now;
                }
            })
            .expect("a thread on CPU 1")
    });
    if watcher.is_some() {
        while CALLS.load(Ordering::Relaxed) < 100 {
            syscall::yield_now();
        }
    }
    let n = if icount { MAPPINGS_ICOUNT } else { MAPPINGS_OTHER };

    // 1. Delete the capability the mappings were made through.
    let through = syscall::cap_copy(mem, Rights::all()).expect("copy");
    map_many(me.task, through, BASE, n);
    phase("delete", n, icount, || syscall::cap_delete(through).expect("delete"));
    assert_unmapped(BASE, n);

    // 2. Revoke: the mappings were made through a child of `mem`.
    let child = syscall::cap_copy(mem, Rights::all()).expect("copy");
    map_many(me.task, child, BASE + (1 << 30), n);
    phase("revoke", n, icount, || syscall::cap_revoke(mem).expect("revoke"));
    assert_unmapped(BASE + (1 << 30), n);
    assert!(syscall::cap_info(child).is_err(), "the revoked child is gone");

    // 3. Teardown: the mappings are in a task whose last capability goes.
    let task = syscall::create(me.pool, ObjectType::Task, 0).expect("task");
    let through = syscall::cap_copy(mem, Rights::all()).expect("copy");
    map_many(task, through, BASE, n);
    phase("task teardown", n, icount, || {
        syscall::cap_delete(task).expect("delete task")
    });
    // The task is gone, so are its mappings: the capability records none.
    syscall::cap_delete(through).expect("delete");

    STOP.store(true, Ordering::Relaxed);
    if let Some(w) = watcher {
        w.join().expect("join the watcher");
    }
    syscall::cap_delete(mem).expect("delete memory");
    if let Err(e) = syscall::self_check() {
        if e != userlib::Error::NotSupported {
            panic!("kernel self-check: {e}");
        }
    }
}

/// Map one page `n` times, page after page from `base`, in `task`.
fn map_many(task: Handle, mem: Handle, base: u64, n: u64) {
    let start = syscall::now_us();
    for i in 0..n {
        syscall::map(task, mem, 1, 0, base + i * PAGE_SIZE as u64, Rights::READ)
            .unwrap_or_else(|e| panic!("mapping {i}: {e}"));
    }
    println!(
        "test-caps-bounded: {n} mappings made in {} us",
        syscall::now_us() - start
    );
}

/// Run `f` (which drops every mapping) and check the bounds.
fn phase(name: &str, n: u64, icount: bool, f: impl FnOnce()) {
    WORST_US.store(0, Ordering::Relaxed);
    let calls = CALLS.load(Ordering::Relaxed);
    let _ = syscall::masked_max();
    let start = syscall::now_us();
    f();
    let took = syscall::now_us() - start;
    let masked = syscall::masked_max();
    let worst = WORST_US.load(Ordering::Relaxed);
    let calls = CALLS.load(Ordering::Relaxed) - calls;
    let masked_text = masked.map_or(String::from("not measured (no -icount)"), |m| {
        format!("{m} instructions")
    });
    println!(
        "test-caps-bounded: {name} of {n} mappings took {took} us; another CPU made {calls} calls meanwhile, waiting at most {worst} us; longest masked stretch {masked_text}",
    );
    if icount && CALLS.load(Ordering::Relaxed) > 0 {
        assert!(
            worst < WAIT_BOUND_US,
            "{name}: another CPU waited {worst} us for a system call (bound {WAIT_BOUND_US} us)"
        );
        assert!(
            calls > 0 || took < WAIT_BOUND_US,
            "{name}: another CPU made no call in {took} us"
        );
    }
    if let (Ok(m), 1) = (masked, process().cpus) {
        assert!(icount);
        assert!(
            m <= MASKED_GOAL,
            "{name}: interrupts were masked for {m} instructions (goal {MASKED_GOAL})"
        );
    }
}

/// No page of the range is mapped any more: the first and last translate
/// to nothing (a new mapping there succeeds).
fn assert_unmapped(base: u64, n: u64) {
    let me = process();
    let probe = syscall::create(me.pool, ObjectType::Memory, 1).expect("probe");
    for va in [base, base + (n - 1) * PAGE_SIZE as u64] {
        syscall::map(me.task, probe, 1, 0, va, Rights::READ).unwrap_or_else(|e| panic!("{va:#x} is still mapped: {e}"));
        syscall::unmap(me.task, va, 1).expect("unmap the probe");
    }
    syscall::cap_delete(probe).expect("delete the probe");
}
