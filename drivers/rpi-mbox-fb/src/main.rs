//! rpi-mbox-fb: the Raspberry Pi's VideoCore mailbox and the firmware's
//! framebuffer.
//!
//! It talks to the firmware through the property interface (mailbox
//! channel 8, a request buffer in DMA memory the VideoCore reads through
//! its alias of ARM RAM), logs what the firmware says about the board,
//! sets up a 32-bit framebuffer (profile arguments `width=`/`height=`,
//! default 1280x720), draws a splash and serves `display` (see
//! `userlib::services::display`).
//!
//! The framebuffer lies in the VideoCore's memory carve-out, which is
//! neither RAM the kernel manages nor a device-tree device: the driver asks
//! the supervisor for a device region covering it
//! (`names::supervisor::device_memory`). Should that be refused, the
//! service still answers `INFO`; `FILL`, `FLUSH` and `MAP` fail with
//! `NotSupported`.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code))]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{fence, Ordering};
use driverkit::tock_registers::interfaces::{Readable, Writeable};
use driverkit::tock_registers::registers::{ReadOnly, WriteOnly};
use driverkit::tock_registers::{register_bitfields, register_structs};
use driverkit::{names, serve, Action, Device, DeviceError, Dma, Mmio};
use rpi_mbox_fb::draw::{fill, pixel_for, splash};
use rpi_mbox_fb::property::{self, framebuffer, framebuffer_request, tag, Framebuffer, PropertyError, Request};
use rpi_mbox_fb::{board, bus};
use userlib::abi::boot_info::StartInfo;
use userlib::abi::ObjectType;
use userlib::proto::{reply_error, OK};
use userlib::services::display::{Info, Rect, FILL, FLUSH, FORMAT_BGRX8888, INFO, MAP, NAME};
use userlib::vspace::{pages_for, Mapping};
use userlib::{log, process, syscall, Error, Handle, Message, Rights};

#[cfg(not(test))]
userlib::entry!(main, heap = 32 * 1024);

register_bitfields![u32,
    STATUS [
        EMPTY OFFSET(30) NUMBITS(1) [],
        FULL OFFSET(31) NUMBITS(1) []
    ]
];

register_structs! {
    /// The ARM mailboxes (the node's `reg`, `0x7e00b880` on every BCM283x
    /// and the BCM2711): mailbox 0 (VideoCore to ARM) and mailbox 1 (ARM
    /// to VideoCore).
    MailboxPage {
        (0x00 => read0: ReadOnly<u32>),
        (0x04 => _reserved0),
        (0x18 => status0: ReadOnly<u32, STATUS::Register>),
        (0x1c => _reserved1),
        (0x20 => write1: WriteOnly<u32>),
        (0x24 => _reserved2),
        (0x38 => status1: ReadOnly<u32, STATUS::Register>),
        (0x3c => _reserved3),
        (0x40 => @END),
    }
}

/// How long the firmware may take to answer.
const ANSWER_US: u64 = 1_000_000;

/// Why a mailbox call failed.
enum CallError {
    Sys(Error),
    /// No answer within [`ANSWER_US`].
    NoAnswer,
    Property(PropertyError),
    /// The request does not fit the buffer.
    TooLong,
}

impl core::fmt::Display for CallError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CallError::Sys(e) => write!(f, "{e}"),
            CallError::NoAnswer => write!(f, "no answer from the firmware within {} ms", ANSWER_US / 1000),
            CallError::Property(e) => write!(f, "property interface: {e:?}"),
            CallError::TooLong => f.write_str("request longer than the buffer"),
        }
    }
}

impl From<PropertyError> for CallError {
    fn from(e: PropertyError) -> Self {
        CallError::Property(e)
    }
}

/// The property channel with its request buffer.
struct Mailbox {
    regs: Mmio<MailboxPage>,
    buffer: Dma,
    /// The buffer's bus address.
    bus: u32,
}

impl Mailbox {
    fn new(regs: Mmio<MailboxPage>) -> Result<Mailbox, CallError> {
        let buffer = Dma::new(4096).map_err(CallError::Sys)?;
        // The VideoCore sees only the first GiB of RAM.
        let bus = bus::from_physical(buffer.physical()).ok_or(CallError::Sys(Error::OutOfMemory))?;
        Ok(Mailbox { regs, buffer, bus })
    }

