//! How a test program's end becomes pass or fail.
//!
//! A test passes if it exits with 0 and announced no fault, or if it
//! announced a fault (`proto::EXPECT_FAULT`) and exactly that fault came.
//! Anything else fails, with a reason for the report line.

extern crate alloc;

use alloc::format;
use alloc::string::String;
use userlib::abi::FaultKind;

/// A fault the program said would come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    pub kind: FaultKind,
    /// The fault address, if it matters.
    pub far: Option<u64>,
}

/// How a program's run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// It sent `proto::EXIT` with this code.
    Exit(u64),
    /// A fault message (words 0-3).
    Fault(Fault),
    /// Nothing came in time.
    TimedOut(u64),
}

/// A decoded fault message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub esr: u64,
    /// The fault address; the exit code for `Panic`, the call number for
    /// `BadSyscall`.
    pub far: u64,
    pub pc: u64,
}

impl Fault {
    pub fn from_words(w: &[u64]) -> Fault {
        let at = |i: usize| w.get(i).copied().unwrap_or(0);
        Fault {
            kind: FaultKind::from_word(at(0)),
            esr: at(1),
            far: at(2),
            pc: at(3),
        }
    }
}

pub fn kind_name(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::DataAbort => "data abort",
        FaultKind::InstructionAbort => "instruction abort",
        FaultKind::Alignment => "alignment fault",
        FaultKind::UndefinedInstruction => "undefined instruction",
        FaultKind::BadSyscall => "bad system call",
        FaultKind::Panic => "panic",
        FaultKind::Other => "other fault",
    }
}

/// One line describing a fault (as logged by init).
pub fn describe(f: &Fault) -> String {
    match f.kind {
        FaultKind::Panic => format!("panic (exit code {}) at pc={:#x}", f.far, f.pc),
        k => format!("{} at pc={:#x} far={:#x} esr={:#x}", kind_name(k), f.pc, f.far, f.esr),
    }
}

/// Pass (`Ok`) or fail with a reason. `reason` is what the program said
/// before failing (its panic message), if anything.
pub fn judge(expected: Option<Expected>, end: End, reason: Option<&str>) -> Result<(), String> {
    match (expected, end) {
        (None, End::Exit(0)) => Ok(()),
        (Some(e), End::Exit(0)) => Err(format!("exited without the expected {}", kind_name(e.kind))),
        (_, End::Exit(code)) => Err(format!("exited with code {code}")),
        (_, End::TimedOut(s)) => Err(format!("timed out after {s} s (hung or deadlocked)")),
        (Some(e), End::Fault(f)) if e.kind == f.kind && e.far.is_none_or(|a| a == f.far) => Ok(()),
        (Some(e), End::Fault(f)) => {
            let want = match e.far {
                Some(a) => format!("{} at far={a:#x}", kind_name(e.kind)),
                None => kind_name(e.kind).into(),
            };
            Err(format!(
                "expected {want}, got {}{}",
                describe(&f),
                reason.map(|r| format!(": {r}")).unwrap_or_default()
            ))
        }
        (None, End::Fault(f)) if f.kind == FaultKind::Panic => Err(match reason {
            Some(r) => r.into(),
            None => format!("panicked (exit code {})", f.far),
        }),
        (None, End::Fault(f)) => Err(format!("unexpected {}", describe(&f))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: FaultKind, far: u64) -> End {
        End::Fault(Fault {
            kind,
            esr: 0x9200_0004,
            far,
            pc: 0x40_1000,
        })
    }

    #[test]
    fn plain_tests() {
        assert_eq!(judge(None, End::Exit(0), None), Ok(()));
        assert_eq!(judge(None, End::Exit(3), None), Err("exited with code 3".into()));
        assert!(judge(None, End::TimedOut(120), None)
            .unwrap_err()
            .contains("timed out after 120 s"));
        let panic = End::Fault(Fault {
            kind: FaultKind::Panic,
            esr: 0x5600_0000,
            far: 101,
            pc: 0,
        });
        assert_eq!(
            judge(None, panic, Some("panicked at a.rs:1: x")),
            Err("panicked at a.rs:1: x".into())
        );
        assert_eq!(judge(None, panic, None), Err("panicked (exit code 101)".into()));
        let e = judge(None, fault(FaultKind::DataAbort, 0x1234), None).unwrap_err();
        assert!(e.starts_with("unexpected data abort at pc=0x401000 far=0x1234"), "{e}");
    }

    #[test]
    fn expected_faults() {
        let da = Expected {
            kind: FaultKind::DataAbort,
            far: Some(0xffff_ffff_8000_0000),
        };
        assert_eq!(
            judge(Some(da), fault(FaultKind::DataAbort, 0xffff_ffff_8000_0000), None),
            Ok(())
        );
        let e = judge(Some(da), fault(FaultKind::DataAbort, 0x10), None).unwrap_err();
        assert!(
            e.starts_with("expected data abort at far=0xffffffff80000000, got data abort"),
            "{e}"
        );
        let any = Expected {
            kind: FaultKind::InstructionAbort,
            far: None,
        };
        assert_eq!(judge(Some(any), fault(FaultKind::InstructionAbort, 7), None), Ok(()));
        assert!(judge(Some(any), fault(FaultKind::DataAbort, 7), None).is_err());
        assert_eq!(
            judge(Some(any), End::Exit(0), None),
            Err("exited without the expected instruction abort".into())
        );
    }

    #[test]
    fn decodes_fault_words() {
        assert_eq!(
            Fault::from_words(&[2, 3, 4, 5]),
            Fault {
                kind: FaultKind::InstructionAbort,
                esr: 3,
                far: 4,
                pc: 5
            }
        );
        assert_eq!(Fault::from_words(&[]).kind, FaultKind::Other);
    }
}
