//! Composition: the visible surfaces, bottom to top, into a rectangle of
//! the framebuffer. Pixels are 4 bytes, `0xAARRGGBB` little-endian (the
//! display's BGRX with alpha in the unused byte); alpha is premultiplied.

use crate::geom::Rect;
use userlib::{Error, Handle};
use zerocopy::{FromBytes, IntoBytes};

/// What the screen shows where no surface is (`0xRRGGBB`).
pub const BACKGROUND: u32 = 0x10_18_20;

/// The framebuffer.
pub struct Target<'a> {
    pub buf: &'a mut [u8],
    pub stride: usize,
    pub width: i32,
    pub height: i32,
}

/// Reads a buffer the compositor does not map (a client's memory object,
/// with `MemoryRead`): a buffer revoked meanwhile makes a read fail, never
/// the compositor fault.
pub trait ReadAt {
    /// Copies the buffer's bytes `offset..offset + dst.len()` into `dst`.
    fn read_at(&self, offset: usize, dst: &mut [u8]) -> Result<(), Error>;

    /// Copies `rows` rows of `len` bytes, the buffer's `stride` bytes
    /// apart from `offset` on, into `dst` at rows `dst_stride` bytes apart
    /// from its start (`dst` holds them: the caller's check). By default
    /// a [`read_at`](Self::read_at) per row.
    fn read_rows(
        &self,
        offset: usize,
        stride: usize,
        dst: &mut [u8],
        dst_stride: usize,
        len: usize,
        rows: usize,
    ) -> Result<(), Error> {
        for k in 0..rows {
            let d = k * dst_stride;
            self.read_at(offset + k * stride, &mut dst[d..d + len])?;
        }
        Ok(())
    }
}

/// A memory object read with [`userlib::syscall::memory_read`], a
/// rectangle in one call with [`userlib::syscall::memory_read_rows`].
pub struct Object(pub Handle);

impl ReadAt for Object {
    fn read_at(&self, offset: usize, dst: &mut [u8]) -> Result<(), Error> {
        userlib::syscall::memory_read(self.0, offset as u64, dst)
    }

    fn read_rows(
        &self,
        offset: usize,
        stride: usize,
        dst: &mut [u8],
        dst_stride: usize,
        len: usize,
        rows: usize,
    ) -> Result<(), Error> {
        let shape = userlib::syscall::Rows {
            rows,
            len,
            object_stride: stride as u64,
            buf_stride: dst_stride,
        };
        userlib::syscall::memory_read_rows(self.0, offset as u64, dst, shape)
    }
}

/// A layer's pixels: mapped in the compositor (its own memory: owned
/// buffers), or read as they are composed ([`ReadAt`], `len` bytes).
#[derive(Clone, Copy)]
pub enum Pixels<'a> {
    Mapped(&'a [u8]),
    Read(&'a dyn ReadAt, usize),
}

impl Pixels<'_> {
    pub fn len(&self) -> usize {
        match self {
            Pixels::Mapped(b) => b.len(),
            Pixels::Read(_, len) => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes `offset..offset + dst.len()` (inside [`len`](Self::len))
    /// into `dst`.
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), Error> {
        match self {
            Pixels::Mapped(b) => {
                dst.copy_from_slice(&b[offset..offset + dst.len()]);
                Ok(())
            }
            Pixels::Read(r, _) => r.read_at(offset, dst),
        }
    }

    /// As [`ReadAt::read_rows`] (inside [`len`](Self::len)).
    pub fn read_rows(
        &self,
        offset: usize,
        stride: usize,
        dst: &mut [u8],
        dst_stride: usize,
        len: usize,
        rows: usize,
    ) -> Result<(), Error> {
        match self {
            Pixels::Mapped(b) => {
                for k in 0..rows {
                    let (d, s) = (k * dst_stride, offset + k * stride);
                    dst[d..d + len].copy_from_slice(&b[s..s + len]);
                }
                Ok(())
            }
            Pixels::Read(r, _) => r.read_rows(offset, stride, dst, dst_stride, len, rows),
        }
    }
}

/// One surface's current buffer at its place on the screen.
#[derive(Clone, Copy)]
pub struct Layer<'a> {
    /// Screen position and size (the buffer's size).
    pub rect: Rect,
    pixels: Pixels<'a>,
    stride: usize,
    pub opaque: bool,
}

