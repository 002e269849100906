//! `hal::dt` on real device trees: QEMU `virt` dumps (tests/data) and the
//! Raspberry Pi 4 tree (not committed: `KESTREL_RPI4_DTB` or
//! `target/cache/bcm2711-rpi-4-b.dtb`), plus QEMU-style FDT_NOP rewrites of them.

use hal::dt::{
    header_total_size, DtError, EnableMethod, GicVersion, Machine, NodeProblem, Part, PsciConduit, Region,
    ReservedKind, UartKind,
};
use std::path::PathBuf;

const VIRT_GICV2: &[u8] = include_bytes!("data/qemu-virt-gicv2.dtb");
const VIRT_GICV3_SMP4: &[u8] = include_bytes!("data/qemu-virt-gicv3-smp4.dtb");
const VIRT_EL2: &[u8] = include_bytes!("data/qemu-virt-el2.dtb");
const VIRT_EL2_GICV3: &[u8] = include_bytes!("data/qemu-virt-el2-gicv3.dtb");
const VIRT_ALL: [&[u8]; 4] = [VIRT_GICV2, VIRT_GICV3_SMP4, VIRT_EL2, VIRT_EL2_GICV3];

fn region(base: u64, size: u64) -> Region {
    Region { base, size }
}

/// The Pi 4 tree, or `None` (with a message) when it is not available.
fn rpi4() -> Option<Vec<u8>> {
    let path = match std::env::var_os("KESTREL_RPI4_DTB") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/cache/bcm2711-rpi-4-b.dtb"),
    };
    match std::fs::read(&path) {
        Ok(blob) => Some(blob),
        Err(e) => {
            println!(
                "SKIPPED: Raspberry Pi 4 tree not available at {} ({e}); set KESTREL_RPI4_DTB or fetch it with the build tool",
                path.display()
            );
            None
        }
    }
}

// ---------------------------------------------------------------------------
// A little FDT surgery kit, enough to reproduce what QEMU does to trees.

const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;

