//! HID report descriptors, as far as an absolute pointer (a tablet, a
//! touch screen: QEMU's usb-tablet) needs them: where X, Y and the buttons
//! sit in the input report, and the axes' ranges; its reports turned into
//! the events virtio-input's tablet sends (`ABS_X`, `ABS_Y`, `BTN_LEFT`...,
//! then `SYN_REPORT`).

use userlib::services::input::{Event, ABS_X, ABS_Y, BTN_LEFT, EV_ABS, EV_KEY, EV_SYN, SYN_REPORT};

/// Report descriptor bytes read at most.
pub const MAX_DESCRIPTOR: usize = 512;
/// Buttons kept (left, right, middle).
pub const BUTTONS: usize = 3;

/// One value in the input report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Bit offset from the report's first data byte (after the report ID).
    pub bit: u32,
    /// Bits, 1..=32.
    pub size: u32,
    pub min: i32,
    pub max: i32,
}

impl Field {
    /// The field's value in `data` (unsigned, as absolute axes and
    /// buttons are); `None` if the report is too short for it.
    fn get(&self, data: &[u8]) -> Option<u32> {
        let end = self.bit as usize + self.size as usize;
        if end > data.len() * 8 {
            return None;
        }
        let mut v: u64 = 0;
        for i in 0..self.size as usize {
            let b = self.bit as usize + i;
            v |= (((data[b / 8] >> (b % 8)) & 1) as u64) << i;
        }
        Some(v as u32)
    }
}

/// An absolute pointer's input report layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The report ID its reports start with (0: reports have none).
    pub report_id: u8,
    pub x: Field,
    pub y: Field,
    pub buttons: [Option<Field>; BUTTONS],
}

/// Why a report descriptor is not an absolute pointer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutError {
    /// An item runs past the end.
    Truncated,
    /// No absolute X and Y (a mouse, a keyboard, a gamepad...).
    NotAbsolute,
    /// A field of more than 32 bits, or a report of more than 4 KiB.
    TooLarge,
}

impl core::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            LayoutError::Truncated => "report descriptor: an item runs past its end",
            LayoutError::NotAbsolute => "report descriptor: no absolute X and Y",
            LayoutError::TooLarge => "report descriptor: a field or report too large",
        })
    }
}

const PAGE_DESKTOP: u32 = 0x01;
const PAGE_BUTTON: u32 = 0x09;
const USAGE_X: u32 = 0x30;
const USAGE_Y: u32 = 0x31;
/// Usages kept per main item.
const MAX_USAGES: usize = 16;

fn signed(data: &[u8]) -> i32 {
    match data.len() {
        1 => data[0] as i8 as i32,
        2 => i16::from_le_bytes([data[0], data[1]]) as i32,
        4 => i32::from_le_bytes([data[0], data[1], data[2], data[3]]),
        _ => 0,
    }
}

fn unsigned(data: &[u8]) -> u32 {
    data.iter().rev().fold(0, |v, &b| v << 8 | b as u32)
}

