//! The few EL0 system registers user space touches.

/// `TPIDR_EL0`: this thread's IPC-buffer address (0 = none).
#[inline(always)]
pub fn thread_pointer() -> u64 {
    imp::thread_pointer()
}

/// Sets `TPIDR_EL0`. Only the library's thread start-up calls this.
#[inline(always)]
pub(crate) fn set_thread_pointer(value: u64) {
    imp::set_thread_pointer(value)
}

/// `CNTPCT_EL0`, the system counter (the kernel lets EL0 read it on every
/// CPU; [`crate::syscall::now_us`] scales it as the kernel does). 0 off
/// the target.
#[inline(always)]
pub fn counter() -> u64 {
    imp::counter()
}

/// `PMCCNTR_EL0`, the cycle counter (under QEMU `-icount shift=0` it
/// counts executed instructions). Only a task holding the counters
/// capability with `READ` ([`crate::Process::counters`]) may read it: the
/// kernel carries out the read (it traps; see
/// `abi::ObjectType::Counters`). For any other task it is an
/// undefined-instruction fault.
#[inline(always)]
pub fn cycles() -> u64 {
    imp::cycles()
}

/// PMU event counter 0, which the kernel sets to count instructions
/// retired (`INST_RETIRED`, event 0x08: every instruction executed, at EL0
/// and EL1, on this CPU — not idle time, which under `-icount sleep=off`
/// lands in the cycle counter). 32 bits: take differences with
/// `wrapping_sub`. Readable like [`cycles`]: by a task holding the
/// counters capability with `READ` (the kernel carries out the trapped
/// read); for any other task it is an undefined-instruction fault.
#[inline(always)]
pub fn instructions() -> u32 {
    imp::instructions()
}

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod imp {
    use core::arch::asm;

    #[inline(always)]
    pub fn counter() -> u64 {
        let v: u64;
        // SAFETY: the kernel sets CNTKCTL_EL1.EL0PCTEN on every CPU, so EL0
        // may read the physical counter; the read has no side effects.
        // `isb` keeps it after the instructions before it, as the kernel's
        // own reading (`hal::cpu::counter`).
        unsafe { asm!("isb", "mrs {}, cntpct_el0", out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }

    #[inline(always)]
    pub fn instructions() -> u32 {
        let v: u64;
        // SAFETY: as `cycles`: the read traps and the kernel carries it out
        // (into x9, a register it restores from the saved context), or
        // reports a fault. Not `nomem`: it must not be moved across the
        // code it measures.
        unsafe {
            asm!(
                "mrs x9, pmevcntr0_el0",
                "mov {v}, x9",
                v = out(reg) v,
                out("x9") _,
                options(nostack, preserves_flags)
            )
        };
        v as u32
    }

    #[inline(always)]
    pub fn thread_pointer() -> u64 {
        let v;
        // SAFETY: reading TPIDR_EL0 has no side effects.
        unsafe { asm!("mrs {}, tpidr_el0", out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }

    #[inline(always)]
    pub fn set_thread_pointer(value: u64) {
        // SAFETY: TPIDR_EL0 is a scratch register for this thread; only
        // the library reads it (as the IPC-buffer address).
        unsafe { asm!("msr tpidr_el0, {}", in(reg) value, options(nomem, nostack, preserves_flags)) };
    }

    #[inline(always)]
    pub fn cycles() -> u64 {
        let v;
        // SAFETY: reading the counter has no side effects (it traps; the
        // kernel carries it out, or reports a fault). Into x9: the kernel
        // writes only registers it restores from the saved context (x0-x18,
        // x30); then to any register, so that the code around a read is
        // what the compiler would make for any other value (the benchmarks
        // subtract the cost of two reads). Not `nomem`: it must not be
        // moved across the code it measures.
        unsafe {
            asm!(
                "mrs x9, pmccntr_el0",
                "mov {v}, x9",
                v = out(reg) v,
                out("x9") _,
                options(nostack, preserves_flags)
            )
        };
        v
    }
}

#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
mod imp {
    use core::sync::atomic::{AtomicU64, Ordering};

    static TP: AtomicU64 = AtomicU64::new(0);

    pub fn thread_pointer() -> u64 {
        TP.load(Ordering::Relaxed)
    }

    pub fn set_thread_pointer(value: u64) {
        TP.store(value, Ordering::Relaxed)
    }

    pub fn cycles() -> u64 {
        0
    }

    pub fn counter() -> u64 {
        0
    }

    pub fn instructions() -> u32 {
        0
    }
}
