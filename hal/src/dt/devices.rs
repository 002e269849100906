//! Reading the parts of the machine the kernel needs out of a validated tree.
//!
//! Each reader records what is wrong with a node in the issue list and moves
//! on to the next candidate, so one odd device never stops the boot.

use super::addr::{for_each_region, reg, translate};
use super::error::{DtError, NodeError, NodePath, NodeProblem, Part};
use super::index::Compat;
use super::irq::{gic_intid, interrupts, Interrupts, Spec};
use super::tree::{exact_u32, u32_or_u64, AllNodes, Lineage, Node, Tree, Want};
use super::{Gic, GicVersion, Machine, Region, Reserved, ReservedKind, Timer, MAX_ISSUES};

/// Every `compatible` string the readers look for, in groups (each most
/// specific first). The node index records which of them each node lists, so
/// a scan for a GIC or a timer skips every other node; at most 16.
pub(crate) const COMPATIBLES: [&str; 12] = [
    // GIC_V3
    "arm,gic-v3",
    // GIC_V2
    "arm,cortex-a15-gic",
    "arm,gic-400",
    "arm,cortex-a9-gic",
    "arm,cortex-a7-gic",
    "arm,gic-v2",
    // TIMERS
    "arm,armv8-timer",
    "arm,armv7-timer",
    // PSCI
    "arm,psci-1.0",
    "arm,psci-0.2",
    "arm,psci",
    // PL011
    "arm,pl011",
];
pub(super) const GIC_V3: Compat = Compat::group(0, 1);
pub(super) const GIC_V2: Compat = Compat::group(1, 5);
pub(crate) const GIC: Compat = Compat::group(0, 6);
pub(super) const TIMERS: Compat = Compat::group(6, 2);
pub(super) const PSCI: Compat = Compat::group(8, 3);
pub(super) const PL011: Compat = Compat::group(11, 1);

/// Build the [`Machine`] from a validated tree.
///
/// Not inlined, and filling the machine's lists in place, to keep the stack
/// small while the node index is on it (see [`Machine::parse`]).
#[inline(never)]
pub(crate) fn read<'a>(tree: &Tree<'_, 'a>, fdt: &fdt::Fdt<'a>) -> Result<Machine<'a>, DtError> {
    let root = tree.root().ok_or(DtError::Malformed {
        offset: 0,
        what: "no root node",
    })?;
    let compatible = root.strings("compatible").next().unwrap_or("");
    let model = root.str("model").filter(|m| !m.is_empty()).unwrap_or(compatible);
    let mut m = Machine {
        model,
        compatible,
        memory: heapless::Vec::new(),
        reserved: heapless::Vec::new(),
        initrd: None,
        bootargs: "",
        console: None,
        gic: None,
        timer: None,
        cpus: heapless::Vec::new(),
        psci: None,
        issues: heapless::Vec::new(),
        used_size: 0,
    };
    let mut r = Reader {
        tree: *tree,
        issues: &mut m.issues,
    };
    r.memory(&mut m.memory);
    r.reserved(fdt, &mut m.reserved);
    let chosen = tree.find_path("/chosen");
    (m.initrd, m.bootargs) = r.chosen(chosen);
    let gic = r.gic();
    let gic_node = gic.as_ref().map(|(_, node)| *node);
    m.gic = gic.map(|(g, _)| g);
    m.console = r.console(chosen, gic_node.as_ref());
    m.timer = r.timer(gic_node.as_ref());
    r.cpus(&mut m.cpus);
    m.psci = r.psci();
    Ok(m)
}

pub(super) struct Reader<'r, 't, 'a> {
    pub(super) tree: Tree<'t, 'a>,
    /// The machine's issue list, filled in place.
    pub(super) issues: &'r mut heapless::Vec<NodeError, MAX_ISSUES>,
}

