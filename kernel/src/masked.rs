//! How long interrupts stay masked (test image, under QEMU `-icount`).
//!
//! The kernel runs with interrupts masked from every exception entry to the
//! `eret` that leaves it, and in the idle loop, whose `wfi` a pending
//! interrupt ends at once and which then handles it without taking the
//! exception (and, with teardown to do, unmasks for a moment between
//! pieces). In the test image each CPU counts retired instructions with PMU
//! event counter 0 (`INST_RETIRED`, which QEMU implements only under
//! precise `-icount`), notes the count when a stretch starts (the entry
//! from EL0 in `user_entry.S`, and after the idle loop's wait) and, when it
//! ends (the exit to EL0, and before the wait), keeps the longest stretch.
//! Not counted: the few instructions of the vector before the count is read
//! and after it is taken on the way out, and the idle loop's wait with the
//! interrupt that ends it (its handling, or one taken at EL1 between
//! teardown pieces). Under SMP, QEMU's instruction count is the
//! machine's, not the CPU's (another CPU's instructions can fall inside a
//! stretch), so exact figures come from 1-CPU runs.
//!
//! Where the counter does not count (no `-icount`, no PMU), nothing is
//! measured and [`take_max`] reports `None`.

use crate::percpu;
use core::sync::atomic::Ordering;

/// Whether this build measures (the test image).
pub const MEASURE: bool = cfg!(feature = "ktest");

/// Start measuring on this CPU if event counter 0 counts instructions
/// (`counting`: set up by `arch::aarch64::user::start_pmu`, the one place
/// that programs the PMU).
pub fn init_cpu(counting: bool) {
    if !MEASURE || !counting {
        return;
    }
    let pc = percpu::current();
    pc.masked_since.store(count(), Ordering::Relaxed);
    pc.masked_on.store(1, Ordering::Relaxed);
}

fn count() -> u64 {
    hal::cpu::instructions_retired() & 0xffff_ffff
}

/// This CPU is about to wait (the idle loop's `wfi`, which a pending
/// interrupt ends at once), or to unmask: close the stretch.
#[inline]
pub fn unmasking() {
    if !MEASURE {
        return;
    }
    let pc = percpu::current_running();
    if pc.masked_on.load(Ordering::Relaxed) == 0 {
        return;
    }
    let stretch = count().wrapping_sub(pc.masked_since.load(Ordering::Relaxed)) & 0xffff_ffff;
    pc.masked_max.fetch_max(stretch, Ordering::Relaxed);
}

/// This CPU is back from the idle loop's wait (and the interrupt that ended
/// it), or masked again, or finished work
/// that is not to be counted (the test image's self-check): a stretch
/// starts now.
#[inline]
pub fn masking() {
    if !MEASURE {
        return;
    }
    let pc = percpu::current_running();
    if pc.masked_on.load(Ordering::Relaxed) != 0 {
        pc.masked_since.store(count(), Ordering::Relaxed);
    }
}

/// The longest masked stretch on any CPU since the last call, in
/// instructions, and a fresh start; `None` where nothing is measured.
pub fn take_max() -> Option<u64> {
    let mut measured = false;
    let mut max = 0;
    for pc in percpu::all() {
        if pc.masked_on.load(Ordering::Relaxed) != 0 {
            measured = true;
            max = max.max(pc.masked_max.swap(0, Ordering::Relaxed));
        }
    }
    measured.then_some(max)
}
