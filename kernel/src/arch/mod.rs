//! Architecture support. Only AArch64 exists.
pub mod aarch64;
