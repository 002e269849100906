//! control: the control center, a panel of cards the compositor shows on
//! a swipe down from the top edge (or F1): `sysui::panel` (the cards, what
//! each shows and does), in this task's own surface over the screen.
//! Dragging scrolls it when the tasks do not all fit.
//!
//! A tap outside the cards (or Esc) closes the panel.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code, unused_imports))]
#![forbid(unsafe_code)]

extern crate alloc;

use sysui::panel::{Panel, Shape};
use ui::canvas::Rect;
use ui::text::Text;
use ui::widgets::{Page, Theme};
use ui::window::Window;
use userlib::services::compositor::{Event, EV_KEY, EV_SHOWN, EV_TOUCH_DOWN, EV_TOUCH_MOVE, EV_TOUCH_UP, MAX_EVENTS};
use userlib::services::input::{KEY_ENTER, KEY_ESC};
use userlib::syscall;

#[cfg(not(test))]
userlib::entry!(main, heap = 256 * 1024);

const KEY_UP: u16 = 103;
const KEY_DOWN: u16 = 108;

fn main(_: &userlib::abi::boot_info::StartInfo) -> Result<(), userlib::Error> {
    let mut win = Window::open(true)?;
    let mut text = Text::load().ok_or(userlib::Error::NotSupported)?;
    let t = Theme::for_density(win.info.density);
    let mut panel = Panel::new();
    let mut events = [Event::default(); MAX_EVENTS];
    let mut shown = false;
    let mut focus = None;
    let mut redraw = true;
    loop {
        let now = syscall::now_us();
        redraw |= panel.poll();
        // Hidden, only what changes the card or an event redraws.
        if redraw || shown {
            let (w, h) = (win.width, win.height);
            let shape = Shape::Rect(Rect::new(0, 0, w, h));
            panel.build(&t, shape, focus);
            panel.draw(&mut win.canvas(), &mut text, &t, shape);
            let _ = win.present(&[Rect::new(0, 0, w, h)]);
        }
        let deadline = if shown {
            panel.next_poll().min(now + 1_000_000)
        } else {
            panel.next_poll()
        };
        let n = win.next(&mut events, deadline);
        redraw = n > 0;
        for e in &events[..n] {
            let act = match e.kind {
                EV_SHOWN => {
                    shown = e.payload != 0;
                    panel.note.clear();
                    None
                }
                EV_TOUCH_DOWN | EV_TOUCH_MOVE | EV_TOUCH_UP => match panel.touch(&t, e) {
                    Some(None) => {
                        let _ = win.client().hide();
                        None
                    }
                    hit => hit.flatten(),
                },
                EV_KEY if e.payload >> 32 == 1 => match e.payload as u16 {
                    KEY_ESC => {
                        let _ = win.client().hide();
                        None
                    }
                    KEY_UP | KEY_DOWN => {
                        let mut p = page_focus(&panel.page, focus);
                        p.move_focus(if e.payload as u16 == KEY_UP { -1 } else { 1 });
                        focus = p.focus;
                        None
                    }
                    KEY_ENTER => page_focus(&panel.page, focus).focused().map(|w| w.id),
                    _ => None,
                },
                _ => None,
            };
            if let Some(id) = act {
                panel.act(id);
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
