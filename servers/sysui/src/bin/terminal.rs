//! terminal: the Terminal app: a second shell, on the screen and typed on
//! the keyboard. The keys come from the compositor (this surface has the
//! focus) and become terminal bytes (`userlib::keymap`); the shell's own
//! line editor (`shell::editor`) and session (`shell::session`: the same
//! commands as the console shell, run in this task with the routes the
//! profile gives it) do the rest. The screen shows the scrollback (a
//! text view) and the line being typed (a text field).
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code, unused_imports))]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use shell::editor::{Editor, Event as Edit};
use shell::session::{Session, PROMPT};
use sysui::scrollback::Scrollback;
use ui::canvas::Rect;
use ui::text::Text;
use ui::widgets::{Kind, Page, Theme, Widget};
use ui::window::Window;
use userlib::keymap::Keyboard;
use userlib::services::compositor::{Event, EV_KEY, EV_SHOWN, MAX_EVENTS};
use userlib::{log, syscall};

// Heap: the glyph cache, the scrollback and a command's output (the
// shell's largest, `fetch`, keeps 16 KiB).
#[cfg(not(test))]
userlib::entry!(main, heap = 256 * 1024);

/// Lines of scrollback kept.
const SCROLLBACK: usize = 200;

fn main(_: &userlib::abi::boot_info::StartInfo) -> Result<(), userlib::Error> {
    let mut win = Window::open(false)?;
    let mut text = Text::load().ok_or(userlib::Error::NotSupported)?;
    let t = Theme::for_density(win.info.density);
    let mut session = Session::new();
    let mut editor = Editor::new();
    let mut keyboard = Keyboard::new();
    let mut back = Scrollback::new(SCROLLBACK);
    back.push("Kestrel shell: type 'help' for the commands.");
    let mut events = [Event::default(); MAX_EVENTS];
    let mut typed = Vec::new();
    let mut echo = Vec::new();
    log::info!("ready");
    loop {
        draw(&mut win, &mut text, &t, &back, &editor);
        let n = win.next(&mut events, syscall::now_us() + 60_000_000);
        typed.clear();
        for e in &events[..n] {
            match e.kind {
                EV_KEY => keyboard.key(e.payload as u16, (e.payload >> 32) as u32, &mut typed),
                // Shown again: drawn again at the top of the loop.
                EV_SHOWN => {}
                _ => {}
            }
        }
        for &b in &typed {
            let before = String::from(editor.line());
            echo.clear();
            match editor.key(b, &mut echo) {
                Some(Edit::Line(line)) => {
                    back.push(&format!("{PROMPT}{line}"));
                    if line.trim() == "clear" {
                        back.clear();
                        continue;
                    }
                    let out = session.run(&line);
                    back.push(&out);
                    log::info!("ran '{}' ({} lines)", line.trim(), out.lines().count());
                }
                Some(Edit::Cancel) => back.push(&format!("{PROMPT}{before}^C")),
                None => {}
            }
        }
    }
}

/// The scrollback above, the line being typed below (the whole window
/// is redrawn: a frame is a handful of text rows).
fn draw(win: &mut Window, text: &mut Text, t: &Theme, back: &Scrollback, editor: &Editor) {
    let (w, h) = (win.width, win.height);
    let m = t.pad;
    let mut input = Widget::new(
        1,
        Kind::TextField { focused: true },
        &format!("{PROMPT}{}", editor.line()),
    );
    let input_h = input.height(t);
    input.rect = Rect::new(m, h - m - input_h, w - 2 * m, input_h);
    let mut view = Widget::new(0, Kind::TextView { tail: true }, "").lines(back.lines().cloned().collect());
    view.rect = Rect::new(m, m, w - 2 * m, h - 3 * m - input_h);
    let mut page = Page::default();
    page.push(view);
    page.push(input);
    let mut cv = win.canvas();
    cv.fill(Rect::new(0, 0, w, h), t.bg);
    page.draw(&mut cv, text, t);
    let _ = win.present(&[Rect::new(0, 0, w, h)]);
}
