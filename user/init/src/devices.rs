//! The device manager's view of the machine: the device-tree nodes, read
//! by init from the tree the kernel hands over (`BootInfo::dtb`), each with
//! a device region per register range and an interrupt object per line
//! (made here, with the console capability as the authority), and the keys
//! drivers match on.
//!
//! The tree is read with the same reader the kernel uses (`hal::dt`): it
//! validates the whole blob first and never panics, so a malformed tree
//! leaves init without devices, with a message, and nothing else.
//!
//! A node's keys are its `compatible`; a virtio-mmio node's are
//! `virtio,deviceN` (N the device ID in hex, as in Linux's virtio-device
//! binding) followed by `virtio,mmio`, since what drives it depends on the
//! device behind the transport (ID 0: an empty slot, not listed).

use alloc::string::String;
use alloc::vec::Vec;
use userlib::abi::boot_info::BootInfo;
use userlib::abi::PAGE_SIZE;
use userlib::vspace::Mapping;
use userlib::{log, syscall, Error, Handle, Rights};

/// One device-tree node with resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceNode {
    pub name: String,
    pub compatible: String,
    /// `(capability, physical address, size)`.
    pub regions: Vec<(Handle, u64, u64)>,
    /// `(capability, interrupt ID)`.
    pub irqs: Vec<(Handle, u32)>,
    /// What drivers match, most specific first.
    pub keys: Vec<String>,
}

/// The GIC's shared peripheral interrupts: the lines `IrqCreate` makes
/// objects for.
const SPIS: core::ops::Range<u32> = 32..1020;

/// The compatible string of virtio-mmio transports.
pub const VIRTIO_MMIO: &str = "virtio,mmio";

/// The device tree the kernel mapped for init, if it handed one over.
pub fn device_tree(boot: &BootInfo) -> Option<&'static [u8]> {
    if boot.dtb == 0 || boot.dtb_size == 0 {
        return None;
    }
    // SAFETY: the kernel mapped the tree's pages read-only at this address
    // before init started (`abi::boot_info::DTB_ADDRESS`), `dtb_size` bytes
    // from `dtb_offset` on, and nothing unmaps them.
    Some(unsafe { core::slice::from_raw_parts(boot.dtb_address() as *const u8, boot.dtb_size as usize) })
}

/// The makers of a node's resources: a device region for `pages` pages at
/// a physical address, an interrupt object for an INTID.
pub trait Resources {
    fn region(&mut self, physical: u64, pages: u64) -> Result<Handle, Error>;
    fn irq(&mut self, intid: u32) -> Result<Handle, Error>;
}

/// The kernel makes them, charged to `pool`, on `system`'s authority
/// (init's console capability, `MANAGE`).
pub struct Kernel {
    pub pool: Handle,
    pub system: Handle,
}

impl Resources for Kernel {
    fn region(&mut self, physical: u64, pages: u64) -> Result<Handle, Error> {
        syscall::device_memory(self.pool, self.system, physical, pages)
    }
    fn irq(&mut self, intid: u32) -> Result<Handle, Error> {
        syscall::irq_create(self.pool, self.system, intid)
    }
}

