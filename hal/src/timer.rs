//! The EL1 non-secure physical generic timer (CNTP_*), one per CPU.

use core::arch::asm;

/// Arm the timer to fire after `ticks` counter ticks, interrupt unmasked.
pub fn arm(ticks: u64) {
    // SAFETY: programs this CPU's own timer registers.
    unsafe {
        asm!(
            "msr cntp_tval_el0, {t}",
            "msr cntp_ctl_el0, {one}",
            "isb",
            t = in(reg) ticks,
            one = in(reg) 1u64,
            options(nomem, nostack, preserves_flags)
        )
    };
}

/// Stop the timer (no further interrupts).
pub fn disarm() {
    // SAFETY: programs this CPU's own timer registers.
    unsafe { asm!("msr cntp_ctl_el0, xzr", "isb", options(nomem, nostack, preserves_flags)) };
}
