//! This task's address space: scratch windows and memory mappings.
//!
//! Fixed addresses (from the ABI and the link script): program image from
//! 0x40_0000, the start-up page, IPC buffer and boot archive below 1 GiB,
//! the first stack below 2 GiB. Everything the library maps at run time
//! goes above [`WINDOW_BASE`], each window followed by an unmapped guard
//! page. A window that a [`Mapping`] took from [`reserve`] goes back to a
//! free list when the mapping is dropped, and the next window of the same
//! size reuses it: the kernel once kept translation tables until the task
//! ended, so fresh addresses for every short-lived mapping (a driver's DMA
//! bounce buffers) grew the task's tables, charged to its pool, until the
//! pool ran out. It now frees a table with the last mapping in its range;
//! reused windows still keep the address space compact, near the other
//! mappings, whose tables they share.

use crate::rt::process;
use crate::syscall;
use abi::{Error, Handle, Rights, PAGE_SIZE};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// Start of the run-time mapping area (64 GiB).
pub const WINDOW_BASE: u64 = 0x10_0000_0000;
static NEXT: AtomicU64 = AtomicU64::new(WINDOW_BASE);

/// A fixed window for short-lived mappings ([`with_scratch`]), below
/// [`WINDOW_BASE`]: the same addresses each time (the kernel frees the
/// window's translation tables when it is unmapped, and makes them again
/// for the next use).
pub const SCRATCH_BASE: u64 = 0x8_0000_0000;
/// Pages in the scratch window (256 MiB).
pub const SCRATCH_PAGES: u64 = 1 << 16;
static SCRATCH: crate::sync::Mutex<()> = crate::sync::Mutex::new(());

