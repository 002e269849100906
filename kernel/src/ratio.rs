//! Integer ratios without 128-bit arithmetic: [`abi::ratio`], which the
//! user library's clock shares.

pub use abi::ratio::scale;
