//! HID reports as evdev events: the boot keyboard's 8-byte report
//! (modifier bits, a reserved byte, up to 6 key usages), diffed against
//! the previous one into key presses and releases, each batch ended by
//! `SYN_REPORT` as virtio-input's are.

use userlib::services::input::{Event, EV_KEY, EV_SYN, SYN_REPORT};

/// The evdev key code of HID keyboard usage `usage` (page 7), 0 for none
/// (as Linux's `hid_keyboard` table: a..z, digits, Enter, Esc, ...).
pub fn keycode(usage: u8) -> u16 {
    const LETTERS: [u8; 26] = [
        30, 48, 46, 32, 18, 33, 34, 35, 23, 36, 37, 38, 50, 49, 24, 25, 16, 19, 31, 20, 22, 47, 17, 45, 21, 44,
    ];
    // 0x1e..=0x67: 1..0, Enter, Esc, Backspace, Tab, Space, - = [ ] \ #
    // ; ' ` , . / CapsLock F1..F12 SysRq ScrollLock Pause Insert Home
    // PageUp Delete End PageDown Right Left Down Up NumLock KP/ KP* KP-
    // KP+ KPEnter KP1..KP9 KP0 KP. 102nd Compose Power KP=.
    const REST: [u8; 74] = [
        2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 28, 1, 14, 15, 57, 12, 13, 26, 27, 43, 43, 39, 40, 41, 51, 52, 53, 58, 59, 60,
        61, 62, 63, 64, 65, 66, 67, 68, 87, 88, 99, 70, 119, 110, 102, 104, 111, 107, 109, 106, 105, 108, 103, 69, 98,
        55, 74, 78, 96, 79, 80, 81, 75, 76, 77, 71, 72, 73, 82, 83, 86, 127, 116, 117,
    ];
    match usage {
        0x04..=0x1d => LETTERS[(usage - 0x04) as usize] as u16,
        0x1e..=0x67 => REST[(usage - 0x1e) as usize] as u16,
        _ => 0,
    }
}

/// The evdev codes of the modifier bits 0..8 (left Ctrl, Shift, Alt,
/// Meta, then the right ones).
pub const MODIFIERS: [u16; 8] = [29, 42, 56, 125, 97, 54, 100, 126];

/// Why a report was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportError {
    /// Shorter than the modifier byte, the reserved byte and one key.
    Short(usize),
    /// The keyboard says too many keys are down (usage 1, ErrorRollOver,
    /// in every slot): its keys are unknown, the last state stays.
    Rollover,
}

impl core::fmt::Display for ReportError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReportError::Short(n) => write!(f, "keyboard report of {n} bytes (needs 3 to 8)"),
            ReportError::Rollover => write!(f, "keyboard reports rollover (too many keys)"),
        }
    }
}

/// Key usages a boot report holds.
pub const KEYS: usize = 6;

/// A boot keyboard's state: the last report's modifiers and keys.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Keyboard {
    modifiers: u8,
    keys: [u8; KEYS],
}

impl Keyboard {
    pub fn new() -> Keyboard {
        Keyboard::default()
    }

