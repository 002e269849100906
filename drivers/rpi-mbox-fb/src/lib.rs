//! The pure parts of the Raspberry Pi mailbox/framebuffer driver, tested on
//! the host: property-interface messages ([`property`]), bus addresses
//! ([`bus`]) and drawing into a framebuffer's bytes ([`draw`]).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

/// Addresses as the VideoCore sees them.
pub mod bus {
    /// The VideoCore reaches the first GiB of ARM RAM through its
    /// uncached alias at `0xC000_0000` (BCM2711 `dma-ranges`; QEMU's
    /// raspi machines alias RAM at every GiB of the GPU bus, this one
    /// included).
    pub const RAM_ALIAS: u32 = 0xc000_0000;

    /// The bus address of ARM physical address `phys`: only the first GiB
    /// is visible to the VideoCore.
    pub fn from_physical(phys: u64) -> Option<u32> {
        (phys < 0x4000_0000).then_some(phys as u32 | RAM_ALIAS)
    }

    /// The ARM physical address of a bus address the firmware returned
    /// (its framebuffer is in its own carve-out of the first GiB; real
    /// firmware sets alias bits, QEMU does not).
    pub fn to_physical(bus: u32) -> u64 {
        u64::from(bus & 0x3fff_ffff)
    }

    /// The word written to the mailbox: a 16-byte aligned bus address with
    /// the channel in the low 4 bits.
    pub fn mailbox_word(bus: u32, channel: u32) -> Option<u32> {
        (bus & 0xf == 0 && channel < 16).then_some(bus | channel)
    }
}

/// The VideoCore firmware's property interface (mailbox channel 8): a
/// buffer of little-endian words — total size, request/response code,
/// tags (id, value-buffer size, request/response code, values), an end
/// tag — that the firmware answers in place.
pub mod property {
    use alloc::vec;
    use alloc::vec::Vec;

    /// The mailbox channel of the property interface (ARM to VideoCore).
    pub const CHANNEL: u32 = 8;
    pub const REQUEST: u32 = 0;
    pub const RESPONSE_OK: u32 = 0x8000_0000;
    /// In a tag's code: the firmware answered it; the low bits are the
    /// response's length in bytes.
    const TAG_RESPONSE: u32 = 1 << 31;

    /// Tag ids.
    pub mod tag {
        pub const FIRMWARE_REVISION: u32 = 0x0000_0001;
        pub const BOARD_MODEL: u32 = 0x0001_0001;
        pub const BOARD_REVISION: u32 = 0x0001_0002;
        pub const BOARD_SERIAL: u32 = 0x0001_0004;
        pub const ARM_MEMORY: u32 = 0x0001_0005;
        pub const VC_MEMORY: u32 = 0x0001_0006;
        pub const FB_ALLOCATE: u32 = 0x0004_0001;
        pub const FB_GET_PITCH: u32 = 0x0004_0008;
        pub const FB_SET_PHYSICAL_SIZE: u32 = 0x0004_8003;
        pub const FB_SET_VIRTUAL_SIZE: u32 = 0x0004_8004;
        pub const FB_SET_DEPTH: u32 = 0x0004_8005;
        pub const FB_SET_PIXEL_ORDER: u32 = 0x0004_8006;
        pub const FB_SET_VIRTUAL_OFFSET: u32 = 0x0004_8009;
    }

