//! A canvas over a pixel buffer: 4-byte pixels `0xAARRGGBB` (little-endian
//! bytes B, G, R, A), premultiplied alpha, rows `stride` bytes apart. Every
//! operation is clipped to the buffer.

pub use userlib::geom::Rect;

/// An opaque colour from `0xRRGGBB`.
pub const fn rgb(c: u32) -> u32 {
    0xff00_0000 | (c & 0xff_ffff)
}

pub struct Canvas<'a> {
    pub buf: &'a mut [u8],
    pub width: i32,
    pub height: i32,
    pub stride: usize,
}

impl<'a> Canvas<'a> {
    pub fn new(buf: &'a mut [u8], width: i32, height: i32, stride: usize) -> Canvas<'a> {
        Canvas {
            buf,
            width,
            height,
            stride,
        }
    }

    pub fn bounds(&self) -> Rect {
        Rect::new(0, 0, self.width, self.height)
    }

    pub fn pixel(&self, x: i32, y: i32) -> u32 {
        let i = y as usize * self.stride + x as usize * 4;
        u32::from_le_bytes([self.buf[i], self.buf[i + 1], self.buf[i + 2], self.buf[i + 3]])
    }

    /// Sets every pixel of `r` to `argb` (no blending).
    pub fn fill(&mut self, r: Rect, argb: u32) {
        let r = r.intersect(&self.bounds());
        let px = argb.to_le_bytes();
        for y in r.y..r.y + r.h {
            let i = y as usize * self.stride + r.x as usize * 4;
            for p in self.buf[i..i + r.w as usize * 4].chunks_exact_mut(4) {
                p.copy_from_slice(&px);
            }
        }
    }

    /// Blends colour `argb` (premultiplied) scaled by `cover` (0..=255) onto
    /// pixel `(x, y)`.
    pub fn blend(&mut self, x: i32, y: i32, argb: u32, cover: u8) {
        if x < 0 || y < 0 || x >= self.width || y >= self.height || cover == 0 {
            return;
        }
        let i = y as usize * self.stride + x as usize * 4;
        let s = argb.to_le_bytes();
        let c = cover as u32;
        let sa = s[3] as u32 * c / 255;
        let inv = 255 - sa;
        for (d, sk) in self.buf[i..i + 4].iter_mut().zip(s) {
            let sk = sk as u32 * c / 255;
            *d = (sk + *d as u32 * inv / 255).min(255) as u8;
        }
    }

    /// A rectangle with corners of radius `radius`, antialiased.
    pub fn round_rect(&mut self, r: Rect, radius: i32, argb: u32) {
        let radius = radius.min(r.w / 2).min(r.h / 2).max(0);
        if radius == 0 {
            return self.fill_blend(r, argb);
        }
        // Middle band and the two side bands between the corners.
        self.fill_blend(Rect::new(r.x, r.y + radius, r.w, r.h - 2 * radius), argb);
        self.fill_blend(Rect::new(r.x + radius, r.y, r.w - 2 * radius, radius), argb);
        self.fill_blend(
            Rect::new(r.x + radius, r.y + r.h - radius, r.w - 2 * radius, radius),
            argb,
        );
        let rf = radius as f32;
        for dy in 0..radius {
            for dx in 0..radius {
                // Coverage of the pixel by the quarter circle, from the
                // distance of its centre to the corner's centre.
                let fx = rf - dx as f32 - 0.5;
                let fy = rf - dy as f32 - 0.5;
                let d = libm_sqrt(fx * fx + fy * fy);
                let cover = ((rf - d + 0.5).clamp(0.0, 1.0) * 255.0) as u8;
                let (l, t) = (r.x + dx, r.y + dy);
                let (rr, b) = (r.x + r.w - 1 - dx, r.y + r.h - 1 - dy);
                self.blend(l, t, argb, cover);
                self.blend(rr, t, argb, cover);
                self.blend(l, b, argb, cover);
                self.blend(rr, b, argb, cover);
            }
        }
    }

    /// `r` filled with `argb`, blended when it is not opaque.
    pub fn fill_blend(&mut self, r: Rect, argb: u32) {
        if argb >> 24 == 0xff {
            return self.fill(r, argb);
        }
        let r = r.intersect(&self.bounds());
        for y in r.y..r.y + r.h {
            for x in r.x..r.x + r.w {
                self.blend(x, y, argb, 255);
            }
        }
    }

    /// A filled circle, antialiased.
    pub fn circle(&mut self, cx: i32, cy: i32, radius: i32, argb: u32) {
        let rf = radius as f32;
        for y in (cy - radius).max(0)..(cy + radius).min(self.height) {
            for x in (cx - radius).max(0)..(cx + radius).min(self.width) {
                let fx = x as f32 + 0.5 - cx as f32;
                let fy = y as f32 + 0.5 - cy as f32;
                let d = libm_sqrt(fx * fx + fy * fy);
                let cover = ((rf - d + 0.5).clamp(0.0, 1.0) * 255.0) as u8;
                self.blend(x, y, argb, cover);
            }
        }
    }
}

fn libm_sqrt(v: f32) -> f32 {
    // Newton's method from a good first guess: enough for coverage.
    if v <= 0.0 {
        return 0.0;
    }
    let mut g = f32::from_bits((v.to_bits() >> 1) + 0x1fbd_1df5);
    for _ in 0..3 {
        g = 0.5 * (g + v / g);
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_clip_and_blend() {
        let mut buf = alloc::vec![0u8; 10 * 10 * 4];
        let mut c = Canvas::new(&mut buf, 10, 10, 40);
        c.fill(Rect::new(-5, -5, 8, 8), rgb(0xff0000));
        assert_eq!(c.pixel(2, 2), 0xffff_0000);
        assert_eq!(c.pixel(3, 3), 0);
        c.blend(2, 2, 0x8000_0080, 255);
        assert_eq!(c.pixel(2, 2), 0xff7f_0080);
        c.circle(5, 5, 3, rgb(0x00ff00));
        assert_eq!(c.pixel(5, 5), 0xff00_ff00);
        c.round_rect(Rect::new(0, 0, 10, 10), 4, rgb(0x0000ff));
        assert_eq!(c.pixel(5, 5), 0xff00_00ff);
        assert_ne!(c.pixel(0, 0), 0xff00_00ff, "the corner is rounded");
        assert!((libm_sqrt(2.0) - core::f32::consts::SQRT_2).abs() < 1e-3);
        assert!((libm_sqrt(900.0) - 30.0).abs() < 1e-2);
    }
}
