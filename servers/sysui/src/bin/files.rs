//! files: the Files app: browses the directory the profile routes to it
//! (the file server's first mount granted to this task, read-only in the
//! profiles) and shows text files. Tap a row (or move with Up/Down and
//! press Enter) to open a directory or a file; `..` and Back go up.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code, unused_imports))]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use sysui::browser::{text_lines, Browser, Item, SHOW_LIMIT};
use ui::canvas::Rect;
use ui::text::Text;
use ui::widgets::{Column, Kind, Page, Theme, Widget};
use ui::window::Window;
use userlib::fs::Namespace;
use userlib::services::compositor::{Event, EV_KEY, EV_TOUCH_UP, MAX_EVENTS};
use userlib::services::input::KEY_ENTER;
use userlib::{log, syscall};

#[cfg(not(test))]
userlib::entry!(main, heap = 256 * 1024);

const KEY_UP: u16 = 103;
const KEY_DOWN: u16 = 108;
/// The Back button's id; rows are numbered from 0.
const BACK: u32 = u32::MAX;

/// What the window shows.
enum View {
    /// The current directory's rows (or why it could not be read).
    List(Result<Vec<Item>, String>),
    /// A file: its name and its lines (or why they cannot be shown).
    File(String, Vec<String>),
}

fn main(_: &userlib::abi::boot_info::StartInfo) -> Result<(), userlib::Error> {
    let mut win = Window::open(false)?;
    let mut text = Text::load().ok_or(userlib::Error::NotSupported)?;
    let t = Theme::for_density(win.info.density);
    let mut ns = Namespace::new();
    // The directory the profile routes here: the first mount granted.
    let root = loop {
        match ns.mounts() {
            Ok(m) if !m.is_empty() => break format!("/{}", m[0].0),
            Ok(_) => {
                log::warn!("no directory is routed to this app");
                return Err(userlib::Error::NotSupported);
            }
            // The file server may start after this app.
            Err(_) => syscall::sleep_ms(200),
        }
    };
    let mut browser = Browser::new(&root);
    let mut view = list(&mut ns, &browser);
    log::info!("browsing {root}");
    let mut events = [Event::default(); MAX_EVENTS];
    let mut focus: Option<usize> = None;
    loop {
        let mut page = draw(&mut win, &mut text, &t, &browser, &view, focus);
        let n = win.next(&mut events, syscall::now_us() + 60_000_000);
        for e in &events[..n] {
            let chosen = match e.kind {
                EV_TOUCH_UP => {
                    let (x, y) = e.xy();
                    page.hit(x, y).map(|w| w.id)
                }
                EV_KEY if e.payload >> 32 != 0 => match e.payload as u16 {
                    KEY_DOWN | KEY_UP => {
                        page.move_focus(if e.payload as u16 == KEY_DOWN { 1 } else { -1 });
                        focus = page.focus;
                        None
                    }
                    KEY_ENTER => page.focused().map(|w| w.id),
                    _ => None,
                },
                _ => None,
            };
            let Some(id) = chosen else { continue };
            focus = None;
            view = match (&view, id) {
                (View::File(..), BACK) => list(&mut ns, &browser),
                (View::List(Ok(items)), i) => match items.get(i as usize) {
                    Some(item) if item.is_dir => {
                        browser.enter(&item.path);
                        list(&mut ns, &browser)
                    }
                    Some(item) => show(&mut ns, &item.path),
                    None => continue,
                },
                _ => continue,
            };
            // The rest of the batch was aimed at the old view.
            break;
        }
    }
}

/// Rows of a listing named in the log.
const LOGGED_ROWS: usize = 16;

/// The current directory's rows. The log names what the list shows (its
/// first rows, as they read), for whoever reads the console.
fn list(ns: &mut Namespace, b: &Browser) -> View {
    let rows = ns
        .read_dir(b.cwd())
        .map(|e| b.items(&e))
        .map_err(|e| format!("{}: {e}", b.cwd()));
    match &rows {
        Ok(items) => {
            let shown: Vec<&str> = items.iter().take(LOGGED_ROWS).map(|i| i.label.as_str()).collect();
            let more = items.len().saturating_sub(LOGGED_ROWS);
            let more = if more > 0 {
                format!(" | ({more} more)")
            } else {
                String::new()
            };
            log::info!("{}: {}{more}", b.cwd(), shown.join(" | "));
        }
        Err(why) => log::warn!("{why}"),
    }
    View::List(rows)
}

/// A file's text.
fn show(ns: &mut Namespace, path: &str) -> View {
    let lines = match ns.metadata(path) {
        Ok(st) if st.size > SHOW_LIMIT => alloc::vec![format!("(too large to show: {} bytes)", st.size)],
        Ok(_) => match ns.read(path) {
            Ok(data) => text_lines(&data).unwrap_or_else(|why| alloc::vec![why]),
            Err(e) => alloc::vec![format!("{path}: {e}")],
        },
        Err(e) => alloc::vec![format!("{path}: {e}")],
    };
    log::info!("showing {path} ({} lines)", lines.len());
    View::File(path.into(), lines)
}

/// Draws the view; the page, to find what a tap hit.
fn draw(win: &mut Window, text: &mut Text, t: &Theme, b: &Browser, view: &View, focus: Option<usize>) -> Page {
    let (w, h) = (win.width, win.height);
    let m = t.pad * 2;
    let mut col = Column::new(Rect::new(m, m, w - 2 * m, h - 2 * m), t.pad);
    let mut page = Page::default();
    let title = match view {
        View::List(_) => b.cwd(),
        View::File(path, _) => path.rsplit('/').next().unwrap_or(path),
    };
    let mut head = Widget::new(0, Kind::Label { big: true, dim: false }, title);
    col.place(&mut head, t);
    page.push(head);
    match view {
        View::List(Ok(items)) => {
            for (i, item) in items.iter().enumerate() {
                let mut row = Widget::new(i as u32, Kind::ListItem, &item.label);
                if col.remaining() < row.height(t) {
                    break;
                }
                col.place(&mut row, t);
                page.push(row);
            }
            if items.is_empty() {
                let mut empty = Widget::new(0, Kind::Label { big: false, dim: true }, "(empty)");
                col.place(&mut empty, t);
                page.push(empty);
            }
        }
        View::List(Err(why)) => {
            let mut l = Widget::new(0, Kind::Label { big: false, dim: true }, why);
            col.place(&mut l, t);
            page.push(l);
        }
        View::File(_, lines) => {
            let mut back = Widget::new(BACK, Kind::Button, "Back");
            col.place(&mut back, t);
            back.rect.w = back.rect.w.min(t.size as i32 * 6);
            let mut body = Widget::new(0, Kind::TextView { tail: false }, "").lines(lines.clone());
            body.rect = Rect::new(m, back.rect.y + back.rect.h + t.pad, w - 2 * m, col.remaining() - t.pad);
            page.push(back);
            page.push(body);
        }
    }
    // Keyboard focus (an index into this page: reset when the view changes).
    page.focus = focus.filter(|&i| i < page.widgets.len());
    let mut cv = win.canvas();
    cv.fill(Rect::new(0, 0, w, h), t.bg);
    page.draw(&mut cv, text, t);
    let _ = win.present(&[Rect::new(0, 0, w, h)]);
    page
}