/// Reads the devices of `dtb` (every enabled node with a `compatible` and
/// registers or interrupts, not the interrupt controller or the CPUs) and
/// makes their regions and interrupt objects with `make`, in tree order.
/// A register range the kernel refuses (it overlaps RAM or the interrupt
/// controller: a wrong or hostile tree) is left out with a warning, and so
/// is an interrupt line it refuses (not an SPI, or named twice). `virtio_id`
/// reads a virtio-mmio region's device ID (given its capability and
/// physical address) (`None`: not a virtio device, `Some(0)`: an empty
/// slot, which is left out, its capabilities deleted).
pub fn collect(
    dtb: &[u8],
    make: &mut impl Resources,
    mut virtio_id: impl FnMut(Handle, u64) -> Option<u32>,
) -> Vec<DeviceNode> {
    let mut nodes = Vec::new();
    let result = hal::dt::for_each_device(dtb, |d| {
        let mut node = DeviceNode {
            name: d.name.into(),
            compatible: d.compatible.into(),
            regions: Vec::new(),
            irqs: Vec::new(),
            keys: Vec::new(),
        };
        for r in &d.regions {
            let page = PAGE_SIZE as u64;
            let start = r.base & !(page - 1);
            let pages = r.end().div_ceil(page).saturating_sub(start / page);
            match make.region(start, pages) {
                Ok(h) => node.regions.push((h, r.base, r.size)),
                // The kernel's check: never RAM or the interrupt controller.
                Err(Error::InvalidArgument) => log::warn!(
                    "devices: {}: reg {:#x}+{:#x} overlaps RAM or the interrupt controller; not given to user space",
                    d.name,
                    r.base,
                    r.size
                ),
                Err(e) => log::warn!(
                    "devices: {}: reg {:#x}+{:#x} not given to user space: {e}",
                    d.name,
                    r.base,
                    r.size
                ),
            }
        }
        // Only shared peripheral interrupts: the others (timer, PMU) are
        // each CPU's, the kernel's.
        for &intid in d.irqs.iter().filter(|&&i| SPIS.contains(&i)) {
            match make.irq(intid) {
                Ok(h) => node.irqs.push((h, intid)),
                // Another node's line (shared): the first node keeps it.
                Err(Error::InvalidState) => {}
                Err(e) => log::warn!("devices: {}: interrupt {intid} refused ({e})", d.name),
            }
        }
        if !node.regions.is_empty() {
            nodes.push(node);
        } else {
            // No registers: nothing a driver could use (the kernel listed
            // only regions' nodes too); give the lines back.
            for (h, _) in node.irqs {
                let _ = syscall::cap_delete(h);
            }
        }
    });
    // The kernel read the same tree (and stopped the boot, saying why, had
    // it been malformed); the reason is not formatted again here.
    if result.is_err() {
        log::error!("devices: the device tree cannot be read; no devices");
    }
    nodes
        .into_iter()
        .filter_map(|mut n| {
            if n.compatible == VIRTIO_MMIO {
                match virtio_id(n.regions[0].0, n.regions[0].1) {
                    Some(0) => {
                        release(&n);
                        return None;
                    }
                    Some(id) => n.keys.push(alloc::format!("virtio,device{id:x}")),
                    None => {}
                }
            }
            n.keys.push(n.compatible.clone());
            Some(n)
        })
        .collect()
}

/// Deletes a node's capabilities (an empty virtio slot: nothing drives it).
fn release(n: &DeviceNode) {
    for &(h, ..) in &n.regions {
        let _ = syscall::cap_delete(h);
    }
    for &(h, _) in &n.irqs {
        let _ = syscall::cap_delete(h);
    }
}

/// Resets a virtio-mmio device (writes 0 to its Status register) through
/// a temporary mapping. Done before a stopped driver's memory is freed:
/// the device may still have requests in flight that would complete into
/// that memory (there is no IOMMU), and a reset makes it finish or drop
/// them first (QEMU drains them within the write).
pub fn reset_virtio(region: Handle, physical: u64) {
    const STATUS: usize = 0x70;
    let base = (physical % PAGE_SIZE as u64) as usize;
    if base + STATUS + 4 > PAGE_SIZE {
        return;
    }
    let Ok(map) = Mapping::map(region, 1, Rights::READ | Rights::WRITE) else {
        return;
    };
    // SAFETY: the first page of the region is mapped writable for as long
    // as `map` lives and the register lies inside it; one aligned volatile
    // store, as the virtio-mmio spec requires.
    unsafe { core::ptr::write_volatile(map.as_ptr().add(base + STATUS) as *mut u32, 0) };
}

