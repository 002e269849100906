//! Tasks: an address space (lower half, TTBR0, with an ASID) and a
//! capability space, shared by the task's threads.

mod address_space;

pub use address_space::{copy_from_user, copy_to_user, user_page, AsidAllocator, PendingFlush, UserTables, UserWalk};

use crate::cap::{self, CSpace};
use crate::object::chunks::ChunkList;
use crate::object::keyed::{Keyed, KeyedList};
use crate::object::{Id, Kernel, Memory, MemoryKind, ObjectPtr, ObjectRef};
use abi::{Error, Rights};
use alloc::boxed::Box;
use alloc::vec::Vec;
use hal::mmu::{Attributes, Granularity, MapError, Mapper, MemoryType};

/// Bytes charged for a task (beyond its page tables, charged as they grow,
/// and its share of the ASIDs): its capability space's heap block. (Its
/// entry is in a chunk of the task table its pool pays for.)
pub const TASK_COST: u64 = crate::object::slab::box_cost::<CSpace>();

/// Bytes charged to the mapped task's pool per mapping: its record in the
/// task and in the capability it was made through, each with its share of
/// the spare room of the list in chunks that holds it
/// ([`ChunkList::ENTRY_COST`]).
pub const MAPPING_COST: u64 = KeyedList::<Mapping>::ENTRY_COST + ChunkList::<(Id, u32)>::ENTRY_COST;

/// A range mapped into a task.
#[derive(Clone, Copy, Debug)]
pub struct Mapping {
    pub va: u64,
    pub pages: usize,
    pub memory: Id,
    /// Capability it was mapped through.
    pub cap: Id,
    /// READ, WRITE, EXECUTE as mapped (counted in its memory's
    /// [`crate::object::MappedAs`]).
    pub rights: Rights,
    /// Where the capability records it: the index in its list (which
    /// records this mapping's index in the task's list), so that either
    /// side goes in constant time.
    pub cap_index: u32,
    /// Pages from its start unmapped already: a removal in progress, done
    /// in bounded pieces ([`remove_mapping_piece`]).
    pub unmapped: u32,
    /// Pages from its start mapped so far: below `pages` while the `Map`
    /// that made it goes on in pieces ([`map_more`]); the rest of the
    /// range is not mapped (a removal unmaps only these).
    pub filled: u32,
    /// The thread whose `Map` is filling it in pieces (its
    /// [`crate::thread::Thread::mapping`] names it), while it does.
    pub maker: Option<Id>,
}

/// A task's mappings are found by their address (`Unmap`).
impl Keyed for Mapping {
    fn key(&self) -> u64 {
        self.va
    }
}

/// Most pages one piece of a `Map` maps ([`map_more`]), and the largest
/// `Map` done in one go by the system call (larger ones are restarted
/// between pieces).
pub const MAP_PIECE_PAGES: usize = 1024;

/// Most pages one piece of a removal unmaps ([`remove_mapping_piece`]).
const UNMAP_PIECE_PAGES: usize = 2048;
/// Work units ([`Kernel::spend`], about instructions) of the pieces of
/// teardown: a mapping's record, a page, a thread, a table (freed when an
/// unmap empties it).
const MAPPING_UNITS: u32 = 400;
const THREAD_UNITS: u32 = 1500;
const TABLE_UNITS: u32 = 1000;
/// Work units of a mapping's removal from its task's tree by address
/// ([`KeyedList::swap_remove`]: a walk down the tree and back up, and one
/// to relink the record moved into the gap), but in its task's teardown
/// ([`KeyedList::drop_order`]). Set when the removal took about 2,000
/// instructions with 32,768 mappings; it takes fewer since its walks are
/// loops (not measured alone).
const TREE_UNITS: u32 = 1500;

pub struct Task {
    /// Physical address of the level-0 table.
    pub root: u64,
    pub asid: u16,
    /// Translation tables below the root, each a page charged to its pool.
    /// The tree is pruned ([`UserTables`]): a table goes with the last
    /// mapping in its range, so these are never more than its mappings
    /// need (three a mapping at most), and none once they are gone.
    pub tables: u64,
    /// Boxed: its threads keep its address ([`crate::thread::Thread::cspace`]).
    pub cspace: Box<CSpace>,
    /// In chunks, found by address in O(log n) ([`KeyedList`]); a
    /// mapping's index changes only when a removal moves the last into its
    /// place ([`detach_mapping`]).
    pub mappings: KeyedList<Mapping>,
    pub threads: Vec<Id>,
    pub alive: bool,
    pub refs: u32,
    pub pool: Id,
    pub name: [u8; 16],
    /// Destroyed and accounted for; its root table and ASID are freed
    /// once no CPU runs on them.
    pub free_pending: bool,
    /// CPU time (counter ticks) of its threads that have exited.
    pub exited_ticks: u64,
    /// Bytes charged to its pool for it ([`Kernel::task_cost`] when made).
    pub charge: u64,
    /// Being torn down ([`teardown_piece`]): no longer alive, its threads,
    /// mappings (and with them its tables) and capabilities still going,
    /// a bounded piece at a time (see [`work_off`]).
    pub teardown: bool,
}