fn be(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

#[derive(Debug, Clone)]
struct Tok {
    /// Absolute offset of the token.
    at: usize,
    tag: u32,
    /// Node path (for BEGIN_NODE: the node; for PROP: its owner).
    path: String,
    /// Property name (PROP only).
    name: String,
    /// Property value range (PROP only).
    value: std::ops::Range<usize>,
}

struct Blob(Vec<u8>);

impl Blob {
    fn hdr(&self, field: usize) -> u32 {
        be(&self.0, field * 4)
    }

    fn set_hdr(&mut self, field: usize, v: u32) {
        self.0[field * 4..field * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }

    fn string_at(&self, off: u32) -> String {
        let s = self.hdr(3) as usize + off as usize;
        let end = s + self.0[s..].iter().position(|&b| b == 0).unwrap();
        String::from_utf8(self.0[s..end].to_vec()).unwrap()
    }

    fn string_offset(&self, name: &str) -> u32 {
        let (s, n) = (self.hdr(3) as usize, self.hdr(8) as usize);
        let block = &self.0[s..s + n];
        let mut off = 0;
        for piece in block.split(|&b| b == 0) {
            if piece == name.as_bytes() {
                return off as u32;
            }
            off += piece.len() + 1;
        }
        panic!("no string {name}");
    }

    /// Every token of a well-formed tree, with node paths.
    fn tokens(&self) -> Vec<Tok> {
        let (mut at, end) = (self.hdr(2) as usize, (self.hdr(2) + self.hdr(9)) as usize);
        let mut stack: Vec<String> = Vec::new();
        let mut out = Vec::new();
        let path = |stack: &Vec<String>| {
            if stack.len() <= 1 {
                "/".to_string()
            } else {
                stack[1..].iter().map(|s| format!("/{s}")).collect()
            }
        };
        while at < end {
            let tag = be(&self.0, at);
            let mut tok = Tok {
                at,
                tag,
                path: path(&stack),
                name: String::new(),
                value: 0..0,
            };
            match tag {
                BEGIN_NODE => {
                    let len = self.0[at + 4..].iter().position(|&b| b == 0).unwrap();
                    stack.push(String::from_utf8(self.0[at + 4..at + 4 + len].to_vec()).unwrap());
                    tok.path = path(&stack);
                    at = (at + 4 + len + 1 + 3) & !3;
                }
                END_NODE => {
                    stack.pop();
                    at += 4;
                }
                PROP => {
                    let len = be(&self.0, at + 4) as usize;
                    tok.name = self.string_at(be(&self.0, at + 8));
                    tok.value = at + 12..at + 12 + len;
                    at = (at + 12 + len + 3) & !3;
                }
                _ => at += 4,
            }
            out.push(tok);
        }
        out
    }

    /// Overwrite a node, from its BEGIN_NODE through its END_NODE, with FDT_NOP (libfdt's fdt_nop_node).
    fn nop_node_where(&mut self, pred: impl Fn(&Blob, &Tok) -> bool) -> Option<String> {
        let toks = self.tokens();
        let start = toks.iter().position(|t| t.tag == BEGIN_NODE && pred(self, t))?;
        let mut depth = 0;
        let mut end = start;
        for (i, t) in toks.iter().enumerate().skip(start) {
            match t.tag {
                BEGIN_NODE => depth += 1,
                END_NODE => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = i;
                break;
            }
        }
        self.nop_range(toks[start].at, toks[end].at + 4);
        Some(toks[start].path.clone())
    }

    fn nop_node(&mut self, path: &str) -> bool {
        self.nop_node_where(|_, t| t.path == path).is_some()
    }

    /// Like QEMU's removal of devices it does not model: the first node with this compatible.
    fn nop_compatible(&mut self, compatible: &str) -> Option<String> {
        let toks = self.tokens();
        let path = toks
            .iter()
            .find(|t| {
                t.tag == PROP
                    && t.name == "compatible"
                    && self.0[t.value.clone()]
                        .split(|&b| b == 0)
                        .any(|c| c == compatible.as_bytes())
            })?
            .path
            .clone();
        self.nop_node(&path).then_some(path)
    }

    /// libfdt's fdt_nop_property.
    fn nop_prop(&mut self, path: &str, name: &str) -> bool {
        let toks = self.tokens();
        let Some(t) = toks.iter().find(|t| t.tag == PROP && t.path == path && t.name == name) else {
            return false;
        };
        let end = (t.value.end + 3) & !3;
        self.nop_range(t.at, end);
        true
    }

    fn nop_range(&mut self, from: usize, to: usize) {
        for w in (from..to).step_by(4) {
            self.0[w..w + 4].copy_from_slice(&NOP.to_be_bytes());
        }
    }

    /// Insert raw structure-block bytes at `at` (the strings block follows the structure block).
    fn insert_struct(&mut self, at: usize, bytes: &[u8]) {
        assert!(self.hdr(3) >= self.hdr(2) + self.hdr(9));
        let n = bytes.len() as u32;
        self.0.splice(at..at, bytes.iter().copied());
        let (size, strings, total) = (self.hdr(9), self.hdr(3), self.hdr(1));
        self.set_hdr(9, size + n);
        self.set_hdr(3, strings + n);
        self.set_hdr(1, total + n);
    }

    fn first_child_offset(&self, path: &str) -> usize {
        let toks = self.tokens();
        let i = toks.iter().position(|t| t.tag == BEGIN_NODE && t.path == path).unwrap();
        toks[i + 1..].iter().find(|t| t.tag != PROP).unwrap().at
    }

    fn node_count(&self) -> usize {
        self.tokens().iter().filter(|t| t.tag == BEGIN_NODE).count()
    }
}

fn cells(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|c| c.to_be_bytes()).collect()
}

fn prop_bytes(name_off: u32, value: &[u8]) -> Vec<u8> {
    let mut out = cells(&[PROP, value.len() as u32, name_off]);
    out.extend_from_slice(value);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    out
}

/// What QEMU's `-M raspi4b` does to the Pi 4 tree (hw/arm/raspi4b.c + hw/arm/boot.c):
/// NOP the devices it does not model, NOP the old /memory@0 and add a new one first in the root.
fn qemu_raspi4b_rewrite(pi: &[u8]) -> Vec<u8> {
    let mut b = Blob(pi.to_vec());
    for c in [
        "brcm,bcm2711-pcie",
        "brcm,bcm2711-rng200",
        "brcm,bcm2711-thermal",
        "brcm,bcm2711-genet-v5",
    ] {
        b.nop_compatible(c).unwrap();
    }
    assert!(b.nop_node("/memory@0"));
    let mut node = cells(&[BEGIN_NODE]);
    node.extend_from_slice(b"memory@0\0\0\0\0");
    node.extend(prop_bytes(b.string_offset("reg"), &cells(&[0, 0, 0x3c00_0000])));
    node.extend(prop_bytes(b.string_offset("device_type"), b"memory\0"));
    node.extend(cells(&[END_NODE]));
    let at = b.first_child_offset("/");
    b.insert_struct(at, &node);
    b.0
}

// ---------------------------------------------------------------------------
// QEMU virt

fn parse(blob: &[u8]) -> Machine<'_> {
    let m = Machine::parse(blob).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.check_bootable(), Ok(()), "{m}");
    assert!(m.issues.is_empty(), "{:?}", m.issues);
    m
}

