//! The control center: its cards, their layout (a rectangle, or a circle:
//! the watch), scrolling by dragging, and what a tap on each does. Shared
//! by the `control` task (its own panel surface: phone, TV, Pi 4) and by
//! `home` on the watch, which draws the panel in its face's window.
//!
//! The cards, each backed by a service and acting when tapped:
//! - This device: name (profile), uptime, memory (init's supervisor);
//! - Storage: the filesystem server's `/data` when one runs, else whether
//!   the device has a disk at all (a `blk` service);
//! - Devices nearby: this device and the devices the soft bus lists
//!   (`docs/BUS.md`), asked every [`POLL_US`]; only this device while the
//!   bus does not answer (none in the profile, or restarting). A change is
//!   logged (`nearby: ...`, the card's lines);
//! - Power: restart and power off;
//! - Tasks: the running tasks; tapping one restarts it (the profile gives
//!   the task `control`).

use alloc::vec::Vec;
use ui::canvas::Rect;
use ui::widgets::{inside_circle, Column, Page, Theme, Widget};

pub const DEVICE: u32 = 1;
pub const STORAGE: u32 = 2;
pub const POWER_RESTART: u32 = 3;
pub const POWER_OFF: u32 = 4;
pub const NEARBY: u32 = 5;
/// Task rows: TASK_BASE + task id.
pub const TASK_BASE: u32 = 1000;
/// How often the devices nearby are asked of the bus.
pub const POLL_US: u64 = 2_000_000;

/// Where the cards go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A rectangle (the panel's surface).
    Rect(Rect),
    /// Inside the circle centred at `(cx, cy)` of radius `r` (the watch).
    Circle { cx: i32, cy: i32, r: i32 },
}

/// Lays `widgets` out top to bottom in `shape`, moved up by `scroll`
/// pixels: the page of those wholly shown (in a circle: each as wide as
/// the circle is at its rows, and at least half its diameter), and how
/// far the content may scroll.
pub fn layout(t: &Theme, shape: Shape, widgets: Vec<Widget>, scroll: i32) -> (Page, i32) {
    let m = t.pad * 2;
    // The rectangle the column runs down, and shows widgets in.
    let shown = match shape {
        Shape::Rect(r) => Rect::new(r.x + m, r.y + m, r.w - 2 * m, r.h - 2 * m),
        // A quarter of the radius in from the top and bottom: rows where
        // the circle is at least ~1.3 radii wide.
        Shape::Circle { cx, cy, r } => Rect::new(cx - r + m, cy - r + r / 4, 2 * (r - m), 2 * r - r / 2),
    };
    let mut col = Column::new(shown.offset(0, -scroll), t.pad);
    let mut page = Page::default();
    let mut bottom = shown.y;
    for mut w in widgets {
        col.place(&mut w, t);
        bottom = w.rect.y + w.rect.h + scroll;
        let r = w.rect;
        if r.y < shown.y || r.y + r.h > shown.y + shown.h {
            continue;
        }
        if let Shape::Circle { cx, cy, r: radius } = shape {
            match inside_circle(r, cx, cy, radius - t.pad) {
                Some(n) if n.w >= radius => w.rect = n,
                _ => continue,
            }
        }
        page.push(w);
    }
    (page, (bottom - (shown.y + shown.h)).max(0))
}

/// What a touch on the panel came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    /// Nothing to do.
    Nothing,
    /// The content moved: draw again.
    Scrolled,
    /// A tap (no drag) at this point.
    Tap(i32, i32),
}

/// A drag scrolls the panel; a touch that stays within `slop` pixels of
/// where it went down is a tap.
#[derive(Default)]
pub struct Drag {
    /// Where the touch went down and the scroll then.
    start: Option<(i32, i32)>,
    dragging: bool,
    pub scroll: i32,
    /// How far the content may scroll ([`layout`]).
    pub max: i32,
}

impl Drag {
    pub fn down(&mut self, y: i32) {
        self.start = Some((y, self.scroll));
        self.dragging = false;
    }

    pub fn moved(&mut self, y: i32, slop: i32) -> Touch {
        let Some((y0, s0)) = self.start else {
            return Touch::Nothing;
        };
        if (y - y0).abs() > slop {
            self.dragging = true;
        }
        if !self.dragging {
            return Touch::Nothing;
        }
        let s = (s0 - (y - y0)).clamp(0, self.max.max(0));
        if s == self.scroll {
            return Touch::Nothing;
        }
        self.scroll = s;
        Touch::Scrolled
    }

    /// The touch ends at `(x, y)`: a tap unless it dragged (an up
    /// without a down is a tap).
    pub fn up(&mut self, x: i32, y: i32, slop: i32) -> Touch {
        let t = match self.moved(y, slop) {
            _ if !self.dragging => Touch::Tap(x, y),
            Touch::Scrolled => Touch::Scrolled,
            _ => Touch::Nothing,
        };
        self.start = None;
        self.dragging = false;
        t
    }
}

