//! Display benchmarks, read by `cargo xtask bench` like `bench`'s
//! (`bench: <name> <instructions>`, the median of several runs minus the
//! cost of reading the counter).
//!
//! Run with `utest=bench-display servers=none` on a machine with a
//! virtio-gpu device (`cargo xtask bench` boots the tv profile's 1920x1080
//! one): the display driver runs, the compositor does not, and this
//! program is the display's only client. It composes with the
//! compositor's own code (`compositor::compose`) from a client-sized
//! opaque buffer (a memory object read with `MemoryRead`, never mapped by
//! the compositor, as a client's surface is) into the driver's
//! framebuffer, then flushes through the driver, as the compositor does
//! for a frame:
//! - `compose_flush_full_frame`: the whole screen;
//! - `compose_flush_64x64`: a 64x64 damaged rectangle;
//! - `compose_full_frame`, `flush_full_frame`, `compose_64x64` and
//!   `flush_64x64`: the two halves apart.
//!
//! Every row counts instructions retired on the one CPU
//! ([`userlib::arch::instructions`], PMU event 0x08): this program's, the
//! driver's and the kernel's (IPC, the driver's commands, the device's
//! interrupt), not the time the CPU idles while the host copies and
//! redraws. Not the cycle counter: under QEMU `-icount` it reads the
//! virtual clock, and with `sleep=off` an idle CPU jumps that clock to the
//! next QEMU timer. One is always armed: while event counter 0 runs (the
//! kernel counts instructions there on every CPU), QEMU's PMU model keeps
//! a timer at its predicted 32-bit overflow (up to 2^32 ns, about 4.29 s,
//! ahead), so a flush the driver slept through read about 4.2 G cycles.
//!
//! Each row's samples are printed (`bench-note:`); they take one of a few
//! exact values, by when the device's answers come against the driver
//! (before or after it went to sleep, where the interrupt lands: the host
//! decides). A sample more than twice the row's smallest is not that
//! work: the program fails.
#![no_std]
#![no_main]

extern crate alloc;

use compositor::compose::{compose, Layer, Object, Pixels, Target};
use compositor::geom::Rect;
use userlib::abi::boot_info::StartInfo;
use userlib::arch::instructions;
use userlib::ipc::Timeout;
use userlib::services::display::{self, Display};
use userlib::vspace::{pages_for, Mapping};
use userlib::{names, println, syscall, Rights};

mod samples;
use samples::{counter_cost, report};

userlib::entry!(main, heap = 64 * 1024);

/// Measured runs of the full-frame cases (each is millions of
/// instructions) and of the small ones.
const FULL_RUNS: usize = 9;
const SMALL_RUNS: usize = 101;
const WARMUP: usize = 2;

fn main(_: &StartInfo) {
    let me = userlib::process();
    syscall::thread_configure(me.thread, me.priority, Some(0)).expect("pin to CPU 0");
    names::connect(display::NAME, Timeout::millis(20_000)).expect("no `display` service within 20 s");
    let mut d = Display::new();
    // No deadline on the calls: under `-icount sleep=off` the CPU idling
    // while the driver waits for the device would jump to it at once.
    d.set_timeout(Timeout::Forever);
    let (mut fb, info) = d.map().expect("MAP the framebuffer");
    let (w, h) = (info.width as i32, info.height as i32);
    println!("bench-display: {w}x{h}");
    // A client's opaque buffer the size of the screen, in this task's
    // memory, with a pattern (not all one value).
    let stride = w as usize * 4;
    let mut client = Mapping::new(pages_for((stride * h as usize) as u64), Rights::READ | Rights::WRITE)
        .expect("a screen-sized buffer");
    for (i, px) in client.as_mut_slice().chunks_exact_mut(4).enumerate() {
        px.copy_from_slice(&(0xff00_0000 | (i as u32).wrapping_mul(2_654_435_761) >> 8).to_le_bytes());
    }
    let cost = counter_cost();
    let screen = Rect::new(0, 0, w, h);
    let object = Object(client.handle());
    let layer = Layer::new(screen, Pixels::Read(&object, client.as_slice().len()), stride, true).expect("layer");
    let layers = [layer];
    let mut frame = |area: Rect, flush: bool, d: &mut Display| {
        let mut t = Target {
            buf: fb.as_mut_slice(),
            stride: info.stride as usize,
            width: w,
            height: h,
        };
        let a = instructions();
        let n = compose(&mut t, &layers, area).expect("the buffer is there");
        if flush {
            d.flush(display::Rect {
                x: area.x as u32,
                y: area.y as u32,
                w: area.w as u32,
                h: area.h as u32,
            })
            .expect("FLUSH");
        }
        let b = instructions();
        assert_eq!(n, area.area() as u64, "every pixel of the area composed");
        b.wrapping_sub(a) as u64
    };
    let full = measure(cost, FULL_RUNS, || frame(screen, true, &mut d));
    report("compose_flush_full_frame", &full);
    report(
        "compose_full_frame",
        &measure(cost, FULL_RUNS, || frame(screen, false, &mut d)),
    );
    let small = Rect::new(w / 2 - 32, h / 2 - 32, 64, 64);
    report(
        "compose_flush_64x64",
        &measure(cost, SMALL_RUNS, || frame(small, true, &mut d)),
    );
    report(
        "compose_64x64",
        &measure(cost, SMALL_RUNS, || frame(small, false, &mut d)),
    );
    let flush_only = measure(cost, FULL_RUNS, || {
        let a = instructions();
        d.flush(display::Rect::full(&info)).expect("FLUSH");
        instructions().wrapping_sub(a) as u64
    });
    report("flush_full_frame", &flush_only);
    let flush_small = measure(cost, SMALL_RUNS, || {
        let a = instructions();
        d.flush(display::Rect {
            x: small.x as u32,
            y: small.y as u32,
            w: 64,
            h: 64,
        })
        .expect("FLUSH");
        instructions().wrapping_sub(a) as u64
    });
    report("flush_64x64", &flush_small);
}

/// `runs` samples (at most [`SMALL_RUNS`]) after [`WARMUP`], each less
/// the counter's cost, in the order taken.
fn measure(cost: u64, runs: usize, mut f: impl FnMut() -> u64) -> Samples {
    for _ in 0..WARMUP {
        f();
    }
    let mut s = Samples {
        values: [0; SMALL_RUNS],
        len: runs.min(SMALL_RUNS),
    };
    for x in s.values[..s.len].iter_mut() {
        *x = f().saturating_sub(cost);
    }
    s
}

/// A row's samples.
struct Samples {
    values: [u64; SMALL_RUNS],
    len: usize,
}

impl core::ops::Deref for Samples {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        &self.values[..self.len]
    }
}
