//! `cargo xtask dt FILE.dtb`: run the kernel's own device-tree reader
//! (`hal::dt`) on the host and print what it makes of the machine.

use crate::util::Result;
use std::process::ExitCode;

/// Parses and checks a tree with `hal::dt`: (summary if it parsed, verdict).
/// Bad input must give an error, never a panic (a panic would be a bug in
/// `hal::dt`; `cargo xtask test` feeds it broken trees to check that).
/// A tree that parses but is not bootable still yields its summary.
pub fn check(bytes: &[u8]) -> (Option<String>, Result<()>) {
    match hal::dt::Machine::parse(bytes) {
        Err(e) => (None, Err(e.to_string())),
        Ok(machine) => {
            let summary = machine.to_string();
            (Some(summary), machine.check_bootable().map_err(|e| e.to_string()))
        }
    }
}

/// `cargo xtask dt FILE.dtb`
pub fn main(args: &crate::cli::DtArgs) -> Result<ExitCode> {
    let file = &args.file;
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let (summary, verdict) = check(&bytes);
    if let Some(s) = summary {
        println!("{s}");
    }
    match verdict {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
