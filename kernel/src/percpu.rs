//! Per-CPU data, found through TPIDR_EL1.

use crate::MAX_CPUS;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Size of the stack used to report a kernel stack overflow.
const OVERFLOW_STACK_SIZE: usize = 8192;

/// Data private to one CPU. The first eight fields are used by `vectors.S`
/// and `user_entry.S` at fixed offsets.
#[repr(C)]
pub struct PerCpu {
    /// Set when the CPU comes up ([`init_this_cpu`]); all of `PERCPU` starts
    /// zeroed, so it costs no space in the image (`.bss`).
    index: AtomicU64,
    /// Top of the stack for reporting a kernel stack overflow (offset 8).
    pub overflow_stack_top: AtomicU64,
    /// The running thread's saved user registers (offset 16).
    pub user_ctx: AtomicU64,
    /// Unused (offset 24: keeps the offsets `user_entry.S` knows).
    _reserved: AtomicU64,
    /// Top of this CPU's kernel stack (offset 32).
    pub kernel_stack_top: AtomicU64,
    /// Test image, under QEMU `-icount`: the instruction count (PMU event
    /// counter 0, `INST_RETIRED`) when interrupts were last masked here
    /// (offset 40), the longest masked stretch seen (offset 48), and
    /// whether the counter runs (offset 56). See [`crate::masked`].
    pub masked_since: AtomicU64,
    pub masked_max: AtomicU64,
    pub masked_on: AtomicU64,
    pub mpidr: AtomicU64,
    pub online: AtomicBool,
    /// Timer interrupts taken on this CPU.
    pub ticks: AtomicU64,
    /// IPIs taken on this CPU (other than stop requests).
    pub ipis: AtomicU64,
    /// GICv2 CPU interface number (target for SGIs).
    pub gic_cpu_interface: AtomicU32,
}

#[repr(C, align(16))]
struct OverflowStacks([[u8; OVERFLOW_STACK_SIZE]; MAX_CPUS]);

static mut OVERFLOW_STACKS: OverflowStacks = OverflowStacks([[0; OVERFLOW_STACK_SIZE]; MAX_CPUS]);

#[allow(clippy::declare_interior_mutable_const)]
const OFFLINE: PerCpu = PerCpu {
    index: AtomicU64::new(0),
    overflow_stack_top: AtomicU64::new(0),
    user_ctx: AtomicU64::new(0),
    _reserved: AtomicU64::new(0),
    kernel_stack_top: AtomicU64::new(0),
    masked_since: AtomicU64::new(0),
    masked_max: AtomicU64::new(0),
    masked_on: AtomicU64::new(0),
    mpidr: AtomicU64::new(0),
    online: AtomicBool::new(false),
    ticks: AtomicU64::new(0),
    ipis: AtomicU64::new(0),
    gic_cpu_interface: AtomicU32::new(0),
};

static PERCPU: [PerCpu; MAX_CPUS] = [OFFLINE; MAX_CPUS];

// The offsets `user_entry.S` uses.
const _: () = {
    assert!(core::mem::offset_of!(PerCpu, user_ctx) == 16);
    assert!(core::mem::offset_of!(PerCpu, kernel_stack_top) == 32);
    assert!(core::mem::offset_of!(PerCpu, masked_since) == 40);
    assert!(core::mem::offset_of!(PerCpu, masked_max) == 48);
    assert!(core::mem::offset_of!(PerCpu, masked_on) == 56);
};

impl PerCpu {
    /// Logical index of this CPU (valid once it is up).
    #[inline(always)]
    pub fn index(&self) -> usize {
        self.index.load(Ordering::Relaxed) as usize
    }
}

/// Point this CPU's TPIDR_EL1 at `PERCPU[index]` and set up its overflow
/// stack; `kernel_stack_top` is the top of the stack it runs on now.
pub fn init_this_cpu(index: usize, kernel_stack_top: u64) {
    let cpu = &PERCPU[index];
    cpu.index.store(index as u64, Ordering::Relaxed);
    cpu.kernel_stack_top.store(kernel_stack_top, Ordering::Relaxed);
    let stack = core::ptr::addr_of!(OVERFLOW_STACKS) as u64 + (index * OVERFLOW_STACK_SIZE) as u64;
    cpu.overflow_stack_top
        .store(stack + OVERFLOW_STACK_SIZE as u64, Ordering::Relaxed);
    cpu.mpidr.store(hal::cpu::mpidr(), Ordering::Relaxed);
    hal::cpu::set_tpidr(cpu as *const PerCpu as u64);
}

/// This CPU's data. (Out of line: it is used in many cold places; the hot
/// paths use [`current_running`].)
#[inline(never)]
pub fn current() -> &'static PerCpu {
    let p = hal::cpu::tpidr() as *const PerCpu;
    if p.is_null() {
        // Before init_this_cpu on the boot CPU.
        return &PERCPU[0];
    }
    // SAFETY: TPIDR_EL1 is only ever set by init_this_cpu to an element of PERCPU.
    unsafe { &*p }
}

/// This CPU's data, on a CPU past `init_this_cpu` (every CPU that runs
/// user code or the scheduler, or takes interrupts; TPIDR_EL1 is set
/// there): no call and no test, unlike [`current`], for the hot paths.
#[inline(always)]
pub fn current_running() -> &'static PerCpu {
    let p = hal::cpu::tpidr() as *const PerCpu;
    debug_assert!(!p.is_null());
    // SAFETY: user code and the scheduler run on a CPU, and it takes
    // interrupts (`irq::init_cpu` unmasks them), only after
    // init_this_cpu, which points TPIDR_EL1 at an element of PERCPU (and
    // nothing changes it after).
    unsafe { &*p }
}

/// Logical index of this CPU.
pub fn index() -> usize {
    current().index()
}

/// Every CPU's data.
pub fn all() -> &'static [PerCpu; MAX_CPUS] {
    &PERCPU
}
