//! Generational slabs: kernel objects are named by index + generation, so a
//! stale reference to a freed and reused entry is detected, never followed.

use alloc::vec::Vec;
use core::alloc::Layout;
use core::marker::PhantomData;
use core::ptr::NonNull;

/// A slab entry's name. Aligned as one 64-bit word, so ids are compared,
/// loaded and stored whole.
#[derive(Clone, Copy, Debug, Eq, PartialOrd, Ord)]
#[repr(C, align(8))]
pub struct Id {
    pub index: u32,
    pub generation: u32,
}

impl Id {
    /// Both fields as one word (one compare instead of two).
    #[inline(always)]
    fn word(self) -> u64 {
        (self.generation as u64) << 32 | self.index as u64
    }
}

impl PartialEq for Id {
    #[inline(always)]
    fn eq(&self, other: &Id) -> bool {
        self.word() == other.word()
    }
}

impl core::hash::Hash for Id {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.word().hash(state);
    }
}

/// A retired entry's generation (no id has it; never reused).
const RETIRED: u32 = u32::MAX;

/// An entry: its generation first (`repr(C)`: the untyped code in
/// [`Slots`] reads and writes it at the entry's address), then its object.
#[repr(C)]
struct Entry<T> {
    generation: u32,
    value: Option<T>,
}

/// Storage for one kind of object: a directory of chunks of
/// [`Slab::PER_CHUNK`] entries, each chunk owned by one pool (or by the
/// kernel: owner `None`). An id's index is its chunk's directory slot times
/// `PER_CHUNK` plus its place in the chunk, so entries never move.
///
/// An owner's objects go only into its own chunks: a free entry of one of
/// them (the chunks of an owner with room are a list whose head the owner
/// keeps: `room`), else a new chunk in a free directory slot,
/// which its owner pays for ([`Slab::CHUNK_COST`], charged by the caller:
/// see `Kernel::store`). A chunk that empties is freed at once, wherever it
/// is, and its owner refunded. So what a half-empty chunk wastes is its
/// owner's own charge. The directory (eight words a slot) drops the free
/// slots at its end, and gives back the end of its block once a quarter
/// or less of it is used ([`give_back`]); a chunk at a high slot holds it
/// at that length.
///
/// All of this but the objects themselves is untyped ([`Slots`], given the
/// chunks' [`Shape`]): one copy of the code for every kind of object. What
/// is typed (moving an object in and out of its entry, the lookups, which
/// the fast paths inline) is a few instructions.
pub struct Slab<T> {
    slots: Slots,
    _objects: PhantomData<T>,
}

/// What the untyped code needs to know of a `Slab<T>`'s chunks.
struct Shape {
    /// Entries a chunk holds ([`Slab::PER_CHUNK`]: a power of two).
    per: usize,
    /// Bytes of one entry.
    entry: usize,
    /// A chunk's memory: `per` entries.
    layout: Layout,
    /// Write a new chunk's entries at the address given, free, of the
    /// generation given.
    init: unsafe fn(NonNull<u8>, u32),
}

impl Shape {
    /// The directory slot and the place in its chunk of an index.
    #[inline(always)]
    fn split(&self, index: u32) -> (usize, usize) {
        (
            (index >> self.per.trailing_zeros()) as usize,
            index as usize & (self.per - 1),
        )
    }
}

/// Write the `Slab::<T>::PER_CHUNK` entries of a new chunk at `chunk`:
/// free, of generation `floor` ([`Shape::init`]).
///
/// # Safety
/// `chunk` is valid for writes of `Slab::<T>::SHAPE.layout` and aligned to it.
unsafe fn init_chunk<T>(chunk: NonNull<u8>, floor: u32) {
    let first = chunk.cast::<Entry<T>>().as_ptr();
    for i in 0..Slab::<T>::PER_CHUNK {
        // SAFETY: the caller's promise; `i` is below the chunk's entries.
        unsafe {
            first.add(i).write(Entry {
                generation: floor,
                value: None,
            })
        };
    }
}

/// An owner's list of chunks with room is empty.
pub const NO_ROOM: u32 = u32::MAX;

/// A slab's directory, untyped: its chunks (their addresses), what it knows
/// of each slot, its live entries (one copy of this code for every kind of
/// object; [`Shape`] says what it needs of a kind's chunks).
struct Slots {
    /// Each slot's chunk (none: null): `Shape::per` entries, made and
    /// freed here with `Shape::layout`.
    dir: Vec<Option<NonNull<u8>>>,
    /// Per directory slot.
    meta: Vec<SlotMeta>,
    /// Free directory slots (without a chunk, not retired): bit `s % 64`
    /// of word `s / 64`, a word for each 64 slots the records have room
    /// for (so the lowest is found in a scan of words and a `ctz`).
    free: Vec<u64>,
    /// The floor of slots added at the directory's end: above every
    /// generation of a slot that went from the end.
    fresh: u32,
    /// Live entries.
    live: usize,
}

#[derive(Clone, Copy)]
struct SlotMeta {
    /// Who pays for its chunk.
    owner: Option<Id>,
    /// Its neighbours in its owner's list of chunks with room.
    prev: u32,
    next: u32,
    /// Whether it has a chunk.
    present: bool,
    /// Whether its chunk is in its owner's list of chunks with room.
    linked: bool,
    /// Live entries of its chunk.
    used: u16,
    /// Retired entries of its chunk (never reused).
    retired: u16,
    /// Its chunk's free entries (bit `i`: entry `i`), retired ones not.
    free_entries: u64,
    /// Its chunk's lingering entries (bit `i`: entry `i`): objects gone as
    /// far as their pool is concerned, refunded already, kept only until a
    /// CPU leaves them ([`Slab::linger`]). They do not keep the chunk
    /// charged to its owner.
    lingering: u64,
    /// Its chunk holds only lingering entries: its owner was refunded for
    /// it and no longer owns it (`owner` is `None`); it is on no list of
    /// chunks with room, and goes with its last entry ([`Slab::linger`]).
    orphan: bool,
    /// The highest generation its chunk's entries have had.
    top: u32,
    /// The generation entries of a new chunk here start at: above every
    /// generation an entry of this slot ever had. [`RETIRED`]: the slot is
    /// never reused (an entry of it was retired).
    floor: u32,
}

