//! The `display` service (the virtio-gpu driver) under QEMU's
//! virtio-gpu-device: INFO describes the screen (the profile's `display`
//! line, when the archive has a profile; the harness checks the size this
//! prints against QEMU's xres/yres), FILL and FLUSH work, malformed
//! requests are refused without harm, and MAP hands out the framebuffer
//! itself (a FILL shows through the mapping; writes to it then FLUSH).
//! It reports the splash's colours and leaves a known picture on the
//! screen (four bands) for the harness's screendump.
#![no_std]
#![no_main]

use userlib::abi::boot_info::StartInfo;
use userlib::ipc::Timeout;
use userlib::proto::check_reply;
use userlib::services::display::{self, pixel, Display, Info, Rect};
use userlib::test::expect_err;
use userlib::vspace::pages_for;
use userlib::{names, println, syscall, Error, Handle, Message, Rights};

userlib::entry!(main, heap = 64 * 1024);

/// The picture left on the screen: four horizontal bands (top to bottom).
const BANDS: [u32; 4] = [0xff0000, 0x00ff00, 0x0000ff, 0xffffff];

fn main(_: &StartInfo) {
    if test_ui::driven("virtio-gpu") == 0 {
        println!("test-display: no display device driven by virtio-gpu here: nothing to test");
        return;
    }
    let ep = names::connect(display::NAME, Timeout::millis(20_000)).expect("no `display` service within 20 s");
    let mut d = Display::new();
    let info = d.info().expect("INFO");
    println!(
        "test-display: INFO {}x{} stride {} format {}",
        info.width, info.height, info.stride, info.format
    );
    assert_eq!(info.format, display::FORMAT_BGRX8888);
    assert_eq!(info.stride, info.width * 4);
    if let Some((w, h)) = profile_display() {
        assert_eq!((info.width, info.height), (w, h), "INFO against the profile's display");
    }
    // What the driver drew at start, before anything else draws (the
    // harness checks the colours: the splash's background and band).
    let (fb, _) = d.map().expect("MAP");
    let at = |x: u32, y: u32| {
        let o = (y * info.stride + x * 4) as usize;
        u32::from_le_bytes([fb.as_slice()[o], fb.as_slice()[o + 1], fb.as_slice()[o + 2], 0])
    };
    println!(
        "test-display: splash: top-left {:06x}, middle-left {:06x}",
        at(0, 0),
        at(0, info.height / 2)
    );
    let mem = fb.handle();
    drop(fb);
    syscall::cap_delete(mem).expect("delete the framebuffer capability");

    let full = Rect::full(&info);
    d.fill(full, 0x202020).expect("FILL the screen");
    d.fill(
        Rect {
            x: 10,
            y: 10,
            w: 20,
            h: 20,
        },
        0x336699,
    )
    .expect("FILL a square");
    // Rectangles running off the screen are clipped, not refused.
    d.fill(
        Rect {
            x: info.width - 1,
            y: info.height - 1,
            w: 100,
            h: 100,
        },
        0xabcdef,
    )
    .expect("FILL past the corner");
    d.flush(full).expect("FLUSH the screen");
    d.flush(Rect {
        x: 10,
        y: 10,
        w: 20,
        h: 20,
    })
    .expect("FLUSH a square");

    malformed(ep, &info);
    mapped(&mut d, &info);
    syscall::cap_delete(ep).expect("delete the endpoint");
    println!("test-display: all checks passed");
}

/// The `display WIDTH HEIGHT` line of the boot archive's profile file.
fn profile_display() -> Option<(u32, u32)> {
    let archive = userlib::loader::archive()?;
    let file = userlib::cpio::Archive::new(archive).find("profile").ok()??;
    let text = core::str::from_utf8(file.data).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("display "))?;
    let mut it = line.split_whitespace().map(|v| v.parse::<u32>().ok());
    Some((it.next()??, it.next()??))
}

