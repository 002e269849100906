//! Starting the first user task, init, from the boot archive.
//!
//! The archive (cpio newc, read with the `newc` crate) is linked into the kernel image (or handed over
//! as an initrd). The kernel loads only `init` (a static ELF); init loads
//! everything else. Init receives capabilities to all free memory (a pool),
//! the console, the archive and the device tree; it reads the devices from
//! the tree and makes their regions and interrupt objects itself.

#[cfg(target_os = "none")]
mod start;

#[cfg(target_os = "none")]
pub use start::{init_ended, set_exit_code, start_init};
