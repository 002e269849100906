//! The `virtio-drivers` HAL for Kestrel drivers, and the virtio-mmio
//! transport over a device's first region.
//!
//! DMA memory comes from [`Dma`] buffers of this task. Buffers the driver
//! passes to the device (`share`) are translated when they already lie in a
//! DMA buffer and otherwise bounced through one, so drivers may use plain
//! heap buffers.

use crate::device::{Device, DeviceError};
use crate::dma::Dma;
use crate::mmio::Mmio;
use alloc::vec::Vec;
use core::ptr::NonNull;
use spin::Mutex;
use userlib::abi::PAGE_SIZE;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

pub use virtio_drivers;

/// DMA buffers the device currently uses: allocations and bounce buffers
/// (with the driver buffer a bounce stands for, to copy back).
struct Live {
    dma: Dma,
    bounce_of: Option<(usize, usize)>,
}

static LIVE: Mutex<Vec<Live>> = Mutex::new(Vec::new());

/// The HAL: `virtio_drivers` devices are `VirtIOBlk<KitHal, MmioTransport>` etc.
pub struct KitHal;

fn allocate(pages: usize) -> Option<(PhysAddr, NonNull<u8>)> {
    let dma = Dma::new(pages * PAGE_SIZE).ok()?;
    let r = (dma.physical(), NonNull::new(dma.as_ptr())?);
    LIVE.lock().push(Live { dma, bounce_of: None });
    Some(r)
}

fn release(paddr: PhysAddr) -> Option<Live> {
    let mut live = LIVE.lock();
    let i = live.iter().position(|l| l.dma.physical() == paddr)?;
    Some(live.swap_remove(i))
}

// SAFETY: `dma_alloc` returns zeroed (fresh memory objects are zero-filled),
// page-aligned, exclusively owned memory that stays mapped until
// `dma_dealloc`; `share` returns a device address that covers the whole
// buffer (a bounce buffer when the original is not DMA memory) and
// `unshare` copies device writes back.
unsafe impl Hal for KitHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        allocate(pages).unwrap_or((0, NonNull::dangling()))
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        match release(paddr) {
            Some(_) => 0,
            None => -1,
        }
    }

    unsafe fn mmio_phys_to_virt(_paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        // Only the PCI transport asks; Kestrel's virtio devices are MMIO
        // and their registers are mapped by `transport`.
        NonNull::dangling()
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let ptr = buffer.as_ptr() as *mut u8 as usize;
        let len = buffer.len();
        if let Some(p) = LIVE
            .lock()
            .iter()
            .find(|l| l.dma.contains(ptr, len))
            .and_then(|l| l.dma.physical_of(ptr))
        {
            return p;
        }
        let Ok(mut dma) = Dma::new(len) else {
            return 0;
        };
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the caller guarantees `buffer` is valid for reads of
            // `len` bytes until `unshare`.
            let src = unsafe { core::slice::from_raw_parts(ptr as *const u8, len) };
            dma.as_mut_slice()[..len].copy_from_slice(src);
        }
        let paddr = dma.physical();
        LIVE.lock().push(Live {
            dma,
            bounce_of: Some((ptr, len)),
        });
        paddr
    }

    unsafe fn unshare(paddr: PhysAddr, _buffer: NonNull<[u8]>, direction: BufferDirection) {
        let bounced = {
            let live = LIVE.lock();
            live.iter().any(|l| l.dma.physical() == paddr && l.bounce_of.is_some())
        };
        if !bounced {
            return;
        }
        let Some(Live {
            dma,
            bounce_of: Some((ptr, len)),
        }) = release(paddr)
        else {
            return;
        };
        if direction != BufferDirection::DriverToDevice {
            // SAFETY: the caller guarantees the original buffer is valid
            // for writes of `len` bytes and not otherwise borrowed.
            let dst = unsafe { core::slice::from_raw_parts_mut(ptr as *mut u8, len) };
            dst.copy_from_slice(&dma.as_slice()[..len]);
        }
    }
}

/// The virtio-mmio registers as the kit maps them (the transport reads
/// them through its own volatile accessors).
pub struct Registers {
    _space: [u8; 0x100],
}

/// The device's virtio-mmio transport (region 0), and the mapping it
/// lives in (keep it alive as long as the transport).
pub fn transport(device: &Device) -> Result<(MmioTransport<'static>, Mmio<Registers>), DeviceError> {
    let regs: Mmio<Registers> = device.map(0)?;
    let header = NonNull::new(regs.address() as *mut VirtIOHeader).ok_or(DeviceError::Missing)?;
    // SAFETY: `header` points at the device's virtio-mmio registers, mapped
    // uncached for `regs.len()` bytes; the caller keeps `regs` (and so the
    // mapping) alive as long as the transport.
    let transport = unsafe { MmioTransport::new(header, regs.len()) }.map_err(|_| DeviceError::Missing)?;
    Ok((transport, regs))
}
