//! `hal::dt` on synthetic trees: a known-good board, then every way a tree
//! can be broken (structure, header, semantics), each with the exact error.

use hal::dt::{
    header_total_size, Block, DtError, EnableMethod, GicVersion, Machine, NodePath, NodeProblem, Part, PsciConduit,
    Region, ReservedKind, MAX_TOTAL_SIZE,
};

// ---------------------------------------------------------------------------
// Building trees

/// Raw token emitter: can write malformed streams on purpose.
#[derive(Default)]
struct Raw {
    structs: Vec<u8>,
    strings: Vec<u8>,
}

impl Raw {
    fn word(&mut self, w: u32) -> &mut Self {
        self.structs.extend_from_slice(&w.to_be_bytes());
        self
    }
    fn pad(&mut self) {
        while !self.structs.len().is_multiple_of(4) {
            self.structs.push(0);
        }
    }
    fn begin(&mut self, name: &str) -> &mut Self {
        self.word(1);
        self.structs.extend_from_slice(name.as_bytes());
        self.structs.push(0);
        self.pad();
        self
    }
    fn end_node(&mut self) -> &mut Self {
        self.word(2)
    }
    fn nop(&mut self) -> &mut Self {
        self.word(4)
    }
    fn end(&mut self) -> &mut Self {
        self.word(9)
    }
    fn name_off(&mut self, name: &str) -> u32 {
        let mut off = 0;
        for piece in self.strings.split(|&b| b == 0) {
            if piece == name.as_bytes() && off < self.strings.len() {
                return off as u32;
            }
            off += piece.len() + 1;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        off
    }
    fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let off = self.name_off(name);
        self.prop_raw(off, value.len() as u32, value)
    }
    fn prop_raw(&mut self, name_off: u32, len: u32, value: &[u8]) -> &mut Self {
        self.word(3).word(len).word(name_off);
        self.structs.extend_from_slice(value);
        self.pad();
        self
    }
    fn blob(&self) -> Vec<u8> {
        assemble(&self.structs, &self.strings, &[])
    }
}

/// Header (version 17), memory reservation block, structure block, strings block.
fn assemble(structs: &[u8], strings: &[u8], rsv: &[(u64, u64)]) -> Vec<u8> {
    let off_rsv = 40;
    let off_struct = off_rsv + 16 * (rsv.len() + 1);
    let off_strings = off_struct + structs.len();
    let total = off_strings + strings.len();
    let mut b = Vec::new();
    for w in [
        0xd00d_feed,
        total,
        off_struct,
        off_strings,
        off_rsv,
        17,
        16,
        0,
        strings.len(),
        structs.len(),
    ] {
        b.extend_from_slice(&(w as u32).to_be_bytes());
    }
    for &(a, s) in rsv.iter().chain([(0, 0)].iter()) {
        b.extend_from_slice(&a.to_be_bytes());
        b.extend_from_slice(&s.to_be_bytes());
    }
    b.extend_from_slice(structs);
    b.extend_from_slice(strings);
    b
}

/// A tree as nested nodes, easy to edit before serialising.
#[derive(Clone, Debug)]
struct N {
    name: String,
    props: Vec<(String, Vec<u8>)>,
    kids: Vec<N>,
}

fn n(name: &str) -> N {
    N {
        name: name.into(),
        props: vec![],
        kids: vec![],
    }
}

/// A string property value.
fn s(v: &str) -> Vec<u8> {
    let mut b = v.as_bytes().to_vec();
    b.push(0);
    b
}

/// A cells property value.
fn c(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|w| w.to_be_bytes()).collect()
}

impl N {
    fn p(mut self, name: &str, value: Vec<u8>) -> Self {
        self.props.push((name.into(), value));
        self
    }
    fn kid(mut self, k: N) -> Self {
        self.kids.push(k);
        self
    }
    fn at(&mut self, path: &str) -> &mut N {
        let mut node = self;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            node = node
                .kids
                .iter_mut()
                .find(|k| k.name == part)
                .unwrap_or_else(|| panic!("no {part}"));
        }
        node
    }
    fn set(&mut self, path: &str, prop: &str, value: Vec<u8>) -> &mut Self {
        let node = self.at(path);
        match node.props.iter_mut().find(|(n, _)| n == prop) {
            Some(p) => p.1 = value,
            None => node.props.push((prop.into(), value)),
        }
        self
    }
    fn del(&mut self, path: &str, prop: &str) -> &mut Self {
        self.at(path).props.retain(|(n, _)| n != prop);
        self
    }
    fn rm(&mut self, path: &str) -> &mut Self {
        let (parent, name) = path.rsplit_once('/').unwrap();
        self.at(parent).kids.retain(|k| k.name != name);
        self
    }
    fn add(&mut self, path: &str, kid: N) -> &mut Self {
        self.at(path).kids.push(kid);
        self
    }
    fn emit(&self, raw: &mut Raw) {
        raw.begin(&self.name);
        for (name, value) in &self.props {
            raw.prop(name, value);
        }
        for k in &self.kids {
            k.emit(raw);
        }
        raw.end_node();
    }
    fn dtb(&self) -> Vec<u8> {
        self.dtb_with_rsv(&[])
    }
    fn dtb_with_rsv(&self, rsv: &[(u64, u64)]) -> Vec<u8> {
        let mut raw = Raw::default();
        self.emit(&mut raw);
        raw.end();
        assemble(&raw.structs, &raw.strings, rsv)
    }
}

