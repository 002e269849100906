//! Rectangles on a screen or in a pixel buffer, shared by the compositor
//! (damage, composition) and the UI kit (layout, drawing).

/// A rectangle; `w`/`h` of 0 or less is empty. Positions may be negative.
/// Edges saturate instead of overflowing.
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

    /// Shrunk by `d` on every side (empty if nothing is left).
    pub fn inset(&self, d: i32) -> Rect {
        Rect::new(
            self.x.saturating_add(d),
            self.y.saturating_add(d),
            self.w.saturating_sub(d.saturating_mul(2)).max(0),
            self.h.saturating_sub(d.saturating_mul(2)).max(0),
        )
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
        assert_eq!(a.inset(2), Rect::new(2, 2, 6, 6));
        assert!(a.inset(6).is_empty());
        // Extreme values do not overflow.
        let huge = Rect::new(i32::MAX - 1, 0, i32::MAX, 5);
        assert!(a.intersect(&huge).is_empty());
    }
}
