//! control: the control center, a panel of cards the compositor shows on
//! a swipe down from the top edge (or F1), each backed by a service and
//! acting when tapped:
//! - This device: name (profile), uptime, memory;
//! - Storage: the filesystem server's `/data`, when one runs;
//! - Tasks: the running tasks; tapping one restarts it (the profile gives
//!   this task `control`);
//! - Power: restart and power off;
//! - Devices nearby: this device and the devices the soft bus lists
//!   (`docs/BUS.md`), asked every [`POLL_US`]; only this device while the
//!   bus does not answer (none in the profile, or restarting). A change is
//!   logged (`nearby: ...`, the card's lines).
//!
//! A tap outside the cards (or Esc) closes the panel.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code, unused_imports))]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use sysui::{mib, sys, uptime_text};
use ui::canvas::Rect;
use ui::text::Text;
use ui::widgets::{Column, Kind, Page, Theme, Widget};
use ui::window::Window;
use userlib::ipc::Timeout;
use userlib::names::supervisor;
use userlib::proto::TaskState;
use userlib::services::bus;
use userlib::services::compositor::{Event, EV_KEY, EV_SHOWN, EV_TOUCH_UP, MAX_EVENTS};
use userlib::services::input::{KEY_ENTER, KEY_ESC};
use userlib::syscall;

#[cfg(not(test))]
userlib::entry!(main, heap = 256 * 1024);

const DEVICE: u32 = 1;
const STORAGE: u32 = 2;
const POWER_RESTART: u32 = 3;
const POWER_OFF: u32 = 4;
const NEARBY: u32 = 5;
/// Task rows: TASK_BASE + task id.
const TASK_BASE: u32 = 1000;
const KEY_UP: u16 = 103;
const KEY_DOWN: u16 = 108;
/// How often the devices nearby are asked of the bus.
const POLL_US: u64 = 2_000_000;

fn main(_: &userlib::abi::boot_info::StartInfo) -> Result<(), userlib::Error> {
    let mut win = Window::open(true)?;
    let mut text = Text::load().ok_or(userlib::Error::NotSupported)?;
    let t = Theme::for_density(win.info.density);
    let profile = sys::profile();
    let mut events = [Event::default(); MAX_EVENTS];
    let mut shown = false;
    let mut focus = None;
    let mut note = String::new();
    let mut nearby = Vec::new();
    let mut next_poll = 0;
    let mut page = Page::default();
    let mut redraw = true;
    loop {
        let now = syscall::now_us();
        if now >= next_poll {
            let lines = nearby_lines(&profile);
            if lines != nearby {
                userlib::log::info!("nearby: {}", lines.join(" | "));
                nearby = lines;
                redraw = true;
            }
            next_poll = now + POLL_US;
        }
        // Hidden, only what changes the card or an event redraws.
        if redraw || shown {
            page = build(&t, win.width, win.height, &profile, &nearby, &note, focus);
            let (w, h) = (win.width, win.height);
            let mut cv = win.canvas();
            // Translucent: what is below shows through (premultiplied).
            cv.fill(Rect::new(0, 0, w, h), 0xe008_0c10);
            page.draw(&mut cv, &mut text, &t);
            let _ = win.present(&[Rect::new(0, 0, w, h)]);
        }
        let deadline = if shown {
            next_poll.min(now + 1_000_000)
        } else {
            next_poll
        };
        let n = win.next(&mut events, deadline);
        redraw = n > 0;
        for e in &events[..n] {
            let act = match e.kind {
                EV_SHOWN => {
                    shown = e.payload != 0;
                    note.clear();
                    None
                }
                EV_TOUCH_UP => {
                    let (x, y) = e.xy();
                    match page.hit(x, y) {
                        Some(wd) => Some(wd.id),
                        None => {
                            let _ = win.client().hide();
                            None
                        }
                    }
                }
                EV_KEY if e.payload >> 32 == 1 => match e.payload as u16 {
                    KEY_ESC => {
                        let _ = win.client().hide();
                        None
                    }
                    KEY_UP | KEY_DOWN => {
                        let mut p = page_focus(&page, focus);
                        p.move_focus(if e.payload as u16 == KEY_UP { -1 } else { 1 });
                        focus = p.focus;
                        None
                    }
                    KEY_ENTER => page_focus(&page, focus).focused().map(|w| w.id),
                    _ => None,
                },
                _ => None,
            };
            match act {
                Some(id) if id >= TASK_BASE => {
                    let task = format!("{}", id - TASK_BASE);
                    note = match supervisor::restart(&task) {
                        Ok(()) => format!("restarted task {task}"),
                        Err(e) => format!("restart {task}: {e:?}"),
                    };
                    userlib::log::info!("{note}");
                }
                Some(POWER_RESTART) => note = format!("restart: {:?}", supervisor::power(true)),
                Some(POWER_OFF) => note = format!("power off: {:?}", supervisor::power(false)),
                _ => {}
            }
        }
    }
}

