//! Text: DejaVu Sans (shipped in the boot archive as [`FONT_FILE`], its
//! licence in `assets/fonts/LICENSE`), rasterized with antialiasing by
//! `ab_glyph`, each (character, size) rasterized once into a bounded
//! glyph cache. Strings are UTF-8; a character the font lacks draws as
//! the font's missing-glyph box.

use crate::canvas::Canvas;
use ab_glyph::{Font as _, FontRef, PxScale, ScaleFont};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// The font's name in the boot archive.
pub const FONT_FILE: &str = "font.ttf";
/// Glyphs kept before the cache starts over.
const CACHE_GLYPHS: usize = 384;

struct Glyph {
    /// Offset of the bitmap from the pen position on the baseline.
    left: i32,
    top: i32,
    w: i32,
    h: i32,
    advance: f32,
    coverage: Vec<u8>,
}

pub struct Text {
    font: FontRef<'static>,
    cache: BTreeMap<(char, u16), Glyph>,
}

impl Text {
    /// The font in `bytes` (a TrueType file).
    pub fn from_bytes(bytes: &'static [u8]) -> Option<Text> {
        Some(Text {
            font: FontRef::try_from_slice(bytes).ok()?,
            cache: BTreeMap::new(),
        })
    }

    /// The font from the boot archive.
    #[cfg(not(test))]
    pub fn load() -> Option<Text> {
        let archive = userlib::loader::archive()?;
        let entry = userlib::cpio::Archive::new(archive).find(FONT_FILE).ok().flatten()?;
        Text::from_bytes(entry.data)
    }

    fn glyph(&mut self, c: char, size: u16) -> &Glyph {
        if self.cache.len() >= CACHE_GLYPHS && !self.cache.contains_key(&(c, size)) {
            self.cache.clear();
        }
        let font = &self.font;
        self.cache.entry((c, size)).or_insert_with(|| {
            let scale = PxScale::from(size as f32);
            let id = font.glyph_id(c);
            let advance = font.as_scaled(scale).h_advance(id);
            let g = id.with_scale_and_position(scale, ab_glyph::point(0.0, 0.0));
            match font.outline_glyph(g) {
                Some(o) => {
                    let b = o.px_bounds();
                    let (w, h) = (b.width() as i32, b.height() as i32);
                    let mut coverage = alloc::vec![0u8; (w * h).max(0) as usize];
                    o.draw(|x, y, v| {
                        let i = y as usize * w as usize + x as usize;
                        if let Some(p) = coverage.get_mut(i) {
                            *p = (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
                        }
                    });
                    Glyph {
                        left: b.min.x as i32,
                        top: b.min.y as i32,
                        w,
                        h,
                        advance,
                        coverage,
                    }
                }
                None => Glyph {
                    left: 0,
                    top: 0,
                    w: 0,
                    h: 0,
                    advance,
                    coverage: Vec::new(),
                },
            }
        })
    }

    /// Ascent (baseline below the top of the line) and line height.
    pub fn metrics(&self, size: u16) -> (i32, i32) {
        let f = self.font.as_scaled(PxScale::from(size as f32));
        (f.ascent() as i32, (f.ascent() - f.descent() + f.line_gap()) as i32)
    }

    /// Width of `s` in pixels.
    pub fn width(&mut self, s: &str, size: u16) -> i32 {
        let mut x = 0.0;
        for c in s.chars() {
            x += self.glyph(c, size).advance;
        }
        x as i32
    }

    /// Draws `s` with its line's top-left corner at `(x, y)` in `argb`;
    /// returns the pen's final x.
    pub fn draw(&mut self, cv: &mut Canvas, x: i32, y: i32, s: &str, size: u16, argb: u32) -> i32 {
        let (ascent, _) = self.metrics(size);
        let base = y + ascent;
        let mut pen = x as f32;
        for c in s.chars() {
            let g = self.glyph(c, size);
            let gx = pen as i32 + g.left;
            for row in 0..g.h {
                for col in 0..g.w {
                    let cover = g.coverage[(row * g.w + col) as usize];
                    cv.blend(gx + col, base + g.top + row, argb, cover);
                }
            }
            pen += g.advance;
        }
        pen as i32
    }

    /// The longest prefix of `s` (in whole characters) that fits `width`,
    /// with "…" when cut.
    pub fn fit(&mut self, s: &str, size: u16, width: i32) -> alloc::string::String {
        if self.width(s, size) <= width {
            return s.into();
        }
        let ell = self.glyph('…', size).advance;
        let mut out = alloc::string::String::new();
        let mut w = 0.0;
        for c in s.chars() {
            let a = self.glyph(c, size).advance;
            if w + a + ell > width as f32 {
                break;
            }
            w += a;
            out.push(c);
        }
        out.push('…');
        out
    }

    /// `s` broken into rows no wider than `width` (at spaces where a
    /// row has one, else between characters); tabs become spaces and
    /// other control characters are dropped. Every row holds at least one
    /// character, so a narrow width cannot loop.
    pub fn wrap(&mut self, s: &str, size: u16, width: i32) -> Vec<alloc::string::String> {
        let mut rows = Vec::new();
        let mut row = alloc::string::String::new();
        let mut w = 0.0;
        for c in s.chars() {
            let c = if c == '\t' { ' ' } else { c };
            if c.is_control() {
                continue;
            }
            let a = self.glyph(c, size).advance;
            let broke = w + a > width as f32 && !row.is_empty();
            while w + a > width as f32 && !row.is_empty() {
                // Break after the row's last space, if any (each pass
                // leaves a shorter row).
                let (keep, rest) = match row.rfind(' ') {
                    Some(i) if i > 0 && c != ' ' => (row[..i].into(), alloc::string::String::from(&row[i + 1..])),
                    _ => (core::mem::take(&mut row), alloc::string::String::new()),
                };
                rows.push(keep);
                row = rest;
                w = self.width(&row, size) as f32;
            }
            if broke && c == ' ' && row.is_empty() {
                continue;
            }
            row.push(c);
            w += a;
        }
        rows.push(row);
        rows
    }

    pub fn cached(&self) -> usize {
        self.cache.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canvas::{rgb, Canvas};

    fn font() -> Text {
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../assets/fonts/DejaVuSans.ttf"
        ))
        .unwrap();
        Text::from_bytes(alloc::boxed::Box::leak(bytes.into_boxed_slice())).unwrap()
    }

