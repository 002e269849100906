//! Arm semihosting: how a test image reports to QEMU (`-semihosting`).
//!
//! Only the test image calls these: on real hardware without a debugger the
//! `hlt` instruction would trap.

use core::arch::asm;

const SYS_WRITE0: u64 = 0x04;
const SYS_EXIT_EXTENDED: u64 = 0x20;
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x20026;

fn call(op: u64, param: u64) -> u64 {
    let mut x0 = op;
    // SAFETY: a semihosting call reads the parameter block and has no other effect on us.
    unsafe { asm!("hlt #0xf000", inout("x0") x0, in("x1") param, options(nostack)) };
    x0
}

/// Print a string on the host's console (QEMU's stdout/stderr).
pub fn write(text: &str) {
    let mut buf = [0u8; 256];
    for chunk in text.as_bytes().chunks(buf.len() - 1) {
        buf[..chunk.len()].copy_from_slice(chunk);
        buf[chunk.len()] = 0;
        call(SYS_WRITE0, buf.as_ptr() as u64);
    }
}

/// End the emulation; QEMU exits with `code` (mod 256).
pub fn exit(code: u32) -> ! {
    let block = [ADP_STOPPED_APPLICATION_EXIT, code as u64];
    call(SYS_EXIT_EXTENDED, block.as_ptr() as u64);
    loop {
        core::hint::spin_loop();
    }
}
