//! Register stress (issue 11, finding 10): threads yield in a loop with
//! every register holding a known value (x0-x30, q0-q31), while another
//! thread keeps moving them between CPUs and suspending and resuming them.
//! After each yield every register must read back what was put there: a
//! context switch, migration or IPI path that loses the registers of a
//! thread (for example storing them after another CPU already resumed it)
//! shows here as a wrong value, reported with the register and iteration.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use userlib::abi::boot_info::StartInfo;
use userlib::test::Rng;
use userlib::{println, process, syscall, thread, Timeout};

userlib::entry!(main, heap = 1 << 20);

/// Migrations (affinity changes that move a yielder to another CPU) the
/// mover makes before it stops the yielders.
const MIGRATIONS: u64 = 3000;
/// Suspend/resume pairs the mover makes at least (the only kind on 1 CPU).
const SUSPENDS: u64 = 1000;
/// Every yielder must have checked its registers at least this often.
const MIN_ROUNDS: u64 = 200;
/// The test fails rather than run longer than this.
const LIMIT_US: u64 = 150_000_000;
const SEED: u64 = 0x5eed_2e65;

static STOP: AtomicBool = AtomicBool::new(false);
static ROUNDS: [AtomicU64; 16] = [const { AtomicU64::new(0) }; 16];

/// What `regs_yield` saw after the yield: x0-x30, then q0-q31 (low, high).
#[repr(C)]
struct Capture {
    x: [u64; 31],
    _pad: u64,
    q: [[u64; 2]; 32],
}

extern "C" {
    /// Fill x1-x30 (x8 excepted) with `base + (r << 12)` and q0-q31 with
    /// `base + ((32 + j) << 12)` (low) and `base + ((64 + j) << 12)` (high),
    /// yield, and store every register as it came back into `out`.
    fn regs_yield(base: u64, out: *mut Capture);
}

