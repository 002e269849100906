// Exception vector table for EL1.
//
// Every entry saves a full TrapFrame on the current stack and calls
// `handle_exception(frame, kind)`. Entries taken from EL1 first check that
// SP is still inside a kernel stack: stacks sit in the upper 32 KiB of a
// 64 KiB-aligned slot whose lower half is an unmapped guard, so bit 15 of
// SP is clear exactly when the stack has overflowed into its guard. Then the
// handler runs on this CPU's overflow stack instead.

.equ FRAME_SIZE, 36 * 8
.equ KIND_OVERFLOW, 16
.equ PERCPU_OVERFLOW_STACK, 8       // offset of PerCpu::overflow_stack_top

// Save everything but x0/x1 (already at [sp]) into the frame; x1 holds the
// kind and is preserved.
.macro SAVE_REST
    stp     x2, x3, [sp, #1 * 16]
    stp     x4, x5, [sp, #2 * 16]
    stp     x6, x7, [sp, #3 * 16]
    stp     x8, x9, [sp, #4 * 16]
    stp     x10, x11, [sp, #5 * 16]
    stp     x12, x13, [sp, #6 * 16]
    stp     x14, x15, [sp, #7 * 16]
    stp     x16, x17, [sp, #8 * 16]
    stp     x18, x19, [sp, #9 * 16]
    stp     x20, x21, [sp, #10 * 16]
    stp     x22, x23, [sp, #11 * 16]
    stp     x24, x25, [sp, #12 * 16]
    stp     x26, x27, [sp, #13 * 16]
    stp     x28, x29, [sp, #14 * 16]
    add     x2, sp, #FRAME_SIZE             // SP before the exception
    stp     x30, x2, [sp, #15 * 16]
    mrs     x2, elr_el1
    mrs     x3, spsr_el1
    stp     x2, x3, [sp, #16 * 16]
    mrs     x2, esr_el1
    mrs     x3, far_el1
    stp     x2, x3, [sp, #17 * 16]
.endm

.macro RESTORE_FRAME
    ldp     x0, x1, [sp, #16 * 16]
    msr     elr_el1, x0
    msr     spsr_el1, x1
    ldp     x0, x1, [sp, #0 * 16]
    ldp     x2, x3, [sp, #1 * 16]
    ldp     x4, x5, [sp, #2 * 16]
    ldp     x6, x7, [sp, #3 * 16]
    ldp     x8, x9, [sp, #4 * 16]
    ldp     x10, x11, [sp, #5 * 16]
    ldp     x12, x13, [sp, #6 * 16]
    ldp     x14, x15, [sp, #7 * 16]
    ldp     x16, x17, [sp, #8 * 16]
    ldp     x18, x19, [sp, #9 * 16]
    ldp     x20, x21, [sp, #10 * 16]
    ldp     x22, x23, [sp, #11 * 16]
    ldp     x24, x25, [sp, #12 * 16]
    ldp     x26, x27, [sp, #13 * 16]
    ldp     x28, x29, [sp, #14 * 16]
    ldr     x30, [sp, #15 * 16]
    add     sp, sp, #FRAME_SIZE
.endm

// Entry from EL1 with SP_EL1: check for stack overflow first.
.macro VECTOR_CURRENT kind
.balign 0x80
    sub     sp, sp, #FRAME_SIZE
    add     sp, sp, x0                      // sp = sp + x0 (x0 free to test sp)
    sub     x0, sp, x0                      // x0 = original sp
    tbz     x0, #15, 1f
    sub     x0, sp, x0                      // x0 = original x0
    sub     sp, sp, x0                      // sp = original sp
    stp     x0, x1, [sp]
    mov     x1, #\kind
    b       exception_common
1:  sub     x0, sp, x0                      // restore x0 and sp, then switch stacks
    sub     sp, sp, x0
    b       stack_overflow
.endm

.macro VECTOR kind
.balign 0x80
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp]
    mov     x1, #\kind
    b       exception_common
.endm

.section .text.vectors, "ax"
.balign 0x800
.global exception_vectors
exception_vectors:
    VECTOR 0            // current EL, SP_EL0: sync
    VECTOR 1            //                     irq
    VECTOR 2            //                     fiq
    VECTOR 3            //                     serror
    VECTOR_CURRENT 4    // current EL, SP_EL1: sync
    VECTOR_CURRENT 5    //                     irq
    VECTOR_CURRENT 6    //                     fiq
    VECTOR_CURRENT 7    //                     serror
    VECTOR_EL0 8        // lower EL, AArch64:  sync
    VECTOR_EL0 9        //                     irq
    VECTOR_EL0 10       //                     fiq
    VECTOR_EL0 11       //                     serror
    VECTOR_EL0 12       // lower EL, AArch32 (never enabled: faults)
    VECTOR_EL0 13
    VECTOR_EL0 14
    VECTOR_EL0 15

// Out of the table's section, which is exactly the 2 KiB table (it shares
// the image's header page; see boot/link.ld).
.section .text.exceptions, "ax"
exception_common:
    SAVE_REST
    mov     x0, sp
    bl      handle_exception
    RESTORE_FRAME
    eret

// The kernel stack ran into its guard page. Report on the per-CPU overflow
// stack; this never returns.
stack_overflow:
    msr     sp_el0, x0                      // scratch: the kernel does not use SP_EL0 yet
    mrs     x0, tpidr_el1
    cbz     x0, 2f
    ldr     x0, [x0, #PERCPU_OVERFLOW_STACK]
    mov     sp, x0
    sub     sp, sp, #FRAME_SIZE
    mrs     x0, sp_el0
    stp     x0, x1, [sp]
    mov     x1, #KIND_OVERFLOW
    SAVE_REST
    mov     x0, sp
    bl      handle_exception
2:  wfe
    b       2b
