//! Input to photon, read by `cargo xtask bench` like `bench`'s
//! (`bench: input_to_photon <instructions>`, the median of the samples).
//!
//! Run with `utest=bench-photon servers=compositor
//! arg.compositor.home=bench-photon` on the tv profile with a virtio
//! keyboard (`cargo xtask bench` does): the drivers and the compositor
//! run, and this program is the compositor's home surface, so it has the
//! keyboard's focus. On one CPU, for each sample:
//! 1. it prints `bench-photon: ready #N (press a key)`, reads the instruction counter
//!    and waits for its events; the machine goes idle;
//! 2. the host presses a key through QMP (`input-send-event`): the
//!    virtio-input interrupt, the input driver, the compositor's input
//!    thread and main loop, the key event queued to this surface;
//! 3. this program wakes, draws a 64x64 square (a new colour each time)
//!    and commits it; the compositor composes the damaged square and
//!    flushes it to virtio-gpu (`TRANSFER_TO_HOST_2D`, `RESOURCE_FLUSH`),
//!    then queues `EV_FRAME`;
//! 4. this program wakes on it and reads the counter again.
//!
//! The sample is every instruction the CPU retired in between, every
//! task's and the kernel's ([`userlib::arch::instructions`]; not idle
//! time): an upper bound of the interrupt-to-flush path, since it also
//! counts this program's own way into its wait before the interrupt and
//! the frame event's way back to it after the flush, and whatever else
//! ran meanwhile (the compositor's once-a-second client sweep may fall in
//! a sample). The host releases the key once the sample is
//! printed, and the program waits for that release before the next
//! `ready`, so its interrupt is in no sample.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use ui::canvas::Rect;
use ui::window::Window;
use userlib::abi::boot_info::StartInfo;
use userlib::arch::instructions;
use userlib::ipc::Timeout;
use userlib::services::compositor::{Event, EV_FRAME, EV_KEY, MAX_EVENTS};
use userlib::{println, syscall};

mod samples;
use samples::{counter_cost, report};

userlib::entry!(main, heap = 64 * 1024);

/// Samples taken (the first is a warm-up, not counted).
const RUNS: usize = 12;
/// The key's press and release (`EV_KEY` payload: code | value << 32).
const PRESS: u32 = 1;
const RELEASE: u32 = 0;

fn main(_: &StartInfo) {
    let me = userlib::process();
    syscall::thread_configure(me.thread, me.priority, Some(0)).expect("pin to CPU 0");
    let mut win = Window::open(false).expect("a compositor window");
    let (w, h) = (win.width, win.height);
    win.canvas().fill(Rect::new(0, 0, w, h), 0xff20_2020);
    win.present(&[Rect::new(0, 0, w, h)]).expect("the first commit");
    let mut ev = [Event::default(); MAX_EVENTS];
    wait_for(&mut win, &mut ev, |e| e.kind == EV_FRAME);
    println!("bench-photon: {w}x{h} home surface");
    println!("bench-photon: samples {RUNS}");
    let cost = counter_cost();
    let square = Rect::new(w / 2 - 32, h / 2 - 32, 64, 64);
    let mut samples = Vec::new();
    for i in 0..RUNS {
        println!("bench-photon: ready #{i} (press a key)");
        let a = instructions();
        wait_for(&mut win, &mut ev, |e| is_key(e, PRESS));
        let colour = 0xff00_0000 | (i as u32 + 1).wrapping_mul(0x0040_3020);
        win.canvas().fill(square, colour);
        win.present(&[square]).expect("commit");
        wait_for(&mut win, &mut ev, |e| e.kind == EV_FRAME);
        let b = instructions();
        let n = (b.wrapping_sub(a) as u64).saturating_sub(cost);
        println!("bench-photon: sample #{i}: {n}");
        if i > 0 {
            samples.push(n);
        }
        wait_for(&mut win, &mut ev, |e| is_key(e, RELEASE));
    }
    report("input_to_photon", &samples);
}

fn is_key(e: &Event, value: u32) -> bool {
    e.kind == EV_KEY && (e.payload >> 32) as u32 == value
}

/// Waits (without a deadline: under `-icount` an idle CPU would jump to
/// it) until an event that `done` accepts has come; others are dropped.
fn wait_for(win: &mut Window, ev: &mut [Event; MAX_EVENTS], done: impl Fn(&Event) -> bool) {
    loop {
        let n = win.wait(ev, Timeout::Forever);
        if ev[..n].iter().any(&done) {
            return;
        }
    }
}
