//! Running user threads: the Rust side of `user_entry.S`.

use crate::object::{self, Id, Kernel};
use crate::thread::{FpState, Thread, ThreadState, UserContext};
use crate::{irq, percpu, sched, syscall, time, MAX_CPUS};
use abi::FaultKind;
use core::arch::asm;
use core::sync::atomic::Ordering;

extern "C" {
    fn enter_user(ctx: *const UserContext) -> !;
    fn fp_save(state: *mut FpState);
    fn fp_restore(state: *const FpState);
}

/// Where a dying thread's callee-saved registers go (never read).
static mut DISCARD: [UserContext; MAX_CPUS] = [UserContext {
    x: [0; 31],
    sp: 0,
    elr: 0,
    spsr: 0,
    tpidr: 0,
}; MAX_CPUS];

const CPACR_FP_EL1_ONLY: u64 = 1 << 20; // FPEN = 01: EL0 FP/SIMD use traps
const CPACR_FP_ALL: u64 = 3 << 20; // FPEN = 11: no traps

fn set_cpacr(value: u64) {
    // SAFETY: only changes whether FP/SIMD use traps.
    unsafe { asm!("msr cpacr_el1, {}", "isb", in(reg) value, options(nostack)) };
}

/// Per-CPU setup for running user code: the PMU ([`start_pmu`]; no PMU
/// access at EL0: every PMU register access traps, and [`counter_read`]
/// carries out counter reads for tasks with the counters capability),
/// FP/SIMD trapping at EL0, PAN on where the CPU has it.
pub fn init_cpu() {
    set_cpacr(CPACR_FP_EL1_ONLY);
    // SAFETY: CNTKCTL_EL1.EL0PCTEN = 1 lets EL0 read the physical counter
    // and its frequency (CNTPCT_EL0, CNTFRQ_EL0), which the Clock system
    // call reports anyway (abi `Syscall::Clock`); the other bits (timer
    // access, event stream) stay as they were.
    unsafe {
        asm!(
            "mrs {t}, cntkctl_el1",
            "orr {t}, {t}, #1",
            "msr cntkctl_el1, {t}",
            "isb",
            t = out(reg) _,
            options(nostack)
        )
    };
    if hal::cpu::has_pmu() {
        let counting = start_pmu();
        crate::masked::init_cpu(counting);
    }
    let mmfr1: u64;
    // SAFETY: reading an ID register has no side effects.
    unsafe { asm!("mrs {}, id_aa64mmfr1_el1", out(reg) mmfr1, options(nomem, nostack)) };
    if (mmfr1 >> 20) & 0xf != 0 {
        // SAFETY: SPAN = 0 makes every exception to EL1 set PSTATE.PAN, and
        // PAN = 1 now: the kernel then cannot touch user pages by accident
        // (it reaches user memory only through the linear map).
        unsafe {
            asm!(
                "mrs {t}, sctlr_el1",
                "bic {t}, {t}, #(1 << 23)",
                "msr sctlr_el1, {t}",
                ".inst 0xd500419f", // msr pan, #1
                "isb",
                t = out(reg) _,
                options(nostack)
            )
        };
    }
}

/// The one place the PMU is set up (per CPU): no PMU access at EL0, the
/// cycle counter and event counter 0 (`INST_RETIRED`) running at EL0 and
/// EL1. Event counter 0 is what [`counter_read`] gives tasks with the
/// counters capability and what the test image's masked-stretch
/// measurement reads ([`crate::masked`]). Whether it counts instructions:
/// the PMU has event counters and implements the event (QEMU does only
/// under `-icount`).
fn start_pmu() -> bool {
    // SAFETY: PMUSERENR_EL0 = 0 (EN, SW, CR and ER clear): EL0 can
    // neither read nor write any PMU register; each access traps to EL1.
    unsafe { asm!("msr pmuserenr_el0, {}", in(reg) 0u64, options(nostack)) };
    // Event counter 0 counts instructions retired (INST_RETIRED, event
    // 0x08) where the PMU has event counters (PMCR_EL0.N).
    let pmcr: u64;
    // SAFETY: reading PMCR_EL0 has no side effects.
    unsafe { asm!("mrs {}, pmcr_el0", out(reg) pmcr, options(nomem, nostack, preserves_flags)) };
    let events = (pmcr >> 11) & 0x1f > 0;
    let ceid0: u64;
    // SAFETY: reading PMCEID0_EL0 has no side effects.
    unsafe { asm!("mrs {}, pmceid0_el0", out(reg) ceid0, options(nomem, nostack, preserves_flags)) };
    if events {
        // SAFETY: event counter 0's event: 0x08, counted at EL0 and EL1
        // (P and U clear). No memory.
        unsafe { asm!("msr pmevtyper0_el0, {}", in(reg) INST_RETIRED, options(nostack)) };
    }
    let enable = (1u64 << 31) | events as u64;
    // SAFETY: the cycle counter (and event counter 0) run on this CPU
    // too (the boot stub starts the cycle counter on the first CPU
    // only), counting at EL0 and EL1; their values are not reset (E and
    // LC set, nothing else changed).
    unsafe {
        asm!(
            "msr pmccfiltr_el0, xzr",
            "mrs {t}, pmcr_el0",
            "orr {t}, {t}, #0x40", // LC: the cycle counter is 64 bits
            "orr {t}, {t}, #0x1", // E: counters on
            "msr pmcr_el0, {t}",
            "msr pmcntenset_el0, {en}",
            "isb",
            t = out(reg) _,
            en = in(reg) enable,
            options(nostack)
        )
    };
    events && ceid0 & (1 << INST_RETIRED) != 0
}