    /// Takes one report (the first 8 bytes count; a shorter one holds
    /// fewer keys) and passes the presses and releases since the last one
    /// to `out` (releases first), then `SYN_REPORT` if there were any.
    /// Returns how many key events it passed.
    pub fn report(&mut self, report: &[u8], mut out: impl FnMut(Event)) -> Result<usize, ReportError> {
        if report.len() < 3 {
            return Err(ReportError::Short(report.len()));
        }
        let slots = &report[2..report.len().min(2 + KEYS)];
        if slots.iter().all(|&k| k == 1) {
            return Err(ReportError::Rollover);
        }
        let mut keys = [0u8; KEYS];
        // Usages 1..=3 are error codes, not keys; unknown usages have no code.
        // A usage repeated within one report counts once.
        for (i, &u) in slots.iter().enumerate() {
            if keycode(u) != 0 && !keys[..i].contains(&u) {
                keys[i] = u;
            }
        }
        let mut n = 0;
        let mut emit = |code: u16, value: i32| {
            out(Event {
                kind: EV_KEY,
                code,
                value,
            });
            n += 1;
        };
        let modifiers = report[0];
        for (bit, &code) in MODIFIERS.iter().enumerate() {
            let (was, is) = (self.modifiers >> bit & 1, modifiers >> bit & 1);
            if was == 1 && is == 0 {
                emit(code, 0);
            }
        }
        for &k in self.keys.iter().filter(|&&k| k != 0) {
            if !keys.contains(&k) {
                emit(keycode(k), 0);
            }
        }
        for (bit, &code) in MODIFIERS.iter().enumerate() {
            let (was, is) = (self.modifiers >> bit & 1, modifiers >> bit & 1);
            if was == 0 && is == 1 {
                emit(code, 1);
            }
        }
        for &k in keys.iter() {
            if k != 0 && !self.keys.contains(&k) {
                emit(keycode(k), 1);
            }
        }
        self.modifiers = modifiers;
        self.keys = keys;
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
    use userlib::services::input::{KEY_A, KEY_ENTER, KEY_ESC, KEY_SPACE, KEY_Z};

    fn run(k: &mut Keyboard, r: &[u8]) -> Result<Vec<(u16, i32)>, ReportError> {
        let mut v = Vec::new();
        k.report(r, |e| {
            if e.kind == EV_SYN {
                v.push((0xffff, 0))
            } else {
                v.push((e.code, e.value))
            }
        })
        .map(|_| v)
    }

    const SYN: (u16, i32) = (0xffff, 0);

    #[test]
    fn table() {
        assert_eq!(keycode(0x04), KEY_A);
        assert_eq!(keycode(0x1d), KEY_Z);
        assert_eq!(keycode(0x28), KEY_ENTER);
        assert_eq!(keycode(0x29), KEY_ESC);
        assert_eq!(keycode(0x2c), KEY_SPACE);
        assert_eq!(keycode(0x1e), 2, "1");
        assert_eq!(keycode(0x27), 11, "0");
        assert_eq!(keycode(0x3a), 59, "F1");
        assert_eq!(keycode(0x45), 88, "F12");
        assert_eq!(keycode(0x52), 103, "Up");
        assert_eq!(keycode(0x67), 117, "KP=");
        for u in [0, 1, 2, 3, 0x68, 0xe0, 0xff] {
            assert_eq!(keycode(u), 0, "usage {u:#x}");
        }
    }

    #[test]
    fn press_and_release() {
        let mut k = Keyboard::new();
        assert_eq!(run(&mut k, &[0, 0, 4, 0, 0, 0, 0, 0]), Ok(vec![(KEY_A, 1), SYN]));
        // The same report again (an idle repeat): nothing.
        assert_eq!(run(&mut k, &[0, 0, 4, 0, 0, 0, 0, 0]), Ok(vec![]));
        // Shift down, a still held, z pressed.
        assert_eq!(
            run(&mut k, &[2, 0, 4, 0x1d, 0, 0, 0, 0]),
            Ok(vec![(42, 1), (KEY_Z, 1), SYN])
        );
        // The keys move slots: no events.
        assert_eq!(run(&mut k, &[2, 0, 0x1d, 4, 0, 0, 0, 0]), Ok(vec![]));
        // All up: releases.
        assert_eq!(
            run(&mut k, &[0, 0, 0, 0, 0, 0, 0, 0]),
            Ok(vec![(42, 0), (KEY_Z, 0), (KEY_A, 0), SYN])
        );
    }

    #[test]
    fn malformed_reports() {
        let mut k = Keyboard::new();
        assert_eq!(run(&mut k, &[]), Err(ReportError::Short(0)));
        assert_eq!(run(&mut k, &[0, 0]), Err(ReportError::Short(2)));
        // Short but with a key: used.
        assert_eq!(run(&mut k, &[0, 0, 4]), Ok(vec![(KEY_A, 1), SYN]));
        // Rollover: the state stays (a still down), nothing sent.
        assert_eq!(run(&mut k, &[0, 0, 1, 1, 1, 1, 1, 1]), Err(ReportError::Rollover));
        assert_eq!(run(&mut k, &[0, 0, 4, 0, 0, 0, 0, 0]), Ok(vec![]));
        // Longer than 8 bytes: the rest is ignored.
        let mut long = [0x05u8; 64];
        long[0] = 0;
        long[2] = 4;
        assert_eq!(run(&mut k, &long), Ok(vec![(48, 1), SYN]), "b pressed, a still held");
        // Error codes and unknown usages are no keys; duplicates press once.
        let mut k = Keyboard::new();
        assert_eq!(run(&mut k, &[0, 0xff, 2, 3, 0xee, 7, 7, 7]), Ok(vec![(32, 1), SYN]));
        assert_eq!(run(&mut k, &[0, 0, 0, 0, 0, 0, 0, 0]), Ok(vec![(32, 0), SYN]));
    }
}
