//! Memory objects: RAM and device memory, map, unmap, physical address.

use super::{arg, give, object, pool_arg, regs, task_arg, task_of};
use crate::object::{Id, Kernel, MemoryKind, ObjectRef};
use crate::task;
use abi::{Error, Rights};

/// Largest RAM memory object, in pages (1 GiB).
const MAX_PAGES: u64 = 1 << 18;
/// Pages zeroed between two looks at the work budget (about 4,200
/// instructions with `DC ZVA`).
const ZERO_PIECE: usize = 16;

/// A RAM memory object of `pages` zeroed, physically contiguous pages, at
/// once (boot: the first task's memory, which the kernel writes through
/// its address). System calls go through [`create_memory_call`].
pub fn create_memory(k: &mut Kernel, pool: Id, pages: u64) -> Result<Id, Error> {
    let id = start_memory(k, pool, pages, true)?;
    let m = k.memories.get_mut(id).expect("just made");
    crate::mm::frames::zero(m.physical, m.pages);
    m.refs = 0;
    Ok(id)
}

/// A RAM memory object of `pages` pages, charged to `pool`, not zeroed:
/// its one reference is its maker's (nobody can name it yet). One block
/// when the frame allocator has one; else, unless `contiguous`, runs of
/// smaller blocks, listed in kernel memory that the pool is charged for.
fn start_memory(k: &mut Kernel, pool: Id, pages: u64, contiguous: bool) -> Result<Id, Error> {
    if pages == 0 || pages > MAX_PAGES {
        return Err(Error::InvalidArgument);
    }
    let pages = pages as usize;
    let mut charge = crate::mm::frames::charge(pages);
    k.charge(pool, charge)?;
    let (physical, extents) = match crate::mm::frames::alloc(pages) {
        Some(pa) => (pa, None),
        None if !contiguous => match gather_extents(k, pool, pages) {
            Ok((list, cost)) => {
                charge += cost;
                (list[0].pa, Some(list))
            }
            Err(e) => {
                k.refund(pool, charge);
                return Err(e);
            }
        },
        None => {
            k.refund(pool, charge);
            return Err(Error::OutOfMemory);
        }
    };
    let m = crate::object::Memory {
        physical,
        pages,
        kind: MemoryKind::Ram,
        contiguous,
        // (Set once stored: a failed insert would drop it.)
        extents: None,
        pool: Some(pool),
        charge,
        refs: 1,
        mapped: crate::object::MappedAs::NONE,
    };
    match k.store(Some(pool), m) {
        Ok(id) => {
            k.memories.get_mut(id).expect("just made").extents = extents;
            k.add_ref(ObjectRef::Pool(pool));
            Ok(id)
        }
        Err(_) => {
            free_frames(physical, pages, extents.as_deref());
            k.refund(pool, charge);
            Err(Error::OutOfMemory)
        }
    }
}

/// Give a RAM object's frames back to the allocator: `pages` pages at
/// `physical`, or its runs `extents`.
pub fn free_frames(physical: u64, pages: usize, extents: Option<&[crate::mm::extents::Extent]>) {
    match extents {
        None => crate::mm::frames::free(physical, pages),
        Some(list) => {
            let mut start = 0;
            for e in list {
                crate::mm::frames::free(e.pa, (e.end - start) as usize);
                start = e.end;
            }
        }
    }
}

