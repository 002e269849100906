//! A virtio block device whose every request, flush included, sleeps on
//! the device's interrupt instead of spinning.
//!
//! virtio-drivers 0.13's `VirtIOBlk::flush` has no non-blocking form: it
//! spins on the used ring until the device answers, and QEMU answers a
//! flush once the host has `fdatasync`ed the image, so under `-icount`
//! the spin retired instructions for as long as the host took (56,000 to
//! 1.9 M a flush in `cargo xtask bench --only fs`, 2026-12-06). [`Blk`]
//! drives the device's one request queue itself (virtio-drivers'
//! [`VirtQueue`] and [`Transport`]): it negotiates the features it uses
//! (read-only, flush, virtio 1.0), reads the capacity, and submits each
//! request as three descriptors (the 16-byte request header, the data if
//! any, the 1-byte status), then waits on the [`Interrupt`].
//!
//! The queue's `add` and `pop_used` are `unsafe`: the buffers stay lent
//! to the device until the request completes. [`Blk`] keeps that sound by
//! having one request in flight at a time, lent buffers borrowed for the
//! whole request, and returning only once the device has given them back
//! (a device that never answers makes the task panic, see [`Blk::wait`]).
//! The header and status live in a DMA page of the device's own, so the
//! HAL uses them in place (no bounce page per request).

use crate::dma::Dma;
use crate::irq::Interrupt;
use crate::virtio::{error, KitHal};
use userlib::abi::PAGE_SIZE;
use userlib::ipc::Deadline;
use userlib::{Error, Timeout};
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::{DeviceStatus, Transport};

/// Bytes of a sector, the unit of every request.
pub const SECTOR_SIZE: usize = 512;

/// The request queue's index and size (one request is in flight at a
/// time; a request takes three descriptors).
const QUEUE: u16 = 0;
const QUEUE_SIZE: usize = 16;

/// Feature bits (virtio 1.2, 5.2.3 and 6).
const F_RO: u64 = 1 << 5;
const F_FLUSH: u64 = 1 << 9;
const F_VERSION_1: u64 = 1 << 32;

/// Request types (virtio 1.2, 5.2.6).
const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;

/// Status bytes the device writes (5.2.6); [`S_NONE`] is what the driver
/// puts there before a request, which no device writes.
const S_OK: u8 = 0;
const S_UNSUPP: u8 = 2;
const S_NONE: u8 = 0xff;

/// Where in [`Blk::header`] the request header and the status byte are.
const HEADER: usize = 16;
const STATUS: usize = HEADER;

