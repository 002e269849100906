//! The shell's pure parts, tested on the host (`cargo test -p shell`): the
//! line editor ([`editor`]), the command language ([`command`]), and what
//! the commands print ([`report`], [`table`]). [`session`] runs command
//! lines against the system (the supervisor, the RTC, [`files`],
//! [`netcmd`]); `main.rs` wires a session and an editor to the console
//! service, and the Terminal app (`servers/sysui`) wires another to the
//! screen.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod bus;
pub mod cast;
pub mod command;
pub mod editor;
pub mod files;
pub mod http;
pub mod netcmd;
pub mod report;
pub mod session;
pub mod table;