impl Task {
    /// TTBR0 value: root table and ASID.
    pub fn ttbr0(&self) -> u64 {
        self.root | ((self.asid as u64) << 48)
    }

    /// Where its capability space is, for its threads.
    pub fn cspace_ptr(&mut self) -> ObjectPtr<CSpace> {
        ObjectPtr::new(&mut self.cspace)
    }

    pub fn name(&self) -> &str {
        abi::boot_info::nul_terminated(&self.name)
    }
}

/// Create an empty task charged to `pool`.
pub fn create(k: &mut Kernel, pool: Id, name: &str) -> Result<Id, Error> {
    let charge = k.task_cost;
    k.charge(pool, charge)?;
    let Some(asid) = k.asids.allocate() else {
        k.refund(pool, charge);
        return Err(Error::OutOfMemory);
    };
    let Some(cspace) = crate::mm::heap::try_box(CSpace::new()) else {
        k.asids.free(asid);
        k.refund(pool, charge);
        return Err(Error::OutOfMemory);
    };
    let Some(root) = crate::mm::frames::alloc_zeroed(1) else {
        k.asids.free(asid);
        k.refund(pool, charge);
        return Err(Error::OutOfMemory);
    };
    let mut task = Task {
        root,
        asid,
        tables: 0,
        cspace,
        mappings: KeyedList::new(),
        threads: Vec::new(),
        alive: true,
        refs: 0,
        pool,
        name: [0; 16],
        free_pending: false,
        exited_ticks: 0,
        charge,
        teardown: false,
    };
    abi::boot_info::set_nul_padded(&mut task.name, name);
    match k.store(Some(pool), task) {
        Ok(id) => {
            k.add_ref(ObjectRef::Pool(pool));
            Ok(id)
        }
        Err(_) => {
            crate::mm::frames::free(root, 1);
            k.asids.free(asid);
            k.refund(pool, charge);
            Err(Error::OutOfMemory)
        }
    }
}

/// Map `pages` pages of memory object `memory` (from page `offset`) at `va`
/// in `task`, through capability `cap`, with `rights` (READ/WRITE/EXECUTE).
#[allow(clippy::too_many_arguments)] // mirrors the Map system call's arguments
pub fn map(
    k: &mut Kernel,
    task: Id,
    cap: Id,
    memory: Id,
    offset: usize,
    pages: usize,
    va: u64,
    rights: Rights,
) -> Result<(), Error> {
    map_first(k, task, cap, memory, offset, pages, va, rights, None).map(|_| ())
}

