//! A virtio-gpu 2D device whose commands sleep on the device's interrupt.
//!
//! `virtio_drivers::device::gpu::VirtIOGpu` spins on the used ring for
//! every command and only transfers and flushes the whole frame (its
//! `TRANSFER_TO_HOST_2D` and `RESOURCE_FLUSH` of a rectangle are private).
//! A display server flushes small damaged rectangles many times a second,
//! so this module drives the control queue itself, on the crate's
//! transport and [`VirtQueue`]: it encodes the few 2D commands a
//! framebuffer needs (virtio 1.2, 5.7.6), submits a batch of them with one
//! notification, and sleeps on the [`Interrupt`] until the device has
//! answered every one.
//!
//! Requests and responses live in one DMA page of this task, so the HAL
//! uses them in place (no bounce buffers).

use crate::dma::Dma;
use crate::irq::Interrupt;
use crate::virtio::KitHal;
use userlib::{log, Error, Handle, Timeout};
use virtio_drivers::device::common::Feature;
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::Transport;

/// A rectangle of the framebuffer, in pixels (the `display` protocol's,
/// which is also the device's `virtio_gpu_rect`).
pub use userlib::services::display::Rect;

/// Descriptors in the control queue; each command takes two (request,
/// response), so a batch is at most [`MAX_BATCH`] commands.
const QUEUE: usize = 32;
/// Commands submitted together.
pub const MAX_BATCH: usize = QUEUE / 2;
const CONTROL: u16 = 0;
const CURSOR: u16 = 1;

/// The command page: request slots, then response slots, then room for
/// the one long response (`GET_DISPLAY_INFO`).
const SLOT: usize = 64;
const RESPONSES: usize = MAX_BATCH * SLOT;
const LONG_RESPONSE: usize = 2 * MAX_BATCH * SLOT;
const HEADER: usize = 24;
/// `virtio_gpu_resp_display_info`: the header and 16 scanouts of
/// `(rect, enabled, flags)`.
const DISPLAY_INFO_BYTES: usize = HEADER + 16 * 24;

// Command and response types (virtio 1.2, 5.7.6.7).
const GET_DISPLAY_INFO: u32 = 0x100;
const RESOURCE_CREATE_2D: u32 = 0x101;
const SET_SCANOUT: u32 = 0x103;
const RESOURCE_FLUSH: u32 = 0x104;
const TRANSFER_TO_HOST_2D: u32 = 0x105;
const RESOURCE_ATTACH_BACKING: u32 = 0x106;
const OK_NODATA: u32 = 0x1100;
const OK_DISPLAY_INFO: u32 = 0x1101;
/// `VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM`: bytes blue, green, red, unused.
const FORMAT_B8G8R8X8: u32 = 2;

const SCANOUT: u32 = 0;
const RESOURCE: u32 = 1;

/// One encoded request: the control header, then little-endian fields.
#[derive(Clone, Copy)]
struct Command {
    bytes: [u8; SLOT],
    len: usize,
    /// Bytes of the response (the header alone, or the display info).
    response: usize,
    expect: u32,
}

impl Command {
    fn new(kind: u32) -> Command {
        let mut c = Command {
            bytes: [0; SLOT],
            len: 0,
            response: HEADER,
            expect: OK_NODATA,
        };
        // type, flags, fence_id (u64), ctx_id, padding
        c.u32(kind).u32(0).u64(0).u32(0).u32(0);
        c
    }

    fn u32(&mut self, v: u32) -> &mut Command {
        self.bytes[self.len..self.len + 4].copy_from_slice(&v.to_le_bytes());
        self.len += 4;
        self
    }

    fn u64(&mut self, v: u64) -> &mut Command {
        self.bytes[self.len..self.len + 8].copy_from_slice(&v.to_le_bytes());
        self.len += 8;
        self
    }

    fn rect(&mut self, r: Rect) -> &mut Command {
        self.u32(r.x).u32(r.y).u32(r.w).u32(r.h)
    }

    fn display_info() -> Command {
        let mut c = Command::new(GET_DISPLAY_INFO);
        c.response = DISPLAY_INFO_BYTES;
        c.expect = OK_DISPLAY_INFO;
        c
    }

    fn create_2d(width: u32, height: u32) -> Command {
        let mut c = Command::new(RESOURCE_CREATE_2D);
        c.u32(RESOURCE).u32(FORMAT_B8G8R8X8).u32(width).u32(height);
        c
    }

    /// One memory entry: the whole backing is contiguous.
    fn attach_backing(address: u64, bytes: u32) -> Command {
        let mut c = Command::new(RESOURCE_ATTACH_BACKING);
        c.u32(RESOURCE).u32(1).u64(address).u32(bytes).u32(0);
        c
    }