impl<'t, 'a> Reader<'_, 't, 'a> {
    pub(super) fn note(&mut self, part: Part, path: NodePath, problem: NodeProblem) {
        // Past the capacity, later problems are dropped: the first ones explain the most.
        let _ = self.issues.push(NodeError { part, path, problem });
    }

    pub(super) fn path_of(&self, node: &Node<'a>) -> NodePath {
        self.tree
            .lineage(node)
            .map(|l| l.path())
            .unwrap_or_else(|| NodePath::new(node.name()))
    }

    /// All nodes in document order that may be `want` (callers still check,
    /// and test `is_enabled` last: it is the least selective).
    pub(super) fn all(&self, want: Want) -> AllNodes<'t, 'a> {
        self.tree.all_with(want)
    }

    fn memory(&mut self, out: &mut heapless::Vec<Region, 16>) {
        let mut full = false;
        for node in self.all(Want::Memory).filter(|n| n.is_memory() && n.is_enabled()) {
            let Some(lin) = self.tree.lineage(&node) else {
                continue;
            };
            let mut nonzero = false;
            let result = for_each_region(&lin, |base, size| {
                if size > 0 {
                    nonzero = true;
                    full |= out.push(Region { base, size }).is_err();
                }
                Ok(())
            });
            match result {
                Err(p) => self.note(Part::Memory, lin.path(), p),
                Ok(()) if !nonzero => self.note(Part::Memory, lin.path(), NodeProblem::ZeroSizedMemory),
                Ok(()) => {}
            }
        }
        if full {
            let max = out.capacity();
            self.note(
                Part::Memory,
                NodePath::new("/"),
                NodeProblem::TooMany {
                    what: "memory regions",
                    max,
                },
            );
        }
    }

    fn reserved(&mut self, fdt: &fdt::Fdt<'a>, out: &mut heapless::Vec<Reserved<'a>, 32>) {
        let mut full = false;
        // `memory_reservations()` cannot panic: validation put the block and its terminator inside the tree.
        for entry in fdt.memory_reservations() {
            let region = Region {
                base: entry.address().addr() as u64,
                size: entry.size() as u64,
            };
            if region.size > 0 {
                let kind = ReservedKind::MemReserve;
                full |= out
                    .push(Reserved {
                        region,
                        kind,
                        name: "/memreserve/",
                        no_map: false,
                    })
                    .is_err();
            }
        }
        if let Some(parent) = self.tree.find_path("/reserved-memory") {
            // Children with only `size` are placed dynamically by the OS: nothing to avoid.
            for node in self.tree.children(&parent).filter(|n| n.is_enabled() && n.has("reg")) {
                let Some(lin) = self.tree.lineage(&node) else {
                    continue;
                };
                // Reserved-memory addresses are CPU physical by definition (its `ranges` must be empty).
                match reg(&lin) {
                    Ok(entries) => {
                        for (base, size) in entries.filter(|&(_, size)| size > 0) {
                            let region = Region { base, size };
                            let (kind, no_map) = (ReservedKind::ReservedMemory, node.has("no-map"));
                            full |= out
                                .push(Reserved {
                                    region,
                                    kind,
                                    name: node.name(),
                                    no_map,
                                })
                                .is_err();
                        }
                    }
                    Err(p) => self.note(Part::Reserved, lin.path(), p),
                }
            }
        }
        if full {
            let max = out.capacity();
            self.note(
                Part::Reserved,
                NodePath::new("/reserved-memory"),
                NodeProblem::TooMany {
                    what: "reserved regions",
                    max,
                },
            );
        }
    }

    fn chosen(&mut self, chosen: Option<Node<'a>>) -> (Option<Region>, &'a str) {
        let Some(c) = chosen else { return (None, "") };
        let mut note = |problem| self.note(Part::Chosen, NodePath::new("/chosen"), problem);
        let bootargs = match (c.prop("bootargs"), c.str("bootargs")) {
            (_, Some(args)) => args,
            (None, None) => "",
            (Some(_), None) => {
                note(NodeProblem::BadProperty {
                    name: "bootargs",
                    problem: "is not a UTF-8 string",
                });
                ""
            }
        };
        let bad = |name| NodeProblem::BadProperty {
            name,
            problem: "is not 4 or 8 bytes",
        };
        let initrd = match (c.prop("linux,initrd-start"), c.prop("linux,initrd-end")) {
            (None, None) => None,
            (Some(_), None) => {
                note(NodeProblem::MissingProperty("linux,initrd-end"));
                None
            }
            (None, Some(_)) => {
                note(NodeProblem::MissingProperty("linux,initrd-start"));
                None
            }
            (Some(s), Some(e)) => match (u32_or_u64(s), u32_or_u64(e)) {
                (Some(start), Some(end)) if end >= start => (end > start).then_some(Region {
                    base: start,
                    size: end - start,
                }),
                (Some(start), Some(end)) => {
                    note(NodeProblem::InitrdEndBeforeStart { start, end });
                    None
                }
                (None, _) => {
                    note(bad("linux,initrd-start"));
                    None
                }
                (_, None) => {
                    note(bad("linux,initrd-end"));
                    None
                }
            },
        };
        (initrd, bootargs)
    }

    fn gic(&mut self) -> Option<(Gic<'a>, Node<'a>)> {
        for node in self.all(Want::Compatible(GIC)) {
            let (version, compatible) = if let Some(c) = node.compatible_with(GIC_V3) {
                (GicVersion::V3, c)
            } else if let Some(c) = node.compatible_with(GIC_V2) {
                (GicVersion::V2, c)
            } else {
                continue;
            };
            if !node.is_enabled() {
                continue;
            }
            let Some(lin) = self.tree.lineage(&node) else {
                continue;
            };
            match gic_from(&lin, &node, version, compatible) {
                Ok(gic) => return Some((gic, node)),
                Err(p) => self.note(Part::Gic, lin.path(), p),
            }
        }
        None
    }

    fn timer(&mut self, gic: Option<&Node<'a>>) -> Option<Timer<'a>> {
        for node in self.all(Want::Compatible(TIMERS)) {
            let Some(compatible) = node.compatible_with(TIMERS).filter(|_| node.is_enabled()) else {
                continue;
            };
            let Some(lin) = self.tree.lineage(&node) else {
                continue;
            };
            match self.timer_from(&lin, &node, compatible, gic) {
                Ok(timer) => return Some(timer),
                Err(p) => self.note(Part::Timer, lin.path(), p),
            }
        }
        None
    }

    /// Interrupts are <secure phys, non-secure phys, virt, hyp phys[, hyp virt]>.
    fn timer_from(
        &mut self,
        lin: &Lineage<'_, 'a>,
        node: &Node<'a>,
        compatible: &'a str,
        gic: Option<&Node<'a>>,
    ) -> Result<Timer<'a>, NodeProblem> {
        let irqs = interrupts(&self.tree, lin)?.ok_or(NodeProblem::MissingProperty("interrupts"))?;
        let nth = |irqs: &Interrupts<'_, 'a>, n: usize| -> Result<Spec<'a>, NodeProblem> {
            irqs.get(n)?.ok_or(NodeProblem::TooFewInterrupts {
                found: irqs.count(),
                needed: 3,
            })
        };
        let phys_irq = gic_intid(&nth(&irqs, 1)?, gic)?;
        let virt_irq = gic_intid(&nth(&irqs, 2)?, gic)?;
        let hyp_irq = match irqs.get(3).and_then(|s| s.map(|s| gic_intid(&s, gic)).transpose()) {
            Ok(irq) => irq,
            Err(p) => {
                self.note(Part::Timer, lin.path(), p);
                None
            }
        };
        Ok(Timer {
            compatible,
            phys_irq,
            virt_irq,
            hyp_irq,
            frequency: node.u32("clock-frequency"),
        })
    }
}