/// Reads a virtio-mmio region's device ID through a temporary read-only
/// mapping: `None` if the magic value is wrong.
pub fn read_virtio_id(region: Handle, physical: u64) -> Option<u32> {
    const MAGIC: u32 = 0x7472_6976; // "virt", little-endian
    let map = Mapping::map(region, 1, Rights::READ).ok()?;
    // Regions smaller than a page (virtio-mmio slots are 0x200 bytes) are
    // mapped with the page that holds them.
    let base = (physical % PAGE_SIZE as u64) as usize;
    let word = |offset: usize| {
        // SAFETY: the first page of the region is mapped readable for as
        // long as `map` lives; the registers are read with single aligned
        // volatile loads, as the virtio-mmio spec requires.
        unsafe { core::ptr::read_volatile(map.as_ptr().add(base + offset) as *const u32) }
    };
    (word(0) == MAGIC).then(|| word(8))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIRT: &[u8] = include_bytes!("../../../hal/tests/data/qemu-virt-gicv2.dtb");

    /// Hands out handles in order; refuses what the kernel would refuse
    /// here: RAM at 1 GiB (`InvalidArgument`), a line named twice
    /// (`InvalidState`).
    #[derive(Default)]
    struct Fake {
        next: u32,
        lines: Vec<u32>,
    }

    impl Resources for Fake {
        fn region(&mut self, physical: u64, _pages: u64) -> Result<Handle, Error> {
            if physical >= 0x4000_0000 && physical < 0x8000_0000 {
                return Err(Error::InvalidArgument);
            }
            self.next += 1;
            Ok(Handle(self.next))
        }
        fn irq(&mut self, intid: u32) -> Result<Handle, Error> {
            assert!(SPIS.contains(&intid), "asked for {intid}, not an SPI");
            if self.lines.contains(&intid) {
                return Err(Error::InvalidState);
            }
            self.lines.push(intid);
            self.next += 1;
            Ok(Handle(self.next))
        }
    }

    #[test]
    fn virt_nodes_get_their_regions_and_lines() {
        let nodes = collect(VIRT, &mut Fake::default(), |_, _| None);
        let uart = nodes.iter().find(|n| n.compatible == "arm,pl011").expect("the PL011");
        assert_eq!(
            uart.regions.iter().map(|r| (r.1, r.2)).collect::<Vec<_>>(),
            [(0x0900_0000, 0x1000)]
        );
        assert_eq!(uart.irqs.iter().map(|i| i.1).collect::<Vec<_>>(), [33]);
        assert_eq!(uart.keys, ["arm,pl011"]);
        assert!(nodes.iter().filter(|n| n.compatible == VIRTIO_MMIO).count() >= 32);
        assert!(
            !nodes
                .iter()
                .any(|n| n.compatible.contains("gic") || n.name.starts_with("timer")),
            "the GIC and the timer's per-CPU lines stay the kernel's"
        );
    }

    #[test]
    fn a_region_the_kernel_refuses_is_left_out() {
        let mut blob = VIRT.to_vec();
        // The PL031's `reg` <0 0x9010000 0 0x1000> moved into RAM.
        let at = blob
            .windows(8)
            .position(|w| w == [0, 0, 0, 0, 0x09, 0x01, 0, 0])
            .expect("pl031 reg");
        blob[at + 4..at + 8].copy_from_slice(&0x4000_0000u32.to_be_bytes());
        let nodes = collect(&blob, &mut Fake::default(), |_, _| None);
        assert!(
            !nodes.iter().any(|n| n.compatible == "arm,pl031"),
            "no registers, no node"
        );
        assert!(nodes.iter().any(|n| n.compatible == "arm,pl011"));
    }

    #[test]
    fn an_unreadable_tree_is_no_devices() {
        for blob in [&[][..], &[0u8; 64], &VIRT[..VIRT.len() / 2]] {
            assert!(collect(blob, &mut Fake::default(), |_, _| None).is_empty());
        }
    }
}
