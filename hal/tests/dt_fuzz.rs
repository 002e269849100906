//! Deterministic mutation fuzzing of `hal::dt`: thousands of corrupted real
//! trees must never make `parse`, `check_bootable` or `Display` panic.
//!
//! `KESTREL_DT_FUZZ_ITERS` sets mutants per tree (default 2000).

use hal::dt::{header_total_size, Machine};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

const TREES: [(&str, &[u8]); 4] = [
    ("qemu-virt-gicv2", include_bytes!("data/qemu-virt-gicv2.dtb")),
    ("qemu-virt-gicv3-smp4", include_bytes!("data/qemu-virt-gicv3-smp4.dtb")),
    ("qemu-virt-el2", include_bytes!("data/qemu-virt-el2.dtb")),
    ("qemu-virt-el2-gicv3", include_bytes!("data/qemu-virt-el2-gicv3.dtb")),
];

/// xorshift64*: tiny, deterministic, good enough to pick offsets.
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
    fn word(&mut self) -> u32 {
        // Values that steer parsing: tokens, small lengths, edges, offsets.
        const INTERESTING: [u32; 16] = [
            0,
            1,
            2,
            3,
            4,
            9,
            5,
            8,
            0x10,
            0x28,
            0x7fff_ffff,
            0x8000_0000,
            0xffff_fffc,
            0xffff_ffff,
            0xd00d_feed,
            17,
        ];
        match self.below(3) {
            0 => INTERESTING[self.below(INTERESTING.len())],
            1 => self.below(0x1_0000) as u32,
            _ => self.next() as u32,
        }
    }
}

fn be(b: &[u8], field: usize) -> usize {
    u32::from_be_bytes(b[field * 4..field * 4 + 4].try_into().unwrap()) as usize
}

fn put(b: &mut [u8], at: usize, w: u32) {
    if at + 4 <= b.len() {
        b[at..at + 4].copy_from_slice(&w.to_be_bytes());
    }
}

/// Offsets of the PROP tokens of a well-formed tree, and of each string in its strings block.
struct Map {
    props: Vec<usize>,
    strings: Vec<u32>,
}

fn map(b: &[u8]) -> Map {
    let (mut at, end) = (be(b, 2), be(b, 2) + be(b, 9));
    let mut props = Vec::new();
    while at < end {
        let w = |at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        match w(at) {
            1 => at = (at + 4 + b[at + 4..].iter().position(|&x| x == 0).unwrap() + 1 + 3) & !3,
            3 => {
                props.push(at);
                at = (at + 12 + w(at + 4) + 3) & !3;
            }
            _ => at += 4,
        }
    }
    let (s, n) = (be(b, 3), be(b, 8));
    let mut strings = vec![0];
    strings.extend(
        b[s..s + n]
            .iter()
            .enumerate()
            .filter(|(_, &x)| x == 0)
            .map(|(i, _)| i as u32 + 1),
    );
    strings.pop();
    Map { props, strings }
}

/// A structurally valid corruption: property values and names only, so the
/// tree passes validation and the semantic readers get the garbage.
fn mutate_values(orig: &[u8], m: &Map, rng: &mut Rng) -> Vec<u8> {
    let mut b = orig.to_vec();
    for _ in 0..1 + rng.below(3) {
        let p = m.props[rng.below(m.props.len())];
        let len = be(&b[p..], 1);
        match rng.below(4) {
            // Rename: another string of the strings block ("reg" becomes "ranges", ...).
            0 => {
                let name = m.strings[rng.below(m.strings.len())];
                put(&mut b, p + 8, name);
            }
            // An interesting cell in the value.
            1 | 2 if len >= 4 => {
                let at = p + 12 + rng.below(len / 4) * 4;
                let w = rng.word();
                put(&mut b, at, w);
            }
            // A byte of the value (strings lose or gain terminators, UTF-8 breaks).
            _ if len > 0 => {
                let at = p + 12 + rng.below(len);
                b[at] = [0, b':', b'/', 0xff, rng.next() as u8][rng.below(5)];
            }
            _ => {}
        }
    }
    b
}

