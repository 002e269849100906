//! Capabilities: per-task capability spaces and the derivation tree.
//!
//! A task names a capability by [`Handle`] (slot index + generation) in its
//! own [`CSpace`], so it can neither forge nor reach another task's
//! capabilities, and a deleted slot's old handle stays invalid. Every
//! capability made from another (copy, mint, transfer) is its child in the
//! derivation tree; `revoke` deletes all descendants, in every task, along
//! with the memory mappings made through them.

use crate::object::chunks::ChunkList;
use crate::object::slab::{list_cost, FIRST_BLOCK};
use crate::object::{Endpoint, Id, Kernel, ObjectPtr, ObjectRef};
use abi::{Error, Handle, Rights};
use alloc::vec::Vec;

/// Most capabilities one task may hold (every index a handle can name).
pub const MAX_SLOTS: usize = Handle::MAX_INDEX as usize + 1;
/// Bytes charged per capability: its slot (with the spare capacity of the
/// growing list it is in), and its bit in the map of free slots (a byte
/// covers it with its spare). Its node is in a chunk of the capability
/// table its pool pays for ([`crate::object::Slab`]).
pub const CAP_COST: u64 = list_cost::<Slot>() + 1;

/// One capability.
pub struct CapNode {
    pub object: ObjectRef,
    pub rights: Rights,
    pub badge: u64,
    /// Where it lives: task and slot.
    pub task: Id,
    pub slot: u32,
    /// The derivation tree, linked through the nodes themselves (so that
    /// neither deriving nor deleting nor revoking allocates): the parent,
    /// the first child, and the siblings before and after.
    pub parent: Option<Id>,
    pub first_child: Option<Id>,
    pub prev_sibling: Option<Id>,
    pub next_sibling: Option<Id>,
    /// Mappings made through this capability: (task, index in the task's
    /// list of mappings; see [`crate::task::Mapping::cap_index`]).
    /// In chunks ([`ChunkList`]): no growth copies it whole.
    pub mappings: ChunkList<(Id, u32)>,
    /// Pool charged for it.
    pub pool: Id,
    /// Being deleted, in pieces ([`delete_piece`]): it can no longer be
    /// used (looked up with rights, copied, mapped through), only deleted.
    pub dying: bool,
    /// A revoke of its descendants in progress stopped here ([`revoke`]).
    pub revoke_at: Option<Id>,
}

/// A slot of a capability space. Besides the capability's node it holds
/// a copy of the node's object, rights and badge (which never change while
/// the node lives) and, for an endpoint, its address, so the IPC fast path
/// resolves a handle with one indexed load and a generation compare
/// ([`CSpace::endpoint`]).
#[derive(Clone, Copy)]
struct Slot {
    generation: u32,
    rights: Rights,
    /// Meaningless while `cap` is `None` (then `rights` is empty).
    object: ObjectRef,
    badge: u64,
    /// The endpoint `object` names (else null). The capability holds a
    /// reference to it, so it lives while the slot holds the capability.
    endpoint: ObjectPtr<Endpoint>,
    cap: Option<Id>,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            generation: 0,
            rights: Rights::empty(),
            object: ObjectRef::Console,
            badge: 0,
            endpoint: ObjectPtr::NULL,
            cap: None,
        }
    }
}

/// A task's capability space. Its slots give memory back like a slab's
/// table ([`crate::object::slab::give_back`]): free slots at the end go.
/// A free slot is found in two `ctz` ([`CSpace::free`]), not by a search.
#[derive(Default)]
pub struct CSpace {
    slots: Vec<Slot>,
    /// Which slots are free to fill (a bit per slot: empty, not slot 0,
    /// not retired), 64 a word, and which words have any (`free_words`,
    /// a bit per word: [`MAX_SLOTS`] is 64 words).
    free: Vec<u64>,
    free_words: u64,
    /// The generation new slots start at: above that of every slot that
    /// went from the end, so no old handle names a new capability.
    fresh: u32,
    /// How many capabilities it holds to the counters with `READ`: while
    /// any, its threads may read the cycle counter (`abi::ObjectType::Counters`).
    counters: u32,
}