/// `pages` pages as runs of smaller blocks (largest first), where no block
/// of them all is free; the list of runs is charged to `pool` (its cost
/// returned). While gathered, the blocks are linked through their first
/// two words (the object is zeroed before anyone sees it).
fn gather_extents(
    k: &mut Kernel,
    pool: Id,
    pages: usize,
) -> Result<(alloc::boxed::Box<[crate::mm::extents::Extent]>, u64), Error> {
    use crate::mm::{extents, frames, layout::phys_to_virt};
    let mut head = u64::MAX;
    let mut tail = u64::MAX;
    let link = |pa: u64, word: usize| phys_to_virt(pa) as *mut u64 as usize + word * 8;
    let whole = extents::gather(pages, frames::alloc, |pa, n| {
        // SAFETY: `pa` was just allocated (at least a page), reached
        // through the linear map; nobody else holds it.
        unsafe {
            *(link(pa, 0) as *mut u64) = u64::MAX;
            *(link(pa, 1) as *mut u64) = n as u64;
            if tail != u64::MAX {
                *(link(tail, 0) as *mut u64) = pa;
            } else {
                head = pa;
            }
        }
        tail = pa;
    });
    let read = |pa: u64| {
        // SAFETY: a block linked above, still ours.
        unsafe { (*(link(pa, 0) as *const u64), *(link(pa, 1) as *const u64) as usize) }
    };
    let blocks = || {
        core::iter::successors((head != u64::MAX).then_some(head), |&pa| {
            Some(read(pa).0).filter(|&n| n != u64::MAX)
        })
        .map(|pa| (pa, read(pa).1))
    };
    let mut list = alloc::vec::Vec::new();
    let n = extents::runs(blocks());
    let cost = core::alloc::Layout::array::<extents::Extent>(n).map(|l| frames::block_size(l) as u64);
    let made = match cost {
        Ok(cost) if whole => match k.charge(pool, cost) {
            Ok(()) if list.try_reserve_exact(n).is_ok() => true,
            Ok(()) => {
                k.refund(pool, cost);
                false
            }
            Err(_) => false,
        },
        _ => false,
    };
    let mut at = head;
    while at != u64::MAX {
        // (The link is read before the block is freed.)
        let (next, pages) = read(at);
        if made {
            extents::push(&mut list, at, pages);
        } else {
            frames::free(at, pages);
        }
        at = next;
    }
    match cost {
        Ok(cost) if made => Ok((list.into_boxed_slice(), cost)),
        _ => Err(Error::OutOfMemory),
    }
}

/// `Create` of a RAM memory object by thread `cur`: its pages are zeroed
/// in pieces of the work budget. Out of budget, the call is to be made
/// again ([`Kernel::restart`], `Ok(None)`) and goes on where it stopped:
/// the thread keeps the object meanwhile ([`Thread::creating`]), which
/// nobody else can name, map or read until it is all zero; then it is
/// returned with no references (the caller gives it its capability).
///
/// [`Thread::creating`]: crate::thread::Thread::creating
pub fn create_memory_call(k: &mut Kernel, cur: Id, pool: Id, pages: u64, flags: u64) -> Result<Option<Id>, Error> {
    if flags & !abi::MEMORY_CONTIGUOUS != 0 {
        return Err(Error::InvalidArgument);
    }
    let contiguous = flags != 0;
    let pending = k.threads.get(cur).and_then(|t| t.creating);
    let mut c = match pending {
        // The same call, made again: it goes on.
        Some(c)
            if k.memories
                .get(c.memory)
                .is_some_and(|m| m.pool == Some(pool) && m.pages as u64 == pages && m.contiguous == contiguous) =>
        {
            c
        }
        _ => {
            // (One left by a call that was not made again goes.)
            drop_creation(k, cur);
            let memory = start_memory(k, pool, pages, contiguous)?;
            crate::thread::Creating { memory, zeroed: 0 }
        }
    };
    let pages = pages as usize;
    while c.zeroed < pages {
        let (physical, run) = k.memories.get(c.memory).expect("held by its maker").run(c.zeroed);
        let n = (pages - c.zeroed).min(ZERO_PIECE).min(run);
        let cost = crate::mm::frames::zero(physical, n);
        c.zeroed += n;
        if !k.spend(cost) && c.zeroed < pages {
            let t = k.threads.get_mut(cur).expect("the running thread");
            t.creating = Some(c);
            k.restart = true;
            return Ok(None);
        }
    }
    if let Some(t) = k.threads.get_mut(cur) {
        t.creating = None;
    }
    // The maker's reference goes: its capability takes over.
    k.memories.get_mut(c.memory).expect("held by its maker").refs = 0;
    Ok(Some(c.memory))
}

/// Thread `id`'s unfinished memory creation, if any, goes (its memory back
/// to its pool): the thread died, or its call was not made again.
pub fn drop_creation(k: &mut Kernel, id: Id) {
    if let Some(c) = k.threads.get_mut(id).and_then(|t| t.creating.take()) {
        k.release(ObjectRef::Memory(c.memory));
    }
}