/// Whether PSTATE.PAN is set (for tests).
#[cfg_attr(not(feature = "ktest"), allow(dead_code))]
pub fn pan_enabled() -> bool {
    let mmfr1: u64;
    // SAFETY: reading an ID register has no side effects.
    unsafe { asm!("mrs {}, id_aa64mmfr1_el1", out(reg) mmfr1, options(nomem, nostack)) };
    if (mmfr1 >> 20) & 0xf == 0 {
        return false;
    }
    let pan: u64;
    // SAFETY: reading PSTATE.PAN has no side effects.
    unsafe { asm!("mrs {}, S3_0_C4_C2_3", out(reg) pan, options(nomem, nostack)) };
    pan & (1 << 22) != 0
}

/// What the exit path (`user_entry.S`) does next: resume `ctx` (null: idle),
/// after storing the callee-saved registers into `save` if it is not null
/// (the CPU switches away from that thread). With `save` set the kernel lock
/// is still held ([`object::KernelGuard::release_at_exit`]): the exit path
/// releases it after those stores, so that no other CPU can resume the
/// outgoing thread from a context that lacks them.
#[repr(C)]
pub struct Resume {
    ctx: *const UserContext,
    save: *mut UserContext,
}

/// Synchronous exception from EL0 (vector 8): system calls first.
#[no_mangle]
extern "C" fn handle_el0_sync(ctx: *mut UserContext) -> Resume {
    let (esr, class): (u64, u64);
    // SAFETY: reading ESR_EL1 has no side effects. (Its class, bits 26-31,
    // is extracted here: the compiler's own version takes more instructions.)
    unsafe {
        asm!(
            "mrs {esr}, esr_el1",
            "ubfx {class}, {esr}, #26, #6",
            esr = out(reg) esr,
            class = out(reg) class,
            options(nomem, nostack, preserves_flags)
        )
    };
    // SAFETY: `ctx` is the running thread's saved context (PerCpu.user_ctx,
    // set when it was switched in); only this CPU touches it while it runs.
    let regs = unsafe { &mut *ctx };
    // 0x15: SVC from AArch64.
    if class == 0x15 {
        let mut n = regs.x[8];
        // Tail calls, like the ones below: this function needs no frame.
        // The tests in a fixed order (pinned by empty asm statements, see
        // below): `reply_recv`, `call`, then the null call.
        if n == abi::Syscall::ReplyRecv as u64 {
            if crate::ipc::fast_message(regs.x[1]) {
                return ipc_fast_reply_recv(ctx);
            }
            if crate::ipc::timed_message(regs.x[1]) {
                return ipc_fast_timed(ctx, n);
            }
        } else {
            // SAFETY: an empty asm statement.
            unsafe { asm!("/* {0} */", inout(reg) n, options(nomem, nostack, preserves_flags)) };
            if n == abi::Syscall::Call as u64 {
                if crate::ipc::fast_message(regs.x[1]) {
                    return ipc_fast_call(ctx);
                }
                if crate::ipc::timed_message(regs.x[1]) {
                    return ipc_fast_timed(ctx, n);
                }
            } else {
                // SAFETY: an empty asm statement.
                unsafe { asm!("/* {0} */", inout(reg) n, options(nomem, nostack, preserves_flags)) };
                if n == abi::Syscall::Null as u64 {
                    // Needs no kernel state: no lock, no scheduling.
                    regs.x[0] = 0;
                    return Resume {
                        ctx,
                        save: core::ptr::null_mut(),
                    };
                }
            }
        }
        // Yield and Signal after the three above, which do not pay for their tests: the
        // compiler may not move the test of a value an asm statement (not
        // `pure`: it runs where it stands) gave above that statement.
        // SAFETY: an empty asm statement.
        unsafe { asm!("/* {0} */", inout(reg) n, options(nomem, nostack, preserves_flags)) };
        if n == abi::Syscall::Yield as u64 {
            return yield_fast(ctx);
        }
        if n == abi::Syscall::Signal as u64 {
            return signal_fast(ctx);
        }
    } else {
        // The FP trap's test after the system calls', and not on their
        // way to the general path (the same device as above).
        let mut class = class;
        // SAFETY: an empty asm statement.
        unsafe { asm!("/* {0} */", inout(reg) class, options(nomem, nostack, preserves_flags)) };
        // 0x07: FP/SIMD use while it traps.
        if class == 0x07 {
            return fp_trap_fast(ctx);
        }
    }
    general_path(8, ctx, esr)
}

