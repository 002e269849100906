//! test-gpio: the `gpio` service (rpi-gpio) sets a pin's function, drives
//! it high and low and reads the level back (QEMU models output levels),
//! sets its pull, and refuses bad pins, functions, levels and modes.
#![no_std]
#![no_main]

use driver_tests::{board_has, wait_for};
use userlib::abi::boot_info::StartInfo;
use userlib::ipc::{Message, Timeout};
use userlib::names::Connection;
use userlib::services::gpio::{Function, Gpio, Pull, NAME, PINS, PULL, SET_FUNCTION, WRITE};
use userlib::test::expect_err;
use userlib::{log, Error};

userlib::entry!(main);

/// GPIO21: on the 40-pin header, wired to nothing on the board.
const PIN: u64 = 21;

fn main(_start: &StartInfo) {
    if !board_has("brcm,bcm2711-gpio", "BCM2711 GPIO") {
        return;
    }
    wait_for(NAME);
    let mut g = Gpio::new();
    let before = g.function(PIN).expect("GET_FUNCTION");
    let pull_before = g.pull_of(PIN).expect("GET_PULL");

    g.set_function(PIN, Function::Output).expect("SET_FUNCTION output");
    assert_eq!(g.function(PIN), Ok(Function::Output));
    g.write(PIN, true).expect("WRITE 1");
    assert_eq!(g.read(PIN), Ok(true), "level after writing 1");
    g.write(PIN, false).expect("WRITE 0");
    assert_eq!(g.read(PIN), Ok(false), "level after writing 0");

    for p in [Pull::Up, Pull::Down, Pull::None] {
        g.pull(PIN, p).expect("PULL");
        assert_eq!(g.pull_of(PIN), Ok(p));
    }

    expect_err("pin 58", g.set_function(PINS, Function::Output), Error::InvalidArgument);
    expect_err("reading pin 58", g.read(PINS), Error::InvalidArgument);
    expect_err("writing pin 2^40", g.write(1 << 40, true), Error::InvalidArgument);
    expect_err("pull of pin 58", g.pull(PINS, Pull::Up), Error::InvalidArgument);
    let mut raw = Connection::new(NAME);
    let t = Timeout::millis(1000);
    for (what, label, words) in [
        ("function 8", SET_FUNCTION, [PIN, 8]),
        ("level 2", WRITE, [PIN, 2]),
        ("pull mode 3", PULL, [PIN, 3]),
        ("an unknown request", 0x55, [PIN, 0]),
    ] {
        expect_err(
            what,
            raw.call(&Message::with_words(label, &words), t),
            Error::InvalidArgument,
        );
    }

    g.set_function(PIN, before).expect("restore the function");
    g.pull(PIN, pull_before).expect("restore the pull");
    log::info!("GPIO{PIN}: output driven 1 and 0 and read back; pulls set; bad requests refused");
}
