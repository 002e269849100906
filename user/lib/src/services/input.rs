//! `input`: events from one input device (the virtio-input driver serves
//! it, one task per device). The service is named after the kind of
//! device — `keyboard`, `touch` (a touch screen or tablet: absolute
//! coordinates), `mouse` (relative motion) or `input` — with a number from
//! the second of a kind on: `keyboard`, `keyboard1`, ... ([`service_name`]).
//!
//! | label | words in | reply |
//! |---|---|---|
//! | [`INFO`] | — | record ([`crate::proto::pack_record`]) `[kind, x min, x max, y min, y max, dropped]` + the device's name |
//! | [`READ`] | `[max events, timeout ms]` | `[count, dropped, events...]` |
//!
//! Events are Linux evdev events (`type`, `code`, `value`; see the `EV_*`
//! constants), one per word ([`Event::to_word`]), in arrival order, with
//! `EV_SYN` ending each group. `READ` waits up to `timeout ms` ([`FOREVER`]:
//! no limit) for the first event, then returns all that are buffered, up
//! to `max` (at most [`MAX_EVENTS`]); if none arrives it fails with
//! `TimedOut`. The driver keeps a bounded queue and drops the oldest
//! events when no one reads; `dropped` counts them since it started.
//! Axis ranges are only meaningful for `touch` (0 otherwise): scale with
//! [`scale`].

use crate::ipc::{Message, Timeout};
use crate::names::Connection;
use crate::proto::{self, TEXT_BYTES};
use crate::Error;
use abi::BUFFER_WORDS;
use alloc::string::String;

pub const INFO: u16 = 1;
pub const READ: u16 = 2;

/// Most events one `READ` returns.
pub const MAX_EVENTS: usize = BUFFER_WORDS - 2;
/// `READ` timeout meaning "wait as long as it takes".
pub const FOREVER: u64 = u64::MAX;

// evdev event types and the codes clients most need (linux/input-event-codes.h).
pub const EV_SYN: u16 = 0x00;
pub const EV_KEY: u16 = 0x01;
pub const EV_REL: u16 = 0x02;
pub const EV_ABS: u16 = 0x03;
pub const SYN_REPORT: u16 = 0;
pub const ABS_X: u16 = 0x00;
pub const ABS_Y: u16 = 0x01;
pub const REL_X: u16 = 0x00;
pub const REL_Y: u16 = 0x01;
pub const KEY_ESC: u16 = 1;
pub const KEY_ENTER: u16 = 28;
pub const KEY_A: u16 = 30;
pub const KEY_Z: u16 = 44;
pub const KEY_SPACE: u16 = 57;
pub const BTN_LEFT: u16 = 0x110;
pub const BTN_TOUCH: u16 = 0x14a;

/// What a device is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Kind {
    Other = 0,
    Keyboard = 1,
    /// Absolute coordinates (touch screen, tablet).
    Touch = 2,
    /// Relative motion.
    Mouse = 3,
}

impl Kind {
    pub fn from_word(w: u64) -> Kind {
        match w {
            1 => Kind::Keyboard,
            2 => Kind::Touch,
            3 => Kind::Mouse,
            _ => Kind::Other,
        }
    }

    /// The service name of the first device of this kind.
    pub fn base_name(self) -> &'static str {
        match self {
            Kind::Keyboard => "keyboard",
            Kind::Touch => "touch",
            Kind::Mouse => "mouse",
            Kind::Other => "input",
        }
    }
}

/// The service name of the `index`th device of `kind` (from 0).
pub fn service_name(kind: Kind, index: usize) -> String {
    if index == 0 {
        kind.base_name().into()
    } else {
        alloc::format!("{}{index}", kind.base_name())
    }
}

/// One evdev event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Event {
    pub kind: u16,
    pub code: u16,
    pub value: i32,
}

impl Event {
    /// `type | code << 16 | value << 32`.
    pub fn to_word(&self) -> u64 {
        self.kind as u64 | (self.code as u64) << 16 | (self.value as u32 as u64) << 32
    }

    pub fn from_word(w: u64) -> Event {
        Event {
            kind: w as u16,
            code: (w >> 16) as u16,
            value: (w >> 32) as u32 as i32,
        }
    }
}

/// A device as [`INFO`] describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    pub kind: Kind,
    /// Inclusive ranges of `ABS_X` and `ABS_Y` (touch devices).
    pub x: (u32, u32),
    pub y: (u32, u32),
    /// Events dropped so far because no one read them in time.
    pub dropped: u64,
    pub name: String,
}

impl Info {
    pub fn to_message(&self) -> Message {
        proto::pack_record(
            proto::OK,
            &[
                self.kind as u64,
                self.x.0 as u64,
                self.x.1 as u64,
                self.y.0 as u64,
                self.y.1 as u64,
                self.dropped,
            ],
            &self.name,
        )
    }

    pub fn from_message(m: &Message) -> Option<Info> {
        let mut buf = [0u8; TEXT_BYTES];
        let (v, name) = proto::unpack_record(m, &mut buf);
        if v.len() < 6 {
            return None;
        }
        let w = |i: usize| v[i] as u32;
        Some(Info {
            kind: Kind::from_word(v[0]),
            x: (w(1), w(2)),
            y: (w(3), w(4)),
            dropped: v[5],
            name: name.into(),
        })
    }
}

