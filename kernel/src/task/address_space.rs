//! User translation tables, ASIDs and access to user memory.

use crate::mm::{frames, layout};
use crate::object::{Id, Kernel};
use abi::Error;
use alloc::vec::Vec;
use hal::mmu::{Mapper, TableMemory};

/// Tables of one task, allocated from frames within a budget (in pages).
/// The tree is pruned ([`TableMemory::PRUNED`]): a table an unmap leaves
/// empty goes to `freed`, and back to the frames once the TLB flush that
/// follows the unmap is done ([`PendingFlush::free_tables`]).
pub struct UserTables<'a> {
    /// The task's count of tables below its root
    /// ([`super::Task::tables`]).
    pub count: &'a mut u64,
    /// Tables it may still allocate.
    pub budget: u64,
    /// Tables unlinked from the tree by this edit.
    pub freed: FreedTables,
}

impl<'a> UserTables<'a> {
    pub fn new(count: &'a mut u64, budget: u64) -> Self {
        UserTables {
            count,
            budget,
            freed: FreedTables::new(),
        }
    }
}

impl TableMemory for UserTables<'_> {
    const PRUNED: bool = true;

    fn allocate_table(&mut self) -> Option<u64> {
        if self.budget == 0 {
            return None;
        }
        let pa = frames::alloc_zeroed(1)?;
        self.budget -= 1;
        *self.count += 1;
        Some(pa)
    }

    fn table(&mut self, pa: u64) -> &mut [u64; 512] {
        // SAFETY: `pa` is a table frame of this task (the root or one its
        // tree names), and the kernel lock makes this the only reference.
        unsafe { table_at(pa) }
    }

    fn free_table(&mut self, pa: u64) {
        *self.count -= 1;
        self.freed.push(pa);
    }
}

/// The translation table in frame `pa`, through the linear map.
///
/// # Safety
///
/// `pa` is a table frame of a task's tree, or one unlinked from it and not
/// yet freed, and nothing else refers to it while the result lives (the
/// kernel lock).
unsafe fn table_at<'t>(pa: u64) -> &'t mut [u64; 512] {
    // SAFETY: as the caller promises; the linear map covers every frame.
    unsafe { &mut *(layout::phys_to_virt(pa) as *mut [u64; 512]) }
}

/// Table frames unlinked from a task's tree, until the TLB flush that
/// drops every cached walk through them: a list linked through each one's
/// first entry (the rest is zero). A stale walk that still reaches one
/// reads zeros or a link, a page address, which is an invalid descriptor.
pub struct FreedTables {
    /// The first, and the last (whose link is 0), when `count` > 0.
    head: u64,
    tail: u64,
    pub count: u64,
}

impl FreedTables {
    pub const fn new() -> Self {
        FreedTables {
            head: 0,
            tail: 0,
            count: 0,
        }
    }

    /// Add table `pa`, empty and no longer named by its tree.
    fn push(&mut self, pa: u64) {
        // SAFETY: `pa` was just unlinked from its tree: this list's alone.
        let table = unsafe { table_at(pa) };
        table[0] = if self.count > 0 { self.head } else { 0 };
        if self.count == 0 {
            self.tail = pa;
        }
        self.head = pa;
        self.count += 1;
    }

    /// Put `other`'s tables in front of these: constant time.
    fn take(&mut self, other: FreedTables) {
        if other.count == 0 {
            return;
        }
        if self.count > 0 {
            // SAFETY: `other.tail` is a table of that list, now this one's.
            let last = unsafe { table_at(other.tail) };
            last[0] = self.head;
        } else {
            self.tail = other.tail;
        }
        self.head = other.head;
        self.count += other.count;
    }

    /// Give every table back to the frames (the flush done).
    fn free(&mut self) {
        let mut pa = self.head;
        for _ in 0..self.count {
            // SAFETY: `pa` is a table of this list.
            let next = unsafe { table_at(pa) }[0];
            frames::free(pa, 1);
            pa = next;
        }
        *self = FreedTables::new();
    }
}

impl Default for FreedTables {
    fn default() -> Self {
        Self::new()
    }
}

/// ASIDs 1.. (0 is never used by a task).
pub struct AsidAllocator {
    used: Vec<u64>,
    limit: u32,
}

impl AsidAllocator {
    pub const fn new() -> Self {
        AsidAllocator {
            used: Vec::new(),
            limit: 256,
        }
    }

    /// Use 16-bit ASIDs if the CPU has them.
    pub fn set_limit(&mut self, limit: u32) {
        self.limit = limit;
    }

    /// How many tasks can have one (ASID 0 is never used).
    pub fn count(&self) -> u64 {
        self.limit as u64 - 1
    }