impl Slots {
    const fn new() -> Self {
        Slots {
            dir: Vec::new(),
            meta: Vec::new(),
            free: Vec::new(),
            fresh: 0,
            live: 0,
        }
    }

    /// A free entry for an object of `owner`, whose list of chunks with
    /// room starts at `room` (a new chunk is made when it is empty): its
    /// id and its address, counted live. The caller writes its object.
    #[inline(never)]
    fn claim(&mut self, owner: Option<Id>, room: &mut u32, shape: &Shape) -> Result<(Id, NonNull<u8>), SlabFull> {
        if *room == NO_ROOM {
            self.new_chunk(owner, room, shape)?;
        }
        let slot = *room as usize;
        let i = self.take_entry(slot, room);
        let chunk = self.dir[slot].ok_or(SlabFull)?;
        // SAFETY: entry `i` of the chunk in `slot` (`i` below `shape.per`).
        let entry = unsafe { chunk.add(i * shape.entry) };
        self.live += 1;
        // SAFETY: an entry starts with its generation (`Entry` is `repr(C)`).
        let generation = unsafe { entry.cast::<u32>().read() };
        Ok((
            Id {
                index: ((slot << shape.per.trailing_zeros()) + i) as u32,
                generation,
            },
            entry,
        ))
    }

    /// A new, empty chunk of `owner` in a free directory slot, at the head
    /// of its list of chunks with room.
    fn new_chunk(&mut self, owner: Option<Id>, room: &mut u32, shape: &Shape) -> Result<(), SlabFull> {
        let slot = match self.take_free(self.dir.len(), self.dir.capacity())? {
            Some(slot) => slot,
            None => {
                self.dir.try_reserve(1).map_err(|_| SlabFull)?;
                self.take_free(self.dir.len(), self.dir.capacity())?.ok_or(SlabFull)?
            }
        };
        if slot == self.dir.len() {
            self.dir.push(None);
        }
        // SAFETY: a chunk's layout has a non-zero size (at least one entry,
        // which holds its generation).
        let chunk = NonNull::new(unsafe { alloc::alloc::alloc(shape.layout) });
        self.made(slot, chunk.is_some(), shape.per, owner, room);
        let chunk = chunk.ok_or(SlabFull)?;
        // SAFETY: the block just allocated with the chunk's layout.
        unsafe { (shape.init)(chunk, self.meta[slot].floor) };
        self.dir[slot] = Some(chunk);
        Ok(())
    }

    /// The live entry at `index` was emptied (its object taken): its
    /// generation moves on, and its chunk goes when that left it empty
    /// ([`Slots::put_entry`]; `room` as there). Whether its owner is to be
    /// refunded and released.
    #[inline(never)]
    fn removed(&mut self, index: u32, room: &mut u32, shape: &Shape) -> bool {
        let (c, i) = shape.split(index);
        let Some(chunk) = self.dir[c] else {
            return false;
        };
        // SAFETY: entry `i` of the chunk in `c`; it starts with its
        // generation (`Entry` is `repr(C)`).
        let generation = unsafe { chunk.add(i * shape.entry).cast::<u32>().as_mut() };
        // An entry whose generation would wrap is retired, never reused: an
        // old id must not name a new object.
        *generation = if *generation >= RETIRED - 1 {
            RETIRED
        } else {
            *generation + 1
        };
        let generation = *generation;
        self.live -= 1;
        let left = self.put_entry(c, i, generation, room) as u8;
        if left & 2 != 0 {
            self.dir[c] = None;
            // SAFETY: the chunk was allocated with this layout
            // (`new_chunk`); its entries are all empty (`None`: nothing to
            // drop) and nothing refers to them.
            unsafe { alloc::alloc::dealloc(chunk.as_ptr(), shape.layout) };
            let len = self.freed(c);
            if len < self.dir.len() {
                self.dir.truncate(len);
                give_back(&mut self.dir, FIRST_BLOCK);
            }
        }
        left & 1 != 0
    }

    /// A slot for a new chunk: a free one, or a new one at the end when
    /// the directory (now `dir_len` slots) has room reserved for it
    /// (`capacity`). `None`: the directory must grow first, or is as long
    /// as ids allow (a chunk holds at most 64 entries).
    #[inline(never)]
    fn take_free(&mut self, dir_len: usize, capacity: usize) -> Result<Option<usize>, SlabFull> {
        if let Some(w) = self.free.iter().position(|&w| w != 0) {
            let bit = self.free[w].trailing_zeros() as usize;
            self.free[w] &= !(1 << bit);
            return Ok(Some(w * 64 + bit));
        }
        // Its last index must fit an id.
        if dir_len == capacity || (dir_len + 1) << 6 > 1 << 32 {
            return Ok(None);
        }
        self.meta
            .try_reserve_exact(capacity - self.meta.len())
            .map_err(|_| SlabFull)?;
        let words = capacity.div_ceil(64);
        self.free
            .try_reserve_exact(words.saturating_sub(self.free.len()))
            .map_err(|_| SlabFull)?;
        self.free.resize(words.max(self.free.len()), 0);
        self.meta.push(SlotMeta {
            owner: None,
            prev: NO_ROOM,
            next: NO_ROOM,
            present: false,
            linked: false,
            used: 0,
            retired: 0,
            free_entries: 0,
            lingering: 0,
            orphan: false,
            top: 0,
            floor: self.fresh,
        });
        Ok(Some(dir_len))
    }

    /// A chunk of `owner` was made in `slot` (or not: `made` false): the
    /// head of its list of chunks with room.
    #[inline(never)]
    fn made(&mut self, slot: usize, made: bool, per: usize, owner: Option<Id>, room: &mut u32) {
        if !made {
            self.put_free(slot);
            return;
        }
        let m = &mut self.meta[slot];
        m.present = true;
        m.owner = owner;
        m.used = 0;
        m.retired = 0;
        m.free_entries = u64::MAX >> (64 - per);
        m.lingering = 0;
        m.orphan = false;
        m.top = m.floor;
        self.link(slot, room);
    }

    /// Put `slot` at the head of its owner's list of chunks with room.
    fn link(&mut self, slot: usize, room: &mut u32) {
        self.link_to(slot, room);
        self.meta[slot].linked = true;
    }

