//! Drawing into a BGRX8888 framebuffer: filled rectangles, anti-aliased
//! text and the boot splash. Pure (tested on the host); every write is
//! clipped to the screen and the buffer, so no request can make it panic.

use noto_sans_mono_bitmap::{get_raster, get_raster_width, FontWeight, RasterHeight};
use userlib::services::display::{pixel, Rect};

const WEIGHT: FontWeight = FontWeight::Bold;
const SIZE: RasterHeight = RasterHeight::Size16;

/// A screen of `height` rows of `width` pixels; `buf` holds its rows
/// from `top` on (all of them, or a band), `stride` bytes apart. Drawing
/// outside those rows does nothing.
pub struct Canvas<'a> {
    pub buf: &'a mut [u8],
    pub width: u32,
    pub height: u32,
    pub stride: usize,
    /// The screen row of `buf`'s first row.
    pub top: u32,
}

impl Canvas<'_> {
    /// Byte offset of pixel (x, y), if it is on the screen and in the buffer.
    fn at(&self, x: u32, y: u32) -> Option<usize> {
        let o = (y.checked_sub(self.top)? as usize) * self.stride + x as usize * 4;
        (x < self.width && y < self.height && o + 4 <= self.buf.len()).then_some(o)
    }

    /// The colour `0xRRGGBB` at (x, y) (0 off the screen).
    pub fn get(&self, x: u32, y: u32) -> u32 {
        self.at(x, y)
            .map(|o| u32::from_le_bytes([self.buf[o], self.buf[o + 1], self.buf[o + 2], 0]))
            .unwrap_or(0)
    }

    fn put(&mut self, x: u32, y: u32, rgb: u32) {
        if let Some(o) = self.at(x, y) {
            self.buf[o..o + 4].copy_from_slice(&pixel(rgb).to_le_bytes());
        }
    }

    /// Fills `r` (cut to the screen) with `0xRRGGBB`.
    pub fn fill(&mut self, r: Rect, rgb: u32) {
        let px = pixel(rgb).to_le_bytes();
        let x_end = r.x.saturating_add(r.w).min(self.width);
        let y_end = r.y.saturating_add(r.h).min(self.height);
        if r.x >= x_end {
            return;
        }
        for y in r.y.max(self.top)..y_end {
            let start = (y - self.top) as usize * self.stride + r.x as usize * 4;
            let end = start + (x_end - r.x) as usize * 4;
            let Some(row) = self.buf.get_mut(start..end) else {
                return;
            };
            for p in row.chunks_exact_mut(4) {
                p.copy_from_slice(&px);
            }
        }
    }

    /// Width in pixels of `text` in the splash font, magnified `scale` times.
    pub fn text_width(text: &str, scale: u32) -> u32 {
        (text.chars().count() * get_raster_width(WEIGHT, SIZE)) as u32 * scale
    }

    /// Height in pixels of a line of text, magnified `scale` times.
    pub fn text_height(scale: u32) -> u32 {
        SIZE.val() as u32 * scale
    }

    /// Draws `text` with its top-left corner at (x, y) in `0xRRGGBB`, each
    /// font pixel a `scale` x `scale` square, blended over what is there;
    /// characters the font lacks show as `?`.
    pub fn text(&mut self, x: u32, y: u32, text: &str, rgb: u32, scale: u32) {
        let scale = scale.max(1);
        let advance = get_raster_width(WEIGHT, SIZE) as u32 * scale;
        for (i, c) in text.chars().enumerate() {
            let Some(glyph) = get_raster(c, WEIGHT, SIZE).or_else(|| get_raster('?', WEIGHT, SIZE)) else {
                continue;
            };
            let gx = x.saturating_add(advance.saturating_mul(i as u32));
            for (dy, row) in glyph.rows().enumerate() {
                for (dx, &a) in row.iter().enumerate() {
                    if a == 0 {
                        continue;
                    }
                    for sy in 0..scale {
                        for sx in 0..scale {
                            let px = gx.saturating_add(dx as u32 * scale + sx);
                            let py = y.saturating_add(dy as u32 * scale + sy);
                            let under = self.get(px, py);
                            self.put(px, py, blend(under, rgb, a));
                        }
                    }
                }
            }
        }
    }
}

/// `fg` over `bg` with coverage `a` (0..=255), per channel.
pub fn blend(bg: u32, fg: u32, a: u8) -> u32 {
    let a = a as u32;
    let ch = |shift: u32| {
        let (b, f) = ((bg >> shift) & 0xff, (fg >> shift) & 0xff);
        ((b * (255 - a) + f * a + 127) / 255) << shift
    };
    ch(16) | ch(8) | ch(0)
}

pub const BACKGROUND: u32 = 0x10_18_20;
pub const BAND: u32 = 0x2f_6f_de;
pub const ACCENT: u32 = 0x8f_b8_ff;
pub const TITLE: u32 = 0xff_ff_ff;
pub const SUBTITLE: u32 = 0x9a_a4_b0;