/// A small bootable board: GICv2 at the root, the UART behind a translating bus.
fn board() -> N {
    n("")
        .p("#address-cells", c(&[2]))
        .p("#size-cells", c(&[2]))
        .p("compatible", s("test,board"))
        .p("model", s("Test Board"))
        .p("interrupt-parent", c(&[1]))
        .kid(
            n("memory@40000000")
                .p("device_type", s("memory"))
                .p("reg", c(&[0, 0x4000_0000, 0, 0x1000_0000])),
        )
        .kid(
            n("cpus")
                .p("#address-cells", c(&[1]))
                .p("#size-cells", c(&[0]))
                .kid(
                    n("cpu@0")
                        .p("device_type", s("cpu"))
                        .p("compatible", s("arm,cortex-a53"))
                        .p("reg", c(&[0]))
                        .p("enable-method", s("psci")),
                )
                .kid(
                    n("cpu@1")
                        .p("device_type", s("cpu"))
                        .p("compatible", s("arm,cortex-a53"))
                        .p("reg", c(&[1]))
                        .p("enable-method", s("spin-table"))
                        .p("cpu-release-addr", c(&[0, 0x4000_fff8])),
                )
                .kid(n("cpu-map").kid(n("cluster0").kid(n("core0").p("cpu", c(&[2]))))),
        )
        .kid(n("psci").p("compatible", s("arm,psci-0.2")).p("method", s("smc")))
        .kid(
            n("intc@8000000")
                .p("compatible", s("arm,gic-400"))
                .p("interrupt-controller", vec![])
                .p("#interrupt-cells", c(&[3]))
                .p("reg", c(&[0, 0x800_0000, 0, 0x1000, 0, 0x801_0000, 0, 0x2000]))
                .p("phandle", c(&[1])),
        )
        .kid(
            n("timer")
                .p("compatible", s("arm,armv8-timer"))
                .p("interrupts", c(&[1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4])),
        )
        .kid(
            n("soc")
                .p("compatible", s("simple-bus"))
                .p("#address-cells", c(&[1]))
                .p("#size-cells", c(&[1]))
                .p("ranges", c(&[0, 0, 0x1000_0000, 0x100_0000]))
                .kid(
                    n("serial@1000")
                        .p("compatible", [s("arm,pl011"), s("arm,primecell")].concat())
                        .p("reg", c(&[0x1000, 0x1000]))
                        .p("interrupts", c(&[0, 5, 4]))
                        .p("clock-frequency", c(&[48_000_000])),
                ),
        )
        .kid(
            n("chosen")
                .p("stdout-path", s("serial0:115200n8"))
                .p("bootargs", s("console=ttyAMA0 quiet"))
                .p("linux,initrd-start", c(&[0x4800_0000]))
                .p("linux,initrd-end", c(&[0, 0x4810_0000])),
        )
        .kid(n("aliases").p("serial0", s("/soc/serial@1000")))
}

fn parse(blob: &[u8]) -> Machine<'_> {
    Machine::parse(blob).unwrap_or_else(|e| panic!("{e}"))
}

/// Parse a tree that must be readable; return its issues and check_bootable verdict as text.
fn verdict(tree: &N) -> (Vec<String>, Result<(), String>) {
    let blob = tree.dtb();
    let m = parse(&blob);
    let _ = m.to_string();
    (
        m.issues.iter().map(|i| format!("{:?} {i}", i.part)).collect(),
        m.check_bootable().map_err(|e| e.to_string()),
    )
}

fn err(blob: &[u8]) -> DtError {
    match Machine::parse(blob) {
        Ok(m) => panic!("parsed:\n{m}"),
        Err(e) => e,
    }
}

fn set_hdr(blob: &mut [u8], field: usize, v: u32) {
    blob[field * 4..field * 4 + 4].copy_from_slice(&v.to_be_bytes());
}

fn hdr(blob: &[u8], field: usize) -> u32 {
    u32::from_be_bytes(blob[field * 4..field * 4 + 4].try_into().unwrap())
}

fn region(base: u64, size: u64) -> Region {
    Region { base, size }
}

// ---------------------------------------------------------------------------
// The baseline

#[test]
fn baseline_board() {
    let blob = board().dtb_with_rsv(&[(0x4000_0000, 0x1000), (0x5000_0000, 0)]);
    let m = parse(&blob);
    assert_eq!(m.check_bootable(), Ok(()));
    assert!(m.issues.is_empty(), "{:?}", m.issues);
    assert_eq!((m.model, m.compatible), ("Test Board", "test,board"));
    assert_eq!(&m.memory[..], &[region(0x4000_0000, 0x1000_0000)]);
    // The zero-sized /memreserve/ entry is dropped.
    assert_eq!(m.reserved.len(), 1);
    assert_eq!(
        (m.reserved[0].region, m.reserved[0].kind),
        (region(0x4000_0000, 0x1000), ReservedKind::MemReserve)
    );
    // 32-bit start, 64-bit end.
    assert_eq!(m.initrd, Some(region(0x4800_0000, 0x10_0000)));
    assert_eq!(m.bootargs, "console=ttyAMA0 quiet");
    let con = m.console.unwrap();
    assert_eq!(con.path, "/soc/serial@1000");
    assert_eq!(con.regs, region(0x1000_1000, 0x1000));
    assert_eq!(
        (con.irq, con.clock_hz, con.baud),
        (Some(37), Some(48_000_000), Some(115_200))
    );
    let g = m.gic.as_ref().unwrap();
    assert_eq!(
        (g.version, g.distributor, g.cpu_interface),
        (
            GicVersion::V2,
            region(0x800_0000, 0x1000),
            Some(region(0x801_0000, 0x2000))
        )
    );
    let t = m.timer.unwrap();
    assert_eq!((t.phys_irq, t.virt_irq, t.hyp_irq), (30, 27, Some(26)));
    assert_eq!(m.cpus.len(), 2, "cpu-map is not a CPU");
    assert_eq!(m.cpus[0].enable, EnableMethod::Psci);
    assert_eq!(
        m.cpus[1].enable,
        EnableMethod::SpinTable {
            release_addr: 0x4000_fff8
        }
    );
    assert_eq!(m.cpus[1].mpidr, 1);
    let p = m.psci.unwrap();
    assert_eq!(
        (p.conduit, p.version(), p.cpu_on, p.system_off),
        (PsciConduit::Smc, "0.2", 0xC400_0003, Some(0x8400_0008))
    );
    let text = m.to_string();
    assert!(text.contains("spin-table @ 0x4000fff8"), "{text}");
    assert!(text.contains("115200 baud"), "{text}");
}

// ---------------------------------------------------------------------------
// Header

#[test]
fn bad_magic() {
    let mut blob = board().dtb();
    blob[0] = 0x7f;
    let e = err(&blob);
    assert_eq!(e, DtError::BadMagic { magic: 0x7f0d_feed });
    assert_eq!(
        e.to_string(),
        "device tree: bad magic 0x7f0dfeed, expected 0xd00dfeed (x0 does not point at a DTB)"
    );
    assert_eq!(header_total_size(&blob), Err(e));
    // A kernel image instead of a DTB.
    assert!(matches!(err(&[0u8; 64]), DtError::BadMagic { magic: 0 }));
}

