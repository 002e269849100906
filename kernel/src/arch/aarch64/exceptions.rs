//! Exception entry from `vectors.S`, and the kernel fault report.

use crate::{console, irq, percpu, power};
use core::fmt::Write;

core::arch::global_asm!(
    ".set MEASURE_MASKED, {measure}",
    include_str!("user_entry.S"),
    include_str!("vectors.S"),
    measure = const crate::masked::MEASURE as u8,
);

extern "C" {
    static exception_vectors: u8;
}

/// Registers saved on exception entry; layout shared with `vectors.S`.
#[repr(C)]
pub struct TrapFrame {
    pub x: [u64; 31],
    pub sp: u64,
    pub elr: u64,
    pub spsr: u64,
    pub esr: u64,
    pub far: u64,
}

/// Which vector was taken: the table is four groups (by where the
/// exception came from) of four kinds.
const VECTOR_KINDS: [&str; 4] = ["sync", "IRQ", "FIQ", "SError"];
const VECTOR_SOURCES: [&str; 4] = ["EL1, SP_EL0", "EL1", "EL0", "AArch32 EL0"];
const KIND_OVERFLOW: u64 = 16;

/// Install the vector table on this CPU.
pub fn install() {
    // SAFETY: `exception_vectors` is the 2 KiB-aligned table in vectors.S.
    unsafe { hal::cpu::set_vector_base(core::ptr::addr_of!(exception_vectors) as u64) };
}

#[no_mangle]
extern "C" fn handle_exception(frame: &mut TrapFrame, kind: u64) {
    match kind {
        1 | 5 | 9 => irq::handle(),
        _ => kernel_fault(frame, kind),
    }
}

fn kernel_fault(frame: &TrapFrame, kind: u64) -> ! {
    let mut out = console::EmergencyWriter::new();
    let cpu = percpu::index();
    let what = if kind == KIND_OVERFLOW {
        "kernel stack overflow"
    } else {
        hal::esr::exception_class_name(frame.esr)
    };
    let _ = writeln!(out, "\nKERNEL FAULT on CPU {cpu}: {what}");
    let (group, within) = (kind as usize / 4, kind as usize % 4);
    match VECTOR_SOURCES.get(group) {
        Some(source) => {
            let _ = writeln!(out, "  vector: {} ({source})", VECTOR_KINDS[within]);
        }
        None => {
            let _ = writeln!(out, "  vector: none ({what})");
        }
    }
    if hal::esr::is_abort(frame.esr) {
        let access = if hal::esr::is_write(frame.esr) {
            "write"
        } else {
            "read/fetch"
        };
        let _ = writeln!(
            out,
            "  {} on {access} of {:#018x}",
            hal::esr::abort_status_name(frame.esr),
            frame.far
        );
    }
    let _ = writeln!(
        out,
        "  ESR={:#010x} FAR={:#018x} ELR={:#018x} SPSR={:#010x} SP={:#018x}",
        frame.esr, frame.far, frame.elr, frame.spsr, frame.sp
    );
    for (i, pair) in frame.x.chunks(4).enumerate() {
        let _ = write!(out, " ");
        for (j, v) in pair.iter().enumerate() {
            let _ = write!(out, " x{:<2}={v:#018x}", i * 4 + j);
        }
        let _ = writeln!(out);
    }
    let _ = write!(out, "  backtrace: {:#x}", frame.elr);
    let mut fp = frame.x[29];
    for _ in 0..16 {
        if fp == 0 || !fp.is_multiple_of(16) || !crate::mm::kernel_space::is_mapped(fp) {
            break;
        }
        // SAFETY: fp is a mapped, aligned kernel address holding a frame record.
        let (next, lr) = unsafe { (*(fp as *const u64), *((fp + 8) as *const u64)) };
        if lr == 0 {
            break;
        }
        let _ = write!(out, " {lr:#x}");
        fp = next;
    }
    let _ = writeln!(out);
    power::fatal(power::Fatal::KernelFault)
}