impl Layout {
    /// Finds absolute X, Y and buttons 1..=3 among the input items of the
    /// first report (ID) that has X and Y.
    pub fn parse(desc: &[u8]) -> Result<Layout, LayoutError> {
        let desc = &desc[..desc.len().min(MAX_DESCRIPTOR)];
        let (mut page, mut size, mut count, mut min, mut max, mut id) = (0u32, 0u32, 0u32, 0i32, 0i32, 0u8);
        let mut usages = [0u32; MAX_USAGES];
        let mut n_usages = 0usize;
        let (mut usage_min, mut usage_max) = (None::<u32>, None::<u32>);
        // Bit offset within the current report ID's report.
        let mut offsets = [0u32; 256];
        let mut x = None;
        let mut y = None;
        let mut buttons = [None; BUTTONS];
        let mut found_id = None;
        let mut at = 0;
        while at < desc.len() {
            let prefix = desc[at];
            if prefix == 0xfe {
                // A long item: skip it whole.
                let len = *desc.get(at + 1).ok_or(LayoutError::Truncated)? as usize;
                at += 3 + len;
                continue;
            }
            let len = [0, 1, 2, 4][(prefix & 3) as usize];
            let data = desc.get(at + 1..at + 1 + len).ok_or(LayoutError::Truncated)?;
            at += 1 + len;
            let (kind, tag) = ((prefix >> 2) & 3, prefix >> 4);
            match (kind, tag) {
                // Main: Input.
                (0, 0x8) => {
                    let flags = unsigned(data);
                    let (constant, variable, relative) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0);
                    if size > 32 || count > 256 {
                        return Err(LayoutError::TooLarge);
                    }
                    let base = offsets[id as usize];
                    for i in 0..count {
                        let usage = match (usage_min, usage_max) {
                            (Some(lo), Some(hi)) if n_usages == 0 => lo.saturating_add(i).min(hi),
                            _ if n_usages > 0 => usages[(i as usize).min(n_usages - 1)],
                            _ => 0,
                        };
                        let field = Field {
                            bit: base + i * size,
                            size,
                            min,
                            max,
                        };
                        if constant || !variable || size == 0 || found_id.is_some_and(|f| f != id) {
                            continue;
                        }
                        let full = if usage > 0xffff { usage } else { page << 16 | usage };
                        match (full >> 16, full & 0xffff) {
                            (PAGE_DESKTOP, USAGE_X) if !relative && x.is_none() => {
                                x = Some(field);
                                found_id = Some(id);
                            }
                            (PAGE_DESKTOP, USAGE_Y) if !relative && y.is_none() => y = Some(field),
                            (PAGE_BUTTON, b @ 1..=3) if buttons[b as usize - 1].is_none() => {
                                buttons[b as usize - 1] = Some(field)
                            }
                            _ => {}
                        }
                    }
                    offsets[id as usize] = base + size * count;
                    if offsets[id as usize] > 4096 * 8 {
                        return Err(LayoutError::TooLarge);
                    }
                    (n_usages, usage_min, usage_max) = (0, None, None);
                }
                // Other main items (output, feature, collections): locals end.
                (0, _) => (n_usages, usage_min, usage_max) = (0, None, None),
                // Globals.
                (1, 0x0) => page = unsigned(data),
                (1, 0x1) => min = signed(data),
                (1, 0x2) => max = if min >= 0 { unsigned(data) as i32 } else { signed(data) },
                (1, 0x7) => size = unsigned(data),
                (1, 0x8) => id = unsigned(data) as u8,
                (1, 0x9) => count = unsigned(data),
                // Locals.
                (2, 0x0) if n_usages < MAX_USAGES => {
                    usages[n_usages] = unsigned(data);
                    n_usages += 1;
                }
                (2, 0x1) => usage_min = Some(unsigned(data)),
                (2, 0x2) => usage_max = Some(unsigned(data)),
                _ => {}
            }
        }
        match (x, y) {
            (Some(x), Some(y)) if x.max > x.min && y.max > y.min => Ok(Layout {
                report_id: found_id.unwrap_or(0),
                x,
                y,
                buttons,
            }),
            _ => Err(LayoutError::NotAbsolute),
        }
    }
}

/// An absolute pointer's state: the last position and buttons sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tablet {
    layout: Layout,
    last: Option<(u32, u32, [bool; BUTTONS])>,
}