impl<'a> Layer<'a> {
    /// `None` unless `pixels` holds `rect.h` rows of `stride` bytes, each
    /// at least `rect.w` pixels (so composing never reads past it).
    pub fn new(rect: Rect, pixels: Pixels<'a>, stride: usize, opaque: bool) -> Option<Layer<'a>> {
        if rect.is_empty() {
            return None;
        }
        let (w, h) = (rect.w as usize, rect.h as usize);
        let need = stride.checked_mul(h - 1)?.checked_add(w.checked_mul(4)?)?;
        (stride >= w * 4 && pixels.len() >= need).then_some(Layer {
            rect,
            pixels,
            stride,
            opaque,
        })
    }
}

/// Bytes of the stack buffer that rows read through [`ReadAt`] pass
/// through where they are blended (or where the framebuffer is not RAM
/// the kernel copies into).
const SCRATCH: usize = 2048;

/// Composes `area` (clipped to the screen) from `layers` (bottom first).
/// Layers under the topmost opaque layer that covers all of `area` are
/// skipped; where no opaque layer covers, the background shows.
/// Returns the pixels written (for the benchmarks' sanity), or the index
/// of a layer that could not be read (its buffer revoked): the area is
/// then only partly composed, and the caller composes it again without
/// that layer.
///
/// An opaque layer's rows read through [`ReadAt`] go straight into the
/// target, one read for the whole rectangle ([`ReadAt::read_rows`]: one
/// `MemoryReadRows`), or one run of bytes where its rows are contiguous in
/// both (the whole width of both); their alpha bytes
/// stay as the client wrote them (the display's format ignores them, and
/// blending a layer over them does not read them). Mapped opaque rows get
/// alpha 255 on the way.
pub fn compose(t: &mut Target, layers: &[Layer], area: Rect) -> Result<u64, usize> {
    let area = area.intersect(&Rect::new(0, 0, t.width, t.height));
    if area.is_empty() || t.stride < t.width as usize * 4 || t.buf.len() < t.stride * t.height as usize {
        return Ok(0);
    }
    let start = layers
        .iter()
        .rposition(|l| l.opaque && l.rect.contains(&area))
        .unwrap_or_else(|| {
            fill(t, area, BACKGROUND);
            0
        });
    let mut written = 0;
    // Cleared once the kernel refuses to copy into the target (not RAM).
    let mut direct = true;
    for (i, l) in layers.iter().enumerate().skip(start) {
        let c = l.rect.intersect(&area);
        if c.is_empty() {
            continue;
        }
        let (cx, cw) = (c.x as usize, c.w as usize * 4);
        let sx = (c.x - l.rect.x) as usize * 4;
        let first = (c.y - l.rect.y) as usize * l.stride + sx;
        match l.pixels {
            Pixels::Mapped(pixels) => {
                for row in c.y..c.bottom() {
                    let d = row as usize * t.stride + cx * 4;
                    let s = (row - l.rect.y) as usize * l.stride + sx;
                    let (dst, src) = (&mut t.buf[d..d + cw], &pixels[s..s + cw]);
                    if l.opaque {
                        copy_opaque(dst, src);
                    } else {
                        blend(dst, src);
                    }
                }
            }
            Pixels::Read(src, _) => {
                let (d0, rows) = (c.y as usize * t.stride + cx * 4, c.h as usize);
                if l.opaque && direct {
                    // Contiguous in both (the whole width of both): one
                    // run of bytes; else one rectangle of rows.
                    let r = if cw == t.stride && cw == l.stride {
                        src.read_at(first, &mut t.buf[d0..d0 + cw * rows])
                    } else {
                        let span = (rows - 1) * t.stride + cw;
                        src.read_rows(first, l.stride, &mut t.buf[d0..d0 + span], t.stride, cw, rows)
                    };
                    match r {
                        Ok(()) => {
                            written += c.area() as u64;
                            continue;
                        }
                        Err(Error::NotMapped) => direct = false,
                        Err(_) => return Err(i),
                    }
                }
                let mut scratch = [0u8; SCRATCH];
                if cw <= SCRATCH {
                    // As many rows as the scratch holds, a read each time.
                    let per = SCRATCH / cw;
                    let mut k = 0;
                    while k < rows {
                        let n = per.min(rows - k);
                        let buf = &mut scratch[..n * cw];
                        if src.read_rows(first + k * l.stride, l.stride, buf, cw, cw, n).is_err() {
                            return Err(i);
                        }
                        for (j, part) in buf.chunks_exact(cw).enumerate() {
                            let d = d0 + (k + j) * t.stride;
                            let dst = &mut t.buf[d..d + cw];
                            if l.opaque {
                                copy_pixels(dst, part);
                            } else {
                                blend(dst, part);
                            }
                        }
                        k += n;
                    }
                } else {
                    for k in 0..rows {
                        let d = d0 + k * t.stride;
                        let s = first + k * l.stride;
                        let dst = &mut t.buf[d..d + cw];
                        for (j, part) in dst.chunks_mut(SCRATCH).enumerate() {
                            let buf = &mut scratch[..part.len()];
                            if src.read_at(s + j * SCRATCH, buf).is_err() {
                                return Err(i);
                            }
                            if l.opaque {
                                copy_pixels(part, buf);
                            } else {
                                blend(part, buf);
                            }
                        }
                    }
                }
            }
        }
        written += c.area() as u64;
    }
    Ok(written)
}

/// Four pixels' alpha bytes.
const ALPHA4: u128 = 0xff00_0000_ff00_0000_ff00_0000_ff00_0000;

/// Copies a row of an opaque surface (its pixels' alpha set to 255: the
/// surface says it is opaque whatever the byte holds). The aligned
/// middle goes 16 bytes at a time: the user target is `+strict-align`, so
/// only `u128`-typed memory lets the compiler use 16-byte loads and
/// stores (the compose of a 1080p frame took 4.2 M instructions through
/// the `memcpy` of the time, `compiler_builtins`' 8 bytes a step, before
/// `userlib::mem`; not measured against the new one).
fn copy_opaque(dst: &mut [u8], src: &[u8]) {
    let head = (16 - dst.as_ptr() as usize % 16) % 16;
    let aligned_alike = (src.as_ptr() as usize)
        .wrapping_sub(dst.as_ptr() as usize)
        .is_multiple_of(16);
    if !aligned_alike || dst.len() < head + 16 {
        return copy_pixels(dst, src);
    }
    let body = (dst.len() - head) / 16 * 16;
    let (dh, rest) = dst.split_at_mut(head);
    let (db, dt) = rest.split_at_mut(body);
    let (sh, rest) = src.split_at(head);
    let (sb, st) = rest.split_at(body);
    // Unaligned ends only when there are any: a call costs more than the
    // 64-byte steps of a short row (the 64x64 compose went from 12 k to
    // 28 k instructions when both calls ran for every row).
    if !dh.is_empty() {
        copy_pixels(dh, sh);
    }
    if !dt.is_empty() {
        copy_pixels(dt, st);
    }
    // Both conversions succeed (the body is aligned and whole); were one
    // to fail, the slow path still copies.
    match <[u128]>::mut_from_bytes(db) {
        Ok(d) => match <[u128]>::ref_from_bytes(sb) {
            Ok(s) => {
                // 64 bytes a step (at opt-level "s" nothing unrolls it).
                let (d4, dr) = d.as_chunks_mut::<4>();
                let (s4, sr) = s.as_chunks::<4>();
                for (d, s) in d4.iter_mut().zip(s4) {
                    *d = [s[0] | ALPHA4, s[1] | ALPHA4, s[2] | ALPHA4, s[3] | ALPHA4];
                }
                for (d, s) in dr.iter_mut().zip(sr) {
                    *d = *s | ALPHA4;
                }
            }
            Err(_) => copy_pixels(d.as_mut_bytes(), sb),
        },
        Err(e) => copy_pixels(e.into_src(), sb),
    }
}

/// The slow path of [`copy_opaque`]: pixel by pixel (arrays, not
/// `chunks_exact`, whose iterators cost divisions and copies per call).
fn copy_pixels(dst: &mut [u8], src: &[u8]) {
    let (d4, _) = dst.as_chunks_mut::<4>();
    let (s4, _) = src.as_chunks::<4>();
    for (d, s) in d4.iter_mut().zip(s4) {
        *d = [s[0], s[1], s[2], 255];
    }
}

/// `dst = src + dst * (1 - src.alpha)`, premultiplied.
fn blend(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
        let a = s[3];
        if a == 255 {
            d.copy_from_slice(s);
        } else if a != 0 {
            let inv = 255 - a as u32;
            for i in 0..3 {
                let v = s[i] as u32 + div255(d[i] as u32 * inv);
                d[i] = v.min(255) as u8;
            }
            d[3] = 255;
        }
    }
}