/// `None`: more than [`task::MAP_PIECE_PAGES`] pages, made in pieces by
/// `long_call` ([`map_in_pieces`]), which set the status.
pub(super) fn map(k: &mut Kernel, cur: Id) -> Option<Result<(), Error>> {
    match map_small(k, cur) {
        Ok(false) => {
            super::long_call(k, cur, abi::Syscall::Map);
            None
        }
        result => Some(result.map(|_| ())),
    }
}

/// Whether it was made: not when larger than a piece.
#[inline(always)]
fn map_small(k: &mut Kernel, cur: Id) -> Result<bool, Error> {
    let target = task_arg(k, cur, 0, Rights::MAP)?;
    let rights = Rights::from_bits_truncate(arg(k, cur, 5) as u32) & (Rights::READ | Rights::WRITE | Rights::EXECUTE);
    let (cap_id, object) = object(k, cur, 1, Rights::MAP | rights)?;
    let ObjectRef::Memory(memory) = object else {
        return Err(Error::WrongType);
    };
    let (pages, offset, va) = (arg(k, cur, 2) as usize, arg(k, cur, 3) as usize, arg(k, cur, 4));
    if pages > task::MAP_PIECE_PAGES {
        return Ok(false);
    }
    task::map(k, target, cap_id, memory, offset, pages, va, rights).map(|()| true)
}

/// A `Map` of more than [`task::MAP_PIECE_PAGES`] pages, in pieces of the
/// work budget (the call is restarted between them, see `long_call`). The
/// mapping is recorded whole from the first piece on (charged, counted for
/// W^X, holding its memory); its pages are mapped from its start, and the
/// rest of its range is not mapped meanwhile. Whoever removes it (an
/// `Unmap`, its capability's delete, its task's teardown) unmaps what is
/// mapped, and the restarted call then fails. A piece that fails (tables
/// out of memory, a page mapped by someone else meanwhile) makes the
/// mapping go again, in pieces, before the call returns its error: all or
/// nothing. A call made again with other arguments (its registers changed)
/// leaves the mapping as it is, recorded and partly mapped.
pub(super) fn map_in_pieces(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let target = task_arg(k, cur, 0, Rights::MAP)?;
    let rights = Rights::from_bits_truncate(arg(k, cur, 5) as u32) & (Rights::READ | Rights::WRITE | Rights::EXECUTE);
    let (cap_id, object) = object(k, cur, 1, Rights::MAP | rights)?;
    let ObjectRef::Memory(memory) = object else {
        return Err(Error::WrongType);
    };
    let (pages, offset, va) = (arg(k, cur, 2) as usize, arg(k, cur, 3) as usize, arg(k, cur, 4));
    // (Taken only now: a failed lookup leaves it, and its mapping's maker.)
    let progress = k.threads.get_mut(cur).and_then(|t| t.mapping.take());
    // Its box, kept for a new call.
    let mut spare = None;
    let mut progress = match progress {
        Some(p) => {
            let record = k
                .tasks
                .get(p.task)
                .and_then(|t| t.mappings.get(p.index as usize))
                .filter(|m| m.maker == Some(cur))
                .copied();
            let same_call = p.task == target && p.va == va && p.pages == pages && p.offset == offset;
            match record {
                Some(m) if same_call && m.cap == cap_id && m.memory == memory && m.rights == rights => Some(p),
                // Removed by someone else meanwhile (what was mapped went).
                None if same_call => return Err(p.failed.unwrap_or(Error::InvalidState)),
                Some(_) => {
                    // Another call: the old mapping stays as it is.
                    let x = &mut k.tasks.get_mut(p.task).expect("found").mappings[p.index as usize];
                    x.maker = None;
                    spare = Some(p);
                    None
                }
                None => {
                    spare = Some(p);
                    None
                }
            }
        }
        None => None,
    };
    if progress.is_none() {
        let fresh = crate::thread::MapProgress {
            task: target,
            index: 0,
            va,
            pages,
            offset,
            failed: None,
        };
        // Its room first: nothing is mapped if there is none.
        let mut b = match spare {
            Some(mut b) => {
                *b = fresh;
                b
            }
            None => crate::mm::heap::try_box(fresh).ok_or(Error::OutOfMemory)?,
        };
        let Some(index) = task::map_first(k, target, cap_id, memory, offset, pages, va, rights, Some(cur))? else {
            return Ok(());
        };
        b.index = index as u32;
        progress = Some(b);
    }
    let mut p = progress.expect("set");
    let (task, i) = (p.task, p.index as usize);
    if p.failed.is_none() && k.has_work_left() {
        let removing = k.tasks.get(task).is_some_and(|t| t.mappings[i].unmapped > 0);
        let result = if removing {
            // Someone else removes it.
            Err(Error::InvalidState)
        } else {
            task::map_more(k, task, i, offset)
        };
        match result {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            // Being removed, or its task is dying (the teardown removes
            // it): no longer this thread's.
            Err(Error::InvalidState) => {
                if let Some(x) = k.tasks.get_mut(task).and_then(|t| t.mappings.get_mut(i)) {
                    x.maker = None;
                }
                return Err(Error::InvalidState);
            }
            Err(e) => p.failed = Some(e),
        }
    }
    if let Some(e) = p.failed {
        // All or nothing: the mapping goes again.
        loop {
            if task::remove_mapping_piece(k, task, i) {
                k.tlb.flush();
                return Err(e);
            }
            if !k.has_work_left() {
                break;
            }
        }
        k.tlb.flush();
    }
    if let Some(t) = k.threads.get_mut(cur) {
        t.mapping = Some(p);
    }
    k.restart = true;
    Ok(())
}

