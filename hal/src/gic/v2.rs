//! GICv2: memory-mapped distributor (GICD) and CPU interface (GICC).

use super::{DEFAULT_PRIORITY, FIRST_SPI};
use crate::mmio::Mmio;

const GICD_CTLR: usize = 0x000;
const GICD_TYPER: usize = 0x004;
const GICD_ISENABLER: usize = 0x100;
const GICD_ICENABLER: usize = 0x180;
const GICD_ICPENDR: usize = 0x280;
const GICD_IPRIORITYR: usize = 0x400;
const GICD_ITARGETSR: usize = 0x800;
const GICD_SGIR: usize = 0xf00;

const GICC_CTLR: usize = 0x00;
const GICC_PMR: usize = 0x04;
const GICC_BPR: usize = 0x08;
const GICC_IAR: usize = 0x0c;
const GICC_EOIR: usize = 0x10;

pub struct GicV2 {
    distributor: Mmio,
    cpu_interface: Mmio,
}

impl GicV2 {
    pub fn new(distributor: Mmio, cpu_interface: Mmio) -> Self {
        GicV2 {
            distributor,
            cpu_interface,
        }
    }

    fn lines(&self) -> u32 {
        ((self.distributor.read32(GICD_TYPER) & 0x1f) + 1) * 32
    }

    pub fn init_distributor(&self) {
        let d = &self.distributor;
        d.write32(GICD_CTLR, 0);
        let lines = self.lines().min(1020);
        for reg in (FIRST_SPI / 32)..(lines / 32) {
            d.write32(GICD_ICENABLER + reg as usize * 4, u32::MAX);
            d.write32(GICD_ICPENDR + reg as usize * 4, u32::MAX);
        }
        d.write32(GICD_CTLR, 1);
    }

    pub fn init_cpu(&self) {
        let c = &self.cpu_interface;
        c.write32(GICC_PMR, 0xf0);
        c.write32(GICC_BPR, 0);
        c.write32(GICC_CTLR, 1);
    }

    /// This CPU's interface number: each byte of the banked ITARGETSR0
    /// (SGIs 0-3) reads as the calling CPU's bit. A GIC with one CPU
    /// interface reads it as zero (the GICv2 architecture makes the target
    /// registers RAZ/WI in a uniprocessor implementation, as in QEMU's
    /// `virt` with one CPU): its interface is 0, which `& 7` makes of the
    /// 32 trailing zeros. (Taken as 7 before, an SGI that CPU sent itself
    /// went to no CPU.)
    pub fn current_cpu_interface(&self) -> u32 {
        self.distributor.read32(GICD_ITARGETSR).trailing_zeros() & 7
    }

    pub fn enable(&self, intid: u32) {
        let d = &self.distributor;
        let n = intid as usize;
        let priority_reg = GICD_IPRIORITYR + (n & !3);
        let shift = (n % 4) * 8;
        let value = d.read32(priority_reg) & !(0xff << shift) | ((DEFAULT_PRIORITY as u32) << shift);
        d.write32(priority_reg, value);
        if intid >= FIRST_SPI {
            // Route SPIs to the CPU enabling them.
            let target = 1u32 << self.current_cpu_interface();
            let reg = GICD_ITARGETSR + (n & !3);
            let value = d.read32(reg) & !(0xff << shift) | (target << shift);
            d.write32(reg, value);
        }
        d.write32(GICD_ISENABLER + (n / 32) * 4, 1 << (n % 32));
    }

    pub fn disable(&self, intid: u32) {
        let n = intid as usize;
        self.distributor.write32(GICD_ICENABLER + (n / 32) * 4, 1 << (n % 32));
    }

    /// Reads GICC_IAR: the interrupt ID in bits 9:0 and, for an SGI, the
    /// interface that sent it in bits 12:10. Both go back to GICC_EOIR.
    pub fn acknowledge(&self) -> super::Acknowledged {
        let iar = self.cpu_interface.read32(GICC_IAR) & 0x1fff;
        super::Acknowledged {
            intid: iar & 0x3ff,
            eoi: iar,
        }
    }

    pub fn end_of_interrupt(&self, ack: super::Acknowledged) {
        self.cpu_interface.write32(GICC_EOIR, ack.eoi);
    }

    pub fn send_sgi(&self, sgi: u32, cpu_interface: u32) {
        let target_list = 1u32 << (cpu_interface & 7);
        self.distributor.write32(GICD_SGIR, (target_list << 16) | (sgi & 0xf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A distributor and a CPU interface in plain memory: what the driver
    /// writes can be read back, and a register the test sets is what the
    /// driver reads.
    struct Fake {
        distributor: Vec<u32>,
        cpu_interface: Vec<u32>,
    }

    impl Fake {
        fn new() -> Self {
            Fake {
                distributor: vec![0; 0x1000 / 4],
                cpu_interface: vec![0; 0x1000 / 4],
            }
        }

        fn gic(&mut self) -> GicV2 {
            // SAFETY: both blocks are this test's own memory, 4 KiB each,
            // alive for as long as the returned driver is used (the test's
            // scope); volatile accesses to ordinary memory are sound.
            unsafe {
                GicV2::new(
                    Mmio::new(self.distributor.as_mut_ptr() as usize, 0x1000),
                    Mmio::new(self.cpu_interface.as_mut_ptr() as usize, 0x1000),
                )
            }
        }
    }

    #[test]
    fn an_sgi_from_another_cpu_is_ended_with_its_sender() {
        let mut fake = Fake::new();
        // SGI 1 sent by CPU interface 3: GICC_IAR's CPUID field (12:10).
        fake.cpu_interface[GICC_IAR / 4] = (3 << 10) | 1;
        let gic = fake.gic();
        let ack = gic.acknowledge();
        assert_eq!(ack.intid, 1);
        gic.end_of_interrupt(ack);
        assert_eq!(fake.cpu_interface[GICC_EOIR / 4], (3 << 10) | 1);
    }

    #[test]
    fn a_peripheral_interrupt_is_ended_with_its_id() {
        let mut fake = Fake::new();
        // Bits above 12 are reserved: they read as anything.
        fake.cpu_interface[GICC_IAR / 4] = 0xffff_e000 | 79;
        let gic = fake.gic();
        let ack = gic.acknowledge();
        assert_eq!(ack.intid, 79);
        gic.end_of_interrupt(ack);
        assert_eq!(fake.cpu_interface[GICC_EOIR / 4], 79);
    }

    #[test]
    fn one_cpu_whose_targets_read_as_zero_is_interface_0() {
        let mut fake = Fake::new();
        assert_eq!(fake.gic().current_cpu_interface(), 0);
        fake.distributor[GICD_ITARGETSR / 4] = 0x0404_0404;
        assert_eq!(fake.gic().current_cpu_interface(), 2);
    }
}