/// Maps `pages` pages of `mem` with `rights` for the duration of `f`, at
/// the scratch window (or, if larger, at fresh addresses).
pub fn with_scratch<R>(mem: Handle, pages: u64, rights: Rights, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, Error> {
    if pages > SCRATCH_PAGES {
        let mut m = Mapping::map(mem, pages, rights)?;
        return Ok(f(m.as_mut_slice()));
    }
    let _guard = SCRATCH.lock();
    let task = process().task;
    syscall::map(task, mem, pages, 0, SCRATCH_BASE, rights)?;
    // SAFETY: the window is mapped for `pages` pages just above, only
    // while the lock is held, and unmapped before it is released; the
    // slice does not outlive `f`.
    let bytes = unsafe { core::slice::from_raw_parts_mut(SCRATCH_BASE as *mut u8, pages as usize * PAGE_SIZE) };
    let r = f(bytes);
    syscall::unmap(task, SCRATCH_BASE, pages)?;
    Ok(r)
}

/// Windows given back by dropped [`Mapping`]s, by size in pages.
static FREE: crate::sync::Mutex<BTreeMap<u64, Vec<u64>>> = crate::sync::Mutex::new(BTreeMap::new());

/// Reserves `pages` pages of address space (plus a guard page after them):
/// a window of that size given back earlier, or fresh addresses.
pub fn reserve(pages: u64) -> u64 {
    if let Some(addr) = FREE.lock().get_mut(&pages).and_then(|v| v.pop()) {
        return addr;
    }
    NEXT.fetch_add((pages + 1) * PAGE_SIZE as u64, Ordering::Relaxed)
}

/// Gives back a window of `pages` pages at `addr` that [`reserve`] handed
/// out and nothing maps any more.
fn give_back(addr: u64, pages: u64) {
    // Out of heap, the window is simply not reused.
    let mut free = FREE.lock();
    let v = free.entry(pages).or_default();
    if v.try_reserve(1).is_ok() {
        v.push(addr);
    }
}

/// Pages needed for `bytes`.
pub const fn pages_for(bytes: u64) -> u64 {
    bytes.div_ceil(PAGE_SIZE as u64)
}

/// A memory object mapped into this task. Dropping it unmaps it and, if
/// it was created here ([`Mapping::new`]), deletes the object.
#[derive(Debug)]
pub struct Mapping {
    mem: Handle,
    owned: bool,
    /// The window came from [`reserve`] here and goes back on drop.
    window: bool,
    addr: u64,
    pages: u64,
}

impl Mapping {
    /// New zeroed memory of `pages` pages from this task's pool, mapped
    /// with `rights`.
    pub fn new(pages: u64, rights: Rights) -> Result<Mapping, Error> {
        Mapping::new_with(pages, rights, 0)
    }

    /// [`Mapping::new`] with `Create` flags (such as
    /// [`abi::MEMORY_CONTIGUOUS`] for DMA).
    pub fn new_with(pages: u64, rights: Rights, flags: u64) -> Result<Mapping, Error> {
        let mem = syscall::create_memory(process().pool, pages, flags)?;
        match Mapping::map(mem, pages, rights) {
            Ok(mut m) => {
                m.owned = true;
                Ok(m)
            }
            Err(e) => {
                let _ = syscall::cap_delete(mem);
                Err(e)
            }
        }
    }

    /// Maps `pages` pages of an existing memory object (which stays this
    /// task's to delete).
    pub fn map(mem: Handle, pages: u64, rights: Rights) -> Result<Mapping, Error> {
        let addr = reserve(pages);
        match Mapping::map_at(mem, pages, rights, addr) {
            Ok(mut m) => {
                m.window = true;
                Ok(m)
            }
            Err(e) => {
                give_back(addr, pages);
                Err(e)
            }
        }
    }

    /// [`Mapping::map`] at `addr`, a window this task set aside with
    /// [`reserve`]: a server that maps clients' memory again and again
    /// reuses its windows, and so its translation tables (the kernel
    /// keeps tables once made). Fails with `AlreadyMapped` if any of the
    /// range is mapped.
    pub fn map_at(mem: Handle, pages: u64, rights: Rights, addr: u64) -> Result<Mapping, Error> {
        syscall::map(process().task, mem, pages, 0, addr, rights)?;
        Ok(Mapping {
            mem,
            owned: false,
            window: false,
            addr,
            pages,
        })
    }

    pub fn handle(&self) -> Handle {
        self.mem
    }

    pub fn addr(&self) -> u64 {
        self.addr
    }

    pub fn len(&self) -> usize {
        self.pages as usize * PAGE_SIZE
    }

    pub fn is_empty(&self) -> bool {
        self.pages == 0
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.addr as *mut u8
    }

    /// The mapped bytes. For memory shared with another task, use it only
    /// while the protocol (e.g. between a call and its reply) says the
    /// other side leaves it alone.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `addr..addr+len` is mapped readable for as long as
        // `self` lives (only `Drop` unmaps it).
        unsafe { core::slice::from_raw_parts(self.as_ptr(), self.len()) }
    }

    /// The mapped bytes, writable (the mapping must have `WRITE`, or
    /// writing faults). Same sharing rule as [`Mapping::as_slice`].
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as for `as_slice`; `&mut self` makes this the only
        // reference into the mapping from this task.
        unsafe { core::slice::from_raw_parts_mut(self.as_ptr(), self.len()) }
    }

    /// The 8 bytes at `offset` as an atomic word, for indices shared with
    /// another task. Panics unless `offset` is a multiple of 8 and the
    /// word lies inside the mapping.
    pub fn atomic_u64(&self, offset: usize) -> &AtomicU64 {
        assert!(
            offset.is_multiple_of(8) && offset + 8 <= self.len(),
            "atomic word at {offset}"
        );
        // SAFETY: the word is inside the mapping (checked), which stays
        // mapped for as long as `self` lives, and 8-aligned (mappings are
        // page-aligned); `AtomicU64` has `u64`'s layout and every bit
        // pattern is a valid `u64`.
        unsafe { &*(self.as_ptr().add(offset) as *const AtomicU64) }
    }

    /// Keeps the memory mapped forever; returns its handle.
    pub fn leak(self) -> Handle {
        let h = self.mem;
        core::mem::forget(self);
        h
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        let unmapped = syscall::unmap(process().task, self.addr, self.pages);
        // Reused only if nothing maps it: unmapped now, or already gone
        // (a revoke of the memory takes its mappings with it).
        if self.window && matches!(unmapped, Ok(()) | Err(Error::NotMapped)) {
            give_back(self.addr, self.pages);
        }
        if self.owned {
            let _ = syscall::cap_delete(self.mem);
        }
    }
}
