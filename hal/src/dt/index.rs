//! A node index built while the structure block is validated, so lookups do
//! not re-walk the token stream.
//!
//! Without it every lookup (a path, a phandle, a node's ancestors, "every
//! node with this `compatible`") walks the structure block from the start,
//! some thirty times per parse. The validator already visits every token
//! once; on the way it records, per node, where the node starts, its parent,
//! and the few properties the readers filter all nodes on: where `compatible`
//! is and which of the [`COMPATIBLES`] the readers look for it lists,
//! `status`, `device_type` and `phandle`. The readers then scan this small
//! array instead of the blob, and only read the properties of the nodes they
//! pick.
//!
//! The index has a fixed capacity ([`CAP`] entries of 16 bytes, 6 KiB, on the
//! stack: the kernel parses before it has a heap). A tree with more nodes (or
//! a node name too long to record) is not indexed: the index is marked
//! incomplete and every lookup falls back to walking the token stream, which
//! gives the same answers, only more slowly.

pub(crate) use super::devices::COMPATIBLES;
use super::tree::{exact_u32, nul_and_ascii};
use super::validate::MAX_DEPTH;

// One bit per watched string in `Entry::compat_mask`.
const _: () = assert!(COMPATIBLES.len() <= 16);

/// Most nodes indexed (6 KiB); the Raspberry Pi 4 tree has 254, QEMU `virt` about 60.
pub(crate) const CAP: usize = 384;

/// `parent` of the root.
pub(crate) const NO_PARENT: u16 = u16::MAX;
/// `compat_words` of a node without `compatible`.
pub(crate) const NO_COMPAT: u16 = u16::MAX;

/// The first `status` is present and is neither "okay" nor "ok".
pub(crate) const DISABLED: u8 = 1 << 0;
/// The first `device_type` is "memory".
pub(crate) const MEMORY: u8 = 1 << 1;
/// `phandle` holds the node's phandle (the first `phandle` if it is one
/// cell, else the first `linux,phandle` if it is one cell).
pub(crate) const HAS_PHANDLE: u8 = 1 << 2;
// Only needed while the node's properties are being read: which names were
// already seen (a repeated property is ignored, as `Node::prop` finds the first).
const SEEN_STATUS: u8 = 1 << 3;
const SEEN_DEVICE_TYPE: u8 = 1 << 4;
const SEEN_PHANDLE: u8 = 1 << 5;
const SEEN_LINUX_PHANDLE: u8 = 1 << 6;

/// One node (16 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Offset of its FDT_BEGIN_NODE token in the structure block.
    pub off: u32,
    /// Its phandle, if `flags` has [`HAS_PHANDLE`].
    pub phandle: u32,
    /// Where the first `compatible` property's FDT_PROP token is, in words
    /// after [`Entry::body`] ([`NO_COMPAT`]: none).
    pub compat_words: u16,
    /// Which of the [`COMPATIBLES`] that `compatible` lists (bit `i` for the `i`th).
    pub compat_mask: u16,
    /// Index of the parent ([`NO_PARENT`] for the root).
    pub parent: u16,
    /// Token words taken by the name (with its NUL and padding): the first
    /// property token is at `off + 4 + 4 * name_words`.
    pub name_words: u8,
    /// [`DISABLED`], [`MEMORY`], [`HAS_PHANDLE`].
    pub flags: u8,
}

impl Entry {
    /// Offset of the first token after the name.
    pub fn body(&self) -> usize {
        self.off as usize + 4 + 4 * self.name_words as usize
    }

    /// Offset of the first `compatible` FDT_PROP token, if any.
    pub fn compat(&self) -> Option<usize> {
        (self.compat_words != NO_COMPAT).then(|| self.body() + 4 * self.compat_words as usize)
    }
}

/// A group of consecutive [`COMPATIBLES`] (e.g. every GICv2 string), most specific first.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Compat {
    /// The strings.
    pub strings: &'static [&'static str],
    /// Their bits in [`Entry::compat_mask`].
    pub mask: u16,
}

impl Compat {
    /// `COMPATIBLES[first..first + len]` (checked at compile time).
    pub const fn group(first: usize, len: usize) -> Self {
        assert!(len > 0 && first + len <= COMPATIBLES.len());
        let (_, rest) = COMPATIBLES.split_at(first);
        let (strings, _) = rest.split_at(len);
        Compat {
            strings,
            mask: (((1u32 << len) - 1) << first) as u16,
        }
    }
}

