//! `display`: one screen and its framebuffer (the virtio-gpu driver
//! serves it).
//!
//! | label | words in | reply |
//! |---|---|---|
//! | [`INFO`] | — | `[width, height, stride bytes, format, rows]` |
//! | [`FILL`] | `[x, y, w, h, 0xRRGGBB]` | [`crate::proto::OK`] |
//! | [`FLUSH`] | `[x, y, w, h]`, 1 to [`MAX_FLUSH_RECTS`] times | [`crate::proto::OK`] (the rectangles are on the screen) |
//! | [`MAP`] | — | `[bytes]` + the framebuffer memory (`READ`\|`WRITE`\|`MAP`) |
//! | [`PUT`] | `[top]`, then `[x, y, w, h]` 1 to [`MAX_FLUSH_RECTS`] times | [`crate::proto::OK`] (the rectangles are on the screen) |
//!
//! Pixels are [`FORMAT_BGRX8888`]: 4 bytes each (blue, green, red,
//! unused), rows `stride` bytes apart. A client that [`MAP`]s the
//! framebuffer draws into it directly (no copies through messages) and
//! then asks for a [`FLUSH`] of what it changed (only those rectangles
//! are copied to the device and redrawn); [`FILL`] is for clients that do
//! not map it.
//!
//! The framebuffer holds `rows` rows ([`Info::rows`]): all `height` of
//! them, or fewer where memory is short (the watch: a 454 x 454 frame is
//! 805 KiB of its 4 MiB), when the device keeps the picture itself. Then
//! the framebuffer is a band: [`PUT`] shows its rows at screen rows
//! `top..top + rows` (its rectangles must lie there), and a client draws
//! a frame band by band. [`FILL`] and [`FLUSH`] address the framebuffer's
//! rows as screen rows `0..rows` ([`PUT`] at `top` 0).
//!
//! Rectangles are clipped to the screen ([`Rect::clip`]); one that is
//! empty, starts off the screen or has coordinates beyond `u32` gets
//! `InvalidArgument`, and so is a [`FLUSH`] whose words are not whole
//! rectangles or more than [`MAX_FLUSH_RECTS`] of them.

use crate::ipc::{Message, Timeout};
use crate::names::Connection;
use crate::vspace::{pages_for, Mapping};
use crate::{Error, Rights};

/// The service name.
pub const NAME: &str = "display";
pub const INFO: u16 = 1;
pub const FILL: u16 = 2;
pub const FLUSH: u16 = 3;
pub const MAP: u16 = 4;
pub const PUT: u16 = 5;

/// Most rectangles one [`FLUSH`] carries.
pub const MAX_FLUSH_RECTS: usize = 8;

/// Bytes blue, green, red, unused: a little-endian `u32` `0xXXRRGGBB`.
pub const FORMAT_BGRX8888: u64 = 1;

/// The screen as [`INFO`] describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Info {
    pub width: u32,
    pub height: u32,
    /// Bytes from one row to the next.
    pub stride: u32,
    pub format: u64,
    /// Rows the framebuffer holds (1..=`height`; fewer than `height`: a
    /// band, see [`PUT`]).
    pub rows: u32,
}

impl Info {
    pub fn to_words(&self) -> [u64; 5] {
        [
            self.width as u64,
            self.height as u64,
            self.stride as u64,
            self.format,
            self.rows as u64,
        ]
    }

    /// The [`INFO`] reply's words; `None` if they do not describe a
    /// framebuffer (zero sizes, a stride shorter than a row, rows not in
    /// `1..=height`).
    pub fn from_words(w: &[u64]) -> Option<Info> {
        let get = |i: usize| w.get(i).copied().and_then(|v| u32::try_from(v).ok());
        let info = Info {
            width: get(0)?,
            height: get(1)?,
            stride: get(2)?,
            format: *w.get(3)?,
            rows: get(4)?,
        };
        let ok = info.width > 0
            && info.height > 0
            && info.stride as u64 >= info.width as u64 * 4
            && (1..=info.height).contains(&info.rows);
        ok.then_some(info)
    }

    /// Framebuffer bytes: `stride * rows`.
    pub fn bytes(&self) -> usize {
        self.stride as usize * self.rows as usize
    }

    /// Whether the framebuffer holds fewer rows than the screen (a band).
    pub fn is_band(&self) -> bool {
        self.rows < self.height
    }
}