    /// Why a reply is not usable.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum PropertyError {
        /// The buffer's response code is not success (the firmware could
        /// not parse the request).
        Failed(u32),
        /// The reply is shorter than the request, or a tag moved.
        Malformed,
        /// The firmware did not answer this tag (unknown to it).
        NotAnswered(u32),
        /// The answer needs more room than the request gave it.
        Truncated { tag: u32, needed: usize },
    }

    #[derive(Clone, Copy, Debug)]
    struct Slot {
        id: u32,
        /// Index of the tag's id word.
        at: usize,
        value_words: usize,
    }

    /// A request under construction; it also knows where each tag's answer
    /// will be.
    #[derive(Clone, Debug)]
    pub struct Request {
        words: Vec<u32>,
        tags: Vec<Slot>,
    }

    impl Default for Request {
        fn default() -> Self {
            Request::new()
        }
    }

    impl Request {
        pub fn new() -> Request {
            Request {
                words: vec![0, REQUEST],
                tags: Vec::new(),
            }
        }

        /// Adds tag `id` with request `values` and room for
        /// `response_words` words of answer; returns the tag's index for
        /// [`Reply::value`].
        pub fn tag(&mut self, id: u32, values: &[u32], response_words: usize) -> usize {
            let n = values.len().max(response_words);
            let at = self.words.len();
            self.words.extend_from_slice(&[id, (n * 4) as u32, REQUEST]);
            self.words.extend_from_slice(values);
            self.words.resize(at + 3 + n, 0);
            self.tags.push(Slot { id, at, value_words: n });
            self.tags.len() - 1
        }

        /// The message: tags, the end tag, zero padding to a multiple of 16
        /// bytes, with the total size in word 0.
        pub fn finish(&self) -> Vec<u32> {
            let mut w = self.words.clone();
            w.push(0);
            w.resize(w.len().next_multiple_of(4), 0);
            w[0] = (w.len() * 4) as u32;
            w
        }

        /// The firmware's answer to this request (the buffer it rewrote).
        pub fn reply<'a>(&'a self, words: &'a [u32]) -> Result<Reply<'a>, PropertyError> {
            if words.len() < self.words.len() + 1 {
                return Err(PropertyError::Malformed);
            }
            if words[1] != RESPONSE_OK {
                return Err(PropertyError::Failed(words[1]));
            }
            Ok(Reply { request: self, words })
        }
    }

    /// A checked reply.
    pub struct Reply<'a> {
        request: &'a Request,
        words: &'a [u32],
    }

    impl Reply<'_> {
        /// The answer's value words of tag `index` (as many as the firmware
        /// says it wrote, rounded up to words).
        pub fn value(&self, index: usize) -> Result<&[u32], PropertyError> {
            let slot = *self.request.tags.get(index).ok_or(PropertyError::Malformed)?;
            if self.words[slot.at] != slot.id {
                return Err(PropertyError::Malformed);
            }
            let code = self.words[slot.at + 2];
            if code & TAG_RESPONSE == 0 {
                return Err(PropertyError::NotAnswered(slot.id));
            }
            let bytes = (code & !TAG_RESPONSE) as usize;
            let words = bytes.div_ceil(4);
            if words > slot.value_words {
                return Err(PropertyError::Truncated {
                    tag: slot.id,
                    needed: bytes,
                });
            }
            Ok(&self.words[slot.at + 3..slot.at + 3 + words])
        }

        /// Word `i` of tag `index`'s answer (missing words are an error).
        pub fn word(&self, index: usize, i: usize) -> Result<u32, PropertyError> {
            self.value(index)?
                .get(i)
                .copied()
                .ok_or(PropertyError::NotAnswered(self.request.tags[index].id))
        }
    }

    /// Words as the little-endian bytes the firmware reads.
    pub fn to_bytes(words: &[u32], out: &mut [u8]) {
        for (w, b) in words.iter().zip(out.chunks_exact_mut(4)) {
            b.copy_from_slice(&w.to_le_bytes());
        }
    }

    /// The first `n` words of little-endian `bytes`.
    pub fn from_bytes(bytes: &[u8], n: usize) -> Vec<u32> {
        bytes
            .chunks_exact(4)
            .take(n)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    /// What the firmware made of a framebuffer request.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Framebuffer {
        pub width: u32,
        pub height: u32,
        pub depth: u32,
        /// 0: BGR (bytes blue, green, red), 1: RGB.
        pub pixel_order: u32,
        /// Bus address and size of the buffer.
        pub bus: u32,
        pub size: u32,
        pub pitch: u32,
    }

    /// Tag indices of [`framebuffer_request`].
    pub struct FramebufferTags {
        physical: usize,
        depth: usize,
        order: usize,
        allocate: usize,
        pitch: usize,
    }

    /// One request that sets a `width` x `height` screen of 32-bit BGR
    /// pixels (virtual size the same, offset 0), allocates the buffer and
    /// asks for the pitch: the firmware applies the settings together.
    pub fn framebuffer_request(width: u32, height: u32) -> (Request, FramebufferTags) {
        let mut r = Request::new();
        let physical = r.tag(tag::FB_SET_PHYSICAL_SIZE, &[width, height], 2);
        r.tag(tag::FB_SET_VIRTUAL_SIZE, &[width, height], 2);
        r.tag(tag::FB_SET_VIRTUAL_OFFSET, &[0, 0], 2);
        let depth = r.tag(tag::FB_SET_DEPTH, &[32], 1);
        let order = r.tag(tag::FB_SET_PIXEL_ORDER, &[0], 1);
        // Request value: the buffer's alignment.
        let allocate = r.tag(tag::FB_ALLOCATE, &[4096], 2);
        let pitch = r.tag(tag::FB_GET_PITCH, &[], 1);
        (
            r,
            FramebufferTags {
                physical,
                depth,
                order,
                allocate,
                pitch,
            },
        )
    }

    /// The framebuffer from the reply to [`framebuffer_request`]; `None`
    /// for one that is not a usable 32-bit buffer.
    pub fn framebuffer(reply: &Reply, t: &FramebufferTags) -> Result<Option<Framebuffer>, PropertyError> {
        let fb = Framebuffer {
            width: reply.word(t.physical, 0)?,
            height: reply.word(t.physical, 1)?,
            depth: reply.word(t.depth, 0)?,
            pixel_order: reply.word(t.order, 0)?,
            bus: reply.word(t.allocate, 0)?,
            size: reply.word(t.allocate, 1)?,
            pitch: reply.word(t.pitch, 0)?,
        };
        let usable = fb.depth == 32
            && fb.width > 0
            && fb.height > 0
            && fb.bus != 0
            && u64::from(fb.pitch) >= u64::from(fb.width) * 4
            && u64::from(fb.size) >= u64::from(fb.pitch) * u64::from(fb.height);
        Ok(usable.then_some(fb))
    }
}

