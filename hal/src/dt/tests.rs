//! The node index must never change an answer: every tree (real ones, and
//! thousands of corrupted ones) reads the same with the index as by walking
//! the structure block, and a tree too big for the index still reads right.

use super::devices::{GIC, GIC_V2, GIC_V3, PL011, PSCI, TIMERS};
use super::index::{Index, CAP};
use super::tree::{Blocks, Node, Tree};
use super::{validate, DtError, Machine};

const TREES: [(&str, &[u8]); 4] = [
    (
        "qemu-virt-gicv2",
        include_bytes!("../../tests/data/qemu-virt-gicv2.dtb"),
    ),
    (
        "qemu-virt-gicv3-smp4",
        include_bytes!("../../tests/data/qemu-virt-gicv3-smp4.dtb"),
    ),
    ("qemu-virt-el2", include_bytes!("../../tests/data/qemu-virt-el2.dtb")),
    (
        "qemu-virt-el2-gicv3",
        include_bytes!("../../tests/data/qemu-virt-el2-gicv3.dtb"),
    ),
];

/// The real trees, with the Raspberry Pi 4 one when it is available.
fn trees() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = TREES
        .iter()
        .map(|(name, blob)| (name.to_string(), blob.to_vec()))
        .collect();
    let pi = std::env::var_os("KESTREL_RPI4_DTB").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/cache/bcm2711-rpi-4-b.dtb"),
        std::path::PathBuf::from,
    );
    match std::fs::read(&pi) {
        Ok(blob) => out.push(("bcm2711-rpi-4-b".into(), blob)),
        Err(e) => println!("Raspberry Pi 4 tree not checked ({}: {e})", pi.display()),
    }
    out
}

/// Parse with the index; also says whether the index was usable.
fn indexed(blob: &[u8]) -> (Result<Machine<'_>, DtError>, bool) {
    let mut index = Index::new();
    let m = Machine::parse_with(blob, &mut index);
    (m, index.entries().is_some())
}

/// Parse without the index: every lookup walks the tree.
fn walked(blob: &[u8]) -> Result<Machine<'_>, DtError> {
    Machine::parse_with(blob, &mut Index::disabled())
}

fn be(b: &[u8], field: usize) -> usize {
    u32::from_be_bytes(b[field * 4..field * 4 + 4].try_into().unwrap()) as usize
}

fn put(b: &mut [u8], at: usize, w: u32) {
    if let Some(word) = b.get_mut(at..at + 4) {
        word.copy_from_slice(&w.to_be_bytes());
    }
}

/// Tokens of a tree, (offset, tag, end offset), as far as they can be read.
fn tokens(b: &[u8]) -> Vec<(usize, u32, usize)> {
    let (mut at, end) = (be(b, 2), (be(b, 2) + be(b, 9)).min(b.len()));
    let mut out = Vec::new();
    let w = |at: usize| Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?));
    while at < end {
        let Some(tag) = w(at) else { break };
        let next = match tag {
            1 => b[at + 4..]
                .iter()
                .position(|&x| x == 0)
                .map(|n| (at + 4 + n + 1 + 3) & !3),
            3 => w(at + 4).map(|len| (at + 12 + len as usize + 3) & !3),
            _ => Some(at + 4),
        };
        let Some(next) = next.filter(|&n| n <= end) else { break };
        out.push((at, tag, next));
        if tag == 9 {
            break;
        }
        at = next;
    }
    out
}

/// Insert structure-block bytes at `at` (the strings block follows the structure block).
fn insert_struct(b: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    assert!(be(b, 3) >= be(b, 2) + be(b, 9));
    let n = bytes.len();
    b.splice(at..at, bytes.iter().copied());
    let (size, strings, total) = (be(b, 9), be(b, 3), be(b, 1));
    put(b, 9 * 4, (size + n) as u32);
    put(b, 3 * 4, (strings + n) as u32);
    put(b, 4, (total + n) as u32);
}

/// Names of the properties the index records.
const KNOWN: [&str; 5] = ["compatible", "status", "phandle", "linux,phandle", "device_type"];