/// [`map`], or with `maker` only its first [`MAP_PIECE_PAGES`] pages: the
/// mapping is recorded (whole: its W^X count, its charge, its reference to
/// its memory) with the rest of its range not mapped yet, and `maker` goes
/// on with [`map_more`]. Its index in the task's mappings when some is left.
#[allow(clippy::too_many_arguments)] // mirrors the Map system call's arguments
pub fn map_first(
    k: &mut Kernel,
    task: Id,
    cap: Id,
    memory: Id,
    offset: usize,
    pages: usize,
    va: u64,
    rights: Rights,
    maker: Option<Id>,
) -> Result<Option<usize>, Error> {
    let m: &Memory = k.memories.get(memory).ok_or(Error::BadHandle)?;
    let end = offset.checked_add(pages).ok_or(Error::InvalidArgument)?;
    let size = (pages as u64)
        .checked_mul(abi::PAGE_SIZE as u64)
        .ok_or(Error::InvalidArgument)?;
    if pages == 0
        || pages > u32::MAX as usize
        || end > m.pages
        || !va.is_multiple_of(abi::PAGE_SIZE as u64)
        || va.checked_add(size).is_none_or(|e| e > abi::USER_LIMIT)
    {
        return Err(Error::InvalidArgument);
    }
    if rights.contains(Rights::WRITE) && rights.contains(Rights::EXECUTE) {
        return Err(Error::InvalidArgument);
    }
    // The boot archive is never writable; programs' code runs from its
    // pages (the loaders map read-only segments straight from it).
    if m.kind == MemoryKind::Boot && rights.contains(Rights::WRITE) {
        return Err(Error::NoRights);
    }
    if m.kind == MemoryKind::Device && rights.contains(Rights::EXECUTE) {
        // Device registers are never executable.
        return Err(Error::InvalidArgument);
    }
    // W^X across mappings too (issue 11, finding 4): memory mapped writable
    // anywhere, in any task, is mapped executable nowhere, and the other
    // way round, whichever capability to it is used.
    if !m.mapped.allows(rights) {
        return Err(Error::InvalidState);
    }
    let attributes = attributes_of(m.kind, rights);
    let t = k.tasks.get(task).ok_or(Error::BadHandle)?;
    if !t.alive {
        return Err(Error::InvalidState);
    }
    // A mapping starts here already (one being removed in pieces, its
    // first pages unmapped): its removal goes on first (an `Unmap` of it).
    if t.mappings.find(va).is_some() {
        return Err(Error::AlreadyMapped);
    }
    if k.caps.get(cap).is_none() {
        return Err(Error::BadHandle);
    }
    let first = if maker.is_some() {
        pages.min(MAP_PIECE_PAGES)
    } else {
        pages
    };
    // Bookkeeping space first, so a failure leaves nothing half-done; the
    // record is charged; then the tables.
    let pool = t.pool;
    let reserved = k.tasks.get_mut(task).expect("checked").mappings.reserve().is_ok()
        && k.caps.get_mut(cap).expect("checked").mappings.reserve().is_ok();
    let mut result = if reserved {
        k.charge(pool, MAPPING_COST)
    } else {
        Err(Error::OutOfMemory)
    };
    if result.is_ok() {
        result = map_range(k, task, va, memory, offset, first, attributes);
        if result.is_err() {
            k.refund(pool, MAPPING_COST);
        }
    }
    if let Err(e) = result {
        // (The room reserved goes again.)
        k.tasks.get_mut(task).expect("checked").mappings.trim();
        k.caps.get_mut(cap).expect("checked").mappings.trim();
        return Err(e);
    }
    let cap_index = k.caps.get(cap).expect("checked").mappings.len() as u32;
    let more = first < pages;
    let record = Mapping {
        va,
        pages,
        memory,
        cap,
        rights,
        cap_index,
        unmapped: 0,
        filled: first as u32,
        maker: if more { maker } else { None },
    };
    let t = k.tasks.get_mut(task).expect("checked");
    // (Room was reserved for both: neither fails.)
    let Ok(task_index) = t.mappings.insert(record) else {
        unreachable!("room reserved")
    };
    let task_index = task_index as u32;
    let c = k.caps.get_mut(cap).expect("checked");
    if c.mappings.push((task, task_index)).is_err() {
        unreachable!("room reserved");
    }
    k.memories.get_mut(memory).expect("checked").mapped.count(rights, true);
    // The mapping keeps its memory: no frame of it goes back to the
    // allocator while it is mapped (see `unmap_record`).
    k.add_ref(ObjectRef::Memory(memory));
    if more {
        k.spend(first as u32 * MAP_PAGE_UNITS + 100);
    }
    Ok(more.then_some(task_index as usize))
}

/// Work units of a page mapped by [`map_more`] (about 10 instructions).
const MAP_PAGE_UNITS: u32 = 10;

fn attributes_of(kind: MemoryKind, rights: Rights) -> Attributes {
    Attributes {
        memory: if kind == MemoryKind::Device {
            MemoryType::Device
        } else {
            MemoryType::Normal
        },
        writable: rights.contains(Rights::WRITE),
        executable: rights.contains(Rights::EXECUTE),
        user: true,
        not_global: true,
    }
}

