//! GICv3: memory-mapped distributor and redistributors, system-register
//! CPU interface.

use super::{GicError, DEFAULT_PRIORITY, FIRST_SPI};
use crate::mmio::Mmio;
use core::arch::asm;

const GICD_CTLR: usize = 0x0000;
const GICD_TYPER: usize = 0x0004;
const GICD_IGROUPR: usize = 0x0080;
const GICD_ISENABLER: usize = 0x0100;
const GICD_ICENABLER: usize = 0x0180;
const GICD_ICPENDR: usize = 0x0280;
const GICD_IPRIORITYR: usize = 0x0400;
const GICD_IROUTER: usize = 0x6000;
const GICD_CTLR_RWP: u32 = 1 << 31;

const GICR_WAKER: usize = 0x0014;
const GICR_TYPER: usize = 0x0008;
const GICR_TYPER_LAST: u64 = 1 << 4;
const GICR_TYPER_VLPIS: u64 = 1 << 1;
const SGI_BASE: usize = 0x1_0000;
const GICR_IGROUPR0: usize = SGI_BASE + 0x0080;
const GICR_ISENABLER0: usize = SGI_BASE + 0x0100;
const GICR_ICENABLER0: usize = SGI_BASE + 0x0180;
const GICR_IPRIORITYR: usize = SGI_BASE + 0x0400;

/// Most redistributor regions a device tree may list.
pub const MAX_REDISTRIBUTOR_REGIONS: usize = 8;
/// Most CPUs whose redistributor frame is remembered.
const MAX_FRAMES: usize = 16;

pub struct GicV3 {
    distributor: Mmio,
    regions: heapless::Vec<Mmio, MAX_REDISTRIBUTOR_REGIONS>,
    stride: Option<usize>,
    frames: spin::Mutex<heapless::Vec<(u64, Mmio), MAX_FRAMES>>,
}

fn affinity_route(mpidr: u64) -> u64 {
    // IROUTER: Aff3 in bits 39:32, Aff2..Aff0 in bits 23:0 (same as MPIDR).
    mpidr & 0xff_00ff_ffff
}

impl GicV3 {
    pub fn new(
        distributor: Mmio,
        regions: heapless::Vec<Mmio, MAX_REDISTRIBUTOR_REGIONS>,
        stride: Option<u64>,
    ) -> Self {
        GicV3 {
            distributor,
            regions,
            stride: stride.map(|s| s as usize),
            frames: spin::Mutex::new(heapless::Vec::new()),
        }
    }

    fn wait_for_distributor(&self) {
        while self.distributor.read32(GICD_CTLR) & GICD_CTLR_RWP != 0 {
            core::hint::spin_loop();
        }
    }

    pub fn init_distributor(&self) {
        let d = &self.distributor;
        d.write32(GICD_CTLR, 0);
        self.wait_for_distributor();
        let lines = (((d.read32(GICD_TYPER) & 0x1f) + 1) * 32).min(1020);
        for reg in (FIRST_SPI / 32)..(lines / 32) {
            let r = reg as usize * 4;
            d.write32(GICD_ICENABLER + r, u32::MAX);
            d.write32(GICD_ICPENDR + r, u32::MAX);
            d.write32(GICD_IGROUPR + r, u32::MAX); // Non-secure group 1
        }
        self.wait_for_distributor();
        // ARE (affinity routing), EnableGrp1 (NS), EnableGrp0.
        d.write32(GICD_CTLR, (1 << 4) | (1 << 1) | 1);
        self.wait_for_distributor();
    }

    /// Find the redistributor frame of the CPU with affinity `mpidr`.
    fn redistributor(&self, mpidr: u64) -> Option<Mmio> {
        let aff = affinity_route(mpidr);
        let mut frames = self.frames.lock();
        if let Some((_, f)) = frames.iter().find(|(a, _)| *a == aff) {
            return Some(*f);
        }
        for region in &self.regions {
            let mut offset = 0usize;
            loop {
                // SAFETY: the frame lies within the mapped redistributor region
                // (bounds are checked by Mmio on every access).
                let frame = unsafe { Mmio::new(region.base() + offset, 0x2_0000) };
                let typer = frame.read64(GICR_TYPER);
                let frame_aff = {
                    let a = typer >> 32;
                    ((a >> 24) & 0xff) << 32 | (a & 0xff_ffff)
                };
                if frame_aff == aff {
                    let _ = frames.push((aff, frame));
                    return Some(frame);
                }
                if typer & GICR_TYPER_LAST != 0 {
                    break;
                }
                let step = self.stride.unwrap_or(if typer & GICR_TYPER_VLPIS != 0 {
                    0x4_0000
                } else {
                    0x2_0000
                });
                offset += step;
                if offset + 0x2_0000 > region_size(region) {
                    break;
                }
            }
        }
        None
    }