    /// Take `slot` off its owner's list of chunks with room.
    fn unlink(&mut self, slot: usize, room: &mut u32) {
        self.unlink_from(slot, room);
        self.meta[slot].linked = false;
    }

    /// Put `slot` at the head of the list starting at `head`.
    fn link_to(&mut self, slot: usize, head: &mut u32) {
        if *head != NO_ROOM {
            self.meta[*head as usize].prev = slot as u32;
        }
        let m = &mut self.meta[slot];
        m.next = *head;
        m.prev = NO_ROOM;
        *head = slot as u32;
    }

    /// Take `slot` off the list starting at `head`.
    fn unlink_from(&mut self, slot: usize, head: &mut u32) {
        let m = self.meta[slot];
        if m.prev == NO_ROOM {
            *head = m.next;
        } else {
            self.meta[m.prev as usize].next = m.next;
        }
        if m.next != NO_ROOM {
            self.meta[m.next as usize].prev = m.prev;
        }
    }

    /// Take the lowest free entry of `slot`'s chunk (which has one): its
    /// place. The chunk leaves its owner's list when it is full.
    #[inline(never)]
    fn take_entry(&mut self, slot: usize, room: &mut u32) -> usize {
        let m = &mut self.meta[slot];
        let i = m.free_entries.trailing_zeros() as usize;
        m.free_entries &= !(1 << i);
        m.used += 1;
        if m.free_entries == 0 {
            self.unlink(slot, room);
        }
        i
    }

    /// Entry `i` of `slot`'s chunk went, its generation now `generation`
    /// ([`RETIRED`]: for good): what became of the chunk. Emptied: to be
    /// freed ([`Slots::freed`]); left with lingering entries alone:
    /// orphaned ([`Slots::orphan`]); else back on its owner's list if it
    /// was full.
    #[inline(never)]
    fn put_entry(&mut self, slot: usize, i: usize, generation: u32, room: &mut u32) -> Left {
        let m = &mut self.meta[slot];
        m.used -= 1;
        m.lingering &= !(1 << i);
        if generation == RETIRED {
            m.retired += 1;
        } else {
            m.top = m.top.max(generation);
            m.free_entries |= 1 << i;
        }
        let (used, linked, free, orphan) = (m.used, m.linked, m.free_entries, m.orphan);
        if used == 0 {
            if linked {
                self.unlink(slot, room);
            }
            // (An orphan's owner was refunded when it was orphaned.)
            return if orphan { Left::EmptyOrphan } else { Left::Empty };
        }
        if self.orphan(slot, room) {
            return Left::Orphaned;
        }
        if !linked && !orphan && free != 0 {
            self.link(slot, room);
        }
        Left::Kept
    }

    /// Entry `i` of `slot`'s chunk (live) lingers from now on: whether
    /// that orphaned the chunk ([`Slots::orphan`]).
    #[inline(never)]
    fn linger(&mut self, slot: usize, i: usize, room: &mut u32) -> bool {
        self.meta[slot].lingering |= 1 << i;
        self.orphan(slot, room)
    }

    /// If every live entry of `slot`'s chunk lingers and a pool owns it:
    /// the chunk leaves its owner (off its list of chunks with room, owned
    /// by nobody), which is then to be refunded and released, as for a
    /// freed chunk; `true`. Its free entries are not used again: it goes
    /// with its last lingering entry.
    fn orphan(&mut self, slot: usize, room: &mut u32) -> bool {
        let m = &mut self.meta[slot];
        if m.orphan || m.owner.is_none() || m.used as u32 != m.lingering.count_ones() {
            return false;
        }
        m.orphan = true;
        m.owner = None;
        if m.linked {
            self.unlink(slot, room);
        }
        true
    }

    /// `slot`'s chunk was freed: a chunk made there later starts above
    /// every generation its entries had. A slot with a retired entry is
    /// never reused. The free slots at the directory's end go: its new
    /// length.
    #[inline(never)]
    fn freed(&mut self, slot: usize) -> usize {
        let m = &mut self.meta[slot];
        m.present = false;
        m.owner = None;
        m.orphan = false;
        m.floor = if m.retired > 0 { RETIRED } else { m.top };
        if m.floor != RETIRED {
            self.put_free(slot);
        }
        while let Some(last) = self.meta.last() {
            if last.present || last.floor == RETIRED {
                break;
            }
            self.fresh = self.fresh.max(last.floor);
            self.meta.pop();
            self.mark(self.meta.len(), false);
        }
        let capacity = self.meta.capacity();
        give_back(&mut self.meta, FIRST_BLOCK);
        if self.meta.capacity() < capacity {
            // The map of free slots too, to the records' capacity (what
            // `take_free` reserves for it as they grow; its words beyond
            // are clear).
            let words = self.meta.capacity().div_ceil(64);
            self.free.truncate(words);
            self.free.shrink_to(words);
        }
        self.meta.len()
    }

    /// `slot` (without a chunk) among the free slots (its word was
    /// made when the directory grew).
    fn put_free(&mut self, slot: usize) {
        self.mark(slot, true);
    }

    /// Note `slot` as free or not in the map of free slots.
    fn mark(&mut self, slot: usize, free: bool) {
        if let Some(w) = self.free.get_mut(slot / 64) {
            let bit = 1 << (slot % 64);
            *w = if free { *w | bit } else { *w & !bit };
        }
    }

    fn chunks(&self) -> usize {
        self.meta.iter().filter(|m| m.present).count()
    }

    /// Chunks `owner` pays for (`None`: the kernel's, orphans not).
    fn chunks_of(&self, owner: Option<Id>) -> usize {
        self.meta
            .iter()
            .filter(|m| m.present && !m.orphan && m.owner == owner)
            .count()
    }

    /// Orphaned chunks ([`Slots::orphan`]).
    fn orphans(&self) -> usize {
        self.meta.iter().filter(|m| m.present && m.orphan).count()
    }

