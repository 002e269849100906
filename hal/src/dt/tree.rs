//! Walking the structure block: tokens, nodes, properties, paths, phandles.
//!
//! Why not `fdt` 0.1.5's node iterators: `Fdt::all_nodes()` silently stops at
//! an FDT_NOP that sits before an FDT_END_NODE or between two properties
//! (QEMU's `raspi4b` rewrite of the Pi 4 tree has one after the last child of
//! `/soc/avs-monitor`), `find_node()` gives up after a NOP-ed sibling and
//! asserts when it skips a node with NOP-ed children, and `children()` skips
//! with the same code. (It also takes FDT_END to be 5; the specification says
//! 9.) This walker accepts NOP wherever the specification allows it, and every
//! read is bounds-checked, so it cannot panic even on an unvalidated tree.
//!
//! Node lookups go through [`Tree`], which reads the node [`Index`] the
//! validator built when it has one, and walks the tokens otherwise.

use super::error::NodePath;
use super::index::{self, Compat, Entry, Index};
use super::validate::MAX_DEPTH;

pub(crate) const FDT_BEGIN_NODE: u32 = 1;
pub(crate) const FDT_END_NODE: u32 = 2;
pub(crate) const FDT_PROP: u32 = 3;
pub(crate) const FDT_NOP: u32 = 4;
pub(crate) const FDT_END: u32 = 9;

/// Big-endian u32 at `at`, if in bounds.
pub(crate) fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(word.try_into().ok()?))
}

/// A property value that is exactly one cell.
pub(crate) fn exact_u32(value: &[u8]) -> Option<u32> {
    if value.len() == 4 {
        be32(value, 0)
    } else {
        None
    }
}

/// A property value of one or two cells (e.g. `linux,initrd-start`, `cpu-release-addr`).
pub(crate) fn u32_or_u64(value: &[u8]) -> Option<u64> {
    match value.len() {
        4 | 8 => read_cells(value, value.len() / 4),
        _ => None,
    }
}

/// `n` cells (0, 1 or 2) at the start of `bytes` as one number.
pub(crate) fn read_cells(bytes: &[u8], n: usize) -> Option<u64> {
    match n {
        0 => Some(0),
        1 => be32(bytes, 0).map(u64::from),
        2 => Some((u64::from(be32(bytes, 0)?) << 32) | u64::from(be32(bytes, 4)?)),
        _ => None,
    }
}

/// The NUL-terminated strings of a property value (invalid UTF-8 pieces are skipped).
pub(crate) fn strings(value: &[u8]) -> impl Iterator<Item = &str> {
    value
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .filter_map(|s| core::str::from_utf8(s).ok())
}

/// One structure-block token.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Token<'a> {
    /// A node, whose name was checked (NUL-terminated, UTF-8): [`Node::name`] reads it.
    Begin,
    EndNode,
    Prop {
        name_off: u32,
        value: &'a [u8],
    },
    Nop,
    End,
}

/// Why a token could not be read (offset relative to the structure block).
#[derive(Clone, Copy, Debug)]
pub(crate) struct BadToken {
    pub at: usize,
    pub what: &'static str,
    pub truncated: bool,
}

fn bad(at: usize, what: &'static str, truncated: bool) -> BadToken {
    BadToken { at, what, truncated }
}

fn align4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

/// The FDT_PROP token at `at` (its tag already read): name offset, value and
/// the offset of the next token, if it is well formed (as [`read_token`] checks).
#[inline(always)]
pub(crate) fn prop_at(structs: &[u8], at: usize) -> Option<(u32, &[u8], usize)> {
    let (len, name_off) = (be32(structs, at + 4)?, be32(structs, at + 8)?);
    let start = at + 12;
    let end = start.checked_add(len as usize)?;
    let value = structs.get(start..end)?;
    let next = align4(end).filter(|&next| next <= structs.len())?;
    Some((name_off, value, next))
}

