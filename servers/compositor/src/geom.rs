//! Rectangles and screen damage.

use alloc::vec::Vec;

pub use userlib::geom::Rect;

/// Most separate rectangles kept; beyond, they become their bounding box.
pub const MAX_RECTS: usize = userlib::services::display::MAX_FLUSH_RECTS;

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
