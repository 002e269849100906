//! `compositor`: surfaces on the one screen (served by
//! `servers/compositor`, the only task routed to `display`, `keyboard` and
//! `touch`).
//!
//! A client draws into memory it owns — a memory object from its own pool
//! — and shares it with the compositor (`READ`\|`MAP`, never `WRITE`); the
//! compositor never maps it: it reads the damaged rows with `MemoryRead`
//! as it composes them onto the screen. Nothing
//! travels back: no call returns another client's pixels or the screen's
//! (there is no screenshot call).
//!
//! | label | words in | capability in | reply |
//! |---|---|---|---|
//! | [`INFO`] | — | — | `[screen w, h, role, area x, y, w, h, px per 10 mm]` |
//! | [`CONNECT`] | — | notification (`SEND`) | [`crate::proto::OK`] |
//! | [`CREATE`] | `[w, h, flags]` | — | `[surface]` |
//! | [`ATTACH`] | `[surface, w, h, stride, tag]` | memory (`READ`\|`MAP`) | OK |
//! | [`DAMAGE`] | `[surface, x, y, w, h]` | — | OK |
//! | [`COMMIT`] | `[surface]` | — | OK |
//! | [`DESTROY`] | `[surface]` | — | OK |
//! | [`EVENTS`] | — | — | `[count, dropped, event words...]` |
//! | [`ACTIVATE`] | text: program name | — | OK (role [`ROLE_HOME`] only): shows that app, or opens the panel if it names the panel's task |
//! | [`HIDE`] | — | — | OK (the panel's task only): closes the panel |
//! | [`BUFFER`] | `[surface, w, h]` | — | OK: a compositor-owned buffer (black) becomes the surface's pending buffer |
//! | [`WRITE`] | `[surface, x, y, w, h, stride]` | memory (`READ`\|`MAP`) | OK: the pixels written into the surface's owned buffer, the rectangle damaged |
//!
//! **State.** [`ATTACH`], [`DAMAGE`] and a new size are *pending* state;
//! [`COMMIT`] applies all of it at once (double-buffered, as Wayland's
//! `wl_surface`). The surface's size is its buffer's: attaching a buffer of
//! another size and committing is the resize. Damage is in buffer pixels;
//! a commit with a new buffer and no damage damages the whole surface.
//! Only damaged screen rectangles are recomposed and flushed.
//!
//! **Buffers.** Pixels are [`crate::services::display::FORMAT_BGRX8888`]
//! words `0xAARRGGBB`; a surface created with [`FLAG_ALPHA`] is blended
//! with premultiplied alpha, others are opaque. The buffer must hold
//! `stride * h` bytes. The compositor reads a committed buffer until
//! another one is committed; then it sends [`EV_RELEASE`] with the old
//! buffer's `tag`, and the client may reuse it. A buffer the client
//! revokes (or a client that dies) takes its surface off the screen, at
//! any moment, in the middle of a compose too (the read fails; the frame
//! is composed again without it): the compositor never faults on it. A
//! capability already revoked when the compositor looks at it gets
//! `InvalidArgument` ([`ATTACH`], [`WRITE`]). An opaque surface's alpha
//! bytes may reach the frame as they are (the display ignores them).
//!
//! **Owned buffers (projection).** A client whose memory the compositor
//! cannot map — a phone app projecting onto a TV through the soft bus
//! (`docs/BUS.md`, *Screen projection*), whose memory objects are copied
//! across, at most 64 KiB each — asks [`BUFFER`]: the compositor
//! allocates a `w` x `h` opaque buffer (`w * h * 4` bytes, zeroed: black)
//! from its own pool and makes it the surface's pending buffer. [`WRITE`]
//! then copies a rectangle of pixels, `h` rows of `w` pixels `stride`
//! bytes apart in the memory object the message carries, into that
//! buffer at `(x, y)`, and adds the rectangle to the pending damage: the
//! client sends a frame, or its damage, in pieces of at most
//! [`MAX_WRITE_BYTES`] and then [`COMMIT`]s. [`WRITE`] goes to the
//! pending buffer if one waits, else to the committed one: there is one
//! buffer, so a frame composed for other damage between a [`WRITE`] and
//! its [`COMMIT`] may show the new pixels early. The commit that first
//! shows an owned buffer brings its client's app forward, centred in the
//! app area (a projection opens on the screen, as a cast does; `Esc` goes
//! home as for any app). A client through the bus cannot [`CONNECT`] (a
//! notification does not cross the bus): it gets no signal, and may poll
//! [`EVENTS`].
//! All owned buffers together get at most the compositor's `owned=`
//! argument (KiB; the TV's profile sets it, others do not): with none
//! [`BUFFER`] fails with `NotSupported`, past it with `OutOfMemory`.
//! [`WRITE`] fails with `InvalidArgument` for a surface without an owned
//! buffer, a rectangle that is empty or leaves the buffer, a `stride`
//! below `w * 4` or above [`MAX_SIDE`]` * 4`, or an object that is not
//! memory readable and mappable or smaller than
//! `stride * (h - 1) + w * 4` bytes; it then changes nothing. The pixels
//! are read with `MemoryRead` too: an object revoked during the copy gets
//! `InvalidArgument`, with the rows before it written.
//!
//! **Events.** The compositor never calls a client. It queues events (a
//! bounded queue per client: the oldest are dropped, `dropped` counts
//! them) and signals bit [`EVENT_BIT`] on the client's [`CONNECT`]ed
//! notification; the client fetches them with [`EVENTS`]. Each event is
//! two words: `kind | surface << 16`, then a payload ([`Event`]).
//! [`EV_FRAME`] follows the flush of a frame that showed a commit
//! (pacing: draw the next frame after it).
//!
//! **Roles.** The compositor places a surface by its client's role, which
//! it gives by program name (its `args`: `bar=`, `home=`, `panel=`): the
//! status bar on top, home below the apps, the control-center panel over
//! everything and hidden until the swipe down from the top edge. Other
//! clients are apps: one at a time is shown, over home, in
//! the area [`INFO`] reports. The panel's task gets [`EV_SHOWN`] when the
//! panel opens (1) and closes (0). Where `panel=` names home's task (the
//! watch: no room for a second full-screen window) that task keeps role
//! [`ROLE_HOME`], home is shown when the panel opens, and it draws the
//! panel in its own surface on that event. The panel closes when its task
//! dies (a restarted one starts with it closed). Dead clients are looked
//! for once a second, when a new client first calls, and on a [`CONNECT`]
//! from a known client whose task has restarted since it first called (a
//! restarted task keeps its badge: its old incarnation is dead): their
//! surfaces go, and their buffers with them. A task's client of its own
//! (`crate::proto::NS_LOOKUP_CLIENT`: the bus's connection for a remote
//! device) is a client apart, dead with its task or when it says
//! `crate::proto::BYE` (the device left); at most 8 of one task's.
//!
//! **Input.** A touch goes to the topmost shown surface under the finger,
//! in surface coordinates ([`EV_TOUCH_DOWN`], [`EV_TOUCH_MOVE`],
//! [`EV_TOUCH_UP`]; the surface that got the down gets the rest). Keys go
//! to the focused surface (the panel when shown, else the shown app, else
//! home). System gestures never reach clients: a swipe down from the top
//! edge opens the panel, a swipe up from the bottom edge goes home; on
//! keyboards, `F1` opens the panel and `Esc` goes back.
//!
//! **Limits.** Surfaces up to [`MAX_SIDE`] pixels a side, [`MAX_SURFACES`]
//! per client; a request that breaks them, names a surface the caller
//! does not own, or is malformed gets `InvalidArgument` and changes
//! nothing.

