//! The input services (the virtio-input driver, one per input device
//! the device manager gave it; or the dwc2 USB driver, one task for the
//! USB controller serving the keyboards behind it; none: nothing to
//! test): each has the kind
//! its name says and an INFO (name; a touch device's axis ranges), refuses
//! malformed requests, and answers a READ with a timeout cleanly when no
//! one types. With a `keyboard` and a `touch` (QEMU's virtio keyboard and
//! tablet), it then gives the host a few seconds to inject events (the
//! harness's QEMU monitor: `sendkey a`, `mouse_button 1` and `0`) and
//! checks those that come: a key press and release, a touch down and up
//! (the key alone with only a `keyboard`, as behind the USB controller).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use userlib::abi::boot_info::StartInfo;
use userlib::ipc::Timeout;
use userlib::proto::check_reply;
use userlib::services::input::{self, Event, Input, Kind, MAX_EVENTS};
use userlib::test::expect_err;
use userlib::{names, println, syscall, Error, Message};

userlib::entry!(main, heap = 64 * 1024);

fn main(_: &StartInfo) {
    let devices = test_ui::driven("virtio-input");
    let usb = test_ui::driven("dwc2");
    let services = if devices > 0 {
        let services = test_ui::services_of("virtio-input", devices, 20_000);
        assert_eq!(services.len(), devices, "one service per input device: {services:?}");
        services
    } else if usb > 0 {
        // The USB driver registers once its devices are enumerated (one
        // service per kind, one after the other): the first, then a
        // second shortly after if there is one. None: no USB input device.
        if test_ui::services_of("dwc2", 1, 10_000).is_empty() {
            println!("test-input: dwc2 serves no input service (no USB keyboard or tablet)");
            return;
        }
        let services = test_ui::services_of("dwc2", 2, 1_000);
        println!("test-input: dwc2 serves {services:?}");
        services
    } else {
        println!("test-input: no input device driven by virtio-input or dwc2 here: nothing to test");
        return;
    };
    for name in &services {
        // `Input` wants a name for its whole life, as clients' constants are.
        check(Box::leak(name.clone().into_boxed_str()));
    }
    let has = |n: &str| services.iter().any(|s| s == n);
    if has("keyboard") {
        let mut touch = has("touch").then(|| Input::new("touch"));
        injected(&mut Input::new("keyboard"), touch.as_mut());
    }
    println!("test-input: all checks passed");
}

/// One input service: INFO, a READ that times out, malformed requests.
fn check(name: &'static str) {
    let mut svc = Input::new(name);
    let info = svc.info().unwrap_or_else(|e| panic!("{name}: INFO: {e}"));
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit());
    assert_eq!(info.kind.base_name(), base, "{name}: kind {:?}", info.kind);
    assert!(!info.name.is_empty(), "{name}: a device name");
    if info.kind == Kind::Touch {
        println!(
            "test-input: {name} \"{}\" kind {:?} x {}..={} y {}..={}",
            info.name, info.kind, info.x.0, info.x.1, info.y.0, info.y.1
        );
        assert!(
            info.x.1 > info.x.0 && info.y.1 > info.y.0,
            "{name}: the axes have ranges"
        );
    } else {
        println!("test-input: {name} \"{}\" kind {:?}", info.name, info.kind);
    }

    // Nobody types: a short READ times out, on time, and the service lives on.
    let mut out = [Event::default(); MAX_EVENTS];
    let t0 = syscall::now_us();
    match svc.read(&mut out, Timeout::millis(200)) {
        Err(Error::TimedOut) => {}
        // Events QEMU queued at start-up (none expected) are no failure.
        Ok((evs, _)) => println!("test-input: {name}: {} early events", evs.len()),
        Err(e) => panic!("{name}: READ with a timeout: {e}"),
    }
    let took = syscall::now_us() - t0;
    assert!(took < 5_000_000, "{name}: READ of 200 ms took {took} us");
    let r = svc.read(&mut out, Timeout::NonBlocking);
    assert!(matches!(r, Err(Error::TimedOut) | Ok(_)), "{name}: {r:?}");

    // Malformed requests: refused or answered, never fatal.
    let ep = names::connect(name, Timeout::millis(5000)).expect("connect");
    let call = |label: u16, words: &[u64]| {
        syscall::call_timeout(ep, &Message::with_words(label, words), Timeout::millis(5000))
            .map_err(|e| panic!("{name}: call: {e}"))
            .and_then(|(m, _)| check_reply(m))
    };
    expect_err("unknown label", call(0x7777, &[]).map(drop), Error::InvalidArgument);
    // max 0 and absurd max are clamped; timeout 0 does not block.
    for max in [0, u64::MAX] {
        let r = call(input::READ, &[max, 0]);
        assert!(
            matches!(r, Err(Error::TimedOut) | Ok(_)),
            "{name}: READ max {max}: {r:?}"
        );
    }
    let again = svc.info().expect("INFO after the malformed requests");
    assert_eq!(again.kind, info.kind);
    syscall::cap_delete(ep).expect("delete the endpoint");
}

/// Reads `svc` until `want` has been seen or `until` (microseconds since
/// boot) passes; returns every event read.
fn collect(svc: &mut Input, until: u64, mut want: impl FnMut(&[Event]) -> bool) -> alloc::vec::Vec<Event> {
    let mut all = alloc::vec::Vec::new();
    let mut out = [Event::default(); MAX_EVENTS];
    while !want(&all) {
        let now = syscall::now_us();
        if now >= until {
            break;
        }
        match svc.read(&mut out, Timeout::Micros(until - now)) {
            Ok((evs, _)) => all.extend_from_slice(evs),
            Err(Error::TimedOut) => break,
            Err(e) => panic!("READ: {e}"),
        }
    }
    all
}

/// The events the harness injects, if it does: `KEY_A` down then up (each
/// followed by `SYN_REPORT`), and the tablet's button down then up.
fn injected(kbd: &mut Input, touch: Option<&mut Input>) {
    println!("test-input: waiting for injected events");
    let key = |code, value| move |e: &Event| e.kind == input::EV_KEY && e.code == code && e.value == value;
    let until = syscall::now_us() + 4_000_000;
    let keys = collect(kbd, until, |evs| evs.iter().any(key(input::KEY_A, 0)));
    if keys.is_empty() {
        println!("test-input: no events injected");
        return;
    }
    let down = keys.iter().position(key(input::KEY_A, 1)).expect("KEY_A pressed");
    let up = keys.iter().position(key(input::KEY_A, 0)).expect("KEY_A released");
    assert!(down < up, "press before release: {keys:?}");
    assert!(
        keys[down..]
            .iter()
            .any(|e| e.kind == input::EV_SYN && e.code == input::SYN_REPORT),
        "a SYN_REPORT ends the press: {keys:?}"
    );
    println!("test-input: key a pressed and released ({} events)", keys.len());
    let Some(touch) = touch else { return };
    let until = syscall::now_us() + 4_000_000;
    let taps = collect(touch, until, |evs| evs.iter().any(key(input::BTN_LEFT, 0)));
    println!("test-input: touch events {taps:?}");
    let down = taps.iter().position(key(input::BTN_LEFT, 1)).expect("touch down");
    let up = taps.iter().position(key(input::BTN_LEFT, 0)).expect("touch up");
    assert!(down < up, "down before up: {taps:?}");
    println!("test-input: touch down and up ({} events)", taps.len());
}
