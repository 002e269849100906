//! Device-tree reading: from the DTB the boot loader hands over (x0) to a
//! [`Machine`], everything the kernel needs to know about the board; and,
//! for init, the devices ([`for_each_device`]).
//!
//! Boot code must never panic on a device tree, whatever is in it, so:
//! 1. the whole blob is validated structurally first (header, block bounds
//!    and alignment, every token, every property name, nesting) and rejected
//!    with the byte offset at fault ([`DtError`]);
//! 2. the tree is then read with bounds-checked accessors only: the `fdt`
//!    crate for the header and the `/memreserve/` block, our own walker for
//!    nodes and properties, because `fdt` 0.1.5's node iterators mishandle
//!    FDT_NOP (`all_nodes()` stops early, `find_node()` asserts), and QEMU
//!    NOPs out the nodes it does not model (`-M raspi4b` does);
//! 3. a problem with one device is recorded in [`Machine::issues`] and that
//!    device is left out; [`Machine::parse`] fails only when the tree cannot
//!    be read at all, [`Machine::check_bootable`] says what the kernel lacks.
//!
//! Addresses are CPU physical: `reg` is translated through every bus's
//! `ranges` (the Raspberry Pi 4's `/soc` maps 0x7e000000 to 0xfe000000).
//! Nothing allocates; the reader runs before the kernel has a heap.
//!
//! Speed matters too (parsing is part of every boot): the validation pass
//! also builds a node index (`index.rs`: offsets, parents, the few properties
//! every device search filters on), so finding a path, a phandle, an
//! ancestor or "the first GIC" reads a small array instead of re-walking the
//! blob. A tree too big for the index is read by walking, with the same result.

mod addr;
mod console;
mod cpus;
mod devices;
mod display;
mod error;
mod index;
mod irq;
mod platform;
#[cfg(test)]
mod tests;
mod tree;
mod validate;

pub use error::{Block, DtError, NodeError, NodePath, NodeProblem, Part, PATH_CAP};
pub use platform::{for_each_device, Device, MAX_DEVICE_IRQS, MAX_DEVICE_REGIONS};
pub use validate::{header_total_size, MAX_DEPTH, MAX_TOTAL_SIZE};

/// A range of CPU physical addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Region {
    /// First address.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

impl Region {
    /// One past the last address (saturating, so it never panics on a hostile `Region`).
    pub const fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }
}

/// Where a reserved region comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReservedKind {
    /// A `/memreserve/` entry of the memory reservation block.
    MemReserve,
    /// A child of `/reserved-memory` with a `reg` (size-only, dynamically placed ones are skipped).
    ReservedMemory,
}

/// Memory the kernel must not allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reserved<'a> {
    /// The range.
    pub region: Region,
    /// Where it comes from.
    pub kind: ReservedKind,
    /// Node name for `/reserved-memory` children, `"/memreserve/"` otherwise.
    pub name: &'a str,
    /// `no-map`: not even to be mapped (firmware-owned).
    pub no_map: bool,
}

/// GIC architecture version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicVersion {
    /// GICv2 (memory-mapped CPU interface).
    V2,
    /// GICv3 (redistributors, system-register CPU interface).
    V3,
}

/// The interrupt controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gic<'a> {
    /// Version, from `compatible`.
    pub version: GicVersion,
    /// The `compatible` string that identified it.
    pub compatible: &'a str,
    /// GICD.
    pub distributor: Region,
    /// GICC (v2 only).
    pub cpu_interface: Option<Region>,
    /// GICR regions (v3 only; `#redistributor-regions` of them).
    pub redistributors: heapless::Vec<Region, 8>,
    /// `redistributor-stride`, when redistributors are padded.
    pub redistributor_stride: Option<u64>,
}

/// The architected (generic) timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timer<'a> {
    /// The `compatible` string that identified it.
    pub compatible: &'a str,
    /// GIC INTID of the EL1 non-secure physical timer.
    pub phys_irq: u32,
    /// GIC INTID of the EL1 virtual timer.
    pub virt_irq: u32,
    /// GIC INTID of the EL2 physical timer, if listed.
    pub hyp_irq: Option<u32>,
    /// `clock-frequency`: overrides CNTFRQ_EL0 (set only when firmware left it wrong).
    pub frequency: Option<u32>,
}

/// UART models the kernel drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UartKind {
    /// ARM PrimeCell PL011 (`arm,pl011`).
    Pl011,
}

/// The console UART.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Console<'a> {
    /// Model.
    pub kind: UartKind,
    /// Full path when the tree names it by path (`stdout-path`, `/aliases`), else the node name.
    pub path: &'a str,
    /// Registers (CPU physical).
    pub regs: Region,
    /// GIC INTID, when its interrupt maps to the GIC.
    pub irq: Option<u32>,
    /// UART reference clock: the node's `clock-frequency`, or its `uartclk` fixed clock.
    pub clock_hz: Option<u32>,
    /// Baud rate from `stdout-path` options (`serial0:115200n8`), only if this is the stdout-path UART.
    pub baud: Option<u32>,
}

/// How a secondary CPU is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnableMethod<'a> {
    /// PSCI CPU_ON.
    Psci,
    /// Write the entry point to `release_addr` and send an event.
    SpinTable {
        /// `cpu-release-addr`.
        release_addr: u64,
    },
    /// A method the kernel does not implement, or `"spin-table"` without a
    /// release address (then [`Machine::issues`] says so): the CPU cannot be started.
    Other(&'a str),
    /// No `enable-method` (typical of a uniprocessor tree's boot CPU).
    None,
}

