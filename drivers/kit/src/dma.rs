//! Memory a device reads and writes by DMA: physically contiguous, zeroed,
//! mapped in this task, with the address the device uses.
//!
//! (The machines Kestrel runs on have no IOMMU and coherent DMA for the
//! devices it drives: the bus address is the physical address.)

use alloc::vec::Vec;
use userlib::abi::PAGE_SIZE;
use userlib::sync::Mutex;
use userlib::vspace::Mapping;
use userlib::{syscall, Error, Handle, Rights};

/// Every live [`Dma`] buffer of this task as `(address, bytes, device
/// address)`, so that a buffer handed to a device by pointer (the virtio
/// HAL's `share`) is used in place instead of bounced.
static BUFFERS: Mutex<Vec<(usize, usize, u64)>> = Mutex::new(Vec::new());

/// The device address of `ptr..ptr+len` if it lies inside one [`Dma`]
/// buffer of this task.
pub fn physical_of_range(ptr: usize, len: usize) -> Option<u64> {
    BUFFERS
        .lock()
        .iter()
        .find(|(start, size, _)| ptr >= *start && ptr.saturating_add(len) <= start + size)
        .map(|(start, _, physical)| physical + (ptr - start) as u64)
}

/// A DMA buffer; dropping it unmaps and frees it.
pub struct Dma {
    mapping: Mapping,
    physical: u64,
}

impl Dma {
    /// At least `bytes` bytes (whole pages), from this task's pool.
    pub fn new(bytes: usize) -> Result<Dma, Error> {
        let pages = bytes.max(1).div_ceil(PAGE_SIZE) as u64;
        let mapping = Mapping::new_with(pages, Rights::READ | Rights::WRITE, userlib::abi::MEMORY_CONTIGUOUS)?;
        let (physical, _) = syscall::memory_physical(mapping.handle())?;
        BUFFERS.lock().push((mapping.addr() as usize, mapping.len(), physical));
        Ok(Dma { mapping, physical })
    }

    /// The device's address of the first byte.
    pub fn physical(&self) -> u64 {
        self.physical
    }

    /// The memory object (to share it with a client: it can map it too).
    pub fn handle(&self) -> Handle {
        self.mapping.handle()
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.mapping.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.mapping.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mapping.is_empty()
    }

    /// The bytes, while the device is not writing them.
    pub fn as_slice(&self) -> &[u8] {
        self.mapping.as_slice()
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.mapping.as_mut_slice()
    }

    /// Whether `ptr..ptr+len` lies inside this buffer.
    pub fn contains(&self, ptr: usize, len: usize) -> bool {
        let start = self.mapping.addr() as usize;
        ptr >= start && ptr.saturating_add(len) <= start + self.len()
    }

    /// Device address of `ptr`, which must lie inside the buffer.
    pub fn physical_of(&self, ptr: usize) -> Option<u64> {
        self.contains(ptr, 0)
            .then(|| self.physical + (ptr - self.mapping.addr() as usize) as u64)
    }
}

impl Drop for Dma {
    fn drop(&mut self) {
        let start = self.mapping.addr() as usize;
        BUFFERS.lock().retain(|(s, _, _)| *s != start);
    }
}
