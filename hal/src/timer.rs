//! The EL1 non-secure physical generic timer (CNTP_*), one per CPU.

#[cfg(target_arch = "aarch64")]
use core::arch::asm;

/// The most ticks `CNTP_TVAL_EL0` can count down: it is a signed 32-bit
/// value, so a larger one would read as negative and fire at once (on a
/// 54-62.5 MHz counter that is any deadline beyond 34-39 s).
pub const MAX_TVAL: u64 = i32::MAX as u64;

/// What to write to `CNTP_TVAL_EL0` for an event `ticks` away: at most
/// [`MAX_TVAL`] (a later deadline fires early; the scheduler re-arms the
/// rest).
pub const fn tval(ticks: u64) -> u64 {
    if ticks > MAX_TVAL {
        MAX_TVAL
    } else {
        ticks
    }
}

/// Arm the timer to fire after `ticks` counter ticks (at most
/// [`MAX_TVAL`]), interrupt unmasked.
#[cfg(target_arch = "aarch64")]
pub fn arm(ticks: u64) {
    let ticks = tval(ticks);
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

/// Arm the timer to fire when the physical counter (`CNTPCT_EL0`) reaches
/// `deadline` (at once if it has), interrupt unmasked. The compare value is
/// 64 bits wide: no clamp, and no counter read to work out a distance.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
pub fn arm_at(deadline: u64) {
    // SAFETY: programs this CPU's own timer registers.
    unsafe {
        asm!(
            "msr cntp_cval_el0, {d}",
            "msr cntp_ctl_el0, {one}",
            "isb",
            d = in(reg) deadline,
            one = in(reg) 1u64,
            options(nomem, nostack, preserves_flags)
        )
    };
}

/// Make the timer fire by counter value `deadline`: armed at it unless it
/// is already armed for no later (a timeout added without reprogramming
/// the timer for every other event).
#[cfg(target_arch = "aarch64")]
pub fn arm_by(deadline: u64) {
    let (ctl, cval): (u64, u64);
    // SAFETY: reads this CPU's own timer registers.
    unsafe {
        asm!(
            "mrs {c}, cntp_ctl_el0",
            "mrs {v}, cntp_cval_el0",
            c = out(reg) ctl,
            v = out(reg) cval,
            options(nomem, nostack, preserves_flags)
        )
    };
    if ctl & 1 == 0 || cval > deadline {
        arm_at(deadline);
    }
}

/// Stop the timer (no further interrupts).
#[cfg(target_arch = "aarch64")]
pub fn disarm() {
    // SAFETY: programs this CPU's own timer registers.
    unsafe { asm!("msr cntp_ctl_el0, xzr", "isb", options(nomem, nostack, preserves_flags)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_deadlines_are_clamped_not_wrapped() {
        assert_eq!(tval(1), 1);
        assert_eq!(tval(MAX_TVAL), MAX_TVAL);
        // 120 s at 62.5 MHz: past what the 32-bit register holds.
        assert_eq!(tval(120 * 62_500_000), MAX_TVAL);
        assert_eq!(tval(u64::MAX), MAX_TVAL);
    }
}
