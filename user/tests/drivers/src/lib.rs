//! What the driver tests share: whether the board has the device and the
//! profile a driver for it, and waiting for the driver's service.
#![no_std]

extern crate alloc;

use alloc::string::String;
use userlib::ipc::Timeout;
use userlib::{log, names, syscall};

/// How long a driver may take to start and register its service.
pub const STARTUP: Timeout = Timeout::millis(10_000);

/// The device-tree device `compatible` and the program that drives it
/// (`-` for none), from the supervisor's device list (`node compatible
/// driver` records); `None` if the board has no such device.
pub fn device(compatible: &str) -> Option<(String, String)> {
    let devices = names::supervisor::devices().expect("the supervisor's device list");
    devices.iter().find_map(|(_, text)| {
        let mut w = text.split_whitespace();
        let (node, c, driver) = (w.next()?, w.next()?, w.next().unwrap_or("-"));
        (c == compatible).then(|| (node.into(), driver.into()))
    })
}

/// Waits until `service` is registered, or panics.
pub fn wait_for(service: &str) {
    match names::connect(service, STARTUP) {
        Ok(ep) => {
            let _ = syscall::cap_delete(ep);
        }
        Err(e) => panic!("service {service} did not appear: {e}"),
    }
}

/// `true` if the board has `compatible` and the profile starts a driver
/// for it; otherwise logs that the test has nothing to do here.
pub fn board_has(compatible: &str, what: &str) -> bool {
    match device(compatible) {
        None => log::info!("no {what} ({compatible}) on this board: nothing to test"),
        Some((node, driver)) if driver == "-" => {
            log::info!("{node} ({what}) has no driver in this profile: nothing to test")
        }
        Some((node, driver)) => {
            log::info!("{node} ({what}) driven by {driver}");
            return true;
        }
    }
    false
}
