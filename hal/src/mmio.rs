//! Volatile access to memory-mapped device registers.

/// A block of device registers at a virtual address the caller has mapped
/// as device memory.
#[derive(Clone, Copy, Debug)]
pub struct Mmio {
    base: usize,
    size: usize,
}

impl Mmio {
    /// # Safety
    /// `[base, base + size)` must be mapped device memory belonging to one
    /// device, and stay mapped for as long as this value is used.
    pub const unsafe fn new(base: usize, size: usize) -> Self {
        Mmio { base, size }
    }

    pub fn base(&self) -> usize {
        self.base
    }

    pub fn size(&self) -> usize {
        self.size
    }

    fn check(&self, offset: usize, width: usize) -> usize {
        assert!(
            offset.is_multiple_of(width) && offset + width <= self.size,
            "MMIO offset {offset:#x} outside the {:#x}-byte register block",
            self.size
        );
        self.base + offset
    }

    pub fn read32(&self, offset: usize) -> u32 {
        let addr = self.check(offset, 4);
        // SAFETY: in bounds of a mapped register block (constructor contract).
        unsafe { core::ptr::read_volatile(addr as *const u32) }
    }

    pub fn write32(&self, offset: usize, value: u32) {
        let addr = self.check(offset, 4);
        // SAFETY: in bounds of a mapped register block (constructor contract).
        unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
    }

    pub fn read64(&self, offset: usize) -> u64 {
        let addr = self.check(offset, 8);
        // SAFETY: in bounds of a mapped register block (constructor contract).
        unsafe { core::ptr::read_volatile(addr as *const u64) }
    }

    pub fn write64(&self, offset: usize, value: u64) {
        let addr = self.check(offset, 8);
        // SAFETY: in bounds of a mapped register block (constructor contract).
        unsafe { core::ptr::write_volatile(addr as *mut u64, value) }
    }

    pub fn write8(&self, offset: usize, value: u8) {
        let addr = self.check(offset, 1);
        // SAFETY: in bounds of a mapped register block (constructor contract).
        unsafe { core::ptr::write_volatile(addr as *mut u8, value) }
    }
}
