//! Errors and problems found while reading a device tree.
//!
//! Nothing here allocates: node paths are kept in a fixed-size buffer so an
//! error can outlive the tree and still say which node was at fault.

use core::fmt;

/// Bytes of a node path kept in an error; longer paths end in "...".
pub const PATH_CAP: usize = 48;

/// A node's full path (e.g. `/soc/serial@7e201000`), cut at [`PATH_CAP`] bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodePath {
    text: heapless::String<PATH_CAP>,
    cut: bool,
}

impl NodePath {
    /// Path text as it was recorded ("/" for the root).
    pub fn as_str(&self) -> &str {
        if self.text.is_empty() {
            "/"
        } else {
            &self.text
        }
    }

    /// A path from a string, cut if too long.
    pub fn new(path: &str) -> Self {
        let mut p = Self::default();
        p.push_raw(path);
        p
    }

    /// The path of this node's ancestor at `depth` (0 = root): a prefix of the path.
    pub fn ancestor(&self, depth: u8) -> &str {
        let path = self.as_str();
        if depth == 0 {
            return "/";
        }
        // The `depth`th '/' (counting the leading one as 0th) ends the ancestor's path.
        match path.match_indices('/').nth(usize::from(depth)) {
            Some((end, _)) => path.get(..end).unwrap_or(path),
            None => path,
        }
    }

    /// Append `/name` (a child of the current path).
    pub(crate) fn push_component(&mut self, name: &str) {
        self.push_raw("/");
        self.push_raw(name);
    }

    fn push_raw(&mut self, s: &str) {
        if self.cut {
            return;
        }
        // Keep room for the "..." marker.
        let room = (PATH_CAP - 3).saturating_sub(self.text.len());
        if s.len() <= room {
            let _ = self.text.push_str(s);
            return;
        }
        let mut fits = room;
        while !s.is_char_boundary(fits) {
            fits -= 1;
        }
        let _ = self.text.push_str(s.get(..fits).unwrap_or_default());
        let _ = self.text.push_str("...");
        self.cut = true;
    }
}

impl fmt::Display for NodePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The header-described blocks of a flattened device tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// Memory reservation block (`/memreserve/` entries).
    MemReserve,
    /// Structure block (nodes and properties).
    Struct,
    /// Strings block (property names).
    Strings,
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Block::MemReserve => "memory reservation block",
            Block::Struct => "structure block",
            Block::Strings => "strings block",
        })
    }
}

/// The part of the machine description a problem affects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// RAM (`device_type = "memory"` nodes).
    Memory,
    /// `/memreserve/` entries and `/reserved-memory`.
    Reserved,
    /// `/chosen` (bootargs, initrd, stdout-path).
    Chosen,
    /// The console UART.
    Console,
    /// The interrupt controller.
    Gic,
    /// The architected timer.
    Timer,
    /// `/cpus`.
    Cpus,
    /// The PSCI firmware interface.
    Psci,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Memory => "memory",
            Part::Reserved => "reserved memory",
            Part::Chosen => "/chosen",
            Part::Console => "console",
            Part::Gic => "interrupt controller (GIC)",
            Part::Timer => "timer",
            Part::Cpus => "CPU",
            Part::Psci => "PSCI",
        })
    }
}

