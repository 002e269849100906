//! ARM Generic Interrupt Controller, version 2 (GIC-400) and version 3,
//! whichever the device tree describes.

mod v2;
#[cfg(target_arch = "aarch64")]
mod v3;

pub use v2::GicV2;
#[cfg(target_arch = "aarch64")]
pub use v3::GicV3;

/// First shared peripheral interrupt; below it are SGIs (0-15) and PPIs (16-31).
pub const FIRST_SPI: u32 = 32;
/// Interrupt IDs at and above this (1020-1023) are special: nothing pending.
pub const SPECIAL_INTIDS: u32 = 1020;
/// An interrupt this CPU acknowledged, to be ended with
/// [`Gic::end_of_interrupt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acknowledged {
    /// The interrupt's ID.
    pub intid: u32,
    /// What the end of interrupt writes back: on GICv2 the whole
    /// acknowledge value, whose bits 12:10 name the CPU interface that sent
    /// an SGI (IHI 0048B 4.4.5: the write must match the read); on GICv3
    /// the ID.
    eoi: u32,
}

/// Priority given to every interrupt the kernel enables.
const DEFAULT_PRIORITY: u8 = 0xa0;

/// The interrupt controller of this machine (one per system, so the size
/// difference between the variants does not matter).
#[cfg(target_arch = "aarch64")]
#[allow(clippy::large_enum_variant)]
pub enum Gic {
    V2(GicV2),
    V3(GicV3),
}

#[cfg(target_arch = "aarch64")]
impl Gic {
    /// Version number, for logs.
    pub fn version(&self) -> u32 {
        match self {
            Gic::V2(_) => 2,
            Gic::V3(_) => 3,
        }
    }

    /// One-time distributor setup (boot CPU).
    pub fn init_distributor(&self) {
        match self {
            Gic::V2(g) => g.init_distributor(),
            Gic::V3(g) => g.init_distributor(),
        }
    }

    /// Per-CPU interface setup; call on every CPU. `mpidr` is the CPU's
    /// affinity, used by GICv3 to find its redistributor.
    pub fn init_cpu(&self, mpidr: u64) -> Result<(), GicError> {
        match self {
            Gic::V2(g) => {
                g.init_cpu();
                Ok(())
            }
            Gic::V3(g) => g.init_cpu(mpidr),
        }
    }

    /// Enable an interrupt (SGIs/PPIs on the calling CPU, SPIs routed to `target_mpidr`).
    pub fn enable(&self, intid: u32, target_mpidr: u64) {
        match self {
            Gic::V2(g) => g.enable(intid),
            Gic::V3(g) => g.enable(intid, target_mpidr),
        }
    }

    /// Disable (mask) an interrupt.
    pub fn disable(&self, intid: u32) {
        match self {
            Gic::V2(g) => g.disable(intid),
            Gic::V3(g) => g.disable(intid),
        }
    }

    /// Acknowledge the highest-priority pending interrupt; `None` if spurious.
    pub fn acknowledge(&self) -> Option<Acknowledged> {
        let ack = match self {
            Gic::V2(g) => g.acknowledge(),
            Gic::V3(g) => g.acknowledge(),
        };
        (ack.intid < SPECIAL_INTIDS).then_some(ack)
    }

    /// Signal the end of handling an acknowledged interrupt.
    pub fn end_of_interrupt(&self, ack: Acknowledged) {
        match self {
            Gic::V2(g) => g.end_of_interrupt(ack),
            Gic::V3(g) => g.end_of_interrupt(ack),
        }
    }

    /// Send software-generated interrupt `sgi` (0-15) to the CPU with
    /// affinity `mpidr` (GICv3) / CPU interface number `cpu_interface` (GICv2).
    pub fn send_sgi(&self, sgi: u32, mpidr: u64, cpu_interface: u32) {
        match self {
            Gic::V2(g) => g.send_sgi(sgi, cpu_interface),
            Gic::V3(g) => g.send_sgi(sgi, mpidr),
        }
    }

    /// GICv2 CPU interface number of the calling CPU (0 on GICv3).
    pub fn current_cpu_interface(&self) -> u32 {
        match self {
            Gic::V2(g) => g.current_cpu_interface(),
            Gic::V3(_) => 0,
        }
    }
}

/// GIC setup problems worth a clear message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicError {
    /// No redistributor frame carries this CPU's affinity.
    NoRedistributor { mpidr: u64 },
}

impl core::fmt::Display for GicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GicError::NoRedistributor { mpidr } => {
                write!(f, "no GICv3 redistributor for the CPU with MPIDR {mpidr:#x}")
            }
        }
    }
}
