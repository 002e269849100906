//! Rectangles and screen damage.

use alloc::vec::Vec;

/// A rectangle; `w`/`h` of 0 is empty. Positions may be negative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

impl Rect {
    pub const fn new(x: i32, y: i32, w: i32, h: i32) -> Rect {
        Rect { x, y, w, h }
    }

    pub fn is_empty(&self) -> bool {
        self.w <= 0 || self.h <= 0
    }

    pub fn right(&self) -> i32 {
        self.x.saturating_add(self.w)
    }

    pub fn bottom(&self) -> i32 {
        self.y.saturating_add(self.h)
    }

    /// The common part (empty if none).
    pub fn intersect(&self, o: &Rect) -> Rect {
        let x = self.x.max(o.x);
        let y = self.y.max(o.y);
        let r = self.right().min(o.right());
        let b = self.bottom().min(o.bottom());
        if r <= x || b <= y {
            Rect::default()
        } else {
            Rect::new(x, y, r - x, b - y)
        }
    }

    /// The smallest rectangle holding both (an empty one adds nothing).
    pub fn union(&self, o: &Rect) -> Rect {
        if self.is_empty() {
            return *o;
        }
        if o.is_empty() {
            return *self;
        }
        let x = self.x.min(o.x);
        let y = self.y.min(o.y);
        Rect::new(x, y, self.right().max(o.right()) - x, self.bottom().max(o.bottom()) - y)
    }

    pub fn contains(&self, o: &Rect) -> bool {
        o.x >= self.x && o.y >= self.y && o.right() <= self.right() && o.bottom() <= self.bottom()
    }

    pub fn contains_point(&self, x: i32, y: i32) -> bool {
        x >= self.x && y >= self.y && x < self.right() && y < self.bottom()
    }

    pub fn offset(&self, dx: i32, dy: i32) -> Rect {
        Rect::new(self.x.saturating_add(dx), self.y.saturating_add(dy), self.w, self.h)
    }

    pub fn area(&self) -> i64 {
        if self.is_empty() {
            0
        } else {
            self.w as i64 * self.h as i64
        }
    }
}

/// Most separate rectangles kept; beyond, they become their bounding box.
pub const MAX_RECTS: usize = 8;

/// The parts of the screen to recompose and flush: a short list of
/// rectangles inside the screen. Overlapping ones merge when the merge
/// costs little, so no pixel is composed twice for one frame.
#[derive(Clone, Debug, Default)]
pub struct Damage {
    rects: Vec<Rect>,
    screen: Rect,
}

impl Damage {
    pub fn new(width: i32, height: i32) -> Damage {
        Damage {
            rects: Vec::new(),
            screen: Rect::new(0, 0, width, height),
        }
    }

    pub fn add(&mut self, r: Rect) {
        let mut r = r.intersect(&self.screen);
        if r.is_empty() {
            return;
        }
        // Merge with every rectangle it overlaps (repeat: a merge can make
        // new overlaps).
        while let Some(i) = self.rects.iter().position(|o| !o.intersect(&r).is_empty()) {
            r = r.union(&self.rects.swap_remove(i));
        }
        self.rects.push(r);
        if self.rects.len() > MAX_RECTS {
            let all = self.rects.iter().fold(Rect::default(), |a, b| a.union(b));
            self.rects.clear();
            self.rects.push(all);
        }
    }

    pub fn rects(&self) -> &[Rect] {
        &self.rects
    }

    pub fn is_empty(&self) -> bool {
        self.rects.is_empty()
    }

    pub fn take(&mut self) -> Vec<Rect> {
        core::mem::take(&mut self.rects)
    }

    /// Pixels to compose.
    pub fn area(&self) -> i64 {
        self.rects.iter().map(Rect::area).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intersections_and_unions() {
        let a = Rect::new(0, 0, 10, 10);
        assert_eq!(a.intersect(&Rect::new(5, 5, 10, 10)), Rect::new(5, 5, 5, 5));
        assert!(
            a.intersect(&Rect::new(10, 0, 5, 5)).is_empty(),
            "touching edges share nothing"
        );
        assert_eq!(a.union(&Rect::new(20, 20, 1, 1)), Rect::new(0, 0, 21, 21));
        assert_eq!(Rect::default().union(&a), a);
        assert!(a.contains(&Rect::new(2, 2, 8, 8)));
        assert!(!a.contains(&Rect::new(2, 2, 9, 8)));
        assert!(a.contains_point(9, 9) && !a.contains_point(10, 9));
        // Extreme values do not overflow.
        let huge = Rect::new(i32::MAX - 1, 0, i32::MAX, 5);
        assert!(a.intersect(&huge).is_empty());
    }

    #[test]
    fn damage_is_clipped_merged_and_bounded() {
        let mut d = Damage::new(100, 100);
        d.add(Rect::new(-10, -10, 20, 20));
        assert_eq!(d.rects(), &[Rect::new(0, 0, 10, 10)]);
        d.add(Rect::new(200, 0, 5, 5));
        assert_eq!(d.rects().len(), 1, "off-screen damage is dropped");
        d.add(Rect::new(5, 5, 10, 10));
        assert_eq!(d.rects(), &[Rect::new(0, 0, 15, 15)]);
        d.add(Rect::new(50, 50, 2, 2));
        assert_eq!(d.rects().len(), 2);
        assert_eq!(d.area(), 15 * 15 + 4);
        for i in 0..MAX_RECTS as i32 {
            d.add(Rect::new(20 + i * 3, 90, 1, 1));
        }
        assert_eq!(d.rects().len(), 1, "too many rectangles become their bounding box");
        assert_eq!(d.rects()[0], Rect::new(0, 0, 52, 91));
        assert_eq!(d.take().len(), 1);
        assert!(d.is_empty());
    }
}