/// What is wrong with one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeProblem {
    /// The node does not exist.
    Absent,
    /// A required property is missing.
    MissingProperty(&'static str),
    /// A property has the wrong size or content.
    BadProperty {
        /// Property name.
        name: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// `#address-cells`/`#size-cells` of an ancestor (the parent or a bus) has a value this reader cannot use.
    UnsupportedCells {
        /// `"#address-cells"` or `"#size-cells"`.
        name: &'static str,
        /// The value found (`None`: not a single 32-bit cell).
        cells: Option<u32>,
        /// Depth of the node carrying it; its path is [`NodePath::ancestor`] of the node's path.
        node: u8,
    },
    /// `reg` is not a whole number of (address, size) entries.
    RegLength {
        /// Length of `reg` in bytes.
        len: usize,
        /// Parent's `#address-cells`.
        address_cells: u32,
        /// Parent's `#size-cells`.
        size_cells: u32,
    },
    /// Fewer `reg` entries than the device needs.
    TooFewRegs {
        /// Entries found.
        found: usize,
        /// Entries needed.
        needed: usize,
    },
    /// A bus between the node and the root has no `ranges`: its addresses are not CPU addresses.
    NoRanges {
        /// Depth of the bus ([`NodePath::ancestor`] of the node's path).
        bus: u8,
    },
    /// A bus's `ranges` is not a whole number of (child address, parent address, size) entries.
    BadRanges {
        /// Depth of the bus ([`NodePath::ancestor`] of the node's path).
        bus: u8,
    },
    /// An address is outside every `ranges` window of a bus.
    OutsideRanges {
        /// Depth of the bus ([`NodePath::ancestor`] of the node's path).
        bus: u8,
        /// The address, in the bus's address space.
        address: u64,
    },
    /// A translated address overflows 64 bits.
    AddressOverflow,
    /// Only zero-sized `reg` entries (firmware usually fills memory in).
    ZeroSizedMemory,
    /// `enable-method = "spin-table"` without `cpu-release-addr`.
    SpinTableWithoutReleaseAddr,
    /// No interrupt parent found walking up the tree.
    NoInterruptParent,
    /// A phandle that no node carries.
    BadPhandle {
        /// The property holding it.
        property: &'static str,
        /// The phandle value.
        phandle: u32,
    },
    /// The interrupt parent is not the (usable) GIC, so interrupts cannot be mapped to INTIDs.
    InterruptParentNotGic,
    /// A GIC interrupt specifier with a type or number that does not exist.
    BadGicInterrupt {
        /// First cell (0 = SPI, 1 = PPI, ...).
        kind: u32,
        /// Second cell.
        number: u32,
    },
    /// Fewer interrupts than the device needs.
    TooFewInterrupts {
        /// Interrupts found.
        found: usize,
        /// Interrupts needed.
        needed: usize,
    },
    /// More entries than the fixed-size tables hold; the rest are ignored.
    TooMany {
        /// What overflowed.
        what: &'static str,
        /// Capacity.
        max: usize,
    },
    /// `linux,initrd-end` is below `linux,initrd-start`.
    InitrdEndBeforeStart {
        /// Start address.
        start: u64,
        /// End address.
        end: u64,
    },
}

impl NodeProblem {
    /// Describe the problem of the node at `path` (ancestors are named from it).
    fn describe(&self, f: &mut fmt::Formatter<'_>, path: &NodePath) -> fmt::Result {
        let up = |depth: &u8| path.ancestor(*depth);
        match self {
            NodeProblem::Absent => f.write_str("node is missing"),
            NodeProblem::MissingProperty(p) => write!(f, "no \"{p}\" property"),
            NodeProblem::BadProperty { name, problem } => write!(f, "\"{name}\" {problem}"),
            NodeProblem::UnsupportedCells {
                name,
                cells: Some(cells),
                node,
            } => write!(
                f,
                "{name} {} in {} is not supported (addresses need 1 or 2 cells, sizes 0 to 2)",
                wide(*cells),
                up(node)
            ),
            NodeProblem::UnsupportedCells {
                name,
                cells: None,
                node,
            } => {
                write!(f, "{name} in {} is not a single 32-bit cell", up(node))
            }
            NodeProblem::RegLength {
                len,
                address_cells,
                size_cells,
            } => write!(
                f,
                "reg is {len} bytes, not a multiple of (#address-cells {} + #size-cells {}) cells",
                wide(*address_cells),
                wide(*size_cells)
            ),
            NodeProblem::TooFewRegs { found, needed } => {
                write!(f, "reg has {found} entries, {needed} needed")
            }
            NodeProblem::NoRanges { bus } => {
                write!(
                    f,
                    "not translatable to a CPU address: bus {} has no \"ranges\"",
                    up(bus)
                )
            }
            NodeProblem::BadRanges { bus } => {
                write!(
                    f,
                    "\"ranges\" of bus {} is not a whole number of (child, parent, size) entries",
                    up(bus)
                )
            }
            NodeProblem::OutsideRanges { bus, address } => {
                write!(
                    f,
                    "address {address:#x} is outside every \"ranges\" window of bus {}",
                    up(bus)
                )
            }
            NodeProblem::AddressOverflow => f.write_str("translated address overflows 64 bits"),
            NodeProblem::ZeroSizedMemory => {
                f.write_str("reg has only zero-sized entries (the firmware normally fills them in)")
            }
            NodeProblem::SpinTableWithoutReleaseAddr => {
                f.write_str("enable-method \"spin-table\" without cpu-release-addr")
            }
            NodeProblem::NoInterruptParent => f.write_str("no interrupt parent"),
            NodeProblem::BadPhandle { property, phandle } => {
                write!(
                    f,
                    "\"{property}\" refers to phandle {:#x}, which no node has",
                    wide(*phandle)
                )
            }
            NodeProblem::InterruptParentNotGic => {
                f.write_str("interrupt parent is not a usable GIC; cannot map interrupts to INTIDs")
            }
            NodeProblem::BadGicInterrupt { kind, number } => {
                write!(
                    f,
                    "GIC interrupt specifier <{} {} ...> names no interrupt",
                    wide(*kind),
                    wide(*number)
                )
            }
            NodeProblem::TooFewInterrupts { found, needed } => {
                write!(f, "{found} interrupts listed, {needed} needed")
            }
            NodeProblem::TooMany { what, max } => write!(f, "more than {max} {what}; the rest are ignored"),
            NodeProblem::InitrdEndBeforeStart { start, end } => {
                write!(f, "linux,initrd-end {end:#x} is below linux,initrd-start {start:#x}")
            }
        }
    }
}

/// A problem with one node, and which part of the machine it affects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeError {
    /// Part of the machine description affected.
    pub part: Part,
    /// Path of the node at fault.
    pub path: NodePath,
    /// What is wrong.
    pub problem: NodeProblem,
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.path)?;
        self.problem.describe(f, &self.path)
    }
}