/// What a request moves.
enum Data<'a> {
    None,
    In(&'a mut [u8]),
    Out(&'a [u8]),
}

/// One virtio block device, driven by interrupt.
pub struct Blk<T: Transport> {
    transport: T,
    queue: VirtQueue<KitHal, QUEUE_SIZE>,
    capacity: u64,
    features: u64,
    /// The request header (bytes `0..16`) and the status byte (16).
    header: Dma,
}

impl<T: Transport> Blk<T> {
    /// Resets the device and sets it up (virtio 1.2, 3.1.1): features,
    /// capacity, the request queue; interrupts on.
    pub fn new(mut transport: T) -> Result<Blk<T>, Error> {
        let header = Dma::new(PAGE_SIZE)?;
        transport.set_status(DeviceStatus::empty());
        transport.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER);
        let features = transport.read_device_features() & (F_RO | F_FLUSH | F_VERSION_1);
        transport.write_driver_features(features);
        transport.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER | DeviceStatus::FEATURES_OK);
        if features & F_VERSION_1 != 0 && !transport.get_status().contains(DeviceStatus::FEATURES_OK) {
            transport.set_status(DeviceStatus::FAILED);
            return Err(Error::NotSupported);
        }
        // Legacy devices address the queue in pages of this size.
        transport.set_guest_page_size(PAGE_SIZE as u32);
        // The capacity: a little-endian u64 at offset 0 of the
        // configuration, read as two halves within one generation.
        let capacity = transport
            .read_consistent(|| {
                let low: u32 = transport.read_config_space(0)?;
                let high: u32 = transport.read_config_space(4)?;
                Ok(u64::from(low) | u64::from(high) << 32)
            })
            .map_err(error)?;
        let mut queue = VirtQueue::new(&mut transport, QUEUE, false, false).map_err(error)?;
        queue.set_dev_notify(true);
        transport.set_status(
            DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER | DeviceStatus::FEATURES_OK | DeviceStatus::DRIVER_OK,
        );
        Ok(Blk {
            transport,
            queue,
            capacity,
            features,
            header,
        })
    }

    /// Capacity in [`SECTOR_SIZE`] sectors.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Whether the device refuses writes (`VIRTIO_BLK_F_RO`).
    pub fn read_only(&self) -> bool {
        self.features & F_RO != 0
    }

    /// Reads `buf.len() / 512` sectors from `sector` into `buf`.
    pub fn read(&mut self, irq: &Interrupt, sector: u64, buf: &mut [u8], timeout: Timeout) -> Result<(), Error> {
        self.check(sector, buf.len())?;
        self.request(irq, T_IN, sector, Data::In(buf), timeout)
    }

    /// Writes `buf` (whole sectors) to the disk from `sector` on.
    pub fn write(&mut self, irq: &Interrupt, sector: u64, buf: &[u8], timeout: Timeout) -> Result<(), Error> {
        self.check(sector, buf.len())?;
        if self.read_only() {
            return Err(Error::NoRights);
        }
        self.request(irq, T_OUT, sector, Data::Out(buf), timeout)
    }

    /// Makes every completed write durable: a flush request if the
    /// device has a write cache (`VIRTIO_BLK_F_FLUSH`); without it, writes
    /// are durable once done and this returns at once.
    pub fn flush(&mut self, irq: &Interrupt, timeout: Timeout) -> Result<(), Error> {
        if self.features & F_FLUSH == 0 {
            return Ok(());
        }
        self.request(irq, T_FLUSH, 0, Data::None, timeout)
    }

    /// Refuses an empty, partial-sector or out-of-range transfer.
    fn check(&self, sector: u64, bytes: usize) -> Result<(), Error> {
        let sectors = (bytes / SECTOR_SIZE) as u64;
        if bytes == 0
            || !bytes.is_multiple_of(SECTOR_SIZE)
            || sector.checked_add(sectors).is_none_or(|end| end > self.capacity)
        {
            return Err(Error::InvalidArgument);
        }
        Ok(())
    }

    /// Submits one request, waits for it and gives its status:
    /// `NotSupported` for one the device does not know, `InvalidState`
    /// for one it failed.
    fn request(&mut self, irq: &Interrupt, kind: u32, sector: u64, data: Data, timeout: Timeout) -> Result<(), Error> {
        let Blk {
            transport,
            queue,
            header,
            ..
        } = self;
        let (head, status) = header.as_mut_slice().split_at_mut(HEADER);
        head[0..4].copy_from_slice(&kind.to_le_bytes());
        head[4..8].fill(0);
        head[8..16].copy_from_slice(&sector.to_le_bytes());
        let status = &mut status[STATUS - HEADER..STATUS - HEADER + 1];
        status[0] = S_NONE;
        let head: &[u8] = head;
        match data {
            Data::None => {
                let (inputs, outputs) = (&[head][..], &mut [status][..]);
                // SAFETY: `head` and `status` (a DMA page of `self`) stay
                // borrowed, and are not touched, until `pop_used` below
                // takes them back: `wait` returns only once the device has
                // completed this request (the one in flight), and
                // otherwise the task panics.
                let token = unsafe { queue.add(inputs, outputs) }.map_err(error)?;
                Self::wait(transport, queue, irq, token, timeout);
                // SAFETY: the buffers `add` was given with `token`, which
                // the device has completed.
                unsafe { queue.pop_used(token, inputs, outputs) }.map_err(error)?;
            }
            Data::In(buf) => {
                let (inputs, outputs) = (&[head][..], &mut [buf, status][..]);
                // SAFETY: as for a flush; `buf` is borrowed for the whole
                // request as well.
                let token = unsafe { queue.add(inputs, outputs) }.map_err(error)?;
                Self::wait(transport, queue, irq, token, timeout);
                // SAFETY: as for a flush.
                unsafe { queue.pop_used(token, inputs, outputs) }.map_err(error)?;
            }
            Data::Out(buf) => {
                let (inputs, outputs) = (&[head, buf][..], &mut [status][..]);
                // SAFETY: as for a read.
                let token = unsafe { queue.add(inputs, outputs) }.map_err(error)?;
                Self::wait(transport, queue, irq, token, timeout);
                // SAFETY: as for a flush.
                unsafe { queue.pop_used(token, inputs, outputs) }.map_err(error)?;
            }
        }
        match self.header.as_slice()[STATUS] {
            S_OK => Ok(()),
            S_UNSUPP => Err(Error::NotSupported),
            _ => Err(Error::InvalidState),
        }
    }

    /// Notifies the device of the request `token` (unless it asked not
    /// to be) and sleeps until the request is in the used ring. A device
    /// that does not answer within `timeout` is broken, and returning
    /// would let it write into buffers the caller reuses: the task panics
    /// instead (its supervisor restarts it, and the new instance resets
    /// the device).
    fn wait(
        transport: &mut T,
        queue: &mut VirtQueue<KitHal, QUEUE_SIZE>,
        irq: &Interrupt,
        token: u16,
        timeout: Timeout,
    ) {
        if queue.should_notify() {
            transport.notify(QUEUE);
        }
        let deadline = Deadline::after(timeout);
        // The interrupt may belong to an earlier request or come before the
        // wait (the notification keeps it): check the ring after every wake.
        while queue.peek_used() != Some(token) {
            // Past the deadline: one more look (the interrupt may be in).
            let left = deadline.left().unwrap_or(Timeout::Micros(1));
            match irq.wait(left) {
                Ok(()) => {
                    // Device first (it drops the line), then the kernel's mask.
                    transport.ack_interrupt();
                    let _ = irq.ack();
                }
                Err(Error::TimedOut) if deadline.passed() => {
                    panic!("virtio-blk: the device did not complete a request in time")
                }
                Err(_) => {}
            }
        }
    }
}

impl<T: Transport> Drop for Blk<T> {
    /// The device forgets the queue before its memory goes.
    fn drop(&mut self) {
        self.transport.queue_unset(QUEUE);
    }
}
