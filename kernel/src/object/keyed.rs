//! A list of records found by key in O(log n): a [`ChunkList`] (indices stay
//! dense: a removal moves the last record into the gap) with a balanced
//! search tree (AVL) threaded through the records by index, so that neither
//! an insertion nor a removal nor a lookup allocates beyond the list's
//! chunk or takes more than a walk from the root.
//!
//! A task's mappings are kept in one, by address (`Unmap` finds its
//! mapping by address).

use super::chunks::{ChunkList, ChunksFull};
use alloc::string::String;

/// A record's key; no two records of a list have the same one.
pub trait Keyed {
    fn key(&self) -> u64;
}

/// No node (an empty subtree).
const NIL: u32 = u32::MAX;

/// A record and its links in the tree.
struct Node<T> {
    value: T,
    left: u32,
    right: u32,
    /// Of its subtree (a leaf: 1).
    height: u8,
}

/// Records with distinct keys, at dense indices, found by key.
pub struct KeyedList<T> {
    nodes: ChunkList<Node<T>>,
    root: u32,
    /// No tree: the list is being emptied for good
    /// ([`KeyedList::drop_order`]).
    unordered: bool,
}

impl<T: Keyed> KeyedList<T> {
    /// Bytes to charge per record ([`ChunkList::ENTRY_COST`] of its node).
    pub const ENTRY_COST: u64 = ChunkList::<Node<T>>::ENTRY_COST;