    fn wait(&self, ready: impl Fn(&MailboxPage) -> bool) -> Result<(), CallError> {
        let deadline = syscall::now_us() + ANSWER_US;
        while !ready(&self.regs) {
            if syscall::now_us() >= deadline {
                return Err(CallError::NoAnswer);
            }
            syscall::sleep(50);
        }
        Ok(())
    }

    /// Sends `request` and returns the firmware's answer (the buffer's
    /// words, as long as the request).
    fn call(&mut self, request: &Request) -> Result<Vec<u32>, CallError> {
        let words = request.finish();
        if words.len() * 4 > self.buffer.len() {
            return Err(CallError::TooLong);
        }
        property::to_bytes(&words, self.buffer.as_mut_slice());
        let word = bus::mailbox_word(self.bus, property::CHANNEL).ok_or(CallError::TooLong)?;
        // Answers nobody waited for (an earlier instance of this driver
        // timed out) must not be taken for this one's.
        while !self.regs.status0.is_set(STATUS::EMPTY) {
            let _ = self.regs.read0.get();
        }
        // The buffer must be written before the VideoCore is told of it.
        fence(Ordering::SeqCst);
        self.wait(|r| !r.status1.is_set(STATUS::FULL))?;
        self.regs.write1.set(word);
        loop {
            self.wait(|r| !r.status0.is_set(STATUS::EMPTY))?;
            let answer = self.regs.read0.get();
            if answer & 0xf == property::CHANNEL {
                break;
            }
            log::warn!("mailbox: dropped {answer:#x} (another channel)");
        }
        fence(Ordering::SeqCst);
        Ok(property::from_bytes(self.buffer.as_slice(), words.len()))
    }
}

fn main(_start: &StartInfo) -> Result<(), DeviceError> {
    let device = Device::get()?;
    let mut mbox = match Mailbox::new(device.map(0)?) {
        Ok(m) => m,
        Err(e) => {
            log::error!("no mailbox buffer the VideoCore can reach: {e}");
            return Err(DeviceError::Sys(Error::OutOfMemory));
        }
    };
    report_board(&mut mbox);

    let width = device.arg("width").and_then(|v| v.parse().ok()).unwrap_or(1280);
    let height = device.arg("height").and_then(|v| v.parse().ok()).unwrap_or(720);
    let fb = match allocate(&mut mbox, width, height) {
        Ok(fb) => fb,
        Err(e) => {
            log::error!("no framebuffer: {e}");
            return Err(DeviceError::Sys(Error::NotSupported));
        }
    };
    let physical = bus::to_physical(fb.bus);
    log::info!(
        "framebuffer {}x{} (asked {width}x{height}), 32 bpp {}, pitch {}, {} KiB at bus {:#x} (physical {physical:#x})",
        fb.width,
        fb.height,
        if fb.pixel_order == 0 { "BGR" } else { "RGB" },
        fb.pitch,
        fb.size / 1024,
        fb.bus,
    );
    let mut screen = Screen::new(fb);
    match &screen.pixels {
        Some(_) => {
            for (rect, rgb) in splash(&screen.info) {
                screen.fill(rect, rgb);
            }
            log::info!("splash drawn");
        }
        None => log::warn!("not drawing: display serves INFO only"),
    }

    let ep = syscall::create(process().pool, ObjectType::Endpoint, 0)?;
    names::register(device.arg("name").unwrap_or(NAME), ep)?;
    serve(ep, |msg, _badge| Action::Reply(screen.handle(msg)))?;
    Ok(())
}

