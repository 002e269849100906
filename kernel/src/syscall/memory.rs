//! Memory objects: RAM and device memory, map, unmap, physical address.

use super::{arg, object, pool_arg, regs, task_arg, task_of};
use crate::cap;
use crate::object::{Id, Kernel, MemoryKind, ObjectRef};
use crate::task;
use abi::{Error, Rights};

/// A RAM memory object of `pages` zeroed, physically contiguous pages.
pub fn create_memory(k: &mut Kernel, pool: Id, pages: u64) -> Result<Id, Error> {
    const MAX_PAGES: u64 = 1 << 18; // 1 GiB
    if pages == 0 || pages > MAX_PAGES {
        return Err(Error::InvalidArgument);
    }
    let pages = pages as usize;
    let charge = crate::mm::frames::charge(pages);
    k.charge(pool, charge)?;
    let Some(physical) = crate::mm::frames::alloc_zeroed(pages) else {
        k.refund(pool, charge);
        return Err(Error::OutOfMemory);
    };
    let m = crate::object::Memory {
        physical,
        pages,
        kind: MemoryKind::Ram,
        pool: Some(pool),
        charge,
        refs: 0,
        mapped: crate::object::MappedAs::NONE,
    };
    match k.memories.insert(m) {
        Ok(id) => {
            k.add_ref(ObjectRef::Pool(pool));
            Ok(id)
        }
        Err(_) => {
            crate::mm::frames::free(physical, pages);
            k.refund(pool, charge);
            Err(Error::OutOfMemory)
        }
    }
}

pub(super) fn map(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let target = task_arg(k, cur, 0, Rights::MAP)?;
    let rights = Rights::from_bits_truncate(arg(k, cur, 5) as u32) & (Rights::READ | Rights::WRITE | Rights::EXECUTE);
    let (cap_id, object) = object(k, cur, 1, Rights::MAP | rights)?;
    let ObjectRef::Memory(memory) = object else {
        return Err(Error::WrongType);
    };
    let (pages, offset, va) = (arg(k, cur, 2) as usize, arg(k, cur, 3) as usize, arg(k, cur, 4));
    task::map(k, target, cap_id, memory, offset, pages, va, rights)
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
    k.charge(pool, crate::object::IPC_OBJECT_COST)?;
    let m = crate::object::Memory {
        physical,
        pages: pages as usize,
        kind: MemoryKind::Device,
        pool: Some(pool),
        charge: crate::object::IPC_OBJECT_COST,
        refs: 0,
        mapped: crate::object::MappedAs::NONE,
    };
    let Ok(id) = k.memories.insert(m) else {
        k.refund(pool, crate::object::IPC_OBJECT_COST);
        return Err(Error::OutOfMemory);
    };
    k.add_ref(ObjectRef::Pool(pool));
    let object = ObjectRef::Memory(id);
    let task = task_of(k, cur)?;
    let rights = Rights::READ | Rights::WRITE | Rights::MAP | Rights::GRANT | Rights::MANAGE;
    match cap::insert(k, task, object, rights, 0, None) {
        Ok(h) => {
            regs(k, cur)[1] = h.0 as u64;
            Ok(())
        }
        Err(e) => {
            // Nobody holds it: destroy it again (refunds the pool).
            k.add_ref(object);
            k.release(object);
            Err(e)
        }
    }
}