/// Raspberry Pi board revision codes (the firmware's `BOARD_REVISION`).
pub mod board {
    /// Model name and RAM in MiB of a new-style revision code (bit 23 set):
    /// type in bits 4-11, memory size in bits 20-22.
    pub fn describe(revision: u32) -> Option<(&'static str, u32)> {
        if revision & (1 << 23) == 0 {
            return None;
        }
        let model = match (revision >> 4) & 0xff {
            0x08 => "3B",
            0x0d => "3B+",
            0x0e => "3A+",
            0x11 => "4B",
            0x13 => "400",
            0x14 => "CM4",
            0x17 => "5",
            _ => "unknown model",
        };
        let mib = 256u32.checked_shl((revision >> 20) & 7)?;
        Some((model, mib))
    }
}

/// Drawing into a framebuffer's bytes.
pub mod draw {
    use alloc::vec;
    use alloc::vec::Vec;
    use userlib::services::display::{pixel, Info, Rect};

    /// The pixel value of `0xRRGGBB` for the firmware's pixel order (see
    /// [`crate::property::Framebuffer::pixel_order`]): in BGR order it is
    /// the display protocol's BGRX; in RGB order red and blue swap places.
    pub fn pixel_for(rgb: u32, pixel_order: u32) -> u32 {
        let p = pixel(rgb);
        if pixel_order == 1 {
            (p & 0xff00_ff00) | ((p >> 16) & 0xff) | ((p & 0xff) << 16)
        } else {
            p
        }
    }

    /// Fills `rect` (already clipped to the screen) of the frame in
    /// `bytes` with `pixel`, one aligned 32-bit store per pixel (the
    /// framebuffer may be device memory, where wider or unaligned stores
    /// fault). Rows past the end of `bytes` are left alone.
    pub fn fill(bytes: &mut [u8], info: &Info, rect: Rect, pixel: u32) {
        let px = pixel.to_le_bytes();
        for y in rect.y..rect.y + rect.h {
            let start = y as usize * info.stride as usize + rect.x as usize * 4;
            let Some(row) = bytes.get_mut(start..start + rect.w as usize * 4) else {
                return;
            };
            for p in row.chunks_exact_mut(4) {
                p.copy_from_slice(&px);
            }
        }
    }