#[cfg(not(test))]
pub use live::Panel;

#[cfg(not(test))]
mod live {
    //! The cards' contents, from the services (not on the host).
    use super::*;
    use crate::{mib, sys, uptime_text};
    use alloc::format;
    use alloc::string::String;
    use alloc::vec;
    use ui::canvas::{rgb, Canvas};
    use ui::text::Text;
    use ui::widgets::Kind;
    use userlib::ipc::Timeout;
    use userlib::names::supervisor;
    use userlib::proto::TaskState;
    use userlib::services::bus;
    use userlib::services::compositor::{Event, EV_TOUCH_DOWN, EV_TOUCH_MOVE, EV_TOUCH_UP};
    use userlib::syscall;

    /// The panel's state: what it shows and where it is scrolled to.
    pub struct Panel {
        profile: String,
        nearby: Vec<String>,
        /// The outcome of the last action (shown under the tasks).
        pub note: String,
        next_poll: u64,
        pub drag: Drag,
        pub page: Page,
    }

    impl Default for Panel {
        fn default() -> Panel {
            Panel::new()
        }
    }

    impl Panel {
        pub fn new() -> Panel {
            Panel {
                profile: sys::profile(),
                nearby: Vec::new(),
                note: String::new(),
                next_poll: 0,
                drag: Drag::default(),
                page: Page::default(),
            }
        }

        /// Asks the bus for the devices nearby when it is time: true when
        /// they changed. Returns with the next time to ask in `next_poll`.
        pub fn poll(&mut self) -> bool {
            let now = syscall::now_us();
            if now < self.next_poll {
                return false;
            }
            self.next_poll = now + POLL_US;
            let lines = nearby_lines(&self.profile);
            if lines == self.nearby {
                return false;
            }
            userlib::log::info!("nearby: {}", lines.join(" | "));
            self.nearby = lines;
            true
        }

        /// When [`Panel::poll`] next asks the bus (`syscall::now_us` time).
        pub fn next_poll(&self) -> u64 {
            self.next_poll
        }

        /// Reads the cards' figures again and lays them out in `shape`
        /// (keyboard focus on widget `focus`).
        pub fn build(&mut self, t: &Theme, shape: Shape, focus: Option<usize>) {
            let widgets = cards(&self.profile, &self.nearby, &self.note);
            let (mut page, max) = layout(t, shape, widgets, self.drag.scroll);
            page.focus = focus;
            self.drag.max = max;
            self.page = page;
        }

        /// Draws the built page: over a translucent veil (a rectangle:
        /// what is below shows through), or on a dark disc (a circle),
        /// black outside it.
        pub fn draw(&self, cv: &mut Canvas, text: &mut Text, t: &Theme, shape: Shape) {
            let all = cv.bounds();
            match shape {
                Shape::Rect(_) => cv.fill(all, 0xe008_0c10),
                Shape::Circle { cx, cy, r } => {
                    cv.fill(all, rgb(0));
                    cv.circle(cx, cy, r, rgb(0x0a0f14));
                }
            }
            self.page.draw(cv, text, t);
        }

        /// A touch event: drags scroll, a tap gives the widget under it
        /// (`Some(None)`: a tap on no card).
        pub fn touch(&mut self, t: &Theme, e: &Event) -> Option<Option<u32>> {
            let (x, y) = e.xy();
            let slop = t.size as i32;
            let r = match e.kind {
                EV_TOUCH_DOWN => {
                    self.drag.down(y);
                    Touch::Nothing
                }
                EV_TOUCH_MOVE => self.drag.moved(y, slop),
                EV_TOUCH_UP => self.drag.up(x, y, slop),
                _ => Touch::Nothing,
            };
            match r {
                Touch::Tap(x, y) => Some(self.page.hit(x, y).map(|w| w.id)),
                // Scrolled: no widget, but a redraw (the caller redraws
                // after any event).
                _ => None,
            }
        }

        /// Does what tapping (or Enter on) widget `id` does.
        pub fn act(&mut self, id: u32) {
            match id {
                id if id >= TASK_BASE => {
                    let task = format!("{}", id - TASK_BASE);
                    self.note = match supervisor::restart(&task) {
                        Ok(()) => format!("restarted task {task}"),
                        Err(e) => format!("restart {task}: {e:?}"),
                    };
                    userlib::log::info!("{}", self.note);
                }
                POWER_RESTART => self.note = format!("restart: {:?}", supervisor::power(true)),
                POWER_OFF => self.note = format!("power off: {:?}", supervisor::power(false)),
                _ => {}
            }
        }
    }

    /// The Devices nearby card's lines: this device, then the devices the
    /// bus lists (name, profile, how many services each shares); this
    /// device only while the bus does not answer. At once: no wait for a
    /// bus not yet registered.
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