core::arch::global_asm!(
    ".global regs_yield",
    "regs_yield:",
    "sub sp, sp, #960",
    "stp x19, x20, [sp, #0]",
    "stp x21, x22, [sp, #16]",
    "stp x23, x24, [sp, #32]",
    "stp x25, x26, [sp, #48]",
    "stp x27, x28, [sp, #64]",
    "stp x29, x30, [sp, #80]",
    "stp d8, d9, [sp, #96]",
    "stp d10, d11, [sp, #112]",
    "stp d12, d13, [sp, #128]",
    "stp d14, d15, [sp, #144]",
    "str x1, [sp, #160]",
    "str x18, [sp, #168]",
    "add x8, x0, #32, lsl #12",
    "fmov d0, x8",
    "add x8, x0, #64, lsl #12",
    "fmov v0.d[1], x8",
    "add x8, x0, #33, lsl #12",
    "fmov d1, x8",
    "add x8, x0, #65, lsl #12",
    "fmov v1.d[1], x8",
    "add x8, x0, #34, lsl #12",
    "fmov d2, x8",
    "add x8, x0, #66, lsl #12",
    "fmov v2.d[1], x8",
    "add x8, x0, #35, lsl #12",
    "fmov d3, x8",
    "add x8, x0, #67, lsl #12",
    "fmov v3.d[1], x8",
    "add x8, x0, #36, lsl #12",
    "fmov d4, x8",
    "add x8, x0, #68, lsl #12",
    "fmov v4.d[1], x8",
    "add x8, x0, #37, lsl #12",
    "fmov d5, x8",
    "add x8, x0, #69, lsl #12",
    "fmov v5.d[1], x8",
    "add x8, x0, #38, lsl #12",
    "fmov d6, x8",
    "add x8, x0, #70, lsl #12",
    "fmov v6.d[1], x8",
    "add x8, x0, #39, lsl #12",
    "fmov d7, x8",
    "add x8, x0, #71, lsl #12",
    "fmov v7.d[1], x8",
    "add x8, x0, #40, lsl #12",
    "fmov d8, x8",
    "add x8, x0, #72, lsl #12",
    "fmov v8.d[1], x8",
    "add x8, x0, #41, lsl #12",
    "fmov d9, x8",
    "add x8, x0, #73, lsl #12",
    "fmov v9.d[1], x8",
    "add x8, x0, #42, lsl #12",
    "fmov d10, x8",
    "add x8, x0, #74, lsl #12",
    "fmov v10.d[1], x8",
    "add x8, x0, #43, lsl #12",
    "fmov d11, x8",
    "add x8, x0, #75, lsl #12",
    "fmov v11.d[1], x8",
    "add x8, x0, #44, lsl #12",
    "fmov d12, x8",
    "add x8, x0, #76, lsl #12",
    "fmov v12.d[1], x8",
    "add x8, x0, #45, lsl #12",
    "fmov d13, x8",
    "add x8, x0, #77, lsl #12",
    "fmov v13.d[1], x8",
    "add x8, x0, #46, lsl #12",
    "fmov d14, x8",
    "add x8, x0, #78, lsl #12",
    "fmov v14.d[1], x8",
    "add x8, x0, #47, lsl #12",
    "fmov d15, x8",
    "add x8, x0, #79, lsl #12",
    "fmov v15.d[1], x8",
    "add x8, x0, #48, lsl #12",
    "fmov d16, x8",
    "add x8, x0, #80, lsl #12",
    "fmov v16.d[1], x8",
    "add x8, x0, #49, lsl #12",
    "fmov d17, x8",
    "add x8, x0, #81, lsl #12",
    "fmov v17.d[1], x8",
    "add x8, x0, #50, lsl #12",
    "fmov d18, x8",
    "add x8, x0, #82, lsl #12",
    "fmov v18.d[1], x8",
    "add x8, x0, #51, lsl #12",
    "fmov d19, x8",
    "add x8, x0, #83, lsl #12",
    "fmov v19.d[1], x8",
    "add x8, x0, #52, lsl #12",
    "fmov d20, x8",
    "add x8, x0, #84, lsl #12",
    "fmov v20.d[1], x8",
    "add x8, x0, #53, lsl #12",
    "fmov d21, x8",
    "add x8, x0, #85, lsl #12",
    "fmov v21.d[1], x8",
    "add x8, x0, #54, lsl #12",
    "fmov d22, x8",
    "add x8, x0, #86, lsl #12",
    "fmov v22.d[1], x8",
    "add x8, x0, #55, lsl #12",
    "fmov d23, x8",
    "add x8, x0, #87, lsl #12",
    "fmov v23.d[1], x8",
    "add x8, x0, #56, lsl #12",
    "fmov d24, x8",
    "add x8, x0, #88, lsl #12",
    "fmov v24.d[1], x8",
    "add x8, x0, #57, lsl #12",
    "fmov d25, x8",
    "add x8, x0, #89, lsl #12",
    "fmov v25.d[1], x8",
    "add x8, x0, #58, lsl #12",
    "fmov d26, x8",
    "add x8, x0, #90, lsl #12",
    "fmov v26.d[1], x8",
    "add x8, x0, #59, lsl #12",
    "fmov d27, x8",
    "add x8, x0, #91, lsl #12",
    "fmov v27.d[1], x8",
    "add x8, x0, #60, lsl #12",
    "fmov d28, x8",
    "add x8, x0, #92, lsl #12",
    "fmov v28.d[1], x8",
    "add x8, x0, #61, lsl #12",
    "fmov d29, x8",
    "add x8, x0, #93, lsl #12",
    "fmov v29.d[1], x8",
    "add x8, x0, #62, lsl #12",
    "fmov d30, x8",
    "add x8, x0, #94, lsl #12",
    "fmov v30.d[1], x8",
    "add x8, x0, #63, lsl #12",
    "fmov d31, x8",
    "add x8, x0, #95, lsl #12",
    "fmov v31.d[1], x8",
    "add x1, x0, #1, lsl #12",
    "add x2, x0, #2, lsl #12",
    "add x3, x0, #3, lsl #12",
    "add x4, x0, #4, lsl #12",
    "add x5, x0, #5, lsl #12",
    "add x6, x0, #6, lsl #12",
    "add x7, x0, #7, lsl #12",
    "add x9, x0, #9, lsl #12",
    "add x10, x0, #10, lsl #12",
    "add x11, x0, #11, lsl #12",
    "add x12, x0, #12, lsl #12",
    "add x13, x0, #13, lsl #12",
    "add x14, x0, #14, lsl #12",
    "add x15, x0, #15, lsl #12",
    "add x16, x0, #16, lsl #12",
    "add x17, x0, #17, lsl #12",
    "add x18, x0, #18, lsl #12",
    "add x19, x0, #19, lsl #12",
    "add x20, x0, #20, lsl #12",
    "add x21, x0, #21, lsl #12",
    "add x22, x0, #22, lsl #12",
    "add x23, x0, #23, lsl #12",
    "add x24, x0, #24, lsl #12",
    "add x25, x0, #25, lsl #12",
    "add x26, x0, #26, lsl #12",
    "add x27, x0, #27, lsl #12",
    "add x28, x0, #28, lsl #12",
    "add x29, x0, #29, lsl #12",
    "add x30, x0, #30, lsl #12",
    "mov x8, #1", // Syscall::Yield
    "svc #0",
    "stp x0, x1, [sp, #176]",
    "stp x2, x3, [sp, #192]",
    "stp x4, x5, [sp, #208]",
    "stp x6, x7, [sp, #224]",
    "stp x8, x9, [sp, #240]",
    "stp x10, x11, [sp, #256]",
    "stp x12, x13, [sp, #272]",
    "stp x14, x15, [sp, #288]",
    "stp x16, x17, [sp, #304]",
    "stp x18, x19, [sp, #320]",
    "stp x20, x21, [sp, #336]",
    "stp x22, x23, [sp, #352]",
    "stp x24, x25, [sp, #368]",
    "stp x26, x27, [sp, #384]",
    "stp x28, x29, [sp, #400]",
    "str x30, [sp, #416]",
    "stp q0, q1, [sp, #432]",
    "stp q2, q3, [sp, #464]",
    "stp q4, q5, [sp, #496]",
    "stp q6, q7, [sp, #528]",
    "stp q8, q9, [sp, #560]",
    "stp q10, q11, [sp, #592]",
    "stp q12, q13, [sp, #624]",
    "stp q14, q15, [sp, #656]",
    "stp q16, q17, [sp, #688]",
    "stp q18, q19, [sp, #720]",
    "stp q20, q21, [sp, #752]",
    "stp q22, q23, [sp, #784]",
    "stp q24, q25, [sp, #816]",
    "stp q26, q27, [sp, #848]",
    "stp q28, q29, [sp, #880]",
    "stp q30, q31, [sp, #912]",
    "ldr x1, [sp, #160]",
    "add x2, sp, #176",
    "mov x3, #96",
    "1:",
    "ldr x4, [x2], #8",
    "str x4, [x1], #8",
    "subs x3, x3, #1",
    "b.ne 1b",
    "ldr x18, [sp, #168]",
    "ldp d8, d9, [sp, #96]",
    "ldp d10, d11, [sp, #112]",
    "ldp d12, d13, [sp, #128]",
    "ldp d14, d15, [sp, #144]",
    "ldp x19, x20, [sp, #0]",
    "ldp x21, x22, [sp, #16]",
    "ldp x23, x24, [sp, #32]",
    "ldp x25, x26, [sp, #48]",
    "ldp x27, x28, [sp, #64]",
    "ldp x29, x30, [sp, #80]",
    "add sp, sp, #960",
    "ret",
);

