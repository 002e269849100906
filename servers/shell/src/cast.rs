//! `cast DEVICE`: projects a small demo app onto a paired device's screen
//! through the soft bus (docs/BUS.md, *Screen projection*), as a phone
//! projects an app onto a TV.
//!
//! The app is a 480x270 card ([`pixel`]): an amber title strip reading
//! `CASt` in seven-segment digits with a count of the inputs the device
//! sent back at its right end, a frame counter in white, and a
//! progress bar that grows by a tenth each frame. Its memory cannot be
//! shared across devices, so it asks the device's compositor for a buffer
//! of its own ([`compositor::BUFFER`]) and sends its pixels in
//! [`compositor::WRITE`]s of at most [`compositor::MAX_WRITE_BYTES`] (the
//! bus copies each memory object across): the whole card once, then for
//! each of [`UPDATES`] frames, a second apart, only the counter and the
//! bar. Notifications do not cross the bus, so it does not `CONNECT` and
//! waits for no frame event: it paces itself, and asks for its events
//! ([`compositor::EVENTS`], one remote call) once a frame, also each
//! second of the hold: a key pressed or a touch on its card on the device
//! counts as an input, logged (`cast: input N from DEVICE (...)`) and
//! drawn in the next frame, at most a frame (a second) and a round trip
//! late. After the last frame it keeps the card on for [`HOLD_MS`], then
//! destroys its surface.

use alloc::format;
use alloc::string::String;
use userlib::ipc::{Message, Timeout};
use userlib::names::Connection;
use userlib::services::compositor as proto;
use userlib::vspace::{pages_for, Mapping};
use userlib::{log, syscall, Error, Rights};

/// The card's size.
pub const WIDTH: u32 = 480;
pub const HEIGHT: u32 = 270;
/// Frames after the first.
pub const UPDATES: u32 = 10;
/// Between two frames.
pub const FRAME_MS: u64 = 1000;
/// How long the last frame stays before the surface goes.
pub const HOLD_MS: u64 = 3000;
/// A remote call's timeout (the bus gives up on a call after 5 s).
const TIMEOUT: Timeout = Timeout::millis(6000);

pub const BACKGROUND: u32 = 0xff1e_3a5f;
pub const TITLE: u32 = 0xfff2_a900;
pub const TITLE_TEXT: u32 = 0xff10_2030;
pub const DIGITS: u32 = 0xffff_ffff;
pub const BAR_DONE: u32 = 0xff00_c853;
pub const BAR_LEFT: u32 = 0xff37_474f;

/// The title strip's rows.
const TITLE_H: u32 = 56;
/// The inputs' count: 2 cells in the title strip's style, at its right end.
pub const INPUTS: (u32, u32, u32, u32) = (416, 8, 2 * 24 + 8, 40);
/// The counter: 3 cells of `DIGIT_W` x `DIGIT_H`, `DIGIT_GAP` apart.
pub const COUNTER: (u32, u32, u32, u32) = (168, 90, 3 * DIGIT_W + 2 * DIGIT_GAP, DIGIT_H);
const DIGIT_W: u32 = 48;
const DIGIT_H: u32 = 80;
const DIGIT_GAP: u32 = 12;
/// The progress bar; each frame fills [`BAR_STEP`] more of it.
pub const BAR: (u32, u32, u32, u32) = (20, 210, 440, 30);
pub const BAR_STEP: u32 = 44;

/// Seven-segment masks (bit 0 the top segment, then clockwise, bit 6 the middle).
fn segments(c: u8) -> u8 {
    match c {
        b'0' => 0x3f,
        b'1' => 0x06,
        b'2' => 0x5b,
        b'3' => 0x4f,
        b'4' => 0x66,
        b'5' | b'S' => 0x6d,
        b'6' => 0x7d,
        b'7' => 0x07,
        b'8' => 0x7f,
        b'9' => 0x6f,
        b'C' => 0x39,
        b'A' => 0x77,
        b't' => 0x78,
        _ => 0,
    }
}

/// Whether `(x, y)` of a `w` x `h` cell lies on one of `mask`'s segments
/// (`t` pixels thick).
fn on_segment(mask: u8, x: u32, y: u32, w: u32, h: u32, t: u32) -> bool {
    let mid = h / 2;
    let upper = y < mid;
    let lit = |bit: u8| mask & (1 << bit) != 0;
    (lit(0) && y < t)
        || (lit(1) && x >= w - t && upper)
        || (lit(2) && x >= w - t && !upper)
        || (lit(3) && y >= h - t)
        || (lit(4) && x < t && !upper)
        || (lit(5) && x < t && upper)
        || (lit(6) && y + t / 2 >= mid && y < mid + t - t / 2)
}