fn page_focus(p: &Page, focus: Option<usize>) -> Page {
    Page {
        widgets: p.widgets.clone(),
        focus,
    }
}

/// The Devices nearby card's lines: this device, then the devices the bus
/// lists (name, profile, how many services each shares); this device only
/// while the bus does not answer. At once: no wait for a bus not yet
/// registered.
fn nearby_lines(profile: &str) -> Vec<String> {
    let me = format!("this device ({profile})");
    match bus::devices_within(Timeout::NonBlocking) {
        Err(_) => vec![me],
        Ok(d) if d.is_empty() => vec![format!("{me}, no other device")],
        Ok(d) => core::iter::once(me)
            .chain(d.iter().map(|d| match d.shared.len() {
                0 => format!("{} ({}), shares nothing", d.name, d.profile),
                1 => format!("{} ({}), shares 1 service", d.name, d.profile),
                n => format!("{} ({}), shares {n} services", d.name, d.profile),
            }))
            .collect(),
    }
}

fn build(t: &Theme, w: i32, h: i32, profile: &str, nearby: &[String], note: &str, focus: Option<usize>) -> Page {
    let m = t.pad * 2;
    let mut col = Column::new(Rect::new(m, m, w - 2 * m, h - 2 * m), t.pad);
    let mut page = Page::default();
    let add = |page: &mut Page, col: &mut Column, wd: Widget| {
        let mut wd = wd;
        if col.remaining() >= wd.height(t) {
            col.place(&mut wd, t);
            page.push(wd);
        }
    };
    add(
        &mut page,
        &mut col,
        Widget::new(0, Kind::Label { big: true, dim: false }, "Control center"),
    );
    let (used, total) = sys::memory();
    add(
        &mut page,
        &mut col,
        Widget::new(DEVICE, Kind::Card, "This device").lines(vec![
            format!("Kestrel {profile}"),
            format!("up {}", uptime_text(syscall::now_us())),
            format!("memory {} of {}", mib(used), mib(total)),
        ]),
    );
    let storage = match supervisor::services() {
        Ok(s) if s.iter().any(|(_, n)| n.split(' ').next() == Some("fs")) => "/data: served by fs".into(),
        _ => String::from("/data: no filesystem server"),
    };
    add(
        &mut page,
        &mut col,
        Widget::new(STORAGE, Kind::Card, "Storage").lines(vec![storage]),
    );
    add(
        &mut page,
        &mut col,
        Widget::new(NEARBY, Kind::Card, "Devices nearby").lines(nearby.to_vec()),
    );
    add(&mut page, &mut col, Widget::new(POWER_RESTART, Kind::Button, "Restart"));
    add(&mut page, &mut col, Widget::new(POWER_OFF, Kind::Button, "Power off"));
    add(
        &mut page,
        &mut col,
        Widget::new(0, Kind::Label { big: false, dim: true }, "Tasks (tap to restart)"),
    );
    let tasks: Vec<_> = supervisor::tasks().unwrap_or_default();
    for task in tasks.iter().filter(|t| t.state == TaskState::Running) {
        let label = format!("{}  {}  restarts {}", task.id, task.name, task.restarts);
        add(
            &mut page,
            &mut col,
            Widget::new(TASK_BASE + task.id as u32, Kind::ListItem, &label),
        );
    }
    if !note.is_empty() {
        add(
            &mut page,
            &mut col,
            Widget::new(0, Kind::Label { big: false, dim: true }, note),
        );
    }
    page.focus = focus;
    page
}
