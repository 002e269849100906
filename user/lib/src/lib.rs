//! The Kestrel user library: what every user program links.
//!
//! - [`entry!`] and `_start`: start-up from the kernel's [`abi::boot_info::BootInfo`]
//!   (init) or a parent's [`abi::boot_info::StartInfo`]; `main`'s return
//!   value ends the program ([`rt`]).
//! - [`syscall`]: a typed wrapper for every system call; [`sys`] is the raw
//!   `svc`.
//! - [`ipc`]: messages (registers, IPC buffer, capabilities), timeouts.
//! - [`server`]: a server loop over `ReplyRecv`.
//! - A heap ([`heap`]) so that programs can use `alloc`.
//! - [`println!`] and a `log` backend writing to the console with the
//!   task's name as prefix ([`console`]).
//! - A panic handler that prints the message with file and line, sends it
//!   to the supervisor and exits nonzero (the kernel turns that into a
//!   `Panic` fault report).
//! - [`fs`]: files and directories over the file server, shaped like
//!   `std::fs`.
//! - [`mem`]: `memcpy` and `memset` for AArch64, several times faster than
//!   the portable ones.
//! - [`loader`]: starting programs from the boot archive; [`thread`]:
//!   threads in this task; [`vspace`]: mapping memory.
//! - [`test`](mod@test): helpers for test programs; [`proto`]: the messages a task
//!   and its supervisor exchange.
//!
//! Pure parts (message packing, ELF planning, the archive reader in
//! [`cpio`]) build and are tested on the host: `cargo test -p userlib`.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod arch;
pub mod console;
pub mod fs;
pub mod geom;
pub mod heap;
pub mod ipc;
pub mod keymap;
pub mod loader;
pub mod mem;
pub mod names;
pub mod net;
pub mod proto;
pub mod rt;
pub mod server;
pub mod services;
pub mod sync;
pub mod sys;
pub mod syscall;
pub mod test;
pub mod thread;
pub mod vspace;

/// The boot archive reader.
pub use newc as cpio;

pub use abi;
pub use abi::{Error, Handle, Rights};
pub use ipc::{Message, Timeout};
pub use log;
pub use rt::{exit, fail, process};