/// Where the first NUL in `bytes` is, and whether every byte before it is
/// ASCII. Reads four bytes at a time: names and strings are short, but there
/// are many of them.
#[inline]
pub(crate) fn nul_and_ascii(bytes: &[u8]) -> Option<(usize, bool)> {
    const ONES: u32 = 0x0101_0101;
    const HIGH: u32 = 0x8080_8080;
    let mut chunks = bytes.chunks_exact(4);
    let (mut high, mut base) = (0u32, 0usize);
    for chunk in &mut chunks {
        let Ok(word) = <[u8; 4]>::try_from(chunk) else {
            break;
        };
        let w = u32::from_le_bytes(word);
        // The lowest bit set marks the first zero byte (in memory order).
        let zeros = w.wrapping_sub(ONES) & !w & HIGH;
        if zeros != 0 {
            let k = zeros.trailing_zeros() / 8;
            let before = w.checked_shl(32 - 8 * k).unwrap_or(0);
            return Some((base + k as usize, (high | before) & HIGH == 0));
        }
        high |= w;
        base += 4;
    }
    let rest = chunks.remainder();
    let len = rest.iter().position(|&b| b == 0)?;
    let rest_high = rest.iter().take(len).fold(0, |acc, &b| acc | b);
    Some((base + len, high & HIGH == 0 && rest_high.is_ascii()))
}

/// The offset after the FDT_BEGIN_NODE token at `at` (its tag already read),
/// if its name is NUL-terminated, ASCII and padded within the block: the
/// common case, where [`read_token`] would accept it too.
#[inline(always)]
pub(crate) fn ascii_name_end(structs: &[u8], at: usize) -> Option<usize> {
    let (len, ascii) = nul_and_ascii(structs.get(at + 4..)?)?;
    let next = align4(at + 4 + len + 1)?;
    (ascii && next <= structs.len()).then_some(next)
}

/// The common, well-formed tokens (FDT_PROP, FDT_BEGIN_NODE with an ASCII
/// name, FDT_END_NODE, FDT_NOP) read with fewer checks than [`read_token`]:
/// `None` for anything else (FDT_END, a problem), which [`read_token`] then
/// reads or explains. When this returns a token, it is the one
/// [`read_token`] returns.
#[inline(always)]
pub(crate) fn read_token_fast(structs: &[u8], at: usize) -> Option<(Token<'_>, usize)> {
    if !at.is_multiple_of(4) {
        return None;
    }
    match be32(structs, at)? {
        FDT_PROP => prop_at(structs, at).map(|(name_off, value, next)| (Token::Prop { name_off, value }, next)),
        FDT_BEGIN_NODE => ascii_name_end(structs, at).map(|next| (Token::Begin, next)),
        FDT_END_NODE => Some((Token::EndNode, at + 4)),
        FDT_NOP => Some((Token::Nop, at + 4)),
        _ => None,
    }
}