/// Whether `(x, y)` is on the text `text` drawn from `(x0, y0)` in cells
/// of `w` x `h`, `gap` apart.
fn on_text(text: &[u8], (x0, y0): (u32, u32), (w, h, gap, t): (u32, u32, u32, u32), x: u32, y: u32) -> bool {
    if x < x0 || y < y0 || y >= y0 + h {
        return false;
    }
    let (cell, within) = ((x - x0) / (w + gap), (x - x0) % (w + gap));
    match text.get(cell as usize) {
        Some(c) if within < w => on_segment(segments(*c), within, y - y0, w, h, t),
        _ => false,
    }
}

/// The card's pixel at `(x, y)` in frame `frame` after `inputs` inputs
/// (`0xAARRGGBB`).
pub fn pixel(frame: u32, inputs: u32, x: u32, y: u32) -> u32 {
    if y < TITLE_H {
        let count = [b'0' + (inputs / 10 % 10) as u8, b'0' + (inputs % 10) as u8];
        let (ix, iy, _, _) = INPUTS;
        return if on_text(b"CASt", (16, 8), (24, 40, 8, 6), x, y) || on_text(&count, (ix, iy), (24, 40, 8, 6), x, y) {
            TITLE_TEXT
        } else {
            TITLE
        };
    }
    let digits = [
        b'0' + (frame / 100 % 10) as u8,
        b'0' + (frame / 10 % 10) as u8,
        b'0' + (frame % 10) as u8,
    ];
    let (cx, cy, _, _) = COUNTER;
    if on_text(&digits, (cx, cy), (DIGIT_W, DIGIT_H, DIGIT_GAP, 10), x, y) {
        return DIGITS;
    }
    let (bx, by, bw, bh) = BAR;
    if x >= bx && x < bx + bw && y >= by && y < by + bh {
        return if x - bx < (frame * BAR_STEP).min(bw) {
            BAR_DONE
        } else {
            BAR_LEFT
        };
    }
    BACKGROUND
}

/// The pieces a rectangle `(x, y, w, h)` goes in: bands of whole rows of
/// at most `max_bytes` each (one row if a row is larger).
pub fn bands((x, y, w, h): (u32, u32, u32, u32), max_bytes: usize) -> impl Iterator<Item = (u32, u32, u32, u32)> {
    let rows = (max_bytes / (w as usize * 4).max(1)).max(1) as u32;
    (0..h.div_ceil(rows)).map(move |i| {
        let top = y + i * rows;
        (x, top, w, rows.min(y + h - top))
    })
}

/// What a cast sent.
#[derive(Default)]
struct Sent {
    frames: u32,
    writes: u32,
    bytes: u64,
    /// Microseconds the first (whole) frame took, from its first write to its commit.
    first_us: u64,
    /// Keys pressed and touches on the card on the device.
    inputs: u32,
}

/// One call to the remote compositor. A call that fails because the bus
/// lost the device (`PeerDied`: it left, or its session was replaced) or
/// got no answer in time (`TimedOut`: the bus gives up after 5 s, which
/// a 64 KiB write on a loaded link can take) is made again, twice at
/// most, through a new proxy that waits for the device to be paired (the
/// TV's compositor keeps this device's surfaces across a new session, and
/// drops them once the TV's bus has seen the device leave). Sending the same `WRITE`, `COMMIT` or `DESTROY` again changes
/// nothing more; a `CREATE` whose reply was lost leaves an empty surface
/// behind.
fn call(conn: &mut Connection, m: &Message) -> Result<Message, Error> {
    let mut tries = 0;
    loop {
        match conn.call(m, TIMEOUT) {
            Err(e @ (Error::PeerDied | Error::BadHandle | Error::TimedOut)) if tries < 2 => {
                tries += 1;
                log::warn!("cast: request {} failed ({e:?}); again", m.label);
                conn.reset();
                syscall::sleep_ms(500);
            }
            r => return r,
        }
    }
}

