//! Widgets: label, button, list item, card, text field and tile, placed by
//! a column or grid layout; a [`Page`] holds them, draws them, finds the
//! one under a touch and moves keyboard focus (arrow keys and Enter, the
//! TV's remote).

use crate::canvas::{rgb, Canvas, Rect};
use crate::text::Text;
use alloc::string::String;
use alloc::vec::Vec;

/// Colours and sizes, from the display's density (pixels per 10 mm).
#[derive(Clone, Copy, Debug)]
pub struct Theme {
    pub bg: u32,
    pub card: u32,
    pub text: u32,
    pub dim: u32,
    pub accent: u32,
    pub focus: u32,
    /// Body and title text sizes, pixels.
    pub size: u16,
    pub title: u16,
    pub pad: i32,
    pub radius: i32,
}

impl Theme {
    pub fn for_density(density: u32) -> Theme {
        let size = (density / 4).clamp(12, 64) as u16;
        Theme {
            bg: rgb(0x101820),
            card: rgb(0x223040),
            text: rgb(0xf0f4f8),
            dim: rgb(0x9aa8b8),
            accent: rgb(0x2f6fde),
            focus: rgb(0xffc040),
            size,
            title: size * 3 / 2,
            pad: size as i32 / 2,
            radius: size as i32 / 2,
        }
    }

    /// Height of one line of body text.
    pub fn line(&self) -> i32 {
        self.size as i32 * 5 / 4
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Text; `big` for titles.
    Label {
        big: bool,
        dim: bool,
    },
    Button,
    /// A card: the text is its title, then `lines`.
    Card,
    ListItem,
    TextField {
        focused: bool,
    },
    /// A home-screen tile: a coloured square with the text under it.
    Tile {
        colour: u32,
    },
    /// Lines of text (`lines`), wrapped to the width: the first rows that
    /// fit, or the last ones with `tail` (a terminal's scrollback).
    TextView {
        tail: bool,
    },
}

#[derive(Clone, Debug)]
pub struct Widget {
    /// The app's name for it (what [`Page::hit`] returns).
    pub id: u32,
    pub kind: Kind,
    pub text: String,
    pub lines: Vec<String>,
    pub rect: Rect,
}

impl Widget {
    pub fn new(id: u32, kind: Kind, text: &str) -> Widget {
        Widget {
            id,
            kind,
            text: text.into(),
            lines: Vec::new(),
            rect: Rect::default(),
        }
    }

    pub fn lines(mut self, lines: Vec<String>) -> Widget {
        self.lines = lines;
        self
    }

    fn focusable(&self) -> bool {
        !matches!(self.kind, Kind::Label { .. } | Kind::TextView { .. })
    }

    /// The height it wants at `theme`.
    pub fn height(&self, t: &Theme) -> i32 {
        match self.kind {
            Kind::Label { big: true, .. } => t.title as i32 * 5 / 4,
            Kind::Label { .. } => t.line(),
            Kind::Button | Kind::TextField { .. } => t.line() + 2 * t.pad,
            Kind::ListItem => t.line() + t.pad,
            Kind::Card => t.line() * (1 + self.lines.len() as i32) + 2 * t.pad,
            Kind::Tile { .. } => t.size as i32 * 4 + t.line(),
            Kind::TextView { .. } => t.line() * self.lines.len() as i32,
        }
    }
}

/// Places widgets top to bottom in `area`, `gap` apart.
pub struct Column {
    area: Rect,
    y: i32,
    gap: i32,
}

impl Column {
    pub fn new(area: Rect, gap: i32) -> Column {
        Column { area, y: area.y, gap }
    }

    pub fn place(&mut self, w: &mut Widget, t: &Theme) {
        let h = w.height(t);
        w.rect = Rect::new(self.area.x, self.y, self.area.w, h);
        self.y += h + self.gap;
    }

