//! The pure parts: what a device is (from its event bitmaps) and the
//! bounded event queue between the interrupt thread and the readers.

use userlib::services::input::{Event, Kind, ABS_X, ABS_Y, REL_X, REL_Y};

/// Events kept for readers; older ones are dropped when it is full.
pub const CAPACITY: usize = 256;

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

/// A bounded FIFO of events that drops the oldest when full.
pub struct Ring {
    buf: [Event; CAPACITY],
    head: usize,
    len: usize,
    dropped: u64,
}

const NONE: Event = Event {
    kind: 0,
    code: 0,
    value: 0,
};

impl Ring {
    pub const fn new() -> Ring {
        Ring {
            buf: [NONE; CAPACITY],
            head: 0,
            len: 0,
            dropped: 0,
        }
    }

    pub fn push(&mut self, e: Event) {
        if self.len == CAPACITY {
            self.head = (self.head + 1) % CAPACITY;
            self.len -= 1;
            self.dropped += 1;
        }
        self.buf[(self.head + self.len) % CAPACITY] = e;
        self.len += 1;
    }

    pub fn pop(&mut self) -> Option<Event> {
        if self.len == 0 {
            return None;
        }
        let e = self.buf[self.head];
        self.head = (self.head + 1) % CAPACITY;
        self.len -= 1;
        Some(e)
    }

    /// The `i`th oldest event, left in the queue.
    pub fn peek(&self, i: usize) -> Option<Event> {
        (i < self.len).then(|| self.buf[(self.head + i) % CAPACITY])
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Events dropped since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped
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

    fn ev(i: i32) -> Event {
        Event {
            kind: 1,
            code: 2,
            value: i,
        }
    }

    #[test]
    fn ring_keeps_order_and_drops_the_oldest() {
        let mut r = Ring::new();
        assert!(r.pop().is_none() && r.is_empty());
        for i in 0..10 {
            r.push(ev(i));
        }
        assert_eq!(r.pop(), Some(ev(0)));
        assert_eq!(r.len(), 9);
        for i in 10..(CAPACITY as i32 + 20) {
            r.push(ev(i));
        }
        assert_eq!(r.len(), CAPACITY);
        assert_eq!(r.dropped(), 19);
        let got: Vec<i32> = core::iter::from_fn(|| r.pop()).map(|e| e.value).collect();
        assert_eq!(got.len(), CAPACITY);
        assert_eq!(*got.last().unwrap(), CAPACITY as i32 + 19);
        assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "in order");
        assert_eq!(got[0] as u64, r.dropped() + 1, "the oldest went");
    }
}
