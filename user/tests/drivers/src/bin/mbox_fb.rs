//! test-mbox-fb: the `display` service of the Raspberry Pi's mailbox
//! framebuffer driver (rpi-mbox-fb) describes a 32-bit screen, and fills
//! rectangles when it can reach the framebuffer (`NotSupported` when no
//! capability covers the VideoCore's memory), refusing bad rectangles
//! either way.
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
    let drawable = match d.fill(corner, 0x00ff00) {
        Ok(()) => true,
        Err(Error::NotSupported) => false,
        Err(e) => panic!("FILL: {e}"),
    };
    match d.flush(corner) {
        Ok(()) => assert!(drawable, "FLUSH works but FILL did not"),
        Err(Error::NotSupported) => assert!(!drawable, "FILL works but FLUSH does not"),
        Err(e) => panic!("FLUSH: {e}"),
    }

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
    if drawable {
        log::info!("display fills rectangles");
    } else {
        log::info!("display answers INFO; the framebuffer is out of reach (no capability), FILL says so");
    }
}