    /// Room left below.
    pub fn remaining(&self) -> i32 {
        self.area.y + self.area.h - self.y
    }
}

/// `r` narrowed, about `cx`, to what of its rows lies inside the circle
/// centred at `(cx, cy)` of radius `radius` (its four corners inside);
/// `None` when its rows leave the circle. A round screen's layout (the
/// watch) places widgets with it.
pub fn inside_circle(r: Rect, cx: i32, cy: i32, radius: i32) -> Option<Rect> {
    let far = (r.y - cy).abs().max((r.y + r.h - cy).abs());
    if far >= radius {
        return None;
    }
    let half = ((radius * radius - far * far) as u32).isqrt() as i32;
    let x0 = r.x.max(cx - half);
    let x1 = (r.x + r.w).min(cx + half);
    (x1 > x0).then(|| Rect::new(x0, r.y, x1 - x0, r.h))
}

/// `n` cells of `cols` columns in `area`, each `cell_h` high, `gap` apart.
pub fn grid(area: Rect, cols: i32, cell_h: i32, gap: i32, n: usize) -> Vec<Rect> {
    let cols = cols.max(1);
    let cw = (area.w - gap * (cols - 1)) / cols;
    (0..n as i32)
        .map(|i| {
            let (c, r) = (i % cols, i / cols);
            Rect::new(area.x + c * (cw + gap), area.y + r * (cell_h + gap), cw, cell_h)
        })
        .collect()
}

/// The widgets of one screen.
#[derive(Default)]
pub struct Page {
    pub widgets: Vec<Widget>,
    /// Keyboard focus (index into `widgets`), shown with a ring.
    pub focus: Option<usize>,
}

impl Page {
    pub fn push(&mut self, w: Widget) {
        self.widgets.push(w);
    }

    /// The focusable widget under `(x, y)`.
    pub fn hit(&self, x: i32, y: i32) -> Option<&Widget> {
        self.widgets
            .iter()
            .rev()
            .find(|w| w.focusable() && w.rect.contains_point(x, y))
    }

    /// Moves focus by `delta` among the focusable widgets (wrapping).
    pub fn move_focus(&mut self, delta: i32) {
        let f: Vec<usize> = (0..self.widgets.len())
            .filter(|i| self.widgets[*i].focusable())
            .collect();
        if f.is_empty() {
            return;
        }
        let cur = self.focus.and_then(|i| f.iter().position(|x| *x == i));
        let n = f.len() as i32;
        let next = match cur {
            None => 0,
            Some(c) => (c as i32 + delta).rem_euclid(n),
        };
        self.focus = Some(f[next as usize]);
    }

    pub fn focused(&self) -> Option<&Widget> {
        self.widgets.get(self.focus?)
    }