    #[test]
    fn text_is_antialiased_cached_and_utf8() {
        let mut t = font();
        let mut buf = alloc::vec![0u8; 200 * 40 * 4];
        let mut c = Canvas::new(&mut buf, 200, 40, 800);
        let end = t.draw(&mut c, 2, 2, "Hé ✓ 12:34", 20, rgb(0xffffff));
        assert!(end > 60 && end < 200, "{end}");
        let mut levels = std::collections::BTreeSet::new();
        for y in 0..40 {
            for x in 0..200 {
                levels.insert(c.pixel(x, y) & 0xff);
            }
        }
        assert!(levels.len() > 10, "antialiased: many grey levels, got {}", levels.len());
        let n = t.cached();
        t.draw(&mut c, 2, 2, "Hé", 20, rgb(0xffffff));
        assert_eq!(t.cached(), n, "drawn again from the cache");
        assert_eq!(t.width("", 20), 0);
        let cut = t.fit("a long line that does not fit", 20, 100);
        assert!(cut.ends_with('…') && t.width(&cut, 20) <= 100);
        let rows = t.wrap("kestrel> ls -l /data/some/long/path\tand more words here", 20, 150);
        assert!(rows.len() > 2, "{rows:?}");
        assert!(rows.iter().all(|r| t.width(r, 20) <= 150 && !r.is_empty()), "{rows:?}");
        assert_eq!(
            rows.concat().replace(' ', ""),
            "kestrel>ls-l/data/some/long/pathandmorewordshere"
        );
        assert_eq!(t.wrap("", 20, 100), alloc::vec![alloc::string::String::new()]);
        assert_eq!(t.wrap("abc", 20, 1).len(), 3, "one character a row at worst");
        // Strange input: control characters and unassigned code points draw nothing harmful.
        t.draw(&mut c, -50, -50, "\u{0}\u{10ffff}\t", 200, rgb(0));
    }
}