/// One random corruption of `orig`.
fn mutate(orig: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = orig.to_vec();
    let (st, st_len) = (be(orig, 2), be(orig, 9));
    let aligned_in_struct = |rng: &mut Rng| st + rng.below(st_len / 4) * 4;
    for _ in 0..1 + rng.below(4) {
        match rng.below(9) {
            // Random bytes anywhere.
            0 => {
                let at = rng.below(b.len());
                if let Some(x) = b.get_mut(at) {
                    *x = rng.next() as u8;
                }
            }
            // An interesting word in the structure block (tokens, lengths, name offsets).
            1 | 2 => {
                let at = aligned_in_struct(rng);
                let w = rng.word();
                put(&mut b, at, w);
            }
            // A header field.
            3 => {
                let field = 1 + rng.below(9);
                let w = rng.word();
                put(&mut b, field * 4, w);
            }
            // Truncate the buffer, keeping or fixing up totalsize.
            4 => {
                let keep = rng.below(b.len() + 1);
                b.truncate(keep);
                if rng.below(2) == 0 && keep >= 8 {
                    put(&mut b, 4, keep as u32);
                }
            }
            // Shrink the structure or strings block.
            5 => {
                let field = if rng.below(2) == 0 { 9 } else { 8 };
                if b.len() >= 40 {
                    let v = be(&b, field);
                    let cut = rng.below(v + 1);
                    put(&mut b, field * 4, (v - cut) as u32);
                }
            }
            // A run of NOPs (like QEMU's fdt_nop_node, but anywhere).
            6 => {
                let at = aligned_in_struct(rng);
                for w in 0..1 + rng.below(16) {
                    put(&mut b, at + 4 * w, 4);
                }
            }
            // Copy a chunk of the tree over another place (duplicated nodes, odd nesting).
            7 => {
                let (from, to, n) = (aligned_in_struct(rng), aligned_in_struct(rng), 4 * (1 + rng.below(32)));
                let chunk: Vec<u8> = b.get(from..(from + n).min(b.len())).unwrap_or_default().to_vec();
                for (i, x) in chunk.into_iter().enumerate() {
                    if let Some(y) = b.get_mut(to + i) {
                        *y = x;
                    }
                }
            }
            // Corrupt the strings block.
            _ => {
                let (s, s_len) = (be(orig, 3), be(orig, 8));
                let at = s + rng.below(s_len);
                if let Some(x) = b.get_mut(at) {
                    *x = [0, b'/', b'@', 0xff, 0x80, rng.next() as u8][rng.below(6)];
                }
            }
        }
    }
    b
}

/// Everything the kernel and `cargo xtask dt` do with a tree.
fn exercise(blob: &[u8]) -> usize {
    let _ = header_total_size(blob);
    match Machine::parse(blob) {
        Ok(m) => {
            let verdict = m.check_bootable();
            let text = format!("{m}\n{verdict:?}");
            if let Err(e) = verdict {
                let _ = e.to_string();
            }
            for i in &m.issues {
                let _ = i.to_string();
            }
            // Sanity: no region overflows.
            for r in m.memory.iter().chain(m.reserved.iter().map(|r| &r.region)) {
                assert!(r.base.checked_add(r.size).is_some());
            }
            text.len() + 1
        }
        Err(e) => {
            let _ = e.to_string();
            0
        }
    }
}

fn fuzz(name: &str, orig: &[u8], seed: u64) {
    let iters = std::env::var("KESTREL_DT_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut rng = Rng(seed);
    let m = map(orig);
    let mut parsed = 0;
    for i in 0..iters {
        // Half structural damage, half semantic garbage in a valid structure.
        let blob = if i % 2 == 0 {
            mutate(orig, &mut rng)
        } else {
            mutate_values(orig, &m, &mut rng)
        };
        match catch_unwind(AssertUnwindSafe(|| exercise(&blob))) {
            Ok(ok) => parsed += (ok > 0) as usize,
            Err(_) => {
                let path = std::env::temp_dir().join(format!("dt-fuzz-{name}-{seed:x}-{i}.dtb"));
                let _ = std::fs::write(&path, &blob);
                panic!(
                    "{name}: mutant {i} (seed {seed:#x}) panicked; saved to {}",
                    path.display()
                );
            }
        }
    }
    println!("{name}: {iters} mutants, {parsed} still readable");
    // The mutations must not be so destructive that nothing gets past validation.
    assert!(
        parsed > iters / 2,
        "{name}: only {parsed} of {iters} mutants were readable"
    );
}

#[test]
fn mutated_qemu_trees_never_panic() {
    for (i, (name, blob)) in TREES.iter().enumerate() {
        assert!(exercise(blob) > 0);
        fuzz(name, blob, 0x5eed_0000 + i as u64);
    }
}

#[test]
fn every_truncation_of_every_tree() {
    for (_, blob) in TREES {
        for len in 0..blob.len() {
            // As handed over (totalsize now lies) and with totalsize fixed up.
            exercise(&blob[..len]);
            let mut b = blob[..len].to_vec();
            put(&mut b, 4, len as u32);
            exercise(&b);
        }
    }
}

#[test]
fn mutated_rpi4_tree_never_panics() {
    let path = match std::env::var_os("KESTREL_RPI4_DTB") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/cache/bcm2711-rpi-4-b.dtb"),
    };
    let Ok(blob) = std::fs::read(&path) else {
        println!(
            "SKIPPED: Raspberry Pi 4 tree not available at {}; set KESTREL_RPI4_DTB",
            path.display()
        );
        return;
    };
    assert!(exercise(&blob) > 0);
    fuzz("bcm2711-rpi-4-b", &blob, 0x0b1d_2711);
}
