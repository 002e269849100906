//! The kernel's bulk copy between two ranges of RAM in the linear map
//! ([`copy_bytes`]), for `MemoryRead` and `MemoryWrite`.
//!
//! The kernel is built without FP/SIMD code (`softfloat`), so a copy the
//! compiler makes moves eight bytes per loop of four instructions. This one
//! moves 128 bytes per loop of six through `q0`-`q7` (`ld1`/`st1` of four
//! registers, 64 bytes an instruction; byte elements need no alignment),
//! which it saves first and restores after: whatever thread owns the
//! FP/SIMD registers on this CPU (they are switched lazily) finds them as
//! it left them. The
//! kernel runs with interrupts masked, so nothing else uses them meanwhile,
//! and EL1 may use them at any time (`CPACR_EL1.FPEN` traps only EL0).
//! SVE is never enabled (`CPACR_EL1.ZEN` is 0), so no wider register state
//! is cut by the `q` writes.

use core::arch::asm;

/// Copy `n` bytes from `src` to `dst`.
///
/// # Safety
///
/// `src..src+n` must be readable and `dst..dst+n` writable kernel memory of
/// the Normal type (unaligned accesses are allowed there: `SCTLR_EL1.A` is
/// 0), and the caller holds the kernel lock with interrupts masked. The two
/// ranges may overlap (a task that copies between two places of one object
/// through its mapping); the overlap then holds some mix of the bytes, and
/// nothing outside `dst..dst+n` is written.
pub unsafe fn copy_bytes(dst: *mut u8, src: *const u8, n: usize) {
    let mut save = [0u128; 8];
    // SAFETY: the caller's contract above; `save` is 128 bytes of this
    // stack frame, where q0-q7 are kept and from where they are restored.
    unsafe {
        asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "stp q0, q1, [{save}]",
            "stp q2, q3, [{save}, #32]",
            "stp q4, q5, [{save}, #64]",
            "stp q6, q7, [{save}, #96]",
            // 128 bytes a loop.
            "subs {n}, {n}, #128",
            "b.lo 3f",
            "2:",
            "ld1 {{v0.16b, v1.16b, v2.16b, v3.16b}}, [{src}], #64",
            "ld1 {{v4.16b, v5.16b, v6.16b, v7.16b}}, [{src}], #64",
            "st1 {{v0.16b, v1.16b, v2.16b, v3.16b}}, [{dst}], #64",
            "st1 {{v4.16b, v5.16b, v6.16b, v7.16b}}, [{dst}], #64",
            "subs {n}, {n}, #128",
            "b.hs 2b",
            // Then 16 bytes a loop (n holds what is left minus 128).
            "3:",
            "adds {n}, {n}, #112",
            "b.lo 5f",
            "4:",
            "ldr q0, [{src}], #16",
            "str q0, [{dst}], #16",
            "subs {n}, {n}, #16",
            "b.hs 4b",
            // The last bytes (n holds what is left minus 16).
            "5:",
            "adds {n}, {n}, #16",
            "b.eq 7f",
            "6:",
            "ldrb {t:w}, [{src}], #1",
            "strb {t:w}, [{dst}], #1",
            "subs {n}, {n}, #1",
            "b.ne 6b",
            "7:",
            "ldp q0, q1, [{save}]",
            "ldp q2, q3, [{save}, #32]",
            "ldp q4, q5, [{save}, #64]",
            "ldp q6, q7, [{save}, #96]",
            save = in(reg) save.as_mut_ptr(),
            dst = inout(reg) dst => _,
            src = inout(reg) src => _,
            n = inout(reg) n => _,
            t = out(reg) _,
            options(nostack),
        );
    }
}
