//! home: a tile per app the profile lists (`apps=clock,files,...` in its
//! args); a tap (or arrow keys and Enter) shows the app. A tile may name
//! the control center's task: it opens the panel. With `remote` (the TV:
//! no touch) the first tile has the focus from the start, and up and down
//! move a row. With `face` in its args (the watch) home is a round watch
//! face with the time, and a tap on it opens the first app.
//!
//! When the profile names home as the control center's task too
//! (`panel=home`: the watch, which has no room for a second full-screen
//! window) the compositor tells it when the panel opens and closes
//! (`EV_SHOWN`), and home draws the panel (`sysui::panel`) in its own
//! window: on the face, inside the circle. A tap outside the cards closes
//! it, as a swipe up from the bottom edge does.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code, unused_imports))]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use sysui::panel::{Panel, Shape};
use sysui::{clock_text, date_text, sys};
use ui::canvas::{rgb, Rect};
use ui::text::Text;
use ui::widgets::{grid, Kind, Page, Theme, Widget};
use ui::window::Window;
use userlib::services::compositor::{Event, EV_KEY, EV_SHOWN, EV_TOUCH_DOWN, EV_TOUCH_MOVE, EV_TOUCH_UP, MAX_EVENTS};
use userlib::services::input::KEY_ENTER;
use userlib::{names, process};

// Static (.bss), so RAM on every device. What it holds is mostly the glyph
// cache; measured: ~8 KiB in use for the watch face (`used` of
// `userlib::heap::stats`).
#[cfg(not(test))]
userlib::entry!(main, heap = 96 * 1024);

const TILE_COLOURS: [u32; 6] = [0x2f6fde, 0x2fae6a, 0xd9822b, 0x9b59b6, 0xc0392b, 0x16a085];
const KEY_UP: u16 = 103;
const KEY_LEFT: u16 = 105;
const KEY_RIGHT: u16 = 106;
const KEY_DOWN: u16 = 108;

fn main(_: &userlib::abi::boot_info::StartInfo) -> Result<(), userlib::Error> {
    let args = process().args();
    let apps: Vec<String> = args
        .split_whitespace()
        .find_map(|a| a.strip_prefix("apps="))
        .map(|l| l.split(',').filter(|s| !s.is_empty()).map(String::from).collect())
        .unwrap_or_default();
    let face = args.split_whitespace().any(|a| a == "face");
    let remote = args.split_whitespace().any(|a| a == "remote");
    let mut win = Window::open(false)?;
    let mut text = Text::load().ok_or(userlib::Error::NotSupported)?;
    let t = Theme::for_density(win.info.density);
    let mut rtc = names::Connection::new(userlib::services::rtc::NAME);
    let mut events = [Event::default(); MAX_EVENTS];
    let (w, h) = (win.width, win.height);
    let cols = if w > h { 4 } else { 3 };
    let mut page = Page::default();
    let tile_h = t.size as i32 * 4 + t.line();
    let m = t.pad * 2;
    let top = if face { h } else { m + t.title as i32 * 2 };
    for (i, (app, r)) in apps
        .iter()
        .zip(grid(
            Rect::new(m, top, w - 2 * m, h - top),
            cols,
            tile_h,
            t.pad * 2,
            apps.len(),
        ))
        .enumerate()
    {
        let mut tile = Widget::new(
            i as u32,
            Kind::Tile {
                colour: TILE_COLOURS[i % 6],
            },
            &title_case(app),
        );
        tile.rect = r;
        page.push(tile);
    }
    if remote {
        page.move_focus(1);
    }
    // The control center, when home draws it (made when it first opens).
    let mut panel: Option<Panel> = None;
    let mut panel_open = false;
    let shape = if face {
        Shape::Circle {
            cx: w / 2,
            cy: h / 2,
            r: w.min(h) / 2,
        }
    } else {
        Shape::Rect(Rect::new(0, 0, w, h))
    };
    loop {
        let now = sys::unix_time(&mut rtc);
        let mut cv = win.canvas();
        cv.fill(Rect::new(0, 0, w, h), t.bg);
        if let Some(p) = panel.as_mut().filter(|_| panel_open) {
            p.poll();
            p.build(&t, shape, None);
            p.draw(&mut cv, &mut text, &t, shape);
        } else if face {
            // Everything inside the circle.
            let r = w.min(h) / 2;
            cv.fill(Rect::new(0, 0, w, h), rgb(0));
            cv.circle(w / 2, h / 2, r, rgb(0x182838));
            let time = now.map(clock_text).unwrap_or("--:--".into());
            let big = (r / 3) as u16;
            let tw = text.width(&time, big);
            text.draw(&mut cv, (w - tw) / 2, h / 2 - big as i32 * 3 / 4, &time, big, t.text);
            let date = now.map(date_text).unwrap_or_default();
            let dw = text.width(&date, t.size);
            text.draw(&mut cv, (w - dw) / 2, h / 2 + big as i32 / 2, &date, t.size, t.dim);
        } else {
            text.draw(&mut cv, m, m, "Home", t.title, t.text);
            page.draw(&mut cv, &mut text, &t);
        }
        let _ = win.present(&[Rect::new(0, 0, w, h)]);
        let n = win.next(
            &mut events,
            userlib::syscall::now_us() + if face || panel_open { 1_000_000 } else { 30_000_000 },
        );
        for e in &events[..n] {
            if e.kind == EV_SHOWN {
                panel_open = e.payload != 0;
                let p = panel.get_or_insert_with(Panel::new);
                p.note.clear();
                p.drag.scroll = 0;
                continue;
            }
            if let Some(p) = panel.as_mut().filter(|_| panel_open) {
                if matches!(e.kind, EV_TOUCH_DOWN | EV_TOUCH_MOVE | EV_TOUCH_UP) {
                    match p.touch(&t, e) {
                        Some(Some(id)) => p.act(id),
                        Some(None) => {
                            let _ = win.client().hide();
                        }
                        None => {}
                    }
                }
                continue;
            }
            let open = match e.kind {
                EV_TOUCH_UP if face => apps.first().cloned(),
                EV_TOUCH_UP => {
                    let (x, y) = e.xy();
                    page.hit(x, y).map(|wd| apps[wd.id as usize].clone())
                }
                EV_KEY if e.payload >> 32 == 1 => {
                    match e.payload as u16 {
                        KEY_LEFT => page.move_focus(-1),
                        KEY_RIGHT => page.move_focus(1),
                        KEY_UP => page.move_focus(-cols),
                        KEY_DOWN => page.move_focus(cols),
                        KEY_ENTER => {}
                        _ => {}
                    }
                    (e.payload as u16 == KEY_ENTER)
                        .then(|| page.focused().map(|wd| apps[wd.id as usize].clone()))
                        .flatten()
                }
                _ => None,
            };
            if let Some(app) = open {
                userlib::log::info!("opening {app}");
                if let Err(e) = win.client().activate(&app) {
                    userlib::log::warn!("{app} is not running ({e:?})");
                }
            }
        }
    }
}

fn title_case(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
