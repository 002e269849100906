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
    _registers: PhantomData<R>,
}

impl<R> Mmio<R> {
    /// Maps the whole of device region `region` read-write (the kernel
    /// maps device memory Device-nGnRE, never executable).
    pub fn map(region: Handle) -> Result<Mmio<R>, DeviceError> {
        let (_, size) = syscall::memory_physical(region)?;
        if (size as usize) < core::mem::size_of::<R>() {
            return Err(DeviceError::TooSmall);
        }
        let pages = (size as usize).div_ceil(PAGE_SIZE) as u64;
        let mapping = Mapping::map(region, pages, Rights::READ | Rights::WRITE)?;
        Ok(Mmio {
            mapping,
            _registers: PhantomData,
        })
    }

    /// Where the registers are mapped in this task.
    pub fn address(&self) -> usize {
        self.mapping.addr() as usize
    }

    /// Bytes mapped.
    pub fn len(&self) -> usize {
        self.mapping.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mapping.is_empty()
    }
}

impl<R> Deref for Mmio<R> {
    type Target = R;

    fn deref(&self) -> &R {
        // SAFETY: the mapping is page aligned, at least size_of::<R>()
        // bytes (checked in `map`) and lives as long as `self`. `R` is made
        // of tock-registers cells, which access the memory only with
        // volatile reads and writes, so device memory changing under it is
        // expected, not undefined behaviour.
        unsafe { &*(self.mapping.addr() as *const R) }
    }
}
