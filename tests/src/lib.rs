//! The Kestrel test harness: boots kernel images in QEMU with a timeout,
//! captures the console (stdout and stderr), and judges each case against
//! the console/test protocol of docs/CONTRACTS.md.
//!
//! - [`cases`]: every boot case and device-tree case, as data.
//! - [`runner`]: runs one case and judges it.
//! - [`process`]: child process with timeout, line capture and early stop.
//! - [`console`]: banner / `ktest:` / cargo result-line parsing.
//! - [`qemu`]: where every QEMU command line begins (`-nodefaults`).
//! - [`fdt`]: a tiny DTB editor used to make broken device trees.
//! - [`qmp`]: screen input (taps, swipes, keys) and screendumps over QEMU's QMP.
//! - [`fatcheck`]: checks of what a guest left on its FAT disk (fsck.fat,
//!   mtools).
//!
//! `cargo xtask test` drives it; nothing here builds images.

pub mod cases;
pub mod console;
pub mod fatcheck;
pub mod fdt;
pub mod media;
pub mod png;
pub mod powercut;
pub mod process;
pub mod qemu;
pub mod qmp;
pub mod runner;

pub use cases::{BootCase, DtCase, BOOT_CASES, DT_CASES};
pub use runner::{run_boot, run_dt, Env, Outcome};

/// Cases whose name contains `filter` (all of them without a filter).
pub fn select<'a, T>(cases: &'a [T], name: impl Fn(&T) -> &str, filter: Option<&str>) -> Vec<&'a T> {
    cases
        .iter()
        .filter(|c| filter.is_none_or(|f| name(c).contains(f)))
        .collect()
}
