//! clock: the Clock app: the time, large, the date, and a stopwatch
//! started and stopped with its button (or Enter).
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code, unused_imports))]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use sysui::{clock_text, date_text, sys, uptime_text};
use ui::canvas::Rect;
use ui::text::Text;
use ui::widgets::{Column, Kind, Page, Theme, Widget};
use ui::window::Window;
use userlib::services::compositor::{Event, EV_KEY, EV_TOUCH_UP, MAX_EVENTS};
use userlib::services::input::KEY_ENTER;
use userlib::{names, syscall};

#[cfg(not(test))]
userlib::entry!(main, heap = 192 * 1024);

const STOPWATCH: u32 = 1;

fn main(_: &userlib::abi::boot_info::StartInfo) -> Result<(), userlib::Error> {
    let mut win = Window::open(false)?;
    let mut text = Text::load().ok_or(userlib::Error::NotSupported)?;
    let t = Theme::for_density(win.info.density);
    let mut rtc = names::Connection::new(userlib::services::rtc::NAME);
    let mut events = [Event::default(); MAX_EVENTS];
    let mut started: Option<u64> = None;
    let mut shown_us = 0u64;
    let mut focus = None;
    loop {
        let now = sys::unix_time(&mut rtc);
        let mut page = Page::default();
        let (w, h) = (win.width, win.height);
        let m = t.pad * 2;
        let mut col = Column::new(Rect::new(m, m, w - 2 * m, h - 2 * m), t.pad);
        let elapsed = started.map(|s| syscall::now_us() - s).unwrap_or(shown_us);
        for (id, kind, s) in [
            (0, Kind::Label { big: true, dim: false }, "Clock".into()),
            (
                0,
                Kind::Label { big: true, dim: false },
                now.map(clock_text).unwrap_or("--:--".into()),
            ),
            (
                0,
                Kind::Label { big: false, dim: true },
                now.map(date_text).unwrap_or_default(),
            ),
            (
                0,
                Kind::Label { big: false, dim: false },
                format!("Stopwatch: {}", uptime_text(elapsed)),
            ),
            (
                STOPWATCH,
                Kind::Button,
                if started.is_some() {
                    "Stop".into()
                } else {
                    "Start".into()
                },
            ),
        ] {
            let mut wd = Widget::new(id, kind, &s);
            col.place(&mut wd, &t);
            page.push(wd);
        }
        page.focus = focus;
        let mut cv = win.canvas();
        cv.fill(Rect::new(0, 0, w, h), t.bg);
        page.draw(&mut cv, &mut text, &t);
        let _ = win.present(&[Rect::new(0, 0, w, h)]);
        let n = win.next(&mut events, syscall::now_us() + 1_000_000);
        for e in &events[..n] {
            let act = match e.kind {
                EV_TOUCH_UP => {
                    let (x, y) = e.xy();
                    page.hit(x, y).map(|w| w.id)
                }
                EV_KEY if e.payload >> 32 == 1 && e.payload as u16 == KEY_ENTER => {
                    focus = Some(4);
                    Some(STOPWATCH)
                }
                _ => None,
            };
            if act == Some(STOPWATCH) {
                match started.take() {
                    Some(s) => shown_us = syscall::now_us() - s,
                    None => started = Some(syscall::now_us() - shown_us),
                }
                userlib::log::info!("stopwatch {}", if started.is_some() { "started" } else { "stopped" });
            }
        }
    }
}