    pub fn draw(&self, cv: &mut Canvas, text: &mut Text, t: &Theme) {
        for (i, w) in self.widgets.iter().enumerate() {
            draw_widget(cv, text, t, w);
            if self.focus == Some(i) {
                ring(cv, w.rect, t);
            }
        }
    }
}

fn ring(cv: &mut Canvas, r: Rect, t: &Theme) {
    let b = (t.pad / 3).max(2);
    cv.fill(Rect::new(r.x - b, r.y - b, r.w + 2 * b, b), t.focus);
    cv.fill(Rect::new(r.x - b, r.y + r.h, r.w + 2 * b, b), t.focus);
    cv.fill(Rect::new(r.x - b, r.y, b, r.h), t.focus);
    cv.fill(Rect::new(r.x + r.w, r.y, b, r.h), t.focus);
}

pub fn draw_widget(cv: &mut Canvas, text: &mut Text, t: &Theme, w: &Widget) {
    let r = w.rect;
    match w.kind {
        Kind::Label { big, dim } => {
            let size = if big { t.title } else { t.size };
            let s = text.fit(&w.text, size, r.w);
            text.draw(cv, r.x, r.y, &s, size, if dim { t.dim } else { t.text });
        }
        Kind::Button => {
            cv.round_rect(r, t.radius, t.accent);
            let s = text.fit(&w.text, t.size, r.w - 2 * t.pad);
            let tw = text.width(&s, t.size);
            text.draw(cv, r.x + (r.w - tw) / 2, r.y + t.pad, &s, t.size, t.text);
        }
        Kind::ListItem => {
            cv.fill(Rect::new(r.x, r.y + r.h - 1, r.w, 1), t.card);
            let s = text.fit(&w.text, t.size, r.w - t.pad);
            text.draw(cv, r.x + t.pad / 2, r.y + t.pad / 2, &s, t.size, t.text);
        }
        Kind::Card => {
            cv.round_rect(r, t.radius, t.card);
            let x = r.x + t.pad;
            let mut y = r.y + t.pad;
            let s = text.fit(&w.text, t.size, r.w - 2 * t.pad);
            text.draw(cv, x, y, &s, t.size, t.accent | 0xff00_0000);
            for l in &w.lines {
                y += t.line();
                let s = text.fit(l, t.size, r.w - 2 * t.pad);
                text.draw(cv, x, y, &s, t.size, t.text);
            }
        }
        Kind::TextField { focused } => {
            cv.round_rect(r, t.radius / 2, if focused { t.accent } else { t.dim });
            cv.round_rect(r.inset(2), t.radius / 2, t.bg);
            let s = text.fit(&w.text, t.size, r.w - 2 * t.pad);
            let end = text.draw(cv, r.x + t.pad, r.y + t.pad, &s, t.size, t.text);
            if focused {
                cv.fill(Rect::new(end + 1, r.y + t.pad, 2, t.line()), t.text);
            }
        }
        Kind::TextView { tail } => {
            let fit = (r.h / t.line()).max(0) as usize;
            let mut rows: Vec<String> = Vec::new();
            for l in &w.lines {
                rows.extend(text.wrap(l, t.size, r.w));
                if !tail && rows.len() >= fit {
                    break;
                }
            }
            let skip = if tail { rows.len().saturating_sub(fit) } else { 0 };
            for (i, row) in rows.iter().skip(skip).take(fit).enumerate() {
                text.draw(cv, r.x, r.y + i as i32 * t.line(), row, t.size, t.text);
            }
        }
        Kind::Tile { colour } => {
            let side = (r.h - t.line()).min(r.w);
            let sq = Rect::new(r.x + (r.w - side) / 2, r.y, side, side);
            cv.round_rect(sq, side / 4, rgb(colour));
            let initial: String = w.text.chars().take(1).collect();
            let iw = text.width(&initial, t.title);
            text.draw(
                cv,
                sq.x + (side - iw) / 2,
                sq.y + side / 2 - t.title as i32 * 2 / 3,
                &initial,
                t.title,
                t.text,
            );
            let s = text.fit(&w.text, t.size, r.w);
            let tw = text.width(&s, t.size);
            text.draw(cv, r.x + (r.w - tw) / 2, r.y + side + 2, &s, t.size, t.text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_hit_and_focus() {
        let t = Theme::for_density(80);
        let mut p = Page::default();
        let mut col = Column::new(Rect::new(10, 10, 200, 500), 8);
        for (i, k) in [
            Kind::Label { big: true, dim: false },
            Kind::Button,
            Kind::Card,
            Kind::ListItem,
        ]
        .into_iter()
        .enumerate()
        {
            let mut w = Widget::new(i as u32, k, "x").lines(alloc::vec!["a".into(), "b".into()]);
            col.place(&mut w, &t);
            p.push(w);
        }
        let b = p.widgets[1].rect;
        assert!(b.y > p.widgets[0].rect.y + p.widgets[0].rect.h - 1);
        assert_eq!(p.hit(b.x + 1, b.y + 1).map(|w| w.id), Some(1));
        assert_eq!(p.hit(15, 12).map(|w| w.id), None, "labels are not targets");
        assert_eq!(p.hit(500, 500).map(|w| w.id), None);
        p.move_focus(1);
        assert_eq!(p.focused().map(|w| w.id), Some(1));
        p.move_focus(-1);
        assert_eq!(p.focused().map(|w| w.id), Some(3), "wraps");
        let cells = grid(Rect::new(0, 0, 300, 1000), 3, 100, 10, 5);
        assert_eq!(cells[4], Rect::new(103, 110, 93, 100));
    }

    #[test]
    fn circle_fit() {
        // The middle row of a 100-radius circle: its whole diameter.
        assert_eq!(
            inside_circle(Rect::new(0, 95, 500, 10), 100, 100, 100),
            Some(Rect::new(1, 95, 198, 10))
        );
        // 60 below the centre: 80 either side.
        assert_eq!(
            inside_circle(Rect::new(50, 150, 400, 10), 100, 100, 100),
            Some(Rect::new(50, 150, 130, 10))
        );
        assert_eq!(inside_circle(Rect::new(0, 195, 200, 10), 100, 100, 100), None);
        assert_eq!(inside_circle(Rect::new(0, -20, 200, 30), 100, 100, 100), None);
    }
}
