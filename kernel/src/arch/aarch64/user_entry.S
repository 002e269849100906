// Entry from and return to EL0.
//
// On entry only the registers a Rust call may clobber are saved (x0-x18,
// x30) into the running thread's UserContext: the Rust handlers preserve
// x19-x29, and ELR/SPSR/SP_EL0 stay in their registers (interrupts are
// masked in the kernel), so all of these still hold the user's values when
// the handler returns to the same thread. The handler copies ELR/SPSR/SP_EL0
// and TPIDR_EL0 into the context itself when it needs them (faults,
// switches). Only when
// the CPU switches to another thread does the exit path store x19-x29 (into
// the context the handler returns in x1) and load the whole next context
// (x0). This keeps a system call that does not switch threads short.
//
// A handler that switches returns with the kernel lock still held; the exit
// path releases it only after those stores. Released earlier, another CPU
// could make the outgoing thread run there (a migration, a resume, a reply)
// and load x19-x29 from its context before this CPU had stored them.

.equ PERCPU_USER_CTX, 16
.equ PERCPU_KERNEL_STACK, 32
.equ PERCPU_MASKED_SINCE, 40
.equ PERCPU_MASKED_MAX, 48
.equ PERCPU_MASKED_ON, 56
.equ CTX_SP, 248
.equ CTX_SPSR, 264