/// Map `pages` pages of `memory`, from its page `page` on, at `va` in
/// `task`, all or nothing: the pool pays for every table page the walk
/// may create up front, and gets back what was not used (and, when the map
/// fails, the tables it made and left empty). One walk per run of
/// physically contiguous pages (one for an object in one block).
fn map_range(
    k: &mut Kernel,
    task: Id,
    va: u64,
    memory: Id,
    page: usize,
    pages: usize,
    attributes: Attributes,
) -> Result<(), Error> {
    let pool = k.tasks.get(task).ok_or(Error::InvalidState)?.pool;
    let pool_left = k.pools.get(pool).map_or(0, |p| p.bytes_left);
    let budget = pool_left / abi::PAGE_SIZE as u64;
    k.charge(pool, budget * abi::PAGE_SIZE as u64)?;
    let t = k.tasks.get_mut(task).expect("checked");
    let mut tables = UserTables::new(&mut t.tables, budget);
    let mut result = Ok(());
    if let Some(m) = k.memories.get(memory) {
        let mut mapper = Mapper::new(t.root, &mut tables);
        let mut done = 0;
        while done < pages {
            let (pa, run) = m.run(page + done);
            let n = run.min(pages - done);
            let at = va + (done * abi::PAGE_SIZE) as u64;
            // All or nothing: on failure no page of the range stays mapped.
            result = mapper.map(at, pa, (n * abi::PAGE_SIZE) as u64, attributes, Granularity::Pages);
            if result.is_err() {
                // (The runs before were unmapped before this call.)
                mapper.unmap(va, (done * abi::PAGE_SIZE) as u64);
                break;
            }
            done += n;
        }
    } else {
        result = Err(MapError::Misaligned);
    }
    let (asid, unused, freed) = (t.asid, tables.budget, tables.freed);
    k.refund(pool, (unused + freed.count) * abi::PAGE_SIZE as u64);
    if let Err(e) = result {
        // A walk by another CPU running this task may have cached an entry
        // that the failed map wrote and cleared again, or one naming a
        // table it made and freed again: flushed before that goes.
        k.tlb.add(asid, va, pages);
        k.tlb.free_tables(freed);
        k.tlb.flush();
        return Err(match e {
            MapError::AlreadyMapped { .. } => Error::AlreadyMapped,
            MapError::OutOfTables => Error::OutOfMemory,
            MapError::Misaligned => Error::InvalidArgument,
        });
    }
    hal::cpu::table_write_barrier();
    Ok(())
}

/// Map the next pieces of `task`'s mapping number `i` (made by
/// [`map_first`], page `offset` of its memory at its start) while the work
/// budget lasts. Whether it is all mapped. A piece that fails maps nothing
/// (the caller removes the mapping: the `Map` is all or nothing).
pub fn map_more(k: &mut Kernel, task: Id, i: usize, offset: usize) -> Result<bool, Error> {
    loop {
        let t = k.tasks.get(task).ok_or(Error::BadHandle)?;
        if !t.alive {
            return Err(Error::InvalidState);
        }
        let m = *t.mappings.get(i).ok_or(Error::InvalidState)?;
        let mem = k.memories.get(m.memory).ok_or(Error::InvalidState)?;
        let done = m.filled as usize;
        let n = (m.pages - done).min(MAP_PIECE_PAGES);
        let va = m.va + (done * abi::PAGE_SIZE) as u64;
        map_range(
            k,
            task,
            va,
            m.memory,
            offset + done,
            n,
            attributes_of(mem.kind, m.rights),
        )?;
        let x = &mut k.tasks.get_mut(task).expect("checked").mappings[i];
        x.filled += n as u32;
        let all = x.filled as usize == x.pages;
        if all {
            x.maker = None;
        }
        if !k.spend(n as u32 * MAP_PAGE_UNITS + 100) || all {
            return Ok(all);
        }
    }
}

/// Remove the mapping that starts at `va` (`pages` must match); it goes
/// from the capability's records too. A large one goes in pieces: when the
/// work budget runs out first, the system call is restarted
/// ([`Kernel::restart`]) and goes on where it stopped.
pub fn unmap(k: &mut Kernel, task: Id, va: u64, pages: usize) -> Result<(), Error> {
    let t = k.tasks.get(task).ok_or(Error::BadHandle)?;
    // A walk of the task's tree of mappings: O(log n).
    let i = t.mappings.find(va).ok_or(Error::NotMapped)?;
    if t.mappings[i].pages != pages {
        return Err(Error::InvalidArgument);
    }
    if !remove_mapping_piece(k, task, i) {
        k.restart = true;
    }
    k.tlb.flush();
    Ok(())
}