use crate::ipc::{Message, Timeout};
use crate::names::Connection;
use crate::{Error, Handle, Rights};
use abi::BUFFER_WORDS;

/// The service name.
pub const NAME: &str = "compositor";
pub const INFO: u16 = 1;
pub const CONNECT: u16 = 2;
pub const CREATE: u16 = 3;
pub const ATTACH: u16 = 4;
pub const DAMAGE: u16 = 5;
pub const COMMIT: u16 = 6;
pub const DESTROY: u16 = 7;
pub const EVENTS: u16 = 8;
pub const ACTIVATE: u16 = 9;
pub const HIDE: u16 = 10;
pub const BUFFER: u16 = 11;
pub const WRITE: u16 = 12;

/// The most bytes one [`WRITE`] through the soft bus can carry (its
/// memory objects are copied across, at most this large).
pub const MAX_WRITE_BYTES: usize = 64 * 1024;

/// [`CREATE`] flag: the surface has alpha (premultiplied).
pub const FLAG_ALPHA: u64 = 1;

/// Largest surface side.
pub const MAX_SIDE: u32 = 4096;
/// Most surfaces per client.
pub const MAX_SURFACES: usize = 4;
/// The notification bit the compositor signals when events are queued.
pub const EVENT_BIT: u64 = 1;