/// The last generation a slot has: emptied after that, it is retired (never
/// filled again, so no old handle can come to name a new object).
const LAST_GENERATION: u32 = (1 << (32 - Handle::INDEX_BITS)) - 1;
/// Slots a capability space takes at first.
const FIRST_SLOTS: usize = 16;
/// A retired slot's generation: no handle has it.
const RETIRED: u32 = u32::MAX;

impl CSpace {
    pub fn new() -> Self {
        CSpace {
            slots: Vec::new(),
            free: Vec::new(),
            free_words: 0,
            fresh: 0,
            counters: 0,
        }
    }

    /// The capability a handle names, if it is current.
    #[inline(always)]
    pub fn lookup(&self, handle: Handle) -> Option<Id> {
        let slot = self.slots.get(handle.index() as usize)?;
        if handle.index() == 0 || slot.generation != handle.generation() {
            return None;
        }
        slot.cap
    }

    /// The object and badge of the capability named by register value
    /// `register`, if it is current and carries `needed`: the errors of
    /// [`lookup_with`] (`BadHandle`, `NoRights`), from the slot's copies
    /// of the capability's object, rights and badge (no node lookup).
    #[inline(always)]
    pub fn object_with(&self, register: u64, needed: Rights) -> Result<(ObjectRef, u64), Error> {
        let handle = handle_arg(register)?;
        let slot = self.slots.get(handle.index() as usize).ok_or(Error::BadHandle)?;
        if handle.index() == 0 || slot.generation != handle.generation() || slot.cap.is_none() {
            return Err(Error::BadHandle);
        }
        if !slot.rights.contains(needed) {
            return Err(Error::NoRights);
        }
        Ok((slot.object, slot.badge))
    }

    /// The badge and endpoint address of a capability named by a register
    /// value, if it is current, names an endpoint and carries `needed`.
    /// (The IPC fast path; anything else is for the general lookup to
    /// report.) The endpoint lives while the slot is unchanged; its id is
    /// in it ([`Endpoint::id`]).
    #[inline(always)]
    pub fn endpoint(&self, register: u64, needed: Rights) -> Option<(u64, *mut Endpoint)> {
        let slot = self.slots.get((register & Handle::MAX_INDEX as u64) as usize)?;
        // A register above 32 bits is no handle: its generation never
        // matches. An empty slot has no rights, so needs no test of its
        // own; slot 0 (Handle::NULL) is never filled.
        if slot.generation as u64 != register >> Handle::INDEX_BITS || !slot.rights.contains(needed) {
            return None;
        }
        // Only a capability to an endpoint has the address (see `insert`;
        // `clear` resets it).
        let ptr = slot.endpoint.as_ptr();
        (!ptr.is_null()).then_some((slot.badge, ptr))
    }

    /// A free slot: the lowest free one, else a new one at the end (free
    /// until [`CSpace::fill`]).
    fn free_slot(&mut self) -> Result<u32, Error> {
        if self.free_words != 0 {
            let w = self.free_words.trailing_zeros();
            return Ok(w * 64 + self.free[w as usize].trailing_zeros());
        }
        if self.slots.len() >= MAX_SLOTS {
            return Err(Error::NoSlots);
        }
        let words = (self.slots.len().max(1) + 1).div_ceil(64);
        self.free
            .try_reserve(words.saturating_sub(self.free.len()))
            .map_err(|_| Error::OutOfMemory)?;
        self.slots
            .try_reserve(if self.slots.is_empty() { FIRST_SLOTS } else { 1 })
            .map_err(|_| Error::OutOfMemory)?;
        if self.slots.is_empty() {
            self.slots.push(Slot::default()); // slot 0: never valid (Handle::NULL)
        }
        self.slots.push(Slot {
            generation: self.fresh,
            ..Slot::default()
        });
        self.free.resize(words, 0);
        let slot = self.slots.len() as u32 - 1;
        self.mark(slot, true);
        Ok(slot)
    }

