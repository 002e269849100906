//! Addresses: `#address-cells`/`#size-cells`, `reg`, and `ranges` translation
//! up to CPU physical addresses.

use super::error::NodeProblem;
use super::tree::{exact_u32, read_cells, Lineage, Node};

/// A lineage index as an error's ancestor depth (lineages are at most `MAX_DEPTH` long).
fn depth(index: usize) -> u8 {
    u8::try_from(index).unwrap_or(u8::MAX)
}

/// Cell counts a node gives its children.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cells {
    pub address: u32,
    pub size: u32,
}

/// `#address-cells`/`#size-cells` of `node` (for its children). Per the
/// specification these are not inherited: a missing one means 2 / 1.
pub(crate) fn child_cells(lin: &Lineage<'_, '_>, node_index: usize) -> Result<Cells, NodeProblem> {
    let names = ["#address-cells", "#size-cells"];
    let [address, size] = lin.at(node_index).map_or([None; 2], |n| n.props(names));
    let read = |name: &'static str, value: Option<&[u8]>, default: u32| match value {
        None => Ok(default),
        Some(v) => exact_u32(v).ok_or_else(|| NodeProblem::UnsupportedCells {
            name,
            cells: None,
            node: depth(node_index),
        }),
    };
    Ok(Cells {
        address: read(names[0], address, 2)?,
        size: read(names[1], size, 1)?,
    })
}

/// Addresses must fit a u64 (1 or 2 cells; 3-cell PCI addresses are not CPU addresses).
fn check_address(node_index: usize, cells: u32) -> Result<(), NodeProblem> {
    check_range("#address-cells", node_index, cells, 1)
}

fn check_size(node_index: usize, cells: u32, min: u32) -> Result<(), NodeProblem> {
    check_range("#size-cells", node_index, cells, min)
}

fn check_range(name: &'static str, node_index: usize, cells: u32, min: u32) -> Result<(), NodeProblem> {
    if (min..=2).contains(&cells) {
        return Ok(());
    }
    Err(NodeProblem::UnsupportedCells {
        name,
        cells: Some(cells),
        node: depth(node_index),
    })
}

fn check_cells(node_index: usize, cells: Cells, min_size: u32) -> Result<(), NodeProblem> {
    check_address(node_index, cells.address)?;
    check_size(node_index, cells.size, min_size)
}

/// Iterator over raw `reg` entries (address in the parent bus's space, size).
#[derive(Clone, Debug)]
pub(crate) struct Reg<'a> {
    bytes: &'a [u8],
    cells: Cells,
}

impl Iterator for Reg<'_> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        let a = self.cells.address as usize * 4;
        let entry = a + self.cells.size as usize * 4;
        let e = self.bytes.get(..entry)?;
        self.bytes = self.bytes.get(entry..)?;
        Some((
            read_cells(e, a / 4)?,
            read_cells(e.get(a..)?, self.cells.size as usize)?,
        ))
    }
}

/// Decode the `reg` of the last node of `lin` with its parent's cell counts.
pub(crate) fn reg<'a>(lin: &Lineage<'_, 'a>) -> Result<Reg<'a>, NodeProblem> {
    let node = lin.node().ok_or(NodeProblem::Absent)?;
    let parent = lin.len().checked_sub(2).ok_or(NodeProblem::MissingProperty("reg"))?;
    let bytes = node.prop("reg").ok_or(NodeProblem::MissingProperty("reg"))?;
    let cells = child_cells(lin, parent)?;
    check_cells(parent, cells, 0)?;
    let entry = (cells.address + cells.size) as usize * 4;
    if bytes.is_empty() {
        return Err(NodeProblem::TooFewRegs { found: 0, needed: 1 });
    }
    if !bytes.len().is_multiple_of(entry) {
        return Err(NodeProblem::RegLength {
            len: bytes.len(),
            address_cells: cells.address,
            size_cells: cells.size,
        });
    }
    Ok(Reg { bytes, cells })
}

/// Translate `addr`, an address in the parent bus of the last node of `lin`,
/// to a CPU physical address through every bus's `ranges` up to the root.
pub(crate) fn translate(lin: &Lineage<'_, '_>, mut addr: u64) -> Result<u64, NodeProblem> {
    // Buses are the nodes strictly between the root (index 0) and the node.
    for bus in (1..lin.len().saturating_sub(1)).rev() {
        let node = lin.at(bus).ok_or(NodeProblem::Absent)?;
        let Some(ranges) = node.prop("ranges") else {
            return Err(NodeProblem::NoRanges { bus: depth(bus) });
        };
        if ranges.is_empty() {
            continue; // identity mapping
        }
        let child = child_cells(lin, bus)?;
        let parent = child_cells(lin, bus - 1)?;
        check_cells(bus, child, 1)?;
        check_address(bus - 1, parent.address)?;
        addr = map_through(ranges, child, parent.address, addr).map_err(|e| match e {
            MapError::Malformed => NodeProblem::BadRanges { bus: depth(bus) },
            MapError::Outside => NodeProblem::OutsideRanges {
                bus: depth(bus),
                address: addr,
            },
            MapError::Overflow => NodeProblem::AddressOverflow,
        })?;
    }
    Ok(addr)
}

enum MapError {
    Malformed,
    Outside,
    Overflow,
}

/// One bus level: find the `ranges` window holding `addr` and map it to the parent's space.
fn map_through(ranges: &[u8], child: Cells, parent_address: u32, addr: u64) -> Result<u64, MapError> {
    let (c, p, s) = (
        child.address as usize * 4,
        parent_address as usize * 4,
        child.size as usize * 4,
    );
    let entry = c + p + s;
    if !ranges.len().is_multiple_of(entry) {
        return Err(MapError::Malformed);
    }
    for e in ranges.chunks_exact(entry) {
        let field = |from: usize, len: usize| e.get(from..).and_then(|b| read_cells(b, len / 4));
        let (Some(child_base), Some(parent_base), Some(size)) = (field(0, c), field(c, p), field(c + p, s)) else {
            return Err(MapError::Malformed);
        };
        // Linux's rule: the window must contain the start address.
        if addr >= child_base && addr - child_base < size {
            return parent_base.checked_add(addr - child_base).ok_or(MapError::Overflow);
        }
    }
    Err(MapError::Outside)
}

/// The translated CPU-physical regions of a node, for callers that need them all.
pub(crate) fn for_each_region(
    lin: &Lineage<'_, '_>,
    mut f: impl FnMut(u64, u64) -> Result<(), NodeProblem>,
) -> Result<(), NodeProblem> {
    for (addr, size) in reg(lin)? {
        let base = translate(lin, addr)?;
        base.checked_add(size).ok_or(NodeProblem::AddressOverflow)?;
        f(base, size)?;
    }
    Ok(())
}

/// Read a node's `#address-cells`-wide first `reg` address (e.g. a CPU's MPIDR), without translation.
pub(crate) fn first_address(lin: &Lineage<'_, '_>) -> Result<u64, NodeProblem> {
    let node: Node<'_> = lin.node().ok_or(NodeProblem::Absent)?;
    let parent = lin.len().checked_sub(2).ok_or(NodeProblem::MissingProperty("reg"))?;
    let cells = child_cells(lin, parent)?;
    check_cells(parent, cells, 0)?;
    let bytes = node.prop("reg").ok_or(NodeProblem::MissingProperty("reg"))?;
    read_cells(bytes, cells.address as usize).ok_or(NodeProblem::RegLength {
        len: bytes.len(),
        address_cells: cells.address,
        size_cells: cells.size,
    })
}
