//! `memcpy` and `memset` for user programs, in place of the portable ones
//! `compiler_builtins` links for `aarch64-unknown-none` (which move eight
//! bytes per loop of four instructions: about 0.5 instructions a byte).
//!
//! Every user-space byte copy of any size goes through these: file data
//! between the block driver, the file server's cache and a client's
//! buffer; pixels; messages. The bulk loop here moves 64 bytes in 12
//! instructions (about 0.19 a byte) with general-purpose register pairs;
//! a copy of 256 bytes or more whose source and destination are in step
//! to 16 bytes moves 256 bytes in 10 through q registers (`ld1`/`st1` of
//! four registers, 64 bytes an instruction: about 0.04 a byte).
//! Only those copies touch the FP/SIMD registers, so a task that copies
//! small things still never makes the kernel load its FP state (the
//! compiler's own code in most tasks uses q registers anyway).
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
    ".arch_extension simd",
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
    // Both in step and at least 256 bytes: the destination to 16-byte
    // alignment, then (a source in step with it to 16 bytes too) 256
    // bytes a loop of 10 through q0-q7 and q16-q23 (q8-q15 are the
    // caller's), then one 128-byte block if that much is left.
    "20: cmp     x2, #256",
    "    b.lo    24f",
    "    tst     x3, #8",
    "    b.eq    25f",
    "    ldr     x4, [x1], #8",
    "    str     x4, [x3], #8",
    "    sub     x2, x2, #8",
    "25: tst     x1, #15",
    "    b.ne    24f",
    "    subs    x2, x2, #256",
    "    b.lo    28f",
    "26: ld1     {{v0.16b, v1.16b, v2.16b, v3.16b}}, [x1], #64",
    "    ld1     {{v4.16b, v5.16b, v6.16b, v7.16b}}, [x1], #64",
    "    ld1     {{v16.16b, v17.16b, v18.16b, v19.16b}}, [x1], #64",
    "    ld1     {{v20.16b, v21.16b, v22.16b, v23.16b}}, [x1], #64",
    "    st1     {{v0.16b, v1.16b, v2.16b, v3.16b}}, [x3], #64",
    "    st1     {{v4.16b, v5.16b, v6.16b, v7.16b}}, [x3], #64",
    "    st1     {{v16.16b, v17.16b, v18.16b, v19.16b}}, [x3], #64",
    "    st1     {{v20.16b, v21.16b, v22.16b, v23.16b}}, [x3], #64",
    "    subs    x2, x2, #256",
    "    b.hs    26b",
    "28: adds    x2, x2, #128",
    "    b.lo    29f",
    "    ldp     q0, q1, [x1]",
    "    ldp     q2, q3, [x1, #32]",
    "    ldp     q4, q5, [x1, #64]",
    "    ldp     q6, q7, [x1, #96]",
    "    add     x1, x1, #128",
    "    stp     q0, q1, [x3]",
    "    stp     q2, q3, [x3, #32]",
    "    stp     q4, q5, [x3, #64]",
    "    stp     q6, q7, [x3, #96]",
    "    add     x3, x3, #128",
    "    b       24f",
    "29: add     x2, x2, #128",
    // 64 bytes a loop.
    "24: subs    x2, x2, #64",
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