/// Yield with every register set, then check them all; panics naming the
/// first register that came back wrong.
fn yield_and_check(id: usize, round: u64) {
    let base = ((id as u64 + 1) << 40) | (round << 20);
    let mut c = Capture {
        x: [0; 31],
        _pad: 0,
        q: [[0; 2]; 32],
    };
    // SAFETY: `regs_yield` follows the C calling convention (it saves and
    // restores x18-x30 and d8-d15) and writes only `c`.
    unsafe { regs_yield(base, &mut c) };
    assert!(c.x[0] == 0, "yielder {id} round {round}: yield status {:#x}", c.x[0]);
    assert!(
        c.x[8] == 1,
        "yielder {id} round {round}: x8 = {:#x}, want 1 (the call number)",
        c.x[8]
    );
    for r in (1..31).filter(|r| *r != 8) {
        let want = base + ((r as u64) << 12);
        assert!(
            c.x[r] == want,
            "yielder {id} round {round}: x{r} = {:#x} after yield, want {want:#x}",
            c.x[r]
        );
    }
    for (j, q) in c.q.iter().enumerate() {
        let want = [base + ((32 + j as u64) << 12), base + ((64 + j as u64) << 12)];
        assert!(
            *q == want,
            "yielder {id} round {round}: q{j} = {q:#x?} after yield, want {want:#x?}"
        );
    }
}

