//! CPU registers and instructions the kernel needs, each wrapped once.
#![allow(clippy::missing_safety_doc)]

use core::arch::asm;

macro_rules! read_sysreg {
    ($(#[$doc:meta])* $name:ident, $reg:literal) => {
        $(#[$doc])*
        #[inline(always)]
        pub fn $name() -> u64 {
            let value: u64;
            // SAFETY: reading this system register has no side effects.
            unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) value, options(nomem, nostack, preserves_flags)) };
            value
        }
    };
}

read_sysreg!(/// Multiprocessor affinity of this CPU.
    mpidr, "mpidr_el1");
read_sysreg!(/// Counter frequency in Hz.
    counter_frequency, "cntfrq_el0");
read_sysreg!(/// Exception syndrome of the last exception to EL1.
    esr, "esr_el1");
read_sysreg!(/// Fault address of the last exception to EL1.
    far, "far_el1");
read_sysreg!(/// This CPU's per-CPU data pointer.
    tpidr, "tpidr_el1");
read_sysreg!(/// Debug feature register (PMU version lives in bits 11:8).
    id_aa64dfr0, "id_aa64dfr0_el1");
read_sysreg!(/// Current exception level (bits 3:2).
    current_el, "CurrentEL");
read_sysreg!(/// Translation control.
    tcr, "tcr_el1");
read_sysreg!(/// Kernel translation table base.
    ttbr1, "ttbr1_el1");
read_sysreg!(/// Main ID register.
    midr, "midr_el1");

