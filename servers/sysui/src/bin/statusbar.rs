//! statusbar: the strip at the top of the screen: the time from the RTC,
//! CPU use over the last second and the memory in use.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code, unused_imports))]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use sysui::{clock_text, cpu_percent, sys};
use ui::canvas::Rect;
use ui::text::Text;
use ui::widgets::Theme;
use ui::window::Window;
use userlib::services::compositor::{Event, MAX_EVENTS};
use userlib::{names, syscall};

#[cfg(not(test))]
userlib::entry!(main, heap = 192 * 1024);

fn main(_: &userlib::abi::boot_info::StartInfo) -> Result<(), userlib::Error> {
    let mut win = Window::open(false)?;
    let mut text = Text::load().ok_or(userlib::Error::NotSupported)?;
    let mut t = Theme::for_density(win.info.density);
    t.size = (win.height as u32 * 5 / 10).clamp(10, 64) as u16;
    let mut rtc = names::Connection::new(userlib::services::rtc::NAME);
    let mut events = [Event::default(); MAX_EVENTS];
    let (mut last_cpu, mut last_wall) = (sys::cpu_total(), syscall::now_us());
    loop {
        let (cpu, wall) = (sys::cpu_total(), syscall::now_us());
        let pct = cpu_percent(cpu - last_cpu.min(cpu), wall - last_wall);
        (last_cpu, last_wall) = (cpu, wall);
        let (used, _) = sys::memory();
        let time = sys::unix_time(&mut rtc)
            .map(clock_text)
            .unwrap_or_else(|| "--:--".into());
        let right = format!("CPU {pct}%  MEM {} MiB", used >> 20);
        let (w, h) = (win.width, win.height);
        let mut cv = win.canvas();
        cv.fill(Rect::new(0, 0, w, h), 0xff00_0000);
        let y = (h - t.line()) / 2;
        text.draw(&mut cv, t.pad, y, &time, t.size, t.text);
        let rw = text.width(&right, t.size);
        text.draw(&mut cv, w - rw - t.pad, y, &right, t.size, t.dim);
        let _ = win.present(&[Rect::new(0, 0, w, h)]);
        // The bar takes no input: redraw each second.
        win.next(&mut events, syscall::now_us() + 1_000_000);
    }
}