fn yielder(id: usize) {
    let mut round = 0;
    while !STOP.load(Ordering::Relaxed) {
        yield_and_check(id, round);
        round += 1;
        ROUNDS[id].store(round, Ordering::Relaxed);
    }
}

fn main(_: &StartInfo) {
    let cpus = (process().cpus as usize).min(16);
    let yielders = cpus.clamp(2, 16);
    println!(
        "test-smp-regs: {cpus} CPUs, {yielders} yielders, {MIGRATIONS} migrations with suspend/resume, seed {SEED:#x}"
    );
    let migrations_wanted = if cpus > 1 { MIGRATIONS } else { 0 };
    let t0 = syscall::now_us();
    let threads: Vec<thread::JoinHandle> = (0..yielders)
        .map(|id| {
            thread::Builder::default()
                .cpu(id % cpus)
                .spawn(move || yielder(id))
                .expect("yielder thread")
        })
        .collect();
    let priority = syscall::thread_info(threads[0].thread()).expect("thread info").priority;
    let mut rng = Rng::new(SEED);
    let (mut migrations, mut suspends, mut cpu_of) = (0u64, 0u64, (0..yielders).map(|i| i % cpus).collect::<Vec<_>>());
    while migrations < migrations_wanted
        || suspends < SUSPENDS
        || ROUNDS[..yielders]
            .iter()
            .any(|r| r.load(Ordering::Relaxed) < MIN_ROUNDS)
    {
        assert!(
            syscall::now_us() - t0 < LIMIT_US,
            "test-smp-regs: time limit: {migrations} migrations, {suspends} suspends, rounds {:?}",
            ROUNDS[..yielders]
                .iter()
                .map(|r| r.load(Ordering::Relaxed))
                .collect::<Vec<_>>()
        );
        let i = rng.below(yielders as u64) as usize;
        let t = threads[i].thread();
        let cpu = rng.below(cpus as u64) as usize;
        let suspend = rng.chance(1, 2);
        if suspend {
            syscall::thread_suspend(t).expect("suspend a yielder");
            suspends += 1;
        }
        syscall::thread_configure(t, priority, Some(cpu)).expect("move a yielder");
        if cpu != cpu_of[i] {
            migrations += 1;
            cpu_of[i] = cpu;
        }
        if suspend {
            if rng.chance(1, 2) {
                syscall::yield_now();
            }
            syscall::thread_resume(t).expect("resume a yielder");
        }
        if rng.chance(1, 4) {
            syscall::yield_now();
        }
    }
    STOP.store(true, Ordering::Relaxed);
    for (i, t) in threads.into_iter().enumerate() {
        if let Err((_, e)) = t.join_timeout(Timeout::Micros(30_000_000)) {
            panic!("yielder {i} did not stop: {e}");
        }
    }
    let rounds: u64 = ROUNDS[..yielders].iter().map(|r| r.load(Ordering::Relaxed)).sum();
    println!(
        "test-smp-regs: {migrations} migrations, {suspends} suspend/resume, {rounds} register checks in {} ms",
        (syscall::now_us() - t0) / 1000
    );
}