/// Any other kernel entry from EL0 (`kind` = vector index 9-15).
#[no_mangle]
extern "C" fn handle_el0(kind: u64, ctx: *mut UserContext) -> Resume {
    general_path(kind, ctx, hal::cpu::esr())
}

/// [`handle_el0_locked`], reached by tail calls from the entry points and
/// the fast path (`extern "C"`: the same return convention).
#[inline(never)]
extern "C" fn general_path(kind: u64, ctx: *mut UserContext, esr: u64) -> Resume {
    // SAFETY: as in `handle_el0_sync`; no other reference to it is left.
    handle_el0_locked(kind, unsafe { &mut *ctx }, esr)
}

/// `call` / `reply_recv` with a register message: to a partner already
/// waiting on this CPU straight away (see [`crate::ipc::fast_path`]), else
/// through the general path. The hot path makes no calls (FP state is
/// saved inline) and the general path is reached by a tail call, so it
/// needs few registers and no stack frame. One copy per call number.
///
/// The fast paths have a section of their own (`.text.fast`), where LLVM's
/// machine outliner leaves them alone: size optimisation would otherwise
/// share pieces of them (their prologues and epilogues) with other
/// functions, a call and a return more each, wherever the rest of the
/// kernel happens to make that pay.
#[inline(never)]
#[link_section = ".text.fast"]
extern "C" fn ipc_fast_call(ctx: *mut UserContext) -> Resume {
    ipc_fast_path(ctx, abi::Syscall::Call as u64, false)
}

/// See [`ipc_fast_call`].
#[inline(never)]
#[link_section = ".text.fast"] // (not outlined: see `ipc_fast_call`)
extern "C" fn ipc_fast_reply_recv(ctx: *mut UserContext) -> Resume {
    ipc_fast_path(ctx, abi::Syscall::ReplyRecv as u64, false)
}

/// The fast path's timed copy, for both call numbers: a call or
/// `reply_recv` with a timeout, or one whose partner waits with one (see
/// [`crate::ipc::fast_path`]). It may call functions: the two above stay
/// frameless.
#[inline(never)]
#[link_section = ".text.fast"] // (not outlined: see `ipc_fast_call`)
extern "C" fn ipc_fast_timed(ctx: *mut UserContext, number: u64) -> Resume {
    ipc_fast_path(ctx, number, true)
}

#[inline(always)]
fn ipc_fast_path(ctx: *mut UserContext, number: u64, timed: bool) -> Resume {
    let pc = percpu::current_running();
    let cpu = pc.index();
    let mut retry_timed = false;
    // Contended: the general path waits for the lock.
    if let Some(mut guard) = object::try_lock() {
        let mut k: *mut Kernel = &mut *guard;
        // The tables' address is a link-time constant; through a register
        // the compiler indexes them from the lock's address instead of
        // rebuilding it for each use (no instruction emitted).
        // SAFETY: an empty asm statement that only claims to change `k`.
        unsafe { asm!("/* {0} */", inout(reg) k, options(pure, readonly, nostack)) };
        // SAFETY: `k` still points at the tables the guard holds.
        let k = unsafe { &mut *k };
        // SAFETY: a thread's context is the first field of its (boxed,
        // `repr(C)`) TCB, so `ctx`, the context of the thread current
        // on this CPU (PerCpu.user_ctx is set whenever one is switched
        // in), is that thread. Its TCB is not freed while it is
        // current here (see `thread::destroy_object`), and the fast
        // path reaches no thread but its partner (never this one)
        // through `k`, so this is the only reference to it.
        let me = unsafe { &mut *ctx.cast::<Thread>() };
        let cur = me.id;
        debug_assert_eq!(k.cpus[cpu % MAX_CPUS].current, Some(cur));
        // A thread killed or moved elsewhere while it ran here is only
        // switched away, by the general path.
        if matches!(me.state, ThreadState::Running) && me.cpu == cpu {
            let result = crate::ipc::fast_path(k, cpu, cur, me, number, timed);
            if let Ok(h) = result {
                return hand_off(pc, guard, me, h);
            }
            retry_timed = !timed && matches!(result, Err(crate::ipc::Slow::Timed));
        }
    }
    if retry_timed {
        return ipc_fast_timed(ctx, number);
    }
    // ESR_EL1 still holds this exception's syndrome (interrupts are masked).
    general_path(8, ctx, hal::cpu::esr())
}

