//! What input drivers (virtio-input, dwc2's USB keyboards and tablets)
//! share: the bounded event queue between the thread that reads the device
//! and the readers ([`Ring`]), and the service: its server threads, which
//! answer `INFO` and `READ` ([`serve_requests`]; protocol:
//! `userlib::services::input`), and its name ([`register`]); [`serve`] does
//! both.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;
use userlib::abi::ObjectType;
use userlib::names;
use userlib::proto::reply_error;
use userlib::services::input::{self, pack_events, service_name, Event, Info, Kind, FOREVER, MAX_EVENTS};
use userlib::sync::Mutex;
use userlib::{process, syscall, thread, Error, Handle, Message, Timeout};

/// Events kept for readers; older ones are dropped when it is full.
pub const CAPACITY: usize = 256;
/// Service names tried per kind (`keyboard` .. `keyboard7`).
pub const MAX_OF_A_KIND: usize = 8;

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

impl Default for Ring {
    fn default() -> Ring {
        Ring::new()
    }
}

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

/// Serves `info.kind`'s service (`keyboard`, `touch`, or the first free
/// `keyboardN`...) from `ring` with `readers` server threads, each of which
/// can sit in one blocking `READ`; the name and the threads' wake-ups, to
/// signal when events were pushed. The threads live as long as the task.
pub fn serve(info: &Info, ring: &'static Mutex<Ring>, readers: usize) -> Result<(String, Vec<Handle>), Error> {
    let me = process();
    let ep = syscall::create(me.pool, ObjectType::Endpoint, 0)?;
    let mut wakes = Vec::new();
    for _ in 0..readers {
        let wake = syscall::create(me.pool, ObjectType::Notification, 0)?;
        let info = info.clone();
        let t = thread::Builder::default()
            .stack_pages(2)
            .spawn(move || serve_requests(ep, wake, info, ring))?;
        // A dropped handle would end its thread.
        core::mem::forget(t);
        wakes.push(wake);
    }
    Ok((register(info.kind, ep)?, wakes))
}

/// Registers `ep` under the first free name of `kind` (`keyboard`, then
/// `keyboard1`... up to [`MAX_OF_A_KIND`] names).
pub fn register(kind: Kind, ep: Handle) -> Result<String, Error> {
    let mut last = Error::InvalidState;
    for i in 0..MAX_OF_A_KIND {
        let name = service_name(kind, i);
        match names::register(&name, ep) {
            Ok(()) => return Ok(name),
            // Taken (by another device of this kind): the next number.
            Err(e @ Error::InvalidState) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// A server thread on `ep`: answers `INFO` (`info`, with `ring`'s dropped
/// count) and `READ` (from `ring`). `wake` is its own notification, which
/// the thread that fills `ring` signals when events arrive.
///
/// A `READ` takes events out of the queue only once its reply went: a
/// reader that died while its `READ` waited (a compositor that crashed and
/// was restarted) gets nothing, and the events stay for the next reader.
/// Taken as soon as they were packed, they went to the dead caller and were
/// lost: a restarted compositor missed the first tap.
pub fn serve_requests(ep: Handle, wake: Handle, info: Info, ring: &Mutex<Ring>) {
    let mut next = syscall::recv(ep, Timeout::Forever);
    loop {
        let mut msg = match next {
            Ok((msg, _badge)) => msg,
            Err(e) => return userlib::log::error!("server thread: {e}"),
        };
        let reply = match msg.label {
            input::INFO => Some(
                Info {
                    dropped: ring.lock().dropped(),
                    ..info.clone()
                }
                .to_message(),
            ),
            input::READ => read(msg.word(0), msg.word(1), wake, ring),
            _ => Some(reply_error(Error::InvalidArgument)),
        };
        // A request's capabilities are none of this driver's business.
        userlib::server::drop_caps(&mut msg);
        next = match reply {
            Some(r) => syscall::reply_recv(ep, &r, Timeout::Forever),
            None => syscall::recv(ep, Timeout::Forever),
        };
    }
}

/// `READ [max, timeout ms]`: waits for the first event, then replies with
/// the queued ones up to `max` and takes them out of the queue once the
/// reply went (`None`: replied here). A time-out or an error is the reply
/// to send.
pub fn read(max: u64, timeout_ms: u64, wake: Handle, ring: &Mutex<Ring>) -> Option<Message> {
    let max = (max as usize).clamp(1, MAX_EVENTS);
    let deadline = (timeout_ms != FOREVER).then(|| syscall::now_us().saturating_add(timeout_ms.saturating_mul(1000)));
    loop {
        {
            // Held across the reply, so that no other reader sends the
            // same events meanwhile.
            let mut ring = ring.lock();
            if !ring.is_empty() {
                let n = ring.len().min(max);
                let m = pack_events((0..n).filter_map(|i| ring.peek(i)), ring.dropped());
                if syscall::reply(&m).is_ok() {
                    for _ in 0..n {
                        ring.pop();
                    }
                }
                return None;
            }
        }
        let timeout = match deadline {
            None => Timeout::Forever,
            Some(d) => match d.checked_sub(syscall::now_us()).filter(|us| *us > 0) {
                Some(us) => Timeout::Micros(us),
                None => return Some(reply_error(Error::TimedOut)),
            },
        };
        // A stale wake-up (events another reader took) just loops.
        match syscall::wait(wake, timeout) {
            Ok(_) | Err(Error::TimedOut) => {}
            Err(e) => return Some(reply_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn ring_peek_leaves_the_events() {
        let mut r = Ring::new();
        for i in 0..(CAPACITY as i32 + 5) {
            r.push(ev(i));
        }
        assert_eq!(r.len(), CAPACITY);
        assert_eq!(r.dropped(), 5);
        assert_eq!(r.peek(0), Some(ev(5)));
        assert_eq!(r.pop(), Some(ev(5)));
        assert_eq!(r.peek(CAPACITY), None);
    }
}
