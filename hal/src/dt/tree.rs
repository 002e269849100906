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

use super::error::NodePath;
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
    Begin { name: &'a str },
    EndNode,
    Prop { name_off: u32, value: &'a [u8] },
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
    BadToken {
        at,
        what,
        truncated,
    }
}

fn align4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

/// Read the token at `at`; returns it and the offset of the next token.
pub(crate) fn read_token(structs: &[u8], at: usize) -> Result<(Token<'_>, usize), BadToken> {
    if !at.is_multiple_of(4) {
        return Err(bad(at, "token is not 4-byte aligned", false));
    }
    if at >= structs.len() {
        return Err(bad(at, "structure block ends before FDT_END", true));
    }
    let tag = be32(structs, at)
        .ok_or_else(|| bad(at, "token runs past the end of the structure block", true))?;
    let body = at + 4;
    match tag {
        FDT_BEGIN_NODE => {
            let rest = structs.get(body..).unwrap_or_default();
            let len = rest.iter().position(|&b| b == 0).ok_or_else(|| {
                bad(
                    at,
                    "node name is not NUL-terminated within the structure block",
                    true,
                )
            })?;
            let name = core::str::from_utf8(rest.get(..len).unwrap_or_default())
                .map_err(|_| bad(at, "node name is not UTF-8", false))?;
            let next =
                align4(body + len + 1).ok_or_else(|| bad(at, "node name overflows", true))?;
            if next > structs.len() {
                return Err(bad(
                    at,
                    "node name padding runs past the end of the structure block",
                    true,
                ));
            }
            Ok((Token::Begin { name }, next))
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
                .ok_or_else(|| {
                    bad(
                        at,
                        "property value runs past the end of the structure block",
                        true,
                    )
                })?;
            let next = align4(start + value.len())
                .ok_or_else(|| bad(at, "property value overflows", true))?;
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
pub(crate) struct Tree<'a> {
    structs: &'a [u8],
    strings: &'a [u8],
}

impl<'a> Tree<'a> {
    pub fn new(structs: &'a [u8], strings: &'a [u8]) -> Self {
        Self { structs, strings }
    }

    fn token(&self, at: usize) -> Option<(Token<'a>, usize)> {
        read_token(self.structs, at).ok()
    }

    /// Whether the string at `off` in the strings block is exactly `name`.
    fn string_is(&self, off: u32, name: &str) -> bool {
        let start = off as usize;
        let end = start.saturating_add(name.len());
        self.strings.get(start..end) == Some(name.as_bytes()) && self.strings.get(end) == Some(&0)
    }

    /// The node whose FDT_BEGIN_NODE token is at `off`.
    pub fn node_at(&self, off: usize) -> Option<Node<'a>> {
        match self.token(off)? {
            (Token::Begin { name }, body) => Some(Node {
                tree: *self,
                off,
                name,
                body,
            }),
            _ => None,
        }
    }

    /// Every node in document order, with its depth (root = 0).
    pub fn nodes(&self) -> Nodes<'a> {
        Nodes {
            tree: *self,
            at: 0,
            depth: 0,
            done: false,
        }
    }

    pub fn root(&self) -> Option<Node<'a>> {
        self.nodes().next().map(|(n, _)| n)
    }

    /// Look up an absolute path; a component without `@unit` matches the first node with that base name.
    pub fn find_path(&self, path: &str) -> Option<Node<'a>> {
        let rest = path.strip_prefix('/')?;
        self.root()?.descend(rest)
    }

    /// The node with this `phandle` (or legacy `linux,phandle`).
    pub fn find_phandle(&self, phandle: u32) -> Option<Node<'a>> {
        if phandle == 0 || phandle == u32::MAX {
            return None;
        }
        self.nodes()
            .map(|(n, _)| n)
            .find(|n| n.phandle() == Some(phandle))
    }

    /// The chain of nodes from the root down to `node`.
    pub fn lineage(&self, node: &Node<'a>) -> Option<Lineage<'a>> {
        let mut lin = Lineage {
            tree: *self,
            offs: [0; MAX_DEPTH],
            len: 0,
        };
        for (n, depth) in self.nodes() {
            *lin.offs.get_mut(depth)? = u32::try_from(n.off).ok()?;
            if n.off == node.off {
                lin.len = depth + 1;
                return Some(lin);
            }
        }
        None
    }
}

/// Iterator over all nodes; see [`Tree::nodes`].
pub(crate) struct Nodes<'a> {
    tree: Tree<'a>,
    at: usize,
    depth: usize,
    done: bool,
}