    /// The self-check's part: no chunk is empty, each chunk's owner is
    /// `live`, a pool's chunk has an entry that does not linger and an
    /// orphan has none, and each owner's list of chunks with room (its
    /// head from `room`) holds exactly its chunks with room (orphans on
    /// none).
    #[cfg(any(test, feature = "ktest"))]
    fn check(
        &self,
        per: usize,
        live: &dyn Fn(Option<Id>) -> bool,
        room: &dyn Fn(Option<Id>) -> Option<u32>,
    ) -> Result<(), alloc::string::String> {
        use alloc::format;
        let mut linked = 0;
        for (slot, m) in self.meta.iter().enumerate() {
            if !m.present {
                if m.linked {
                    return Err(format!("slot {slot}: no chunk, on a list of chunks with room"));
                }
                continue;
            }
            if m.used == 0 {
                return Err(format!("slot {slot}: an empty chunk"));
            }
            if !live(m.owner) {
                return Err(format!("slot {slot}: its chunk's owner {:?} is gone", m.owner));
            }
            let lingering = m.lingering.count_ones();
            let pinned = m.used as u32 > lingering;
            if m.lingering & m.free_entries != 0
                || (m.orphan && (pinned || m.owner.is_some()))
                || (!m.orphan && m.owner.is_some() && !pinned)
            {
                return Err(format!(
                    "slot {slot}: {} used, {lingering} lingering, orphan {}, owner {:?}",
                    m.used, m.orphan, m.owner
                ));
            }
            let free = (per - (m.used + m.retired) as usize) as u32;
            if m.linked != (m.free_entries != 0 && !m.orphan) || m.free_entries.count_ones() != free {
                return Err(format!(
                    "slot {slot}: on its owner's list {}, {} used",
                    m.linked, m.used
                ));
            }
            if !m.linked {
                continue;
            }
            linked += 1;
            // Its neighbours lead back here, the first is its owner's head.
            let neighbour = |at: u32| self.meta.get(at as usize).filter(|x| x.linked && x.owner == m.owner);
            let back = match m.prev {
                NO_ROOM => room(m.owner) == Some(slot as u32),
                prev => neighbour(prev).is_some_and(|x| x.next == slot as u32),
            };
            let on = m.next == NO_ROOM || neighbour(m.next).is_some_and(|x| x.prev == slot as u32);
            if !back || !on {
                return Err(format!("slot {slot}: its owner's list of chunks with room is broken"));
            }
        }
        // Every linked chunk is reached from its owner's head (no loop
        // apart): each list walked once.
        let mut reached = 0;
        for m in self.meta.iter().filter(|m| m.linked && m.prev == NO_ROOM) {
            let mut at = m.next;
            reached += 1;
            while at != NO_ROOM && reached <= linked {
                reached += 1;
                at = self.meta[at as usize].next;
            }
        }
        if reached != linked {
            return Err(format!("{linked} chunks with room, {reached} on their owners' lists"));
        }
        Ok(())
    }
}

/// Bytes one entry of a `Slab<T>` takes.
pub const fn entry_bytes<T>() -> usize {
    core::mem::size_of::<Entry<T>>()
}

/// Bytes to charge for one element of a growing list (a capability
/// space, a task's list of threads) of `T`s: twice its size,
/// for the spare capacity the list keeps as it grows by doubling.
pub const fn list_cost<T>() -> u64 {
    2 * core::mem::size_of::<T>() as u64
}

/// The kernel heap's block for a `T`: what [`alloc::boxed::Box`] takes
/// from the frames ([`crate::mm::small::block_bytes`]).
pub const fn box_cost<T>() -> u64 {
    crate::mm::small::block_bytes(core::mem::size_of::<T>(), core::mem::align_of::<T>()) as u64
}

/// No memory to grow the slab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlabFull;

/// What became of a chunk an entry left ([`Slots::put_entry`]): its
/// owner is to be refunded and released when it is 1 or 3 (bit 0), the
/// chunk freed when it is 2 or 3 (bit 1).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Left {
    /// It holds entries that pin its owner (or it is the kernel's).
    Kept = 0,
    /// Only lingering entries are left: its owner no longer owns it.
    Orphaned = 1,
    /// No entry is left of an orphan: it is to be freed.
    EmptyOrphan = 2,
    /// No entry is left: it is to be freed.
    Empty = 3,
}

/// Give back a growing list's spare memory: once a quarter or less of its
/// capacity is in use, shrink it to the block it would have had, had it
/// grown to its length from nothing (the next power of two, at least
/// `min`, the first block it takes). So the memory a burst of objects made
/// it grow to all comes back when they go. (It holds at most four times
/// what it holds now.) The block shrinks in place (the kernel heap's
/// `realloc` gives back its end): nothing is copied, no memory is needed,
/// nothing fails.
pub fn give_back<T>(v: &mut Vec<T>, min: usize) {
    let (len, capacity) = (v.len(), v.capacity());
    let fit = len.next_power_of_two().max(min);
    if len <= capacity / 4 && fit < capacity {
        v.shrink_to(fit);
    }
}

/// The first block of a list grown one element at a time (`Vec`'s least
/// non-zero capacity for elements of up to 1 KiB).
pub const FIRST_BLOCK: usize = 4;

/// Bytes a slab chunk takes at most (its entries are fewer when they are
/// large: see [`Slab::PER_CHUNK`]).
pub const CHUNK_BYTES: usize = 512;

impl<T> Slab<T> {
    /// Entries a chunk holds: a power of two (an index is split with a
    /// shift and a mask), as many as fit in [`CHUNK_BYTES`], at least one.
    pub const PER_CHUNK: usize = {
        let mut n = 1;
        while n < 64 && 2 * n * entry_bytes::<T>() <= CHUNK_BYTES {
            n *= 2;
        }
        n
    };
    const SHIFT: u32 = Self::PER_CHUNK.trailing_zeros();

    /// What the untyped code needs of this slab's chunks.
    const SHAPE: Shape = Shape {
        per: Self::PER_CHUNK,
        entry: entry_bytes::<T>(),
        layout: match Layout::from_size_align(Self::PER_CHUNK * entry_bytes::<T>(), core::mem::align_of::<Entry<T>>()) {
            Ok(layout) => layout,
            Err(_) => panic!("a chunk's layout"),
        },
        init: init_chunk::<T>,
    };