/// Why a device tree could not be read, or why it cannot boot the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DtError {
    /// The buffer is shorter than the 40-byte header.
    TooShort {
        /// Bytes available.
        len: usize,
    },
    /// The first word is not 0xd00dfeed.
    BadMagic {
        /// The word found.
        magic: u32,
    },
    /// A format version this reader does not understand (it needs 17).
    BadVersion {
        /// `version` field.
        version: u32,
        /// `last_comp_version` field.
        last_compatible: u32,
    },
    /// `totalsize` is impossible or above the limit.
    BadTotalSize {
        /// `totalsize` field.
        totalsize: u32,
        /// Why it is rejected.
        problem: &'static str,
    },
    /// `totalsize` is larger than the buffer (truncated blob or corrupt header).
    TotalSizePastBuffer {
        /// `totalsize` field.
        totalsize: u32,
        /// Bytes available.
        available: usize,
    },
    /// A block's offset/size is out of bounds or misaligned.
    BadBlock {
        /// Which block.
        block: Block,
        /// Its offset from the start of the tree.
        offset: u32,
        /// Its size (for the reservation block: bytes up to the terminator, if known).
        size: u32,
        /// What is wrong.
        problem: &'static str,
    },
    /// Something runs past the end of its block.
    Truncated {
        /// Byte offset from the start of the tree.
        offset: usize,
        /// What was being read.
        what: &'static str,
    },
    /// The structure block is not a well-formed token stream.
    Malformed {
        /// Byte offset from the start of the tree.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// Nodes nested deeper than this reader supports.
    TooDeep {
        /// Byte offset of the node that is too deep.
        offset: usize,
        /// Deepest nesting supported (the root is depth 1).
        max: usize,
    },
    /// A problem with one node.
    Node(NodeError),
    /// A part the kernel needs is missing; `cause` says why when a node was found but unusable.
    Missing {
        /// The missing part.
        part: Part,
        /// The problem that made a candidate node unusable, if any.
        cause: Option<NodeError>,
    },
}

