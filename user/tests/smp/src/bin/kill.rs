//! Kill while moving (issue 11): a thread is killed while it still runs
//! on a CPU that is no longer its own. A child task spins with FP/SIMD in
//! use on CPU `B` (so `B`'s FP registers are its); this task moves its
//! thread to CPU `H` and at once destroys the task. The kill comes while
//! the thread is still current on `B` (whose kernel has not yet taken the
//! move's interrupt) and its own CPU is `H`: the kill must stop it where it
//! runs and forget it as `B`'s FP owner. The kernel's self-check (which
//! holds that a CPU's FP owner is the live thread it runs) runs after every
//! round.
//!
//! Each round starts from a known state: the victim runs on `B` and has run
//! there long enough to have used FP (its CPU time, read before the move).
//! Right after the move, before the kill, this task reads where the victim
//! runs: a round counts as in the window when it is still `B`. Under QEMU
//! `-icount` (case `utest-smp-kill`) the CPUs take turns on one host
//! thread, so `B` cannot take the move's interrupt until this CPU's turn
//! ends. Nearly every round is in the window, but not all: a turn can end
//! between the move and the kill (where turns end depends on the whole
//! run's instruction counts, the RTC's date among them; a fresh-root CI
//! run once saw 99 of 100). So under `-icount` rounds are made until 100
//! were in the window, at most 150, and fewer than 100 fails (before the
//! fix, every round in the window left `B` with the dead thread as its FP
//! owner). Elsewhere (multi-threaded QEMU, the full `utest` runs) the
//! window is the host's race and the rounds in it are only counted. The
//! program fails on any self-check failure.
#![no_std]
#![no_main]

use userlib::abi::boot_info::StartInfo;
use userlib::loader::{self, Spawn};
use userlib::syscall::{self, ThreadState};
use userlib::{println, process};

userlib::entry!(main, heap = 64 * 1024);

/// Rounds: under -icount, rounds in the window (see the top) and the most
/// rounds made to get them; elsewhere a number of rounds, each a race.
const IN_WINDOW_ICOUNT: u32 = 100;
const ROUNDS_ICOUNT_MAX: u32 = 150;
const ROUNDS: u32 = 300;
/// CPU time the victim has had before the move (microseconds): its loop
/// uses FP/SIMD at every step, so its FP state is live on its CPU.
const FP_RUN_US: u64 = 100;

fn main(start: &StartInfo) {
    if start.args() == "spin" {
        spin();
    }
    let me = process();
    let cpus = me.cpus as usize;
    if cpus < 2 {
        println!("test-smp-kill: 1 CPU: nothing to test");
        return;
    }
    // This thread on CPU 0, the victim on 1, moved to 2 (or to 0 on two
    // CPUs) before it is killed.
    let (a, b) = (0, 1);
    let h = if cpus > 2 { 2 } else { a };
    syscall::thread_configure(me.thread, me.priority, Some(a)).expect("pin the killer");
    let elf = loader::find_program(me.name()).expect("find myself in the archive");
    // Under -icount the kernel counts instructions (see the top).
    let icount = syscall::masked_max().is_ok();
    let max_rounds = if icount { ROUNDS_ICOUNT_MAX } else { ROUNDS };
    let mut failures = 0u32;
    let mut in_window = 0u32;
    let mut rounds = 0u32;
    while rounds < max_rounds && !(icount && in_window == IN_WINDOW_ICOUNT) {
        let round = rounds;
        rounds += 1;
        let child = loader::spawn(&Spawn {
            args: "spin",
            pool_bytes: 4 << 20,
            cpu: Some(b),
            ..Spawn::new(me.name(), elf)
        })
        .expect("start the spinner");
        // The known state: running on B, and long enough there to have
        // used FP (its loop does at every step).
        let t0 = syscall::now_us();
        loop {
            let i = syscall::thread_info(child.thread).expect("thread_info(spinner)");
            if i.state == Some(ThreadState::Running) && i.cpu == b && i.cpu_micros >= FP_RUN_US {
                break;
            }
            assert!(
                syscall::now_us() - t0 < 10_000_000,
                "round {round}: the spinner never runs on CPU {b}: {i:?}"
            );
            syscall::yield_now();
        }
        syscall::thread_configure(child.thread, me.priority, Some(h)).expect("move the spinner");
        // Still running on B (which has not handed it over yet)?
        let after_move = syscall::thread_info(child.thread).expect("thread_info after the move");
        syscall::task_destroy(child.task).expect("destroy the spinner");
        if after_move.state == Some(ThreadState::Running) && after_move.cpu == b {
            in_window += 1;
        }
        child.destroy().expect("delete the spinner");
        // Let B switch away from the dead thread, then check.
        syscall::sleep_ms(1);
        if let Err(e) = syscall::self_check() {
            failures += 1;
            println!("test-smp-kill: round {round}: kernel self-check failed: {e}");
        }
    }
    println!(
        "test-smp-kill: {rounds} threads killed just after a move from CPU {b} to {h}, {in_window} still running on {b} when killed, {failures} self-check failures"
    );
    assert_eq!(failures, 0, "kernel self-check failed after a kill while moving");
    if icount {
        assert_eq!(
            in_window, IN_WINDOW_ICOUNT,
            "under -icount {IN_WINDOW_ICOUNT} kills must come while the thread still runs on CPU {b} ({in_window} of {rounds} rounds did)"
        );
    }
}

/// The victim: FP/SIMD registers in use, forever.
fn spin() -> ! {
    let mut x = 1.0f64;
    loop {
        x = core::hint::black_box(x) * 1.000_001 + 0.5;
        if x > 1e12 {
            x = 1.0;
        }
    }
}