/// What every QEMU virt tree has in common.
fn check_virt_common(m: &Machine<'_>) {
    assert_eq!(m.model, "linux,dummy-virt");
    assert_eq!(m.compatible, "linux,dummy-virt");
    assert!(m.reserved.is_empty());
    assert_eq!(m.initrd, None);
    assert_eq!(m.bootargs, "");
    let c = m.console.unwrap();
    assert_eq!(c.kind, UartKind::Pl011);
    assert_eq!(c.path, "/pl011@9000000");
    assert_eq!(c.regs, region(0x900_0000, 0x1000));
    assert_eq!(c.irq, Some(33)); // SPI 1
    assert_eq!(c.clock_hz, Some(24_000_000)); // via clocks = <&apb_pclk>
    assert_eq!(c.baud, None);
    let t = m.timer.unwrap();
    assert_eq!(t.compatible, "arm,armv8-timer");
    assert_eq!(
        (t.phys_irq, t.virt_irq, t.hyp_irq, t.frequency),
        (30, 27, Some(26), None)
    );
    let p = m.psci.unwrap();
    assert_eq!(p.compatible, "arm,psci-1.0");
    assert_eq!(p.version(), "1.0");
    assert_eq!(
        (p.cpu_on, p.cpu_off, p.system_off),
        (0xC400_0003, 0x8400_0002, Some(0x8400_0008))
    );
    for (i, cpu) in m.cpus.iter().enumerate() {
        assert_eq!(cpu.mpidr, i as u64);
        assert_eq!(cpu.compatible, "arm,cortex-a72");
    }
}

#[test]
fn qemu_virt_gicv2_smp1_128m() {
    let m = parse(VIRT_GICV2);
    check_virt_common(&m);
    assert_eq!(&m.memory[..], &[region(0x4000_0000, 128 << 20)]);
    let g = m.gic.as_ref().unwrap();
    assert_eq!((g.version, g.compatible), (GicVersion::V2, "arm,cortex-a15-gic"));
    assert_eq!(g.distributor, region(0x800_0000, 0x1_0000));
    assert_eq!(g.cpu_interface, Some(region(0x801_0000, 0x1_0000)));
    assert!(g.redistributors.is_empty());
    // A single CPU: QEMU gives it no enable-method.
    assert_eq!(m.cpus.len(), 1);
    assert_eq!(m.cpus[0].enable, EnableMethod::None);
    assert_eq!(m.psci.unwrap().conduit, PsciConduit::Hvc);
}

