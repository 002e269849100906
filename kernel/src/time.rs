//! Time from the generic timer, and the periodic tick on every CPU.

use crate::percpu;
use core::sync::atomic::{AtomicU64, Ordering};

/// Timer interrupts per second on each CPU.
pub const TICK_HZ: u64 = 100;

static FREQUENCY: AtomicU64 = AtomicU64::new(0);

fn frequency() -> u64 {
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
}

/// Microseconds since the counter started (about power-on).
pub fn uptime_micros() -> u64 {
    let ticks = hal::cpu::counter() as u128;
    (ticks * 1_000_000 / frequency() as u128) as u64
}

/// Counter ticks in `micros` microseconds.
pub fn micros_to_ticks(micros: u64) -> u64 {
    (micros as u128 * frequency() as u128 / 1_000_000) as u64
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

/// Timer interrupt: count it and re-arm.
pub fn on_tick() {
    percpu::current().ticks.fetch_add(1, Ordering::Relaxed);
    hal::timer::arm(frequency() / TICK_HZ);
}