/// Logs what the firmware says about the board.
fn report_board(mbox: &mut Mailbox) {
    let mut r = Request::new();
    let firmware = r.tag(tag::FIRMWARE_REVISION, &[], 1);
    let model = r.tag(tag::BOARD_MODEL, &[], 1);
    let revision = r.tag(tag::BOARD_REVISION, &[], 1);
    let serial = r.tag(tag::BOARD_SERIAL, &[], 2);
    let arm = r.tag(tag::ARM_MEMORY, &[], 2);
    let vc = r.tag(tag::VC_MEMORY, &[], 2);
    let words = match mbox.call(&r) {
        Ok(w) => w,
        Err(e) => {
            log::warn!("firmware queries failed: {e}");
            return;
        }
    };
    let reply = match r.reply(&words) {
        Ok(reply) => reply,
        Err(e) => {
            log::warn!("firmware queries refused: {e:?}");
            return;
        }
    };
    if let Ok(v) = reply.word(firmware, 0) {
        log::info!("firmware revision {v} ({v:#x})");
    }
    if let Ok(rev) = reply.word(revision, 0) {
        match board::describe(rev) {
            Some((name, mib)) => log::info!("board revision {rev:#x}: Raspberry Pi {name}, {mib} MiB"),
            None => log::info!("board revision {rev:#x}"),
        }
    }
    if let Ok(v) = reply.word(model, 0) {
        log::info!("board model {v:#x}");
    }
    if let Ok([lo, hi]) = reply.value(serial) {
        log::info!("board serial {:#x}", u64::from(*hi) << 32 | u64::from(*lo));
    }
    for (what, index) in [("ARM", arm), ("VideoCore", vc)] {
        if let Ok([base, size]) = reply.value(index) {
            log::info!("{what} memory {base:#x}..{:#x} ({} MiB)", base + size, size >> 20);
        }
    }
}

fn allocate(mbox: &mut Mailbox, width: u32, height: u32) -> Result<Framebuffer, CallError> {
    let (request, tags) = framebuffer_request(width, height);
    let words = mbox.call(&request)?;
    framebuffer(&request.reply(&words)?, &tags)?.ok_or(CallError::Property(PropertyError::Malformed))
}

/// The display service's state.
struct Screen {
    info: Info,
    pixel_order: u32,
    /// The framebuffer mapped (the device region covering it, and where in
    /// that mapping the framebuffer starts), if a capability reaches it.
    pixels: Option<(Mapping, usize)>,
    /// The region, when the framebuffer starts at its first byte, so that
    /// clients may map it (`MAP`).
    shareable: Option<Handle>,
}

impl Screen {
    fn new(fb: Framebuffer) -> Screen {
        let info = Info {
            width: fb.width,
            height: fb.height,
            stride: fb.pitch,
            format: FORMAT_BGRX8888,
            rows: fb.height,
        };
        let mut screen = Screen {
            info,
            pixel_order: fb.pixel_order,
            pixels: None,
            shareable: None,
        };
        let start = bus::to_physical(fb.bus);
        let region = match names::supervisor::device_memory(start, u64::from(fb.size)) {
            Ok(region) => region,
            Err(e) => {
                log::warn!("no capability for the framebuffer at {start:#x}: {e}");
                return screen;
            }
        };
        let (base, size) = match syscall::memory_physical(region) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("the framebuffer's region: {e}");
                return screen;
            }
        };
        match Mapping::map(region, pages_for(size), Rights::READ | Rights::WRITE) {
            Ok(m) => {
                screen.pixels = Some((m, (start - base) as usize));
                screen.shareable = (start == base).then_some(region);
            }
            Err(e) => log::warn!("cannot map the framebuffer's region: {e}"),
        }
        screen
    }

    fn fill(&mut self, rect: Rect, rgb: u32) {
        let pixel = pixel_for(rgb, self.pixel_order);
        let bytes = self.info.bytes();
        if let Some((m, offset)) = &mut self.pixels {
            if let Some(frame) = m.as_mut_slice().get_mut(*offset..*offset + bytes) {
                fill(frame, &self.info, rect, pixel);
            }
        }
    }

    fn handle(&mut self, msg: &Message) -> Message {
        let rect = || Rect::clip(msg.words(), self.info.width, self.info.height);
        match msg.label {
            INFO => Message::with_words(OK, &self.info.to_words()),
            FILL => match rect() {
                Err(e) => reply_error(e),
                Ok(_) if self.pixels.is_none() => reply_error(Error::NotSupported),
                Ok(r) => {
                    self.fill(r, msg.word(4) as u32);
                    Message::new(OK)
                }
            },
            // The firmware scans the buffer out as it is: nothing to copy.
            FLUSH => match rect() {
                Err(e) => reply_error(e),
                Ok(_) if self.pixels.is_none() => reply_error(Error::NotSupported),
                Ok(_) => Message::new(OK),
            },
            MAP => match self.shareable {
                Some(region) => {
                    let mut m = Message::with_words(OK, &[self.info.bytes() as u64]);
                    m.push_cap(region, Rights::READ | Rights::WRITE | Rights::MAP);
                    m
                }
                None => reply_error(Error::NotSupported),
            },
            _ => reply_error(Error::InvalidArgument),
        }
    }
}