    /// Note `slot` as free to fill or not.
    fn mark(&mut self, slot: u32, free: bool) {
        let (w, bit) = ((slot / 64) as usize, 1u64 << (slot % 64));
        let Some(word) = self.free.get_mut(w) else { return };
        if free {
            *word |= bit;
        } else {
            *word &= !bit;
        }
        if *word != 0 {
            self.free_words |= 1 << w;
        } else {
            self.free_words &= !(1 << w);
        }
    }

    /// `slot` (from [`CSpace::free_slot`]) now holds capability `cap`.
    fn fill(&mut self, slot: u32, cap: Id) {
        self.slots[slot as usize].cap = Some(cap);
        self.mark(slot, false);
    }

    /// Whether the free bits agree with the slots (the kernel's self-check).
    pub fn free_bits_agree(&self) -> bool {
        let agree = self.slots.iter().enumerate().all(|(i, s)| {
            let free = i > 0 && s.cap.is_none() && s.generation != RETIRED;
            self.free
                .get(i / 64)
                .is_some_and(|w| (w >> (i % 64)) & 1 == free as u64)
        });
        let words = self
            .free
            .iter()
            .enumerate()
            .fold(0u64, |acc, (w, word)| acc | (((*word != 0) as u64) << w));
        let set: u32 = self.free.iter().map(|w| w.count_ones()).sum();
        let free = self
            .slots
            .iter()
            .skip(1)
            .filter(|s| s.cap.is_none() && s.generation != RETIRED)
            .count();
        agree && set as usize == free && words == self.free_words
    }

    fn handle(&self, slot: u32) -> Handle {
        Handle::new(slot, self.slots[slot as usize].generation)
    }

    /// Whether it holds a capability to the counters with `READ`.
    pub fn reads_counters(&self) -> bool {
        self.counters > 0
    }

    fn clear(&mut self, slot: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            if s.cap.is_some() && counts_for_counters(s.object, s.rights) {
                self.counters -= 1;
            }
            *s = Slot {
                generation: if s.generation >= LAST_GENERATION {
                    RETIRED
                } else {
                    s.generation + 1
                },
                ..Slot::default()
            };
            let free = s.generation != RETIRED && slot != 0;
            self.mark(slot, free);
        }
        if slot as usize + 1 == self.slots.len() {
            self.trim();
        }
    }

    /// A slot from [`CSpace::free_slot`] left empty (its capability could
    /// not be made: no room for its node): one added at the end goes again,
    /// so a failed insert leaves the space as long as it was.
    fn unused(&mut self, slot: u32) {
        if slot as usize + 1 == self.slots.len() {
            self.trim();
        }
    }

    /// Drop the free slots at the end (all of them, slot 0 too, once none
    /// is used) and give back the spare capacity.
    fn trim(&mut self) {
        while let Some(last) = self.slots.last() {
            if last.cap.is_some() || last.generation == RETIRED || self.slots.len() == 1 {
                break;
            }
            self.fresh = self.fresh.max(last.generation);
            self.slots.pop();
            self.mark(self.slots.len() as u32, false);
        }
        if self.slots.len() == 1 {
            self.slots = Vec::new();
            self.free = Vec::new();
        }
        crate::object::slab::give_back(&mut self.slots, FIRST_SLOTS);
        // (The words beyond the slots are zero now.) Back to the block it
        // would have had, grown from nothing by `free_slot`: at least
        // `Vec`'s first block, `FIRST_BLOCK` words. (Less than that would
        // free memory the space held before it grew.)
        self.free.truncate(self.slots.len().div_ceil(64));
        crate::object::slab::give_back(&mut self.free, FIRST_BLOCK);
    }

    /// The capability in `slot`, if any.
    pub fn slot_cap(&self, slot: u32) -> Option<Id> {
        self.slots.get(slot as usize)?.cap
    }

    /// The last capability held, and its slot. (Free slots at the end are
    /// dropped as they empty, so this looks at few.)
    pub fn last_cap(&self) -> Option<(u32, Id)> {
        let (i, s) = self.slots.iter().enumerate().rev().find(|(_, s)| s.cap.is_some())?;
        Some((i as u32, s.cap?))
    }

    /// Empty `slot` if it still holds a capability (teardown, after the
    /// capability was deleted).
    pub fn forget(&mut self, slot: u32) {
        if self.slots.get(slot as usize).is_some_and(|s| s.cap.is_some()) {
            self.clear(slot);
        }
    }

    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.cap.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Find a task's capability by handle.