/// Maps `value` on the axis `range` (inclusive) to `0..size` (e.g. a
/// tablet coordinate to a display pixel); values outside are clamped.
pub fn scale(value: i32, range: (u32, u32), size: u32) -> u32 {
    let (lo, hi) = (range.0 as i64, range.1 as i64);
    if hi <= lo || size == 0 {
        return 0;
    }
    let v = (value as i64).clamp(lo, hi) - lo;
    ((v * (size as i64 - 1) + (hi - lo) / 2) / (hi - lo)) as u32
}

/// The events of a [`READ`] reply, into `out`: `(events, dropped)`. A
/// count beyond what the message holds is cut to what it holds.
pub fn unpack_events<'a>(m: &Message, out: &'a mut [Event; MAX_EVENTS]) -> (&'a [Event], u64) {
    let n = (m.word(0) as usize).min(m.len().saturating_sub(2)).min(MAX_EVENTS);
    for (i, e) in out.iter_mut().enumerate().take(n) {
        *e = Event::from_word(m.word(2 + i));
    }
    (&out[..n], m.word(1))
}

/// A [`READ`] reply carrying `events` (at most [`MAX_EVENTS`]).
pub fn pack_events(events: impl Iterator<Item = Event>, dropped: u64) -> Message {
    let mut words = [0u64; BUFFER_WORDS];
    let mut n = 0;
    for e in events.take(MAX_EVENTS) {
        words[2 + n] = e.to_word();
        n += 1;
    }
    words[0] = n as u64;
    words[1] = dropped;
    Message::with_words(proto::OK, &words[..2 + n])
}

/// An input client (reconnects after the driver restarts).
pub struct Input {
    conn: Connection,
}

impl Input {
    /// A client of service `name` (`keyboard`, `touch`, `keyboard1`, ...).
    pub const fn new(name: &'static str) -> Input {
        Input {
            conn: Connection::new(name),
        }
    }

    pub fn info(&mut self) -> Result<Info, Error> {
        let r = self.conn.call(&Message::new(INFO), Timeout::millis(5000))?;
        Info::from_message(&r).ok_or(Error::InvalidState)
    }

    /// Waits up to `timeout` for events (`TimedOut` if none came); returns
    /// those read and the driver's count of dropped events.
    pub fn read<'a>(
        &mut self,
        out: &'a mut [Event; MAX_EVENTS],
        timeout: Timeout,
    ) -> Result<(&'a [Event], u64), Error> {
        let (ms, call_timeout) = match timeout {
            Timeout::Forever => (FOREVER, Timeout::Forever),
            Timeout::NonBlocking => (0, Timeout::millis(5000)),
            // The server times out first and says so; the call's own limit
            // only guards against a server that does not answer.
            Timeout::Micros(us) => (us.div_ceil(1000), Timeout::Micros(us.saturating_add(5_000_000))),
        };
        let r = self
            .conn
            .call(&Message::with_words(READ, &[MAX_EVENTS as u64, ms]), call_timeout)?;
        Ok(unpack_events(&r, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_pack_into_words() {
        let e = Event {
            kind: EV_REL,
            code: REL_Y,
            value: -5,
        };
        assert_eq!(Event::from_word(e.to_word()), e);
        let k = Event {
            kind: EV_KEY,
            code: KEY_A,
            value: 1,
        };
        assert_eq!(k.to_word(), 0x0000_0001_001e_0001);
    }

    #[test]
    fn read_replies_round_trip_and_hostile_counts() {
        let evs: alloc::vec::Vec<Event> = (0..100)
            .map(|i| Event {
                kind: EV_ABS,
                code: ABS_X,
                value: i,
            })
            .collect();
        let m = pack_events(evs.iter().copied(), 7);
        let mut out = [Event::default(); MAX_EVENTS];
        let (got, dropped) = unpack_events(&m, &mut out);
        assert_eq!((got, dropped), (&evs[..MAX_EVENTS], 7));
        let lying = Message::with_words(proto::OK, &[1000, 0, k_word()]);
        assert_eq!(unpack_events(&lying, &mut out).0.len(), 1);
        assert!(unpack_events(&Message::new(proto::OK), &mut out).0.is_empty());
    }

    fn k_word() -> u64 {
        Event {
            kind: EV_KEY,
            code: KEY_A,
            value: 1,
        }
        .to_word()
    }

    #[test]
    fn info_round_trip() {
        let i = Info {
            kind: Kind::Touch,
            x: (0, 32767),
            y: (0, 32767),
            dropped: 3,
            name: "QEMU Virtio Tablet".into(),
        };
        assert_eq!(Info::from_message(&i.to_message()), Some(i));
        assert_eq!(Info::from_message(&Message::with_words(0, &[2, 1])), None);
    }

    #[test]
    fn names_and_scaling() {
        assert_eq!(service_name(Kind::Keyboard, 0), "keyboard");
        assert_eq!(service_name(Kind::Touch, 2), "touch2");
        assert_eq!(scale(0, (0, 32767), 540), 0);
        assert_eq!(scale(32767, (0, 32767), 540), 539);
        assert_eq!(scale(16384, (0, 32767), 540), 270);
        assert_eq!(scale(-9, (0, 32767), 540), 0);
        assert_eq!(scale(40000, (0, 32767), 540), 539);
        assert_eq!(scale(5, (5, 5), 540), 0, "empty range");
    }
}
