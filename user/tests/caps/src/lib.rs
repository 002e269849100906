//! Shared by the capability tests.
#![no_std]

use userlib::log;

/// Runs one named check, logging it.
pub fn check(name: &str, f: impl FnOnce()) {
    f();
    log::info!("{name}: ok");
}