/// `orig` with the [`KNOWN`] names appended to its strings block (which
/// must end the tree), and their offsets there.
fn with_known_names(orig: &[u8]) -> (Vec<u8>, [u32; 5]) {
    let mut b = orig.to_vec();
    let (off, size, total) = (be(&b, 3), be(&b, 8), be(&b, 1));
    assert_eq!(off + size, total, "strings block is not last");
    b.truncate(total);
    let mut at = [0; 5];
    for (i, name) in KNOWN.iter().enumerate() {
        at[i] = (b.len() - off) as u32;
        b.extend_from_slice(name.as_bytes());
        b.push(0);
    }
    let total = b.len();
    put(&mut b, 8 * 4, (total - off) as u32);
    put(&mut b, 4, total as u32);
    (b, at)
}

/// A property with one of the [`KNOWN`] names and a value that matters to it.
fn known_prop(known: &[u32; 5], phandles: &[u32], rng: &mut Rng) -> Vec<u8> {
    let which = rng.below(KNOWN.len());
    let value: Vec<u8> = match KNOWN[which] {
        "compatible" => [
            &b"arm,pl011\0"[..],
            b"arm,gic-400\0",
            b"arm,gic-v3\0arm,gic-400\0",
            b"vendor,x\0arm,cortex-a15-gic\0arm,gic-v2\0",
            b"arm,armv7-timer\0arm,armv8-timer\0",
            b"arm,psci\0arm,psci-1.0\0",
            b"arm,psci-0.2\0",
            b"\0",
        ][rng.below(8)]
        .to_vec(),
        "status" => [&b"okay\0"[..], b"ok\0", b"disabled\0", b"okay", b"", b"fail\0"][rng.below(6)].to_vec(),
        "device_type" => [&b"memory\0"[..], b"memory", b"cpu\0", b"memoryx\0"][rng.below(4)].to_vec(),
        _ => match rng.below(4) {
            0 => vec![0, 0, 1],
            1 => (rng.below(8) as u32).to_be_bytes().to_vec(),
            _ => phandles
                .get(rng.below(phandles.len()))
                .map_or(1, |&p| p)
                .to_be_bytes()
                .to_vec(),
        },
    };
    let mut prop = Vec::new();
    prop.extend_from_slice(&3u32.to_be_bytes());
    prop.extend_from_slice(&(value.len() as u32).to_be_bytes());
    prop.extend_from_slice(&known[which].to_be_bytes());
    prop.extend_from_slice(&value);
    prop.resize((prop.len() + 3) & !3, 0);
    prop
}

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Corruptions aimed at what the index records: names of the properties it
/// reads (renamed to and from `compatible`, `status`, `phandle`, ..., also
/// mid-string), their values, duplicated nodes and properties, NOPs, node
/// names, and now and then a broken token.
fn mutate(orig: &[u8], known: &[u32; 5], rng: &mut Rng) -> Vec<u8> {
    let mut b = orig.to_vec();
    let phandles: Vec<u32> = tokens(orig)
        .iter()
        .filter(|t| t.1 == 3 && be(&orig[t.0..], 1) == 4)
        .map(|t| be(&orig[t.0..], 3) as u32)
        .collect();
    for _ in 0..1 + rng.below(4) {
        let toks = tokens(&b);
        let props: Vec<_> = toks.iter().filter(|t| t.1 == 3).copied().collect();
        let nodes: Vec<_> = toks.iter().filter(|t| t.1 == 1).copied().collect();
        let (strings, strings_len) = (be(&b, 3), be(&b, 8));
        let (Some(&(p, _, p_end)), false) = (props.get(rng.below(props.len())), nodes.is_empty()) else {
            break;
        };
        let len = be(&b[p..], 1);
        match rng.below(13) {
            // A `compatible`, `status`, `phandle`, ... before some property, or first in a node.
            10..=12 => {
                let at = if rng.below(2) == 0 {
                    p
                } else {
                    nodes[rng.below(nodes.len())].2
                };
                // Sometimes two or three: the same name twice tests "the first one counts".
                let props: Vec<u8> = (0..1 + rng.below(3))
                    .flat_map(|_| known_prop(known, &phandles, rng))
                    .collect();
                insert_struct(&mut b, at, &props);
            }
            // Rename to the start of some string, or anywhere in the strings block.
            0 | 1 => {
                let at = rng.below(strings_len);
                let start = if rng.below(2) == 0 {
                    b[strings..strings + at]
                        .iter()
                        .rposition(|&x| x == 0)
                        .map_or(0, |z| z + 1)
                } else {
                    at
                };
                put(&mut b, p + 8, start as u32);
            }
            // A value word: phandles, lengths, cells.
            2 if len >= 4 => {
                let at = p + 12 + rng.below(len / 4) * 4;
                let w = [0, 1, 2, 3, u32::MAX, rng.next() as u32][rng.below(6)];
                put(&mut b, at, w);
            }
            // A value byte (strings lose or gain terminators, "okay" becomes "okax").
            3 if len > 0 => {
                let at = p + 12 + rng.below(len);
                b[at] = [0, b'@', b'/', 0xff, b'x', rng.next() as u8][rng.below(6)];
            }
            // Duplicate a property (a second `compatible`, `phandle`, ...).
            4 => {
                let copy = b[p..p_end].to_vec();
                insert_struct(&mut b, p, &copy);
            }
            // Duplicate a whole node next to itself (same name, same phandle).
            5 => {
                let i = rng.below(nodes.len());
                let start = nodes[i].0;
                let mut depth = 0;
                let end = toks
                    .iter()
                    .skip_while(|t| t.0 < start)
                    .find(|t| {
                        match t.1 {
                            1 => depth += 1,
                            2 => depth -= 1,
                            _ => {}
                        }
                        depth == 0
                    })
                    .map(|t| t.2);
                if let Some(end) = end.filter(|_| i > 0) {
                    let copy = b[start..end].to_vec();
                    insert_struct(&mut b, start, &copy);
                }
            }
            // NOPs between tokens, or over a whole property.
            6 => {
                let at = toks[rng.below(toks.len())].0;
                insert_struct(&mut b, at, &4u32.to_be_bytes().repeat(1 + rng.below(3)));
            }
            7 => {
                for w in (p..p_end).step_by(4) {
                    put(&mut b, w, 4);
                }
            }
            // A node name byte (unit addresses, base names, non-ASCII).
            8 => {
                let (n, _, n_end) = nodes[rng.below(nodes.len())];
                if n_end > n + 5 {
                    let at = n + 4 + rng.below(n_end - n - 5);
                    if b[at] != 0 {
                        b[at] = [b'@', b'a', b'-', 0xc3, 0xff][rng.below(5)];
                    }
                }
            }
            // A broken token (last: the tree can no longer be walked to mutate it further).
            _ => {
                let at = toks[rng.below(toks.len())].0;
                put(&mut b, at, [1, 2, 3, 4, 9, 7][rng.below(6)]);
                break;
            }
        }
    }
    b
}

