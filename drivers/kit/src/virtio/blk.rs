//! Block requests that sleep on the device's interrupt instead of spinning.
//!
//! `VirtIOBlk::read_blocks`/`write_blocks` busy-wait for the device; its
//! non-blocking calls are `unsafe` (the buffers stay lent to the device
//! until the request completes). These functions wrap them soundly: they
//! submit, wait on the [`Interrupt`], acknowledge it, and return only once
//! the device has given the buffers back.

use crate::irq::Interrupt;
use crate::virtio::{error, KitHal};
use userlib::{syscall, Error, Timeout};
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk, SECTOR_SIZE};
use virtio_drivers::transport::Transport;

/// Reads `buf.len() / 512` sectors from `sector` into `buf`.
pub fn read<T: Transport>(
    blk: &mut VirtIOBlk<KitHal, T>,
    irq: &Interrupt,
    sector: u64,
    buf: &mut [u8],
    timeout: Timeout,
) -> Result<(), Error> {
    check(blk, sector, buf.len())?;
    let (mut req, mut resp) = (BlkReq::default(), BlkResp::default());
    // SAFETY: `req`, `buf` and `resp` are borrowed by this function until
    // `complete_read_blocks` (which `wait` reaches before returning, or the
    // task ends) and are not touched in between.
    let token = unsafe { blk.read_blocks_nb(sector as usize, &mut req, buf, &mut resp) }.map_err(error)?;
    wait(blk, irq, token, timeout);
    // SAFETY: the same buffers as submitted with `token`, which is done.
    unsafe { blk.complete_read_blocks(token, &req, buf, &mut resp) }.map_err(error)
}

/// Writes `buf` (whole sectors) to the disk from `sector` on.
pub fn write<T: Transport>(
    blk: &mut VirtIOBlk<KitHal, T>,
    irq: &Interrupt,
    sector: u64,
    buf: &[u8],
    timeout: Timeout,
) -> Result<(), Error> {
    check(blk, sector, buf.len())?;
    let (mut req, mut resp) = (BlkReq::default(), BlkResp::default());
    // SAFETY: as in `read`.
    let token = unsafe { blk.write_blocks_nb(sector as usize, &mut req, buf, &mut resp) }.map_err(error)?;
    wait(blk, irq, token, timeout);
    // SAFETY: as in `read`.
    unsafe { blk.complete_write_blocks(token, &req, buf, &mut resp) }.map_err(error)
}

/// Refuses what virtio-drivers would assert on, or the device reject.
fn check<T: Transport>(blk: &VirtIOBlk<KitHal, T>, sector: u64, bytes: usize) -> Result<(), Error> {
    let sectors = (bytes / SECTOR_SIZE) as u64;
    if bytes == 0
        || !bytes.is_multiple_of(SECTOR_SIZE)
        || sector.checked_add(sectors).is_none_or(|end| end > blk.capacity())
    {
        return Err(Error::InvalidArgument);
    }
    Ok(())
}

/// Sleeps until the request `token` is in the used ring. A device that
/// does not answer within `timeout` is broken, and returning would let it
/// write into buffers the caller reuses: the task panics instead (its
/// supervisor restarts it, and the new instance resets the device).
fn wait<T: Transport>(blk: &mut VirtIOBlk<KitHal, T>, irq: &Interrupt, token: u16, timeout: Timeout) {
    let deadline = match timeout {
        Timeout::Micros(us) => Some(syscall::now_us().saturating_add(us)),
        _ => None,
    };
    // The interrupt may belong to an earlier request or come before the
    // wait (the notification keeps it): check the ring after every wake.
    while blk.peek_used() != Some(token) {
        let left = match deadline {
            Some(d) => Timeout::Micros(d.saturating_sub(syscall::now_us()).max(1)),
            None => Timeout::Forever,
        };
        match irq.wait(left) {
            Ok(()) => {
                // Device first (it drops the line), then the kernel's mask.
                blk.ack_interrupt();
                let _ = irq.ack();
            }
            Err(Error::TimedOut) if deadline.is_some_and(|d| syscall::now_us() >= d) => {
                panic!("virtio-blk: the device did not complete a request in time")
            }
            Err(_) => {}
        }
    }
}
