//! The soft bus: devices on one link find each other, trust each other by
//! a device-group key, and talk over encrypted, mutually authenticated
//! sessions. `docs/BUS.md` is the design and the wire format; this library
//! is its pure part, tested on the host (`cargo test -p bus`):
//!
//! - [`wire`]: the packets and their bodies;
//! - [`keys`]: the group key and what is derived from it, and the sealed
//!   announcements;
//! - [`session`]: Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s handshakes (the
//!   `clatter` crate) and transport messages with explicit nonces;
//! - [`pair`]: pairing by a six-digit code (SPAKE2, then key
//!   confirmation), which gives two devices a key of their own;
//! - [`node`]: one device's state: the devices nearby, their sessions, and
//!   what to send in answer to a packet or as time passes;
//! - [`rng`]: the random numbers all of it uses (a ChaCha20 generator
//!   seeded from the `rng` service);
//! - [`store`]: the file that keeps this device's static key and its
//!   pairings by code across restarts, on devices with storage.
//!
//! The task itself (`main.rs`) only moves packets between [`node::Node`]
//! and a UDP socket, and answers the `bus` service
//! (`userlib::services::bus`).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod keys;
pub mod node;
pub mod pair;
pub mod rng;
pub mod session;
pub mod store;
pub mod wire;