#[test]
fn shorter_than_the_header() {
    let blob = board().dtb();
    for len in 0..40 {
        assert_eq!(Machine::parse(&blob[..len]), Err(DtError::TooShort { len }));
        assert_eq!(header_total_size(&blob[..len]), Err(DtError::TooShort { len }));
    }
    assert_eq!(
        err(&[]).to_string(),
        "device tree: only 0 bytes, the header alone needs 40"
    );
}

#[test]
fn truncated_at_every_offset() {
    let blob = board().dtb();
    for len in 40..blob.len() {
        let e = err(&blob[..len]);
        assert_eq!(
            e,
            DtError::TotalSizePastBuffer {
                totalsize: blob.len() as u32,
                available: len
            }
        );
    }
    assert!(err(&blob[..100]).to_string().contains(&format!(
        "header says the tree is {} bytes but only 100 are available",
        blob.len()
    )));
}

#[test]
fn totalsize_lies() {
    let blob = board().dtb();
    let total = blob.len() as u32;
    let with = |v: u32| {
        let mut b = blob.clone();
        set_hdr(&mut b, 1, v);
        b
    };
    assert!(matches!(err(&with(total + 1)), DtError::TotalSizePastBuffer { .. }));
    assert_eq!(
        err(&with(39)),
        DtError::BadTotalSize {
            totalsize: 39,
            problem: "is smaller than the 40-byte header"
        }
    );
    assert!(matches!(err(&with(0)), DtError::BadTotalSize { .. }));
    let huge = (MAX_TOTAL_SIZE + 4) as u32;
    assert_eq!(
        header_total_size(&with(huge)),
        Err(DtError::BadTotalSize {
            totalsize: huge,
            problem: "exceeds the 2 MiB limit of the arm64 boot protocol"
        })
    );
    assert!(matches!(err(&with(u32::MAX)), DtError::BadTotalSize { .. }));
    // Smaller than the blocks it claims to contain.
    let e = err(&with(total - 4));
    assert_eq!(
        e,
        DtError::BadBlock {
            block: Block::Strings,
            offset: hdr(&blob, 3),
            size: hdr(&blob, 8),
            problem: "extends past the end of the tree (totalsize)"
        }
    );
    let e = err(&with(hdr(&blob, 2) + 8));
    assert!(
        matches!(
            e,
            DtError::BadBlock {
                block: Block::Struct,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn unsupported_versions() {
    let mut blob = board().dtb();
    set_hdr(&mut blob, 5, 16);
    assert_eq!(
        err(&blob),
        DtError::BadVersion {
            version: 16,
            last_compatible: 16
        }
    );
    set_hdr(&mut blob, 5, 18);
    set_hdr(&mut blob, 6, 18);
    assert_eq!(
        err(&blob),
        DtError::BadVersion {
            version: 18,
            last_compatible: 18
        }
    );
    // Newer but backwards compatible with 17 is fine.
    set_hdr(&mut blob, 6, 17);
    parse(&blob);
}

#[test]
fn blocks_out_of_bounds_or_misaligned() {
    let blob = board().dtb();
    let patched = |field: usize, v: u32| {
        let mut b = blob.clone();
        set_hdr(&mut b, field, v);
        err(&b)
    };
    let (st, st_size, str_off, str_size) = (hdr(&blob, 2), hdr(&blob, 9), hdr(&blob, 3), hdr(&blob, 8));
    let bad = |block, offset, size, problem| DtError::BadBlock {
        block,
        offset,
        size,
        problem,
    };
    assert_eq!(
        patched(2, st + 2),
        bad(Block::Struct, st + 2, st_size, "is not 4-byte aligned")
    );
    assert_eq!(
        patched(9, st_size + 4 + str_size),
        bad(
            Block::Struct,
            st,
            st_size + 4 + str_size,
            "extends past the end of the tree (totalsize)"
        )
    );
    let mut b = blob.clone();
    set_hdr(&mut b, 2, st + 2);
    set_hdr(&mut b, 9, st_size - 4);
    assert_eq!(
        err(&b),
        bad(Block::Struct, st + 2, st_size - 4, "is not 4-byte aligned")
    );
    assert_eq!(
        patched(9, st_size - 1),
        bad(Block::Struct, st, st_size - 1, "is not 4-byte aligned")
    );
    assert_eq!(patched(2, 8), bad(Block::Struct, 8, st_size, "overlaps the header"));
    assert_eq!(
        patched(3, 0xffff_fff0),
        bad(
            Block::Strings,
            0xffff_fff0,
            str_size,
            "extends past the end of the tree (totalsize)"
        )
    );
    assert_eq!(
        patched(8, u32::MAX),
        bad(
            Block::Strings,
            str_off,
            u32::MAX,
            "extends past the end of the tree (totalsize)"
        )
    );
    assert_eq!(patched(4, 44), bad(Block::MemReserve, 44, 0, "is not 8-byte aligned"));
    assert_eq!(patched(4, 0), bad(Block::MemReserve, 0, 0, "overlaps the header"));
    let e = patched(4, u32::MAX - 7);
    assert!(
        matches!(
            e,
            DtError::BadBlock {
                block: Block::MemReserve,
                ..
            }
        ),
        "{e}"
    );
    // The strings block is unaligned by nature: an odd offset is fine.
    let mut b = blob.clone();
    b.insert(str_off as usize, 0);
    set_hdr(&mut b, 3, str_off + 1);
    set_hdr(&mut b, 1, hdr(&blob, 1) + 1);
    let (mut shifted, mut plain) = (Machine::parse(&b).unwrap(), Machine::parse(&blob).unwrap());
    assert_eq!(shifted.used_size, plain.used_size + 1);
    (shifted.used_size, plain.used_size) = (0, 0);
    assert_eq!(shifted, plain);
}

#[test]
fn memreserve_without_terminator() {
    let blob = board().dtb_with_rsv(&[(0x1000, 0x1000)]);
    let want = |at: usize| DtError::Truncated {
        offset: at,
        what: "memory reservation block has no (0, 0) terminator before the end of the tree",
    };
    // Strip the terminator: the entries run on through the structure and strings blocks.
    let mut b = blob.clone();
    b[56..72].copy_from_slice(&[1; 16]);
    let e = err(&b);
    assert_eq!(e, want(40 + (blob.len() - 40) / 16 * 16));
    assert!(e.to_string().starts_with("device tree: truncated at offset 0x"), "{e}");
    // Point the block at the last 8-aligned bytes of the tree.
    let mut b = blob.clone();
    let last = (blob.len() - 8) & !7;
    set_hdr(&mut b, 4, last as u32);
    assert_eq!(err(&b), want(last));
    // The block may sit anywhere, e.g. after the strings.
    let mut b = blob.clone();
    let at = (b.len() + 7) & !7;
    b.resize(at + 32, 0);
    b[at..at + 16].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0x10, 0]);
    set_hdr(&mut b, 4, at as u32);
    let total = b.len() as u32;
    set_hdr(&mut b, 1, total);
    let m = parse(&b);
    assert_eq!(m.reserved[0].region, region(0x2000, 0x1000));
}

#[test]
fn header_total_size_reads_only_the_header() {
    let blob = board().dtb();
    assert_eq!(header_total_size(&blob[..40]), Ok(blob.len()));
    let mut h = blob[..40].to_vec();
    set_hdr(&mut h, 1, 0x1_0000);
    assert_eq!(header_total_size(&h), Ok(0x1_0000));
}

// ---------------------------------------------------------------------------
// Structure block

fn structure_err(raw: &Raw) -> (usize, String) {
    let blob = raw.blob();
    let off = hdr(&blob, 2) as usize;
    match err(&blob) {
        DtError::Malformed { offset, what } | DtError::Truncated { offset, what } => (offset - off, what.to_string()),
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn unterminated_node_name() {
    let mut raw = Raw::default();
    raw.word(1);
    raw.structs.extend_from_slice(b"abcdefgh");
    assert_eq!(
        structure_err(&raw),
        (0, "node name is not NUL-terminated within the structure block".into())
    );
}

#[test]
fn non_utf8_names() {
    let mut raw = Raw::default();
    raw.begin("").word(1);
    raw.structs.extend_from_slice(&[0xff, 0xfe, 0, 0]);
    raw.end_node().end_node().end();
    assert_eq!(structure_err(&raw), (8, "node name is not UTF-8".into()));

    let mut raw = Raw::default();
    raw.strings.extend_from_slice(&[0xc3, 0x28, 0]);
    raw.begin("").prop_raw(0, 0, &[]).end_node().end();
    assert_eq!(structure_err(&raw), (8, "property name is not UTF-8".into()));
}

#[test]
fn property_name_outside_or_unterminated() {
    let mut raw = Raw::default();
    raw.begin("").prop("model", &s("x"));
    let off = raw.name_off("model");
    raw.prop_raw(off + 100, 0, &[]).end_node().end();
    assert_eq!(
        structure_err(&raw),
        (24, "property name offset is outside the strings block".into())
    );

    let mut raw = Raw::default();
    raw.strings.extend_from_slice(b"model");
    raw.begin("").prop_raw(0, 0, &[]).end_node().end();
    assert_eq!(
        structure_err(&raw),
        (8, "property name is not NUL-terminated within the strings block".into())
    );

    // Exactly at the end of the strings block.
    let mut raw = Raw::default();
    raw.strings.extend_from_slice(b"a\0");
    raw.begin("").prop_raw(2, 0, &[]).end_node().end();
    assert_eq!(
        structure_err(&raw),
        (8, "property name offset is outside the strings block".into())
    );
}

#[test]
fn property_length_past_the_end() {
    // The block is 32 bytes: the value starts at 20.
    for len in [13u32, 64, 0x7fff_ffff, u32::MAX] {
        let mut raw = Raw::default();
        let off = raw.name_off("reg");
        raw.begin("").prop_raw(off, len, &[0; 4]).end_node().end();
        assert_eq!(
            structure_err(&raw),
            (8, "property value runs past the end of the structure block".into()),
            "len {len}"
        );
    }
    // Header itself cut off.
    let mut raw = Raw::default();
    raw.begin("").word(3).word(0);
    assert_eq!(
        structure_err(&raw),
        (8, "property header runs past the end of the structure block".into())
    );
}

#[test]
fn unbalanced_nesting() {
    let mut raw = Raw::default();
    raw.begin("").begin("a").end_node().end();
    assert_eq!(
        structure_err(&raw),
        (20, "FDT_END inside an unclosed node (unbalanced nesting)".into())
    );

    let mut raw = Raw::default();
    raw.begin("").end_node().end_node().end();
    assert_eq!(
        structure_err(&raw),
        (12, "FDT_END_NODE without a matching FDT_BEGIN_NODE".into())
    );

    let mut raw = Raw::default();
    raw.begin("").end_node();
    assert_eq!(structure_err(&raw), (12, "structure block ends before FDT_END".into()));

    let mut raw = Raw::default();
    raw.begin("").end_node().begin("again").end_node().end();
    assert_eq!(structure_err(&raw), (12, "a second root node".into()));

    let mut raw = Raw::default();
    raw.begin("").begin("kid").end_node().prop("late", &[]).end_node().end();
    assert_eq!(
        structure_err(&raw),
        (20, "property after a child node (properties must come first)".into())
    );

    let mut raw = Raw::default();
    raw.prop("stray", &[]).end();
    assert_eq!(structure_err(&raw), (0, "property outside any node".into()));

    let mut raw = Raw::default();
    raw.begin("").word(5).end_node().end();
    assert_eq!(
        structure_err(&raw),
        (8, "unknown token (not BEGIN_NODE, END_NODE, PROP, NOP or END)".into())
    );
}

#[test]
fn empty_trees() {
    // No structure at all / only FDT_END / only NOPs.
    for raw in [
        Raw::default(),
        {
            let mut r = Raw::default();
            r.end();
            r
        },
        {
            let mut r = Raw::default();
            r.nop().nop().end();
            r
        },
    ] {
        let e = err(&raw.blob());
        assert!(
            matches!(
                e,
                DtError::Truncated { .. }
                    | DtError::Malformed {
                        what: "no root node",
                        ..
                    }
            ),
            "{e}"
        );
    }
    // Just a root: readable, not bootable.
    let mut raw = Raw::default();
    raw.begin("").end_node().end();
    let blob = raw.blob();
    let m = parse(&blob);
    assert_eq!((m.model, m.compatible, m.bootargs), ("", "", ""));
    assert_eq!(
        m.check_bootable().unwrap_err().to_string(),
        "device tree: no memory: no /memory node (enabled, device_type = \"memory\", with reg)"
    );
    assert!(m.to_string().contains("bootable    NO"));
}

#[test]
fn too_deep() {
    let mut raw = Raw::default();
    for _ in 0..33 {
        raw.begin("d");
    }
    for _ in 0..33 {
        raw.end_node();
    }
    raw.end();
    let blob = raw.blob();
    assert_eq!(
        err(&blob),
        DtError::TooDeep {
            offset: hdr(&blob, 2) as usize + 32 * 8,
            max: 32
        }
    );
    // 32 levels is fine.
    let mut raw = Raw::default();
    for _ in 0..32 {
        raw.begin("d");
    }
    for _ in 0..32 {
        raw.end_node();
    }
    raw.end();
    parse(&raw.blob());
}

#[test]
fn nops_anywhere_are_fine() {
    let mut raw = Raw::default();
    raw.nop()
        .begin("")
        .nop()
        .prop("model", &s("M"))
        .nop()
        .nop()
        .prop("compatible", &s("C"))
        .nop();
    raw.begin("kid").nop().end_node().nop().nop().end_node().nop().end();
    let blob = raw.blob();
    let m = parse(&blob);
    assert_eq!((m.model, m.compatible), ("M", "C"));
}

// ---------------------------------------------------------------------------
// Semantics: what is missing or unusable, and the messages that say so

#[test]
fn missing_memory() {
    let mut t = board();
    t.rm("/memory@40000000");
    let (issues, v) = verdict(&t);
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(
        v,
        Err("device tree: no memory: no /memory node (enabled, device_type = \"memory\", with reg)".into())
    );
    // Present but disabled, or device_type wrong: same.
    let mut t = board();
    t.set("/memory@40000000", "status", s("disabled"));
    assert_eq!(verdict(&t).1, v);
    // reg of the wrong length.
    let mut t = board();
    t.set("/memory@40000000", "reg", c(&[0, 0x4000_0000, 0x1000]));
    assert_eq!(verdict(&t).1, Err("device tree: no usable memory: /memory@40000000: reg is 12 bytes, not a multiple of (#address-cells 2 + #size-cells 2) cells".into()));
}

#[test]
fn missing_cpus() {
    let mut t = board();
    t.rm("/cpus");
    let (issues, v) = verdict(&t);
    assert_eq!(issues, vec!["Cpus /cpus: node is missing".to_string()]);
    assert_eq!(v, Err("device tree: no usable CPU: /cpus: node is missing".into()));
    // /cpus without any enabled cpu.
    let mut t = board();
    t.set("/cpus/cpu@0", "status", s("disabled"))
        .set("/cpus/cpu@1", "status", s("fail"));
    assert_eq!(
        verdict(&t).1,
        Err("device tree: no CPU: no enabled cpu node under /cpus".into())
    );
}

#[test]
fn missing_gic_timer_console() {
    let mut t = board();
    t.rm("/intc@8000000");
    let m_text = verdict(&t);
    assert_eq!(m_text.1, Err("device tree: no interrupt controller (GIC): no enabled node compatible with arm,gic-v3, arm,gic-400, arm,cortex-a15-gic, arm,cortex-a9-gic or arm,gic-v2".into()));

    let mut t = board();
    t.rm("/timer");
    assert_eq!(
        verdict(&t).1,
        Err("device tree: no timer: no enabled \"arm,armv8-timer\" or \"arm,armv7-timer\" node".into())
    );

    let mut t = board();
    t.rm("/soc/serial@1000");
    assert_eq!(verdict(&t).1, Err("device tree: no console: no enabled \"arm,pl011\" UART (looked at /chosen stdout-path, alias serial0, then every node)".into()));

    // A timer whose interrupts do not go to the GIC cannot be used.
    let mut t = board();
    t.set("/timer", "interrupts", c(&[1, 13, 4]));
    let (issues, v) = verdict(&t);
    assert_eq!(issues, vec!["Timer /timer: 1 interrupts listed, 3 needed".to_string()]);
    assert_eq!(
        v,
        Err("device tree: no usable timer: /timer: 1 interrupts listed, 3 needed".into())
    );
}

#[test]
fn odd_address_cells() {
    // 3 (PCI-style) on the root: nothing at the root can be decoded.
    let mut t = board();
    t.set("/", "#address-cells", c(&[3]));
    let (issues, v) = verdict(&t);
    assert!(
        issues[0].starts_with("Memory /memory@40000000: #address-cells 3 in / is not supported"),
        "{issues:?}"
    );
    assert!(v
        .unwrap_err()
        .starts_with("device tree: no usable memory: /memory@40000000: #address-cells 3 in / is not supported"));

    // 0 on the bus.
    let mut t = board();
    t.set("/soc", "#address-cells", c(&[0]));
    let (issues, _) = verdict(&t);
    assert_eq!(issues, vec!["Console /soc/serial@1000: #address-cells 0 in /soc is not supported (addresses need 1 or 2 cells, sizes 0 to 2)".to_string()]);

    // Missing on the bus: the default 2 + 1 does not fit an 8-byte reg.
    let mut t = board();
    t.del("/soc", "#address-cells").del("/soc", "#size-cells");
    let (issues, v) = verdict(&t);
    assert_eq!(
        issues,
        vec![
            "Console /soc/serial@1000: reg is 8 bytes, not a multiple of (#address-cells 2 + #size-cells 1) cells"
                .to_string()
        ]
    );
    assert_eq!(v, Err("device tree: no usable console: /soc/serial@1000: reg is 8 bytes, not a multiple of (#address-cells 2 + #size-cells 1) cells".into()));

    // Not a single cell.
    let mut t = board();
    t.set("/soc", "#size-cells", c(&[1, 1]));
    assert_eq!(
        verdict(&t).0,
        vec!["Console /soc/serial@1000: #size-cells in /soc is not a single 32-bit cell".to_string()]
    );

    // #size-cells 3 on /cpus.
    let mut t = board();
    t.set("/cpus", "#size-cells", c(&[3]));
    assert_eq!(verdict(&t).1, Err("device tree: no usable CPU: /cpus/cpu@0: #size-cells 3 in /cpus is not supported (addresses need 1 or 2 cells, sizes 0 to 2)".into()));
}

#[test]
fn reg_lengths() {
    let mut t = board();
    t.set("/intc@8000000", "reg", c(&[0, 0x800_0000, 0, 0x1000, 0]));
    let (issues, v) = verdict(&t);
    assert_eq!(
        issues[0],
        "Gic /intc@8000000: reg is 20 bytes, not a multiple of (#address-cells 2 + #size-cells 2) cells"
    );
    // With no usable GIC, interrupts cannot be mapped either.
    assert_eq!(
        issues[1],
        "Console /soc/serial@1000: interrupt parent is not a usable GIC; cannot map interrupts to INTIDs"
    );
    assert!(v
        .unwrap_err()
        .starts_with("device tree: no usable interrupt controller (GIC): /intc@8000000: reg is 20 bytes"));
    // GICv2 with only a distributor.
    let mut t = board();
    t.set("/intc@8000000", "reg", c(&[0, 0x800_0000, 0, 0x1000]));
    assert_eq!(verdict(&t).0[0], "Gic /intc@8000000: reg has 1 entries, 2 needed");
    // Empty reg, missing reg.
    let mut t = board();
    t.set("/soc/serial@1000", "reg", vec![]);
    assert_eq!(
        verdict(&t).0,
        vec!["Console /soc/serial@1000: reg has 0 entries, 1 needed".to_string()]
    );
    t.del("/soc/serial@1000", "reg");
    assert_eq!(
        verdict(&t).0,
        vec!["Console /soc/serial@1000: no \"reg\" property".to_string()]
    );
    // CPU reg shorter than #address-cells.
    let mut t = board();
    t.set("/cpus", "#address-cells", c(&[2]))
        .set("/cpus/cpu@1", "reg", c(&[1]));
    let m_issues = verdict(&t).0;
    assert!(
        m_issues.iter().any(|i| i.contains("/cpus/cpu@1: reg is 4 bytes")),
        "{m_issues:?}"
    );
}

#[test]
fn spin_table_without_release_addr() {
    let mut t = board();
    t.del("/cpus/cpu@1", "cpu-release-addr");
    let blob = t.dtb();
    let m = parse(&blob);
    // The CPU stays listed (it exists) but cannot be started.
    assert_eq!(m.cpus.len(), 2);
    assert_eq!(m.cpus[1].enable, EnableMethod::Other("spin-table"));
    assert_eq!(m.issues.len(), 1);
    assert_eq!(
        DtError::from(m.issues[0].clone()).to_string(),
        "device tree: /cpus/cpu@1: enable-method \"spin-table\" without cpu-release-addr"
    );
    assert_eq!(m.check_bootable(), Ok(()));
    // A 3-byte release address.
    t.set("/cpus/cpu@1", "cpu-release-addr", vec![1, 2, 3]);
    assert_eq!(
        verdict(&t).0,
        vec!["Cpus /cpus/cpu@1: \"cpu-release-addr\" is not 4 or 8 bytes".to_string()]
    );
}

#[test]
fn enable_method_inherited_from_cpus() {
    let mut t = board();
    t.del("/cpus/cpu@0", "enable-method")
        .del("/cpus/cpu@1", "enable-method")
        .set("/cpus", "enable-method", s("psci"));
    let blob = t.dtb();
    let m = parse(&blob);
    assert!(m.cpus.iter().all(|c| c.enable == EnableMethod::Psci));
    t.set("/cpus", "enable-method", s("brcm,bcm2836-smp"));
    let blob = t.dtb();
    assert_eq!(parse(&blob).cpus[0].enable, EnableMethod::Other("brcm,bcm2836-smp"));
}

#[test]
fn too_many_cpus_and_regions() {
    let mut t = board();
    for i in 2..20 {
        t.add(
            "/cpus",
            n(&format!("cpu@{i}"))
                .p("device_type", s("cpu"))
                .p("reg", c(&[i]))
                .p("enable-method", s("psci")),
        );
    }
    let mut reg = Vec::new();
    for i in 0..20u32 {
        reg.extend(c(&[0, 0x4000_0000 + i * 0x10_0000, 0, 0x1000]));
    }
    t.set("/memory@40000000", "reg", reg);
    let blob = t.dtb();
    let m = parse(&blob);
    assert_eq!(m.cpus.len(), 16);
    assert_eq!(m.memory.len(), 16);
    let text: Vec<String> = m.issues.iter().map(|i| i.to_string()).collect();
    assert!(
        text.contains(&"/cpus: more than 16 CPUs; the rest are ignored".to_string()),
        "{text:?}"
    );
    assert!(
        text.contains(&"/: more than 16 memory regions; the rest are ignored".to_string()),
        "{text:?}"
    );
    assert_eq!(m.check_bootable(), Ok(()));
}

#[test]
fn ranges_translation() {
    // No ranges on the bus: its addresses are not CPU addresses.
    let mut t = board();
    t.del("/soc", "ranges");
    let (issues, v) = verdict(&t);
    assert_eq!(
        issues,
        vec!["Console /soc/serial@1000: not translatable to a CPU address: bus /soc has no \"ranges\"".to_string()]
    );
    assert!(v.unwrap_err().ends_with("bus /soc has no \"ranges\""));
    // Empty ranges: identity.
    let mut t = board();
    t.set("/soc", "ranges", vec![]);
    let blob = t.dtb();
    assert_eq!(parse(&blob).console.unwrap().regs, region(0x1000, 0x1000));
    // Outside every window.
    let mut t = board();
    t.set("/soc/serial@1000", "reg", c(&[0x200_0000, 0x1000]));
    assert_eq!(
        verdict(&t).0,
        vec!["Console /soc/serial@1000: address 0x2000000 is outside every \"ranges\" window of bus /soc".to_string()]
    );
    // Malformed ranges.
    let mut t = board();
    t.set("/soc", "ranges", c(&[0, 0, 0x1000_0000]));
    assert_eq!(
        verdict(&t).0,
        vec![
            "Console /soc/serial@1000: \"ranges\" of bus /soc is not a whole number of (child, parent, size) entries"
                .to_string()
        ]
    );
    // Two nested buses, several windows, 64-bit parent addresses.
    let mut t = board();
    t.set(
        "/soc",
        "ranges",
        c(&[0x0, 0, 0x1000_0000, 0x10_0000, 0x100_0000, 0x8, 0x0, 0x100_0000]),
    );
    let inner = n("bus@1000000")
        .p("#address-cells", c(&[1]))
        .p("#size-cells", c(&[1]))
        .p("ranges", c(&[0x0, 0x100_0000, 0x1_0000]))
        .kid(
            n("uart@2000")
                .p("compatible", s("arm,pl011"))
                .p("reg", c(&[0x2000, 0x100])),
        );
    t.rm("/soc/serial@1000")
        .add("/soc", inner)
        .set("/aliases", "serial0", s("/soc/bus@1000000/uart@2000"));
    let blob = t.dtb();
    let m = parse(&blob);
    assert_eq!(m.console.unwrap().regs, region(0x8_0000_2000, 0x100));
    assert_eq!(m.console.unwrap().path, "/soc/bus@1000000/uart@2000");
    // Translation that overflows 64 bits.
    let mut t = board();
    t.set("/soc", "ranges", c(&[0, 0xffff_ffff, 0xffff_ffff, 0x100_0000]));
    assert_eq!(
        verdict(&t).0,
        vec!["Console /soc/serial@1000: translated address overflows 64 bits".to_string()]
    );
}

#[test]
fn console_choice() {
    // stdout-path names a disabled PL011: fall back to serial0.
    let mut t = board();
    t.add(
        "/soc",
        n("serial@2000")
            .p("compatible", s("arm,pl011"))
            .p("reg", c(&[0x2000, 0x1000]))
            .p("status", s("disabled")),
    );
    t.set("/chosen", "stdout-path", s("/soc/serial@2000:9600"));
    let blob = t.dtb();
    let con = parse(&blob).console.unwrap();
    assert_eq!((con.path, con.baud), ("/soc/serial@1000", None));
    // Enabled: it wins, with its baud.
    t.set("/soc/serial@2000", "status", s("okay"));
    let blob = t.dtb();
    let con = parse(&blob).console.unwrap();
    assert_eq!(
        (con.path, con.regs.base, con.baud),
        ("/soc/serial@2000", 0x1000_2000, Some(9600))
    );
    // Not a PL011 and no serial0: the first enabled PL011.
    let mut t = board();
    t.add(
        "/soc",
        n("serial@3000")
            .p("compatible", s("brcm,bcm2835-aux-uart"))
            .p("reg", c(&[0x3000, 0x40])),
    );
    t.set("/chosen", "stdout-path", s("serial1:115200n8"))
        .set("/aliases", "serial1", s("/soc/serial@3000"));
    t.del("/aliases", "serial0");
    let blob = t.dtb();
    let con = parse(&blob).console.unwrap();
    assert_eq!((con.path, con.baud), ("serial@1000", None));
    // Legacy linux,stdout-path; stdout-path without options; unit-address-less path.
    let mut t = board();
    t.del("/chosen", "stdout-path")
        .set("/chosen", "linux,stdout-path", s("/soc/serial"));
    let blob = t.dtb();
    assert_eq!(parse(&blob).console.unwrap().path, "/soc/serial");
    // Dangling alias and path: fall through quietly.
    let mut t = board();
    t.set("/chosen", "stdout-path", s("nosuch:115200"))
        .set("/aliases", "serial0", s("/nowhere"));
    let blob = t.dtb();
    assert_eq!(parse(&blob).console.unwrap().path, "serial@1000");
    // Interrupt that cannot be mapped: console kept, irq None, issue noted.
    let mut t = board();
    t.set("/soc/serial@1000", "interrupts", c(&[7, 5, 4]));
    let blob = t.dtb();
    let m = parse(&blob);
    assert_eq!(m.console.unwrap().irq, None);
    assert_eq!(
        m.issues[0].to_string(),
        "/soc/serial@1000: GIC interrupt specifier <7 5 ...> names no interrupt"
    );
}

#[test]
fn interrupts_extended_and_parents() {
    // interrupts-extended on the timer; interrupt-parent reached through a
    // node without #interrupt-cells (Linux follows it on).
    let mut t = board();
    t.del("/timer", "interrupts").set(
        "/timer",
        "interrupts-extended",
        c(&[1, 1, 13, 4, 1, 1, 14, 4, 1, 1, 11, 4]),
    );
    t.del("/", "interrupt-parent").set("/soc", "interrupt-parent", c(&[9]));
    t.add("/", n("redirect").p("phandle", c(&[9])).p("interrupt-parent", c(&[1])));
    let blob = t.dtb();
    let m = parse(&blob);
    let timer = m.timer.unwrap();
    assert_eq!((timer.phys_irq, timer.virt_irq, timer.hyp_irq), (30, 27, None));
    assert_eq!(m.console.unwrap().irq, Some(37));
    assert!(m.issues.is_empty(), "{:?}", m.issues);
    // A phandle cycle ends (no interrupt parent) instead of looping.
    let mut t = board();
    t.set("/soc", "interrupt-parent", c(&[9]));
    t.add("/", n("a").p("phandle", c(&[9])).p("interrupt-parent", c(&[10])));
    t.add("/", n("b").p("phandle", c(&[10])).p("interrupt-parent", c(&[9])));
    assert_eq!(
        verdict(&t).0,
        vec!["Console /soc/serial@1000: no interrupt parent".to_string()]
    );
    // Dangling phandle; truncated interrupts-extended.
    let mut t = board();
    t.set("/soc", "interrupt-parent", c(&[0x77]));
    assert_eq!(
        verdict(&t).0,
        vec!["Console /soc/serial@1000: \"interrupt-parent\" refers to phandle 0x77, which no node has".to_string()]
    );
    let mut t = board();
    t.del("/timer", "interrupts")
        .set("/timer", "interrupts-extended", c(&[1, 1, 13, 4, 1, 1, 14]));
    assert_eq!(
        verdict(&t).0,
        vec!["Timer /timer: \"interrupts-extended\" is truncated".to_string()]
    );
    // PPI number out of range.
    let mut t = board();
    t.set("/timer", "interrupts", c(&[1, 13, 4, 1, 16, 4, 1, 11, 4]));
    assert_eq!(
        verdict(&t).0,
        vec!["Timer /timer: GIC interrupt specifier <1 16 ...> names no interrupt".to_string()]
    );
}

#[test]
fn gic_v3_regions_and_stride() {
    let mut t = board();
    t.set("/intc@8000000", "compatible", s("arm,gic-v3"))
        .set("/intc@8000000", "#redistributor-regions", c(&[2]))
        .set("/intc@8000000", "redistributor-stride", c(&[0, 0x4_0000]))
        .set(
            "/intc@8000000",
            "reg",
            c(&[
                0, 0x800_0000, 0, 0x1_0000, 0, 0x80a_0000, 0, 0x10_0000, 0, 0x900_0000, 0, 0x10_0000,
            ]),
        );
    let blob = t.dtb();
    let g = parse(&blob).gic.unwrap();
    assert_eq!(g.version, GicVersion::V3);
    assert_eq!(
        &g.redistributors[..],
        &[region(0x80a_0000, 0x10_0000), region(0x900_0000, 0x10_0000)]
    );
    assert_eq!(g.redistributor_stride, Some(0x4_0000));
    t.set("/intc@8000000", "#redistributor-regions", c(&[3]));
    assert_eq!(verdict(&t).0[0], "Gic /intc@8000000: reg has 3 entries, 4 needed");
    t.set("/intc@8000000", "#redistributor-regions", c(&[0]));
    assert_eq!(
        verdict(&t).0[0],
        "Gic /intc@8000000: \"#redistributor-regions\" is not a single cell between 1 and 8"
    );
}

#[test]
fn psci_versions_and_problems() {
    let mut t = board();
    t.set("/psci", "compatible", s("arm,psci"))
        .set("/psci", "method", s("hvc"));
    t.set("/psci", "cpu_on", c(&[0x9500_0003]))
        .set("/psci", "cpu_off", c(&[0x9500_0002]));
    let blob = t.dtb();
    let p = parse(&blob).psci.unwrap();
    assert_eq!(
        (p.version(), p.conduit, p.cpu_on, p.cpu_off, p.system_off),
        ("0.1", PsciConduit::Hvc, 0x9500_0003, 0x9500_0002, None)
    );
    t.del("/psci", "cpu_on");
    assert_eq!(verdict(&t).0, vec!["Psci /psci: no \"cpu_on\" property".to_string()]);
    let mut t = board();
    t.set("/psci", "method", s("svc"));
    assert_eq!(
        verdict(&t).0,
        vec!["Psci /psci: \"method\" is neither \"hvc\" nor \"smc\"".to_string()]
    );
    // Most specific compatible wins, whatever the order.
    let mut t = board();
    t.set("/psci", "compatible", [s("arm,psci"), s("arm,psci-1.0")].concat());
    let blob = t.dtb();
    assert_eq!(parse(&blob).psci.unwrap().version(), "1.0");
}

#[test]
fn chosen_and_reserved_memory() {
    let mut t = board();
    t.set("/chosen", "linux,initrd-end", c(&[0x4000_0000]));
    assert_eq!(
        verdict(&t).0,
        vec!["Chosen /chosen: linux,initrd-end 0x40000000 is below linux,initrd-start 0x48000000".to_string()]
    );
    t.set("/chosen", "linux,initrd-end", c(&[1, 2, 3]));
    assert_eq!(
        verdict(&t).0,
        vec!["Chosen /chosen: \"linux,initrd-end\" is not 4 or 8 bytes".to_string()]
    );
    t.del("/chosen", "linux,initrd-end");
    assert_eq!(
        verdict(&t).0,
        vec!["Chosen /chosen: no \"linux,initrd-end\" property".to_string()]
    );
    t.set("/chosen", "bootargs", vec![b'a', 0xff, 0]);
    assert!(verdict(&t)
        .0
        .contains(&"Chosen /chosen: \"bootargs\" is not a UTF-8 string".to_string()));

    let mut t = board();
    let rm = n("reserved-memory")
        .p("#address-cells", c(&[2]))
        .p("#size-cells", c(&[2]))
        .p("ranges", vec![])
        .kid(
            n("fw@4f000000")
                .p("reg", c(&[0, 0x4f00_0000, 0, 0x10_0000]))
                .p("no-map", vec![]),
        )
        .kid(
            n("linux,cma")
                .p("compatible", s("shared-dma-pool"))
                .p("size", c(&[0, 0x400_0000]))
                .p("reusable", vec![]),
        )
        .kid(n("off@0").p("reg", c(&[0, 0, 0, 0x1000])).p("status", s("disabled")))
        .kid(n("bad@0").p("reg", c(&[0, 0])));
    t.add("/", rm);
    let blob = t.dtb_with_rsv(&[(0x4000_0000, 0x1_0000)]);
    let m = parse(&blob);
    assert_eq!(m.reserved.len(), 2);
    assert_eq!(
        (
            m.reserved[1].region,
            m.reserved[1].name,
            m.reserved[1].no_map,
            m.reserved[1].kind
        ),
        (
            region(0x4f00_0000, 0x10_0000),
            "fw@4f000000",
            true,
            ReservedKind::ReservedMemory
        )
    );
    assert_eq!(
        m.issues[0].to_string(),
        "/reserved-memory/bad@0: reg is 8 bytes, not a multiple of (#address-cells 2 + #size-cells 2) cells"
    );
    assert!(m.to_string().contains("reserved-memory fw@4f000000, no-map"));
}

#[test]
fn long_paths_are_cut_not_overflowed() {
    let mut t = board();
    let long = "a-very-long-node-name-that-goes-on@1234567890abcdef";
    let deep = n(long)
        .p("#address-cells", c(&[1]))
        .p("#size-cells", c(&[1]))
        .kid(n(long).kid(n("serial@0").p("compatible", s("arm,pl011")).p("reg", c(&[0, 0x100]))));
    t.rm("/soc/serial@1000").add("/", deep);
    let (issues, _) = verdict(&t);
    assert!(issues[0].contains("..."), "{issues:?}");
    assert!(NodePath::new(&"x".repeat(500)).as_str().len() <= hal::dt::PATH_CAP);
    assert_eq!(NodePath::new("/é/ü").as_str(), "/é/ü");
}

#[test]
fn problems_are_capped() {
    // Many broken memory nodes: issues stop at the capacity, parsing goes on.
    let mut t = board();
    for i in 0..20 {
        t.add(
            "/",
            n(&format!("memory@{i}"))
                .p("device_type", s("memory"))
                .p("reg", c(&[1, 2, 3])),
        );
    }
    let blob = t.dtb();
    let m = parse(&blob);
    assert_eq!(m.issues.len(), hal::dt::MAX_ISSUES);
    assert!(m
        .issues
        .iter()
        .all(|i| i.part == Part::Memory && matches!(i.problem, NodeProblem::RegLength { .. })));
    assert_eq!(m.check_bootable(), Ok(()));
}

#[test]
fn node_path_ancestors() {
    let p = NodePath::new("/soc/bus@1000000/uart@2000");
    let got: Vec<&str> = (0..5).map(|d| p.ancestor(d)).collect();
    assert_eq!(
        got,
        [
            "/",
            "/soc",
            "/soc/bus@1000000",
            "/soc/bus@1000000/uart@2000",
            "/soc/bus@1000000/uart@2000"
        ]
    );
    assert_eq!(NodePath::default().ancestor(3), "/");
}
