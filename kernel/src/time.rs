//! Time from the generic timer, and the periodic tick on every CPU.

use crate::percpu;
use crate::ratio::scale;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Timer interrupts per second on each CPU.
pub const TICK_HZ: u64 = 100;

static FREQUENCY: AtomicU64 = AtomicU64::new(0);

/// Counter ticks per second: `CNTFRQ_EL0`, or the device tree's override.
pub fn frequency() -> u64 {
    let f = FREQUENCY.load(Ordering::Relaxed);
    if f != 0 {
        return f;
    }
    let f = hal::cpu::counter_frequency().max(1);
    FREQUENCY.store(f, Ordering::Relaxed);
    f
}

/// Use `hz` instead of CNTFRQ_EL0 (device tree `clock-frequency` override).
pub fn set_frequency(hz: u64) {
    FREQUENCY.store(hz, Ordering::Relaxed);
    SLICE_TICKS.store(0, Ordering::Relaxed);
}

/// [`slice_ticks`], once known (0: not yet).
static SLICE_TICKS: AtomicU64 = AtomicU64::new(0);

/// Counter ticks in a time slice ([`crate::sched::SLICE_MICROS`]): computed
/// once, not at every switch (the scaling divides).
#[inline(always)]
pub fn slice_ticks() -> u64 {
    let t = SLICE_TICKS.load(Ordering::Relaxed);
    if t != 0 {
        return t;
    }
    slice_ticks_slow()
}

#[inline(never)]
fn slice_ticks_slow() -> u64 {
    let t = micros_to_ticks(crate::sched::SLICE_MICROS).max(1);
    SLICE_TICKS.store(t, Ordering::Relaxed);
    t
}

/// Microseconds since the counter started (about power-on).
pub fn uptime_micros() -> u64 {
    ticks_to_micros(hal::cpu::counter())
}

/// Counter ticks in `micros` microseconds.
pub fn micros_to_ticks(micros: u64) -> u64 {
    scale(micros, frequency(), 1_000_000)
}

/// Microseconds in `ticks` counter ticks.
pub fn ticks_to_micros(ticks: u64) -> u64 {
    scale(ticks, 1_000_000, frequency())
}

/// The virtual counter (CNTVCT_EL0) for CPU-time accounting: one
/// instruction, no barrier (a few instructions of skew do not matter
/// there; it is on the IPC fast path). Counts at the frequency of the
/// physical counter, which it only differs from by a fixed offset, so only
/// differences between two reads mean anything.
#[inline(always)]
pub fn cpu_clock() -> u64 {
    let value: u64;
    // SAFETY: reading the virtual counter has no side effects (EL1 may
    // always read it).
    unsafe { core::arch::asm!("mrs {}, cntvct_el0", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// Busy-wait until `cond` holds or `micros` pass; returns whether it held.
pub fn wait_until(micros: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = hal::cpu::counter() + micros_to_ticks(micros);
    loop {
        if cond() {
            return true;
        }
        if hal::cpu::counter() >= deadline {
            return cond();
        }
        core::hint::spin_loop();
    }
}

/// Start this CPU's periodic tick (the timer interrupt must be enabled).
pub fn start_tick() {
    hal::timer::arm(frequency() / TICK_HZ);
}

/// Whether the scheduler owns the timer (user space runs): then it is
/// programmed one-shot for the next slice end or timeout, and left off when
/// there is nothing to wait for.
static SCHEDULER_OWNS_TIMER: AtomicBool = AtomicBool::new(false);

pub fn hand_timer_to_scheduler() {
    SCHEDULER_OWNS_TIMER.store(true, Ordering::Release);
}

pub fn scheduler_owns_timer() -> bool {
    SCHEDULER_OWNS_TIMER.load(Ordering::Acquire)
}

/// Timer interrupt: count it; re-arm the periodic tick until the scheduler
/// takes over (it re-programs the timer on its way out of the kernel).
pub fn on_tick() {
    percpu::current().ticks.fetch_add(1, Ordering::Relaxed);
    if scheduler_owns_timer() {
        hal::timer::disarm();
    } else {
        hal::timer::arm(frequency() / TICK_HZ);
    }
}

/// Fire at counter value `deadline` (now if it has passed).
#[inline(always)]
pub fn arm_at(deadline: u64) {
    hal::timer::arm_at(deadline);
}

/// Fire by `deadline` (see [`hal::timer::arm_by`]).
pub fn arm_by(deadline: u64) {
    hal::timer::arm_by(deadline);
}

/// No timer interrupt until armed again.
pub fn disarm() {
    hal::timer::disarm();
}
