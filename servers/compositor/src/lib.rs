//! The compositor's pure parts, tested on the host: rectangles and damage
//! ([`geom`]), composing surfaces into a framebuffer ([`compose`]), the
//! stacking and focus rules ([`scene`]) and touch decoding with the system
//! gestures ([`gesture`]). `main.rs` adds the IPC, the shared memory and
//! the display and input drivers. Protocol: `userlib::services::compositor`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod compose;
pub mod geom;
pub mod gesture;
pub mod scene;