/// A rectangle of pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Rect {
    /// The first four words of a request, clipped to a `width` x `height`
    /// screen. Refused (`InvalidArgument`): empty, starting off the
    /// screen, or a value beyond `u32`.
    pub fn clip(words: &[u64], width: u32, height: u32) -> Result<Rect, Error> {
        let get = |i: usize| {
            words
                .get(i)
                .copied()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or(Error::InvalidArgument)
        };
        let (x, y, w, h) = (get(0)?, get(1)?, get(2)?, get(3)?);
        if w == 0 || h == 0 || x >= width || y >= height {
            return Err(Error::InvalidArgument);
        }
        Ok(Rect {
            x,
            y,
            w: w.min(width - x),
            h: h.min(height - y),
        })
    }

    /// The rectangles of a [`FLUSH`] (`words`: 1 to [`MAX_FLUSH_RECTS`]
    /// of `[x, y, w, h]`), each clipped as by [`Rect::clip`]; any bad one
    /// refuses them all.
    pub fn clip_all(words: &[u64], width: u32, height: u32) -> Result<alloc::vec::Vec<Rect>, Error> {
        if words.is_empty() || !words.len().is_multiple_of(4) || words.len() > 4 * MAX_FLUSH_RECTS {
            return Err(Error::InvalidArgument);
        }
        words.chunks_exact(4).map(|w| Rect::clip(w, width, height)).collect()
    }

    /// The whole screen.
    pub fn full(info: &Info) -> Rect {
        Rect {
            x: 0,
            y: 0,
            w: info.width,
            h: info.height,
        }
    }

    pub fn to_words(&self) -> [u64; 4] {
        [self.x as u64, self.y as u64, self.w as u64, self.h as u64]
    }
}

/// The pixel value of colour `0xRRGGBB` in [`FORMAT_BGRX8888`] (the
/// unused byte set, for scanouts that read it as alpha).
pub const fn pixel(rgb: u32) -> u32 {
    0xff00_0000 | (rgb & 0x00ff_ffff)
}

/// A display client (reconnects after the driver restarts; a mapping
/// from [`Display::map`] does not survive that: map again).
pub struct Display {
    conn: Connection,
    timeout: Timeout,
}

const CALL_TIMEOUT: Timeout = Timeout::millis(5000);

impl Display {
    pub const fn new() -> Display {
        Display {
            conn: Connection::new(NAME),
            timeout: CALL_TIMEOUT,
        }
    }

    /// How long a call may wait for the driver (5 s unless set). The
    /// benchmarks wait forever: under `-icount sleep=off` an idle CPU
    /// jumps to the next timer, so a deadline expires as soon as the
    /// driver sleeps waiting for the device.
    pub fn set_timeout(&mut self, timeout: Timeout) {
        self.timeout = timeout;
    }

    pub fn info(&mut self) -> Result<Info, Error> {
        let r = self.conn.call(&Message::new(INFO), self.timeout)?;
        Info::from_words(r.words()).ok_or(Error::InvalidState)
    }

    /// Fills `rect` with colour `0xRRGGBB` (in the framebuffer; [`Display::flush`] shows it).
    pub fn fill(&mut self, rect: Rect, rgb: u32) -> Result<(), Error> {
        let [x, y, w, h] = rect.to_words();
        self.conn
            .call(&Message::with_words(FILL, &[x, y, w, h, rgb as u64]), self.timeout)
            .map(drop)
    }

    /// Puts `rect` of the framebuffer on the screen.
    pub fn flush(&mut self, rect: Rect) -> Result<(), Error> {
        self.flush_all(&[rect])
    }

    /// Puts `rects` of the framebuffer on the screen, [`MAX_FLUSH_RECTS`]
    /// to a request.
    pub fn flush_all(&mut self, rects: &[Rect]) -> Result<(), Error> {
        for chunk in rects.chunks(MAX_FLUSH_RECTS) {
            let mut m = Message::new(FLUSH);
            for r in chunk {
                for w in r.to_words() {
                    m.push(w);
                }
            }
            self.conn.call(&m, self.timeout)?;
        }
        Ok(())
    }

    /// Puts `rects` of the framebuffer, its first row shown at screen row
    /// `top`, on the screen ([`PUT`]; [`MAX_FLUSH_RECTS`] to a request).
    pub fn put(&mut self, top: u32, rects: &[Rect]) -> Result<(), Error> {
        for chunk in rects.chunks(MAX_FLUSH_RECTS) {
            let mut m = Message::with_words(PUT, &[top as u64]);
            for r in chunk {
                for w in r.to_words() {
                    m.push(w);
                }
            }
            self.conn.call(&m, self.timeout)?;
        }
        Ok(())
    }