#[inline]
pub fn lookup(k: &Kernel, task: Id, handle: Handle) -> Result<Id, Error> {
    let t = k.tasks.get(task).ok_or(Error::BadHandle)?;
    t.cspace.lookup(handle).ok_or(Error::BadHandle)
}

/// Find a capability and check it carries `needed` rights.
#[inline]
pub fn lookup_with(k: &Kernel, task: Id, handle: Handle, needed: Rights) -> Result<(Id, &CapNode), Error> {
    let id = lookup(k, task, handle)?;
    let node = k.caps.get(id).ok_or(Error::BadHandle)?;
    if !node.rights.contains(needed) {
        return Err(Error::NoRights);
    }
    if node.dying {
        return Err(Error::InvalidState);
    }
    Ok((id, node))
}

/// [`CSpace::object_with`] in `task`'s space: the object and badge of the
/// capability in register value `handle`, with `needed` rights. (One copy
/// for the notification and endpoint calls.)
#[inline(never)]
pub fn object_in(k: &Kernel, task: Id, handle: u64, needed: Rights) -> Result<(ObjectRef, u64), Error> {
    let t = k.tasks.get_inlined(task).ok_or(Error::BadHandle)?;
    t.cspace.object_with(handle, needed)
}

/// Whether a capability lets its task read the cycle counter.
fn counts_for_counters(object: ObjectRef, rights: Rights) -> bool {
    object == ObjectRef::Counters && rights.contains(Rights::READ)
}

/// Decode a handle from a register value.
pub fn handle_arg(value: u64) -> Result<Handle, Error> {
    Handle::from_register(value).ok_or(Error::BadHandle)
}