/// Read the token at `at`; returns it and the offset of the next token.
pub(crate) fn read_token(structs: &[u8], at: usize) -> Result<(Token<'_>, usize), BadToken> {
    if !at.is_multiple_of(4) {
        return Err(bad(at, "token is not 4-byte aligned", false));
    }
    if at >= structs.len() {
        return Err(bad(at, "structure block ends before FDT_END", true));
    }
    let tag = be32(structs, at).ok_or_else(|| bad(at, "token runs past the end of the structure block", true))?;
    let body = at + 4;
    match tag {
        FDT_BEGIN_NODE => {
            let rest = structs.get(body..).unwrap_or_default();
            // Note any non-ASCII byte on the way: only such names need a UTF-8 check.
            let mut high = 0u8;
            let len = rest
                .iter()
                .position(|&b| {
                    high |= b;
                    b == 0
                })
                .ok_or_else(|| bad(at, "node name is not NUL-terminated within the structure block", true))?;
            let name = rest.get(..len).unwrap_or_default();
            if !high.is_ascii() && core::str::from_utf8(name).is_err() {
                return Err(bad(at, "node name is not UTF-8", false));
            }
            let next = align4(body + len + 1).ok_or_else(|| bad(at, "node name overflows", true))?;
            if next > structs.len() {
                return Err(bad(
                    at,
                    "node name padding runs past the end of the structure block",
                    true,
                ));
            }
            Ok((Token::Begin, next))
        }
        FDT_PROP => {
            let (Some(len), Some(name_off)) = (be32(structs, body), be32(structs, body + 4)) else {
                return Err(bad(
                    at,
                    "property header runs past the end of the structure block",
                    true,
                ));
            };
            let start = body + 8;
            let value = usize::try_from(len)
                .ok()
                .and_then(|len| structs.get(start..start.checked_add(len)?))
                .ok_or_else(|| bad(at, "property value runs past the end of the structure block", true))?;
            let next = align4(start + value.len()).ok_or_else(|| bad(at, "property value overflows", true))?;
            if next > structs.len() {
                return Err(bad(
                    at,
                    "property padding runs past the end of the structure block",
                    true,
                ));
            }
            Ok((Token::Prop { name_off, value }, next))
        }
        FDT_END_NODE => Ok((Token::EndNode, body)),
        FDT_NOP => Ok((Token::Nop, body)),
        FDT_END => Ok((Token::End, body)),
        _ => Err(bad(
            at,
            "unknown token (not BEGIN_NODE, END_NODE, PROP, NOP or END)",
            false,
        )),
    }
}

/// The structure and strings blocks of a validated tree.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Blocks<'a> {
    structs: &'a [u8],
    strings: &'a [u8],
}

impl<'a> Blocks<'a> {
    pub fn new(structs: &'a [u8], strings: &'a [u8]) -> Self {
        Self { structs, strings }
    }

    fn token(&self, at: usize) -> Option<(Token<'a>, usize)> {
        read_token_fast(self.structs, at).or_else(|| read_token(self.structs, at).ok())
    }

    /// Whether the string at `off` in the strings block is exactly `name`.
    fn string_is(&self, off: u32, name: &str) -> bool {
        let start = off as usize;
        let end = start.saturating_add(name.len());
        // The first byte and the terminator's place reject most names without a full compare.
        self.strings.get(start) == name.as_bytes().first()
            && self.strings.get(end) == Some(&0)
            && self.strings.get(start..end) == Some(name.as_bytes())
    }

    /// The node whose FDT_BEGIN_NODE token is at `off` (found by walking: not indexed).
    fn node_at(&self, off: usize) -> Option<Node<'a>> {
        match self.token(off)? {
            (Token::Begin, body) => Some(Node::walked(*self, off, body)),
            _ => None,
        }
    }
}

/// `idx` of a node that did not come from the index.
const NOT_INDEXED: u16 = u16::MAX;

/// A validated tree and its node index: every lookup of nodes starts here.
///
/// With a complete [`Index`] the lookups read the index; otherwise (a tree
/// too big for it) they walk the structure block. Both give the same answers.
#[derive(Clone, Copy)]
pub(crate) struct Tree<'t, 'a> {
    blocks: Blocks<'a>,
    index: &'t Index,
}

impl<'t, 'a> Tree<'t, 'a> {
    pub fn new(blocks: Blocks<'a>, index: &'t Index) -> Self {
        Self { blocks, index }
    }