/// Every lookup answers the same with the index as by walking, node by node
/// (so a wrong recorded fact shows even on a node no reader looks at). The
/// lookups that walk the whole tree are done for every `deep`th node only.
fn same_answers(blob: &[u8], deep: usize) {
    let mut index = Index::new();
    let Ok(layout) = validate::validate(blob, &mut index, false) else {
        return;
    };
    let block = |(off, size): (usize, usize)| &blob[off..off + size];
    let blocks = Blocks::new(block(layout.structs), block(layout.strings));
    let no_index = Index::disabled();
    let (fast, slow) = (Tree::new(blocks, &index), Tree::new(blocks, &no_index));
    let (a, b): (Vec<Node>, Vec<Node>) = (fast.all().collect(), slow.all().collect());
    assert_eq!(a.len(), b.len());
    let offs = |nodes: &mut dyn Iterator<Item = Node>| nodes.map(|n| n.off()).collect::<Vec<_>>();
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x.off(), y.off());
        assert_eq!(x.name(), y.name());
        assert_eq!(x.is_enabled(), y.is_enabled(), "status of {}", x.name());
        assert_eq!(x.is_memory(), y.is_memory(), "device_type of {}", x.name());
        assert_eq!(x.phandle(), y.phandle(), "phandle of {}", x.name());
        for group in [GIC_V3, GIC_V2, GIC, TIMERS, PSCI, PL011] {
            assert_eq!(x.compatible_with(group), y.compatible_with(group));
            assert_eq!(x.first_listed(group), y.first_listed(group));
        }
        if i % deep != blob.len() % deep {
            continue;
        }
        let (px, py) = (fast.parent(x), slow.parent(y));
        assert_eq!(px.map(|n| n.off()), py.map(|n| n.off()));
        let (lx, ly) = (fast.lineage(x).unwrap(), slow.lineage(y).unwrap());
        assert_eq!(lx.path(), ly.path());
        assert_eq!(
            offs(&mut fast.children(x)),
            offs(&mut slow.children(y)),
            "children of {}",
            lx.path()
        );
        let path = lx.path();
        let (px, py) = (fast.find_path(path.as_str()), slow.find_path(path.as_str()));
        assert_eq!(px.map(|n| n.off()), py.map(|n| n.off()), "{path}");
        let base = path.as_str().split('@').next().unwrap_or_default();
        let (px, py) = (fast.find_path(base), slow.find_path(base));
        assert_eq!(px.map(|n| n.off()), py.map(|n| n.off()), "{base}");
        if let Some(p) = y.phandle() {
            let (px, py) = (fast.find_phandle(p), slow.find_phandle(p));
            assert_eq!(px.map(|n| n.off()), py.map(|n| n.off()), "phandle {p}");
        }
    }
}

