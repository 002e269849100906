//! A tiny flattened-device-tree (DTB) reader/writer, just enough to make broken
//! variants of a good tree for the boot tests: remove a node, overwrite a node
//! with `FDT_NOP` tokens in place, change a property, truncate, corrupt the magic.
//!
//! This is deliberately independent of `hal::dt` (the code under test).

use std::ops::Range;

const MAGIC: u32 = 0xd00d_feed;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;
const HEADER_LEN: usize = 40;

/// One node: name (with unit address), properties in order, children in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub props: Vec<(String, Vec<u8>)>,
    pub children: Vec<Node>,
    /// Byte range of the node (BEGIN_NODE .. after END_NODE) in the blob it was
    /// parsed from; empty for nodes built in memory.
    pub span: Range<usize>,
}

/// A whole tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fdt {
    pub boot_cpuid_phys: u32,
    pub reserved: Vec<(u64, u64)>,
    pub root: Node,
}

/// How the editing functions pick nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// Absolute path; each component matches a node name exactly or the part
    /// before `@` (so `/memory` matches `/memory@40000000`).
    Path(&'static str),
    /// Any node whose `compatible` list contains one of these strings.
    Compatible(&'static [&'static str]),
    /// Any node with this `device_type` (e.g. "memory").
    DeviceType(&'static str),
}

fn be32(b: &[u8], off: usize) -> Result<u32, String> {
    b.get(off..off + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| format!("truncated at offset {off:#x}"))
}

