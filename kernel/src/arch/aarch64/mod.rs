//! AArch64: exception vectors and fault reporting.
pub mod exceptions;
pub mod user;