    pub fn init_cpu(&self, mpidr: u64) -> Result<(), GicError> {
        let r = self.redistributor(mpidr).ok_or(GicError::NoRedistributor { mpidr })?;
        // Wake the redistributor.
        let waker = r.read32(GICR_WAKER);
        r.write32(GICR_WAKER, waker & !(1 << 1));
        while r.read32(GICR_WAKER) & (1 << 2) != 0 {
            core::hint::spin_loop();
        }
        r.write32(GICR_ICENABLER0, u32::MAX);
        r.write32(GICR_IGROUPR0, u32::MAX);
        // SAFETY: the boot stub let EL1 use the system register interface;
        // these writes only configure this CPU's interface.
        unsafe {
            asm!(
                "mrs {t}, S3_0_C12_C12_5", // ICC_SRE_EL1
                "orr {t}, {t}, #1",
                "msr S3_0_C12_C12_5, {t}",
                "isb",
                "msr S3_0_C4_C6_0, {pmr}", // ICC_PMR_EL1
                "msr S3_0_C12_C12_3, xzr",  // ICC_BPR1_EL1
                "msr S3_0_C12_C12_4, xzr",  // ICC_CTLR_EL1: EOI drops priority and deactivates
                "mov {t}, #1",
                "msr S3_0_C12_C12_7, {t}", // ICC_IGRPEN1_EL1
                "isb",
                t = out(reg) _,
                pmr = in(reg) 0xf0u64,
                options(nostack)
            );
        }
        Ok(())
    }

    pub fn enable(&self, intid: u32, target_mpidr: u64) {
        let n = intid as usize;
        if intid < FIRST_SPI {
            let Some(r) = self.redistributor(crate::cpu::mpidr()) else {
                return;
            };
            let reg = GICR_IPRIORITYR + (n & !3);
            let shift = (n % 4) * 8;
            r.write32(
                reg,
                r.read32(reg) & !(0xff << shift) | ((DEFAULT_PRIORITY as u32) << shift),
            );
            r.write32(GICR_ISENABLER0, 1 << n);
        } else {
            let d = &self.distributor;
            let reg = GICD_IPRIORITYR + (n & !3);
            let shift = (n % 4) * 8;
            d.write32(
                reg,
                d.read32(reg) & !(0xff << shift) | ((DEFAULT_PRIORITY as u32) << shift),
            );
            d.write64(GICD_IROUTER + n * 8, affinity_route(target_mpidr));
            d.write32(GICD_ISENABLER + (n / 32) * 4, 1 << (n % 32));
        }
    }

    pub fn disable(&self, intid: u32) {
        let n = intid as usize;
        if intid < FIRST_SPI {
            if let Some(r) = self.redistributor(crate::cpu::mpidr()) {
                r.write32(GICR_ICENABLER0, 1 << n);
            }
        } else {
            self.distributor.write32(GICD_ICENABLER + (n / 32) * 4, 1 << (n % 32));
        }
    }

    pub fn acknowledge(&self) -> super::Acknowledged {
        let intid: u64;
        // SAFETY: reading ICC_IAR1_EL1 acknowledges the interrupt; the caller ends it.
        unsafe { asm!("mrs {}, S3_0_C12_C12_0", out(reg) intid, options(nostack)) };
        let intid = (intid & 0xff_ffff) as u32;
        super::Acknowledged { intid, eoi: intid }
    }

    pub fn end_of_interrupt(&self, ack: super::Acknowledged) {
        // SAFETY: ends an interrupt this CPU acknowledged.
        unsafe { asm!("msr S3_0_C12_C12_1, {}", "isb", in(reg) ack.eoi as u64, options(nostack)) };
    }

    pub fn send_sgi(&self, sgi: u32, mpidr: u64) {
        let aff1 = (mpidr >> 8) & 0xff;
        let aff2 = (mpidr >> 16) & 0xff;
        let aff3 = (mpidr >> 32) & 0xff;
        let target_list = 1u64 << (mpidr & 0xf);
        let rs = (mpidr & 0xff) >> 4;
        let value = (aff3 << 48) | (aff2 << 32) | (rs << 44) | ((sgi as u64 & 0xf) << 24) | (aff1 << 16) | target_list;
        // SAFETY: ICC_SGI1R_EL1 only raises an SGI on the targeted CPU.
        unsafe { asm!("dsb ishst", "msr S3_0_C12_C11_5, {}", "isb", in(reg) value, options(nostack)) };
    }
}

fn region_size(region: &Mmio) -> usize {
    region.size()
}
