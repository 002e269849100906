//! SD Host Controller (SDHCI) driver library: the register layout
//! ([`regs`]), the SD card protocol's pure parts ([`card`]) and the
//! controller sequence ([`host`]), which reaches the device only through
//! [`host::Bus`] and so is tested on the host against a register model
//! of a controller with a card (`model`, tests only).
//!
//! The driver program (`main.rs`) puts it on a device with the driver kit
//! and serves the card as `blk`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod card;
pub mod host;
pub mod regs;

#[cfg(test)]
mod model;
#[cfg(test)]
mod tests;

pub use host::{Bus, CardInfo, SdError, Sdhci};
