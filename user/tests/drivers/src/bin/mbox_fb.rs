//! test-mbox-fb: the `display` service of the Raspberry Pi's mailbox
//! framebuffer driver (rpi-mbox-fb) describes a 32-bit screen in the
//! VideoCore's memory, which the driver reaches through a device region
//! the supervisor made for it: rectangles it fills read back through the
//! shared framebuffer (`MAP`); bad rectangles are refused. A task that
//! drives no device gets no such region.
#![no_std]
#![no_main]

use driver_tests::{board_has, wait_for};
use userlib::abi::boot_info::StartInfo;
use userlib::ipc::{Message, Timeout};
use userlib::names::Connection;
use userlib::services::display::{Display, Rect, FILL, FORMAT_BGRX8888, NAME};
use userlib::test::expect_err;
use userlib::{log, Error};

userlib::entry!(main);

fn main(_start: &StartInfo) {
    if !board_has("brcm,bcm2835-mbox", "VideoCore mailbox") {
        return;
    }
    wait_for(NAME);
    let mut d = Display::new();
    let info = d.info().expect("INFO");
    log::info!(
        "display {}x{}, stride {}, format {}",
        info.width,
        info.height,
        info.stride,
        info.format
    );
    assert_eq!(info.format, FORMAT_BGRX8888);
    assert!(info.stride >= info.width * 4);

    let corner = Rect {
        x: 0,
        y: 0,
        w: 16,
        h: 16,
    };
    let (fb, mapped) = d.map().expect("MAP");
    assert_eq!(mapped, info);
    // A profile with a compositor draws on the same screen (its status bar
    // covers the corner), so it may paint the corner between the FILL and
    // the read: a few tries, each filling again.
    let mut pixel = 0;
    for _ in 0..5 {
        d.fill(corner, 0x00ff00).expect("FILL");
        d.flush(corner).expect("FLUSH");
        pixel = u32::from_le_bytes(fb.as_slice()[..4].try_into().unwrap());
        // Green in either byte order the firmware chose.
        if pixel & 0x00ff_ffff == 0x00_ff00 {
            break;
        }
    }
    assert_eq!(pixel & 0x00ff_ffff, 0x00_ff00, "pixel {pixel:#x}");
    // Only drivers may ask for device memory.
    expect_err(
        "device memory for a task that drives no device",
        userlib::names::supervisor::device_memory(0x3c10_0000, 4096),
        Error::NoRights,
    );

    let off_screen = Rect {
        x: info.width,
        y: 0,
        w: 1,
        h: 1,
    };
    expect_err("FILL off the screen", d.fill(off_screen, 0), Error::InvalidArgument);
    let mut raw = Connection::new(NAME);
    let t = Timeout::millis(1000);
    expect_err(
        "an empty FILL",
        raw.call(&Message::with_words(FILL, &[0, 0, 0, 0, 0]), t),
        Error::InvalidArgument,
    );
    expect_err(
        "an unknown request",
        raw.call(&Message::new(0x55), t),
        Error::InvalidArgument,
    );
    log::info!("display fills rectangles, read back through MAP");
}