    /// The boot splash: rectangles and their `0xRRGGBB` colours, in order,
    /// clipped to the screen: a dark background, a framed emblem in the
    /// middle and a bar under it.
    pub fn splash(info: &Info) -> Vec<(Rect, u32)> {
        let (w, h) = (info.width, info.height);
        let full = Rect { x: 0, y: 0, w, h };
        let side = (w.min(h) / 4).max(4);
        let (x, y) = ((w - side.min(w)) / 2, (h - side.min(h)) / 2);
        let border = (side / 8).max(1);
        let emblem = Rect {
            x,
            y,
            w: side.min(w),
            h: side.min(h),
        };
        let inner = Rect {
            x: x + border,
            y: y + border,
            w: emblem.w.saturating_sub(2 * border).max(1),
            h: emblem.h.saturating_sub(2 * border).max(1),
        };
        let core = Rect {
            x: x + 2 * border,
            y: y + 2 * border,
            w: emblem.w.saturating_sub(4 * border).max(1),
            h: emblem.h.saturating_sub(4 * border).max(1),
        };
        let mut v = vec![
            (full, 0x10_18_28),
            (emblem, 0x2a_9d_8f),
            (inner, 0x10_18_28),
            (core, 0xe9_c4_6a),
        ];
        let bar_y = y + emblem.h + border * 2;
        if bar_y + border < h {
            v.push((
                Rect {
                    x,
                    y: bar_y,
                    w: emblem.w,
                    h: border,
                },
                0xf4_a2_61,
            ));
        }
        v.into_iter()
            .filter_map(|(r, c)| Rect::clip(&r.to_words(), w, h).ok().map(|r| (r, c)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::draw::*;
    use super::property::*;
    use super::*;
    use userlib::services::display::{Info, Rect, FORMAT_BGRX8888};

    #[test]
    fn board_revisions() {
        assert_eq!(board::describe(0xb03115), Some(("4B", 2048)));
        assert_eq!(board::describe(0xd03114), Some(("4B", 8192)));
        assert_eq!(board::describe(0xa02082), Some(("3B", 1024)));
        assert_eq!(board::describe(0x0010), None, "old-style code");
    }

    #[test]
    fn bus_addresses() {
        assert_eq!(bus::from_physical(0x0123_4560), Some(0xc123_4560));
        assert_eq!(bus::from_physical(0x4000_0000), None);
        assert_eq!(bus::to_physical(0xfe40_0000), 0x3e40_0000);
        assert_eq!(bus::to_physical(0x3c10_0000), 0x3c10_0000);
        assert_eq!(bus::mailbox_word(0xc000_1000, CHANNEL), Some(0xc000_1008));
        assert_eq!(bus::mailbox_word(0xc000_1004, CHANNEL), None);
    }

    #[test]
    fn request_layout() {
        let mut r = Request::new();
        let a = r.tag(tag::BOARD_REVISION, &[], 1);
        let b = r.tag(tag::ARM_MEMORY, &[], 2);
        let w = r.finish();
        assert_eq!((a, b), (0, 1));
        assert_eq!(
            w,
            [
                48,
                REQUEST,
                tag::BOARD_REVISION,
                4,
                0,
                0,
                tag::ARM_MEMORY,
                8,
                0,
                0,
                0,
                0
            ]
        );
        assert_eq!(w.len() % 4, 0);
        let mut bytes = [0u8; 48];
        to_bytes(&w, &mut bytes);
        assert_eq!(from_bytes(&bytes, w.len()), w);
    }

    /// Answers like the firmware: every tag answered with `answers[i]`.
    fn answer(r: &Request, answers: &[&[u32]]) -> alloc::vec::Vec<u32> {
        let mut w = r.finish();
        w[1] = RESPONSE_OK;
        let mut at = 2;
        for a in answers {
            let size = w[at + 1] as usize / 4;
            w[at + 2] = 0x8000_0000 | (a.len() * 4) as u32;
            w[at + 3..at + 3 + a.len()].copy_from_slice(a);
            at += 3 + size;
        }
        w
    }

    #[test]
    fn replies_are_checked() {
        let mut r = Request::new();
        let rev = r.tag(tag::BOARD_REVISION, &[], 1);
        let mem = r.tag(tag::ARM_MEMORY, &[], 2);
        let w = answer(&r, &[&[0xc03111], &[0, 0x3c00_0000]]);
        let reply = r.reply(&w).unwrap();
        assert_eq!(reply.word(rev, 0), Ok(0xc03111));
        assert_eq!(reply.value(mem), Ok(&[0, 0x3c00_0000][..]));
        assert_eq!(reply.word(mem, 2), Err(PropertyError::NotAnswered(tag::ARM_MEMORY)));
        assert_eq!(reply.value(7).err(), Some(PropertyError::Malformed));

        // Unanswered request, failed buffer, short buffer, moved tag,
        // oversized answer.
        let unanswered = r.finish();
        assert_eq!(r.reply(&unanswered).err(), Some(PropertyError::Failed(REQUEST)));
        let mut failed = w.clone();
        failed[1] = 0x8000_0001;
        assert_eq!(r.reply(&failed).err(), Some(PropertyError::Failed(0x8000_0001)));
        assert_eq!(r.reply(&w[..4]).err(), Some(PropertyError::Malformed));
        let mut moved = w.clone();
        moved[2] = 0x1234;
        assert_eq!(
            r.reply(&moved).unwrap().value(rev).err(),
            Some(PropertyError::Malformed)
        );
        let mut big = w.clone();
        big[4] = 0x8000_0000 | 64;
        assert_eq!(
            r.reply(&big).unwrap().value(rev).err(),
            Some(PropertyError::Truncated {
                tag: tag::BOARD_REVISION,
                needed: 64
            })
        );
        let mut silent = w.clone();
        silent[4] = 0;
        assert_eq!(
            r.reply(&silent).unwrap().value(rev).err(),
            Some(PropertyError::NotAnswered(tag::BOARD_REVISION))
        );
    }

    #[test]
    fn framebuffer_setup() {
        let (r, t) = framebuffer_request(1280, 720);
        let ok: &[&[u32]] = &[
            &[1280, 720],
            &[1280, 720],
            &[0, 0],
            &[32],
            &[0],
            &[0x3c10_0000, 1280 * 720 * 4],
            &[1280 * 4],
        ];
        let w = answer(&r, ok);
        let fb = framebuffer(&r.reply(&w).unwrap(), &t).unwrap().unwrap();
        assert_eq!((fb.width, fb.height, fb.pitch, fb.bus), (1280, 720, 5120, 0x3c10_0000));
        // The firmware settled on 16 bits: not usable.
        let mut bad = ok.to_vec();
        bad[3] = &[16];
        let w = answer(&r, &bad);
        assert_eq!(framebuffer(&r.reply(&w).unwrap(), &t), Ok(None));
        // A buffer smaller than pitch x height: not usable.
        bad[3] = &[32];
        bad[5] = &[0x3c10_0000, 4096];
        let w = answer(&r, &bad);
        assert_eq!(framebuffer(&r.reply(&w).unwrap(), &t), Ok(None));
    }

    fn screen(w: u32, h: u32, stride: u32) -> Info {
        Info {
            width: w,
            height: h,
            stride,
            format: FORMAT_BGRX8888,
            rows: h,
        }
    }

    #[test]
    fn fill_writes_only_the_rectangle() {
        let info = screen(4, 3, 20);
        let mut fb = alloc::vec![0u8; 60];
        fill(&mut fb, &info, Rect { x: 1, y: 1, w: 2, h: 2 }, 0xff11_2233);
        for y in 0..3 {
            for x in 0..5 {
                let p = u32::from_le_bytes(fb[y * 20 + x * 4..y * 20 + x * 4 + 4].try_into().unwrap());
                let inside = (1..3).contains(&x) && (1..3).contains(&y);
                assert_eq!(p, if inside { 0xff11_2233 } else { 0 }, "({x}, {y})");
            }
        }
        // A frame shorter than the screen says: no panic.
        fill(&mut fb[..30], &info, Rect { x: 0, y: 0, w: 4, h: 3 }, 1);
    }

    #[test]
    fn pixel_orders() {
        assert_eq!(pixel_for(0x112233, 0), 0xff11_2233);
        assert_eq!(pixel_for(0x112233, 1), 0xff33_2211);
    }

    #[test]
    fn splash_stays_on_screen() {
        for (w, h) in [(1280, 720), (640, 480), (1, 1), (3, 1000), (1920, 1080)] {
            let info = screen(w, h, w * 4);
            let s = splash(&info);
            assert_eq!(s[0].0, Rect::full(&info));
            assert!(s.len() >= if w >= 64 && h >= 64 { 5 } else { 1 }, "{w}x{h}");
            for (r, _) in s {
                assert!(r.w > 0 && r.h > 0, "{w}x{h}: {r:?}");
                assert!(r.x + r.w <= w && r.y + r.h <= h, "{w}x{h}: {r:?}");
            }
        }
    }
}