/// Unmap the next piece (at most [`UNMAP_PIECE_PAGES`] pages) of `task`'s
/// mapping number `i`, and when none is left, drop its records (in the
/// task and in its capability, each in constant time) and its reference to
/// its memory. Whether the mapping is gone.
pub fn remove_mapping_piece(k: &mut Kernel, task: Id, i: usize) -> bool {
    let Some(t) = k.tasks.get_mut(task) else { return true };
    let Some(m) = t.mappings.get(i).copied() else {
        return true;
    };
    // (Only the part a `Map` in pieces filled is mapped.)
    let left = m.filled as usize - m.unmapped as usize;
    let n = left.min(UNMAP_PIECE_PAGES);
    let start = m.va + (m.unmapped as u64) * abi::PAGE_SIZE as u64;
    let mut tables = UserTables::new(&mut t.tables, 0);
    Mapper::new(t.root, &mut tables).unmap(start, (n * abi::PAGE_SIZE) as u64);
    let freed = tables.freed;
    let (asid, pool) = (t.asid, t.pool);
    if n < left {
        t.mappings[i].unmapped += n as u32;
    }
    // The TLB is flushed at the end of the piece (the mapping still holds
    // its memory), or below before the memory may go; the tables the
    // unmap emptied go after that flush, their pages back to the pool now.
    k.tlb.add(asid, start, n);
    let gone = freed.count;
    if gone > 0 {
        k.tlb.free_tables(freed);
        k.refund(pool, gone * abi::PAGE_SIZE as u64);
    }
    k.spend(n as u32 * 4 + 100 + gone as u32 * TABLE_UNITS);
    if n < left {
        return false;
    }
    detach_mapping(k, task, i);
    k.refund(pool, MAPPING_COST);
    if let Some(mem) = k.memories.get_mut(m.memory) {
        mem.mapped.count(m.rights, false);
    }
    if k.memories.get(m.memory).is_none_or(|mem| mem.refs <= 1) {
        // Its frames may go back now: no CPU may keep a translation.
        k.tlb.flush();
    }
    // Unmapped (and flushed everywhere, or its memory stays while a flush
    // is pending): now its memory may go.
    k.release(ObjectRef::Memory(m.memory));
    k.spend(MAPPING_UNITS);
    true
}

/// Drop mapping `i`'s records from `task` and from its capability; each
/// list fills the gap with its last entry, whose other side learns its new
/// index.
fn detach_mapping(k: &mut Kernel, task: Id, i: usize) {
    let Some(t) = k.tasks.get_mut(task) else { return };
    if t.mappings.is_ordered() {
        k.spend(TREE_UNITS);
    }
    let Some(t) = k.tasks.get_mut(task) else { return };
    let Some(m) = t.mappings.swap_remove(i) else { return };
    let moved = t.mappings.get(i).copied();
    let last = t.mappings.len();
    if let Some(moved) = moved {
        // A `Map` filling it in pieces finds it at its new index.
        if let Some(p) = moved
            .maker
            .and_then(|th| k.threads.get_mut(th))
            .and_then(|th| th.mapping.as_deref_mut())
            .filter(|p| p.task == task && p.index as usize == last)
        {
            p.index = i as u32;
        }
        if let Some(entry) = k
            .caps
            .get_mut(moved.cap)
            .and_then(|c| c.mappings.get_mut(moved.cap_index as usize))
        {
            entry.1 = i as u32;
        }
    }
    let Some(c) = k.caps.get_mut(m.cap) else { return };
    let j = m.cap_index as usize;
    if j >= c.mappings.len() {
        return;
    }
    c.mappings.swap_remove(j);
    let moved = c.mappings.get(j).copied();
    if let Some((other, index)) = moved {
        if let Some(x) = k.tasks.get_mut(other).and_then(|t| t.mappings.get_mut(index as usize)) {
            x.cap_index = j as u32;
        }
    }
}

/// Kill a task: it is no longer alive, and its threads, capabilities and
/// mappings go in bounded pieces ([`work_off`]; the caller's system call
/// waits for them, see `syscall::dispatch`). Threads blocked on it get
/// `PeerDied`. The object stays while capabilities name it.
pub fn kill(k: &mut Kernel, task: Id) {
    task_finished(k, task);
}

/// The task has no threads left (or was killed): release what it holds,
/// in pieces ([`teardown_piece`]).
pub fn task_finished(k: &mut Kernel, task: Id) {
    let Some(t) = k.tasks.get_mut(task) else { return };
    if !t.alive {
        return;
    }
    t.alive = false;
    t.teardown = true;
    k.defer_teardown();
}