    /// The index entries, if the index is usable.
    fn entries(&self) -> Option<&'t [Entry]> {
        self.index.entries()
    }

    /// The `i`th node of the index.
    fn indexed(&self, i: usize) -> Option<Node<'a>> {
        let e = *self.entries()?.get(i)?;
        Some(Node {
            blocks: self.blocks,
            e,
            body: u32::try_from(e.body()).ok()?,
            idx: u16::try_from(i).ok()?,
        })
    }

    /// Position of `node` in the index.
    fn index_of(&self, entries: &[Entry], node: &Node<'a>) -> Option<usize> {
        let i = usize::from(node.idx);
        match entries.get(i) {
            Some(e) if e.off == node.e.off => Some(i),
            // Entries are in document order, so sorted by offset.
            _ => entries.binary_search_by_key(&node.e.off, |e| e.off).ok(),
        }
    }

    /// Every node in document order.
    pub fn all(&self) -> AllNodes<'t, 'a> {
        self.all_with(Want::All)
    }

    /// The nodes in document order that may be `want`: at least those that are,
    /// maybe more (the caller still checks), but the index skips most others.
    pub fn all_with(&self, want: Want) -> AllNodes<'t, 'a> {
        match self.entries() {
            Some(_) => AllNodes::Indexed {
                tree: *self,
                next: 0,
                want,
            },
            None => AllNodes::Walk(Nodes::new(self.blocks)),
        }
    }

    pub fn root(&self) -> Option<Node<'a>> {
        self.all().next()
    }

    /// Direct children of `node`, NOPs skipped.
    pub fn children(&self, node: &Node<'a>) -> Children<'t, 'a> {
        if let Some(entries) = self.entries() {
            if let Some(parent) = self.index_of(entries, node) {
                return Children::Indexed {
                    tree: *self,
                    parent,
                    next: parent + 1,
                };
            }
        }
        Children::Walk(WalkChildren {
            blocks: self.blocks,
            at: node.body(),
            depth: 0,
            done: false,
        })
    }

    /// Follow a relative path ("soc/serial@7e201000") down from `node`; a
    /// component without `@unit` matches the first child with that base
    /// name when no child has exactly that name.
    pub fn descend(&self, node: &Node<'a>, rel: &str) -> Option<Node<'a>> {
        let mut node = *node;
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            node = self.child(&node, part.as_bytes())?;
        }
        Some(node)
    }

    /// The child named `part`, else (if `part` has no '@') the first whose base name it is.
    fn child(&self, node: &Node<'a>, part: &[u8]) -> Option<Node<'a>> {
        if part.contains(&0) {
            return None; // no node name has a NUL
        }
        let base_ok = !part.contains(&b'@');
        let indexed = self.entries().and_then(|e| Some((e, self.index_of(e, node)?)));
        let Some((entries, parent)) = indexed else {
            let exact = self.children(node).find(|c| name_is(c.raw_name(), part));
            return exact.or_else(|| {
                let mut children = self.children(node).filter(|_| base_ok);
                children.find(|c| base_name_is(c.raw_name(), part))
            });
        };
        // One pass over the entries, comparing names straight from the blob
        // (first byte first): no `Node` for the siblings that do not match.
        let first = part.first()?;
        let mut base = None;
        for (i, e) in entries.iter().enumerate().skip(parent + 1) {
            let p = usize::from(e.parent);
            if p < parent {
                break; // past the parent's subtree
            }
            let off = e.off as usize + 4;
            if p != parent || self.blocks.structs.get(off) != Some(first) {
                continue;
            }
            let raw = self.blocks.structs.get(off..e.body()).unwrap_or_default();
            if name_is(raw, part) {
                return self.indexed(i);
            }
            if base.is_none() && base_ok && base_name_is(raw, part) {
                base = Some(i);
            }
        }
        self.indexed(base?)
    }

    /// Look up an absolute path; a component without `@unit` matches the first node with that base name.
    pub fn find_path(&self, path: &str) -> Option<Node<'a>> {
        let rest = path.strip_prefix('/')?;
        self.descend(&self.root()?, rest)
    }

    /// The node with this `phandle` (or legacy `linux,phandle`).
    pub fn find_phandle(&self, phandle: u32) -> Option<Node<'a>> {
        if phandle == 0 || phandle == u32::MAX {
            return None;
        }
        match self.entries() {
            Some(entries) => {
                let has = |e: &Entry| e.flags & index::HAS_PHANDLE != 0 && e.phandle == phandle;
                self.indexed(entries.iter().position(has)?)
            }
            None => self.all().find(|n| n.phandle() == Some(phandle)),
        }
    }

    /// The parent of `node` (`None` for the root).
    pub fn parent(&self, node: &Node<'a>) -> Option<Node<'a>> {
        let Some(entries) = self.entries() else {
            return self.lineage(node)?.up()?.node();
        };
        match entries.get(self.index_of(entries, node)?)?.parent {
            index::NO_PARENT => None,
            p => self.indexed(usize::from(p)),
        }
    }

    /// The chain of nodes from the root down to `node`.
    pub fn lineage(&self, node: &Node<'a>) -> Option<Lineage<'t, 'a>> {
        let mut lin = Lineage {
            tree: *self,
            ids: [0; MAX_DEPTH],
            len: 0,
        };
        let Some(entries) = self.entries() else {
            for (n, depth) in Nodes::new(self.blocks) {
                *lin.ids.get_mut(depth)? = u32::try_from(n.off()).ok()?;
                if n.off() == node.off() {
                    lin.len = depth + 1;
                    return Some(lin);
                }
            }
            return None;
        };
        let leaf = self.index_of(entries, node)?;
        // Parents come before their children in the index, so this climb ends.
        let parent = |i: usize| match entries.get(i)?.parent {
            index::NO_PARENT => None,
            p => Some(usize::from(p)).filter(|&p| p < i),
        };
        let mut len = 1;
        let mut i = leaf;
        while let Some(p) = parent(i) {
            len += 1;
            i = p;
        }
        if len > MAX_DEPTH {
            return None;
        }
        let mut i = leaf;
        for slot in lin.ids.get_mut(..len)?.iter_mut().rev() {
            *slot = u32::try_from(i).ok()?;
            i = parent(i).unwrap_or(0);
        }
        lin.len = len;
        Some(lin)
    }
}

