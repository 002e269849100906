//! A driver's device: what the device manager handed it.
//!
//! The start protocol between the device manager and a driver (in
//! [`StartInfo`]): `extra` holds the device's MMIO region capabilities
//! first, then its interrupt capabilities; `args` is
//! `node=NAME compatible=C regions=N irqs=M` followed by the profile's
//! arguments for the driver (`userlib::proto::driver_args` writes them;
//! [`parse_args`], the pure part, reads them).

use crate::irq::Interrupt;
use crate::mmio::Mmio;
use abi::boot_info::StartInfo;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use userlib::abi;
use userlib::{process, Error, Handle};

/// Why a device cannot be used: what a driver's `main` returns on failure
/// (its `Debug` reads as the message the runtime reports).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum DeviceError {
    /// The task was not started by the device manager (no start info or
    /// malformed arguments).
    NotADriver,
    /// The device has no region / interrupt of that index.
    Missing,
    /// The region is smaller than the register block.
    TooSmall,
    /// A system call failed.
    Sys(Error),
    /// The device does not do what the driver needs (the reason).
    Unsupported(&'static str),
    /// The virtio device or transport failed.
    #[cfg(feature = "virtio")]
    Virtio(virtio_drivers::Error),
}

impl From<Error> for DeviceError {
    fn from(e: Error) -> Self {
        DeviceError::Sys(e)
    }
}

#[cfg(feature = "virtio")]
impl From<virtio_drivers::Error> for DeviceError {
    fn from(e: virtio_drivers::Error) -> Self {
        DeviceError::Virtio(e)
    }
}

impl fmt::Debug for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::NotADriver => f.write_str("not started as a driver (no device in the start info)"),
            DeviceError::Missing => f.write_str("the device has no such region or interrupt"),
            DeviceError::TooSmall => f.write_str("the region is smaller than the register block"),
            DeviceError::Sys(e) => write!(f, "{e}"),
            DeviceError::Unsupported(why) => f.write_str(why),
            #[cfg(feature = "virtio")]
            DeviceError::Virtio(e) => write!(f, "virtio: {e}"),
        }
    }
}

/// What the `args` of a driver say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceArgs {
    pub node: String,
    pub compatible: String,
    pub regions: usize,
    pub irqs: usize,
    /// Each region's exact physical address and size.
    pub reg: Vec<(u64, u64)>,
    /// The profile's arguments (`key=value` words or free text).
    pub rest: String,
}

/// Parses the device manager's `args` (see the module docs).
pub fn parse_args(args: &str) -> Option<DeviceArgs> {
    let mut d = DeviceArgs::default();
    let mut rest = Vec::new();
    let (mut seen_node, mut seen_counts) = (false, 0);
    for word in args.split_whitespace() {
        match word.split_once('=') {
            Some(("node", v)) if !seen_node => {
                d.node = v.into();
                seen_node = true;
            }
            Some(("compatible", v)) if d.compatible.is_empty() => d.compatible = v.into(),
            Some(("regions", v)) if seen_counts & 1 == 0 => {
                d.regions = v.parse().ok()?;
                seen_counts |= 1;
            }
            Some(("irqs", v)) if seen_counts & 2 == 0 => {
                d.irqs = v.parse().ok()?;
                seen_counts |= 2;
            }
            Some(("reg", v)) if d.reg.is_empty() => {
                for range in v.split(',') {
                    let (a, s) = range.split_once('+')?;
                    d.reg.push((hex(a)?, hex(s)?));
                }
            }
            _ => rest.push(word),
        }
    }
    if !seen_node || seen_counts != 3 || d.regions + d.irqs > 8 || d.reg.len() != d.regions {
        return None;
    }
    d.rest = rest.join(" ");
    Some(d)
}

fn hex(text: &str) -> Option<u64> {
    u64::from_str_radix(text.strip_prefix("0x")?, 16).ok()
}

/// The device this driver task drives.
pub struct Device {
    pub args: DeviceArgs,
    regions: Vec<Handle>,
    irqs: Vec<Handle>,
}

impl Device {
    /// The device from this task's start info.
    pub fn get() -> Result<Device, DeviceError> {
        let start: &StartInfo = process().start_info.ok_or(DeviceError::NotADriver)?;
        let args = parse_args(start.args()).ok_or(DeviceError::NotADriver)?;
        let caps =
            |range: core::ops::Range<usize>| -> Vec<Handle> { start.extra[range].iter().map(|h| Handle(*h)).collect() };
        Ok(Device {
            regions: caps(0..args.regions),
            irqs: caps(args.regions..args.regions + args.irqs),
            args,
        })
    }

    /// The device-tree node name (e.g. `pl011@9000000`).
    pub fn node(&self) -> &str {
        &self.args.node
    }

    /// Value of `key=value` among the profile's arguments.
    pub fn arg(&self, key: &str) -> Option<&str> {
        self.args
            .rest
            .split_whitespace()
            .find_map(|w| w.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
    }

    /// Region `index`'s capability.
    pub fn region(&self, index: usize) -> Result<Handle, DeviceError> {
        self.regions.get(index).copied().ok_or(DeviceError::Missing)
    }

    /// Physical address and size of region `index`.
    pub fn region_physical(&self, index: usize) -> Result<(u64, u64), DeviceError> {
        self.region(index)?;
        self.args.reg.get(index).copied().ok_or(DeviceError::Missing)
    }

    /// Maps region `index` as register block `R` (which must fit in it).
    pub fn map<R>(&self, index: usize) -> Result<Mmio<R>, DeviceError> {
        let (physical, size) = self.region_physical(index)?;
        Mmio::map(self.region(index)?, physical, size)
    }

    /// Interrupt `index`, bound to a fresh notification of this task.
    pub fn interrupt(&self, index: usize) -> Result<Interrupt, DeviceError> {
        Ok(Interrupt::new(*self.irqs.get(index).ok_or(DeviceError::Missing)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_round_trip() {
        let s = userlib::proto::driver_args(
            "virtio_mmio@a003e00",
            "virtio,device2",
            &[(0xa003e00, 0x200)],
            1,
            "width=540 height=1170",
        );
        let d = parse_args(&s).unwrap();
        assert_eq!(d.node, "virtio_mmio@a003e00");
        assert_eq!(d.compatible, "virtio,device2");
        assert_eq!((d.regions, d.irqs), (1, 1));
        assert_eq!(d.reg, [(0xa003e00, 0x200)]);
        assert_eq!(d.rest, "width=540 height=1170");
    }

    #[test]
    fn malformed_args_are_refused() {
        assert_eq!(parse_args(""), None);
        assert_eq!(parse_args("node=x regions=1"), None);
        assert_eq!(parse_args("node=x regions=a irqs=1"), None);
        assert_eq!(parse_args("node=x regions=7 irqs=7"), None);
        assert_eq!(parse_args("node=x regions=1 irqs=0"), None);
        assert_eq!(parse_args("node=x regions=1 irqs=0 reg=0x10"), None);
        assert_eq!(parse_args("node=x regions=1 irqs=0 reg=0x10+zz"), None);
        // Repeated keys do not override the device manager's own.
        let d = parse_args("node=x compatible=a regions=1 irqs=0 reg=0x0+0x1000 node=y regions=5").unwrap();
        assert_eq!(
            (d.node.as_str(), d.regions, d.rest.as_str()),
            ("x", 1, "node=y regions=5")
        );
    }
}