/// Tear down tasks queued by [`task_finished`] while the work budget
/// lasts; whether none is left.
pub fn work_off(k: &mut Kernel) -> bool {
    while k.teardown_pending > 0 {
        let Some(task) = k.tasks.iter().find(|(_, t)| t.teardown).map(|(id, _)| id) else {
            // (None is: the count is set right.)
            while k.teardown_pending > 0 {
                k.teardown_done();
            }
            break;
        };
        if !teardown_piece(k, task) || !k.has_work_left() {
            return k.teardown_pending == 0;
        }
    }
    true
}

/// Go on tearing down `task` until done or out of budget: its threads,
/// then its mappings (they refer to capabilities; their translation tables
/// go with them), its capabilities. Whether it is done.
fn teardown_piece(k: &mut Kernel, task: Id) -> bool {
    let done = teardown_steps(k, task);
    k.tlb.flush();
    done
}

fn teardown_steps(k: &mut Kernel, task: Id) -> bool {
    // Threads, last first (each leaves the list in constant time).
    while let Some(th) = k.tasks.get(task).and_then(|t| t.threads.last().copied()) {
        if k.threads.get(th).is_some_and(|t| t.is_alive()) {
            crate::thread::kill(k, th);
        }
        if let Some(t) = k.tasks.get_mut(task) {
            if t.threads.last() == Some(&th) {
                t.threads.pop();
            }
        }
        if !k.spend(THREAD_UNITS) {
            return false;
        }
    }
    if let Some(t) = k.tasks.get_mut(task) {
        // They all go: no tree to keep in order meanwhile.
        t.mappings.drop_order();
    }
    while let Some(i) = k.tasks.get(task).and_then(|t| t.mappings.len().checked_sub(1)) {
        remove_mapping_piece(k, task, i);
        if !k.has_work_left() {
            return false;
        }
    }
    while let Some((slot, c)) = k.tasks.get(task).and_then(|t| t.cspace.last_cap()) {
        if cap::delete_piece(k, c) {
            if let Some(t) = k.tasks.get_mut(task) {
                // Emptied by the delete; made sure of, so the loop ends.
                t.cspace.forget(slot);
            }
        }
        if !k.has_work_left() {
            return false;
        }
    }
    // Its tables went with its mappings (and every CPU's TLB dropped
    // their walks before their frames went, as for any unmap): the root
    // holds nothing now.
    k.tlb.flush();
    let Some(t) = k.tasks.get_mut(task) else { return true };
    t.teardown = false;
    let (name, refs) = (t.name, t.refs);
    k.teardown_done();
    crate::debug!("task {} ended", abi::boot_info::nul_terminated(&name));
    if k.init_task == Some(task) {
        crate::boot_task::init_ended(k);
    }
    if refs == 0 {
        // Its last reference went while it was being torn down.
        destroy_object(k, task);
    }
    true
}

/// The last reference went.
pub fn destroy_object(k: &mut Kernel, task: Id) {
    if let Some(t) = k.tasks.get(task) {
        if t.alive && !t.threads.is_empty() {
            // Still running (its threads hold references; not reached).
            if let Some(t) = k.tasks.get_mut(task) {
                t.refs = 1;
            }
            return;
        }
        if t.alive {
            // Nobody can name it and no thread runs in it: it is gone,
            // in pieces; the teardown's end comes back here.
            task_finished(k, task);
            return;
        }
        if t.teardown {
            return;
        }
    }
    // Its memory is accounted back to its pool now...
    let pool = match k.tasks.get_mut(task) {
        Some(t) if !t.free_pending => {
            t.free_pending = true;
            Some((t.pool, t.charge))
        }
        _ => None,
    };
    if let Some((pool, charge)) = pool {
        k.refund(pool, charge);
        k.release(ObjectRef::Pool(pool));
    }
    // ...but the root table and ASID stay while any CPU still runs on them
    // (a thread killed from elsewhere, not yet switched away); that CPU
    // finishes the job when it switches (see `reap`: the thread it runs is
    // the one it reaps then, even one capabilities still name). The task
    // lingers meanwhile: its chunk does not keep the pool either.
    let mut running = false;
    for c in k.cpus.iter_mut() {
        if c.current
            .and_then(|th| k.threads.get(th))
            .is_some_and(|th| th.task == task)
        {
            c.reap = c.current;
            running = true;
        }
    }
    if running {
        // (Not when another CPU's switch brought it back here: it lingers
        // already.)
        if let Some((pool, _)) = pool {
            k.linger::<Task>(task, pool);
        }
        return;
    }
    if let Some(t) = k.unstore::<Task>(task) {
        crate::mm::frames::free(t.root, 1);
        k.asids.free(t.asid);
    }
}