/// What a scan of all nodes looks for; see [`Tree::all_with`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Want {
    All,
    /// Nodes whose `compatible` lists one of these.
    Compatible(Compat),
    /// Nodes with `device_type = "memory"`.
    Memory,
}

/// Iterator over all nodes; see [`Tree::all`].
pub(crate) enum AllNodes<'t, 'a> {
    Indexed {
        tree: Tree<'t, 'a>,
        next: usize,
        want: Want,
    },
    Walk(Nodes<'a>),
}

impl<'a> Iterator for AllNodes<'_, 'a> {
    type Item = Node<'a>;

    fn next(&mut self) -> Option<Node<'a>> {
        match self {
            AllNodes::Indexed { tree, next, want } => {
                let entries = tree.entries()?;
                let skip = entries.get(*next..)?.iter().position(|e| match want {
                    Want::All => true,
                    Want::Compatible(c) => e.compat_mask & c.mask != 0,
                    Want::Memory => e.flags & index::MEMORY != 0,
                });
                let Some(i) = skip.map(|skip| *next + skip) else {
                    *next = entries.len();
                    return None;
                };
                *next = i + 1;
                tree.indexed(i)
            }
            AllNodes::Walk(nodes) => nodes.next().map(|(n, _)| n),
        }
    }
}

/// Iterator over all nodes by walking the structure block, with each node's depth (root = 0).
pub(crate) struct Nodes<'a> {
    blocks: Blocks<'a>,
    at: usize,
    depth: usize,
    done: bool,
}

impl<'a> Nodes<'a> {
    fn new(blocks: Blocks<'a>) -> Self {
        Self {
            blocks,
            at: 0,
            depth: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for Nodes<'a> {
    type Item = (Node<'a>, usize);

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let Some((token, next)) = self.blocks.token(self.at) else {
                break;
            };
            let here = self.at;
            self.at = next;
            match token {
                Token::Begin => {
                    let depth = self.depth;
                    self.depth += 1;
                    return Some((Node::walked(self.blocks, here, next), depth));
                }
                Token::EndNode => self.depth = self.depth.saturating_sub(1),
                Token::Prop { .. } | Token::Nop => {}
                Token::End => break,
            }
        }
        self.done = true;
        None
    }
}

/// A node of the tree (a cheap handle: offsets into the blob; small enough,
/// 56 bytes, to be copied without a call to `memcpy`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node<'a> {
    blocks: Blocks<'a>,
    /// Its index entry when it came from the index (`idx` set): the recorded
    /// properties need no walk. Otherwise only `e.off` is meaningful.
    e: Entry,
    /// Offset of the first token after the name.
    body: u32,
    /// Position in the index ([`NOT_INDEXED`] if unknown).
    idx: u16,
}