fn gic_from<'a>(
    lin: &Lineage<'_, 'a>,
    node: &Node<'a>,
    version: GicVersion,
    compatible: &'a str,
) -> Result<Gic<'a>, NodeProblem> {
    // Up to 1 + 8 redistributor regions + GICC/GICH/GICV; more are not used.
    let mut regs: heapless::Vec<Region, 12> = heapless::Vec::new();
    let mut found = 0;
    for_each_region(lin, |base, size| {
        found += 1;
        let _ = regs.push(Region { base, size });
        Ok(())
    })?;
    let nonzero = |i: usize| match regs.get(i) {
        Some(r) if r.size > 0 => Ok(*r),
        Some(_) => Err(NodeProblem::BadProperty {
            name: "reg",
            problem: "has a zero-sized GIC region",
        }),
        None => Err(NodeProblem::TooFewRegs { found, needed: i + 1 }),
    };
    let mut gic = Gic {
        version,
        compatible,
        distributor: nonzero(0)?,
        cpu_interface: None,
        redistributors: heapless::Vec::new(),
        redistributor_stride: None,
    };
    match version {
        GicVersion::V2 => gic.cpu_interface = Some(nonzero(1)?),
        GicVersion::V3 => {
            let count = match node.prop("#redistributor-regions") {
                None => 1,
                Some(v) => match exact_u32(v) {
                    Some(n @ 1..=8) => n as usize,
                    _ => {
                        let problem = "is not a single cell between 1 and 8";
                        return Err(NodeProblem::BadProperty {
                            name: "#redistributor-regions",
                            problem,
                        });
                    }
                },
            };
            if found < 1 + count {
                return Err(NodeProblem::TooFewRegs {
                    found,
                    needed: 1 + count,
                });
            }
            for i in 1..=count {
                let _ = gic.redistributors.push(nonzero(i)?);
            }
            gic.redistributor_stride = match node.prop("redistributor-stride") {
                None => None,
                Some(v) => {
                    let problem = "is not 4 or 8 bytes";
                    u32_or_u64(v).ok_or(NodeProblem::BadProperty {
                        name: "redistributor-stride",
                        problem,
                    })?;
                    u32_or_u64(v).filter(|&s| s > 0)
                }
            };
        }
    }
    Ok(gic)
}

/// First `reg` entry, translated, with a non-zero size.
pub(super) fn first_region(lin: &Lineage<'_, '_>) -> Result<Region, NodeProblem> {
    let (addr, size) = reg(lin)?
        .next()
        .ok_or(NodeProblem::TooFewRegs { found: 0, needed: 1 })?;
    if size == 0 {
        return Err(NodeProblem::BadProperty {
            name: "reg",
            problem: "has a zero size",
        });
    }
    let base = translate(lin, addr)?;
    base.checked_add(size).ok_or(NodeProblem::AddressOverflow)?;
    Ok(Region { base, size })
}

/// INTID of the node's first interrupt (`None` if it lists none).
pub(super) fn first_gic_irq<'a>(
    tree: &Tree<'_, 'a>,
    lin: &Lineage<'_, 'a>,
    gic: Option<&Node<'a>>,
) -> Result<Option<u32>, NodeProblem> {
    let Some(irqs) = interrupts(tree, lin)? else {
        return Ok(None);
    };
    irqs.get(0)?.map(|spec| gic_intid(&spec, gic)).transpose()
}