/// Which bytes start one of the [`COMPATIBLES`] (bit `b % 64` of word
/// `b / 64`): a string starting otherwise is none of them, without
/// comparing it to each.
const STARTS: [u64; 4] = {
    let mut starts = [0u64; 4];
    let mut i = 0;
    while i < COMPATIBLES.len() {
        let want = COMPATIBLES[i].as_bytes();
        assert!(!want.is_empty());
        starts[want[0] as usize / 64] |= 1 << (want[0] % 64);
        i += 1;
    }
    starts
};

fn starts_a_compatible(first: u8) -> bool {
    STARTS[usize::from(first / 64)] >> (first % 64) & 1 != 0
}

/// Which of the [`COMPATIBLES`] a `compatible` value lists.
fn compat_mask(value: &[u8]) -> u16 {
    let mut mask = 0;
    let mut rest = value;
    while let Some(&first) = rest.first() {
        let len = nul_and_ascii(rest).map_or(rest.len(), |(len, _)| len);
        if starts_a_compatible(first) {
            let piece = rest.get(..len).unwrap_or_default();
            for (bit, want) in COMPATIBLES.iter().enumerate() {
                if want.as_bytes() == piece {
                    mask |= 1 << bit;
                }
            }
        }
        rest = rest.get(len + 1..).unwrap_or_default();
    }
    mask
}

/// How many [`Known`] properties there are.
const KNOWN: usize = 5;

/// The properties the index records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    Compatible,
    Status,
    DeviceType,
    Phandle,
    LinuxPhandle,
}

/// The one [`Known`] name a name starting with `first` may be (with its NUL).
#[inline(always)]
fn candidate(first: u8) -> Option<(&'static [u8], Known)> {
    Some(match first {
        b'c' => (b"compatible\0", Known::Compatible),
        b's' => (b"status\0", Known::Status),
        b'd' => (b"device_type\0", Known::DeviceType),
        b'p' => (b"phandle\0", Known::Phandle),
        b'l' => (b"linux,phandle\0", Known::LinuxPhandle),
        _ => return None,
    })
}

/// Whether `name` (the strings block from a name's offset on) is `want` (with its NUL).
fn is_name(name: &[u8], want: &[u8]) -> bool {
    // The place of the terminator rejects most other names before a full compare.
    name.get(want.len().wrapping_sub(1)) == Some(&0) && name.get(..want.len()) == Some(want)
}

/// Whether the strings-block string at `name_off` is one the index records.
#[cfg(test)]
fn classify(strings: &[u8], name_off: u32) -> Option<Known> {
    let rest = strings.get(name_off as usize..)?;
    let (want, known) = candidate(*rest.first()?)?;
    is_name(rest, want).then_some(known)
}

/// A string property's first string (up to the first NUL) as bytes.
fn first_string(value: &[u8]) -> &[u8] {
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    value.get(..end).unwrap_or_default()
}

/// The index of one tree; see the module documentation.
pub(crate) struct Index {
    entries: heapless::Vec<Entry, CAP>,
    /// Every node was recorded; lookups may trust the index.
    complete: bool,
    /// While building: the index of the open node at each depth.
    open: [u16; MAX_DEPTH],
    /// While building: where each [`Known`] name was last found in the
    /// strings block. dtc stores each name once, so after the first property
    /// of a kind the others are recognised by their offset alone.
    known_at: [Option<u32>; KNOWN],
}

impl Index {
    /// An empty index, ready to be filled by the validator.
    pub fn new() -> Self {
        Self {
            entries: heapless::Vec::new(),
            complete: true,
            open: [0; MAX_DEPTH],
            known_at: [None; KNOWN],
        }
    }

    /// An index that is never used: every lookup walks the tree.
    #[cfg(test)]
    pub fn disabled() -> Self {
        Self {
            complete: false,
            ..Self::new()
        }
    }

    /// The entries in document order, if every node is in them.
    pub fn entries(&self) -> Option<&[Entry]> {
        self.complete.then_some(&self.entries[..])
    }

    fn give_up(&mut self) {
        self.complete = false;
        self.entries.clear();
    }