    pub const fn new() -> Self {
        KeyedList {
            nodes: ChunkList::new(),
            root: NIL,
            unordered: false,
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&T> {
        self.nodes.get(i).map(|n| &n.value)
    }

    /// The record at `i`, to change (not its key: the tree is ordered by
    /// it).
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.nodes.get_mut(i).map(|n| &mut n.value)
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.nodes.iter().map(|n| &n.value)
    }

    /// Index of the record with key `key`: a walk from the root, O(log n).
    pub fn find(&self, key: u64) -> Option<usize> {
        let mut n = self.root;
        while n != NIL {
            let node = &self.nodes[n as usize];
            let k = node.value.key();
            if key == k {
                return Some(n as usize);
            }
            n = if key < k { node.left } else { node.right };
        }
        None
    }

    /// Room for one more record ([`ChunkList::reserve`]).
    pub fn reserve(&mut self) -> Result<(), ChunksFull> {
        if self.nodes.len() >= NIL as usize {
            return Err(ChunksFull);
        }
        self.nodes.reserve()
    }

    /// Give back room reserved and not used.
    pub fn trim(&mut self) {
        self.nodes.trim();
    }

    /// Add `value` (whose key no record has): its index. Fails, giving it
    /// back, without room ([`KeyedList::reserve`] first to be sure of it).
    pub fn insert(&mut self, value: T) -> Result<usize, T> {
        let key = value.key();
        debug_assert!(self.find(key).is_none(), "keys are distinct");
        let node = Node {
            value,
            left: NIL,
            right: NIL,
            height: 1,
        };
        let i = match self.nodes.push(node) {
            Ok(i) => i,
            Err(node) => return Err(node.value),
        };
        if !self.unordered {
            self.link(i as u32, key);
        }
        Ok(i)
    }

    /// Whether it keeps its tree ([`KeyedList::drop_order`]).
    pub fn is_ordered(&self) -> bool {
        !self.unordered
    }

    /// Drop the tree, for a list about to be emptied for good (a task's
    /// teardown): its records go without the tree's work (about 2,000
    /// instructions each), and none is found by key from now on, until it
    /// is empty.
    pub fn drop_order(&mut self) {
        self.root = NIL;
        self.unordered = !self.nodes.is_empty();
    }

    /// Remove record `i`; the last record takes its index.
    pub fn swap_remove(&mut self, i: usize) -> Option<T> {
        let key = self.nodes.get(i)?.value.key();
        if self.unordered {
            let value = self.nodes.swap_remove(i).map(|n| n.value);
            self.unordered = !self.nodes.is_empty();
            return value;
        }
        self.unlink(key);
        let last = self.nodes.len() - 1;
        if i != last {
            // Whoever links to the last record links to `i`, where it goes.
            let (moved, last, i) = (self.nodes[last].value.key(), last as u32, i as u32);
            if self.root == last {
                self.root = i;
            } else {
                let mut parent = self.root as usize;
                loop {
                    let node = &mut self.nodes[parent];
                    let link = if moved < node.value.key() {
                        &mut node.left
                    } else {
                        &mut node.right
                    };
                    if *link == last {
                        *link = i;
                        break;
                    }
                    parent = *link as usize;
                }
            }
        }
        self.nodes.swap_remove(i).map(|n| n.value)
    }

    /// Put node `new` (key `key`, no children) in the tree: a walk down
    /// from the root, then back up its path while the subtrees' heights
    /// grow (a rotation, or a height that stays, ends it).
    fn link(&mut self, new: u32, key: u64) {
        let mut path = Path::new();
        let mut n = self.root;
        while n != NIL {
            let node = &self.nodes[n as usize];
            let left = key < node.value.key();
            path.push(n, left);
            n = if left { node.left } else { node.right };
        }
        self.fix_path(path, new, true);
    }

    /// Take the node of key `key` out of the tree (if there): its
    /// successor takes its place, and the path back up is rebalanced while
    /// the subtrees' heights shrink.
    fn unlink(&mut self, key: u64) {
        let mut path = Path::new();
        let mut n = self.root;
        loop {
            if n == NIL {
                return;
            }
            let node = &self.nodes[n as usize];
            let k = node.value.key();
            if k == key {
                break;
            }
            let left = key < k;
            path.push(n, left);
            n = if left { node.left } else { node.right };
        }
        let (left, right, height) = {
            let node = &self.nodes[n as usize];
            (node.left, node.right, node.height)
        };
        if right == NIL {
            // Its left subtree takes its place.
            self.fix_path(path, left, false);
            return;
        }
        // Its successor (the first of its right subtree) takes its place,
        // with its links and height; the successor's right subtree takes
        // the successor's.
        let at = path.len();
        path.push(n, false);
        let mut next = right;
        loop {
            let first = self.nodes[next as usize].left;
            if first == NIL {
                break;
            }
            path.push(next, true);
            next = first;
        }
        let rest = self.nodes[next as usize].right;
        let node = &mut self.nodes[next as usize];
        node.left = left;
        if next != right {
            node.right = right;
        }
        node.height = height;
        path.set(at, next);
        // Its parent links to it now (the walk back up may stop below).
        match at.checked_sub(1).map(|p| path.get(p)) {
            None => self.root = next,
            Some((p, true)) => self.nodes[p as usize].left = next,
            Some((p, false)) => self.nodes[p as usize].right = next,
        }
        self.fix_path(path, rest, false);
    }

    /// Back up `path` from its end: each node on it links to `child` on
    /// the side the path went (the subtree below, changed), and is
    /// rebalanced while the subtree below `grew` (an insertion) or shrank
    /// (a removal), which stops at the first node whose height stays.
    fn fix_path(&mut self, mut path: Path, mut child: u32, grew: bool) {
        let mut changed = true;
        while let Some((p, left)) = path.pop() {
            let l = &mut self.nodes;
            let node = &mut l[p as usize];
            if left {
                node.left = child;
            } else {
                node.right = child;
            }
            if !changed {
                return;
            }
            let before = node.height;
            child = rebalance(l, p);
            let after = l[child as usize].height;
            changed = if grew { after > before } else { after < before };
        }
        self.root = child;
    }

    /// Bytes it holds ([`ChunkList::bytes`]).
    pub fn bytes(&self) -> usize {
        self.nodes.bytes()
    }

    /// The tree is whole and balanced: every record in it once, in order of
    /// key, each node's height right (the kernel's self-check).
    pub fn check(&self) -> Result<(), String> {
        if self.unordered {
            return match self.root {
                NIL => Ok(()),
                _ => Err(String::from("a tree in a list being emptied")),
            };
        }
        let mut seen = 0;
        let mut previous = None;
        check(&self.nodes, self.root, &mut seen, &mut previous, 0)?;
        if seen != self.nodes.len() {
            return Err(alloc::format!("{seen} of {} records in the tree", self.nodes.len()));
        }
        Ok(())
    }
}

impl<T: Keyed> Default for KeyedList<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[inline(always)]
fn height<T>(l: &ChunkList<Node<T>>, n: u32) -> u8 {
    if n == NIL {
        0
    } else {
        l[n as usize].height
    }
}

#[inline(always)]
fn update<T>(l: &mut ChunkList<Node<T>>, n: u32) {
    let h = height(l, l[n as usize].left).max(height(l, l[n as usize].right)) + 1;
    l[n as usize].height = h;
}

fn rotate_right<T>(l: &mut ChunkList<Node<T>>, n: u32) -> u32 {
    let x = l[n as usize].left;
    l[n as usize].left = l[x as usize].right;
    l[x as usize].right = n;
    update(l, n);
    update(l, x);
    x
}

fn rotate_left<T>(l: &mut ChunkList<Node<T>>, n: u32) -> u32 {
    let x = l[n as usize].right;
    l[n as usize].right = l[x as usize].left;
    l[x as usize].left = n;
    update(l, n);
    update(l, x);
    x
}

/// Subtree `n` balanced again (its children's heights differ by at most
/// 2): its new root.
fn rebalance<T>(l: &mut ChunkList<Node<T>>, n: u32) -> u32 {
    let (left, right) = (l[n as usize].left, l[n as usize].right);
    let (hl, hr) = (height(l, left), height(l, right));
    if hl > hr + 1 {
        if height(l, l[left as usize].right) > height(l, l[left as usize].left) {
            l[n as usize].left = rotate_left(l, left);
        }
        return rotate_right(l, n);
    }
    if hr > hl + 1 {
        if height(l, l[right as usize].left) > height(l, l[right as usize].right) {
            l[n as usize].right = rotate_right(l, right);
        }
        return rotate_left(l, n);
    }
    update(l, n);
    n
}

/// Most nodes on a walk from the root: an AVL tree of n nodes is at
/// most 1.44 log2(n + 2) high, 46 for 2^32 (a list holds fewer).
const MAX_DEPTH: usize = 48;

/// The nodes of a walk down the tree, each with the side it went.
struct Path {
    nodes: [u32; MAX_DEPTH],
    /// Bit `i`: the walk went left at `nodes[i]`.
    left: u64,
    len: usize,
}

impl Path {
    fn new() -> Self {
        Path {
            nodes: [NIL; MAX_DEPTH],
            left: 0,
            len: 0,
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    fn push(&mut self, n: u32, left: bool) {
        // (A balanced tree is never deeper: the self-check verifies it.)
        self.nodes[self.len] = n;
        self.left = (self.left & !(1 << self.len)) | ((left as u64) << self.len);
        self.len += 1;
    }

    fn set(&mut self, at: usize, n: u32) {
        self.nodes[at] = n;
    }

    fn get(&self, at: usize) -> (u32, bool) {
        (self.nodes[at], (self.left >> at) & 1 != 0)
    }

    #[inline(always)]
    fn pop(&mut self) -> Option<(u32, bool)> {
        self.len = self.len.checked_sub(1)?;
        Some((self.nodes[self.len], (self.left >> self.len) & 1 != 0))
    }
}

/// Check subtree `n` (at `depth`): its height.
fn check<T: Keyed>(
    l: &ChunkList<Node<T>>,
    n: u32,
    seen: &mut usize,
    previous: &mut Option<u64>,
    depth: usize,
) -> Result<u8, String> {
    if n == NIL {
        return Ok(0);
    }
    let node = l
        .get(n as usize)
        .ok_or_else(|| alloc::format!("link to record {n} beyond the list"))?;
    if depth > 64 {
        return Err(String::from("the tree is deeper than 64 (a cycle?)"));
    }
    let hl = check(l, node.left, seen, previous, depth + 1)?;
    let key = node.value.key();
    if previous.is_some_and(|p| p >= key) {
        return Err(alloc::format!("key {key:#x} out of order"));
    }
    *previous = Some(key);
    *seen += 1;
    let hr = check(l, node.right, seen, previous, depth + 1)?;
    if hl.abs_diff(hr) > 1 || node.height != hl.max(hr) + 1 {
        return Err(alloc::format!(
            "record {n}: height {}, children {hl} and {hr}",
            node.height
        ));
    }
    Ok(node.height)
}

impl<T: Keyed> core::ops::Index<usize> for KeyedList<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        &self.nodes[i].value
    }
}

/// The record at `i`, to change (not its key: see [`KeyedList::get_mut`]).
impl<T: Keyed> core::ops::IndexMut<usize> for KeyedList<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.nodes[i].value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[derive(Debug, PartialEq, Clone, Copy)]
    struct R(u64, u32);