    /// Bytes a directory slot holds in the kernel heap (its chunk's pointer
    /// and its record, each in a list whose capacity is a power of two, in
    /// a block whose size is one: 8 + 64 for a 56-byte record): what the
    /// directory keeps of each chunk it held, once the chunk is gone (with
    /// a bit in its map of free slots).
    pub const SLOT_BYTES: usize = core::mem::size_of::<Option<NonNull<u8>>>().next_power_of_two()
        + core::mem::size_of::<SlotMeta>().next_power_of_two();

    /// Bytes a chunk takes from the kernel heap (its block), which its
    /// owner is charged.
    pub const CHUNK_COST: u64 =
        crate::mm::small::block_bytes(Self::SHAPE.layout.size(), Self::SHAPE.layout.align()) as u64;

    pub const fn new() -> Self {
        Slab {
            slots: Slots::new(),
            _objects: PhantomData,
        }
    }

    /// The directory slot and the place in its chunk of an index.
    #[inline(always)]
    fn split(index: u32) -> (usize, usize) {
        ((index >> Self::SHIFT) as usize, index as usize & (Self::PER_CHUNK - 1))
    }

    /// The entry `id`'s index names, if its chunk is there (whatever its
    /// generation).
    #[inline(always)]
    fn entry_ptr(&self, id: Id) -> Option<*mut Entry<T>> {
        let (c, i) = Self::split(id.index);
        let chunk = (*self.slots.dir.get(c)?)?;
        // SAFETY: a chunk holds `PER_CHUNK` entries of `T` (`Slots::new_chunk`
        // with `SHAPE`), and `i` is below it.
        Some(unsafe { chunk.cast::<Entry<T>>().as_ptr().add(i) })
    }

    /// Store `value` in a chunk of `owner`, whose list of chunks with room
    /// starts at `room` ([`NO_ROOM`]: a new chunk is made, which the caller
    /// has charged `owner` [`Slab::CHUNK_COST`] for). Fails (without
    /// panicking) when memory for a chunk runs out.
    pub fn insert(&mut self, owner: Option<Id>, room: &mut u32, value: T) -> Result<Id, SlabFull> {
        let (id, entry) = self.slots.claim(owner, room, &Self::SHAPE)?;
        // SAFETY: `claim` gives a free entry of this slab (its value is
        // `None`, nothing to drop), for this object alone.
        unsafe { core::ptr::addr_of_mut!((*entry.cast::<Entry<T>>().as_ptr()).value).write(Some(value)) };
        Ok(id)
    }

    /// Who pays for the chunk of `id`, if it names a live entry.
    pub fn owner(&self, id: Id) -> Option<Option<Id>> {
        self.get(id)?;
        Some(self.slots.meta[Self::split(id.index).0].owner)
    }

    #[inline]
    pub fn get(&self, id: Id) -> Option<&T> {
        self.get_inlined(id)
    }

    #[inline]
    pub fn get_mut(&mut self, id: Id) -> Option<&mut T> {
        self.get_mut_inlined(id)
    }

    /// [`Slab::get`] inlined: for the lookups on every exception entry and
    /// switch, where a call per lookup shows (`Slab::get` is out of line
    /// everywhere else: the kernel is built for size).
    #[inline(always)]
    pub fn get_inlined(&self, id: Id) -> Option<&T> {
        // SAFETY: an entry of a chunk of this slab, which `&self` keeps.
        let e = unsafe { &*self.entry_ptr(id)? };
        if e.generation == id.generation {
            e.value.as_ref()
        } else {
            None
        }
    }

    /// [`Slab::get_mut`] inlined, for the same paths as [`Slab::get_inlined`].
    #[inline(always)]
    pub fn get_mut_inlined(&mut self, id: Id) -> Option<&mut T> {
        // SAFETY: as in `get_inlined`; `&mut self` makes it the only
        // reference to the entry.
        let e = unsafe { &mut *self.entry_ptr(id)? };
        if e.generation == id.generation {
            e.value.as_mut()
        } else {
            None
        }
    }

    /// Remove and return the value; the id (and every copy of it) goes
    /// stale. `room` is the head of the list of chunks with room of its
    /// chunk's owner ([`Slab::owner`]). A chunk left with no live entry is
    /// freed at once, one left with lingering entries alone is orphaned
    /// ([`Slab::linger`]): then `true` (its owner is to be refunded
    /// [`Slab::CHUNK_COST`] and released), unless it was an orphan.
    pub fn remove(&mut self, id: Id, room: &mut u32) -> Option<(T, bool)> {
        let e = self.entry_ptr(id)?;
        // SAFETY: as in `get_mut_inlined`; the reference ends before
        // `removed`, which may free the chunk.
        let value = unsafe {
            let e = &mut *e;
            if e.generation != id.generation {
                return None;
            }
            e.value.take()?
        };
        Some((value, self.slots.removed(id.index, room, &Self::SHAPE)))
    }

    /// The live entry `id` lingers from now on: its object is gone as far
    /// as its chunk's owner is concerned (refunded, its reference to the
    /// pool dropped), but stays until a CPU leaves it (a dead thread's TCB
    /// until its CPU switches away, a task's until no CPU runs in its
    /// tables), and is then removed. A chunk whose live entries all linger
    /// is orphaned: owned by nobody, off its owner's list (`room`, as in
    /// [`Slab::remove`]), its free entries unused, freed with its last
    /// entry. Then `true`: its owner is to be refunded
    /// [`Slab::CHUNK_COST`] and released, so that a pool is whole (and
    /// can go) as soon as its objects are gone. What orphans hold is
    /// charged to nobody, bounded by the entries that can linger: a dead
    /// thread and a task per CPU.
    pub fn linger(&mut self, id: Id, room: &mut u32) -> bool {
        let (c, i) = Self::split(id.index);
        if self.get(id).is_none() {
            return false;
        }
        self.slots.linger(c, i, room)
    }

    /// Whether `id` names a live entry that lingers ([`Slab::linger`]).
    pub fn lingers(&self, id: Id) -> bool {
        let (c, i) = Self::split(id.index);
        self.get(id).is_some() && self.slots.meta[c].lingering & (1 << i) != 0
    }

    /// Chunks `owner` pays for (`None`: the kernel's own, orphans not).
    pub fn chunks_of(&self, owner: Option<Id>) -> usize {
        self.slots.chunks_of(owner)
    }