pub(super) fn unmap(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let target = task_arg(k, cur, 0, Rights::MAP)?;
    task::unmap(k, target, arg(k, cur, 1), arg(k, cur, 2) as usize)
}

pub(super) fn memory_physical(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let ObjectRef::Memory(m) = object(k, cur, 0, Rights::MANAGE)?.1 else {
        return Err(Error::WrongType);
    };
    let mem = k.memories.get(m).ok_or(Error::BadHandle)?;
    // RAM not made for DMA may be in runs: no one address to tell.
    if !mem.contiguous {
        return Err(Error::InvalidState);
    }
    let (pa, size) = (mem.physical, (mem.pages * abi::PAGE_SIZE) as u64);
    let r = regs(k, cur);
    r[1] = pa;
    r[2] = size;
    Ok(())
}

pub(super) fn device_memory(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    const MAX_PAGES: u64 = 1 << 20; // 4 GiB
    let pool = pool_arg(k, cur, 0, Rights::WRITE)?;
    if object(k, cur, 1, Rights::MANAGE)?.1 != ObjectRef::Console {
        return Err(Error::WrongType);
    }
    let (physical, pages) = (arg(k, cur, 2), arg(k, cur, 3));
    let bytes = pages.checked_mul(abi::PAGE_SIZE as u64).ok_or(Error::InvalidArgument)?;
    let range = crate::mm::regions::Range::new(physical, bytes);
    if !physical.is_multiple_of(abi::PAGE_SIZE as u64)
        || pages == 0
        || pages > MAX_PAGES
        || range.end == u64::MAX
        || !crate::mm::physical::is_device_memory(range)
    {
        return Err(Error::InvalidArgument);
    }
    // (Its entry is all it takes: in a chunk its pool pays for.)
    let m = crate::object::Memory {
        physical,
        pages: pages as usize,
        kind: MemoryKind::Device,
        contiguous: true,
        extents: None,
        pool: Some(pool),
        charge: 0,
        refs: 0,
        mapped: crate::object::MappedAs::NONE,
    };
    let id = k.store(Some(pool), m)?;
    k.add_ref(ObjectRef::Pool(pool));
    let object = ObjectRef::Memory(id);
    give(
        k,
        cur,
        object,
        Rights::READ | Rights::WRITE | Rights::MAP | Rights::GRANT | Rights::MANAGE,
    )
}

/// Work units a piece of a copy spends: about one per 8 bytes (the copy
/// moves 128 bytes in 12 instructions) and the walk of the caller's tables.
fn copy_cost(bytes: usize) -> u32 {
    (bytes / 8) as u32 + 100
}

