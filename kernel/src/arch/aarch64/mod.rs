//! AArch64: exception vectors and fault reporting.
pub mod copy;
pub mod exceptions;
pub mod user;
