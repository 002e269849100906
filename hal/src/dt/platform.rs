//! Devices for user space: every enabled node with a `compatible` string and
//! MMIO registers or interrupts. Init reads them (the kernel does not: it
//! maps the tree into init) to hand drivers exactly their device's
//! resources. The interrupt controller and CPUs stay the kernel's.

use super::addr::for_each_region;
use super::devices::GIC;
use super::irq::{gic_intid, interrupts};
use super::{index, tree, validate, DtError, Region};

/// Most register regions / interrupts recorded per device.
pub const MAX_DEVICE_REGIONS: usize = 4;
pub const MAX_DEVICE_IRQS: usize = 4;

/// One device node.
#[derive(Clone, Debug)]
pub struct Device<'a> {
    /// Node name, e.g. `pl011@9000000`.
    pub name: &'a str,
    /// First `compatible` string.
    pub compatible: &'a str,
    /// Register regions (CPU physical, non-empty).
    pub regions: heapless::Vec<Region, MAX_DEVICE_REGIONS>,
    /// GIC interrupt IDs.
    pub irqs: heapless::Vec<u32, MAX_DEVICE_IRQS>,
}

/// Call `f` for each device of the tree, in document order. A node whose
/// registers or interrupts cannot be read contributes what can be read; the
/// tree as a whole must be valid (same checks as `Machine::parse`).
#[inline(never)]
pub fn for_each_device<'a>(blob: &'a [u8], mut f: impl FnMut(&Device<'a>)) -> Result<(), DtError> {
    let mut index = index::Index::new();
    let layout = validate::validate(blob, &mut index, true)?;
    let data = blob.get(..layout.totalsize.min(blob.len())).unwrap_or_default();
    let block = |(off, size): (usize, usize)| data.get(off..off + size).unwrap_or_default();
    let tree = tree::Tree::new(tree::Blocks::new(block(layout.structs), block(layout.strings)), &index);
    let gic = tree.all().find(|n| n.compatible_with(GIC).is_some() && n.is_enabled());
    for node in tree.all() {
        let Some(compatible) = node.strings("compatible").next() else {
            continue;
        };
        if !node.is_enabled() || node.compatible_with(GIC).is_some() {
            continue;
        }
        let Some(lin) = tree.lineage(&node) else { continue };
        // CPUs have `reg` too, but it is an affinity, not registers; and
        // the GIC's sub-frames (e.g. GICv2m MSI) are the kernel's like it.
        let parent = lin.up().and_then(|p| p.node());
        if parent.is_some_and(|p| p.base_name() == "cpus" || p.compatible_with(GIC).is_some()) {
            continue;
        }
        let mut device = Device {
            name: node.name(),
            compatible,
            regions: heapless::Vec::new(),
            irqs: heapless::Vec::new(),
        };
        if node.has("reg") {
            let _ = for_each_region(&lin, |base, size| {
                if size > 0 {
                    let _ = device.regions.push(Region { base, size });
                }
                Ok(())
            });
        }
        if let Ok(Some(irqs)) = interrupts(&tree, &lin) {
            for i in 0..MAX_DEVICE_IRQS {
                match irqs.get(i) {
                    Ok(Some(spec)) => {
                        if let Ok(intid) = gic_intid(&spec, gic.as_ref()) {
                            let _ = device.irqs.push(intid);
                        }
                    }
                    _ => break,
                }
            }
        }
        if !device.regions.is_empty() || !device.irqs.is_empty() {
            f(&device);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn virt_devices_have_translated_regions_and_intids() {
        let blob = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/qemu-virt-gicv2.dtb")).unwrap();
        let mut found = Vec::new();
        for_each_device(&blob, |d| {
            found.push((
                d.name.to_string(),
                d.compatible.to_string(),
                d.regions.clone(),
                d.irqs.clone(),
            ))
        })
        .unwrap();
        let uart = found.iter().find(|d| d.1 == "arm,pl011").expect("a PL011");
        assert_eq!(
            uart.2.as_slice(),
            &[Region {
                base: 0x0900_0000,
                size: 0x1000
            }]
        );
        assert_eq!(uart.3.as_slice(), &[33]); // SPI 1
        let rtc = found.iter().find(|d| d.1 == "arm,pl031").expect("a PL031");
        assert_eq!(rtc.3.as_slice(), &[34]);
        assert!(found.iter().filter(|d| d.1 == "virtio,mmio").count() >= 32);
        assert!(
            !found.iter().any(|d| d.1.contains("gic") || d.1.contains("cortex-a")),
            "GIC and CPUs stay the kernel's"
        );
    }

    #[test]
    fn a_tree_without_its_free_space_lists_the_same_devices() {
        let mut blob = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/qemu-virt-gicv2.dtb")).unwrap();
        // Free space at the end, as QEMU leaves (its trees are 1 MiB).
        blob.resize(blob.len() + 0x10000, 0);
        let total = (blob.len() as u32).to_be_bytes();
        blob[4..8].copy_from_slice(&total);
        let used = crate::dt::Machine::parse(&blob).unwrap().used_size;
        assert!(used + 0x10000 <= blob.len());
        let list = |b: &[u8]| {
            let mut v = Vec::new();
            for_each_device(b, |d| v.push((d.name.to_string(), d.regions.clone(), d.irqs.clone()))).map(|()| v)
        };
        assert_eq!(list(&blob[..used]).unwrap(), list(&blob).unwrap());
        assert!(list(&blob[..used - 1]).is_err(), "the blocks themselves may not be cut");
    }

    #[test]
    fn bad_trees_are_errors() {
        assert!(for_each_device(&[0u8; 8], |_| {}).is_err());
    }
}