/// The memory object `x0` names for a copy into it (`into_object`: WRITE
/// right) or out of it (READ): its physical start, its size in bytes, and
/// its id if it is made of runs (see [`object_at`]).
/// Device memory is refused (`WrongType`: registers, outside the linear
/// map), and so is writing a boot archive object (`NoRights`).
fn copy_object(k: &mut Kernel, cur: Id, into_object: bool) -> Result<(u64, u64, Option<Id>), Error> {
    let needed = if into_object { Rights::WRITE } else { Rights::READ };
    let ObjectRef::Memory(m) = object(k, cur, 0, needed)?.1 else {
        return Err(Error::WrongType);
    };
    let mem = k.memories.get(m).ok_or(Error::BadHandle)?;
    match mem.kind {
        MemoryKind::Device => Err(Error::WrongType),
        MemoryKind::Boot if into_object => Err(Error::NoRights),
        _ => Ok((
            mem.physical,
            (mem.pages * abi::PAGE_SIZE) as u64,
            mem.extents.is_some().then_some(m),
        )),
    }
}

/// Physical address of byte `at` of a memory object from [`copy_object`],
/// and how many of `len` bytes from it on are physically contiguous (all
/// of them for an object in one block).
#[inline(always)]
fn object_at(k: &Kernel, physical: u64, runs: Option<Id>, at: u64, len: u64) -> Result<(u64, u64), Error> {
    let Some(m) = runs else {
        return Ok((physical + at, len));
    };
    let page = abi::PAGE_SIZE as u64;
    let (pa, _) = k.memories.get(m).ok_or(Error::BadHandle)?.run((at / page) as usize);
    Ok((pa + at % page, len.min(page - at % page)))
}

/// [`abi::Syscall::MemoryRead`] (`into_object` false) and
/// [`abi::Syscall::MemoryWrite`]: copy between memory object `x0` at byte
/// offset `x1` and the caller's memory at `x2`, `x3` bytes, a page of the
/// caller's memory at a time. Each piece advances `x1` and `x2` and lowers
/// `x3`; out of work budget with bytes left, the call is to be made again
/// ([`Kernel::restart`]) and looks its capability up again.
pub(super) fn memory_copy(k: &mut Kernel, cur: Id, into_object: bool) -> Result<(), Error> {
    let (physical, size, runs) = copy_object(k, cur, into_object)?;
    let task = task_of(k, cur)?;
    let (mut offset, mut va, mut len) = (arg(k, cur, 1), arg(k, cur, 2), arg(k, cur, 3));
    if offset.checked_add(len).is_none_or(|end| end > size) {
        return Err(Error::InvalidArgument);
    }
    // (Made anew for each piece of the call: the caller's tables may
    // change between pieces, not within one.)
    let mut walk = task::UserWalk::new(task);
    while len > 0 {
        let in_page = (abi::PAGE_SIZE as u64 - va % abi::PAGE_SIZE as u64).min(len);
        let (object, in_page) = object_at(k, physical, runs, offset, in_page)?;
        // Reading from the object writes the caller's memory.
        let user = walk.physical(k, va, !into_object)?;
        let object = crate::mm::layout::phys_to_virt(object);
        let user = crate::mm::layout::phys_to_virt(user);
        let (dst, src) = if into_object { (object, user) } else { (user, object) };
        // SAFETY: `object..object+in_page` lies in the memory object's
        // pages (`offset + len <= size`, checked above: both move on
        // together; within one run of its pages, `object_at`) and `user..user+in_page` in one page the caller's
        // tables map to it as RAM (writable when written); the linear map
        // covers both as Normal memory, writable where written (RAM objects
        // and user pages mapped writable; a boot archive object is only
        // read). The kernel lock keeps both from being freed meanwhile.
        unsafe { crate::arch::aarch64::copy::copy_bytes(dst as *mut u8, src as *const u8, in_page as usize) };
        (offset, va, len) = (offset + in_page, va + in_page, len - in_page);
        let r = regs(k, cur);
        (r[1], r[2], r[3]) = (offset, va, len);
        if !k.spend(copy_cost(in_page as usize)) && len > 0 {
            k.restart = true;
            return Ok(());
        }
    }
    Ok(())
}

