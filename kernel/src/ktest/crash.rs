//! Deliberate crashes (`ktest.crash=...`), so the harness can check the
//! fault and panic reports.

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let buffer = [depth; 64];
    // Keep the buffer and the call alive so the frames are real.
    core::hint::black_box(&buffer);
    recurse(depth + 1) + core::hint::black_box(buffer[7])
}

pub fn crash(kind: &str) -> ! {
    crate::info!("ktest: crashing on purpose: {kind}");
    match kind {
        "panic" => panic!("deliberate panic requested by ktest.crash"),
        "null" => {
            // SAFETY: not safe at all: this read faults on purpose.
            let value = unsafe { core::ptr::read_volatile(core::ptr::null::<u64>()) };
            panic!("read of address 0 returned {value}");
        }
        "stack" => {
            let n = recurse(0);
            panic!("recursion returned {n}");
        }
        "undef" => {
            // SAFETY: not safe: executes a permanently undefined instruction on purpose.
            unsafe { core::arch::asm!("udf #0") };
            panic!("udf returned");
        }
        other => panic!("unknown ktest.crash kind {other:?} (panic, null, stack, undef)"),
    }
}