    /// The panel's widgets, top to bottom.
    fn cards(profile: &str, nearby: &[String], note: &str) -> Vec<Widget> {
        let (used, total) = sys::memory();
        let services = supervisor::services().unwrap_or_default();
        let has = |name: &str| services.iter().any(|(_, n)| n.split(' ').next() == Some(name));
        let storage = if has("fs") {
            "/data: served by fs"
        } else if has("blk") {
            "/data: no filesystem server"
        } else {
            "no storage on this device"
        };
        let mut v = vec![
            Widget::new(0, Kind::Label { big: true, dim: false }, "Control center"),
            Widget::new(DEVICE, Kind::Card, "This device").lines(vec![
                format!("Kestrel {profile}"),
                format!("up {}", uptime_text(syscall::now_us())),
                format!("memory {} of {}", mib(used), mib(total)),
            ]),
            Widget::new(STORAGE, Kind::Card, "Storage").lines(vec![storage.into()]),
            Widget::new(NEARBY, Kind::Card, "Devices nearby").lines(nearby.to_vec()),
            Widget::new(POWER_RESTART, Kind::Button, "Restart"),
            Widget::new(POWER_OFF, Kind::Button, "Power off"),
            Widget::new(0, Kind::Label { big: false, dim: true }, "Tasks (tap to restart)"),
        ];
        let tasks: Vec<_> = supervisor::tasks().unwrap_or_default();
        for task in tasks.iter().filter(|t| t.state == TaskState::Running) {
            let label = format!("{}  {}  restarts {}", task.id, task.name, task.restarts);
            v.push(Widget::new(TASK_BASE + task.id as u32, Kind::ListItem, &label));
        }
        if !note.is_empty() {
            v.push(Widget::new(0, Kind::Label { big: false, dim: true }, note));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use ui::widgets::Kind;

    fn rows(n: u32) -> Vec<Widget> {
        (0..n)
            .map(|i| Widget::new(TASK_BASE + i, Kind::ListItem, "x"))
            .collect()
    }

    #[test]
    fn rect_layout_scrolls_what_does_not_fit() {
        let t = Theme::for_density(80);
        let shape = Shape::Rect(Rect::new(0, 0, 540, 400));
        let (p, max) = layout(&t, shape, rows(4), 0);
        assert_eq!((p.widgets.len(), max), (4, 0), "all fit: no scroll");
        let (p, max) = layout(&t, shape, rows(20), 0);
        let row = t.line() + t.pad + t.pad;
        assert_eq!(p.widgets.len(), (360 / row) as usize);
        assert_eq!(p.widgets[0].rect, Rect::new(20, 20, 500, t.line() + t.pad));
        assert!(max > 0);
        let (p, _) = layout(&t, shape, rows(20), max);
        assert_eq!(
            p.widgets.last().map(|w| w.id),
            Some(TASK_BASE + 19),
            "scrolled to the end"
        );
    }

    #[test]
    fn circle_layout_keeps_everything_inside() {
        let t = Theme::for_density(60);
        let (cx, cy, r) = (227, 227, 227);
        let shape = Shape::Circle { cx, cy, r };
        let mut ws = vec![Widget::new(DEVICE, Kind::Card, "This device").lines(vec!["a".into(); 3])];
        ws.extend(rows(12));
        let (p, max) = layout(&t, shape, ws.clone(), 0);
        assert!(max > 0, "twelve rows and a card do not fit");
        assert_eq!(p.widgets[0].id, DEVICE);
        for s in [0, max / 2, max] {
            let (p, _) = layout(&t, shape, ws.clone(), s);
            assert!(!p.widgets.is_empty());
            for w in &p.widgets {
                let q = w.rect;
                for (x, y) in [(q.x, q.y), (q.x + q.w, q.y), (q.x, q.y + q.h), (q.x + q.w, q.y + q.h)] {
                    let (dx, dy) = (x - cx, y - cy);
                    assert!(dx * dx + dy * dy <= r * r, "{q:?} leaves the circle");
                }
                assert!(q.w >= r);
            }
        }
        let (p, _) = layout(&t, shape, ws, max);
        assert_eq!(p.widgets.last().map(|w| w.id), Some(TASK_BASE + 11));
    }

    #[test]
    fn drag_scrolls_and_taps_stay_taps() {
        let mut d = Drag {
            max: 100,
            ..Drag::default()
        };
        d.down(200);
        assert_eq!(d.moved(205, 15), Touch::Nothing, "within the slop");
        assert_eq!(d.up(50, 205, 15), Touch::Tap(50, 205));
        d.down(300);
        assert_eq!(d.moved(250, 15), Touch::Scrolled);
        assert_eq!(d.scroll, 50);
        assert_eq!(d.moved(100, 15), Touch::Scrolled);
        assert_eq!(d.scroll, 100, "clamped at the end");
        assert_eq!(d.up(50, 100, 15), Touch::Nothing, "a drag is no tap");
        d.down(100);
        assert_eq!(d.up(60, 400, 15), Touch::Scrolled);
        assert_eq!(d.scroll, 0);
        assert_eq!(d.up(7, 8, 15), Touch::Tap(7, 8), "an up without a down");
    }
}