/// Draws `r` of frame `frame` into a memory object and writes it to the surface.
fn write(
    conn: &mut Connection,
    surface: u64,
    frame: u32,
    r: (u32, u32, u32, u32),
    sent: &mut Sent,
) -> Result<(), Error> {
    let inputs = sent.inputs;
    let (x, y, w, h) = r;
    let stride = w as usize * 4;
    let len = stride * h as usize;
    let mut map = Mapping::new(pages_for(len as u64), Rights::READ | Rights::WRITE)?;
    let buf = map.as_mut_slice();
    for row in 0..h {
        for col in 0..w {
            let at = row as usize * stride + col as usize * 4;
            buf[at..at + 4].copy_from_slice(&pixel(frame, inputs, x + col, y + row).to_le_bytes());
        }
    }
    let mut m = Message::with_words(
        proto::WRITE,
        &[surface, x as u64, y as u64, w as u64, h as u64, stride as u64],
    );
    m.push_cap(map.handle(), Rights::READ | Rights::MAP);
    call(conn, &m)?;
    sent.writes += 1;
    sent.bytes += len as u64;
    Ok(())
}

/// Sends frame `frame`'s rectangles and commits them.
fn frame(
    conn: &mut Connection,
    surface: u64,
    frame: u32,
    rects: &[(u32, u32, u32, u32)],
    sent: &mut Sent,
) -> Result<(), Error> {
    for r in rects {
        for band in bands(*r, proto::MAX_WRITE_BYTES) {
            write(conn, surface, frame, band, sent)?;
        }
    }
    call(conn, &Message::with_words(proto::COMMIT, &[surface]))?;
    sent.frames += 1;
    log::info!("cast: frame {frame} on the screen");
    Ok(())
}

/// What event `e` counts as for surface `surface`: a key pressed (its
/// code and no point), a touch put down on the card (no code, where).
fn input(e: &proto::Event, surface: u64) -> Option<(Option<u32>, (i32, i32))> {
    if u64::from(e.surface) != surface {
        return None;
    }
    match e.kind {
        proto::EV_KEY if e.payload >> 32 == 1 => Some((Some(e.payload as u32), (0, 0))),
        proto::EV_TOUCH_DOWN => Some((None, e.xy())),
        _ => None,
    }
}

/// Replies [`poll`] asks for at most, one after the other (a device that
/// always answers with a full queue must not hold `cast` for good).
const POLL_REPLIES: usize = 4;

/// Takes the surface's events from the device (one remote call, more while
/// the replies come full, at most [`POLL_REPLIES`]): whether an input came
/// since the last time (each is logged and counted).
fn poll(conn: &mut Connection, device: &str, surface: u64, sent: &mut Sent) -> Result<bool, Error> {
    take_inputs(|| call(conn, &Message::new(proto::EVENTS)), device, surface, sent)
}

/// [`poll`]'s work, each reply from `fetch`.
fn take_inputs(
    mut fetch: impl FnMut() -> Result<Message, Error>,
    device: &str,
    surface: u64,
    sent: &mut Sent,
) -> Result<bool, Error> {
    let mut out = [proto::Event::default(); proto::MAX_EVENTS];
    let mut any = false;
    for _ in 0..POLL_REPLIES {
        let (n, _) = proto::unpack_events(&fetch()?, &mut out);
        for (key, (x, y)) in out.iter().take(n).filter_map(|e| input(e, surface)) {
            sent.inputs += 1;
            any = true;
            match key {
                Some(code) => log::info!("cast: input {} from {device} (key {code})", sent.inputs),
                None => log::info!("cast: input {} from {device} (touch {x},{y})", sent.inputs),
            }
        }
        // A full reply: more may be queued.
        if n < proto::MAX_EVENTS {
            break;
        }
    }
    Ok(any)
}

/// `cast DEVICE`: the text to show.
pub fn cast(device: &str) -> Result<String, String> {
    let mut conn = Connection::remote(device, proto::NAME);
    let start = syscall::now_us();
    let mut sent = Sent::default();
    let mut surface = None;
    let r = run(&mut conn, device, &mut surface, &mut sent);
    if let Some(s) = surface.filter(|_| r.is_err()) {
        // Best effort: the device may be gone.
        let _ = conn.call(&Message::with_words(proto::DESTROY, &[s]), Timeout::millis(1000));
    }
    conn.reset();
    let ms = (syscall::now_us() - start) / 1000;
    match r {
        Ok(()) => Ok(format!(
            "cast: projected onto {device}: {WIDTH}x{HEIGHT}, {} frames, {} writes, {} KiB in {ms} ms (the first frame {} ms)\n",
            sent.frames,
            sent.writes,
            sent.bytes / 1024,
            sent.first_us / 1000
        )),
        Err((Error::NoRights, 0)) => Err(format!(
            "cast: {device} does not share its screen (its profile's `shared` has no compositor)\n"
        )),
        Err((Error::TimedOut, 0)) => Err(format!("cast: {device}: no answer (is it paired? see 'bus')\n")),
        Err((Error::NotSupported, 0)) => Err(format!(
            "cast: {device}'s compositor takes no projected surfaces (no owned= budget in its profile)\n"
        )),
        Err((Error::OutOfMemory, 0)) => Err(format!(
            "cast: {device}'s compositor has no room for a {WIDTH}x{HEIGHT} surface\n"
        )),
        Err((Error::PeerDied | Error::BadHandle, _)) => Err(format!(
            "cast: {device} went away after {} frames (peer died)\n",
            sent.frames
        )),
        Err((Error::TimedOut, _)) => Err(format!(
            "cast: {device} went away after {} frames (no answer)\n",
            sent.frames
        )),
        Err((e, _)) => Err(format!(
            "cast: {device}: {} after {} frames\n",
            crate::report::error(e),
            sent.frames
        )),
    }
}

