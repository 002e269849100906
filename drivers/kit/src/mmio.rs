//! A device's registers, mapped uncached, as a typed register block.
//!
//! `R` is a struct of [`tock_registers`] register types laid out as the
//! device's registers (`register_structs!`); [`Mmio`] dereferences to it.

use crate::device::DeviceError;
use core::marker::PhantomData;
use core::ops::Deref;
use userlib::abi::PAGE_SIZE;
use userlib::vspace::Mapping;
use userlib::{syscall, Handle, Rights};

/// A register block of type `R` over a mapped device region.
pub struct Mmio<R> {
    mapping: Mapping,
    /// Where the registers start in the mapping: a region smaller than a
    /// page (virtio-mmio slots are 0x200 bytes) is mapped with its page.
    offset: usize,
    size: usize,
    _registers: PhantomData<R>,
}

impl<R> Mmio<R> {
    /// Maps device region `region`, whose registers are at `physical`
    /// (`size` bytes), read-write (the kernel maps device memory
    /// Device-nGnRE, never executable).
    pub fn map(region: Handle, physical: u64, size: u64) -> Result<Mmio<R>, DeviceError> {
        let (page, whole) = syscall::memory_physical(region)?;
        if physical < page || physical.saturating_add(size) > page + whole {
            return Err(DeviceError::Missing);
        }
        let offset = (physical - page) as usize;
        // The block may reach past the node's `reg` within the pages the
        // capability covers: device trees understate some blocks (the
        // BCM2711 GPIO's `reg` is 0xb4 bytes; its pull registers sit at
        // 0xe4..0xf0), and the capability is what bounds the driver.
        if offset + core::mem::size_of::<R>() > whole as usize {
            return Err(DeviceError::TooSmall);
        }
        let size = (size as usize).max(core::mem::size_of::<R>());
        let pages = (offset + size).div_ceil(PAGE_SIZE) as u64;
        let mapping = Mapping::map(region, pages, Rights::READ | Rights::WRITE)?;
        Ok(Mmio {
            mapping,
            offset,
            size,
            _registers: PhantomData,
        })
    }

    /// Where the registers are mapped in this task.
    pub fn address(&self) -> usize {
        self.mapping.addr() as usize + self.offset
    }

    /// Bytes of registers (the region's size).
    pub fn len(&self) -> usize {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
}

impl<R> Deref for Mmio<R> {
    type Target = R;

    fn deref(&self) -> &R {
        // SAFETY: `address()` is the region's start in the mapping, which
        // covers at least size_of::<R>() bytes from there (checked in
        // `map`) and lives as long as `self`. `R` is made
        // of tock-registers cells, which access the memory only with
        // volatile reads and writes, so device memory changing under it is
        // expected, not undefined behaviour.
        unsafe { &*(self.address() as *const R) }
    }
}