impl<'a> Node<'a> {
    fn walked(blocks: Blocks<'a>, off: usize, body: usize) -> Self {
        // Both fit u32: validated trees are at most 2 MiB (the walkers only read those).
        let (off, body) = (u32::try_from(off), u32::try_from(body));
        Self {
            blocks,
            e: Entry {
                off: off.unwrap_or(u32::MAX),
                ..Entry::default()
            },
            body: body.unwrap_or(u32::MAX),
            idx: NOT_INDEXED,
        }
    }

    /// Offset of its FDT_BEGIN_NODE token in the structure block (identifies the node).
    pub fn off(&self) -> usize {
        self.e.off as usize
    }

    /// Offset of the first token after the name.
    fn body(&self) -> usize {
        self.body as usize
    }

    /// The index entry, if the node came from the index.
    fn cached(&self) -> Option<Entry> {
        (self.idx != NOT_INDEXED).then_some(self.e)
    }

    /// The name with its NUL and padding.
    fn raw_name(&self) -> &'a [u8] {
        self.blocks.structs.get(self.off() + 4..self.body()).unwrap_or_default()
    }

    /// Name with unit address ("" for the root).
    pub fn name(&self) -> &'a str {
        let raw = self.raw_name();
        let len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        // Validation checked that every node name is UTF-8.
        core::str::from_utf8(raw.get(..len).unwrap_or_default()).unwrap_or_default()
    }

    /// Name without the unit address.
    pub fn base_name(&self) -> &'a str {
        self.name().split('@').next().unwrap_or_default()
    }

    /// Value of the property `name` (NOPs between properties skipped).
    pub fn prop(&self, name: &str) -> Option<&'a [u8]> {
        // The properties are FDT_PROP (and FDT_NOP) tokens up to the first
        // other token, read with the checks of `read_token` but without
        // building tokens; names are compared as raw bytes.
        let structs = self.blocks.structs;
        let mut at = self.body();
        loop {
            match be32(structs, at)? {
                FDT_PROP => {
                    let (name_off, value, next) = prop_at(structs, at)?;
                    at = next;
                    if self.blocks.string_is(name_off, name) {
                        return Some(value);
                    }
                }
                FDT_NOP => at += 4,
                _ => return None,
            }
        }
    }

    /// The values of several properties (each the first of its name), in one walk.
    pub fn props<const N: usize>(&self, names: [&str; N]) -> [Option<&'a [u8]>; N] {
        let mut found = [None; N];
        let structs = self.blocks.structs;
        let mut at = self.body();
        // As in `prop`.
        while let Some(tag) = be32(structs, at) {
            match tag {
                FDT_PROP => {
                    let Some((name_off, value, next)) = prop_at(structs, at) else {
                        break;
                    };
                    at = next;
                    for (name, slot) in names.iter().zip(found.iter_mut()) {
                        if slot.is_none() && self.blocks.string_is(name_off, name) {
                            *slot = Some(value);
                        }
                    }
                }
                FDT_NOP => at += 4,
                _ => break,
            }
        }
        found
    }

    pub fn has(&self, name: &str) -> bool {
        self.prop(name).is_some()
    }

    /// First string of a string (or string-list) property.
    pub fn str(&self, name: &str) -> Option<&'a str> {
        let value = self.prop(name)?;
        let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
        core::str::from_utf8(value.get(..end)?).ok()
    }

    /// A one-cell property.
    pub fn u32(&self, name: &str) -> Option<u32> {
        exact_u32(self.prop(name)?)
    }

    /// Strings of a string-list property (empty if absent).
    pub fn strings(&self, name: &str) -> impl Iterator<Item = &'a str> {
        strings(self.prop(name).unwrap_or_default())
    }

    /// The `compatible` value (from the index entry when there is one).
    fn compatible(&self) -> Option<&'a [u8]> {
        let Some(e) = self.cached() else {
            return self.prop("compatible");
        };
        // The index points at a validated FDT_PROP: <tag, len, nameoff, value>.
        let at = e.compat()?;
        let len = be32(self.blocks.structs, at + 4)? as usize;
        self.blocks.structs.get(at + 12..(at + 12).checked_add(len)?)
    }

    /// The first of the node's `compatible` strings that is in `group` (as spelt there).
    pub fn compatible_with(&self, group: Compat) -> Option<&'static str> {
        if let Some(e) = self.cached() {
            // The index knows which of the group the node lists: when that is
            // none or one, the order of its strings does not matter.
            let listed = e.compat_mask & group.mask;
            if listed == 0 {
                return None;
            }
            if listed.is_power_of_two() {
                return index::COMPATIBLES.get(listed.trailing_zeros() as usize).copied();
            }
        }
        let value = self.compatible()?;
        value
            .split(|&b| b == 0)
            .filter(|c| !c.is_empty())
            .find_map(|c| group.strings.iter().find(|w| w.as_bytes() == c).copied())
    }

    /// The first string of `group` (in the group's order) that the node's `compatible` lists.
    pub fn first_listed(&self, group: Compat) -> Option<&'static str> {
        if let Some(e) = self.cached() {
            let listed = e.compat_mask & group.mask;
            return index::COMPATIBLES.get(listed.trailing_zeros() as usize).copied();
        }
        let value = self.compatible().unwrap_or_default();
        let lists = |want: &&&str| value.split(|&b| b == 0).any(|c| c == want.as_bytes());
        group.strings.iter().find(lists).copied()
    }

    /// `status` absent, "okay" or "ok".
    pub fn is_enabled(&self) -> bool {
        if let Some(e) = self.cached() {
            return e.flags & index::DISABLED == 0;
        }
        match self.prop("status") {
            None => true,
            Some(_) => matches!(self.str("status"), Some("okay" | "ok")),
        }
    }

    /// `device_type = "memory"`.
    pub fn is_memory(&self) -> bool {
        match self.cached() {
            Some(e) => e.flags & index::MEMORY != 0,
            None => self.str("device_type") == Some("memory"),
        }
    }

    pub fn phandle(&self) -> Option<u32> {
        match self.cached() {
            Some(e) => (e.flags & index::HAS_PHANDLE != 0).then_some(e.phandle),
            None => self.u32("phandle").or_else(|| self.u32("linux,phandle")),
        }
    }
}

