//! The device manager's view of the machine: the device-tree nodes the
//! kernel described in the boot info (regions and interrupt lines, as
//! capabilities), grouped per node, with the keys drivers match on.
//!
//! A node's keys are its `compatible`; a virtio-mmio node's are
//! `virtio,deviceN` (N the device ID in hex, as in Linux's virtio-device
//! binding) followed by `virtio,mmio`, since what drives it depends on the
//! device behind the transport (ID 0: an empty slot, not listed).

use alloc::string::String;
use alloc::vec::Vec;
use userlib::abi::boot_info::{nul_terminated, BootInfo};
use userlib::abi::PAGE_SIZE;
use userlib::vspace::Mapping;
use userlib::{Handle, Rights};

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

/// The compatible string of virtio-mmio transports.
pub const VIRTIO_MMIO: &str = "virtio,mmio";

/// Groups the boot info's regions and IRQs by node, in node order.
/// `virtio_id` reads a virtio-mmio region's device ID (given its capability
/// and physical address) (`None`: not a
/// virtio device, `Some(0)`: an empty slot, which is left out).
pub fn collect(boot: &BootInfo, mut virtio_id: impl FnMut(Handle, u64) -> Option<u32>) -> Vec<DeviceNode> {
    let regions = &boot.devices[..(boot.device_count as usize).min(boot.devices.len())];
    let irqs = &boot.irqs[..(boot.irq_count as usize).min(boot.irqs.len())];
    let mut nodes: Vec<(u32, DeviceNode)> = Vec::new();
    for d in regions {
        let i = match nodes.iter().position(|(n, _)| *n == d.node) {
            Some(i) => i,
            None => {
                nodes.push((
                    d.node,
                    DeviceNode {
                        name: nul_terminated(&d.name).into(),
                        compatible: nul_terminated(&d.compatible).into(),
                        regions: Vec::new(),
                        irqs: Vec::new(),
                        keys: Vec::new(),
                    },
                ));
                nodes.len() - 1
            }
        };
        nodes[i].1.regions.push((Handle(d.handle), d.physical, d.size));
    }
    for irq in irqs {
        if let Some((_, n)) = nodes.iter_mut().find(|(n, _)| *n == irq.node) {
            n.irqs.push((Handle(irq.handle), irq.intid));
        }
    }
    nodes
        .into_iter()
        .filter_map(|(_, mut n)| {
            if n.compatible == VIRTIO_MMIO {
                match virtio_id(n.regions[0].0, n.regions[0].1) {
                    Some(0) => return None,
                    Some(id) => n.keys.push(alloc::format!("virtio,device{id:x}")),
                    None => {}
                }
            }
            n.keys.push(n.compatible.clone());
            Some(n)
        })
        .collect()
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