/// One CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpu<'a> {
    /// `reg`: the MPIDR affinity fields.
    pub mpidr: u64,
    /// `enable-method` (the CPU's own, or inherited from `/cpus`).
    pub enable: EnableMethod<'a>,
    /// First `compatible` string (e.g. `"arm,cortex-a72"`), or "".
    pub compatible: &'a str,
}

/// PSCI calling conduit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciConduit {
    /// `hvc #0` (firmware at EL2, e.g. QEMU without virtualization).
    Hvc,
    /// `smc #0` (firmware at EL3).
    Smc,
}

/// PSCI firmware interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Psci<'a> {
    /// Conduit (`method`).
    pub conduit: PsciConduit,
    /// The most specific `arm,psci*` compatible string.
    pub compatible: &'a str,
    /// CPU_ON function ID.
    pub cpu_on: u32,
    /// CPU_OFF function ID.
    pub cpu_off: u32,
    /// SYSTEM_OFF function ID (PSCI 0.2 and later).
    pub system_off: Option<u32>,
}

impl Psci<'_> {
    /// PSCI version implied by `compatible`: "1.0", "0.2" or "0.1".
    pub fn version(&self) -> &'static str {
        match self.compatible {
            "arm,psci-1.0" => "1.0",
            "arm,psci-0.2" => "0.2",
            _ => "0.1",
        }
    }
}

/// Capacity of [`Machine::issues`].
pub const MAX_ISSUES: usize = 8;

/// Everything the kernel needs to know about the board, read from its device tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine<'a> {
    /// Root `model`, else the first root `compatible`.
    pub model: &'a str,
    /// First root `compatible`.
    pub compatible: &'a str,
    /// RAM: every `reg` entry of every enabled `device_type = "memory"` node (zero-sized ones dropped).
    pub memory: heapless::Vec<Region, 16>,
    /// `/memreserve/` entries, then `/reserved-memory` children with `reg`.
    pub reserved: heapless::Vec<Reserved<'a>, 32>,
    /// `/chosen` `linux,initrd-start`..`linux,initrd-end`.
    pub initrd: Option<Region>,
    /// `/chosen` `bootargs`, or "".
    pub bootargs: &'a str,
    /// The console UART.
    pub console: Option<Console<'a>>,
    /// The interrupt controller.
    pub gic: Option<Gic<'a>>,
    /// The architected timer.
    pub timer: Option<Timer<'a>>,
    /// Enabled CPUs under `/cpus`, in tree order.
    pub cpus: heapless::Vec<Cpu<'a>, 16>,
    /// PSCI, if the firmware provides it.
    pub psci: Option<Psci<'a>>,
    /// Problems with individual nodes; the affected device was left out (or,
    /// for an interrupt, set to `None`). At most [`MAX_ISSUES`] are kept.
    pub issues: heapless::Vec<NodeError, MAX_ISSUES>,
    /// Bytes of the blob the tree needs (its blocks); the rest, up to the
    /// header's `totalsize`, is free space that may be reused once parsed.
    pub used_size: usize,
}

impl<'a> Machine<'a> {
    /// Validate and read a flattened device tree.
    ///
    /// Fails only when the tree cannot be read at all (bad header, broken
    /// structure); a missing or broken device becomes `None` / an empty list
    /// plus an entry in [`Machine::issues`]. Never panics.
    // Never inlined: the index must leave the stack with this frame, not stay
    // in the caller's for as long as the caller runs (the kernel's
    // `kernel_main` calls deep, stack-hungry code after parsing).
    #[inline(never)]
    pub fn parse(blob: &'a [u8]) -> Result<Machine<'a>, DtError> {
        // On the stack (6 KiB): the kernel parses before it has a heap.
        let mut index = index::Index::new();
        Self::parse_with(blob, &mut index)
    }

    /// [`Machine::parse`] with the node index to fill and use.
    fn parse_with(blob: &'a [u8], index: &mut index::Index) -> Result<Machine<'a>, DtError> {
        let layout = validate::validate(blob, index, false)?;
        let data = blob.get(..layout.totalsize).unwrap_or_default();
        let block = |(off, size): (usize, usize)| data.get(off..off + size).unwrap_or_default();
        let blocks = tree::Blocks::new(block(layout.structs), block(layout.strings));
        let tree = tree::Tree::new(blocks, index);
        // Validation guarantees what `Fdt::new` checks; keep its verdict anyway.
        let fdt = fdt::Fdt::new(data).map_err(|_| DtError::Malformed {
            offset: 0,
            what: "rejected by the fdt crate",
        })?;
        let mut machine = devices::read(&tree, &fdt)?;
        machine.used_size = layout.used;
        Ok(machine)
    }

    /// Whether the kernel can boot: it needs memory, a console, a GIC, a
    /// timer and at least one CPU. The error names the first missing part
    /// and, when a candidate node was found but unusable, why.
    pub fn check_bootable(&self) -> Result<(), DtError> {
        let missing = [
            (self.memory.is_empty(), Part::Memory),
            (self.console.is_none(), Part::Console),
            (self.gic.is_none(), Part::Gic),
            (self.timer.is_none(), Part::Timer),
            (self.cpus.is_empty(), Part::Cpus),
        ];
        match missing.iter().find(|(is_missing, _)| *is_missing) {
            Some(&(_, part)) => Err(DtError::Missing {
                part,
                cause: self.issues.iter().find(|i| i.part == part).cloned(),
            }),
            None => Ok(()),
        }
    }

    /// Total bytes of RAM.
    pub fn memory_total(&self) -> u64 {
        self.memory.iter().fold(0u64, |sum, r| sum.saturating_add(r.size))
    }
}