/// The physical counter, ordered after earlier instructions.
#[inline(always)]
pub fn counter() -> u64 {
    let value: u64;
    // SAFETY: isb + reading the counter has no side effects.
    unsafe { asm!("isb", "mrs {}, cntpct_el0", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// Whether the PMU cycle counter was started by the boot stub.
pub fn has_pmu() -> bool {
    let version = (id_aa64dfr0() >> 8) & 0xf;
    version != 0 && version != 0xf
}

/// PMU cycle counter (executed instructions under QEMU `-icount`).
#[inline(always)]
pub fn cycle_counter() -> u64 {
    let value: u64;
    // SAFETY: the boot stub enabled EL1 access to the PMU; reading is harmless.
    unsafe { asm!("isb", "mrs {}, pmccntr_el0", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// PMU event counter 0, which the kernel sets to count instructions
/// retired (event 0x08) where the PMU has event counters; 0 elsewhere (it
/// is not enabled there).
pub fn instructions_retired() -> u64 {
    let value: u64;
    // SAFETY: as for the cycle counter; reading is harmless.
    unsafe { asm!("isb", "mrs {}, pmevcntr0_el0", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// The MPIDR affinity fields (Aff3..Aff0) without the flag bits.
pub fn mpidr_affinity(mpidr: u64) -> u64 {
    mpidr & 0xff_00ff_ffff
}

/// Point this CPU's TPIDR_EL1 at its per-CPU data.
pub fn set_tpidr(value: u64) {
    // SAFETY: TPIDR_EL1 is a software-defined register owned by the kernel.
    unsafe { asm!("msr tpidr_el1, {}", in(reg) value, options(nomem, nostack, preserves_flags)) };
}

/// Install the exception vector table.
///
/// # Safety
/// `vectors` must be the address of a valid, 2 KiB-aligned vector table.
pub unsafe fn set_vector_base(vectors: u64) {
    asm!("msr vbar_el1, {}", "isb", in(reg) vectors, options(nostack, preserves_flags));
}

/// Point TTBR0 (the lower half) at `root`: after boot an empty table, so
/// the boot identity map is gone, and later each task's own tables.
pub fn set_lower_half(root: u64) {
    // SAFETY: the kernel itself never runs from the lower half after boot;
    // stale entries of the old table are flushed here.
    unsafe {
        asm!(
            "msr ttbr0_el1, {root}",
            "isb",
            "tlbi vmalle1",
            "dsb nsh",
            "isb",
            root = in(reg) root,
            options(nostack, preserves_flags)
        )
    };
}

/// Whether a kernel read of `va` would translate (AT S1E1R).
pub fn kernel_can_read(va: u64) -> bool {
    let par: u64;
    // SAFETY: address translation only fills PAR_EL1.
    unsafe {
        asm!("at s1e1r, {va}", "isb", "mrs {par}, par_el1", va = in(reg) va, par = out(reg) par, options(nostack))
    };
    par & 1 == 0
}

/// Whether a kernel write of `va` would translate (AT S1E1W: the MMU's own
/// answer, including the write permission).
pub fn kernel_can_write(va: u64) -> bool {
    let par: u64;
    // SAFETY: address translation only fills PAR_EL1.
    unsafe {
        asm!("at s1e1w, {va}", "isb", "mrs {par}, par_el1", va = in(reg) va, par = out(reg) par, options(nostack))
    };
    par & 1 == 0
}

/// Invalidate all kernel TLB entries on every CPU of the inner shareable domain.
pub fn flush_tlb_all() {
    // SAFETY: TLB maintenance only drops cached translations.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi vmalle1is",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}

/// Make earlier page-table writes visible to the table walker (no TLB flush needed
/// for entries that were invalid before).
pub fn table_write_barrier() {
    // SAFETY: barriers have no side effects beyond ordering.
    unsafe { asm!("dsb ishst", "isb", options(nostack, preserves_flags)) };
}

/// Clean the data cache lines covering `[addr, addr + len)` to the point of
/// coherency, for readers that run with the MMU and caches off.
pub fn clean_dcache_to_poc(addr: usize, len: usize) {
    let line = 64; // smallest line size on the CPUs we run on; cleaning more often is harmless
    let mut a = addr & !(line - 1);
    while a < addr + len {
        // SAFETY: cache cleaning never changes memory contents.
        unsafe { asm!("dc cvac, {}", in(reg) a, options(nostack, preserves_flags)) };
        a += line;
    }
    // SAFETY: barrier only.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Unmask IRQs on this CPU.
pub fn enable_irqs() {
    // SAFETY: the vector table and interrupt controller are set up before this is called.
    unsafe { asm!("msr daifclr, #2", options(nomem, nostack, preserves_flags)) };
}

/// Mask IRQs on this CPU.
pub fn disable_irqs() {
    // SAFETY: masking interrupts is always safe.
    unsafe { asm!("msr daifset, #2", options(nomem, nostack, preserves_flags)) };
}

/// Wait for an interrupt.
pub fn wait_for_interrupt() {
    // SAFETY: wfi only pauses the CPU.
    unsafe { asm!("wfi", options(nomem, nostack, preserves_flags)) };
}

/// Unmask IRQs for a moment, so that pending ones are taken (through the
/// installed vector table), then mask them again.
pub fn take_interrupts() {
    // SAFETY: as in `idle_until_interrupt`, without the wait.
    unsafe {
        asm!(
            "msr daifclr, #2",
            "isb",
            "msr daifset, #2",
            options(nomem, nostack, preserves_flags)
        )
    };
}

/// Sleep until an interrupt is pending, then take it. Interrupts stay
/// masked across the WFI (a pending IRQ still wakes it), so one that
/// arrives just before cannot be handled early and leave the WFI waiting for
/// nothing; they are unmasked only briefly afterwards, to run the handler.
pub fn idle_until_interrupt() {
    // SAFETY: wfi pauses the CPU; the brief unmask takes pending IRQs
    // through the installed vector table.
    unsafe {
        asm!(
            "msr daifset, #2",
            "wfi",
            "msr daifclr, #2",
            "isb",
            "msr daifset, #2",
            options(nomem, nostack, preserves_flags)
        )
    };
}

/// Wake CPUs waiting in WFE (spin-table release).
pub fn send_event() {
    // SAFETY: sev only signals an event.
    unsafe { asm!("dsb sy", "sev", options(nostack, preserves_flags)) };
}

/// Park this CPU forever with interrupts masked.
pub fn halt() -> ! {
    disable_irqs();
    loop {
        wait_for_interrupt();
    }
}
