//! The file server's pure parts, tested on the host: its arguments
//! ([`config`]) and its handle table ([`handles`]). The server itself is
//! `main.rs`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod config;
pub mod handles;
