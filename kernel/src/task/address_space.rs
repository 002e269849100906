//! User translation tables, ASIDs and access to user memory.

use crate::mm::{frames, layout};
use crate::object::{Id, Kernel};
use abi::Error;
use alloc::vec::Vec;
use hal::mmu::{Mapper, TableMemory};

/// Tables of one task, allocated from frames within a budget (in pages).
pub struct UserTables<'a> {
    pub tables: &'a mut Vec<u64>,
    pub budget: u64,
}

impl TableMemory for UserTables<'_> {
    fn allocate_table(&mut self) -> Option<u64> {
        if self.budget == 0 || self.tables.try_reserve(1).is_err() {
            return None;
        }
        let pa = frames::alloc_zeroed(1)?;
        self.budget -= 1;
        self.tables.push(pa);
        Some(pa)
    }

    fn table(&mut self, pa: u64) -> &mut [u64; 512] {
        // SAFETY: `pa` is a table frame of this task (the root or one in
        // `tables`), reached through the linear map; the kernel lock makes
        // this the only reference.
        unsafe { &mut *(layout::phys_to_virt(pa) as *mut [u64; 512]) }
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
/// and before any frame it covers is freed.
pub struct PendingFlush {
    asid: u16,
    va: u64,
    pages: usize,
    /// More than one range: the whole ASID goes.
    whole: bool,
    /// More than one ASID: everything goes.
    all: bool,
}

impl PendingFlush {
    pub const fn new() -> Self {
        PendingFlush {
            asid: 0,
            va: 0,
            pages: 0,
            whole: false,
            all: false,
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

    /// Carry out what is pending.
    pub fn flush(&mut self) {
        if self.all {
            hal::cpu::flush_tlb_all();
        } else if self.whole {
            flush_tlb_asid(self.asid);
        } else if self.pages > 0 {
            flush_tlb(self.asid, self.va, self.pages);
        }
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
    let mut tables = UserTables {
        tables: &mut t.tables,
        budget: 0,
    };
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
        let mut tables = UserTables {
            tables: &mut t.tables,
            budget: 0,
        };
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