    impl Keyed for R {
        fn key(&self) -> u64 {
            self.0
        }
    }

    /// A small deterministic generator (xorshift).
    fn next(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn finds_inserts_and_removes_in_any_order() {
        let mut l = KeyedList::new();
        let mut model: Vec<u64> = Vec::new();
        let mut seed = 0x1234_5678;
        for round in 0..20_000u32 {
            let r = next(&mut seed);
            if !r.is_multiple_of(3) || model.is_empty() {
                let key = (next(&mut seed) % 50_000) << 12;
                if model.contains(&key) {
                    assert!(l.find(key).is_some());
                    continue;
                }
                let i = l.insert(R(key, round)).unwrap();
                assert_eq!(l.get(i).map(|r| r.0), Some(key));
                model.push(key);
            } else {
                let key = model.swap_remove((r as usize / 3) % model.len());
                let i = l.find(key).expect("present");
                assert_eq!(l.swap_remove(i).map(|r| r.0), Some(key));
                assert_eq!(l.find(key), None);
            }
            if round % 1000 == 0 {
                l.check().unwrap();
            }
        }
        l.check().unwrap();
        assert_eq!(l.len(), model.len());
        for key in &model {
            let i = l.find(*key).unwrap();
            assert_eq!(l.get(i).unwrap().0, *key);
        }
        // Emptied from the front (the last moves into each gap).
        while !l.is_empty() {
            l.swap_remove(0);
        }
        l.check().unwrap();
        assert_eq!(l.find(model[0]), None);
    }

    #[test]
    fn a_list_emptied_for_good_drops_its_tree() {
        let mut l = KeyedList::new();
        for i in 0..100u64 {
            l.insert(R(i << 12, 0)).unwrap();
        }
        l.drop_order();
        l.check().unwrap();
        assert_eq!(l.find(5 << 12), None);
        l.swap_remove(3);
        assert_eq!(l.len(), 99);
        while !l.is_empty() {
            l.swap_remove(l.len() - 1);
        }
        // Empty: ordered again.
        l.insert(R(7, 0)).unwrap();
        assert_eq!(l.find(7), Some(0));
        l.check().unwrap();
    }

    /// Ascending keys (a task mapping page after page) keep the tree
    /// balanced: a lookup walks at most 1.44 log2(n) nodes.
    #[test]
    fn ascending_keys_stay_balanced() {
        let mut l = KeyedList::new();
        for i in 0..16_384u64 {
            l.insert(R(i << 12, 0)).unwrap();
        }
        l.check().unwrap();
        assert!(height(&l.nodes, l.root) <= 20);
        for i in (0..16_384u64).step_by(2) {
            let at = l.find(i << 12).unwrap();
            l.swap_remove(at);
        }
        l.check().unwrap();
        assert!(height(&l.nodes, l.root) <= 19);
        assert_eq!(l.find(2 << 12), None);
        assert!(l.find(3 << 12).is_some());
    }

    /// Every removal from trees of up to 36 records (the root's too, whose
    /// successor takes its place) leaves the tree whole.
    #[test]
    fn every_removal_from_small_trees() {
        for n in 1..37u64 {
            for gone in 0..n {
                let mut l = KeyedList::new();
                for k in 0..n {
                    // 37 is prime: the keys are 0..n in a mixed order.
                    l.insert(R(k * 37 % n, 0)).unwrap();
                }
                let i = l.find(gone).unwrap();
                assert_eq!(l.swap_remove(i).map(|r| r.0), Some(gone));
                l.check().unwrap_or_else(|e| panic!("{n} records, {gone} removed: {e}"));
                assert!((0..n).all(|k| (k == gone) == l.find(k).is_none()));
            }
        }
    }

    /// Random insertions and removals among few keys (so that removals
    /// are many), the tree checked after each.
    #[test]
    fn checked_after_every_change() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for range in [8u64, 64, 500] {
            let mut l = KeyedList::new();
            let mut model: Vec<u64> = Vec::new();
            for round in 0..30_000u32 {
                let insert = next(&mut seed).is_multiple_of(2);
                let key = next(&mut seed) % range;
                match model.iter().position(|k| *k == key) {
                    None if insert => {
                        l.insert(R(key, round)).unwrap();
                        model.push(key);
                    }
                    Some(p) if !insert => {
                        model.swap_remove(p);
                        let i = l.find(key).unwrap();
                        assert_eq!(l.swap_remove(i).map(|r| r.0), Some(key));
                    }
                    _ => assert_eq!(l.find(key).is_some(), model.contains(&key)),
                }
                l.check().unwrap();
                assert_eq!(l.len(), model.len());
            }
        }
    }
}
