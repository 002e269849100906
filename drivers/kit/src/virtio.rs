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
use userlib::{log, Handle};
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

pub use virtio_drivers;

pub mod blk;
pub mod gpu;
pub mod net;

/// DMA buffers the device currently uses: allocations and bounce buffers
/// (with the driver buffer a bounce stands for, to copy back).
struct Live {
    dma: Dma,
    bounce_of: Option<(usize, usize)>,
}

static LIVE: Mutex<Vec<Live>> = Mutex::new(Vec::new());

/// Bounce buffers kept for reuse: every request of a device whose buffers
/// are not DMA memory (virtio-drivers' request headers and indirect
/// descriptor lists live on the stack and heap) would otherwise allocate
/// and map fresh memory, and mappings never reuse addresses.
static SPARE: Mutex<Vec<Dma>> = Mutex::new(Vec::new());
const SPARE_MAX: usize = 8;
/// Larger bounce buffers are freed rather than kept.
const SPARE_BYTES: usize = 64 * 1024;

fn spare(len: usize) -> Option<Dma> {
    let mut spare = SPARE.lock();
    let i = (0..spare.len())
        .filter(|&i| spare[i].len() >= len)
        .min_by_key(|&i| spare[i].len())?;
    Some(spare.swap_remove(i))
}

fn keep_spare(dma: Dma) {
    let mut spare = SPARE.lock();
    if spare.len() < SPARE_MAX && dma.len() <= SPARE_BYTES {
        spare.push(dma);
    }
}

/// Small buffers (at most [`MIRROR_MAX`] bytes within one page) bounce
/// through a copy of their whole page, shared by every buffer of that page
/// while any is with the device: virtio-input's 32 event buffers, one heap
/// array, then cost one page instead of 32.
struct Mirror {
    page: usize,
    dma: Dma,
    users: usize,
}

static MIRRORS: Mutex<Vec<Mirror>> = Mutex::new(Vec::new());
const MIRROR_MAX: usize = 256;

/// The device address of `ptr..ptr+len` in its page's mirror (made if
/// needed), with the driver's bytes copied in (or zeroes for the device to
/// fill); `None` if the buffer is not small or no memory is left.
fn share_mirrored(ptr: usize, len: usize, direction: BufferDirection) -> Option<PhysAddr> {
    let page = ptr & !(PAGE_SIZE - 1);
    let offset = ptr - page;
    if len > MIRROR_MAX || offset + len > PAGE_SIZE {
        return None;
    }
    let mut mirrors = MIRRORS.lock();
    let i = match mirrors.iter().position(|m| m.page == page) {
        Some(i) => i,
        None => {
            let dma = spare(PAGE_SIZE).or_else(|| Dma::new(PAGE_SIZE).ok())?;
            mirrors.push(Mirror { page, dma, users: 0 });
            mirrors.len() - 1
        }
    };
    let m = &mut mirrors[i];
    let range = &mut m.dma.as_mut_slice()[offset..offset + len];
    if direction == BufferDirection::DeviceToDriver {
        range.fill(0);
    } else {
        // SAFETY: the caller of `share` guarantees the buffer is valid for
        // reads of `len` bytes until `unshare`.
        range.copy_from_slice(unsafe { core::slice::from_raw_parts(ptr as *const u8, len) });
    }
    m.users += 1;
    Some(m.dma.physical() + offset as u64)
}