/// The end of a fast path: the CPU leaves `me` (the thread current here
/// until now, its context the one the entry saved) for the thread `h`
/// names, which the fast path made current.
#[inline(always)]
fn hand_off(pc: &percpu::PerCpu, guard: object::KernelGuard, me: &mut Thread, h: crate::ipc::Handoff) -> Resume {
    if h.save_fp {
        fp_save_inline(&mut me.fp);
        set_cpacr(CPACR_FP_EL1_ONLY);
    }
    save_exception_state(&mut me.ctx);
    if h.ttbr0 != me.ttbr0 {
        // SAFETY: the next task's tables, tagged with its ASID.
        unsafe { asm!("msr ttbr0_el1, {}", "isb", in(reg) h.ttbr0, options(nostack)) };
    }
    pc.user_ctx.store(h.ctx as u64, Ordering::Relaxed);
    // `me` may be made ready elsewhere as soon as the lock is free: the
    // exit path frees it once x19-x29 are stored.
    guard.release_at_exit();
    // An unoutlinable end: size optimisation would otherwise share this
    // tail with other functions, one branch more on the hottest path.
    // SAFETY: an empty asm statement.
    unsafe { asm!("", options(nostack, preserves_flags)) };
    Resume {
        ctx: h.ctx,
        save: &mut me.ctx,
    }
}

/// `Yield` to an equal-priority thread ready on this CPU, or `signal` to
/// a higher-priority waiter on this CPU, straight away (see
/// [`sched::yield_fast`], [`crate::ipc::signal_fast`]), else through the
/// general path. Like [`ipc_fast_call`], it makes no calls on its hot
/// path; one copy per call number.
#[inline(never)]
#[link_section = ".text.fast"] // (not outlined: see `ipc_fast_call`)
extern "C" fn yield_fast(ctx: *mut UserContext) -> Resume {
    switch_fast_path(ctx, abi::Syscall::Yield as u64)
}

/// See [`yield_fast`].
#[inline(never)]
#[link_section = ".text.fast"] // (not outlined: see `ipc_fast_call`)
extern "C" fn signal_fast(ctx: *mut UserContext) -> Resume {
    switch_fast_path(ctx, abi::Syscall::Signal as u64)
}

#[inline(always)]
fn switch_fast_path(ctx: *mut UserContext, number: u64) -> Resume {
    let pc = percpu::current_running();
    let cpu = pc.index();
    // Contended: the general path waits for the lock.
    if let Some(mut guard) = object::try_lock() {
        let k = &mut *guard;
        // SAFETY: as in `ipc_fast_path`: the context of the thread current
        // here is the first field of its TCB, which lives while it is
        // current; the fast paths reach no thread through `k` but the one
        // they switch to (never this one).
        let me = unsafe { &mut *ctx.cast::<Thread>() };
        if matches!(me.state, ThreadState::Running) && me.cpu == cpu && !k.work_pending() {
            let h = if number == abi::Syscall::Yield as u64 {
                let cur = me.id;
                let c = &mut k.cpus[cpu % MAX_CPUS];
                sched::yield_fast(c, cpu, me).map(|next| crate::ipc::Handoff::to(c, cur, next))
            } else {
                crate::ipc::signal_fast(k, cpu, me)
            };
            if let Some(h) = h {
                me.ctx.x[0] = 0;
                return hand_off(pc, guard, me, h);
            }
        }
    }
    // ESR_EL1 still holds this exception's syndrome (interrupts are masked).
    general_path(8, ctx, hal::cpu::esr())
}

/// Loads a thread's FP/SIMD state into the registers, without a call
/// (which would make [`fp_trap_fast`] keep its values in callee-saved
/// registers, and push and pop them). FP access must be enabled.
#[inline(always)]
fn fp_restore_inline(state: &FpState) {
    // SAFETY: FP access is enabled (the caller's `set_cpacr`); only the
    // FP/SIMD registers and FPCR/FPSR are written, from the buffer.
    unsafe {
        asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "ldp q0, q1, [{p}, #0 * 32]",
            "ldp q2, q3, [{p}, #1 * 32]",
            "ldp q4, q5, [{p}, #2 * 32]",
            "ldp q6, q7, [{p}, #3 * 32]",
            "ldp q8, q9, [{p}, #4 * 32]",
            "ldp q10, q11, [{p}, #5 * 32]",
            "ldp q12, q13, [{p}, #6 * 32]",
            "ldp q14, q15, [{p}, #7 * 32]",
            "ldp q16, q17, [{p}, #8 * 32]",
            "ldp q18, q19, [{p}, #9 * 32]",
            "ldp q20, q21, [{p}, #10 * 32]",
            "ldp q22, q23, [{p}, #11 * 32]",
            "ldp q24, q25, [{p}, #12 * 32]",
            "ldp q26, q27, [{p}, #13 * 32]",
            "ldp q28, q29, [{p}, #14 * 32]",
            "ldp q30, q31, [{p}, #15 * 32]",
            "ldr {a}, [{p}, #16 * 32]",
            "ldr {b}, [{p}, #16 * 32 + 8]",
            "msr fpcr, {a}",
            "msr fpsr, {b}",
            p = in(reg) state as *const FpState,
            a = out(reg) _,
            b = out(reg) _,
            options(nostack, preserves_flags)
        )
    };
}

