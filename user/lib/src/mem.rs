//! `memcpy` and `memset` for user programs, in place of the portable ones
//! `compiler_builtins` links for `aarch64-unknown-none` (which move eight
//! bytes per loop of four instructions: about 0.5 instructions a byte).
//!
//! Every user-space byte copy of any size goes through these: file data
//! between the block driver, the file server's cache and a client's
//! buffer; pixels; messages. The bulk loop here moves 64 bytes in 12
//! instructions (about 0.19 a byte) with general-purpose register pairs
//! only, so a task that copies still never touches the FP/SIMD registers
//! (and the kernel does not have to switch their state for it).
//!
//! Accesses are aligned, so either side may be device memory (where an
//! unaligned access faults): the destination is brought to 8-byte
//! alignment with byte stores first; a source in step with it is read
//! with 8-byte loads, and one out of step with aligned 8-byte loads
//! shifted together (16 bytes in 10 instructions), each of which holds at
//! least one byte of the source, so no load reaches past its page.
//!
//! Tested on the CPU by test-basic (`copies_and_fills`: every size to 300
//! bytes at every pair of offsets, against a byte loop), which every
//! `utest` case runs.

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
core::arch::global_asm!(
    // memcpy(x0 = dst, x1 = src, x2 = n) -> x0. Scratch: x3-x13.
    ".section .text.memcpy, \"ax\", %progbits",
    ".global memcpy",
    ".type memcpy, %function",
    ".p2align 4",
    "memcpy:",
    "    mov     x3, x0",
    "    cmp     x2, #16",
    "    b.lo    8f",
    // Bring the destination to 8-byte alignment.
    "    ands    x4, x3, #7",
    "    b.eq    2f",
    "    mov     x5, #8",
    "    sub     x4, x5, x4",
    "    sub     x2, x2, x4",
    "1:  ldrb    w5, [x1], #1",
    "    strb    w5, [x3], #1",
    "    subs    x4, x4, #1",
    "    b.ne    1b",
    // A source out of step with the destination: aligned loads, shifted
    // together (x12: the source's offset in bits; x13: 64 minus that, as
    // shifts take their amount modulo 64).
    "2:  ands    x12, x1, #7",
    "    b.eq    20f",
    "    lsl     x12, x12, #3",
    "    neg     x13, x12",
    "    bic     x1, x1, #7",
    "    ldr     x4, [x1], #8",
    "21: subs    x2, x2, #16",
    "    b.lo    22f",
    "    ldp     x5, x6, [x1], #16",
    "    lsr     x7, x4, x12",
    "    lsl     x8, x5, x13",
    "    orr     x7, x7, x8",
    "    lsr     x9, x5, x12",
    "    lsl     x10, x6, x13",
    "    orr     x9, x9, x10",
    "    stp     x7, x9, [x3], #16",
    "    mov     x4, x6",
    "    b       21b",
    // Back to the source's true address for the last bytes: x4 holds
    // the aligned word before x1.
    "22: add     x2, x2, #16",
    "    sub     x1, x1, #8",
    "    add     x1, x1, x12, lsr #3",
    "    b       8f",
    // 64 bytes a loop.
    "20: subs    x2, x2, #64",
    "    b.lo    4f",
    "3:  ldp     x4, x5, [x1]",
    "    ldp     x6, x7, [x1, #16]",
    "    ldp     x8, x9, [x1, #32]",
    "    ldp     x10, x11, [x1, #48]",
    "    add     x1, x1, #64",
    "    stp     x4, x5, [x3]",
    "    stp     x6, x7, [x3, #16]",
    "    stp     x8, x9, [x3, #32]",
    "    stp     x10, x11, [x3, #48]",
    "    add     x3, x3, #64",
    "    subs    x2, x2, #64",
    "    b.hs    3b",
    "4:  add     x2, x2, #64",
    // Then 8 bytes a loop.
    "5:  subs    x2, x2, #8",
    "    b.lo    6f",
    "    ldr     x4, [x1], #8",
    "    str     x4, [x3], #8",
    "    b       5b",
    "6:  add     x2, x2, #8",
    // The last bytes (and copies under 16 bytes).
    "8:  cbz     x2, 9f",
    "7:  ldrb    w5, [x1], #1",
    "    strb    w5, [x3], #1",
    "    subs    x2, x2, #1",
    "    b.ne    7b",
    "9:  ret",
    ".size memcpy, . - memcpy",
    //
    // memset(x0 = dst, w1 = byte, x2 = n) -> x0. Scratch: x3-x5.
    ".section .text.memset, \"ax\", %progbits",
    ".global memset",
    ".type memset, %function",
    ".p2align 4",
    "memset:",
    "    mov     x3, x0",
    "    and     x1, x1, #0xff",
    "    cmp     x2, #16",
    "    b.lo    18f",
    // The byte in all eight lanes of x1.
    "    orr     x1, x1, x1, lsl #8",
    "    orr     x1, x1, x1, lsl #16",
    "    orr     x1, x1, x1, lsl #32",
    "    ands    x4, x3, #7",
    "    b.eq    12f",
    "    mov     x5, #8",
    "    sub     x4, x5, x4",
    "    sub     x2, x2, x4",
    "11: strb    w1, [x3], #1",
    "    subs    x4, x4, #1",
    "    b.ne    11b",
    "12: subs    x2, x2, #64",
    "    b.lo    14f",
    "13: stp     x1, x1, [x3]",
    "    stp     x1, x1, [x3, #16]",
    "    stp     x1, x1, [x3, #32]",
    "    stp     x1, x1, [x3, #48]",
    "    add     x3, x3, #64",
    "    subs    x2, x2, #64",
    "    b.hs    13b",
    "14: add     x2, x2, #64",
    "15: subs    x2, x2, #8",
    "    b.lo    16f",
    "    str     x1, [x3], #8",
    "    b       15b",
    "16: add     x2, x2, #8",
    "18: cbz     x2, 19f",
    "17: strb    w1, [x3], #1",
    "    subs    x2, x2, #1",
    "    b.ne    17b",
    "19: ret",
    ".size memset, . - memset",
    ".text",
);