/// Client roles ([`INFO`]).
pub const ROLE_APP: u64 = 0;
pub const ROLE_BAR: u64 = 1;
pub const ROLE_HOME: u64 = 2;
pub const ROLE_PANEL: u64 = 3;

/// Event kinds.
pub const EV_FRAME: u16 = 1;
/// Payload: the released buffer's tag.
pub const EV_RELEASE: u16 = 2;
/// Payload: `x | y << 32` (surface pixels).
pub const EV_TOUCH_DOWN: u16 = 3;
pub const EV_TOUCH_MOVE: u16 = 4;
pub const EV_TOUCH_UP: u16 = 5;
/// Payload: `code | value << 32` (evdev key code; value 1 down, 0 up, 2 repeat).
pub const EV_KEY: u16 = 6;
/// The client's app was shown (payload 1) or hidden (0); to the panel's
/// task: the panel opened (1) or closed (0).
pub const EV_SHOWN: u16 = 7;

/// Most events one [`EVENTS`] reply carries.
pub const MAX_EVENTS: usize = (BUFFER_WORDS - 2) / 2;

/// One event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Event {
    pub kind: u16,
    pub surface: u16,
    pub payload: u64,
}

impl Event {
    pub fn to_words(&self) -> [u64; 2] {
        [self.kind as u64 | (self.surface as u64) << 16, self.payload]
    }

    pub fn from_words(a: u64, b: u64) -> Event {
        Event {
            kind: a as u16,
            surface: (a >> 16) as u16,
            payload: b,
        }
    }

    /// Touch position: `(x, y)`.
    pub fn xy(&self) -> (i32, i32) {
        (self.payload as u32 as i32, (self.payload >> 32) as u32 as i32)
    }

    pub fn touch(kind: u16, surface: u16, x: i32, y: i32) -> Event {
        Event {
            kind,
            surface,
            payload: x as u32 as u64 | (y as u32 as u64) << 32,
        }
    }
}

/// An [`EVENTS`] reply.
pub fn pack_events(events: impl Iterator<Item = Event>, dropped: u64) -> Message {
    let mut words = [0u64; BUFFER_WORDS];
    let mut n = 0;
    for e in events.take(MAX_EVENTS) {
        let [a, b] = e.to_words();
        words[2 + 2 * n] = a;
        words[3 + 2 * n] = b;
        n += 1;
    }
    words[0] = n as u64;
    words[1] = dropped;
    Message::with_words(crate::proto::OK, &words[..2 + 2 * n])
}

/// The events of an [`EVENTS`] reply (a count beyond what it holds is cut).
pub fn unpack_events(m: &Message, out: &mut [Event; MAX_EVENTS]) -> (usize, u64) {
    let n = (m.word(0) as usize).min(m.len().saturating_sub(2) / 2).min(MAX_EVENTS);
    for (i, e) in out.iter_mut().enumerate().take(n) {
        *e = Event::from_words(m.word(2 + 2 * i), m.word(3 + 2 * i));
    }
    (n, m.word(1))
}

/// What [`INFO`] tells a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Info {
    pub width: u32,
    pub height: u32,
    pub role: u64,
    /// Where this client's surfaces go (x, y, w, h).
    pub area: (u32, u32, u32, u32),
    /// Pixels per 10 mm (density: size text by it).
    pub density: u32,
}