/// The cast; on failure, the error and how many frames were shown.
fn run(conn: &mut Connection, device: &str, surface: &mut Option<u64>, sent: &mut Sent) -> Result<(), (Error, u32)> {
    let at = |sent: &Sent| sent.frames;
    let create = Message::with_words(proto::CREATE, &[WIDTH as u64, HEIGHT as u64, 0]);
    let s = call(conn, &create).map_err(|e| (e, 0))?.word(0);
    *surface = Some(s);
    let buffer = Message::with_words(proto::BUFFER, &[s, WIDTH as u64, HEIGHT as u64]);
    call(conn, &buffer).map_err(|e| (e, 0))?;
    let mut next = syscall::now_us();
    frame(conn, s, 0, &[(0, 0, WIDTH, HEIGHT)], sent).map_err(|e| (e, at(sent).max(1)))?;
    sent.first_us = syscall::now_us() - next;
    for n in 1..=UPDATES {
        next += FRAME_MS * 1000;
        let now = syscall::now_us();
        if next > now {
            syscall::sleep_ms((next - now) / 1000);
        }
        // The counter and the bar's new part, and the inputs' count if
        // one came.
        let input = poll(conn, device, s, sent).map_err(|e| (e, at(sent).max(1)))?;
        let (bx, by, _, bh) = BAR;
        let bar = (bx + (n - 1) * BAR_STEP, by, BAR_STEP, bh);
        let rects = [COUNTER, bar, INPUTS];
        let rects = if input { &rects[..] } else { &rects[..2] };
        frame(conn, s, n, rects, sent).map_err(|e| (e, at(sent).max(1)))?;
    }
    // The hold: inputs still count, a second apart.
    for _ in 0..HOLD_MS / FRAME_MS {
        syscall::sleep_ms(FRAME_MS);
        if poll(conn, device, s, sent).map_err(|e| (e, at(sent).max(1)))? {
            frame(conn, s, UPDATES, &[INPUTS], sent).map_err(|e| (e, at(sent).max(1)))?;
        }
    }
    call(conn, &Message::with_words(proto::DESTROY, &[s])).map_err(|e| (e, at(sent).max(1)))?;
    *surface = None;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_that_always_answers_a_full_queue_gets_a_bounded_poll() {
        let key = proto::Event {
            kind: proto::EV_KEY,
            surface: 3,
            payload: 1 << 32 | 30,
        };
        let mut calls = 0;
        let mut sent = Sent::default();
        let full = || {
            calls += 1;
            Ok(proto::pack_events(core::iter::repeat(key), 0))
        };
        assert_eq!(take_inputs(full, "tv", 3, &mut sent), Ok(true));
        assert_eq!(calls, POLL_REPLIES, "stops after POLL_REPLIES full replies");
        assert_eq!(sent.inputs as usize, POLL_REPLIES * proto::MAX_EVENTS);
        // A short reply ends the poll; another surface's events count not.
        let mut calls = 0;
        let other = proto::Event { surface: 4, ..key };
        let short = || {
            calls += 1;
            Ok(proto::pack_events([key, other].into_iter(), 0))
        };
        assert_eq!(take_inputs(short, "tv", 3, &mut sent), Ok(true));
        assert_eq!(calls, 1);
        assert_eq!(sent.inputs as usize, POLL_REPLIES * proto::MAX_EVENTS + 1);
    }

    #[test]
    fn the_card_shows_title_counter_and_bar() {
        assert_eq!(pixel(0, 0, 400, 20), TITLE);
        // The C's top segment.
        assert_eq!(pixel(0, 0, 20, 10), TITLE_TEXT);
        assert_eq!(pixel(0, 0, 100, 180), BACKGROUND);
        // Counter 007: the first cell's top segment is lit (a 0), the
        // last's middle segment is not (a 7).
        let (cx, cy, _, _) = COUNTER;
        assert_eq!(pixel(7, 0, cx + 20, cy + 2), DIGITS);
        let last = cx + 2 * (DIGIT_W + DIGIT_GAP);
        assert_eq!(pixel(7, 0, last + 20, cy + DIGIT_H / 2), BACKGROUND);
        assert_eq!(pixel(8, 0, last + 20, cy + DIGIT_H / 2), DIGITS);
        // The bar grows a step a frame.
        let (bx, by, bw, _) = BAR;
        assert_eq!(pixel(0, 0, bx + 1, by + 5), BAR_LEFT);
        assert_eq!(pixel(1, 0, bx + 1, by + 5), BAR_DONE);
        assert_eq!(pixel(5, 0, bx + 5 * BAR_STEP - 1, by + 5), BAR_DONE);
        assert_eq!(pixel(5, 0, bx + 5 * BAR_STEP, by + 5), BAR_LEFT);
        assert_eq!(pixel(UPDATES, 0, bx + bw - 1, by + 5), BAR_DONE);
        // Each frame's update covers what changed.
        for n in 1..=UPDATES {
            let bar = (bx + (n - 1) * BAR_STEP, by, BAR_STEP, BAR.3);
            for y in 0..HEIGHT {
                for x in 0..WIDTH {
                    let inside =
                        |(rx, ry, rw, rh): (u32, u32, u32, u32)| x >= rx && x < rx + rw && y >= ry && y < ry + rh;
                    if !inside(COUNTER) && !inside(bar) {
                        assert_eq!(pixel(n, 0, x, y), pixel(n - 1, 0, x, y), "({x}, {y}) frame {n}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_inputs_count_is_drawn_in_the_title_strip() {
        let (ix, iy, iw, ih) = INPUTS;
        // The second cell's top segment: lit for a 0, not for a 1; its
        // upper right segment lit for both (the harness checks these on
        // the TV's screen).
        let second = ix + 24 + 8;
        assert_eq!(pixel(3, 0, second + 12, iy + 2), TITLE_TEXT);
        assert_eq!(pixel(3, 1, second + 12, iy + 2), TITLE);
        assert_eq!(pixel(3, 1, second + 20, iy + 12), TITLE_TEXT);
        // Only its rectangle changes with the count, inside the card and
        // clear of the title's text.
        assert!(ix + iw <= WIDTH && iy + ih <= TITLE_H);
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                let inside = x >= ix && x < ix + iw && y >= iy && y < iy + ih;
                if !inside {
                    assert_eq!(pixel(4, 0, x, y), pixel(4, 7, x, y), "({x}, {y})");
                }
            }
        }
    }

    #[test]
    fn keys_pressed_and_touches_down_are_inputs() {
        let ev = |kind, surface, payload| proto::Event { kind, surface, payload };
        let events = [
            ev(proto::EV_FRAME, 1, 0),
            ev(proto::EV_KEY, 1, 30 | 1 << 32),
            ev(proto::EV_KEY, 1, 30),
            ev(proto::EV_KEY, 2, 31 | 1 << 32),
            proto::Event::touch(proto::EV_TOUCH_DOWN, 1, 5, 7),
            proto::Event::touch(proto::EV_TOUCH_UP, 1, 5, 7),
        ];
        let got: alloc::vec::Vec<_> = events.iter().filter_map(|e| input(e, 1)).collect();
        assert_eq!(got, [(Some(30), (0, 0)), (None, (5, 7))]);
    }

    #[test]
    fn bands_fit_one_write_and_cover_the_rectangle() {
        let all: alloc::vec::Vec<_> = bands((0, 0, WIDTH, HEIGHT), proto::MAX_WRITE_BYTES).collect();
        assert_eq!(all.len(), 8);
        assert!(all
            .iter()
            .all(|(_, _, w, h)| (*w * *h * 4) as usize <= proto::MAX_WRITE_BYTES));
        assert_eq!(all.iter().map(|b| b.3).sum::<u32>(), HEIGHT);
        assert_eq!(all[1], (0, 34, WIDTH, 34));
        assert_eq!(all.last(), Some(&(0, 238, WIDTH, 32)));
        assert_eq!(bands(COUNTER, proto::MAX_WRITE_BYTES).count(), 1);
        assert_eq!(
            bands((0, 0, 20000, 2), 64).count(),
            2,
            "a row larger than a write: one row each"
        );
    }
}
