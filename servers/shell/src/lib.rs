//! The shell's pure parts, tested on the host (`cargo test -p shell`): the
//! line editor ([`editor`]), the command language ([`command`]), and what
//! the commands print ([`report`], [`table`]). `main.rs` wires them to the
//! console service, the supervisor and the RTC.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod bus;
pub mod command;
pub mod editor;
pub mod http;
pub mod report;
pub mod table;
