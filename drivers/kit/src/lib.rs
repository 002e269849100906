//! The driver kit: what a Kestrel driver task is built from.
//!
//! A driver is an EL0 task that the device manager (in init) starts for one
//! device-tree node, with only that device's resources:
//!
//! - [`Device::get`]: the node, its `compatible`, its MMIO regions and
//!   interrupt lines (capabilities), and the profile's arguments.
//! - [`Device::map`]: a region mapped uncached as a typed register block
//!   ([`Mmio`], with [`tock_registers`] field types), so drivers read and
//!   write named registers without `unsafe`.
//! - [`Device::interrupt`]: an [`Interrupt`] to wait on and acknowledge.
//! - [`Dma`]: physically contiguous memory with its bus address.
//! - [`serve`]: the request loop; [`names`] registers the driver's service.
//! - [`block`]: the block protocol's server, for disk drivers (a
//!   [`block::BlockDevice`] reads and writes sectors, the kit does the rest).
//! - [`input`]: the input protocol's server, for keyboard, touch and mouse
//!   drivers (a bounded event queue and the threads that answer `READ`).
//! - With the `virtio` feature, [`virtio`]: the HAL and transport for the
//!   `virtio-drivers` crate.
//!
//! The kit's `unsafe` is in [`mmio`] (a register block at a mapped address)
//! and [`virtio`] (the HAL's raw buffers); drivers need none.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod block;
pub mod device;
pub mod dma;
pub mod input;
pub mod irq;
pub mod mmio;
#[cfg(feature = "virtio")]
pub mod virtio;

pub use device::{Device, DeviceError};
pub use dma::Dma;
pub use irq::Interrupt;
pub use mmio::Mmio;
pub use tock_registers;
pub use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
pub use userlib::names;
pub use userlib::server::{serve, Action};
pub use userlib::{log, Error, Handle, Message, Rights, Timeout};