    /// A node opens: its FDT_BEGIN_NODE is at `off`, its first property at
    /// `body`, and `depth` nodes are open around it (0 for the root).
    #[inline(always)]
    pub fn open(&mut self, off: usize, body: usize, depth: usize) {
        if !self.complete {
            return;
        }
        let idx = self.entries.len();
        let parent = match depth.checked_sub(1) {
            None => Some(NO_PARENT),
            Some(up) => self.open.get(up).copied(),
        };
        let name_words = body
            .checked_sub(off + 4)
            .map(|bytes| bytes / 4)
            .and_then(|words| u8::try_from(words).ok());
        let (Some(parent), Some(name_words), Ok(off), Ok(idx16), Some(slot)) = (
            parent,
            name_words,
            u32::try_from(off),
            u16::try_from(idx),
            self.open.get_mut(depth),
        ) else {
            return self.give_up();
        };
        *slot = idx16;
        let entry = Entry {
            off,
            phandle: 0,
            compat_words: NO_COMPAT,
            compat_mask: 0,
            parent,
            name_words,
            flags: 0,
        };
        if idx16 == NO_PARENT || self.entries.push(entry).is_err() {
            self.give_up();
        }
    }

    /// A property of the innermost of the `depth` open nodes: its FDT_PROP is at `at`.
    ///
    /// Inlined: most properties are rejected by their first byte, cheaper
    /// than a call.
    #[inline(always)]
    pub fn prop(&mut self, strings: &[u8], depth: usize, at: usize, name_off: u32, value: &[u8]) {
        let name = strings.get(name_off as usize..).unwrap_or_default();
        let Some((want, _)) = name.first().and_then(|&b| candidate(b)) else {
            return;
        };
        // The place of the candidate's terminator rejects most other names.
        if self.complete && name.get(want.len() - 1) == Some(&0) {
            self.record(strings, depth, at, name_off, value);
        }
    }

