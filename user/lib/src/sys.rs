//! The one place user space enters the kernel: `svc #0` with the ABI's
//! register convention (see the `abi` crate).

use abi::Syscall;

/// Registers `x0`–`x7` on entry.
pub type Args = [u64; 8];
/// Registers `x0`–`x6` on return.
pub type Ret = [u64; 7];

/// Makes system call `number` with registers `x0`–`x7` = `args`.
///
/// # Safety
/// The kernel does what the call asks: the caller must make sure that
/// it keeps the program's memory sound (e.g. `Unmap` of the stack, or a
/// buffer address the kernel writes, must not break what Rust code relies
/// on). The typed wrappers in [`crate::syscall`] are safe for all calls
/// whose effect on this task's memory is explicit in their arguments.
#[inline(always)]
pub unsafe fn syscall(number: u64, args: &Args) -> Ret {
    imp::syscall(number, args)
}

/// [`syscall`] with a typed number.
///
/// # Safety
/// As for [`syscall`].
#[inline(always)]
pub unsafe fn call(number: Syscall, args: &Args) -> Ret {
    // SAFETY: forwarded contract.
    unsafe { syscall(number as u64, args) }
}

/// Ends the calling thread; never returns.
#[inline(always)]
pub fn exit_thread(code: u64) -> ! {
    imp::exit_thread(code)
}

/// `Null` with nothing but the call number set up: the bare cost of a
/// system call, for benchmarks. Returns `x0`.
#[inline(always)]
pub fn null_call() -> u64 {
    imp::null_call()
}

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod imp {
    use super::{Args, Ret};
    use core::arch::asm;

    #[inline(always)]
    pub unsafe fn syscall(number: u64, a: &Args) -> Ret {
        let (r0, r1, r2, r3, r4, r5, r6);
        // SAFETY: `svc` enters the kernel, which follows the ABI: it
        // returns x0-x6, preserves x7, x8, x19-x30, sp and FP/SIMD state,
        // and zeroes x9-x18 (declared clobbered). No `nomem`: calls read
        // and write user memory (console text, the IPC buffer). The
        // caller vouches for the call's effect (see `super::syscall`).
        unsafe {
            asm!(
                "svc #0",
                inlateout("x0") a[0] => r0,
                inlateout("x1") a[1] => r1,
                inlateout("x2") a[2] => r2,
                inlateout("x3") a[3] => r3,
                inlateout("x4") a[4] => r4,
                inlateout("x5") a[5] => r5,
                inlateout("x6") a[6] => r6,
                in("x7") a[7],
                in("x8") number,
                out("x9") _, out("x10") _, out("x11") _, out("x12") _,
                out("x13") _, out("x14") _, out("x15") _, out("x16") _,
                out("x17") _, out("x18") _,
                options(nostack),
            );
        }
        [r0, r1, r2, r3, r4, r5, r6]
    }

    #[inline(always)]
    pub fn null_call() -> u64 {
        let r0;
        // SAFETY: `Null` does nothing; the registers the kernel may change
        // (x0-x6 results, x9-x18 zeroed) are declared.
        unsafe {
            asm!(
                "svc #0",
                lateout("x0") r0,
                lateout("x1") _, lateout("x2") _, lateout("x3") _,
                lateout("x4") _, lateout("x5") _, lateout("x6") _,
                in("x8") abi::Syscall::Null as u64,
                out("x9") _, out("x10") _, out("x11") _, out("x12") _,
                out("x13") _, out("x14") _, out("x15") _, out("x16") _,
                out("x17") _, out("x18") _,
                options(nostack, nomem, preserves_flags),
            );
        }
        r0
    }

    #[inline(always)]
    pub fn exit_thread(code: u64) -> ! {
        // SAFETY: ThreadExit never returns to this thread, so no Rust
        // state can be observed afterwards.
        unsafe {
            asm!(
                "svc #0",
                "brk #0x7e",
                in("x0") 0u64,
                in("x1") code,
                in("x8") abi::Syscall::ThreadExit as u64,
                options(noreturn, nostack),
            );
        }
    }
}

/// On the host (unit tests) there is no kernel: every call fails, so pure
/// code paths can still be tested.
#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
mod imp {
    use super::{Args, Ret};

    pub unsafe fn syscall(_number: u64, _a: &Args) -> Ret {
        [abi::Error::InvalidState as u64, 0, 0, 0, 0, 0, 0]
    }

    pub fn exit_thread(code: u64) -> ! {
        panic!("thread exit ({code}) outside Kestrel");
    }

    pub fn null_call() -> u64 {
        abi::Error::InvalidState as u64
    }
}
