//! Interrupts: `interrupt-parent` (inherited up the tree), `interrupts`,
//! `interrupts-extended`, and GIC specifiers to INTIDs.

use super::error::NodeProblem;
use super::tree::{be32, exact_u32, Lineage, Node, Tree};

/// Bound on `interrupt-parent` hops (a phandle cycle must not loop forever).
const MAX_HOPS: usize = 16;

/// One interrupt: the controller it goes to and its specifier cells.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spec<'a> {
    /// The controller ([`Node::off`]).
    pub controller: usize,
    pub cells: &'a [u8],
}

fn interrupt_cells(controller: &Node<'_>) -> Result<usize, NodeProblem> {
    cells_value(controller.prop("#interrupt-cells"))
}

/// A controller's `#interrupt-cells` value as a count.
fn cells_value(value: Option<&[u8]>) -> Result<usize, NodeProblem> {
    match value.and_then(exact_u32) {
        Some(n @ 1..=4) => Ok(n as usize),
        _ => Err(NodeProblem::BadProperty {
            name: "#interrupt-cells",
            problem: "of the interrupt parent is not 1 to 4",
        }),
    }
}

fn by_phandle<'a>(tree: &Tree<'_, 'a>, property: &'static str, value: Option<u32>) -> Result<Node<'a>, NodeProblem> {
    let phandle = value.ok_or(NodeProblem::BadProperty {
        name: property,
        problem: "is not a phandle",
    })?;
    tree.find_phandle(phandle)
        .ok_or(NodeProblem::BadPhandle { property, phandle })
}

/// The interrupt parent of `node`, as Linux finds it: the node's (or,
/// failing that, its nearest ancestor's) `interrupt-parent`, followed until
/// a node with `#interrupt-cells`; `interrupt_parent` is the node's own
/// property. Returns the controller and its `#interrupt-cells` value.
fn interrupt_parent<'a>(
    tree: &Tree<'_, 'a>,
    mut node: Node<'a>,
    mut interrupt_parent: Option<&'a [u8]>,
) -> Result<(Node<'a>, &'a [u8]), NodeProblem> {
    for _ in 0..MAX_HOPS {
        node = match interrupt_parent {
            Some(v) => by_phandle(tree, "interrupt-parent", exact_u32(v))?,
            None => tree.parent(&node).ok_or(NodeProblem::NoInterruptParent)?,
        };
        // One walk of the node's properties for both.
        let [cells, next] = node.props(["#interrupt-cells", "interrupt-parent"]);
        if let Some(cells) = cells {
            return Ok((node, cells));
        }
        interrupt_parent = next;
    }
    Err(NodeProblem::NoInterruptParent)
}

/// A node's interrupts, from `interrupts-extended` or else `interrupts`.
pub(crate) struct Interrupts<'t, 'a> {
    tree: Tree<'t, 'a>,
    value: &'a [u8],
    /// `Some((controller offset, #interrupt-cells))` for plain `interrupts`
    /// (one controller), `None` for `interrupts-extended`.
    parent: Option<(usize, usize)>,
}

/// The interrupts of the last node of `lin` (`None` if it lists none).
pub(crate) fn interrupts<'t, 'a>(
    tree: &Tree<'t, 'a>,
    lin: &Lineage<'_, 'a>,
) -> Result<Option<Interrupts<'t, 'a>>, NodeProblem> {
    let node = lin.node().ok_or(NodeProblem::Absent)?;
    let [extended, plain, parent] = node.props(["interrupts-extended", "interrupts", "interrupt-parent"]);
    if let Some(value) = extended {
        return Ok(Some(Interrupts {
            tree: *tree,
            value,
            parent: None,
        }));
    }
    let Some(value) = plain else {
        return Ok(None);
    };
    let (parent, cells) = interrupt_parent(tree, node, parent)?;
    let cells = cells_value(Some(cells))?;
    if !value.len().is_multiple_of(cells * 4) {
        return Err(NodeProblem::BadProperty {
            name: "interrupts",
            problem: "is not a whole number of specifiers (#interrupt-cells of its parent)",
        });
    }
    Ok(Some(Interrupts {
        tree: *tree,
        value,
        parent: Some((parent.off(), cells)),
    }))
}

impl<'a> Interrupts<'_, 'a> {
    /// The `n`th interrupt, or `None` past the end.
    pub fn get(&self, n: usize) -> Result<Option<Spec<'a>>, NodeProblem> {
        if let Some((controller, cells)) = self.parent {
            let len = cells * 4;
            let at = n.checked_mul(len);
            let cells = at.and_then(|at| self.value.get(at..at.checked_add(len)?));
            return Ok(cells.map(|cells| Spec { controller, cells }));
        }
        let truncated = NodeProblem::BadProperty {
            name: "interrupts-extended",
            problem: "is truncated",
        };
        // Entries have different lengths (each controller's #interrupt-cells): walk them.
        let (mut at, mut i) = (0, 0);
        while at < self.value.len() {
            let controller = by_phandle(&self.tree, "interrupts-extended", be32(self.value, at))?;
            let len = interrupt_cells(&controller)? * 4;
            let cells = self.value.get(at + 4..at + 4 + len).ok_or(truncated.clone())?;
            if i == n {
                return Ok(Some(Spec {
                    controller: controller.off(),
                    cells,
                }));
            }
            at += 4 + len;
            i += 1;
        }
        Ok(None)
    }

    /// How many interrupts are listed (stops counting at the first malformed entry).
    pub fn count(&self) -> usize {
        (0..).take_while(|&i| matches!(self.get(i), Ok(Some(_)))).count()
    }
}

/// The GIC INTID of a specifier `<type number flags>` sent to `gic`.
pub(crate) fn gic_intid(spec: &Spec<'_>, gic: Option<&Node<'_>>) -> Result<u32, NodeProblem> {
    if gic.map(|g| g.off()) != Some(spec.controller) {
        return Err(NodeProblem::InterruptParentNotGic);
    }
    let (Some(kind), Some(number), Some(_flags)) = (be32(spec.cells, 0), be32(spec.cells, 4), be32(spec.cells, 8))
    else {
        return Err(NodeProblem::BadProperty {
            name: "#interrupt-cells",
            problem: "of the GIC is below 3",
        });
    };
    let intid = match kind {
        0 if number < 988 => number + 32,    // SPI: INTIDs 32..1019
        1 if number < 16 => number + 16,     // PPI: INTIDs 16..31
        2 if number < 1024 => number + 4096, // extended SPI (GICv3.1)
        3 if number < 64 => number + 1056,   // extended PPI (GICv3.1)
        _ => return Err(NodeProblem::BadGicInterrupt { kind, number }),
    };
    Ok(intid)
}
