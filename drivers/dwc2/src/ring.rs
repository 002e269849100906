//! A bounded FIFO of input events that drops the oldest when full (as
//! virtio-input's).

use userlib::services::input::Event;

/// Events kept for readers; older ones are dropped when it is full.
pub const CAPACITY: usize = 256;

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
    fn keeps_order_and_drops_the_oldest() {
        let mut r = Ring::new();
        assert!(r.pop().is_none() && r.is_empty());
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
