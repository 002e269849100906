//! Key presses (evdev key codes, as the keyboard service and the
//! compositor's `EV_KEY` deliver them) to the bytes a terminal sends: a
//! US layout with Shift and Ctrl, Enter as CR, Backspace as DEL, and
//! VT100 sequences for the cursor keys. What the shell's line editor
//! reads from a serial console, a screen terminal gets from this.

use alloc::vec::Vec;

/// Unshifted and shifted characters of the keys from code 2 (`1`) to 53
/// (`/`); 0 where a key has no character.
const CHARS: [(u8, u8); 52] = {
    let plain = b"1234567890-=\0\0qwertyuiop[]\0\0asdfghjkl;'`\0\\zxcvbnm,./";
    let shift = b"!@#$%^&*()_+\0\0QWERTYUIOP{}\0\0ASDFGHJKL:\"~\0|ZXCVBNM<>?";
    let mut t = [(0u8, 0u8); 52];
    let mut i = 0;
    while i < 52 {
        t[i] = (plain[i], shift[i]);
        i += 1;
    }
    t
};

const KEY_BACKSPACE: u16 = 14;
const KEY_TAB: u16 = 15;
const KEY_ENTER: u16 = 28;
const KEY_LEFTCTRL: u16 = 29;
const KEY_LEFTSHIFT: u16 = 42;
const KEY_RIGHTSHIFT: u16 = 54;
const KEY_SPACE: u16 = 57;
const KEY_KPENTER: u16 = 96;
const KEY_RIGHTCTRL: u16 = 97;
const KEY_HOME: u16 = 102;
const KEY_UP: u16 = 103;
const KEY_LEFT: u16 = 105;
const KEY_RIGHT: u16 = 106;
const KEY_END: u16 = 107;
const KEY_DOWN: u16 = 108;
const KEY_DELETE: u16 = 111;

/// The modifier keys held down.
#[derive(Clone, Copy, Debug, Default)]
pub struct Keyboard {
    shift: u8,
    ctrl: u8,
}

impl Keyboard {
    pub const fn new() -> Keyboard {
        Keyboard { shift: 0, ctrl: 0 }
    }

    /// One key event (`value` 1 down, 0 up, 2 repeat); the bytes it types
    /// are appended to `out`.
    pub fn key(&mut self, code: u16, value: u32, out: &mut Vec<u8>) {
        let down = value != 0;
        let held = |n: &mut u8| *n = if down { 1 } else { 0 };
        match code {
            KEY_LEFTSHIFT | KEY_RIGHTSHIFT => return held(&mut self.shift),
            KEY_LEFTCTRL | KEY_RIGHTCTRL => return held(&mut self.ctrl),
            _ if !down => return,
            _ => {}
        }
        let seq: &[u8] = match code {
            KEY_BACKSPACE => b"\x7f",
            KEY_TAB => b"\t",
            KEY_ENTER | KEY_KPENTER => b"\r",
            KEY_SPACE => b" ",
            KEY_UP => b"\x1b[A",
            KEY_DOWN => b"\x1b[B",
            KEY_RIGHT => b"\x1b[C",
            KEY_LEFT => b"\x1b[D",
            KEY_HOME => b"\x1b[H",
            KEY_END => b"\x1b[F",
            KEY_DELETE => b"\x1b[3~",
            2..=53 => {
                let (plain, shifted) = CHARS[code as usize - 2];
                let c = if self.shift != 0 { shifted } else { plain };
                if c == 0 {
                    return;
                }
                if self.ctrl != 0 {
                    // Ctrl with a letter (or @[\]^_): its control code.
                    if c.is_ascii_alphabetic() || (b'@'..=b'_').contains(&c) {
                        out.push(c.to_ascii_uppercase() & 0x1f);
                    }
                    return;
                }
                out.push(c);
                return;
            }
            _ => return,
        };
        out.extend_from_slice(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(keys: &[(u16, u32)]) -> Vec<u8> {
        let mut k = Keyboard::new();
        let mut out = Vec::new();
        for &(code, value) in keys {
            k.key(code, value, &mut out);
        }
        out
    }

    #[test]
    fn letters_digits_and_shift() {
        // h, i, Shift down, 1, Shift up, Enter; releases type nothing.
        let keys = [
            (35, 1),
            (35, 0),
            (23, 1),
            (23, 0),
            (42, 1),
            (2, 1),
            (2, 0),
            (42, 0),
            (28, 1),
        ];
        assert_eq!(typed(&keys), b"hi!\r");
        assert_eq!(typed(&[(54, 1), (16, 1), (54, 0), (16, 1)]), b"Qq");
        assert_eq!(typed(&[(52, 1), (53, 1), (43, 1), (57, 1), (12, 1)]), b"./\\ -");
        // Repeat types again.
        assert_eq!(typed(&[(30, 1), (30, 2), (30, 2)]), b"aaa");
    }

    #[test]
    fn control_and_cursor_keys() {
        assert_eq!(typed(&[(29, 1), (46, 1), (29, 0), (46, 1)]), b"\x03c", "Ctrl-C, then c");
        assert_eq!(typed(&[(97, 1), (22, 1)]), b"\x15", "Ctrl-U");
        assert_eq!(typed(&[(29, 1), (2, 1)]), b"", "Ctrl-1 types nothing");
        assert_eq!(
            typed(&[(14, 1), (103, 1), (105, 1), (111, 1)]),
            b"\x7f\x1b[A\x1b[D\x1b[3~"
        );
        // Keys with no character (Esc, F1, a code past the table).
        assert_eq!(typed(&[(1, 1), (59, 1), (200, 1), (0, 1)]), b"");
    }
}
