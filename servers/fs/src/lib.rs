//! The file server's pure parts, tested on the host: its arguments
//! ([`config`]), its handle table ([`handles`]) and when a block request
//! waits for the driver or fails at once ([`link`]). The server itself is
//! `main.rs`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod config;
pub mod handles;
pub mod link;