    /// The framebuffer, mapped read-write in this task, and its layout.
    /// Dropping the mapping unmaps it (the capability stays; delete it
    /// with `syscall::cap_delete(mapping.handle())` when done).
    pub fn map(&mut self) -> Result<(Mapping, Info), Error> {
        let info = self.info()?;
        let r = self.conn.call(&Message::new(MAP).accepting_caps(1), self.timeout)?;
        let mem = r.caps().first().map(|c| c.handle).ok_or(Error::InvalidState)?;
        let bytes = r.word(0);
        if bytes < info.bytes() as u64 {
            let _ = crate::syscall::cap_delete(mem);
            return Err(Error::InvalidState);
        }
        match Mapping::map(mem, pages_for(info.bytes() as u64), Rights::READ | Rights::WRITE) {
            Ok(m) => Ok((m, info)),
            Err(e) => {
                let _ = crate::syscall::cap_delete(mem);
                Err(e)
            }
        }
    }

    /// Drops the connection (the next call looks the service up again).
    pub fn reset(&mut self) {
        self.conn.reset();
    }
}

impl Default for Display {
    fn default() -> Self {
        Display::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rectangles_are_clipped_or_refused() {
        let r = |x, y, w, h| Rect { x, y, w, h };
        assert_eq!(Rect::clip(&[0, 0, 540, 1170], 540, 1170), Ok(r(0, 0, 540, 1170)));
        assert_eq!(Rect::clip(&[500, 1100, 100, 100], 540, 1170), Ok(r(500, 1100, 40, 70)));
        assert_eq!(
            Rect::clip(&[539, 0, u32::MAX as u64, 1], 540, 1170),
            Ok(r(539, 0, 1, 1))
        );
        for bad in [
            &[0, 0, 0, 10][..],
            &[0, 0, 10, 0],
            &[540, 0, 1, 1],
            &[0, 1170, 1, 1],
            &[0, 0, 1 << 32, 1],
            &[u64::MAX, 0, 1, 1],
            &[0, 0, 1],
            &[],
        ] {
            assert_eq!(Rect::clip(bad, 540, 1170), Err(Error::InvalidArgument), "{bad:?}");
        }
    }

    #[test]
    fn a_flush_carries_whole_rectangles() {
        let r = |x, y, w, h| Rect { x, y, w, h };
        assert_eq!(
            Rect::clip_all(&[0, 0, 10, 10, 530, 0, 20, 5], 540, 1170),
            Ok(alloc::vec![r(0, 0, 10, 10), r(530, 0, 10, 5)])
        );
        let many = [1u64; 4 * MAX_FLUSH_RECTS];
        assert_eq!(Rect::clip_all(&many, 540, 1170).map(|v| v.len()), Ok(MAX_FLUSH_RECTS));
        let too_many = [1u64; 4 * (MAX_FLUSH_RECTS + 1)];
        for bad in [
            &[][..],
            &[0, 0, 1, 1, 0],
            &too_many,
            &[0, 0, 1, 1, 0, 0, 0, 1],
            &[0, 0, 1, 1, 540, 0, 1, 1],
        ] {
            assert_eq!(Rect::clip_all(bad, 540, 1170), Err(Error::InvalidArgument), "{bad:?}");
        }
    }

    #[test]
    fn info_round_trip_and_hostile_replies() {
        let i = Info {
            width: 454,
            height: 454,
            stride: 454 * 4,
            format: FORMAT_BGRX8888,
            rows: 454,
        };
        assert_eq!(Info::from_words(&i.to_words()), Some(i));
        assert_eq!(i.bytes(), 454 * 454 * 4);
        assert!(!i.is_band());
        let band = Info { rows: 32, ..i };
        assert_eq!(Info::from_words(&band.to_words()), Some(band));
        assert_eq!(band.bytes(), 454 * 32 * 4);
        assert!(band.is_band());
        assert_eq!(
            Info::from_words(&[454, 454, 454, 1, 454]),
            None,
            "stride shorter than a row"
        );
        assert_eq!(Info::from_words(&[0, 454, 4096, 1, 1]), None);
        assert_eq!(Info::from_words(&[1 << 40, 1, 1 << 42, 1, 1]), None);
        assert_eq!(Info::from_words(&[454, 454, 4096, 1, 0]), None, "no rows");
        assert_eq!(
            Info::from_words(&[454, 454, 4096, 1, 455]),
            None,
            "more rows than the screen"
        );
        assert_eq!(Info::from_words(&[454, 454, 4096, 1]), None, "rows missing");
        assert_eq!(Info::from_words(&[1, 2]), None);
    }

    #[test]
    fn pixels() {
        assert_eq!(pixel(0x123456).to_le_bytes(), [0x56, 0x34, 0x12, 0xff]);
        assert_eq!(pixel(0xff_123456), 0xff12_3456);
    }
}