#[test]
fn real_trees_are_indexed_and_read_the_same_either_way() {
    for (name, blob) in trees() {
        let (m, complete) = indexed(&blob);
        assert!(complete, "{name}: index not used");
        let m = m.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(Ok(m), walked(&blob), "{name}");
        same_answers(&blob, 1);
    }
}

#[test]
fn corrupted_trees_read_the_same_either_way() {
    let iters: usize = std::env::var("KESTREL_DT_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250);
    for (name, blob) in trees() {
        let mut rng = Rng(0x5eed_0000 ^ blob.len() as u64);
        let (blob, known) = with_known_names(&blob);
        assert_eq!(indexed(&blob).0, walked(&blob));
        let (mut parsed, mut with_index) = (0, 0);
        for i in 0..iters {
            let b = mutate(&blob, &known, &mut rng);
            let (m, complete) = indexed(&b);
            parsed += usize::from(m.is_ok());
            with_index += usize::from(m.is_ok() && complete);
            assert_eq!(m, walked(&b), "{name} mutant {i}");
            same_answers(&b, 16);
        }
        println!("{name}: {iters} mutants, {parsed} parsed, {with_index} indexed");
        // The corpus must mostly reach the readers, and through the index.
        assert!(with_index > iters / 2, "{name}: {parsed} parsed, {with_index} indexed");
    }
}

/// A tree with more nodes than the index holds is read by walking, with the same result.
#[test]
fn more_nodes_than_the_index_holds() {
    let (_, orig) = TREES[0];
    let mut b = orig.to_vec();
    // Empty nodes before the root's FDT_END_NODE (the last token but FDT_END).
    let toks = tokens(&b);
    let root_end = toks[toks.len() - 2].0;
    let mut extra = Vec::new();
    for i in 0..CAP {
        extra.extend_from_slice(&1u32.to_be_bytes());
        let mut name = format!("extra@{i:x}").into_bytes();
        name.resize((name.len() + 4) & !3, 0);
        extra.extend_from_slice(&name);
        extra.extend_from_slice(&2u32.to_be_bytes());
    }
    insert_struct(&mut b, root_end, &extra);
    let (m, complete) = indexed(&b);
    assert!(!complete);
    // The same machine; only the tree's size differs.
    let (mut a, mut b) = (m.unwrap(), Machine::parse(orig).unwrap());
    (a.used_size, b.used_size) = (0, 0);
    assert_eq!(a, b);
    assert_eq!(indexed(orig).0.unwrap(), Machine::parse(orig).unwrap());
}