/// `fp_save` without a call (which would make the fast path keep its
/// values in callee-saved registers).
#[inline(always)]
fn fp_save_inline(state: &mut FpState) {
    // SAFETY: FP access is enabled for the owner, whose state this is; only
    // the buffer is written.
    unsafe {
        asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "stp q0, q1, [{p}, #0 * 32]",
            "stp q2, q3, [{p}, #1 * 32]",
            "stp q4, q5, [{p}, #2 * 32]",
            "stp q6, q7, [{p}, #3 * 32]",
            "stp q8, q9, [{p}, #4 * 32]",
            "stp q10, q11, [{p}, #5 * 32]",
            "stp q12, q13, [{p}, #6 * 32]",
            "stp q14, q15, [{p}, #7 * 32]",
            "stp q16, q17, [{p}, #8 * 32]",
            "stp q18, q19, [{p}, #9 * 32]",
            "stp q20, q21, [{p}, #10 * 32]",
            "stp q22, q23, [{p}, #11 * 32]",
            "stp q24, q25, [{p}, #12 * 32]",
            "stp q26, q27, [{p}, #13 * 32]",
            "stp q28, q29, [{p}, #14 * 32]",
            "stp q30, q31, [{p}, #15 * 32]",
            "mrs {a}, fpcr",
            "mrs {b}, fpsr",
            "str {a}, [{p}, #16 * 32]",
            "str {b}, [{p}, #16 * 32 + 8]",
            p = in(reg) state as *mut FpState,
            a = out(reg) _,
            b = out(reg) _,
            options(nostack, preserves_flags)
        )
    };
}

/// Everything but the fast path: under the kernel lock (still held on return
/// when the CPU switches threads, see [`Resume`]). Kept out of line so the
/// fast path does not pay for this function's register saves.
#[inline(never)]
fn handle_el0_locked(kind: u64, regs: &mut UserContext, esr: u64) -> Resume {
    let ctx = regs as *mut UserContext;
    save_exception_state(regs);
    let pc = percpu::current_running();
    let cpu = pc.index();
    let mut k = object::lock();
    let Some(cur) = k.cpus[cpu].current else {
        panic!("entry from EL0 on CPU {cpu} with no current thread");
    };
    // A thread killed while it ran here (from another CPU) only comes in to
    // be switched away: whatever it trapped on is void.
    let alive = k.threads.get_inlined(cur).is_some_and(|t| t.is_alive());
    match kind {
        _ if !alive && kind != 9 => {}
        8 => match (esr >> 26) & 0x3f {
            0x15 => syscall::dispatch(&mut k, cur, esr, regs.x[8]),
            0x07 => fp_trap(&mut k, cpu, cur),
            0x18 => counter_read(&mut k, cur, regs, esr),
            _ => user_fault(&mut k, cur, esr, hal::cpu::far()),
        },
        9 => {
            irq::handle();
            irq::deliver_pending(&mut k);
            if time::scheduler_owns_timer() {
                sched::expire_timeouts(&mut k, cpu);
            }
            if k.teardown_pending > 0 {
                // Teardown nobody waits for (a task whose last thread
                // ended) goes on here too, a piece per interrupt.
                k.work_left = object::WORK_BUDGET;
                crate::task::work_off(&mut k);
            }
            k.cpus[cpu].need_resched = true;
        }
        _ => user_fault(&mut k, cur, esr, hal::cpu::far()),
    }
    // The common case: the thread goes on and nothing else became ready here.
    let running = k
        .threads
        .get_inlined(cur)
        .is_some_and(|t| matches!(t.state, ThreadState::Running) && t.cpu == cpu);
    if running && !k.cpus[cpu].need_resched {
        if core::mem::take(&mut k.cpus[cpu].timer_dirty) {
            sched::program_timer(&mut k, cpu);
        }
        // ELR/SPSR/SP_EL0 are restored from the registers, which the
        // handler cannot have changed for the running thread (but for a
        // restarted call, which changed both: it comes the other way).
        return Resume {
            ctx,
            save: core::ptr::null_mut(),
        };
    }
    // A restarted call (`syscall::again`) comes this way: it is a point
    // where another thread may run here, and if the same thread goes on, a
    // CPU that waits for the lock gets in first (`Kernel::polite`).
    let next = sched::pick_next(&mut k, cpu);
    let resume = switch(&mut k, cpu, Some(cur), next);
    if !resume.save.is_null() {
        k.release_at_exit();
    } else if core::mem::take(&mut k.polite) {
        drop(k);
        object::let_waiters_in();
    }
    resume
}

