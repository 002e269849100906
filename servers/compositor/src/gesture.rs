//! Touch: evdev events from the `touch` service turned into down / move /
//! up at screen pixels ([`Decoder`]), and the system gestures taken out
//! before anything reaches a client ([`Gestures`]).

use userlib::services::input::{self, Event, ABS_X, ABS_Y, BTN_LEFT, BTN_TOUCH, EV_ABS, EV_KEY, EV_SYN, SYN_REPORT};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    Down(i32, i32),
    Move(i32, i32),
    Up(i32, i32),
}

/// Decodes one touch device's event groups (ended by `SYN_REPORT`).
pub struct Decoder {
    range: ((u32, u32), (u32, u32)),
    size: (u32, u32),
    raw: (i32, i32),
    down: bool,
    was_down: bool,
    moved: bool,
}

impl Decoder {
    /// A device with axis ranges `x`, `y` on a `width` x `height` screen.
    pub fn new(x: (u32, u32), y: (u32, u32), width: u32, height: u32) -> Decoder {
        Decoder {
            range: (x, y),
            size: (width, height),
            raw: (0, 0),
            down: false,
            was_down: false,
            moved: false,
        }
    }

    fn at(&self) -> (i32, i32) {
        (
            input::scale(self.raw.0, self.range.0, self.size.0) as i32,
            input::scale(self.raw.1, self.range.1, self.size.1) as i32,
        )
    }

    /// The touch a group of events makes, when `e` ends the group.
    pub fn feed(&mut self, e: Event) -> Option<Touch> {
        match (e.kind, e.code) {
            (EV_ABS, ABS_X) => {
                self.raw.0 = e.value;
                self.moved = true;
            }
            (EV_ABS, ABS_Y) => {
                self.raw.1 = e.value;
                self.moved = true;
            }
            (EV_KEY, BTN_TOUCH | BTN_LEFT) => self.down = e.value != 0,
            (EV_SYN, SYN_REPORT) => {
                let (x, y) = self.at();
                let t = match (self.was_down, self.down) {
                    (false, true) => Some(Touch::Down(x, y)),
                    (true, false) => Some(Touch::Up(x, y)),
                    (true, true) if self.moved => Some(Touch::Move(x, y)),
                    _ => None,
                };
                self.was_down = self.down;
                self.moved = false;
                return t;
            }
            _ => {}
        }
        None
    }
}

/// What a touch means after the system gestures are taken out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Give it to the client under the finger (or holding the touch).
    Deliver(Touch),
    /// A touch that began on an edge but was no swipe: a tap there.
    Tap(i32, i32),
    OpenPanel,
    GoHome,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    Top,
    Bottom,
    Client,
}

/// Swipe down from the top edge: the control center; swipe up from the
/// bottom edge: home. A swipe must travel a tenth of the screen's height.
pub struct Gestures {
    height: i32,
    edge: i32,
    start: Option<(Start, i32, i32)>,
}

impl Gestures {
    /// `edge`: how many pixels from the top and bottom a swipe starts in.
    pub fn new(height: i32, edge: i32) -> Gestures {
        Gestures {
            height,
            edge,
            start: None,
        }
    }

    pub fn feed(&mut self, t: Touch) -> Action {
        match t {
            Touch::Down(x, y) => {
                let s = if y < self.edge {
                    Start::Top
                } else if y >= self.height - self.edge {
                    Start::Bottom
                } else {
                    Start::Client
                };
                self.start = Some((s, x, y));
                if s == Start::Client {
                    Action::Deliver(t)
                } else {
                    Action::None
                }
            }
            Touch::Move(..) => match self.start {
                Some((Start::Client, ..)) => Action::Deliver(t),
                _ => Action::None,
            },
            Touch::Up(_, y) => {
                let travel = self.height / 10;
                match self.start.take() {
                    Some((Start::Client, ..)) => Action::Deliver(t),
                    Some((Start::Top, ..)) if y - self.edge >= travel => Action::OpenPanel,
                    Some((Start::Bottom, ..)) if self.height - self.edge - y >= travel => Action::GoHome,
                    Some((_, x0, y0)) => Action::Tap(x0, y0),
                    None => Action::None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: u16, code: u16, value: i32) -> Event {
        Event { kind, code, value }
    }

    fn group(d: &mut Decoder, x: i32, y: i32, btn: Option<i32>) -> Option<Touch> {
        d.feed(ev(EV_ABS, ABS_X, x));
        d.feed(ev(EV_ABS, ABS_Y, y));
        if let Some(b) = btn {
            d.feed(ev(EV_KEY, BTN_LEFT, b));
        }
        d.feed(ev(EV_SYN, SYN_REPORT, 0))
    }

    #[test]
    fn decoder_makes_down_move_up_in_pixels() {
        let mut d = Decoder::new((0, 32767), (0, 32767), 540, 1170);
        assert_eq!(group(&mut d, 0, 0, None), None, "hovering is nothing");
        assert_eq!(group(&mut d, 16384, 16384, Some(1)), Some(Touch::Down(270, 585)));
        assert_eq!(group(&mut d, 32767, 32767, None), Some(Touch::Move(539, 1169)));
        assert_eq!(d.feed(ev(EV_SYN, SYN_REPORT, 0)), None, "no change, no event");
        assert_eq!(group(&mut d, 32767, 32767, Some(0)), Some(Touch::Up(539, 1169)));
        // Garbage: unknown events and absurd values are clamped or ignored.
        d.feed(ev(0x55, 0x1234, -7));
        assert_eq!(group(&mut d, i32::MIN, i32::MAX, Some(1)), Some(Touch::Down(0, 1169)));
    }

    #[test]
    fn system_gestures() {
        let mut g = Gestures::new(1170, 24);
        assert_eq!(g.feed(Touch::Down(270, 5)), Action::None);
        assert_eq!(g.feed(Touch::Move(270, 300)), Action::None);
        assert_eq!(g.feed(Touch::Up(270, 600)), Action::OpenPanel);
        assert_eq!(g.feed(Touch::Down(270, 1165)), Action::None);
        assert_eq!(g.feed(Touch::Up(270, 700)), Action::GoHome);
        // A tap on an edge is a tap.
        assert_eq!(g.feed(Touch::Down(100, 3)), Action::None);
        assert_eq!(g.feed(Touch::Up(100, 10)), Action::Tap(100, 3));
        // Elsewhere everything is delivered, even a long drag.
        assert_eq!(g.feed(Touch::Down(100, 500)), Action::Deliver(Touch::Down(100, 500)));
        assert_eq!(g.feed(Touch::Move(100, 5)), Action::Deliver(Touch::Move(100, 5)));
        assert_eq!(g.feed(Touch::Up(100, 5)), Action::Deliver(Touch::Up(100, 5)));
        assert_eq!(g.feed(Touch::Up(1, 1)), Action::None, "an up without a down");
    }
}