    /// Orphaned chunks ([`Slab::linger`]): charged to nobody.
    pub fn orphans(&self) -> usize {
        self.slots.orphans()
    }

    /// The self-check's part (see `Slots::check`): the chunks agree with
    /// their records and owners (`live`: whether an owner lives; `room`:
    /// an owner's list head).
    #[cfg(any(test, feature = "ktest"))]
    pub fn check(
        &self,
        live: &dyn Fn(Option<Id>) -> bool,
        room: &dyn Fn(Option<Id>) -> Option<u32>,
    ) -> Result<(), alloc::string::String> {
        let counted: usize = self.slots.meta.iter().map(|m| m.used as usize).sum();
        let present = self.slots.dir.iter().filter(|c| c.is_some()).count();
        if counted != self.slots.live || self.iter().count() != self.slots.live || present != self.chunks() {
            return Err(alloc::format!(
                "{} live, {counted} counted, {present} chunks of {}",
                self.slots.live,
                self.chunks()
            ));
        }
        self.slots.check(Self::PER_CHUNK, live, room)
    }

    /// Bytes its chunks hold.
    pub fn table_bytes(&self) -> usize {
        self.chunks() * Self::PER_CHUNK * entry_bytes::<T>()
    }

    /// Chunks it holds.
    pub fn chunks(&self) -> usize {
        self.slots.chunks()
    }

    pub fn len(&self) -> usize {
        self.slots.live
    }

    pub fn is_empty(&self) -> bool {
        self.slots.live == 0
    }

    /// Every live entry.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { slab: self, index: 0 }
    }

    /// Ids of every live entry (to iterate while mutating).
    pub fn ids(&self) -> Vec<Id> {
        self.iter().map(|(id, _)| id).collect()
    }
}

impl<T> Drop for Slab<T> {
    fn drop(&mut self) {
        for chunk in self.slots.dir.iter().flatten() {
            let entries = core::ptr::slice_from_raw_parts_mut(chunk.cast::<Entry<T>>().as_ptr(), Self::PER_CHUNK);
            // SAFETY: a chunk of this slab, made with `SHAPE` (its entries
            // written) and owned by it alone; nothing refers to it now.
            unsafe {
                core::ptr::drop_in_place(entries);
                alloc::alloc::dealloc(chunk.as_ptr(), Self::SHAPE.layout);
            }
        }
    }
}