    fn set_scanout(r: Rect) -> Command {
        let mut c = Command::new(SET_SCANOUT);
        c.rect(r).u32(SCANOUT).u32(RESOURCE);
        c
    }

    /// `offset` is where `r`'s first pixel lies in the backing.
    fn transfer(r: Rect, offset: u64) -> Command {
        let mut c = Command::new(TRANSFER_TO_HOST_2D);
        c.rect(r).u64(offset).u32(RESOURCE).u32(0);
        c
    }

    fn flush(r: Rect) -> Command {
        let mut c = Command::new(RESOURCE_FLUSH);
        c.rect(r).u32(RESOURCE).u32(0);
        c
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The first enabled scanout's size in a `GET_DISPLAY_INFO` response.
fn preferred_mode(resp: &[u8]) -> Option<(u32, u32)> {
    (0..16).find_map(|i| {
        let at = HEADER + i * 24;
        let (w, h, enabled) = (le32(resp, at + 8), le32(resp, at + 12), le32(resp, at + 16));
        (enabled != 0 && w > 0 && h > 0).then_some((w, h))
    })
}

/// The device, with its framebuffer once [`Gpu::set_mode`] made one.
pub struct Gpu<T: Transport> {
    transport: T,
    control: VirtQueue<KitHal, QUEUE>,
    /// Set up because a device may expect it; the driver draws no cursor.
    _cursor: VirtQueue<KitHal, 2>,
    irq: Interrupt,
    page: Dma,
    /// The framebuffer: its memory, the mode's width and height, and how
    /// many rows the memory holds (`height`, or fewer: a band).
    framebuffer: Option<(Dma, u32, u32, u32)>,
}

impl<T: Transport> Gpu<T> {
    /// Resets and initialises the device (no optional features: no event
    /// index, no indirect descriptors, no EDID, no 3D).
    pub fn new(mut transport: T, irq: Interrupt) -> Result<Gpu<T>, Error> {
        transport.begin_init(Feature::VERSION_1);
        let control = VirtQueue::new(&mut transport, CONTROL, false, false).map_err(error)?;
        let cursor = VirtQueue::new(&mut transport, CURSOR, false, false).map_err(error)?;
        transport.finish_init();
        Ok(Gpu {
            transport,
            control,
            _cursor: cursor,
            irq,
            page: Dma::new(userlib::abi::PAGE_SIZE)?,
            framebuffer: None,
        })
    }

    /// The first enabled scanout's size, if the device reports one.
    pub fn preferred_mode(&mut self) -> Result<Option<(u32, u32)>, Error> {
        self.run(&[Command::display_info()])?;
        let resp = &self.page.as_slice()[LONG_RESPONSE..LONG_RESPONSE + DISPLAY_INFO_BYTES];
        Ok(preferred_mode(resp))
    }

    /// Makes a `width` x `height` BGRX framebuffer (DMA memory of this
    /// task, zeroed) and shows it on the scanout. Once only.
    pub fn set_mode(&mut self, width: u32, height: u32) -> Result<(), Error> {
        self.set_mode_rows(width, height, height)
    }

    /// Sets a `width` x `height` mode whose framebuffer memory holds only
    /// `rows` rows (1..=`height`): a band [`Gpu::put`] moves over the
    /// screen. The device's resource keeps the whole picture (in the
    /// host's memory, not the guest's); a transfer copies a band's
    /// rectangles into it. Once only.
    pub fn set_mode_rows(&mut self, width: u32, height: u32, rows: u32) -> Result<(), Error> {
        if self.framebuffer.is_some() {
            return Err(Error::InvalidState);
        }
        if width == 0 || !(1..=height).contains(&rows) {
            return Err(Error::InvalidArgument);
        }
        let bytes = width
            .checked_mul(rows)
            .and_then(|p| p.checked_mul(4))
            .ok_or(Error::InvalidArgument)?;
        height
            .checked_mul(width)
            .and_then(|p| p.checked_mul(4))
            .ok_or(Error::InvalidArgument)?;
        let fb = Dma::new(bytes as usize)?;
        let screen = Rect {
            x: 0,
            y: 0,
            w: width,
            h: height,
        };
        self.run(&[
            Command::create_2d(width, height),
            Command::attach_backing(fb.physical(), bytes),
            Command::set_scanout(screen),
        ])?;
        self.framebuffer = Some((fb, width, height, rows));
        Ok(())
    }

    /// Rows the framebuffer memory holds (the mode's height unless
    /// [`Gpu::set_mode_rows`] made a band).
    pub fn rows(&self) -> Option<u32> {
        self.framebuffer.as_ref().map(|f| f.3)
    }

    /// The framebuffer's bytes (rows of `width * 4`).
    pub fn framebuffer(&mut self) -> Option<&mut [u8]> {
        self.framebuffer.as_mut().map(|f| f.0.as_mut_slice())
    }

    /// The framebuffer's memory object, to map it in a client.
    pub fn framebuffer_memory(&self) -> Option<Handle> {
        self.framebuffer.as_ref().map(|f| f.0.handle())
    }

    /// Copies `rects` of the framebuffer to the device's resource and puts
    /// them on the screen (`TRANSFER_TO_HOST_2D`, then `RESOURCE_FLUSH`,
    /// of each rectangle). Rectangles must lie inside the mode and inside
    /// the rows the framebuffer holds: [`Gpu::put`] at row 0.
    pub fn flush(&mut self, rects: &[Rect]) -> Result<(), Error> {
        self.put(0, rects)
    }

    /// Like [`Gpu::flush`] with the framebuffer's first row shown at
    /// screen row `top`: each rectangle must lie inside the mode and in
    /// rows `top..top + rows`.
    pub fn put(&mut self, top: u32, rects: &[Rect]) -> Result<(), Error> {
        let (_, width, height, rows) = self.framebuffer.as_ref().ok_or(Error::InvalidState)?;
        let (width, height, rows) = (*width, *height, *rows);
        let inside = |r: &Rect| {
            r.w > 0
                && r.h > 0
                && r.y >= top
                && r.x.checked_add(r.w).is_some_and(|e| e <= width)
                && r.y.checked_add(r.h).is_some_and(|e| e <= height && e - top <= rows)
        };
        if !rects.iter().all(inside) {
            return Err(Error::InvalidArgument);
        }
        let mut batch = [Command::new(0); MAX_BATCH];
        for chunk in rects.chunks(MAX_BATCH / 2) {
            let mut n = 0;
            for r in chunk {
                let offset = (r.y - top) as u64 * width as u64 * 4 + r.x as u64 * 4;
                batch[n] = Command::transfer(*r, offset);
                batch[n + 1] = Command::flush(*r);
                n += 2;
            }
            self.run(&batch[..n])?;
        }
        Ok(())
    }

    /// Submits `commands` (at most [`MAX_BATCH`]) with one notification
    /// and sleeps until the device has answered all of them; an answer
    /// other than the expected one is `InvalidState`.
    ///
    /// The wait has no deadline: the buffers stay lent to the device until
    /// it answers, and under the benchmarks' `-icount sleep=off` any timer
    /// would fire as soon as the CPU idles, before the device has run.
    fn run(&mut self, commands: &[Command]) -> Result<(), Error> {
        assert!(commands.len() <= MAX_BATCH);
        let page = self.page.as_mut_slice();
        let (requests, rest) = page.split_at_mut(RESPONSES);
        let (responses, long) = rest.split_at_mut(LONG_RESPONSE - RESPONSES);
        let long = &mut long[..DISPLAY_INFO_BYTES];
        let mut ins: [&[u8]; MAX_BATCH] = [&[]; MAX_BATCH];
        let mut outs: [&mut [u8]; MAX_BATCH] = Default::default();
        let mut long = Some(long);
        for ((c, (req, resp)), (i, o)) in commands
            .iter()
            .zip(requests.chunks_mut(SLOT).zip(responses.chunks_mut(SLOT)))
            .zip(ins.iter_mut().zip(outs.iter_mut()))
        {
            req[..c.len].copy_from_slice(&c.bytes[..c.len]);
            *i = &req[..c.len];
            *o = if c.response > SLOT {
                long.take().ok_or(Error::InvalidArgument)?
            } else {
                &mut resp[..c.response]
            };
            o.fill(0);
        }
        let n = commands.len();
        let mut tokens = [0u16; MAX_BATCH];
        for k in 0..n {
            // SAFETY: the request and response slots are in `self.page`,
            // which lives as long as `self`; they are not read or written
            // again until `pop_used` below has taken each back (this
            // function does not return before, and panics if the device
            // breaks the protocol, leaving them with it).
            tokens[k] = unsafe { self.control.add(&[ins[k]], &mut [&mut *outs[k]]) }.map_err(error)?;
        }
        if self.control.should_notify() {
            self.transport.notify(CONTROL);
        }
        let mut done = 0;
        while done < n {
            // One read of the used ring decides each step: the device
            // answers while this runs, so a second look (was: `can_pop`
            // after `peek_used` found nothing) could see the next answer
            // in order and take it for one out of order.
            match self.control.peek_used() {
                Some(token) if token == tokens[done] => {
                    // SAFETY: the same buffers as given to `add` with this token.
                    unsafe {
                        self.control
                            .pop_used(tokens[done], &[ins[done]], &mut [&mut *outs[done]])
                    }
                    .map_err(error)?;
                    done += 1;
                }
                // The device answered out of order, which a 2D virtio-gpu
                // never does: its buffers cannot be accounted for.
                Some(_) => panic!("virtio-gpu: the device completed commands out of order"),
                None => match self.irq.wait(Timeout::Forever) {
                    Ok(()) => {
                        // Device first (it drops the line), then the kernel's mask.
                        self.transport.ack_interrupt();
                        let _ = self.irq.ack();
                    }
                    Err(e) => panic!("virtio-gpu: waiting for the device's interrupt: {e}"),
                },
            }
        }
        for (c, o) in commands.iter().zip(outs.iter()) {
            let kind = le32(o, 0);
            if kind != c.expect {
                log::warn!("virtio-gpu: command {:#x} answered {kind:#x}", le32(&c.bytes, 0));
                return Err(Error::InvalidState);
            }
        }
        Ok(())
    }
}

fn error(e: virtio_drivers::Error) -> Error {
    use virtio_drivers::Error as V;
    match e {
        V::QueueFull => Error::WouldBlock,
        V::InvalidParam => Error::InvalidArgument,
        V::DmaError => Error::OutOfMemory,
        V::Unsupported => Error::NotSupported,
        V::AlreadyUsed => Error::InvalidState,
        _ => Error::InvalidState,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_match_the_specification_layout() {
        let r = Rect { x: 1, y: 2, w: 3, h: 4 };
        let t = Command::transfer(r, 0x1_0000_0004);
        // header 24 + rect 16 + offset 8 + resource 4 + padding 4
        assert_eq!(t.len, 56);
        assert_eq!(le32(&t.bytes, 0), TRANSFER_TO_HOST_2D);
        assert_eq!(
            [24, 28, 32, 36].map(|at| le32(&t.bytes, at)),
            [1, 2, 3, 4],
            "the rectangle follows the header"
        );
        assert_eq!(le32(&t.bytes, 40), 4);
        assert_eq!(le32(&t.bytes, 44), 1, "offset's high half");
        assert_eq!(le32(&t.bytes, 48), RESOURCE);
        let f = Command::flush(r);
        assert_eq!(
            (f.len, le32(&f.bytes, 0), le32(&f.bytes, 40)),
            (48, RESOURCE_FLUSH, RESOURCE)
        );
        let a = Command::attach_backing(0x4000_1000, 8_294_400);
        assert_eq!(a.len, 48);
        assert_eq!([le32(&a.bytes, 24), le32(&a.bytes, 28)], [RESOURCE, 1]);
        assert_eq!(
            [le32(&a.bytes, 32), le32(&a.bytes, 36), le32(&a.bytes, 40)],
            [0x4000_1000, 0, 8_294_400]
        );
        let c = Command::create_2d(1920, 1080);
        assert_eq!(c.len, 40);
        assert_eq!(
            [24, 28, 32, 36].map(|at| le32(&c.bytes, at)),
            [RESOURCE, FORMAT_B8G8R8X8, 1920, 1080]
        );
        let s = Command::set_scanout(r);
        assert_eq!((s.len, le32(&s.bytes, 40), le32(&s.bytes, 44)), (48, SCANOUT, RESOURCE));
        let d = Command::display_info();
        assert_eq!((d.len, d.response, d.expect), (24, DISPLAY_INFO_BYTES, OK_DISPLAY_INFO));
        const { assert!(DISPLAY_INFO_BYTES <= userlib::abi::PAGE_SIZE - LONG_RESPONSE) };
    }

    #[test]
    fn the_first_enabled_scanout_is_the_mode() {
        let mut resp = [0u8; DISPLAY_INFO_BYTES];
        let put = |b: &mut [u8], at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        assert_eq!(preferred_mode(&resp), None);
        // Scanout 0: disabled; scanout 1: 1280x800, enabled.
        put(&mut resp, HEADER + 8, 640);
        put(&mut resp, HEADER + 12, 480);
        put(&mut resp, HEADER + 24 + 8, 1280);
        put(&mut resp, HEADER + 24 + 12, 800);
        put(&mut resp, HEADER + 24 + 16, 1);
        assert_eq!(preferred_mode(&resp), Some((1280, 800)));
        // Enabled but empty is no mode.
        put(&mut resp, HEADER + 24 + 12, 0);
        assert_eq!(preferred_mode(&resp), None);
    }
}