/// A `u32` to print as a `u64`: the kernel then links one decimal and
/// one hexadecimal formatter (`u64`'s, which `usize` shares), not two of
/// each (about 450 bytes).
fn wide(v: u32) -> u64 {
    u64::from(v)
}

impl fmt::Display for DtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("device tree: ")?;
        match self {
            DtError::TooShort { len } => {
                write!(f, "only {len} bytes, the header alone needs 40")
            }
            DtError::BadMagic { magic } => {
                write!(
                    f,
                    "bad magic {:#010x}, expected 0xd00dfeed (x0 does not point at a DTB)",
                    wide(*magic)
                )
            }
            DtError::BadVersion {
                version,
                last_compatible,
            } => write!(
                f,
                "format version {} (compatible back to {}) is not supported; need version >= 17 compatible with 17",
                wide(*version),
                wide(*last_compatible)
            ),
            DtError::BadTotalSize { totalsize, problem } => write!(f, "totalsize {} {problem}", wide(*totalsize)),
            DtError::TotalSizePastBuffer { totalsize, available } => write!(
                f,
                "header says the tree is {} bytes but only {available} are available (truncated or corrupt)",
                wide(*totalsize)
            ),
            DtError::BadBlock {
                block,
                offset,
                size,
                problem,
            } => {
                write!(
                    f,
                    "{block} at offset {:#x} (size {:#x}) {problem}",
                    wide(*offset),
                    wide(*size)
                )
            }
            DtError::Truncated { offset, what } => write!(f, "truncated at offset {offset:#x}: {what}"),
            DtError::Malformed { offset, what } => write!(f, "malformed at offset {offset:#x}: {what}"),
            DtError::TooDeep { offset, max } => {
                write!(f, "node at offset {offset:#x} is nested deeper than {max} levels")
            }
            DtError::Node(e) => write!(f, "{e}"),
            DtError::Missing {
                part,
                cause: Some(cause),
            } => write!(f, "no usable {part}: {cause}"),
            DtError::Missing { part, cause: None } => {
                write!(f, "no {part}: ")?;
                f.write_str(match part {
                    Part::Memory => "no /memory node (enabled, device_type = \"memory\", with reg)",
                    Part::Reserved => "no reserved memory",
                    Part::Chosen => "no /chosen node",
                    Part::Console => {
                        "no enabled \"arm,pl011\" UART (looked at /chosen stdout-path, alias serial0, then every node)"
                    }
                    Part::Gic => {
                        "no enabled node compatible with arm,gic-v3, arm,gic-400, arm,cortex-a15-gic, arm,cortex-a9-gic or arm,gic-v2"
                    }
                    Part::Timer => "no enabled \"arm,armv8-timer\" or \"arm,armv7-timer\" node",
                    Part::Cpus => "no enabled cpu node under /cpus",
                    Part::Psci => "no enabled \"arm,psci*\" node",
                })
            }
        }
    }
}

impl From<NodeError> for DtError {
    fn from(e: NodeError) -> Self {
        DtError::Node(e)
    }
}

#[cfg(test)]
mod tests {
    use super::{NodePath, PATH_CAP};

    #[test]
    fn long_paths_are_cut_with_a_marker() {
        let mut p = NodePath::new("/soc");
        p.push_component("serial@7e201000");
        assert_eq!(p.as_str(), "/soc/serial@7e201000");
        let long = "x".repeat(PATH_CAP);
        p.push_component(&long);
        assert_eq!(p.as_str().len(), PATH_CAP);
        assert!(p.as_str().starts_with("/soc/serial@7e201000/xx") && p.as_str().ends_with("..."));
        p.push_component("more");
        assert!(p.as_str().ends_with("x..."), "nothing after the cut");
    }

    #[test]
    fn cut_keeps_whole_characters() {
        // 44 ASCII bytes, then a 2-byte character that does not fit whole.
        let path = format!("/{}é", "a".repeat(PATH_CAP - 5));
        let p = NodePath::new(&path);
        assert!(p.as_str().ends_with("a..."), "{}", p.as_str());
    }
}