/// Put a capability to `object` into `task`'s space, as a child of `parent`.
pub fn insert(
    k: &mut Kernel,
    task: Id,
    object: ObjectRef,
    rights: Rights,
    badge: u64,
    parent: Option<Id>,
) -> Result<Handle, Error> {
    let t = k.tasks.get(task).ok_or(Error::BadHandle)?;
    if !t.alive {
        // Being torn down: nothing new goes in.
        return Err(Error::InvalidState);
    }
    let pool = t.pool;
    let first_sibling = match parent {
        Some(p) => k.caps.get(p).ok_or(Error::BadHandle)?.first_child,
        None => None,
    };
    k.charge(pool, CAP_COST)?;
    let slot = match k.tasks.get_mut(task).map(|t| t.cspace.free_slot()) {
        Some(Ok(slot)) => slot,
        Some(Err(e)) => {
            k.refund(pool, CAP_COST);
            return Err(e);
        }
        None => {
            k.refund(pool, CAP_COST);
            return Err(Error::BadHandle);
        }
    };
    let node = CapNode {
        object,
        rights,
        badge,
        task,
        slot,
        parent,
        first_child: None,
        prev_sibling: None,
        next_sibling: first_sibling,
        mappings: ChunkList::new(),
        pool,
        dying: false,
        revoke_at: None,
    };
    let Ok(id) = k.store(Some(pool), node) else {
        k.refund(pool, CAP_COST);
        if let Some(t) = k.tasks.get_mut(task) {
            t.cspace.unused(slot);
        }
        return Err(Error::OutOfMemory);
    };
    let endpoint = match object {
        ObjectRef::Endpoint(ep) => k
            .endpoints
            .get_mut(ep)
            .map_or(ObjectPtr::NULL, |e| ObjectPtr::new(&mut **e)),
        _ => ObjectPtr::NULL,
    };
    let t = k.tasks.get_mut(task).expect("checked above");
    t.cspace.fill(slot, id);
    let s = &mut t.cspace.slots[slot as usize];
    s.object = object;
    s.rights = rights;
    s.badge = badge;
    s.endpoint = endpoint;
    if counts_for_counters(object, rights) {
        t.cspace.counters += 1;
    }
    let handle = t.cspace.handle(slot);
    if let Some(p) = parent {
        if let Some(pn) = k.caps.get_mut(p) {
            pn.first_child = Some(id);
        }
        if let Some(s) = first_sibling.and_then(|s| k.caps.get_mut(s)) {
            s.prev_sibling = Some(id);
        }
    }
    k.add_ref(object);
    k.add_ref(ObjectRef::Pool(pool));
    if let ObjectRef::Pool(p) = object {
        if let Some(p) = k.pools.get_mut(p) {
            p.caps += 1;
        }
    }
    if let ObjectRef::Endpoint(ep) = object {
        if rights.contains(Rights::RECEIVE) {
            if let Some(e) = k.endpoints.get_mut(ep) {
                e.receive_caps += 1;
            }
        }
    }
    Ok(handle)
}

/// Derive a capability from `source` (held by anyone) into `task` with
/// `rights` masked by what the source holds; `badge` replaces the badge only
/// if the source is unbadged.
pub fn derive(k: &mut Kernel, source: Id, task: Id, rights: Rights, badge: Option<u64>) -> Result<Handle, Error> {
    let src = k.caps.get(source).ok_or(Error::BadHandle)?;
    if !src.rights.contains(Rights::GRANT) {
        return Err(Error::NoRights);
    }
    if src.dying {
        return Err(Error::InvalidState);
    }
    let new_badge = match badge {
        Some(b) => {
            if src.badge != 0 || !matches!(src.object, ObjectRef::Endpoint(_) | ObjectRef::Notification(_)) {
                return Err(Error::InvalidState);
            }
            b
        }
        None => src.badge,
    };
    let (object, held) = (src.object, src.rights);
    insert(k, task, object, held.derive(rights), new_badge, Some(source))
}

/// Delete one capability, a bounded piece at a time: unmap what was mapped
/// through it, hand its children to its parent (in its place among the
/// siblings), free the slot, and drop its object reference. Allocates
/// nothing. Whether it is gone; if not, it is `dying` and the next call
/// goes on (the work budget ran out, [`Kernel::spend`]). Each call makes
/// progress.
pub fn delete_piece(k: &mut Kernel, id: Id) -> bool {
    let done = delete_steps(k, id);
    k.tlb.flush();
    done
}

fn delete_steps(k: &mut Kernel, id: Id) -> bool {
    let Some(node) = k.caps.get_mut(id) else { return true };
    node.dying = true;
    // Mappings, last first (each goes in constant time, large ones in
    // pieces).
    while let Some(&(task, i)) = k.caps.get(id).and_then(|n| n.mappings.last()) {
        let before = k.caps.get(id).map_or(0, |n| n.mappings.len());
        crate::task::remove_mapping_piece(k, task, i as usize);
        let after = k.caps.get(id).map_or(0, |n| n.mappings.len());
        if after == before
            && k.tasks
                .get(task)
                .is_none_or(|t| t.mappings.get(i as usize).is_none_or(|m| m.cap != id))
        {
            // A record whose mapping is gone (never left behind; made sure
            // of, so the loop ends).
            if let Some(n) = k.caps.get_mut(id) {
                n.mappings.pop();
            }
        }
        if !k.has_work_left() {
            return false;
        }
    }
    // Children move up one at a time.
    while let Some(child) = k.caps.get(id).and_then(|n| n.first_child) {
        move_first_child_up(k, id, child);
        if !k.spend(50) {
            return false;
        }
    }
    // Every mapping made through it is gone from every TLB before its
    // object may go.
    k.tlb.flush();
    let Some(node) = k.unstore::<CapNode>(id) else {
        return true;
    };
    link_siblings(k, node.parent, node.prev_sibling, node.next_sibling);
    finish_delete(k, node);
    k.spend(300);
    true
}