/// Copy the registers the entry path leaves live (PC, PSTATE, SP, thread
/// pointer) into the context, for handlers that read them or may switch
/// threads (the exit path relies on it: it does not save them itself).
#[inline(always)]
fn save_exception_state(ctx: &mut UserContext) {
    // SAFETY: reading the exception and thread-pointer registers has no
    // side effects.
    unsafe {
        asm!(
            "mrs {elr}, elr_el1",
            "mrs {spsr}, spsr_el1",
            "mrs {sp}, sp_el0",
            "mrs {tpidr}, tpidr_el0",
            elr = out(reg) ctx.elr,
            spsr = out(reg) ctx.spsr,
            sp = out(reg) ctx.sp,
            tpidr = out(reg) ctx.tpidr,
            options(nomem, nostack, preserves_flags)
        )
    };
}

/// Nothing to run here: look for work (interrupts to deliver, timeouts,
/// a thread to run, teardown), and while there is none, wait for an
/// interrupt and look again. Called by [`cpu_loop`]; the exit path comes
/// in through [`idle_wait`].
#[link_section = ".text.fast"] // (not outlined: see `ipc_fast_call`)
fn idle_next() -> *const UserContext {
    let cpu = percpu::current_running().index();
    loop {
        {
            let mut k = object::lock();
            irq::deliver_pending(&mut k);
            sched::expire_timeouts(&mut k, cpu);
            if let Some(next) = sched::pick_next(&mut k, cpu) {
                // Nothing to save (no thread left here): the lock drops.
                return switch(&mut k, cpu, None, Some(next)).ctx;
            }
            if k.teardown_pending > 0 {
                // Nothing to run: teardown, a piece at a time, with the
                // lock released (and interrupts taken) in between.
                k.work_left = object::WORK_BUDGET;
                if !crate::task::work_off(&mut k) {
                    drop(k);
                    crate::masked::unmasking();
                    hal::cpu::take_interrupts();
                    crate::masked::masking();
                    object::let_waiters_in();
                    continue;
                }
            }
            sched::program_timer(&mut k, cpu);
        }
        wait_for_interrupt();
    }
}

/// The exit path's way to idle, once it has saved the outgoing thread's
/// registers and released the lock: wait first, then [`idle_next`]. A pass
/// of `idle_next` before the wait would find nothing: under the lock,
/// `pick_next` found nothing to run here and [`switch`] armed the timer
/// (`sched::program_timer`). Everything else that pass looks for comes with
/// an interrupt, which ends the wait at once, also one that came before it:
/// - a thread made ready here by another CPU: its IPI (`sched::make_ready`).
///   This CPU made none ready here since `pick_next` (`reap`, in `switch`,
///   only frees);
/// - a device interrupt: the CPU that takes it delivers it
///   (`irq::deliver_pending`) before it next waits or leaves the kernel
///   (the EL0 interrupt path, `idle_next`), and a second one pending here
///   ends this wait;
/// - a timeout due: the timer, armed for the earliest;
/// - teardown left to do: `switch` sends this CPU an IPI itself.
#[no_mangle]
#[link_section = ".text.fast"] // (not outlined: see `ipc_fast_call`)
extern "C" fn idle_wait() -> *const UserContext {
    wait_for_interrupt();
    idle_next()
}

/// Wait for an interrupt with interrupts masked (a pending one still ends
/// the wait), then handle what is pending (`irq::handle`) here, without
/// taking the exception: nothing else runs between the two.
#[inline(always)]
fn wait_for_interrupt() {
    crate::masked::unmasking();
    hal::cpu::wait_for_interrupt();
    irq::handle();
    crate::masked::masking();
}