#[test]
fn qemu_virt_gicv3_smp4_2g() {
    let m = parse(VIRT_GICV3_SMP4);
    check_virt_common(&m);
    assert_eq!(&m.memory[..], &[region(0x4000_0000, 2 << 30)]);
    assert_eq!(m.memory_total(), 2 << 30);
    let g = m.gic.as_ref().unwrap();
    assert_eq!((g.version, g.compatible), (GicVersion::V3, "arm,gic-v3"));
    assert_eq!(g.distributor, region(0x800_0000, 0x1_0000));
    assert_eq!(g.cpu_interface, None);
    assert_eq!(&g.redistributors[..], &[region(0x80a_0000, 0xf6_0000)]);
    assert_eq!(g.redistributor_stride, None);
    assert_eq!(m.cpus.len(), 4);
    assert!(m.cpus.iter().all(|c| c.enable == EnableMethod::Psci));
    assert_eq!(m.psci.unwrap().conduit, PsciConduit::Hvc);
}

#[test]
fn qemu_virt_virtualization_uses_smc() {
    for (blob, version) in [(VIRT_EL2, GicVersion::V2), (VIRT_EL2_GICV3, GicVersion::V3)] {
        let m = parse(blob);
        check_virt_common(&m);
        assert_eq!(&m.memory[..], &[region(0x4000_0000, 1 << 30)]);
        assert_eq!(m.psci.unwrap().conduit, PsciConduit::Smc);
        assert_eq!(m.cpus.len(), 2);
        assert!(m.cpus.iter().all(|c| c.enable == EnableMethod::Psci));
        let g = m.gic.as_ref().unwrap();
        assert_eq!(g.version, version);
        assert_eq!(g.distributor, region(0x800_0000, 0x1_0000));
        match version {
            // GICH/GICV follow GICD/GICC and are not used.
            GicVersion::V2 => assert_eq!(g.cpu_interface, Some(region(0x801_0000, 0x1_0000))),
            GicVersion::V3 => assert_eq!(&g.redistributors[..], &[region(0x80a_0000, 0xf6_0000)]),
        }
    }
}

#[test]
fn header_total_size_of_real_trees() {
    for blob in VIRT_ALL {
        assert_eq!(header_total_size(&blob[..40]), Ok(blob.len()));
        assert_eq!(header_total_size(blob), Ok(blob.len()));
    }
}

#[test]
fn qemu_unpacked_layout_with_free_space() {
    // QEMU itself hands over the tree unpacked: totalsize 1 MiB, mostly free space.
    for blob in VIRT_ALL {
        let mut b = Blob(blob.to_vec());
        b.0.resize(1 << 20, 0);
        b.set_hdr(1, 1 << 20);
        assert_eq!(Machine::parse(&b.0), Machine::parse(blob));
        // A larger buffer than totalsize is fine too.
        b.0.resize(3 << 20, 0xff);
        assert_eq!(Machine::parse(&b.0), Machine::parse(blob));
    }
}

