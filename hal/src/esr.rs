//! Decoding the Exception Syndrome Register into words a person can read.

/// The exception class (ESR bits 31:26) in words.
pub fn exception_class_name(esr: u64) -> &'static str {
    match (esr >> 26) & 0x3f {
        0x00 => "Unknown reason (undefined instruction)",
        0x01 => "Trapped WFI/WFE",
        0x07 => "FP/SIMD access trapped",
        0x0e => "Illegal execution state",
        0x15 => "SVC (system call)",
        0x18 => "Trapped MSR/MRS/system instruction",
        0x20 => "Instruction Abort from a lower EL",
        0x21 => "Instruction Abort (kernel)",
        0x22 => "PC alignment fault",
        0x24 => "Data Abort from a lower EL",
        0x25 => "Data Abort (kernel)",
        0x26 => "SP alignment fault",
        0x2c => "Floating-point exception",
        0x2f => "SError interrupt",
        0x30 | 0x31 => "Breakpoint",
        0x32 | 0x33 => "Software step",
        0x34 | 0x35 => "Watchpoint",
        0x3c => "BRK instruction",
        _ => "Reserved or unexpected exception class",
    }
}

/// For instruction and data aborts: the fault status code (ISS bits 5:0) in words.
pub fn abort_status_name(esr: u64) -> &'static str {
    match esr & 0x3f {
        0x00..=0x03 => "address size fault",
        0x04 => "translation fault, level 0",
        0x05 => "translation fault, level 1",
        0x06 => "translation fault, level 2",
        0x07 => "translation fault, level 3",
        0x09..=0x0b => "access flag fault",
        0x0d..=0x0f => "permission fault",
        0x10 => "synchronous external abort",
        0x21 => "alignment fault",
        0x30 => "TLB conflict abort",
        _ => "other fault",
    }
}

/// Whether this ESR describes an instruction or data abort.
pub fn is_abort(esr: u64) -> bool {
    matches!((esr >> 26) & 0x3f, 0x20 | 0x21 | 0x24 | 0x25)
}

/// For data aborts: whether the access was a write (ISS.WnR).
pub fn is_write(esr: u64) -> bool {
    (esr >> 26) & 0x3f >= 0x24 && esr & (1 << 6) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_common_kernel_faults() {
        // A read of address 0 from EL1: data abort, translation fault level 0... 3.
        let esr = 0x9600_0007;
        assert_eq!(exception_class_name(esr), "Data Abort (kernel)");
        assert_eq!(abort_status_name(esr), "translation fault, level 3");
        assert!(is_abort(esr) && !is_write(esr));
        let write = 0x9600_0047;
        assert!(is_write(write));
        assert_eq!(
            exception_class_name(0x0200_0000),
            "Unknown reason (undefined instruction)"
        );
        assert_eq!(exception_class_name(0x5600_0000), "SVC (system call)");
        assert_eq!(exception_class_name(0x8600_000f), "Instruction Abort (kernel)");
        assert_eq!(abort_status_name(0x8600_000f), "permission fault");
        assert!(!is_abort(0x5600_0000));
    }
}
