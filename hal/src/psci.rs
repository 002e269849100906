//! PSCI calls (CPU_ON, SYSTEM_OFF), through the conduit the device tree names.

use crate::dt::PsciConduit;
use core::arch::asm;

/// PSCI return codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciError {
    NotSupported,
    InvalidParameters,
    Denied,
    AlreadyOn,
    OnPending,
    InternalFailure,
    NotPresent,
    Disabled,
    InvalidAddress,
    Unknown(i64),
}

impl PsciError {
    fn from_code(code: i64) -> Result<(), PsciError> {
        Err(match code {
            0 => return Ok(()),
            -1 => PsciError::NotSupported,
            -2 => PsciError::InvalidParameters,
            -3 => PsciError::Denied,
            -4 => PsciError::AlreadyOn,
            -5 => PsciError::OnPending,
            -6 => PsciError::InternalFailure,
            -7 => PsciError::NotPresent,
            -8 => PsciError::Disabled,
            -9 => PsciError::InvalidAddress,
            other => PsciError::Unknown(other),
        })
    }

    /// The specification's name of the error.
    pub fn name(self) -> &'static str {
        match self {
            PsciError::NotSupported => "NOT_SUPPORTED",
            PsciError::InvalidParameters => "INVALID_PARAMETERS",
            PsciError::Denied => "DENIED",
            PsciError::AlreadyOn => "ALREADY_ON",
            PsciError::OnPending => "ON_PENDING",
            PsciError::InternalFailure => "INTERNAL_FAILURE",
            PsciError::NotPresent => "NOT_PRESENT",
            PsciError::Disabled => "DISABLED",
            PsciError::InvalidAddress => "INVALID_ADDRESS",
            PsciError::Unknown(_) => "unknown error",
        }
    }
}

impl core::fmt::Display for PsciError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            // Sign and magnitude: `i64`'s formatter is not linked for this
            // one message (`u64`'s is anyway).
            PsciError::Unknown(code) => {
                let sign = if *code < 0 { "-" } else { "" };
                write!(f, "unknown error {sign}{}", code.unsigned_abs())
            }
            known => f.write_str(known.name()),
        }
    }
}

/// Issue one PSCI call.
pub fn call(conduit: PsciConduit, function: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    let mut x0 = function as u64;
    // SAFETY: PSCI calls follow the SMC calling convention: x0-x17 may be
    // clobbered, memory is not touched on our behalf.
    unsafe {
        match conduit {
            PsciConduit::Hvc => asm!("hvc #0", inout("x0") x0, inout("x1") a1 => _, inout("x2") a2 => _,
                inout("x3") a3 => _, out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _,
                out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _,
                out("x15") _, out("x16") _, out("x17") _, options(nostack)),
            PsciConduit::Smc => asm!("smc #0", inout("x0") x0, inout("x1") a1 => _, inout("x2") a2 => _,
                inout("x3") a3 => _, out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _,
                out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _,
                out("x15") _, out("x16") _, out("x17") _, options(nostack)),
        }
    }
    x0 as i64
}

/// Start the CPU with affinity `mpidr` at physical address `entry`.
pub fn cpu_on(conduit: PsciConduit, function: u32, mpidr: u64, entry: u64, context: u64) -> Result<(), PsciError> {
    PsciError::from_code(call(conduit, function, mpidr, entry, context))
}

/// Power the machine off. Returns only if the firmware refused.
pub fn system_off(conduit: PsciConduit, function: u32) -> PsciError {
    last_call(conduit, function)
}

/// Reset the machine. Returns only if the firmware refused.
pub fn system_reset(conduit: PsciConduit, function: u32) -> PsciError {
    last_call(conduit, function)
}

/// A call without arguments that does not return when it works.
fn last_call(conduit: PsciConduit, function: u32) -> PsciError {
    match PsciError::from_code(call(conduit, function, 0, 0, 0)) {
        Ok(()) => PsciError::Unknown(0),
        Err(e) => e,
    }
}