/// Leave `cur` (if any) for `next` (if any): FP state, address space, timer.
/// Where `cur`'s callee-saved registers go is in the result's `save`.
#[link_section = ".text.fast"] // (not outlined: see `ipc_fast_call`)
fn switch(k: &mut Kernel, cpu: usize, cur: Option<Id>, next: Option<Id>) -> Resume {
    let pc = percpu::current_running();
    // `next` is the CPU's current thread now (`sched::pick_next`): its
    // lookup below also gives the timer its priority.
    debug_assert!(k.cpus[cpu].current == next);
    // The same thread goes on: nothing to save, reap or load.
    let stay = next.is_some() && next == cur;
    let mut save = core::ptr::null_mut();
    if !stay {
        if let Some(c) = cur {
            save = match k.threads.get_mut_inlined(c) {
                Some(t) if t.is_alive() => {
                    if k.cpus[cpu].fp_owner == Some(c) {
                        // SAFETY: FP access is enabled for the owner; the state buffer is its own.
                        unsafe { fp_save(&mut t.fp) };
                        k.cpus[cpu].fp_owner = None;
                    }
                    &mut t.ctx as *mut UserContext
                }
                // SAFETY: only the address is taken; the exit path writes there.
                _ => unsafe { core::ptr::addr_of_mut!(DISCARD[cpu]) },
            };
        }
        reap(k, cpu);
        set_cpacr(CPACR_FP_EL1_ONLY);
    }
    let Some(n) = next else {
        pc.user_ctx.store(0, Ordering::Relaxed);
        if k.teardown_pending > 0 {
            // The exit path waits before it looks for work (`idle_wait`):
            // this CPU wakes itself for `idle_next` to do it (of what
            // `idle_next` does, the one thing no interrupt announces;
            // `reap` above may have left some).
            irq::send_ipi(cpu, irq::SGI_WAKE);
        }
        // Idle: no task's tables stay live (they may be freed meanwhile).
        // SAFETY: the empty table has no valid entries.
        unsafe {
            asm!("msr ttbr0_el1, {}", "isb", in(reg) crate::mm::kernel_space::empty_table_pa(), options(nostack))
        };
        sched::program_timer(k, cpu);
        return Resume {
            ctx: core::ptr::null(),
            save,
        };
    };
    let (ttbr0, priority, ctx) = k.threads.get_inlined(n).map_or((0, None, core::ptr::null()), |t| {
        (t.ttbr0, Some(t.priority), &t.ctx as *const UserContext)
    });
    if !stay {
        // SAFETY: TTBR0 gets the next task's tables, tagged with its ASID, so no
        // TLB flush is needed.
        unsafe { asm!("msr ttbr0_el1, {}", "isb", in(reg) ttbr0, options(nostack)) };
        pc.user_ctx.store(ctx as u64, Ordering::Relaxed);
    }
    sched::program_timer_for(&mut k.cpus[cpu], priority);
    Resume { ctx, save }
}

/// Free TCBs of dead threads that were current here (freed only once no CPU runs them).
pub(crate) fn reap(k: &mut Kernel, cpu: usize) {
    if let Some(id) = k.cpus[cpu].reap.take() {
        let task = k.threads.get(id).map(|t| t.task);
        if k.threads.get(id).is_some_and(|t| !t.is_alive() && t.refs == 0) {
            crate::thread::destroy_object(k, id);
        }
        // Its task may have been waiting for this CPU to leave its tables.
        if let Some(task) = task.filter(|t| k.tasks.get(*t).is_some_and(|t| t.free_pending && t.refs == 0)) {
            crate::task::destroy_object(k, task);
        }
    }
}

/// First FP/SIMD use since the thread was switched in, when
/// [`fp_trap_fast`] left it to the general path: load its state. (The same
/// as [`take_fp`], but with the out-of-line `fp_restore`: with `take_fp`
/// here the general path's code changed and `ipc_round_trip_cross_cpu`
/// took one instruction more.)
fn fp_trap(k: &mut Kernel, cpu: usize, cur: Id) {
    set_cpacr(CPACR_FP_ALL);
    if let Some(t) = k.threads.get_mut(cur) {
        // SAFETY: FP is enabled; the state buffer belongs to this thread.
        unsafe { fp_restore(&t.fp) };
    }
    k.cpus[cpu].fp_owner = Some(cur);
}

/// `t`, current on the CPU whose state is `c` and not its FP owner, takes
/// the FP/SIMD registers: its state is loaded and FP use no longer traps.
#[inline(always)]
fn take_fp(c: &mut sched::CpuState, t: &mut Thread) {
    set_cpacr(CPACR_FP_ALL);
    fp_restore_inline(&t.fp);
    c.fp_owner = Some(t.id);
}