    pub fn allocate(&mut self) -> Option<u16> {
        for asid in 1..self.limit {
            let (word, bit) = ((asid / 64) as usize, asid % 64);
            if word >= self.used.len() {
                self.used.try_reserve(word + 1 - self.used.len()).ok()?;
                self.used.resize(word + 1, 0);
            }
            if self.used[word] & (1 << bit) == 0 {
                self.used[word] |= 1 << bit;
                return Some(asid as u16);
            }
        }
        None
    }

    pub fn free(&mut self, asid: u16) {
        let (word, bit) = ((asid / 64) as usize, asid % 64);
        if let Some(w) = self.used.get_mut(word) {
            *w &= !(1 << bit);
        }
    }
}

impl Default for AsidAllocator {
    fn default() -> Self {
        Self::new()
    }
}

/// Most pages flushed one by one: above, the whole ASID goes at once (one
/// broadcast instead of one per page; the task refills what it uses).
const FLUSH_PAGES_MAX: usize = 16;

/// Drop cached translations of `pages` pages at `va` for `asid`, everywhere:
/// page by page, or for many pages the whole ASID.
pub fn flush_tlb(asid: u16, va: u64, pages: usize) {
    if pages > FLUSH_PAGES_MAX {
        flush_tlb_asid(asid);
    } else {
        flush_tlb_range(asid, va, pages);
    }
}

/// TLB maintenance put off to the end of a piece of work, so that a piece
/// that unmaps many small mappings makes one broadcast, not one per page
/// (each stops every CPU under QEMU). Flushed before the lock is released
/// and before any frame it covers is freed; the translation tables those
/// unmaps emptied go back to the frames right after it.
pub struct PendingFlush {
    asid: u16,
    va: u64,
    pages: usize,
    /// More than one range: the whole ASID goes.
    whole: bool,
    /// More than one ASID: everything goes.
    all: bool,
    /// Tables the unmaps emptied and unlinked, freed after the flush.
    tables: FreedTables,
}

impl PendingFlush {
    pub const fn new() -> Self {
        PendingFlush {
            asid: 0,
            va: 0,
            pages: 0,
            whole: false,
            all: false,
            tables: FreedTables::new(),
        }
    }

    /// `pages` pages at `va` of `asid` were unmapped.
    pub fn add(&mut self, asid: u16, va: u64, pages: usize) {
        if self.pages == 0 && !self.whole && !self.all {
            (self.asid, self.va, self.pages) = (asid, va, pages);
        } else if asid != self.asid {
            self.all = true;
        } else if va == self.va + (self.pages * abi::PAGE_SIZE) as u64 {
            self.pages += pages;
        } else {
            self.whole = true;
        }
    }

    /// Tables that an unmap whose range was [`PendingFlush::add`]ed
    /// unlinked: they go after the flush (invalidating by address drops
    /// the cached walks at every level, and at least one page of the range
    /// was in each table's range).
    pub fn free_tables(&mut self, freed: FreedTables) {
        self.tables.take(freed);
    }

    /// Carry out what is pending.
    pub fn flush(&mut self) {
        if self.all {
            hal::cpu::flush_tlb_all();
        } else if self.whole {
            flush_tlb_asid(self.asid);
        } else if self.pages > 0 {
            flush_tlb(self.asid, self.va, self.pages);
        }
        // (The flush waited for every CPU: no walk reaches them now.)
        self.tables.free();
        *self = PendingFlush::new();
    }
}

impl Default for PendingFlush {
    fn default() -> Self {
        Self::new()
    }
}

/// Drop cached translations of `pages` pages at `va` for `asid`, everywhere.
fn flush_tlb_range(asid: u16, va: u64, pages: usize) {
    for i in 0..pages as u64 {
        let operand = ((asid as u64) << 48) | (((va >> 12) + i) & ((1 << 44) - 1));
        // SAFETY: TLB maintenance only drops cached translations.
        unsafe { core::arch::asm!("dsb ishst", "tlbi vae1is, {}", in(reg) operand, options(nostack)) };
    }
    // SAFETY: barriers only.
    unsafe { core::arch::asm!("dsb ish", "isb", options(nostack)) };
}

/// Drop every cached translation for `asid`, everywhere.
pub fn flush_tlb_asid(asid: u16) {
    let operand = (asid as u64) << 48;
    // SAFETY: TLB maintenance only drops cached translations.
    unsafe { core::arch::asm!("dsb ishst", "tlbi aside1is, {}", "dsb ish", "isb", in(reg) operand, options(nostack)) };
}