/// Ends a [`share_mirrored`]: copies the device's bytes back if it wrote
/// them, ends the mirror with its last user (its page goes to the spares).
/// `false` if `paddr` is in no
/// mirror.
fn unshare_mirrored(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) -> bool {
    let mut mirrors = MIRRORS.lock();
    let Some(i) = mirrors
        .iter()
        .position(|m| paddr >= m.dma.physical() && paddr < m.dma.physical() + PAGE_SIZE as u64)
    else {
        return false;
    };
    let m = &mut mirrors[i];
    let offset = (paddr - m.dma.physical()) as usize;
    let len = buffer.len().min(PAGE_SIZE - offset);
    if direction != BufferDirection::DriverToDevice {
        // SAFETY: the caller of `unshare` guarantees the original buffer is
        // valid for writes of its length and not otherwise borrowed.
        let dst = unsafe { core::slice::from_raw_parts_mut(buffer.as_ptr() as *mut u8, len) };
        dst.copy_from_slice(&m.dma.as_slice()[offset..offset + len]);
    }
    m.users -= 1;
    if m.users == 0 {
        // Kept as a spare: the next small buffer (a virtio-net frame, one
        // per packet) takes it without a new memory object and mapping.
        let m = mirrors.swap_remove(i);
        drop(mirrors);
        keep_spare(m.dma);
    }
    true
}

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
// `dma_dealloc`, or does not return at all: the trait has no way to report
// a failed allocation, so the driver panics (and is restarted by its
// supervisor) rather than hand the device address 0 and the caller a
// dangling pointer. `share` likewise returns a device address that covers
// the whole buffer (a bounce buffer when the original is not DMA memory)
// or panics; `unshare` copies device writes back. `mmio_phys_to_virt`
// (PCI only) panics: no device of this HAL has PCI BARs.
unsafe impl Hal for KitHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        match allocate(pages) {
            Some(r) => r,
            None => panic!("virtio: no memory for {pages} pages of DMA (the pool is exhausted)"),
        }
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        match release(paddr) {
            Some(_) => 0,
            None => -1,
        }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        // Only the PCI transport asks; Kestrel's virtio devices are MMIO
        // and their registers are mapped by `transport`.
        panic!("virtio: PCI BAR {paddr:#x} asked of the MMIO-only HAL")
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let ptr = buffer.as_ptr() as *mut u8 as usize;
        let len = buffer.len();
        // Any `Dma` buffer of the task (HAL allocations included) is used in place.
        if let Some(p) = crate::dma::physical_of_range(ptr, len) {
            return p;
        }
        if let Some(p) = share_mirrored(ptr, len, direction) {
            return p;
        }
        let Some(mut dma) = spare(len).or_else(|| Dma::new(len).ok()) else {
            // Address 0 would send the device's DMA to physical page 0.
            panic!("virtio: no memory for a {len}-byte bounce buffer (the pool is exhausted)");
        };
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the caller guarantees `buffer` is valid for reads of
            // `len` bytes until `unshare`.
            let src = unsafe { core::slice::from_raw_parts(ptr as *const u8, len) };
            dma.as_mut_slice()[..len].copy_from_slice(src);
        } else {
            // A reused bounce buffer must not hand old bytes back.
            dma.as_mut_slice()[..len].fill(0);
        }
        let paddr = dma.physical();
        LIVE.lock().push(Live {
            dma,
            bounce_of: Some((ptr, len)),
        });
        paddr
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        if unshare_mirrored(paddr, buffer, direction) {
            return;
        }
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
        keep_spare(dma);
    }
}

/// The memory object of the DMA allocation holding all of `buffer` (say
/// the framebuffer `VirtIOGpu` allocated), to map it once more or hand it
/// to a client; `None` if no allocation of this HAL holds it.
pub fn dma_memory(buffer: &[u8]) -> Option<Handle> {
    LIVE.lock()
        .iter()
        .find(|l| l.bounce_of.is_none() && l.dma.contains(buffer.as_ptr() as usize, buffer.len()))
        .map(|l| l.dma.handle())
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
    let transport = unsafe { MmioTransport::new(header, regs.len()) }.map_err(|e| {
        log::error!("virtio-mmio transport at {:#x}: {e}", regs.address());
        DeviceError::Missing
    })?;
    // The first request's small buffers (virtio-drivers' headers on the
    // stack) bounce through a page: made here, with the device, so a
    // request does not pay for a memory object and its mapping (the first
    // block request of `bench-fs` went from about 36,000 to 28,700
    // instructions, when the block driver still bounced its headers;
    // `blk::Blk` now keeps them in DMA memory). If it cannot be made now,
    // the first request tries again.
    if SPARE.lock().is_empty() {
        if let Ok(page) = Dma::new(PAGE_SIZE) {
            keep_spare(page);
        }
    }
    Ok((transport, regs))
}

/// A virtio-drivers error as the kit's drivers report it.
pub(crate) fn error(e: virtio_drivers::Error) -> userlib::Error {
    use userlib::Error;
    use virtio_drivers::Error as V;
    match e {
        V::QueueFull => Error::WouldBlock,
        V::InvalidParam => Error::InvalidArgument,
        V::DmaError => Error::OutOfMemory,
        V::Unsupported => Error::NotSupported,
        _ => Error::InvalidState,
    }
}
