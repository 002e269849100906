//! Kill while moving (issue 11): a thread is killed while it still runs
//! on a CPU that is no longer its own. A child task spins with FP/SIMD in
//! use on CPU `B` (so `B`'s FP registers are its); this task moves its
//! thread to CPU `H` and at once destroys the task. If the kill comes
//! before `B` took the move's interrupt, the thread is still current on
//! `B` while its own CPU is `H`: the kill must stop it where it runs and
//! forget it as `B`'s FP owner. The kernel's self-check (which holds that
//! a CPU's FP owner is the live thread it runs) runs after every round.
//!
//! Whether the kill wins that race depends on timing (under QEMU, on how
//! soon the host runs `B`'s thread); before the fix every round of the
//! first 16 left `B` with the dead thread as its FP owner. The program
//! fails on any self-check failure.
#![no_std]
#![no_main]

use userlib::abi::boot_info::StartInfo;
use userlib::loader::{self, Spawn};
use userlib::syscall::{self, ThreadState};
use userlib::{println, process};

userlib::entry!(main, heap = 64 * 1024);

const ROUNDS: u32 = 300;

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
    let mut failures = 0u32;
    for round in 0..ROUNDS {
        let child = loader::spawn(&Spawn {
            args: "spin",
            pool_bytes: 4 << 20,
            cpu: Some(b),
            ..Spawn::new(me.name(), elf)
        })
        .expect("start the spinner");
        // Running on B, and long enough to have used FP there.
        let t0 = syscall::now_us();
        loop {
            let i = syscall::thread_info(child.thread).expect("thread_info(spinner)");
            if i.state == Some(ThreadState::Running) && i.cpu == b {
                break;
            }
            assert!(
                syscall::now_us() - t0 < 10_000_000,
                "round {round}: the spinner never runs on CPU {b}: {i:?}"
            );
            syscall::yield_now();
        }
        spin_for(200);
        syscall::thread_configure(child.thread, me.priority, Some(h)).expect("move the spinner");
        // At once (nothing in between, to keep the window open).
        syscall::task_destroy(child.task).expect("destroy the spinner");
        child.destroy().expect("delete the spinner");
        // Let B switch away from the dead thread, then check.
        syscall::sleep_ms(1);
        if let Err(e) = syscall::self_check() {
            failures += 1;
            println!("test-smp-kill: round {round}: kernel self-check failed: {e}");
        }
    }
    println!(
        "test-smp-kill: {ROUNDS} threads killed just after a move from CPU {b} to {h}, {failures} self-check failures"
    );
    assert_eq!(failures, 0, "kernel self-check failed after a kill while moving");
}

/// Busy-wait `micros` microseconds.
fn spin_for(micros: u64) {
    let t0 = syscall::now_us();
    while syscall::now_us() - t0 < micros {
        core::hint::spin_loop();
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
