//! The DWC2 USB host driver's pure parts, tested on the host: USB
//! descriptors and requests ([`usb`]), HID boot-keyboard and tablet
//! reports turned into evdev events ([`hid`], [`tablet`]). The bounded event
//! queue between the polling thread and the readers and the `READ` server
//! are the driver kit's (`driverkit::input`), shared with virtio-input.
//!
//! Everything here reads bytes a USB device sent, so nothing trusts them:
//! a short, long or inconsistent descriptor or report is an error or is
//! ignored, never a panic.
//!
//! The driver program (`main.rs`) drives the controller and serves the
//! events as `keyboard` and `touch` (protocol: `userlib::services::input`).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod hid;
pub mod tablet;
pub mod usb;
