//! Architecture support. Only AArch64 exists.
pub mod aarch64;

pub use aarch64::user::set_return_address;
