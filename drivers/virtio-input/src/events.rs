//! The pure part: what a device is (from its event bitmaps).

use userlib::services::input::{Kind, ABS_X, ABS_Y, REL_X, REL_Y};

fn bit(bitmap: &[u8], code: u16) -> bool {
    bitmap
        .get(code as usize / 8)
        .is_some_and(|b| b & (1 << (code % 8)) != 0)
}

/// The evdev codes of the 26 letter keys (KEY_Q..KEY_P, KEY_A..KEY_L,
/// KEY_Z..KEY_M).
fn letter_keys() -> impl Iterator<Item = u16> {
    (16..=25).chain(30..=38).chain(44..=50)
}

/// A device's kind from its `EV_KEY`, `EV_ABS` and `EV_REL` code bitmaps:
/// absolute X and Y make it a touch device (tablets have buttons too),
/// most letter keys a keyboard, relative X and Y a mouse.
pub fn classify(keys: &[u8], abs: &[u8], rel: &[u8]) -> Kind {
    if bit(abs, ABS_X) && bit(abs, ABS_Y) {
        Kind::Touch
    } else if letter_keys().filter(|&k| bit(keys, k)).count() >= 20 {
        Kind::Keyboard
    } else if bit(rel, REL_X) && bit(rel, REL_Y) {
        Kind::Mouse
    } else {
        Kind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use userlib::services::input::{BTN_LEFT, BTN_TOUCH};

    fn bitmap(codes: &[u16]) -> Vec<u8> {
        let mut b = vec![0u8; 96];
        for &c in codes {
            b[c as usize / 8] |= 1 << (c % 8);
        }
        b
    }

    #[test]
    fn kinds() {
        let letters: Vec<u16> = letter_keys().collect();
        assert_eq!(letters.len(), 26);
        let all_keys: Vec<u16> = (1..=248).collect();
        assert_eq!(classify(&bitmap(&all_keys), &[], &[]), Kind::Keyboard);
        // A tablet: buttons and absolute axes.
        let tablet = classify(&bitmap(&[BTN_LEFT, BTN_TOUCH]), &bitmap(&[ABS_X, ABS_Y]), &[]);
        assert_eq!(tablet, Kind::Touch);
        assert_eq!(
            classify(&bitmap(&[BTN_LEFT]), &[], &bitmap(&[REL_X, REL_Y])),
            Kind::Mouse
        );
        // A few keys (a power button, a keypad) are not a keyboard.
        assert_eq!(classify(&bitmap(&[116, 30, 31]), &[], &[]), Kind::Other);
        assert_eq!(classify(&[], &[], &[]), Kind::Other);
        assert_eq!(classify(&[], &bitmap(&[ABS_X]), &[]), Kind::Other, "one axis");
    }
}