.macro VECTOR_EL0 kind
.balign 0x80
    stp     x0, x1, [sp, #-16]!
    mrs     x0, tpidr_el1
    ldr     x0, [x0, #PERCPU_USER_CTX]
    stp     x2, x3, [x0, #2 * 8]
    stp     x4, x5, [x0, #4 * 8]
    stp     x6, x7, [x0, #6 * 8]
    stp     x8, x9, [x0, #8 * 8]
    stp     x10, x11, [x0, #10 * 8]
    stp     x12, x13, [x0, #12 * 8]
    stp     x14, x15, [x0, #14 * 8]
    stp     x16, x17, [x0, #16 * 8]
    str     x18, [x0, #18 * 8]
    str     x30, [x0, #30 * 8]
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x0]
.if MEASURE_MASKED
    // Test image: interrupts are masked from here (see masked.rs).
    mrs     x3, tpidr_el1
    ldr     x4, [x3, #PERCPU_MASKED_ON]
    cbz     x4, 1f
    mrs     x2, pmevcntr0_el0
    str     x2, [x3, #PERCPU_MASKED_SINCE]
1:
.endif
.if \kind == 8
    bl      handle_el0_sync                 // (context)
.else
    mov     x1, x0
    mov     x0, #\kind
    bl      handle_el0                      // (kind, context)
.endif
    b       el0_exit                        // x0 = context to run (0: idle), x1 = where to save
.endm

.section .text.user_entry, "ax"

el0_exit:
    cbz     x1, restore_same_thread
    // Switching away: keep the outgoing thread's callee-saved registers.
    stp     x19, x20, [x1, #19 * 8]
    stp     x21, x22, [x1, #21 * 8]
    stp     x23, x24, [x1, #23 * 8]
    stp     x25, x26, [x1, #25 * 8]
    stp     x27, x28, [x1, #27 * 8]
    str     x29, [x1, #29 * 8]
    // (PC, PSTATE, SP_EL0 and TPIDR_EL0 are in the context already: the
    // handler stores them before it switches.) Now the context is whole:
    // release the kernel lock (KERNEL_LOCK: a byte, page-aligned).
    adrp    x2, KERNEL_LOCK
    stlrb   wzr, [x2]
    cbnz    x0, restore_all
    bl      idle_wait                       // waits for work; returns a context
    // fall through

// Restore a whole context (x0) and return to EL0.
.global restore_all
restore_all:
    ldp     x19, x20, [x0, #19 * 8]
    ldp     x21, x22, [x0, #21 * 8]
    ldp     x23, x24, [x0, #23 * 8]
    ldp     x25, x26, [x0, #25 * 8]
    ldp     x27, x28, [x0, #27 * 8]
    ldr     x29, [x0, #29 * 8]
    ldp     x2, x3, [x0, #CTX_SP]           // SP_EL0, ELR
    ldp     x4, x5, [x0, #CTX_SPSR]         // SPSR, TPIDR_EL0
    msr     sp_el0, x2
    msr     elr_el1, x3
    msr     spsr_el1, x4
    msr     tpidr_el0, x5

// Same thread: ELR, SPSR and SP_EL0 are still live in their registers.
restore_same_thread:
.if MEASURE_MASKED
    // Test image: the masked stretch ends at the eret (see masked.rs);
    // x1-x18 are free (reloaded below).
    mrs     x3, tpidr_el1
    ldr     x4, [x3, #PERCPU_MASKED_ON]
    cbz     x4, 1f
    mrs     x2, pmevcntr0_el0
    ldr     x4, [x3, #PERCPU_MASKED_SINCE]
    sub     w2, w2, w4
    ldr     x4, [x3, #PERCPU_MASKED_MAX]
    cmp     x2, x4
    csel    x2, x2, x4, hi
    str     x2, [x3, #PERCPU_MASKED_MAX]
1:
.endif
    ldr     x30, [x0, #30 * 8]
    ldr     x18, [x0, #18 * 8]
    ldp     x16, x17, [x0, #16 * 8]
    ldp     x14, x15, [x0, #14 * 8]
    ldp     x12, x13, [x0, #12 * 8]
    ldp     x10, x11, [x0, #10 * 8]
    ldp     x8, x9, [x0, #8 * 8]
    ldp     x6, x7, [x0, #6 * 8]
    ldp     x4, x5, [x0, #4 * 8]
    ldp     x2, x3, [x0, #2 * 8]
    ldp     x0, x1, [x0]
    eret

// First entry to user space on this CPU: x0 = context. Resets the kernel
// stack, since nothing on it is needed any more.
.global enter_user
enter_user:
    mrs     x1, tpidr_el1
    ldr     x2, [x1, #PERCPU_KERNEL_STACK]
    mov     sp, x2
    b       restore_all

// FP/SIMD state: x0 = &FpState (32 q registers, then FPCR, FPSR).
.arch_extension fp
.arch_extension simd
.global fp_save
fp_save:
    stp     q0, q1, [x0, #0 * 32]
    stp     q2, q3, [x0, #1 * 32]
    stp     q4, q5, [x0, #2 * 32]
    stp     q6, q7, [x0, #3 * 32]
    stp     q8, q9, [x0, #4 * 32]
    stp     q10, q11, [x0, #5 * 32]
    stp     q12, q13, [x0, #6 * 32]
    stp     q14, q15, [x0, #7 * 32]
    stp     q16, q17, [x0, #8 * 32]
    stp     q18, q19, [x0, #9 * 32]
    stp     q20, q21, [x0, #10 * 32]
    stp     q22, q23, [x0, #11 * 32]
    stp     q24, q25, [x0, #12 * 32]
    stp     q26, q27, [x0, #13 * 32]
    stp     q28, q29, [x0, #14 * 32]
    stp     q30, q31, [x0, #15 * 32]
    mrs     x1, fpcr
    mrs     x2, fpsr
    add     x3, x0, #16 * 32
    stp     x1, x2, [x3]
    ret

.global fp_restore
fp_restore:
    ldp     q0, q1, [x0, #0 * 32]
    ldp     q2, q3, [x0, #1 * 32]
    ldp     q4, q5, [x0, #2 * 32]
    ldp     q6, q7, [x0, #3 * 32]
    ldp     q8, q9, [x0, #4 * 32]
    ldp     q10, q11, [x0, #5 * 32]
    ldp     q12, q13, [x0, #6 * 32]
    ldp     q14, q15, [x0, #7 * 32]
    ldp     q16, q17, [x0, #8 * 32]
    ldp     q18, q19, [x0, #9 * 32]
    ldp     q20, q21, [x0, #10 * 32]
    ldp     q22, q23, [x0, #11 * 32]
    ldp     q24, q25, [x0, #12 * 32]
    ldp     q26, q27, [x0, #13 * 32]
    ldp     q28, q29, [x0, #14 * 32]
    ldp     q30, q31, [x0, #15 * 32]
    add     x3, x0, #16 * 32
    ldp     x1, x2, [x3]
    msr     fpcr, x1
    msr     fpsr, x2
    ret