#[test]
fn display_summarises_the_machine() {
    let m = parse(VIRT_GICV3_SMP4);
    let text = m.to_string();
    for want in [
        "linux,dummy-virt",
        "0x40000000..0xc0000000 (2 GiB)",
        "PL011 /pl011@9000000 at 0x9000000",
        "INTID 33",
        "GICv3 (arm,gic-v3): GICD 0x8000000",
        "GICR 0x80a0000",
        "phys INTID 30, virt INTID 27, hyp INTID 26",
        "MPIDR 0x3 arm,cortex-a72 psci (hvc)",
        "1.0 via hvc",
        "bootable    yes",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
}

// ---------------------------------------------------------------------------
// FDT_NOP: QEMU NOPs out nodes it does not model.

/// Nodes a QEMU virt Machine depends on.
fn virt_essential(path: &str) -> bool {
    let exact = [
        "/",
        "/cpus",
        "/intc@8000000",
        "/timer",
        "/pl011@9000000",
        "/psci",
        "/chosen",
        "/aliases",
        "/apb-pclk",
    ];
    exact.contains(&path) || path.starts_with("/memory@") || path.starts_with("/cpus/cpu@")
}

#[test]
fn nopped_irrelevant_nodes_change_nothing() {
    // Includes last children (a NOP run right before the parent's END_NODE,
    // e.g. the GIC's v2m/its frame) and nodes between siblings.
    for blob in VIRT_ALL {
        let want = parse(blob);
        let paths: Vec<String> = Blob(blob.to_vec())
            .tokens()
            .into_iter()
            .filter(|t| t.tag == BEGIN_NODE && !virt_essential(&t.path))
            .map(|t| t.path)
            .collect();
        assert!(paths.len() > 20);
        for path in &paths {
            let mut b = Blob(blob.to_vec());
            assert!(b.nop_node(path));
            assert_eq!(Machine::parse(&b.0).as_ref(), Ok(&want), "after NOP-ing {path}");
        }
        // All of them at once (children first): long NOP runs everywhere.
        let mut b = Blob(blob.to_vec());
        for path in paths.iter().rev() {
            assert!(b.nop_node(path));
        }
        assert_eq!(Machine::parse(&b.0).as_ref(), Ok(&want));
    }
}

#[test]
fn nopped_properties_are_skipped() {
    let want = parse(VIRT_GICV2);
    let mut b = Blob(VIRT_GICV2.to_vec());
    // First property of the root, properties between others, last ones of a node.
    let harmless = [
        ("/", "dma-coherent"),
        ("/fw-cfg@9020000", "compatible"),
        ("/pl011@9000000", "clock-names"),
        ("/timer", "always-on"),
        ("/chosen", "kaslr-seed"),
        ("/psci", "migrate"),
        ("/intc@8000000", "#interrupt-cells"),
    ];
    for (path, prop) in harmless.iter().take(6) {
        assert!(b.nop_prop(path, prop), "{path} {prop}");
    }
    assert_eq!(Machine::parse(&b.0).as_ref(), Ok(&want));
    // Dropping stdout-path leaves alias serial0, which names the same UART.
    assert!(b.nop_prop("/chosen", "stdout-path"));
    assert_eq!(Machine::parse(&b.0).unwrap().console, want.console);
    // Without the GIC's #interrupt-cells nothing can be routed to it: the
    // interrupt parent search goes on up the tree and finds none.
    assert!(b.nop_prop(harmless[6].0, harmless[6].1));
    let m = Machine::parse(&b.0).unwrap();
    assert_eq!(m.timer, None);
    assert_eq!(m.console.unwrap().irq, None);
    assert!(
        m.issues
            .iter()
            .any(|i| i.part == Part::Timer && i.problem == NodeProblem::NoInterruptParent),
        "{:?}",
        m.issues
    );
}

#[test]
fn nopped_essential_nodes_are_reported() {
    let mut b = Blob(VIRT_GICV2.to_vec());
    b.nop_node("/timer");
    {
        let m = Machine::parse(&b.0).unwrap();
        assert_eq!(m.timer, None);
        assert_eq!(
            m.check_bootable(),
            Err(DtError::Missing {
                part: Part::Timer,
                cause: None
            })
        );
    }
    b.nop_node("/intc@8000000");
    let m = Machine::parse(&b.0).unwrap();
    assert_eq!(m.gic, None);
    // The UART's interrupt can no longer be mapped: it stays usable by polling.
    assert_eq!(m.console.unwrap().irq, None);
    assert!(m.issues.iter().any(|i| i.part == Part::Console
        && i.problem
            == NodeProblem::BadPhandle {
                property: "interrupt-parent",
                phandle: 0x8002
            }));
    assert!(matches!(
        m.check_bootable(),
        Err(DtError::Missing {
            part: Part::Gic,
            cause: None
        })
    ));
}

/// Why the reader walks nodes itself instead of with `fdt`'s iterators: on a
/// QEMU-style NOP rewrite `all_nodes()` stops early and `find_node()` panics.
#[test]
fn fdt_crate_node_iterators_mishandle_nops() {
    let mut b = Blob(VIRT_GICV2.to_vec());
    let total = b.node_count();
    let fdt = fdt::Fdt::new(&b.0).unwrap();
    assert_eq!(fdt.all_nodes().count(), total, "fdt agrees on a NOP-free tree");

    // NOP the GIC's only child: NOPs now sit right before the GIC's END_NODE.
    assert!(b.nop_node("/intc@8000000/v2m@8020000"));
    let fdt = fdt::Fdt::new(&b.0).unwrap();
    let seen = fdt.all_nodes().count();
    assert!(seen < total - 1, "all_nodes() saw {seen} of {} nodes", total - 1);
    // And ours still reads everything after it.
    assert_eq!(Machine::parse(&b.0).as_ref(), Ok(&parse(VIRT_GICV2)));

    // NOP a node followed by a sibling: find_node() stops looking there ...
    let mut b = Blob(VIRT_GICV2.to_vec());
    assert!(b.nop_node("/platform-bus@c000000"));
    let fdt = fdt::Fdt::new(&b.0).unwrap();
    assert!(
        fdt.find_node("/pl011@9000000").is_none(),
        "fdt 0.1.5 no longer loses nodes after a NOP run"
    );
    // ... and asserts when it has to skip a node that contains such a NOP run.
    let mut b = Blob(VIRT_GICV3_SMP4.to_vec());
    assert!(b.nop_node("/cpus/cpu-map/socket0/cluster0/core1"));
    let fdt = fdt::Fdt::new(&b.0).unwrap();
    let panicked = std::panic::catch_unwind(|| fdt.find_node("/chosen").is_some()).is_err();
    assert!(panicked, "fdt 0.1.5 find_node() no longer panics on NOP-ed nodes");
    assert_eq!(Machine::parse(&b.0).as_ref(), Ok(&parse(VIRT_GICV3_SMP4)));
}

// ---------------------------------------------------------------------------
// Raspberry Pi 4

/// Values common to the real tree and QEMU's rewrite of it.
fn check_rpi4_devices(m: &Machine<'_>) {
    assert_eq!(m.model, "Raspberry Pi 4 Model B");
    assert_eq!(m.compatible, "raspberrypi,4-model-b");
    // The firmware's spin tables at the bottom of RAM; linux,cma is size-only and nvram@0 disabled.
    assert_eq!(m.reserved.len(), 1);
    assert_eq!(m.reserved[0].region, region(0, 0x1000));
    assert_eq!(m.reserved[0].kind, ReservedKind::MemReserve);
    assert_eq!(m.initrd, None);
    assert_eq!(m.bootargs, "");
    // stdout-path = "serial1:115200n8" is the mini UART (not a PL011): serial0 is used,
    // through /soc's ranges (0x7e000000 -> 0xfe000000).
    let c = m.console.unwrap();
    assert_eq!(c.path, "/soc/serial@7e201000");
    assert_eq!(c.regs, region(0xfe20_1000, 0x200));
    assert_eq!(c.irq, Some(153)); // SPI 121
    assert_eq!(c.clock_hz, None); // a firmware clock, not a fixed one
    assert_eq!(c.baud, None); // the 115200 of stdout-path belongs to the mini UART
                              // GIC-400 at bus 0x40041000 -> CPU 0xff841000 (0x40000000 -> 0xff800000 window).
    let g = m.gic.as_ref().unwrap();
    assert_eq!((g.version, g.compatible), (GicVersion::V2, "arm,gic-400"));
    assert_eq!(g.distributor, region(0xff84_1000, 0x1000));
    assert_eq!(g.cpu_interface, Some(region(0xff84_2000, 0x2000)));
    let t = m.timer.unwrap();
    assert_eq!(
        (t.phys_irq, t.virt_irq, t.hyp_irq, t.frequency),
        (30, 27, Some(26), None)
    );
    assert_eq!(m.cpus.len(), 4);
    for (i, cpu) in m.cpus.iter().enumerate() {
        assert_eq!(cpu.mpidr, i as u64);
        assert_eq!(cpu.compatible, "arm,cortex-a72");
        // /cpus says "brcm,bcm2836-smp"; each CPU overrides it.
        assert_eq!(
            cpu.enable,
            EnableMethod::SpinTable {
                release_addr: 0xd8 + 8 * i as u64
            }
        );
    }
    assert_eq!(m.psci, None);
}

#[test]
fn rpi4_real_tree() {
    let Some(pi) = rpi4() else { return };
    let m = Machine::parse(&pi).unwrap();
    check_rpi4_devices(&m);
    // memory@0 has reg = <0 0 0>: the firmware fills it in before handing over.
    assert!(m.memory.is_empty());
    let cause = m.issues.iter().find(|i| i.part == Part::Memory).cloned();
    assert_eq!(
        cause.as_ref().map(|c| (c.path.as_str(), &c.problem)),
        Some(("/memory@0", &NodeProblem::ZeroSizedMemory))
    );
    let err = m.check_bootable().unwrap_err();
    assert_eq!(
        err,
        DtError::Missing {
            part: Part::Memory,
            cause
        }
    );
    assert!(err.to_string().contains("no usable memory: /memory@0"), "{err}");
    assert_eq!(m.issues.len(), 1, "{:?}", m.issues);
}

#[test]
fn rpi4_as_rewritten_by_qemu_raspi4b() {
    let Some(pi) = rpi4() else { return };
    let rewritten = qemu_raspi4b_rewrite(&pi);
    // The rewrite has NOP runs before END_NODE (/soc/avs-monitor's last child), between siblings, ...
    let m = Machine::parse(&rewritten).unwrap_or_else(|e| panic!("{e}"));
    check_rpi4_devices(&m);
    assert_eq!(&m.memory[..], &[region(0, 0x3c00_0000)]);
    assert_eq!(m.check_bootable(), Ok(()));
    assert!(m.issues.is_empty(), "{:?}", m.issues);
    // ... where fdt's all_nodes() gives up early.
    let fdt = fdt::Fdt::new(&rewritten).unwrap();
    assert!(fdt.all_nodes().count() < Blob(rewritten.clone()).node_count());
}

#[test]
fn rpi4_header_total_size() {
    let Some(pi) = rpi4() else { return };
    assert_eq!(header_total_size(&pi[..40]), Ok(pi.len()));
}

/// Checks the synthetic rewrite against a real `qemu-system-aarch64 -M raspi4b
/// -dtb bcm2711-rpi-4-b.dtb -machine dumpdtb=FILE` dump named by `KESTREL_RPI4_QEMU_DTB`.
#[test]
fn rpi4_qemu_dump_matches_synthetic_rewrite() {
    let Some(path) = std::env::var_os("KESTREL_RPI4_QEMU_DTB") else {
        println!("SKIPPED: set KESTREL_RPI4_QEMU_DTB to a QEMU raspi4b dumpdtb file to compare");
        return;
    };
    let Some(pi) = rpi4() else { return };
    let dump = Blob(std::fs::read(path).unwrap());
    let ours = Blob(qemu_raspi4b_rewrite(&pi));
    // Same tokens, names and values (libfdt leaves stale bytes in padding, so not byte-equal).
    let tokens = |b: &Blob| -> Vec<(u32, String, String, Vec<u8>)> {
        b.tokens()
            .into_iter()
            .map(|t| (t.tag, t.path, t.name, b.0[t.value].to_vec()))
            .collect()
    };
    assert!(tokens(&dump) == tokens(&ours), "structure blocks differ");
    let strings = |b: &Blob| b.0[b.hdr(3) as usize..(b.hdr(3) + b.hdr(8)) as usize].to_vec();
    assert!(strings(&dump) == strings(&ours), "strings blocks differ");
    assert_eq!(Machine::parse(&dump.0), Machine::parse(&ours.0));
}