/// A slab's live entries ([`Slab::iter`]).
pub struct Iter<'a, T> {
    slab: &'a Slab<T>,
    /// The next index to look at.
    index: usize,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = (Id, &'a T);

    // (Out of line: one copy per kind of object, not one per loop.)
    #[inline(never)]
    fn next(&mut self) -> Option<(Id, &'a T)> {
        let per = Slab::<T>::PER_CHUNK;
        while let Some(chunk) = self.slab.slots.dir.get(self.index / per) {
            let i = self.index;
            let Some(chunk) = chunk else {
                // No chunk.
                self.index = (i / per + 1) * per;
                continue;
            };
            self.index += 1;
            // SAFETY: as in `Slab::get_inlined`: an entry of a chunk of
            // the slab `'a` borrows.
            let e = unsafe { &*chunk.cast::<Entry<T>>().as_ptr().add(i % per) };
            if let Some(v) = &e.value {
                let id = Id {
                    index: i as u32,
                    generation: e.generation,
                };
                return Some((id, v));
            }
        }
        None
    }
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slab with the owners' lists of chunks with room beside it, and
    /// what each owner is charged for chunks.
    struct Owned<T> {
        s: Slab<T>,
        room: [u32; 3],
        charged: [u64; 3],
    }

    /// Entry `index`'s generation (its chunk is there) made `generation`.
    fn set_generation<T>(s: &mut Slab<T>, index: u32, generation: u32) {
        let e = s.entry_ptr(Id { index, generation: 0 }).unwrap();
        // SAFETY: an entry of a chunk of `s`, which `&mut` holds alone.
        unsafe { (*e).generation = generation };
    }

    fn owner(n: usize) -> Option<Id> {
        (n > 0).then_some(Id {
            index: n as u32,
            generation: 0,
        })
    }

    impl<T> Owned<T> {
        fn new() -> Self {
            Owned {
                s: Slab::new(),
                room: [NO_ROOM; 3],
                charged: [0; 3],
            }
        }

        fn insert(&mut self, n: usize, value: T) -> Id {
            if self.room[n] == NO_ROOM {
                self.charged[n] += Slab::<T>::CHUNK_COST;
            }
            self.s.insert(owner(n), &mut self.room[n], value).unwrap()
        }

        fn remove(&mut self, id: Id) -> Option<T> {
            let o = self.s.owner(id)?;
            let n = o.map_or(0, |o| o.index as usize);
            let (v, freed) = self.s.remove(id, &mut self.room[n])?;
            if freed {
                self.charged[n] -= Slab::<T>::CHUNK_COST;
            }
            Some(v)
        }

        /// `id` lingers ([`Slab::linger`]); an orphaned chunk is its
        /// owner's no more.
        fn linger(&mut self, id: Id) -> bool {
            let n = self.s.owner(id).unwrap().map_or(0, |o| o.index as usize);
            let orphaned = self.s.linger(id, &mut self.room[n]);
            if orphaned {
                self.charged[n] -= Slab::<T>::CHUNK_COST;
            }
            orphaned
        }

        fn check(&self) {
            let room = self.room;
            self.s
                .check(&|o| o.is_none_or(|o| o.index < 3), &|o| {
                    Some(room[o.map_or(0, |o| o.index as usize)])
                })
                .unwrap();
            // Each owner is charged for exactly its chunks.
            for n in 0..3 {
                assert_eq!(
                    self.charged[n],
                    self.s.chunks_of(owner(n)) as u64 * Slab::<T>::CHUNK_COST
                );
            }
        }

        fn chunk_bytes(&self) -> u64 {
            self.s.chunks() as u64 * Slab::<T>::CHUNK_COST
        }
    }

    #[test]
    fn stale_ids_are_rejected_after_reuse() {
        let mut s = Owned::new();
        let a = s.insert(0, "a");
        assert_eq!(s.remove(a), Some("a"));
        let b = s.insert(0, "b");
        assert_eq!(a.index, b.index);
        assert_ne!(a.generation, b.generation);
        assert_eq!(s.s.get(a), None);
        assert_eq!(s.remove(a), None);
        assert_eq!(s.s.get(b), Some(&"b"));
        assert_eq!(s.s.len(), 1);
        s.check();
    }

    #[test]
    fn an_entry_is_retired_before_its_generation_wraps() {
        let mut s = Owned::new();
        let keep = s.insert(0, 0);
        let a = s.insert(0, 1);
        set_generation(&mut s.s, a.index, u32::MAX - 1);
        let old = Id {
            index: a.index,
            generation: u32::MAX - 1,
        };
        assert_eq!(s.remove(old), Some(1));
        let b = s.insert(0, 2);
        assert_ne!(b.index, a.index, "a retired entry is not reused");
        assert_eq!(s.s.get(old), None);
        assert_eq!(s.s.len(), 2);
        assert_eq!(s.s.get(keep), Some(&0));
        s.check();
    }

    #[test]
    fn inlined_lookup_agrees() {
        let mut s = Owned::new();
        let a = s.insert(1, 1);
        s.remove(a);
        let b = s.insert(1, 2);
        assert_eq!(s.s.get_inlined(a), None);
        assert_eq!(s.s.get_inlined(b), Some(&2));
        assert_eq!(
            s.s.get_inlined(Id {
                index: 9999,
                generation: 0
            }),
            None
        );
    }

    #[test]
    fn iterates_live_entries() {
        let mut s = Owned::new();
        let ids: Vec<_> = (0..5).map(|i| s.insert(0, i)).collect();
        s.remove(ids[2]);
        assert_eq!(s.s.iter().map(|(_, v)| *v).collect::<Vec<_>>(), vec![0, 1, 3, 4]);
        assert_eq!(s.s.ids().len(), 4);
    }

    #[test]
    fn the_table_gives_its_memory_back() {
        let mut s = Owned::new();
        let keep = s.insert(1, 0usize);
        let before = s.s.table_bytes();
        let ids: Vec<_> = (1..5000).map(|i| s.insert(1, i)).collect();
        assert!(s.s.table_bytes() >= 5000 * entry_bytes::<usize>());
        s.check();
        for id in &ids {
            assert!(s.remove(*id).is_some());
        }
        assert_eq!(s.s.len(), 1);
        assert_eq!(s.s.table_bytes(), before);
        assert_eq!(s.s.get(keep), Some(&0));
        // No old id names a new object.
        let again: Vec<_> = (0..4999).map(|i| s.insert(1, i)).collect();
        for old in &ids {
            assert_eq!(s.s.get(*old), None);
        }
        for id in again.iter().rev() {
            s.remove(*id);
        }
        assert_eq!(s.s.table_bytes(), before);
        s.check();
    }

    /// The attack of issue 11: one owner grows the table with all it has,
    /// keeps the last entry (or one entry per chunk) and frees the rest.
    /// What the chunks hold is what their owners are charged; beyond it the
    /// table holds only its directory (before chunks per owner, the table
    /// stayed at its largest size, charged to nobody).
    #[test]
    fn kept_entries_hold_only_what_their_owner_pays_for() {
        let mut s = Owned::new();
        let per = Slab::<u64>::PER_CHUNK;
        let theirs: Vec<_> = (0..3u64).map(|i| s.insert(2, i)).collect();
        let ids: Vec<_> = (0..10_000u64).map(|i| s.insert(1, i)).collect();
        s.check();
        // The last kept.
        for id in &ids[..ids.len() - 1] {
            s.remove(*id);
        }
        s.check();
        assert_eq!(s.s.chunks_of(owner(1)), 1);
        assert_eq!(s.chunk_bytes(), s.charged.iter().sum::<u64>());
        // One per chunk kept: each is its owner's charge.
        let ids: Vec<_> = (0..10_000u64).map(|i| s.insert(1, i)).collect();
        for (n, id) in ids.iter().enumerate() {
            if n % per != 0 {
                s.remove(*id);
            }
        }
        s.check();
        assert_eq!(s.chunk_bytes(), s.charged.iter().sum::<u64>());
        // The other owner's objects never went into the first's chunks.
        let more: Vec<_> = (0..3 * per as u64).map(|i| s.insert(2, i)).collect();
        for id in theirs.iter().chain(&more) {
            assert_eq!(s.s.owner(*id), Some(owner(2)));
        }
        s.check();
        assert_eq!(s.chunk_bytes(), s.charged.iter().sum::<u64>());
    }

    /// A chunk that empties in the middle goes at once (and its owner is
    /// refunded); its directory slot is the next new chunk's, whoever's.
    #[test]
    fn a_chunk_that_empties_in_the_middle_is_freed() {
        let mut s = Owned::new();
        let per = Slab::<u64>::PER_CHUNK;
        let ids: Vec<_> = (0..3 * per as u64).map(|i| s.insert(1, i)).collect();
        assert_eq!(s.s.chunks(), 3);
        for id in &ids[per..2 * per] {
            s.remove(*id);
        }
        assert_eq!(s.s.chunks(), 2);
        s.check();
        let new = s.insert(2, 7);
        assert_eq!(new.index as usize, per, "the freed slot is reused first");
        assert_eq!(s.s.chunks(), 3);
        assert!(ids[per..2 * per].iter().all(|id| s.s.get(*id).is_none()));
        s.check();
    }

    /// A chunk made in a slot whose chunk went starts its generations above
    /// every generation that slot's entries had: no old id names a new
    /// object, however the slot is reused.
    #[test]
    fn generations_never_repeat_across_chunk_reuse() {
        let mut s = Owned::new();
        let per = Slab::<u64>::PER_CHUNK;
        let mut old = Vec::new();
        for round in 0..50u64 {
            // One entry churned often, then the whole chunk freed.
            let o = 1 + round as usize % 2;
            let ids: Vec<_> = (0..per as u64).map(|i| s.insert(o, round * 100 + i)).collect();
            let mut busy = ids[round as usize % per];
            for _ in 0..round {
                s.remove(busy);
                busy = s.insert(o, 0);
                old.push(busy);
            }
            for id in ids.iter().chain([&busy]) {
                s.remove(*id);
            }
            old.extend(ids);
            assert_eq!(s.s.chunks(), 0);
        }
        let fresh: Vec<_> = (0..per as u64).map(|i| s.insert(2, i)).collect();
        for id in &old {
            assert_eq!(s.s.get(*id), None, "{id:?} names a new object");
            assert!(!fresh.contains(id));
        }
        s.check();
    }

    /// A slot with a retired entry is never reused: its chunk goes, the
    /// next chunk takes another slot.
    #[test]
    fn a_slot_with_a_retired_entry_is_not_reused() {
        let mut s = Owned::new();
        let a = s.insert(1, 1u64);
        set_generation(&mut s.s, 0, u32::MAX - 1);
        let old = Id {
            index: a.index,
            generation: u32::MAX - 1,
        };
        assert_eq!(s.remove(old), Some(1));
        assert_eq!(s.s.chunks(), 0);
        let b = s.insert(1, 2);
        assert_eq!(b.index as usize, Slab::<u64>::PER_CHUNK);
        assert_eq!(s.s.get(old), None);
        s.check();
    }

    /// A chunk whose live entries all linger (dead threads and tasks a
    /// CPU has not left yet) is its owner's no more: the owner is refunded
    /// at once (its pool is whole), the chunk is on no list (no new entry
    /// goes there) and goes with its last entry.
    #[test]
    fn lingering_entries_do_not_keep_their_chunk_charged() {
        let mut s = Owned::new();
        let [a, b, c] = [0u64, 1, 2].map(|i| s.insert(1, i));
        assert!(!s.linger(a), "b and c pin the chunk");
        s.remove(b);
        s.check();
        assert_eq!(s.charged[1], Slab::<u64>::CHUNK_COST);
        // The last entry that pinned it lingers: orphaned.
        assert!(s.linger(c));
        assert_eq!((s.charged[1], s.s.chunks_of(owner(1)), s.s.orphans()), (0, 0, 1));
        assert_eq!(s.s.owner(a), Some(None));
        s.check();
        // The owner's next entry goes into a new chunk, not the orphan.
        let d = s.insert(1, 3);
        assert_ne!(Slab::<u64>::split(d.index).0, Slab::<u64>::split(a.index).0);
        s.check();
        s.remove(a);
        s.check();
        s.remove(c);
        assert_eq!(
            (s.s.chunks(), s.s.orphans()),
            (1, 0),
            "the orphan went with its last entry"
        );
        s.check();
        // A chunk is orphaned too when the last entry that pins it goes.
        let e = s.insert(2, 4);
        let f = s.insert(2, 5);
        assert!(!s.linger(e));
        s.remove(f);
        assert_eq!((s.charged[2], s.s.orphans()), (0, 1));
        s.check();
        s.remove(e);
        s.remove(d);
        assert_eq!(s.s.chunks(), 0);
        s.check();
    }

    /// What SECURITY.md says a directory slot holds: its chunk's
    /// pointer and its record's share of a power-of-two block.
    #[test]
    fn a_directory_slot_holds_72_bytes() {
        assert_eq!(core::mem::size_of::<Option<NonNull<u8>>>(), 8);
        assert_eq!(core::mem::size_of::<SlotMeta>(), 56);
        assert_eq!(Slab::<u64>::SLOT_BYTES, 72);
    }

    /// A slab dropped drops the objects it still holds (its chunks are
    /// untyped memory: `Slab`'s own `Drop` does it) and frees its chunks.
    #[test]
    fn a_dropped_slab_drops_its_objects() {
        let counted = std::rc::Rc::new(());
        let mut s = Owned::new();
        let ids: Vec<_> = (0..100).map(|_| s.insert(1, counted.clone())).collect();
        for id in &ids[..40] {
            s.remove(*id);
        }
        assert_eq!(std::rc::Rc::strong_count(&counted), 61);
        drop(s);
        assert_eq!(std::rc::Rc::strong_count(&counted), 1);
    }

    /// The self-check's part finds a broken list and a wrong count.
    #[test]
    fn the_check_finds_broken_records() {
        let mut s = Owned::new();
        let per = Slab::<u64>::PER_CHUNK;
        let ids: Vec<_> = (0..2 * per as u64).map(|i| s.insert(1, i)).collect();
        s.remove(ids[0]);
        s.remove(ids[per]);
        s.check();
        let room = s.room;
        let check = |s: &Slab<u64>| s.check(&|_| true, &|o| Some(room[o.map_or(0, |o| o.index as usize)]));
        let head = room[1] as usize;
        let next = s.s.slots.meta[head].next;
        s.s.slots.meta[head].next = NO_ROOM;
        assert!(check(&s.s).is_err(), "a list cut short");
        s.s.slots.meta[head].next = next;
        assert!(check(&s.s).is_ok());
        s.s.slots.meta[head].used += 1;
        assert!(check(&s.s).is_err(), "a wrong count");
    }

    /// When the chunks at its end go, the directory goes back to what it
    /// was (to the byte: test-caps-kernel-memory's rounds need it).
    #[test]
    fn the_directory_gives_its_memory_back() {
        let mut s = Owned::new();
        let keep: Vec<_> = (0..3u64).map(|i| s.insert(1, i)).collect();
        let (len, cap, meta) = (s.s.slots.dir.len(), s.s.slots.dir.capacity(), s.s.slots.meta.capacity());
        let ids: Vec<_> = (0..10_000u64).map(|i| s.insert(2, i)).collect();
        assert!(s.s.slots.dir.capacity() > 100);
        for id in &ids {
            s.remove(*id);
        }
        assert_eq!(
            (s.s.slots.dir.len(), s.s.slots.dir.capacity(), s.s.slots.meta.capacity()),
            (len, cap, meta)
        );
        s.check();
        // Slots that went from the end start new chunks above what they had.
        let again: Vec<_> = (0..10_000u64).map(|i| s.insert(2, i)).collect();
        assert!(ids.iter().all(|id| s.s.get(*id).is_none()));
        assert!(again.iter().all(|id| !ids.contains(id)));
        assert!(keep.iter().all(|id| s.s.get(*id).is_some()));
        s.check();
    }
}