/// `x / 255`, rounded, for `x <= 255 * 255`.
fn div255(x: u32) -> u32 {
    let t = x + 128;
    (t + (t >> 8)) >> 8
}

/// Fills `r` (inside the screen) with `0xRRGGBB`.
pub fn fill(t: &mut Target, r: Rect, rgb: u32) {
    let px = (0xff00_0000 | rgb).to_le_bytes();
    for row in r.y..r.bottom() {
        let d = row as usize * t.stride + r.x as usize * 4;
        for p in t.buf[d..d + r.w as usize * 4].chunks_exact_mut(4) {
            p.copy_from_slice(&px);
        }
    }
}

/// Where a [`WRITE`](userlib::services::compositor::WRITE) lands: a
/// `w` x `h` rectangle at `(x, y)` of a `buf_w` x `buf_h` buffer (rows
/// `buf_w * 4` bytes apart), from `src` with rows `stride` bytes apart.
/// `None` if any of it is out of bounds (nothing is copied) or `src`
/// could not be read (revoked: the rows before it were copied); else the
/// rectangle, copied.
pub fn write_rect(
    dst: &mut [u8],
    (buf_w, buf_h): (u32, u32),
    (x, y, w, h): (u64, u64, u64, u64),
    src: Pixels,
    stride: u64,
) -> Option<Rect> {
    let (bw, bh) = (buf_w as u64, buf_h as u64);
    let max_stride = userlib::services::compositor::MAX_SIDE as u64 * 4;
    if w == 0 || h == 0 || x >= bw || y >= bh || w > bw - x || h > bh - y {
        return None;
    }
    if stride < w * 4 || stride > max_stride {
        return None;
    }
    let need = stride * (h - 1) + w * 4;
    if need > src.len() as u64 || bw * bh * 4 > dst.len() as u64 {
        return None;
    }
    let (row, dst_stride) = ((w * 4) as usize, (bw * 4) as usize);
    // One rectangle: a read of its rows.
    let d0 = ((y * bw + x) * 4) as usize;
    let span = (h as usize - 1) * dst_stride + row;
    src.read_rows(0, stride as usize, &mut dst[d0..d0 + span], dst_stride, row, h as usize)
        .ok()?;
    Some(Rect::new(x as i32, y as i32, w as i32, h as i32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn px(buf: &[u8], stride: usize, x: usize, y: usize) -> u32 {
        let i = y * stride + x * 4;
        u32::from_le_bytes(buf[i..i + 4].try_into().unwrap())
    }

    fn solid(w: usize, h: usize, argb: u32) -> alloc::vec::Vec<u8> {
        argb.to_le_bytes().repeat(w * h)
    }

    #[test]
    fn opaque_alpha_and_background() {
        let (w, h) = (8usize, 6usize);
        let mut fb = vec![0u8; w * h * 4];
        let red = solid(4, 4, 0xffff_0000);
        // 50% white, premultiplied.
        let glass = solid(2, 2, 0x8080_8080);
        let layers = [
            Layer::new(Rect::new(1, 1, 4, 4), Pixels::Mapped(&red), 16, true).unwrap(),
            Layer::new(Rect::new(3, 3, 2, 2), Pixels::Mapped(&glass), 8, false).unwrap(),
        ];
        let mut t = Target {
            buf: &mut fb,
            stride: w * 4,
            width: w as i32,
            height: h as i32,
        };
        let n = compose(&mut t, &layers, Rect::new(0, 0, 100, 100)).unwrap();
        assert_eq!(n, 16 + 4);
        assert_eq!(px(&fb, w * 4, 0, 0), 0xff00_0000 | BACKGROUND);
        assert_eq!(px(&fb, w * 4, 1, 1), 0xffff_0000);
        // red * 0.5 + white * 0.5
        assert_eq!(px(&fb, w * 4, 3, 3), 0xffff_8080);
        assert_eq!(px(&fb, w * 4, 5, 5), 0xff00_0000 | BACKGROUND);
    }

    #[test]
    fn only_the_area_is_written_and_covered_layers_are_skipped() {
        let (w, h) = (8usize, 8usize);
        let mut fb = vec![0u8; w * h * 4];
        let a = solid(8, 8, 0xff11_1111);
        let b = solid(8, 8, 0xff22_2222);
        let layers = [
            Layer::new(Rect::new(0, 0, 8, 8), Pixels::Mapped(&a), 32, true).unwrap(),
            Layer::new(Rect::new(0, 0, 8, 8), Pixels::Mapped(&b), 32, true).unwrap(),
        ];
        let mut t = Target {
            buf: &mut fb,
            stride: w * 4,
            width: 8,
            height: 8,
        };
        let n = compose(&mut t, &layers, Rect::new(2, 2, 2, 2)).unwrap();
        assert_eq!(n, 4, "the lower layer is covered: not composed");
        assert_eq!(px(&fb, 32, 2, 2), 0xff22_2222);
        assert_eq!(px(&fb, 32, 1, 1), 0, "outside the damage: untouched");
    }

    /// The compositor's band frames: each band composed as a target of its
    /// rows, the layers and the area moved up by its top row.
    #[test]
    fn a_frame_composed_band_by_band_is_the_whole_one() {
        let (w, h, rows) = (9usize, 10usize, 3usize);
        let red = solid(4, 5, 0xffff_0000);
        let glass = solid(6, 4, 0x8080_8080);
        let at = [Rect::new(1, 1, 4, 5), Rect::new(2, 4, 6, 4)];
        let layers = |dy: i32| {
            [
                Layer::new(at[0].offset(0, dy), Pixels::Mapped(&red), 16, true).unwrap(),
                Layer::new(at[1].offset(0, dy), Pixels::Mapped(&glass), 24, false).unwrap(),
            ]
        };
        let area = Rect::new(1, 2, 7, 7);
        let mut whole = vec![0u8; w * h * 4];
        let mut t = Target {
            buf: &mut whole,
            stride: w * 4,
            width: w as i32,
            height: h as i32,
        };
        let total = compose(&mut t, &layers(0), area).unwrap();
        let mut band = vec![0u8; w * rows * 4];
        let mut sum = 0;
        for top in (0..h).step_by(rows) {
            band.fill(0);
            let n = rows.min(h - top);
            let mut t = Target {
                buf: &mut band,
                stride: w * 4,
                width: w as i32,
                height: n as i32,
            };
            let part = area.intersect(&Rect::new(0, top as i32, w as i32, n as i32));
            sum += compose(&mut t, &layers(-(top as i32)), part.offset(0, -(top as i32))).unwrap();
            assert_eq!(&band[..n * w * 4], &whole[top * w * 4..][..n * w * 4], "rows {top}..");
        }
        assert_eq!(sum, total);
    }

    #[test]
    fn opaque_rows_copy_at_any_alignment_with_alpha_set() {
        // Backing store aligned to 16 (u128), viewed at every 4-byte offset.
        let mut src_store = vec![0u128; 40];
        let mut dst_store = vec![0u128; 40];
        let src_bytes = src_store.as_mut_bytes();
        for (i, b) in src_bytes.iter_mut().enumerate() {
            *b = (i * 7 + 1) as u8;
        }
        for (so, doff, len) in [
            (0, 0, 512),
            (4, 4, 300),
            (0, 4, 256),
            (12, 8, 100),
            (8, 8, 12),
            (0, 0, 4),
        ] {
            let dst_bytes = dst_store.as_mut_bytes();
            dst_bytes.fill(0);
            copy_opaque(&mut dst_bytes[doff..doff + len], &src_store.as_bytes()[so..so + len]);
            let (d, s) = (dst_store.as_bytes(), src_store.as_bytes());
            for p in 0..len / 4 {
                let (dp, sp) = (doff + p * 4, so + p * 4);
                assert_eq!(&d[dp..dp + 3], &s[sp..sp + 3], "pixel {p} of ({so}, {doff}, {len})");
                assert_eq!(d[dp + 3], 255, "alpha of pixel {p}");
            }
            assert!(d[..doff].iter().all(|b| *b == 0) && d[doff + len..].iter().all(|b| *b == 0));
        }
    }

    #[test]
    fn short_buffers_are_refused() {
        let small = vec![0u8; 15];
        assert!(Layer::new(Rect::new(0, 0, 2, 2), Pixels::Mapped(&small), 8, true).is_none());
        assert!(
            Layer::new(Rect::new(0, 0, 2, 2), Pixels::Mapped(&small), 4, true).is_none(),
            "stride < row"
        );
        let ok = vec![0u8; 16];
        assert!(Layer::new(Rect::new(0, 0, 2, 2), Pixels::Mapped(&ok), 8, true).is_some());
        assert!(Layer::new(Rect::new(0, 0, 2, 2), Pixels::Mapped(&ok), usize::MAX, true).is_none());
    }

    #[test]
    fn writes_copy_a_rectangle_and_refuse_anything_out_of_bounds() {
        let mut dst = vec![0u8; 8 * 4 * 4];
        // 2 rows of 3 pixels, 16 bytes apart.
        let src: Vec<u8> = (0..28u8).collect();
        assert_eq!(
            write_rect(&mut dst, (8, 4), (5, 2, 3, 2), Pixels::Mapped(&src), 16),
            Some(Rect::new(5, 2, 3, 2))
        );
        assert_eq!(&dst[(2 * 8 + 5) * 4..(2 * 8 + 8) * 4], &src[0..12]);
        assert_eq!(&dst[(3 * 8 + 5) * 4..(3 * 8 + 8) * 4], &src[16..28]);
        assert!(dst[..(2 * 8 + 5) * 4].iter().all(|b| *b == 0));
        let before = dst.clone();
        let big = u64::MAX / 2;
        for (rect, stride, len) in [
            ((0, 0, 0, 1), 16, 28),     // empty
            ((0, 0, 1, 0), 16, 28),     // empty
            ((6, 0, 3, 1), 16, 28),     // past the right edge
            ((0, 3, 1, 2), 16, 28),     // past the bottom
            ((8, 0, 1, 1), 16, 28),     // starts outside
            ((big, big, 2, 2), 16, 28), // overflowing sums
            ((0, 0, 2, 1), 4, 28),      // stride below a row
            ((0, 0, 3, 2), 16, 27),     // object too small
            ((0, 0, 1, 1), 1 << 40, 28),
        ] {
            assert_eq!(
                write_rect(&mut dst, (8, 4), rect, Pixels::Mapped(&src[..len]), stride),
                None,
                "{rect:?}"
            );
        }
        assert_eq!(dst, before, "a refused write changes nothing");
        // A buffer smaller than it says.
        assert_eq!(
            write_rect(&mut [0u8; 4], (8, 4), (0, 0, 1, 1), Pixels::Mapped(&src), 16),
            None
        );
    }

    /// A buffer read through [`ReadAt`]: its bytes, the reads counted; it
    /// fails every read from the `fail_at`th on (revoked), and refuses a
    /// destination that is not "RAM" when `not_ram`.
    struct Fake {
        bytes: Vec<u8>,
        reads: core::cell::Cell<usize>,
        /// Calls of `read_rows` (each counted in `reads` per row too).
        rects: core::cell::Cell<usize>,
        fail_at: usize,
        not_ram: bool,
    }

    impl Fake {
        fn new(bytes: Vec<u8>, fail_at: usize, not_ram: bool) -> Fake {
            Fake {
                bytes,
                reads: core::cell::Cell::new(0),
                rects: core::cell::Cell::new(0),
                fail_at,
                not_ram,
            }
        }
    }

    impl ReadAt for Fake {
        fn read_at(&self, offset: usize, dst: &mut [u8]) -> Result<(), Error> {
            // The scratch buffer is on the stack; the target is the heap.
            if self.not_ram && dst.len() > SCRATCH {
                return Err(Error::NotMapped);
            }
            let n = self.reads.get();
            self.reads.set(n + 1);
            if n >= self.fail_at {
                return Err(Error::BadHandle);
            }
            dst.copy_from_slice(&self.bytes[offset..offset + dst.len()]);
            Ok(())
        }

        fn read_rows(
            &self,
            offset: usize,
            stride: usize,
            dst: &mut [u8],
            dst_stride: usize,
            len: usize,
            rows: usize,
        ) -> Result<(), Error> {
            self.rects.set(self.rects.get() + 1);
            if self.not_ram && dst.len() > SCRATCH {
                return Err(Error::NotMapped);
            }
            for k in 0..rows {
                let d = k * dst_stride;
                self.read_at(offset + k * stride, &mut dst[d..d + len])?;
            }
            Ok(())
        }
    }

    /// Composed from reads, a frame is the one composed from the mapped
    /// bytes (opaque rows' alpha aside): contiguous full-width rows in one
    /// read, others a read per row, blended ones through the scratch.
    #[test]
    fn read_layers_compose_as_mapped_ones() {
        let (w, h) = (700usize, 6usize);
        let full: Vec<u8> = (0..w * h * 4).map(|i| (i * 13 + 5) as u8).collect();
        let glass = solid(600, 3, 0x8040_4040);
        let part: Vec<u8> = (0..300 * 4 * 4).map(|i| (i * 7) as u8).collect();
        for not_ram in [false, true] {
            let (f, g, p) = (
                Fake::new(full.clone(), usize::MAX, not_ram),
                Fake::new(glass.clone(), usize::MAX, not_ram),
                Fake::new(part.clone(), usize::MAX, not_ram),
            );
            let read = [
                Layer::new(
                    Rect::new(0, 0, w as i32, h as i32),
                    Pixels::Read(&f, full.len()),
                    w * 4,
                    true,
                )
                .unwrap(),
                Layer::new(Rect::new(10, 1, 300, 4), Pixels::Read(&p, part.len()), 1200, true).unwrap(),
                Layer::new(Rect::new(50, 2, 600, 3), Pixels::Read(&g, glass.len()), 2400, false).unwrap(),
            ];
            let mapped = [
                Layer::new(read[0].rect, Pixels::Mapped(&full), w * 4, true).unwrap(),
                Layer::new(read[1].rect, Pixels::Mapped(&part), 1200, true).unwrap(),
                Layer::new(read[2].rect, Pixels::Mapped(&glass), 2400, false).unwrap(),
            ];
            let mut a = vec![0u8; w * h * 4];
            let mut b = vec![0u8; w * h * 4];
            for (buf, layers) in [(&mut a, &read), (&mut b, &mapped)] {
                let mut t = Target {
                    buf,
                    stride: w * 4,
                    width: w as i32,
                    height: h as i32,
                };
                assert_eq!(
                    compose(&mut t, layers, Rect::new(0, 0, w as i32, h as i32)),
                    Ok((w * h + 1200 + 1800) as u64)
                );
            }
            let rgb = |v: &[u8]| v.chunks_exact(4).map(|p| [p[0], p[1], p[2]]).collect::<Vec<_>>();
            assert_eq!(rgb(&a), rgb(&b), "not_ram {not_ram}");
            if !not_ram {
                assert_eq!((f.reads.get(), f.rects.get()), (1, 0), "full-width rows: one read");
                assert_eq!(p.rects.get(), 1, "a rectangle: one read of its rows");
            }
            // The blended rows (2400 bytes, more than the scratch): a read
            // per piece of a row.
            assert_eq!(g.rects.get(), 0);
        }
    }

    /// Blended rows narrower than the scratch: as many as it holds per
    /// read, composed as the mapped ones.
    #[test]
    fn narrow_blended_rows_are_read_many_at_a_time() {
        let (w, h) = (40usize, 30usize);
        let base = solid(w, h, 0xff10_2030);
        let glass: Vec<u8> = (0..300 * 25 * 4)
            .map(|i| if i % 4 == 3 { 0x80 } else { (i % 128) as u8 })
            .collect();
        let g = Fake::new(glass.clone(), usize::MAX, false);
        let at = Rect::new(3, 2, 30, 25);
        let read = [
            Layer::new(Rect::new(0, 0, w as i32, h as i32), Pixels::Mapped(&base), w * 4, true).unwrap(),
            Layer::new(at, Pixels::Read(&g, glass.len()), 1200, false).unwrap(),
        ];
        let mapped = [read[0], Layer::new(at, Pixels::Mapped(&glass), 1200, false).unwrap()];
        let mut a = vec![0u8; w * h * 4];
        let mut b = vec![0u8; w * h * 4];
        for (buf, layers) in [(&mut a, &read), (&mut b, &mapped)] {
            let mut t = Target {
                buf,
                stride: w * 4,
                width: w as i32,
                height: h as i32,
            };
            compose(&mut t, layers, Rect::new(0, 0, w as i32, h as i32)).unwrap();
        }
        assert_eq!(a, b);
        // 120-byte rows: 17 a read, 25 rows in 2 reads.
        assert_eq!((g.rects.get(), g.reads.get()), (2, 25));
    }

    /// A buffer revoked before or during the compose: the layer's index,
    /// never a panic.
    #[test]
    fn a_revoked_read_layer_is_reported() {
        let bytes = solid(8, 8, 0xff11_2233);
        let mut fb = vec![0u8; 8 * 8 * 4];
        for fail_at in [0, 1, 3] {
            let f = Fake::new(bytes.clone(), fail_at, false);
            let layers = [
                Layer::new(Rect::new(0, 0, 8, 8), Pixels::Mapped(&bytes), 32, true).unwrap(),
                Layer::new(Rect::new(2, 2, 4, 4), Pixels::Read(&f, bytes.len()), 32, false).unwrap(),
            ];
            let mut t = Target {
                buf: &mut fb,
                stride: 32,
                width: 8,
                height: 8,
            };
            assert_eq!(compose(&mut t, &layers, Rect::new(0, 0, 8, 8)), Err(1));
        }
        let f = Fake::new(bytes.clone(), 2, false);
        let mut dst = vec![0u8; 8 * 8 * 4];
        assert_eq!(
            write_rect(&mut dst, (8, 8), (0, 0, 8, 4), Pixels::Read(&f, bytes.len()), 32),
            None,
            "revoked during a WRITE"
        );
        assert_eq!(&dst[..64], &bytes[..64], "the rows before it were copied");
    }
}