/// [`abi::Syscall::MemoryReadRows`] (`into_object` false) and
/// [`abi::Syscall::MemoryWriteRows`], as [`memory_copy`]: `x4`'s low half
/// rows of `x3` bytes,
/// the object's `x5` bytes apart from `x1` on, the caller's `x6` bytes
/// apart from `x2` on, `x4`'s high half bytes of the first row already
/// copied. Each piece raises the high half; a row done advances `x1` by
/// `x5` and `x2` by `x6`, lowers the low half and clears the high one.
/// The registers then describe what is left, so a restarted call goes on
/// from there, mid-row too.
pub(super) fn memory_copy_rows(k: &mut Kernel, cur: Id, into_object: bool) -> Result<(), Error> {
    let (physical, size, runs) = copy_object(k, cur, into_object)?;
    let task = task_of(k, cur)?;
    let (mut offset, mut va, len) = (arg(k, cur, 1), arg(k, cur, 2), arg(k, cur, 3));
    let x4 = arg(k, cur, 4);
    let (mut left, object_stride, user_stride, mut done) =
        (x4 & u64::from(u32::MAX), arg(k, cur, 5), arg(k, cur, 6), x4 >> 32);
    if done > len {
        return Err(Error::InvalidArgument);
    }
    if left == 0 {
        return Ok(());
    }
    // The last row lies furthest on both sides (the strides are unsigned):
    // every row lies inside the object, and no address overflows.
    let object_end = (left - 1)
        .checked_mul(object_stride)
        .and_then(|x| x.checked_add(offset))
        .and_then(|x| x.checked_add(len));
    let user_end = (left - 1)
        .checked_mul(user_stride)
        .and_then(|x| x.checked_add(va))
        .and_then(|x| x.checked_add(len));
    if object_end.is_none_or(|end| end > size) {
        return Err(Error::InvalidArgument);
    }
    if user_end.is_none() {
        return Err(Error::InvalidArgument);
    }
    if len == 0 {
        return Ok(());
    }
    // (Made anew for each piece of the call: the caller's tables may
    // change between pieces, not within one.)
    let mut walk = task::UserWalk::new(task);
    loop {
        let (at, user_at) = (offset + done, va + done);
        let in_page = (abi::PAGE_SIZE as u64 - user_at % abi::PAGE_SIZE as u64).min(len - done);
        let (object, in_page) = object_at(k, physical, runs, at, in_page)?;
        // Reading from the object writes the caller's memory.
        let user = walk.physical(k, user_at, !into_object)?;
        let object = crate::mm::layout::phys_to_virt(object);
        let user = crate::mm::layout::phys_to_virt(user);
        let (dst, src) = if into_object { (object, user) } else { (user, object) };
        // SAFETY: `object..object+in_page` lies in the memory object's
        // pages (`at + in_page <= offset + len`, and the last row's end is
        // at most its size, checked above; each row starts `object_stride`
        // further; within one run of its pages, `object_at`) and `user..user+in_page` in one page the caller's
        // tables map to it as RAM (writable when written); the linear map
        // covers both as Normal memory, writable where written (RAM objects
        // and user pages mapped writable; a boot archive object is only
        // read). The kernel lock keeps both from being freed meanwhile.
        unsafe { crate::arch::aarch64::copy::copy_bytes(dst as *mut u8, src as *const u8, in_page as usize) };
        done += in_page;
        if done == len {
            left -= 1;
            if left > 0 {
                // The next row: inside the ends checked above.
                (offset, va, done) = (offset + object_stride, va + user_stride, 0);
            }
        }
        let r = regs(k, cur);
        // (All done: `x4` is 0, `x1` and `x2` the last row's.)
        let done = if left == 0 { 0 } else { done };
        (r[1], r[2], r[4]) = (offset, va, left | done << 32);
        if left == 0 {
            return Ok(());
        }
        if !k.spend(copy_cost(in_page as usize)) {
            k.restart = true;
            return Ok(());
        }
    }
}