/// Move `child`, the first child of `id`, to just before `id` among its
/// siblings (its parent becomes `id`'s parent).
fn move_first_child_up(k: &mut Kernel, id: Id, child: Id) {
    let Some(n) = k.caps.get(id) else { return };
    let (parent, prev) = (n.parent, n.prev_sibling);
    let next = k.caps.get(child).and_then(|c| c.next_sibling);
    if let Some(n) = k.caps.get_mut(id) {
        n.first_child = next;
        n.prev_sibling = Some(child);
    }
    if let Some(x) = next.and_then(|x| k.caps.get_mut(x)) {
        x.prev_sibling = None;
    }
    if let Some(c) = k.caps.get_mut(child) {
        c.parent = parent;
        c.prev_sibling = prev;
        c.next_sibling = Some(id);
    }
    match prev {
        Some(p) => {
            if let Some(p) = k.caps.get_mut(p) {
                p.next_sibling = Some(child);
            }
        }
        None => {
            if let Some(p) = parent.and_then(|p| k.caps.get_mut(p)) {
                p.first_child = Some(child);
            }
        }
    }
}

/// Make `next` follow `prev` among the children of `parent` (`prev` None:
/// `next` becomes the first child).
fn link_siblings(k: &mut Kernel, parent: Option<Id>, prev: Option<Id>, next: Option<Id>) {
    match prev {
        Some(p) => {
            if let Some(n) = k.caps.get_mut(p) {
                n.next_sibling = next;
            }
        }
        None => {
            if let Some(n) = parent.and_then(|p| k.caps.get_mut(p)) {
                n.first_child = next;
            }
        }
    }
    if let Some(n) = next.and_then(|n| k.caps.get_mut(n)) {
        n.prev_sibling = prev;
    }
}

/// The rest of [`delete`], once the node is out of the tree.
fn finish_delete(k: &mut Kernel, node: CapNode) {
    if let Some(t) = k.tasks.get_mut(node.task) {
        t.cspace.clear(node.slot);
    }
    k.refund(node.pool, CAP_COST);
    if let ObjectRef::Pool(p) = node.object {
        if let Some(po) = k.pools.get_mut(p) {
            po.caps = po.caps.saturating_sub(1);
            if po.caps == 0 && !po.reclaim {
                po.reclaim = true;
                k.defer_reclaim();
            }
        }
    }
    if let ObjectRef::Endpoint(ep) = node.object {
        if node.rights.contains(Rights::RECEIVE) {
            crate::ipc::receive_cap_gone(k, ep);
        }
    }
    k.release(node.object);
    k.release(ObjectRef::Pool(node.pool));
}