/// Walk `task`'s tables for `va`: the physical address, if mapped for user
/// access with write permission when `write`, as RAM (Normal memory).
pub fn user_physical(k: &mut Kernel, task: Id, va: u64, write: bool) -> Result<u64, Error> {
    if va >= abi::USER_LIMIT {
        return Err(Error::NotMapped);
    }
    let t = k.tasks.get_mut(task).ok_or(Error::BadHandle)?;
    let mut tables = UserTables::new(&mut t.tables, 0);
    let (pa, attributes) = Mapper::new(t.root, &mut tables).translate(va).ok_or(Error::NotMapped)?;
    if !attributes.user || (write && !attributes.writable) || attributes.memory != hal::mmu::MemoryType::Normal {
        return Err(Error::NotMapped);
    }
    Ok(pa)
}

/// The kernel's address (through the linear map) of the start of the user
/// page holding `va` in `task`, if it is user RAM (and writable, for
/// `write`): one table walk for several accesses inside that page (an IPC
/// buffer, which is page-aligned and smaller than a page). The address is
/// good while the kernel lock is held and nothing unmaps the page.
pub fn user_page(k: &mut Kernel, task: Id, va: u64, write: bool) -> Result<*mut u8, Error> {
    let page = va & !(abi::PAGE_SIZE as u64 - 1);
    let pa = user_physical(k, task, page, write)?;
    Ok(layout::phys_to_virt(pa) as *mut u8)
}

/// [`user_physical`] for the pages of one buffer in turn: the last-level
/// table of the last page looked up is kept, and a page in the same 2 MiB
/// is read from it without a walk. Valid only while `task`'s tables stay
/// as they are (one piece of a call, under the kernel lock).
pub struct UserWalk {
    task: Id,
    /// The 2 MiB-aligned address and its last-level table.
    last: Option<(u64, u64)>,
}

impl UserWalk {
    pub fn new(task: Id) -> Self {
        UserWalk { task, last: None }
    }

    /// The physical address of `va`, as [`user_physical`].
    pub fn physical(&mut self, k: &mut Kernel, va: u64, write: bool) -> Result<u64, Error> {
        const SPAN: u64 = 512 * abi::PAGE_SIZE as u64;
        if va >= abi::USER_LIMIT {
            return Err(Error::NotMapped);
        }
        let t = k.tasks.get_mut(self.task).ok_or(Error::BadHandle)?;
        let mut tables = UserTables::new(&mut t.tables, 0);
        let mut mapper = Mapper::new(t.root, &mut tables);
        let base = va & !(SPAN - 1);
        let table = match self.last {
            Some((b, table)) if b == base => table,
            _ => {
                let Some(table) = mapper.last_level_table(va) else {
                    self.last = None;
                    // A block mapping or none: the whole walk decides.
                    return user_physical(k, self.task, va, write);
                };
                self.last = Some((base, table));
                table
            }
        };
        let (pa, attributes) = mapper.translate_in(table, va).ok_or(Error::NotMapped)?;
        if !attributes.user || (write && !attributes.writable) || attributes.memory != hal::mmu::MemoryType::Normal {
            return Err(Error::NotMapped);
        }
        Ok(pa)
    }
}

/// Copy from user memory of `task` into `out`, page by page through the
/// linear map (the tables are walked in software, so a bad address is an
/// error, never a kernel fault).
pub fn copy_from_user(k: &mut Kernel, task: Id, va: u64, out: &mut [u8]) -> Result<(), Error> {
    let mut done = 0;
    while done < out.len() {
        let addr = va.checked_add(done as u64).ok_or(Error::NotMapped)?;
        let in_page = (abi::PAGE_SIZE - (addr as usize % abi::PAGE_SIZE)).min(out.len() - done);
        let pa = user_physical(k, task, addr, false)?;
        // SAFETY: `pa` is a mapped user page of RAM; the linear map covers it
        // and `in_page` bytes stay inside that page.
        let src = unsafe { core::slice::from_raw_parts(layout::phys_to_virt(pa) as *const u8, in_page) };
        out[done..done + in_page].copy_from_slice(src);
        done += in_page;
    }
    Ok(())
}

/// Copy `data` into user memory of `task` (writable pages only).
pub fn copy_to_user(k: &mut Kernel, task: Id, va: u64, data: &[u8]) -> Result<(), Error> {
    let mut done = 0;
    while done < data.len() {
        let addr = va.checked_add(done as u64).ok_or(Error::NotMapped)?;
        let in_page = (abi::PAGE_SIZE - (addr as usize % abi::PAGE_SIZE)).min(data.len() - done);
        let pa = user_physical(k, task, addr, true)?;
        // SAFETY: as in copy_from_user, and the page is user-writable RAM.
        let dst = unsafe { core::slice::from_raw_parts_mut(layout::phys_to_virt(pa) as *mut u8, in_page) };
        dst.copy_from_slice(&data[done..done + in_page]);
        done += in_page;
    }
    Ok(())
}