/// Whether a raw node name (NUL-terminated) starts with `part`, a non-empty path component.
fn name_starts_with(raw: &[u8], part: &[u8]) -> bool {
    // The first byte rejects almost every sibling before a full compare.
    !raw.is_empty() && raw.first() == part.first() && raw.get(..part.len()) == Some(part)
}

/// Whether a raw node name is exactly `part`.
fn name_is(raw: &[u8], part: &[u8]) -> bool {
    name_starts_with(raw, part) && raw.get(part.len()) == Some(&0)
}

/// Whether a raw node name without its unit address is `part` (which has no '@').
fn base_name_is(raw: &[u8], part: &[u8]) -> bool {
    name_starts_with(raw, part) && matches!(raw.get(part.len()), Some(0 | b'@'))
}

/// Iterator over a node's children; see [`Tree::children`].
pub(crate) enum Children<'t, 'a> {
    Indexed {
        tree: Tree<'t, 'a>,
        parent: usize,
        next: usize,
    },
    Walk(WalkChildren<'a>),
}

impl<'a> Iterator for Children<'_, 'a> {
    type Item = Node<'a>;

    fn next(&mut self) -> Option<Node<'a>> {
        match self {
            Children::Indexed { tree, parent, next } => {
                let entries = tree.entries()?;
                // The parent's subtree is contiguous: it ends at the first entry
                // whose parent comes before it.
                while let Some(e) = entries.get(*next) {
                    let i = *next;
                    *next += 1;
                    match usize::from(e.parent) {
                        p if p == *parent => return tree.indexed(i),
                        p if p < *parent => break,
                        _ => {}
                    }
                }
                *next = entries.len();
                None
            }
            Children::Walk(walk) => walk.next(),
        }
    }
}

