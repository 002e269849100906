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

/// `PMCCNTR_EL0`, the cycle counter (under QEMU `-icount shift=0` it
/// counts executed instructions). Readable at EL0 only when the kernel set
/// `PMUSERENR_EL0.{EN,CR}`; otherwise reading it is an undefined
/// instruction fault.
#[inline(always)]
pub fn cycles() -> u64 {
    imp::cycles()
}

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod imp {
    use core::arch::asm;

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
        // SAFETY: reading the counter has no side effects (it traps if
        // EL0 access is off, which the kernel reports as a fault).
        // Not `nomem`: it must not be moved across the code it measures.
        unsafe { asm!("mrs {}, pmccntr_el0", out(reg) v, options(nostack, preserves_flags)) };
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
}