/// The boot splash: a dark background, a band across the middle with
/// `title` centred in it, and "Kestrel" under it (unless that is the title).
/// Text grows with the screen (one font size, magnified).
pub fn splash(c: &mut Canvas, title: &str) {
    let (w, h) = (c.width, c.height);
    let scale = (w / 200).clamp(1, 4);
    c.fill(Rect { x: 0, y: 0, w, h }, BACKGROUND);
    let th = Canvas::text_height(scale);
    let band_h = (h / 6).max(th + 16).min(h);
    let band_y = (h - band_h) / 2;
    c.fill(
        Rect {
            x: 0,
            y: band_y,
            w,
            h: band_h,
        },
        BAND,
    );
    c.fill(
        Rect {
            x: 0,
            y: band_y + band_h,
            w,
            h: 4,
        },
        ACCENT,
    );
    // Cut the title to what fits (monospace: a character count).
    let advance = Canvas::text_width("x", scale).max(1);
    let fits = (w.saturating_sub(16) / advance) as usize;
    let title: &str = match title.char_indices().nth(fits) {
        Some((i, _)) => &title[..i],
        None => title,
    };
    let centred = |t: &str, s: u32| w.saturating_sub(Canvas::text_width(t, s)) / 2;
    c.text(
        centred(title, scale),
        band_y + band_h.saturating_sub(th) / 2,
        title,
        TITLE,
        scale,
    );
    if title != "Kestrel" {
        let s = (scale / 2).max(1);
        c.text(
            centred("Kestrel", s),
            band_y + band_h + 4 + th / 2,
            "Kestrel",
            SUBTITLE,
            s,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canvas(buf: &mut [u8], w: u32, h: u32) -> Canvas<'_> {
        Canvas {
            buf,
            width: w,
            height: h,
            stride: w as usize * 4,
            top: 0,
        }
    }

    #[test]
    fn fill_stays_inside_the_rectangle_and_the_screen() {
        let mut buf = vec![0u8; 10 * 8 * 4];
        let mut c = canvas(&mut buf, 10, 8);
        c.fill(Rect { x: 2, y: 3, w: 3, h: 2 }, 0x123456);
        assert_eq!(c.get(2, 3), 0x123456);
        assert_eq!(c.get(4, 4), 0x123456);
        assert_eq!(c.get(5, 4), 0);
        assert_eq!(c.get(2, 5), 0);
        assert_eq!(c.get(1, 3), 0);
        // Past every edge, and rectangles whose ends overflow: clipped.
        c.fill(
            Rect {
                x: 8,
                y: 7,
                w: u32::MAX,
                h: u32::MAX,
            },
            0xabcdef,
        );
        assert_eq!((c.get(9, 7), c.get(7, 7)), (0xabcdef, 0));
        c.fill(
            Rect {
                x: 50,
                y: 0,
                w: 1,
                h: 1,
            },
            0xffffff,
        );
        assert_eq!(&buf[3 * 40 + 2 * 4..][..4], &[0x56, 0x34, 0x12, 0xff], "BGRX bytes");
    }

    #[test]
    fn a_short_buffer_is_never_overrun() {
        let mut buf = vec![0u8; 10 * 4 * 3 + 8];
        let mut c = canvas(&mut buf, 10, 8);
        c.fill(
            Rect {
                x: 0,
                y: 0,
                w: 10,
                h: 8,
            },
            0xffffff,
        );
        c.text(0, 0, "overrun", 0xffffff, 3);
        assert_eq!(c.get(9, 2), 0xffffff);
        // The row the buffer ends in is left alone.
        assert_eq!(c.get(0, 3), 0);
    }

    #[test]
    fn blending() {
        assert_eq!(blend(0x000000, 0xffffff, 255), 0xffffff);
        assert_eq!(blend(0x000000, 0xffffff, 0), 0);
        assert_eq!(blend(0x0000ff, 0xff0000, 128), 0x80_00_7f);
    }

    #[test]
    fn splash_draws_band_and_title() {
        let (w, h) = (454u32, 454u32);
        let mut buf = vec![0u8; (w * h * 4) as usize];
        let mut c = canvas(&mut buf, w, h);
        splash(&mut c, "watch");
        assert_eq!(c.get(0, 0), BACKGROUND);
        assert_eq!(c.get(0, h / 2), BAND);
        // Some title pixels are (nearly) white in the band's middle.
        let lit = (0..w).filter(|&x| c.get(x, h / 2) == TITLE).count();
        assert!(lit > 5, "{lit} title pixels");
        // A title wider than the screen is cut, not drawn off it.
        let mut small = vec![0u8; 40 * 60 * 4];
        splash(&mut canvas(&mut small, 40, 60), "a very long profile name");
    }

    #[test]
    fn a_splash_drawn_band_by_band_is_the_whole_one() {
        let (w, h, rows) = (454u32, 454u32, 32u32);
        let mut whole = vec![0u8; (w * h * 4) as usize];
        splash(&mut canvas(&mut whole, w, h), "watch");
        let mut band = vec![0u8; (w * rows * 4) as usize];
        for top in (0..h).step_by(rows as usize) {
            band.fill(0);
            let mut c = Canvas {
                buf: &mut band,
                width: w,
                height: h,
                stride: w as usize * 4,
                top,
            };
            splash(&mut c, "watch");
            // Off its rows a band reads 0 and takes no writes.
            let above = top.checked_sub(1).map_or(0, |y| c.get(0, y));
            assert_eq!(above | c.get(0, top + rows), 0);
            let n = (rows.min(h - top) * w * 4) as usize;
            let at = (top * w * 4) as usize;
            assert_eq!(&band[..n], &whole[at..at + n], "rows {top}..");
        }
    }
}