fn raw(ep: Handle, label: u16, words: &[u64]) -> Result<Message, Error> {
    let (reply, _) = syscall::call_timeout(ep, &Message::with_words(label, words), Timeout::millis(5000))?;
    check_reply(reply)
}

/// Every malformed request gets `InvalidArgument`, and the server goes on.
fn malformed(ep: Handle, info: &Info) {
    let (w, h) = (info.width as u64, info.height as u64);
    let bad: &[(u16, &[u64])] = &[
        (display::FILL, &[0, 0, 0, 10, 0]),
        (display::FILL, &[0, 0, 10, 0, 0]),
        (display::FILL, &[w, 0, 1, 1, 0]),
        (display::FILL, &[0, h, 1, 1, 0]),
        (display::FILL, &[u64::MAX, 0, 1, 1, 0]),
        (display::FILL, &[0, 0, 1 << 32, 1, 0]),
        (display::FILL, &[0, 0, 1, 1, 0x100_0000]),
        (display::FILL, &[]),
        (display::FLUSH, &[0, 0, 0, 0]),
        (display::FLUSH, &[w + 5, 0, 1, 1]),
        (display::FLUSH, &[0, u64::MAX, 1, 1]),
        (display::FLUSH, &[1, 2]),
        (0x7777, &[1, 2, 3]),
    ];
    for (label, words) in bad {
        expect_err(what(*label), raw(ep, *label, words).map(drop), Error::InvalidArgument);
    }
    let info2 = raw(ep, display::INFO, &[]).expect("INFO after the malformed requests");
    assert_eq!(Info::from_words(info2.words()), Some(*info));
}

fn what(label: u16) -> &'static str {
    match label {
        display::FILL => "malformed FILL",
        display::FLUSH => "malformed FLUSH",
        _ => "unknown label",
    }
}

/// MAP: the framebuffer itself, writable here; FILLs show through it.
fn mapped(d: &mut Display, info: &Info) {
    let (mut fb, i) = d.map().expect("MAP");
    assert_eq!(i, *info);
    let mem = fb.handle();
    let cap = syscall::cap_info(mem).expect("cap_info(framebuffer)");
    assert!(
        cap.rights.contains(Rights::READ | Rights::WRITE | Rights::MAP),
        "{:?}",
        cap.rights
    );
    let size = cap.size;
    assert_eq!(
        size,
        pages_for(info.bytes() as u64) * 4096,
        "framebuffer object of stride*height"
    );
    assert!(fb.len() >= info.bytes());

    // A FILL by the driver is visible in the mapping: it is the same memory.
    let at = |x: u32, y: u32| (y * info.stride + x * 4) as usize;
    d.fill(Rect { x: 3, y: 5, w: 1, h: 1 }, 0x123456).expect("FILL a pixel");
    let o = at(3, 5);
    assert_eq!(
        &fb.as_slice()[o..o + 3],
        &[0x56, 0x34, 0x12],
        "the driver's FILL, read through MAP"
    );

    // Draw the bands through the mapping and flush them.
    let band_h = info.height / BANDS.len() as u32;
    let buf = fb.as_mut_slice();
    for y in 0..info.height {
        let c = pixel(BANDS[((y / band_h.max(1)) as usize).min(BANDS.len() - 1)]).to_le_bytes();
        let row = &mut buf[at(0, y)..at(0, y) + info.width as usize * 4];
        for p in row.chunks_exact_mut(4) {
            p.copy_from_slice(&c);
        }
    }
    d.flush(Rect::full(info)).expect("FLUSH after drawing through MAP");
    println!(
        "test-display: MAP {} bytes; screen shows bands {:06x} {:06x} {:06x} {:06x}",
        size, BANDS[0], BANDS[1], BANDS[2], BANDS[3]
    );
    drop(fb);
    syscall::cap_delete(mem).expect("delete the framebuffer capability");
}