/// Delete every capability derived from `id` (not `id` itself): leaves
/// first, walking the tree in place (no allocation, so it cannot fail or
/// leave a descendant behind), each node visited a bounded number of times.
/// In pieces: whether it is done; if not, the work budget ran out and the
/// next call goes on from where this one stopped (`revoke_at`: always `id`
/// or a descendant of it, since a deleted node's children move up to its
/// parent).
pub fn revoke(k: &mut Kernel, id: Id) -> bool {
    let mut at = k
        .caps
        .get(id)
        .and_then(|n| n.revoke_at)
        .filter(|a| k.caps.get(*a).is_some())
        .unwrap_or(id);
    let stopped = |k: &mut Kernel, at: Id| {
        if let Some(n) = k.caps.get_mut(id) {
            n.revoke_at = Some(at);
        }
        false
    };
    loop {
        // Down to a leaf below `at`...
        let Some(mut leaf) = k.caps.get(at).and_then(|n| n.first_child) else {
            if at == id {
                if let Some(n) = k.caps.get_mut(id) {
                    n.revoke_at = None;
                }
                return true;
            }
            // `at` became a leaf: delete it and go on from its parent.
            let parent = k.caps.get(at).and_then(|n| n.parent).unwrap_or(id);
            if !delete_piece(k, at) {
                return stopped(k, at);
            }
            at = parent;
            if !k.has_work_left() {
                return stopped(k, at);
            }
            continue;
        };
        while let Some(c) = k.caps.get(leaf).and_then(|n| n.first_child) {
            leaf = c;
            k.spend(5);
        }
        // ...delete it; its parent may now be a leaf.
        let parent = k.caps.get(leaf).and_then(|n| n.parent).unwrap_or(id);
        if !delete_piece(k, leaf) {
            return stopped(k, leaf);
        }
        at = parent;
        if !k.has_work_left() {
            return stopped(k, at);
        }
    }
}

crate::ktest!(
    fn a_capability_space_shrinks_back_to_the_memory_it_held() {
        let mut cs = CSpace::new();
        let dummy = Id {
            index: 7,
            generation: 7,
        };
        let fill = |cs: &mut CSpace| -> Result<u32, alloc::string::String> {
            let slot = cs.free_slot().map_err(|e| alloc::format!("{e:?}"))?;
            cs.fill(slot, dummy);
            Ok(slot)
        };
        let mut first = Vec::new();
        for _ in 0..3 {
            first.push(fill(&mut cs)?);
        }
        let held = (cs.slots.capacity(), cs.free.capacity());
        // A burst of capabilities, then all of them gone (the last one
        // last: the free slots at the end go together).
        let mut burst = Vec::new();
        for _ in 0..4000 {
            burst.push(fill(&mut cs)?);
        }
        crate::kassert!(cs.free.capacity() > held.1);
        for slot in burst {
            cs.clear(slot);
            crate::kassert!(cs.free_bits_agree());
        }
        crate::kassert_eq!((cs.slots.capacity(), cs.free.capacity()), held);
        // Emptied: it holds nothing, as when new.
        for slot in first {
            cs.clear(slot);
        }
        crate::kassert_eq!((cs.slots.capacity(), cs.free.capacity()), (0, 0));
        Ok(())
    }
);

crate::ktest!(
    fn handles_never_come_back_after_the_generation_wraps() {
        let mut cs = CSpace::new();
        let slot = cs.free_slot().map_err(|e| alloc::format!("{e:?}"))?;
        let dummy = Id {
            index: 7,
            generation: 7,
        };
        cs.fill(slot, dummy);
        let first = cs.handle(slot);
        let mut cycles = 0u32;
        // Empty and refill the slot until it is retired (past the wrap).
        loop {
            cs.clear(slot);
            cycles += 1;
            let next = cs.free_slot().map_err(|e| alloc::format!("{e:?}"))?;
            if next != slot {
                break;
            }
            cs.fill(slot, dummy);
            crate::kassert!(cs.free_bits_agree());
            let h = cs.handle(slot);
            crate::kassert!(h != first, "handle {:#x} issued again after {cycles} cycles", h.0);
            crate::kassert!(cycles <= LAST_GENERATION + 1, "slot never retired");
        }
        crate::kassert_eq!(cycles, LAST_GENERATION + 1);
        crate::kassert!(cs.lookup(first).is_none());
        crate::kassert!(cs.endpoint(first.0 as u64, Rights::empty()).is_none());
        Ok(())
    }
);