crate::ktest!(
    fn fragmented_memory_still_makes_ram_objects_but_not_dma_ones() {
        use crate::mm::{frames, layout::phys_to_virt};
        use crate::object::{Pool, WORK_BUDGET};
        use crate::{kassert, kassert_eq};
        const PAGE: u64 = abi::PAGE_SIZE as u64;
        let e = |e: Error| alloc::format!("{e:?}");
        // Tables of its own, freed at the end (the kernel's would keep
        // the room they grow by).
        let mut tables = crate::mm::heap::try_box(Kernel::new()).ok_or("no memory for tables")?;
        let k = &mut *tables;
        let mut pool = Pool::new(1 << 20, None);
        pool.refs = 1;
        let pool = k.store(None, pool).map_err(|_| "no pool")?;
        let task = task::create(k, pool, "fragmented").map_err(e)?;
        // Every frame taken, then every other page of a 128-page block
        // given back: 64 free pages, no two of them buddies.
        let block = frames::alloc(128).ok_or("no 128-page block")?;
        let exhausted = crate::ktest::exhaust::Exhausted::all();
        for i in (0..128).step_by(2) {
            frames::free(block + i * PAGE, 1);
        }
        let free = frames::stats().1;
        // For DMA: refused, nothing taken.
        let dma = start_memory(k, pool, 2, true);
        kassert_eq!(dma.err(), Some(Error::OutOfMemory));
        kassert_eq!(frames::stats().1, free);
        // Not for DMA: 32 pages in runs of one page.
        let id = start_memory(k, pool, 32, false).map_err(e)?;
        let m = k.memories.get_mut(id).ok_or("made")?;
        m.refs = 0;
        kassert_eq!(m.extents.as_ref().map(|l| l.len()), Some(32));
        let runs = (0..32).map(|p| m.run(p).0).collect::<alloc::vec::Vec<_>>();
        kassert!(runs
            .iter()
            .all(|pa| (block..block + 128 * PAGE).contains(pa) && (pa - block) % (2 * PAGE) == 0));
        let h = crate::cap::insert(k, task, ObjectRef::Memory(id), Rights::FULL, 0, None).map_err(e)?;
        let cap = crate::cap::lookup(k, task, h).map_err(e)?;
        let va = 0x40_0000;
        task::map(k, task, cap, id, 0, 32, va, Rights::READ | Rights::WRITE).map_err(e)?;
        crate::object::check::self_check(k)?;
        // Each page of the mapping is its page of the object: written
        // through the mapping's translation, read back through the runs.
        let mut walk = task::UserWalk::new(task);
        for (p, pa) in runs.iter().enumerate() {
            let user = walk.physical(k, va + p as u64 * PAGE + 8, true).map_err(e)?;
            kassert_eq!(user, pa + 8);
            // SAFETY: a page of the object, linear-mapped, used by nobody else.
            unsafe { *(phys_to_virt(user) as *mut u64) = p as u64 + 1 };
        }
        for (p, pa) in runs.iter().enumerate() {
            // SAFETY: as above.
            kassert_eq!(unsafe { *(phys_to_virt(pa + 8) as *const u64) }, p as u64 + 1);
        }
        // All gone again: the frames and the list of runs back.
        task::unmap(k, task, va, 32).map_err(e)?;
        while !crate::cap::delete_piece(k, cap) {}
        kassert!(k.memories.get(id).is_none(), "the object outlived its capability");
        task::kill(k, task);
        while !task::work_off(k) {
            k.work_left = WORK_BUDGET;
        }
        k.work_left = WORK_BUDGET;
        let task_left = k.tasks.get(task).is_some();
        let pool_left = k.pools.get(pool).map(|p| (p.bytes_left, p.size));
        let check = crate::object::check::self_check(k);
        drop(exhausted);
        for i in (1..128).step_by(2) {
            frames::free(block + i * PAGE, 1);
        }
        k.release(ObjectRef::Pool(pool));
        drop(tables);
        check?;
        kassert!(!task_left, "the task outlived its teardown");
        kassert_eq!(pool_left, Some((1 << 20, 1 << 20)));
        Ok(())
    }
);