fn be64(b: &[u8], off: usize) -> Result<u64, String> {
    Ok(((be32(b, off)? as u64) << 32) | be32(b, off + 4)? as u64)
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn cstr(b: &[u8], off: usize) -> Result<(String, usize), String> {
    let rest = b.get(off..).ok_or("string out of range")?;
    let len = rest.iter().position(|&c| c == 0).ok_or("unterminated string")?;
    Ok((String::from_utf8_lossy(&rest[..len]).into_owned(), len))
}

impl Node {
    pub fn new(name: &str) -> Node {
        Node {
            name: name.to_string(),
            props: Vec::new(),
            children: Vec::new(),
            span: 0..0,
        }
    }

    pub fn prop(&self, name: &str) -> Option<&[u8]> {
        self.props.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    /// The property as a list of NUL-separated strings.
    pub fn strings(&self, name: &str) -> Vec<String> {
        self.prop(name)
            .map(|v| {
                v.split(|&c| c == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn set_prop(&mut self, name: &str, value: Vec<u8>) {
        match self.props.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.props.push((name.to_string(), value)),
        }
    }

    fn name_matches(&self, want: &str) -> bool {
        self.name == want || self.name.split('@').next() == Some(want)
    }

    fn matches_local(&self, sel: &Select) -> bool {
        match sel {
            Select::Path(_) => false,
            Select::Compatible(list) => self.strings("compatible").iter().any(|c| list.contains(&c.as_str())),
            Select::DeviceType(t) => self.strings("device_type").iter().any(|c| c == t),
        }
    }
}

impl Select {
    fn components(path: &str) -> Vec<&str> {
        path.split('/').filter(|c| !c.is_empty()).collect()
    }
}

impl Fdt {
    /// Parses a DTB. Errors (as text) on anything malformed.
    pub fn parse(b: &[u8]) -> Result<Fdt, String> {
        if be32(b, 0)? != MAGIC {
            return Err("bad magic".into());
        }
        let total = be32(b, 4)? as usize;
        if total > b.len() {
            return Err(format!("totalsize {total} > {} bytes", b.len()));
        }
        let off_struct = be32(b, 8)? as usize;
        let off_strings = be32(b, 12)? as usize;
        let off_rsv = be32(b, 16)? as usize;
        let boot_cpuid_phys = be32(b, 28)?;
        let size_strings = be32(b, 32)? as usize;
        let strings = b
            .get(off_strings..off_strings + size_strings)
            .ok_or("strings block out of range")?;

        let mut reserved = Vec::new();
        let mut off = off_rsv;
        loop {
            let (addr, size) = (be64(b, off)?, be64(b, off + 8)?);
            off += 16;
            if addr == 0 && size == 0 {
                break;
            }
            reserved.push((addr, size));
        }

        let mut off = off_struct;
        let mut stack: Vec<Node> = Vec::new();
        let mut root = None;
        loop {
            let tok_off = off;
            let tok = be32(b, off)?;
            off += 4;
            match tok {
                BEGIN_NODE => {
                    if root.is_some() {
                        return Err("node after the root ended".into());
                    }
                    let (name, len) = cstr(b, off)?;
                    off = align4(off + len + 1);
                    let mut node = Node::new(&name);
                    node.span = tok_off..tok_off;
                    stack.push(node);
                }
                END_NODE => {
                    let mut node = stack.pop().ok_or("END_NODE without node")?;
                    node.span.end = off;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None => root = Some(node),
                    }
                }
                PROP => {
                    let len = be32(b, off)? as usize;
                    let nameoff = be32(b, off + 4)? as usize;
                    off += 8;
                    let value = b.get(off..off + len).ok_or("property value out of range")?.to_vec();
                    off = align4(off + len);
                    let (name, _) = cstr(strings, nameoff)?;
                    stack
                        .last_mut()
                        .ok_or("property outside a node")?
                        .props
                        .push((name, value));
                }
                NOP => {}
                END => break,
                other => return Err(format!("bad token {other:#x} at {tok_off:#x}")),
            }
        }
        if !stack.is_empty() {
            return Err("unterminated node".into());
        }
        Ok(Fdt {
            boot_cpuid_phys,
            reserved,
            root: root.ok_or("no root node")?,
        })
    }

    /// Serialises compactly (version 17), with a fresh strings table.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut strings: Vec<u8> = Vec::new();
        let mut st = Vec::new();
        fn put(out: &mut Vec<u8>, v: u32) {
            out.extend_from_slice(&v.to_be_bytes());
        }
        fn pad(out: &mut Vec<u8>) {
            while !out.len().is_multiple_of(4) {
                out.push(0);
            }
        }
        fn walk(n: &Node, st: &mut Vec<u8>, strings: &mut Vec<u8>) {
            put(st, BEGIN_NODE);
            st.extend_from_slice(n.name.as_bytes());
            st.push(0);
            pad(st);
            for (name, value) in &n.props {
                let nameoff = find_or_add(strings, name);
                put(st, PROP);
                put(st, value.len() as u32);
                put(st, nameoff as u32);
                st.extend_from_slice(value);
                pad(st);
            }
            for c in &n.children {
                walk(c, st, strings);
            }
            put(st, END_NODE);
        }
        fn find_or_add(strings: &mut Vec<u8>, name: &str) -> usize {
            let mut i = 0;
            while i < strings.len() {
                let end = i + strings[i..].iter().position(|&c| c == 0).unwrap();
                if &strings[i..end] == name.as_bytes() {
                    return i;
                }
                i = end + 1;
            }
            let off = strings.len();
            strings.extend_from_slice(name.as_bytes());
            strings.push(0);
            off
        }
        walk(&self.root, &mut st, &mut strings);
        put(&mut st, END);

        let off_rsv = HEADER_LEN.next_multiple_of(8);
        let off_struct = off_rsv + 16 * (self.reserved.len() + 1);
        let off_strings = off_struct + st.len();
        let total = off_strings + strings.len();
        let mut out = Vec::with_capacity(total);
        for v in [
            MAGIC,
            total as u32,
            off_struct as u32,
            off_strings as u32,
            off_rsv as u32,
            17,
            16,
            self.boot_cpuid_phys,
            strings.len() as u32,
            st.len() as u32,
        ] {
            put(&mut out, v);
        }
        out.resize(off_rsv, 0);
        for &(a, s) in self.reserved.iter().chain(std::iter::once(&(0, 0))) {
            out.extend_from_slice(&a.to_be_bytes());
            out.extend_from_slice(&s.to_be_bytes());
        }
        out.extend_from_slice(&st);
        out.extend_from_slice(&strings);
        out
    }

    /// Paths (as child-index lists) of all nodes matching `sel`.
    fn select(&self, sel: &Select) -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        match sel {
            Select::Path(p) => {
                let comps = Select::components(p);
                let mut node = &self.root;
                let mut idx = Vec::new();
                for c in comps {
                    match node.children.iter().position(|ch| ch.name_matches(c)) {
                        Some(i) => {
                            idx.push(i);
                            node = &node.children[i];
                        }
                        None => return out,
                    }
                }
                out.push(idx);
            }
            _ => {
                fn walk(n: &Node, sel: &Select, path: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
                    if n.matches_local(sel) {
                        out.push(path.clone());
                        return;
                    }
                    for (i, c) in n.children.iter().enumerate() {
                        path.push(i);
                        walk(c, sel, path, out);
                        path.pop();
                    }
                }
                walk(&self.root, sel, &mut Vec::new(), &mut out);
            }
        }
        out
    }

    fn node_at(&self, idx: &[usize]) -> &Node {
        idx.iter().fold(&self.root, |n, &i| &n.children[i])
    }

    pub fn find(&self, sel: Select) -> Option<&Node> {
        self.select(&sel).first().map(|i| self.node_at(i))
    }

    /// Removes every node matching `sel`; returns how many were removed.
    pub fn remove(&mut self, sel: Select) -> usize {
        let mut found = self.select(&sel);
        // Remove deepest/last first so earlier indices stay valid.
        found.sort();
        found.reverse();
        let n = found.len();
        for idx in found {
            let Some((&last, parent)) = idx.split_last() else {
                continue; // never remove the root
            };
            let mut node = &mut self.root;
            for &i in parent {
                node = &mut node.children[i];
            }
            node.children.remove(last);
        }
        n
    }

    /// Sets a property on the node at `path` (which must exist).
    pub fn set_prop(&mut self, path: &'static str, name: &str, value: Vec<u8>) -> Result<(), String> {
        let idx = self
            .select(&Select::Path(path))
            .pop()
            .ok_or_else(|| format!("no node {path}"))?;
        let mut node = &mut self.root;
        for i in idx {
            node = &mut node.children[i];
        }
        node.set_prop(name, value);
        Ok(())
    }
}

/// Overwrites, in place, every node of `blob` matching `sel` with FDT_NOP
/// tokens (offsets and sizes unchanged). Returns the count of nodes.
pub fn nop_nodes(blob: &mut [u8], sel: Select) -> Result<usize, String> {
    let tree = Fdt::parse(blob)?;
    let spans: Vec<Range<usize>> = tree
        .select(&sel)
        .iter()
        .filter(|i| !i.is_empty())
        .map(|i| tree.node_at(i).span.clone())
        .collect();
    for span in &spans {
        for off in span.clone().step_by(4) {
            blob[off..off + 4].copy_from_slice(&NOP.to_be_bytes());
        }
    }
    Ok(spans.len())
}

/// Big-endian cells, for property values.
pub fn cells(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|c| c.to_be_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Fdt {
        let mut root = Node::new("");
        root.set_prop("#address-cells", cells(&[2]));
        root.set_prop("#size-cells", cells(&[2]));
        let mut cpus = Node::new("cpus");
        cpus.set_prop("#address-cells", cells(&[1]));
        let mut cpu0 = Node::new("cpu@0");
        cpu0.set_prop("device_type", b"cpu\0".to_vec());
        cpus.children.push(cpu0);
        let mut mem = Node::new("memory@40000000");
        mem.set_prop("device_type", b"memory\0".to_vec());
        mem.set_prop("reg", cells(&[0, 0x4000_0000, 0, 0x0800_0000]));
        let mut gic = Node::new("intc@8000000");
        gic.set_prop("compatible", b"arm,gic-v3\0".to_vec());
        let mut uart = Node::new("pl011@9000000");
        uart.set_prop("compatible", b"arm,pl011\0arm,primecell\0".to_vec());
        root.children = vec![cpus, mem, gic, uart];
        Fdt {
            boot_cpuid_phys: 0,
            reserved: vec![(0x1000, 0x2000)],
            root,
        }
    }

    #[test]
    fn roundtrip() {
        let t = sample();
        let bytes = t.to_bytes();
        let mut back = Fdt::parse(&bytes).unwrap();
        // spans differ; compare after clearing
        fn clear(n: &mut Node) {
            n.span = 0..0;
            n.children.iter_mut().for_each(clear);
        }
        clear(&mut back.root);
        assert_eq!(back, t);
        assert_eq!(bytes.len(), be32(&bytes, 4).unwrap() as usize);
    }

    #[test]
    fn remove_by_path_and_compatible() {
        let mut t = sample();
        assert_eq!(t.remove(Select::Path("/memory")), 1);
        assert!(t.find(Select::DeviceType("memory")).is_none());
        assert_eq!(t.remove(Select::Compatible(&["arm,cortex-a15-gic", "arm,gic-v3"])), 1);
        assert_eq!(t.remove(Select::Compatible(&["arm,primecell"])), 1);
        assert_eq!(t.remove(Select::Path("/nothing")), 0);
        let names: Vec<_> = t.root.children.iter().map(|c| c.name.clone()).collect();
        assert_eq!(names, ["cpus"]);
        // Still serialises to a valid tree.
        Fdt::parse(&t.to_bytes()).unwrap();
    }

    #[test]
    fn nop_in_place_keeps_size_and_hides_node() {
        let mut bytes = sample().to_bytes();
        let len = bytes.len();
        assert_eq!(nop_nodes(&mut bytes, Select::Path("/cpus")).unwrap(), 1);
        assert_eq!(bytes.len(), len);
        let t = Fdt::parse(&bytes).unwrap();
        assert!(t.find(Select::Path("/cpus")).is_none());
        assert!(t.find(Select::Path("/memory")).is_some());
        assert!(bytes.windows(4).any(|w| w == NOP.to_be_bytes()));
    }

    #[test]
    fn set_prop_and_strings() {
        let mut t = sample();
        t.set_prop("/", "#address-cells", cells(&[1])).unwrap();
        assert_eq!(t.root.prop("#address-cells").unwrap(), &cells(&[1])[..]);
        let uart = t.find(Select::Path("/pl011")).unwrap();
        assert_eq!(uart.strings("compatible"), ["arm,pl011", "arm,primecell"]);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Fdt::parse(b"").is_err());
        assert!(Fdt::parse(&[0u8; 64]).is_err());
        let bytes = sample().to_bytes();
        assert!(Fdt::parse(&bytes[..bytes.len() / 2]).is_err());
    }
}