impl Tablet {
    pub fn new(layout: Layout) -> Tablet {
        Tablet { layout, last: None }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Takes one report: the position (clamped to the axes' ranges) if it
    /// moved, the buttons that changed, then `SYN_REPORT`. A report of
    /// another ID, or too short for X and Y, is ignored (`Err` with its
    /// length).
    pub fn report(&mut self, report: &[u8], mut out: impl FnMut(Event)) -> Result<usize, usize> {
        let data = if self.layout.report_id != 0 {
            match report.split_first() {
                Some((&id, rest)) if id == self.layout.report_id => rest,
                _ => return Err(report.len()),
            }
        } else {
            report
        };
        let l = &self.layout;
        let clamp = |f: &Field, v: u32| (v as i64).clamp(f.min as i64, f.max as i64) as u32;
        let (Some(x), Some(y)) = (l.x.get(data), l.y.get(data)) else {
            return Err(report.len());
        };
        let (x, y) = (clamp(&l.x, x), clamp(&l.y, y));
        let mut buttons = [false; BUTTONS];
        for (b, f) in buttons.iter_mut().zip(&l.buttons) {
            *b = f.and_then(|f| f.get(data)).is_some_and(|v| v != 0);
        }
        let mut n = 0;
        let mut emit = |kind, code, value: i32| {
            out(Event { kind, code, value });
            n += 1;
        };
        let (lx, ly, lb) = self.last.unwrap_or((u32::MAX, u32::MAX, [false; BUTTONS]));
        if x != lx {
            emit(EV_ABS, ABS_X, x as i32);
        }
        if y != ly {
            emit(EV_ABS, ABS_Y, y as i32);
        }
        for (i, (&now, &was)) in buttons.iter().zip(&lb).enumerate() {
            if now != was {
                emit(EV_KEY, BTN_LEFT + i as u16, now as i32);
            }
        }
        self.last = Some((x, y, buttons));
        if n > 0 {
            out(Event {
                kind: EV_SYN,
                code: SYN_REPORT,
                value: 0,
            });
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// QEMU's usb-tablet report descriptor (hw/usb/dev-hid.c's layout:
    /// 3 buttons, 5 bits padding, X and Y of 16 bits 0..=32767, a wheel).
    const QEMU_TABLET: &[u8] = &[
        0x05, 0x01, 0x09, 0x02, 0xa1, 0x01, 0x09, 0x01, 0xa1, 0x00, 0x05, 0x09, 0x19, 0x01, 0x29, 0x03, 0x15, 0x00,
        0x25, 0x01, 0x95, 0x03, 0x75, 0x01, 0x81, 0x02, 0x95, 0x01, 0x75, 0x05, 0x81, 0x01, 0x05, 0x01, 0x09, 0x30,
        0x09, 0x31, 0x15, 0x00, 0x26, 0xff, 0x7f, 0x35, 0x00, 0x46, 0xff, 0x7f, 0x75, 0x10, 0x95, 0x02, 0x81, 0x02,
        0x05, 0x01, 0x09, 0x38, 0x15, 0x81, 0x25, 0x7f, 0x35, 0x00, 0x45, 0x00, 0x75, 0x08, 0x95, 0x01, 0x81, 0x06,
        0xc0, 0xc0,
    ];

    /// A boot mouse's: relative X and Y.
    const MOUSE: &[u8] = &[
        0x05, 0x01, 0x09, 0x02, 0xa1, 0x01, 0x05, 0x09, 0x19, 0x01, 0x29, 0x03, 0x15, 0x00, 0x25, 0x01, 0x95, 0x03,
        0x75, 0x01, 0x81, 0x02, 0x95, 0x01, 0x75, 0x05, 0x81, 0x01, 0x05, 0x01, 0x09, 0x30, 0x09, 0x31, 0x15, 0x81,
        0x25, 0x7f, 0x75, 0x08, 0x95, 0x02, 0x81, 0x06, 0xc0,
    ];

    fn events(t: &mut Tablet, r: &[u8]) -> Result<Vec<(u16, u16, i32)>, usize> {
        let mut v = Vec::new();
        t.report(r, |e| v.push((e.kind, e.code, e.value))).map(|_| v)
    }

    #[test]
    fn qemu_tablet() {
        let l = Layout::parse(QEMU_TABLET).unwrap();
        assert_eq!(l.report_id, 0);
        assert_eq!(
            l.x,
            Field {
                bit: 8,
                size: 16,
                min: 0,
                max: 32767
            }
        );
        assert_eq!(l.y.bit, 24);
        assert_eq!(l.buttons[0].unwrap().bit, 0);
        assert_eq!(l.buttons[2].unwrap().bit, 2);
        let mut t = Tablet::new(l);
        let syn = (EV_SYN, SYN_REPORT, 0);
        assert_eq!(
            events(&mut t, &[1, 0x00, 0x40, 0xff, 0x1f, 0]),
            Ok(vec![
                (EV_ABS, ABS_X, 0x4000),
                (EV_ABS, ABS_Y, 0x1fff),
                (EV_KEY, BTN_LEFT, 1),
                syn
            ])
        );
        assert_eq!(events(&mut t, &[1, 0x00, 0x40, 0xff, 0x1f, 0]), Ok(vec![]), "no change");
        assert_eq!(
            events(&mut t, &[0, 0x00, 0x40, 0xff, 0x1f, 0]),
            Ok(vec![(EV_KEY, BTN_LEFT, 0), syn])
        );
    }

    #[test]
    fn malformed() {
        assert_eq!(Layout::parse(MOUSE), Err(LayoutError::NotAbsolute));
        assert_eq!(Layout::parse(&[]), Err(LayoutError::NotAbsolute));
        assert_eq!(Layout::parse(&QEMU_TABLET[..41]), Err(LayoutError::Truncated));
        // A 64-bit field.
        let mut big = QEMU_TABLET.to_vec();
        big[49] = 64;
        assert_eq!(Layout::parse(&big), Err(LayoutError::TooLarge));
        // An empty range (max 0).
        let mut flat = QEMU_TABLET.to_vec();
        flat[41] = 0;
        flat[42] = 0;
        assert_eq!(Layout::parse(&flat), Err(LayoutError::NotAbsolute));
        // 255 axes of 16 bits: X and Y stay the first two.
        let mut many = QEMU_TABLET.to_vec();
        many[51] = 0xff;
        assert_eq!(Layout::parse(&many).unwrap().y.bit, 24);
        // A count of 65535 fields: more than 256 is refused.
        let mut huge = QEMU_TABLET[..50].to_vec();
        huge.extend_from_slice(&[0x96, 0xff, 0xff, 0x81, 0x02]);
        assert_eq!(Layout::parse(&huge), Err(LayoutError::TooLarge));
        // Reports too short for X and Y are ignored; values beyond the
        // range are clamped.
        let mut t = Tablet::new(Layout::parse(QEMU_TABLET).unwrap());
        assert_eq!(events(&mut t, &[1, 2, 3]), Err(3));
        assert_eq!(events(&mut t, &[]), Err(0));
        let got = events(&mut t, &[0, 0xff, 0xff, 0xff, 0xff]).unwrap();
        assert_eq!(got[0], (EV_ABS, ABS_X, 32767));
        // Garbage descriptors never panic.
        let mut seed = 0x1234_5678u32;
        for len in 0..300 {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            if let Ok(l) = Layout::parse(&junk) {
                let _ = Tablet::new(l).report(&junk, |_| {});
            }
        }
    }

    #[test]
    fn report_ids() {
        // The tablet's items behind report ID 2.
        let mut d = QEMU_TABLET[..10].to_vec();
        d.extend_from_slice(&[0x85, 0x02]);
        d.extend_from_slice(&QEMU_TABLET[10..]);
        let l = Layout::parse(&d).unwrap();
        assert_eq!(l.report_id, 2);
        let mut t = Tablet::new(l);
        assert_eq!(events(&mut t, &[1, 0, 0, 0, 0, 0, 0]), Err(7), "another report's ID");
        assert!(events(&mut t, &[2, 1, 5, 0, 6, 0, 0])
            .unwrap()
            .contains(&(EV_ABS, ABS_X, 5)));
    }
}