/// An FP/SIMD trap (exception class 0x07) without the general path: the
/// running thread takes the registers ([`take_fp`]) and goes on, when the
/// kernel lock is free and nothing else is due here (a reschedule, the
/// timer, deferred work: those go the general path, which handles the
/// trap the same way and then sees to them).
#[inline(never)]
extern "C" fn fp_trap_fast(ctx: *mut UserContext) -> Resume {
    let cpu = percpu::current_running().index();
    if let Some(mut guard) = object::try_lock() {
        let k = &mut *guard;
        // SAFETY: as in `ipc_fast_path`: the context of the thread current
        // here is the first field of its TCB, which lives while it is
        // current; nothing else reaches it here.
        let me = unsafe { &mut *ctx.cast::<Thread>() };
        let work = k.work_pending();
        let c = &mut k.cpus[cpu % MAX_CPUS];
        if matches!(me.state, ThreadState::Running) && me.cpu == cpu && !c.need_resched && !c.timer_dirty && !work {
            take_fp(c, me);
            return Resume {
                ctx,
                save: core::ptr::null_mut(),
            };
        }
    }
    // ESR_EL1 still holds this exception's syndrome (interrupts are masked).
    general_path(8, ctx, hal::cpu::esr())
}

/// ESR_EL1's ISS for a trapped `mrs xN, pmccntr_el0` (EC 0x18: Op0 3, Op2
/// 0, Op1 3, CRn 9, CRm 13, read), without the register (Rt, bits 5-9).
const MRS_PMCCNTR: u64 = (3 << 20) | (3 << 14) | (9 << 10) | (13 << 1) | 1;
/// The same for `mrs xN, pmevcntr0_el0` (Op2 0, Op1 3, CRn 14, CRm 8):
/// event counter 0, which [`init_cpu`] sets to count instructions retired.
const MRS_PMEVCNTR0: u64 = (3 << 20) | (3 << 14) | (14 << 10) | (8 << 1) | 1;
/// PMU event 0x08, INST_RETIRED: instructions executed.
const INST_RETIRED: u64 = 0x08;
/// The register field of that ISS.
const ISS_RT: u64 = 0x1f << 5;

/// A trapped system-register access from EL0 (EC 0x18): a read of the
/// cycle counter, or of event counter 0 (instructions retired), by a task
/// holding the counters capability with `READ` is carried out (into `x0`-`x18` or `x30`, the registers the exit path
/// restores from the context; `xzr` discards it) and the thread goes on
/// after the instruction. Anything else (another PMU register, a write, a
/// task without the capability, `x19`-`x29`) is an undefined-instruction
/// fault. See `abi::ObjectType::Counters`.
fn counter_read(k: &mut Kernel, cur: Id, regs: &mut UserContext, esr: u64) {
    let iss = esr & 0x1ff_ffff;
    let rt = ((iss & ISS_RT) >> 5) as usize;
    let which = iss & !ISS_RT;
    let allowed = (which == MRS_PMCCNTR || which == MRS_PMEVCNTR0)
        && !(19..=29).contains(&rt)
        && hal::cpu::has_pmu()
        && k.threads
            .get(cur)
            .and_then(|t| k.tasks.get(t.task))
            .is_some_and(|t| t.cspace.reads_counters());
    if !allowed {
        user_fault(k, cur, esr, 0);
        return;
    }
    let value = if which == MRS_PMCCNTR {
        hal::cpu::cycle_counter()
    } else {
        hal::cpu::instructions_retired()
    };
    if rt < 31 {
        regs.x[rt] = value;
    }
    // Past the instruction: in the context (for a switch) and in ELR_EL1
    // (the same thread's return leaves it live).
    regs.elr += 4;
    // SAFETY: the return address of this exception, one instruction on
    // (interrupts are masked: nothing else takes an exception meanwhile).
    unsafe { asm!("msr elr_el1, {}", in(reg) regs.elr, options(nomem, nostack, preserves_flags)) };
}

/// Set where the current exception from EL0 returns to (the running
/// thread's context must say the same: a switch restores it from there).
pub fn set_return_address(pc: u64) {
    // SAFETY: interrupts are masked in the kernel, so ELR_EL1 still holds
    // this exception's return address, which only the exit path reads.
    unsafe { asm!("msr elr_el1, {}", in(reg) pc, options(nomem, nostack, preserves_flags)) };
}

fn user_fault(k: &mut Kernel, cur: Id, esr: u64, far: u64) {
    let kind = match (esr >> 26) & 0x3f {
        0x24 if esr & 0x3f == 0x21 => FaultKind::Alignment,
        0x24 => FaultKind::DataAbort,
        0x20 => FaultKind::InstructionAbort,
        0x22 | 0x26 => FaultKind::Alignment,
        0x00 | 0x01 | 0x0e | 0x18 => FaultKind::UndefinedInstruction,
        _ => FaultKind::Other,
    };
    crate::ipc::deliver_fault(k, cur, kind, esr, far, false);
}

/// Run user threads on this CPU forever (once user space exists).
pub fn cpu_loop() -> ! {
    while !time::scheduler_owns_timer() {
        hal::cpu::idle_until_interrupt();
    }
    let ctx = idle_next();
    // SAFETY: ctx is the saved context of the thread just chosen to run on
    // this CPU; enter_user resets the kernel stack and returns to EL0.
    unsafe { enter_user(ctx) }
}