/// Iterator over a node's children by walking its tokens.
pub(crate) struct WalkChildren<'a> {
    blocks: Blocks<'a>,
    at: usize,
    /// Nesting below the parent (0 = between the parent's children).
    depth: usize,
    done: bool,
}

impl<'a> Iterator for WalkChildren<'a> {
    type Item = Node<'a>;

    fn next(&mut self) -> Option<Node<'a>> {
        while !self.done {
            let Some((token, next)) = self.blocks.token(self.at) else {
                break;
            };
            let here = self.at;
            self.at = next;
            match token {
                Token::Begin => {
                    self.depth += 1;
                    if self.depth == 1 {
                        return Some(Node::walked(self.blocks, here, next));
                    }
                }
                Token::EndNode if self.depth == 0 => break,
                Token::EndNode => self.depth -= 1,
                Token::Prop { .. } | Token::Nop => {}
                Token::End => break,
            }
        }
        self.done = true;
        None
    }
}

/// A node with its ancestors: `[root, ..., parent, node]`.
#[derive(Clone, Copy)]
pub(crate) struct Lineage<'t, 'a> {
    tree: Tree<'t, 'a>,
    /// Each node's position in the index when the tree is indexed, else the
    /// offset of its FDT_BEGIN_NODE (both fit u32: trees are at most 2 MiB).
    ids: [u32; MAX_DEPTH],
    len: usize,
}

impl<'a> Lineage<'_, 'a> {
    /// The `i`th node from the root (0 = root).
    pub fn at(&self, i: usize) -> Option<Node<'a>> {
        if i >= self.len {
            return None;
        }
        let id = *self.ids.get(i)? as usize;
        match self.tree.entries() {
            Some(_) => self.tree.indexed(id),
            None => self.tree.blocks.node_at(id),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn node(&self) -> Option<Node<'a>> {
        self.at(self.len.checked_sub(1)?)
    }

    /// The lineage of the parent.
    pub fn up(&self) -> Option<Self> {
        let len = self.len.checked_sub(1).filter(|&l| l > 0)?;
        Some(Lineage { len, ..*self })
    }

    /// Path of the `i`th node ("/" for the root).
    pub fn path_to(&self, i: usize) -> NodePath {
        let mut path = NodePath::default();
        for j in 1..=i.min(self.len.saturating_sub(1)) {
            if let Some(n) = self.at(j) {
                path.push_component(n.name());
            }
        }
        path
    }

    /// Path of the node.
    pub fn path(&self) -> NodePath {
        self.path_to(self.len.saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::nul_and_ascii;

    /// The obvious byte-by-byte answer.
    fn slow(bytes: &[u8]) -> Option<(usize, bool)> {
        let len = bytes.iter().position(|&b| b == 0)?;
        Some((len, bytes[..len].is_ascii()))
    }

    #[test]
    fn nul_and_ascii_matches_a_byte_loop() {
        let alphabet = [0u8, 1, b'a', 0x7f, 0x80, 0xff, 0x01, 0xc3];
        // Every string of up to 6 bytes over the alphabet, at every start in a word.
        let mut buf = Vec::new();
        for len in 0..=6u32 {
            for n in 0..alphabet.len().pow(len) {
                buf.clear();
                let mut n = n;
                for _ in 0..len {
                    buf.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                for pad in 0..4 {
                    let mut b = vec![b'x'; pad];
                    b.extend_from_slice(&buf);
                    assert_eq!(nul_and_ascii(&b[pad..]), slow(&b[pad..]), "{:?}", &b[pad..]);
                }
            }
        }
    }
}