impl Info {
    pub fn to_words(&self) -> [u64; 8] {
        let (x, y, w, h) = self.area;
        [
            self.width as u64,
            self.height as u64,
            self.role,
            x as u64,
            y as u64,
            w as u64,
            h as u64,
            self.density as u64,
        ]
    }

    pub fn from_words(w: &[u64]) -> Option<Info> {
        let g = |i: usize| w.get(i).and_then(|v| u32::try_from(*v).ok());
        Some(Info {
            width: g(0)?,
            height: g(1)?,
            role: *w.get(2)?,
            area: (g(3)?, g(4)?, g(5)?, g(6)?),
            density: g(7)?,
        })
    }
}

const TIMEOUT: Timeout = Timeout::millis(2000);

/// A compositor client: one connection, reconnected (and told so) after
/// the compositor restarts.
pub struct Client {
    conn: Connection,
    /// This client's notification (wait on it for [`EVENT_BIT`]).
    pub notification: Handle,
    connected: bool,
}

impl Client {
    /// A client signalled on `notification` (a notification this task
    /// made; the compositor gets a `SEND` copy).
    pub const fn new(notification: Handle) -> Client {
        Client {
            conn: Connection::new(NAME),
            notification,
            connected: false,
        }
    }

    /// Calls the compositor; `Err(PeerDied)` means it restarted and every
    /// surface must be made again (see `ui::Window`).
    pub fn call(&mut self, msg: &Message) -> Result<Message, Error> {
        if !self.connected {
            let mut m = Message::new(CONNECT);
            m.push_cap(self.notification, Rights::SEND);
            self.conn.call(&m, TIMEOUT)?;
            self.connected = true;
        }
        let r = self.conn.call(msg, TIMEOUT);
        if let Err(Error::PeerDied | Error::BadHandle | Error::WrongType) = r {
            self.connected = false;
            return Err(Error::PeerDied);
        }
        r
    }

    pub fn info(&mut self) -> Result<Info, Error> {
        let r = self.call(&Message::new(INFO))?;
        Info::from_words(r.words()).ok_or(Error::InvalidState)
    }

    /// Fetches queued events into `out`: how many, and how many were dropped.
    pub fn events(&mut self, out: &mut [Event; MAX_EVENTS]) -> Result<(usize, u64), Error> {
        let r = self.call(&Message::new(EVENTS))?;
        Ok(unpack_events(&r, out))
    }

    /// Shows the app named `program`, or opens the control center if
    /// `program` is its task (home only).
    pub fn activate(&mut self, program: &str) -> Result<(), Error> {
        self.call(&crate::ipc::pack_text(ACTIVATE, program)).map(drop)
    }

    /// Closes the panel (the panel's task closing it).
    pub fn hide(&mut self) -> Result<(), Error> {
        self.call(&Message::new(HIDE)).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_lying_counts() {
        let evs: alloc::vec::Vec<Event> = (0..40).map(|i| Event::touch(EV_TOUCH_DOWN, 2, i, -i)).collect();
        let m = pack_events(evs.iter().copied(), 3);
        let mut out = [Event::default(); MAX_EVENTS];
        let (n, dropped) = unpack_events(&m, &mut out);
        assert_eq!((n, dropped), (MAX_EVENTS, 3));
        assert_eq!(&out[..n], &evs[..MAX_EVENTS]);
        assert_eq!(out[5].xy(), (5, -5));
        let lying = Message::with_words(0, &[1000, 0, 1, 2]);
        assert_eq!(unpack_events(&lying, &mut out).0, 1);
        assert_eq!(unpack_events(&Message::new(0), &mut out).0, 0);
    }

    #[test]
    fn info_round_trip() {
        let i = Info {
            width: 540,
            height: 1170,
            role: ROLE_HOME,
            area: (0, 48, 540, 1122),
            density: 63,
        };
        assert_eq!(Info::from_words(&i.to_words()), Some(i));
        assert_eq!(Info::from_words(&[1, 2, 3]), None);
        assert_eq!(Info::from_words(&[1 << 40, 2, 3, 4, 5, 6, 7, 8]), None);
    }
}