    /// [`Index::prop`] for a property whose name may be a [`Known`] one.
    fn record(&mut self, strings: &[u8], depth: usize, at: usize, name_off: u32, value: &[u8]) {
        // The first byte picks the only candidate; a name seen before is known by its offset.
        let rest = strings.get(name_off as usize..).unwrap_or_default();
        let Some((want, known)) = rest.first().and_then(|&b| candidate(b)) else {
            return;
        };
        let Some(seen_at) = self.known_at.get_mut(known as usize) else {
            return;
        };
        if *seen_at != Some(name_off) {
            if !is_name(rest, want) {
                return;
            }
            *seen_at = Some(name_off);
        }
        let node = depth
            .checked_sub(1)
            .and_then(|d| self.open.get(d))
            .map(|&i| usize::from(i));
        let Some(e) = node.and_then(|i| self.entries.get_mut(i)) else {
            return self.give_up();
        };
        let first = |e: &mut Entry, seen: u8| {
            let was = e.flags & seen != 0;
            e.flags |= seen;
            !was
        };
        match known {
            Known::Compatible => {
                if e.compat_words == NO_COMPAT {
                    let words = at.checked_sub(e.body()).map(|bytes| bytes / 4);
                    match words.and_then(|w| u16::try_from(w).ok()) {
                        Some(words) if words != NO_COMPAT => {
                            e.compat_words = words;
                            e.compat_mask = compat_mask(value);
                        }
                        _ => self.give_up(), // a node with some 256 KiB of properties
                    }
                }
            }
            Known::Status => {
                if first(e, SEEN_STATUS) && !matches!(first_string(value), b"okay" | b"ok") {
                    e.flags |= DISABLED;
                }
            }
            Known::DeviceType => {
                if first(e, SEEN_DEVICE_TYPE) && first_string(value) == b"memory" {
                    e.flags |= MEMORY;
                }
            }
            Known::Phandle => {
                if first(e, SEEN_PHANDLE) {
                    if let Some(p) = exact_u32(value) {
                        e.phandle = p;
                        e.flags |= HAS_PHANDLE;
                    }
                }
            }
            Known::LinuxPhandle => {
                // Only if no one-cell `phandle` came first (a later one overrides this).
                let phandle_set = e.flags & (SEEN_PHANDLE | HAS_PHANDLE) == SEEN_PHANDLE | HAS_PHANDLE;
                if first(e, SEEN_LINUX_PHANDLE) && !phandle_set {
                    if let Some(p) = exact_u32(value) {
                        e.phandle = p;
                        e.flags |= HAS_PHANDLE;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_matches_whole_names_only() {
        let strings = b"compatible\0compat\0status\0linux,phandle\0phandles\0phandle\0x\0";
        let at = |s: &str| {
            let pat = [s.as_bytes(), b"\0"].concat();
            strings.windows(pat.len()).position(|w| w == pat.as_slice()).unwrap() as u32
        };
        assert_eq!(classify(strings, 0), Some(Known::Compatible));
        assert_eq!(classify(strings, at("compat")), None);
        assert_eq!(classify(strings, at("status")), Some(Known::Status));
        assert_eq!(classify(strings, at("linux,phandle")), Some(Known::LinuxPhandle));
        // The tail of "linux,phandle" is "phandle": a valid name offset too.
        assert_eq!(classify(strings, at("linux,phandle") + 6), Some(Known::Phandle));
        assert_eq!(classify(strings, at("phandles")), None);
        assert_eq!(classify(strings, at("x")), None);
        assert_eq!(classify(strings, strings.len() as u32), None);
        assert_eq!(classify(strings, u32::MAX), None);
    }

    #[test]
    fn known_discriminants_fit_the_cache() {
        let all = [
            Known::Compatible,
            Known::Status,
            Known::DeviceType,
            Known::Phandle,
            Known::LinuxPhandle,
        ];
        for known in all {
            assert!((known as usize) < KNOWN);
        }
    }

    #[test]
    fn compat_groups_and_masks() {
        let gic_v2 = Compat::group(1, 5);
        assert_eq!(gic_v2.strings, &COMPATIBLES[1..6]);
        assert_eq!(gic_v2.mask, 0b11_1110);
        let value = [COMPATIBLES[2], "", "vendor,x", COMPATIBLES[0], ""].join("\0");
        assert_eq!(compat_mask(value.as_bytes()), 0b101);
        assert_eq!(compat_mask(b"arm,gic-v3x\0"), 0);
        assert_eq!(compat_mask(b""), 0);
    }

    fn phandle_after(props: &[(&str, &[u8])]) -> Option<u32> {
        let strings = b"phandle\0linux,phandle\0";
        let mut index = Index::new();
        index.open(0, 8, 0);
        for (i, (name, value)) in props.iter().enumerate() {
            let name_off = if *name == "phandle" { 0 } else { 8 };
            index.prop(strings, 1, 8 + 16 * i, name_off, value);
        }
        let e = index.entries().unwrap()[0];
        (e.flags & HAS_PHANDLE != 0).then_some(e.phandle)
    }

    #[test]
    fn phandle_rules_match_node_phandle() {
        let one = &[0, 0, 0, 1][..];
        let two = &[0, 0, 0, 2][..];
        let bad = &[0, 0, 2][..];
        assert_eq!(phandle_after(&[]), None);
        assert_eq!(phandle_after(&[("phandle", one)]), Some(1));
        assert_eq!(phandle_after(&[("linux,phandle", one)]), Some(1));
        assert_eq!(phandle_after(&[("linux,phandle", one), ("phandle", two)]), Some(2));
        assert_eq!(phandle_after(&[("phandle", one), ("linux,phandle", two)]), Some(1));
        assert_eq!(phandle_after(&[("phandle", bad), ("linux,phandle", two)]), Some(2));
        assert_eq!(phandle_after(&[("linux,phandle", two), ("phandle", bad)]), Some(2));
        assert_eq!(phandle_after(&[("phandle", bad), ("phandle", one)]), None);
        assert_eq!(phandle_after(&[("linux,phandle", bad), ("linux,phandle", one)]), None);
    }

    #[test]
    fn overflow_gives_up() {
        let mut index = Index::new();
        index.open(0, 8, 0);
        for i in 1..=CAP {
            index.open(8 * i, 8 * i + 8, 1);
        }
        assert!(index.entries().is_none());
        // A name too long to record also gives up.
        let mut index = Index::new();
        index.open(0, 4 + 4 * 256, 0);
        assert!(index.entries().is_none());
    }
}