impl<'a> Iterator for Nodes<'a> {
    type Item = (Node<'a>, usize);

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let Some((token, next)) = self.tree.token(self.at) else {
                break;
            };
            let here = self.at;
            self.at = next;
            match token {
                Token::Begin { name } => {
                    let depth = self.depth;
                    self.depth += 1;
                    return Some((
                        Node {
                            tree: self.tree,
                            off: here,
                            name,
                            body: next,
                        },
                        depth,
                    ));
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

/// A node of the tree (a cheap handle: offsets into the blob).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node<'a> {
    tree: Tree<'a>,
    /// Offset of its FDT_BEGIN_NODE token in the structure block (identifies the node).
    pub off: usize,
    /// Name with unit address ("" for the root).
    pub name: &'a str,
    /// Offset of the first token after the name.
    body: usize,
}

impl<'a> Node<'a> {
    /// Name without the unit address.
    pub fn base_name(&self) -> &'a str {
        self.name.split('@').next().unwrap_or_default()
    }

    /// Value of the property `name` (NOPs between properties skipped).
    pub fn prop(&self, name: &str) -> Option<&'a [u8]> {
        // Compare the raw name bytes: cheaper than resolving every name to a `str`.
        let mut at = self.body;
        loop {
            let (token, next) = self.tree.token(at)?;
            at = next;
            match token {
                Token::Nop => {}
                Token::Prop { name_off, value } if self.tree.string_is(name_off, name) => {
                    return Some(value)
                }
                Token::Prop { .. } => {}
                _ => return None,
            }
        }
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

    /// The first of the node's `compatible` strings that is in `wanted`.
    pub fn compatible_with(&self, wanted: &[&str]) -> Option<&'a str> {
        self.strings("compatible").find(|c| wanted.contains(c))
    }

    /// `status` absent, "okay" or "ok".
    pub fn is_enabled(&self) -> bool {
        match self.prop("status") {
            None => true,
            Some(_) => matches!(self.str("status"), Some("okay" | "ok")),
        }
    }

    pub fn phandle(&self) -> Option<u32> {
        self.u32("phandle").or_else(|| self.u32("linux,phandle"))
    }

    /// Direct children, NOPs skipped.
    pub fn children(&self) -> Children<'a> {
        Children {
            tree: self.tree,
            at: self.body,
            depth: 0,
            done: false,
        }
    }

    /// Follow a relative path ("soc/serial@7e201000") down from this node.
    pub fn descend(&self, rel: &str) -> Option<Node<'a>> {
        let mut node = *self;
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            let exact = node.children().find(|c| c.name == part);
            node = match exact {
                Some(c) => c,
                None if !part.contains('@') => node.children().find(|c| c.base_name() == part)?,
                None => return None,
            };
        }
        Some(node)
    }
}

/// Iterator over a node's children.
pub(crate) struct Children<'a> {
    tree: Tree<'a>,
    at: usize,
    /// Nesting below the parent (0 = between the parent's children).
    depth: usize,
    done: bool,
}

impl<'a> Iterator for Children<'a> {
    type Item = Node<'a>;

    fn next(&mut self) -> Option<Node<'a>> {
        while !self.done {
            let Some((token, next)) = self.tree.token(self.at) else {
                break;
            };
            let here = self.at;
            self.at = next;
            match token {
                Token::Begin { name } => {
                    self.depth += 1;
                    if self.depth == 1 {
                        return Some(Node {
                            tree: self.tree,
                            off: here,
                            name,
                            body: next,
                        });
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
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lineage<'a> {
    tree: Tree<'a>,
    offs: [u32; MAX_DEPTH],
    len: usize,
}

impl<'a> Lineage<'a> {
    /// The `i`th node from the root (0 = root).
    pub fn at(&self, i: usize) -> Option<Node<'a>> {
        if i >= self.len {
            return None;
        }
        self.tree.node_at(*self.offs.get(i)? as usize)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn node(&self) -> Option<Node<'a>> {
        self.at(self.len.checked_sub(1)?)
    }

    /// The lineage of the parent.
    pub fn up(&self) -> Option<Lineage<'a>> {
        let len = self.len.checked_sub(1).filter(|&l| l > 0)?;
        Some(Lineage { len, ..*self })
    }

    /// Path of the `i`th node ("/" for the root).
    pub fn path_to(&self, i: usize) -> NodePath {
        let mut path = NodePath::default();
        for j in 1..=i.min(self.len.saturating_sub(1)) {
            if let Some(n) = self.at(j) {
                path.push_component(n.name);
            }
        }
        path
    }

    /// Path of the node.
    pub fn path(&self) -> NodePath {
        self.path_to(self.len.saturating_sub(1))
    }
}
