//! Messages, the IPC buffer, and timeouts.
//!
//! A [`Message`] holds a label, up to [`BUFFER_WORDS`] words and up to
//! [`BUFFER_CAPS`] capabilities. Sending one puts words 0–3 in registers
//! and the rest (and the capabilities) in the calling thread's IPC buffer;
//! [`encode`] and [`decode`] do that packing and are pure, so they are
//! tested on the host.

use abi::{Handle, IpcBuffer, IpcFlags, MessageInfo, Rights, BUFFER_CAPS, BUFFER_WORDS, REGISTER_WORDS};

/// How long a blocking IPC call may wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Timeout {
    /// Wait as long as it takes.
    #[default]
    Forever,
    /// Fail with `WouldBlock` instead of waiting.
    NonBlocking,
    /// Fail with `TimedOut` after this many microseconds.
    Micros(u64),
}

impl Timeout {
    /// Milliseconds, for readability at call sites.
    pub const fn millis(ms: u64) -> Timeout {
        Timeout::Micros(ms * 1000)
    }

    /// The flag bits for `x1` and the value for `x6`.
    pub fn encode(self) -> (u64, u64) {
        match self {
            Timeout::Forever => (0, 0),
            Timeout::NonBlocking => (IpcFlags::NONBLOCK.bits(), 0),
            Timeout::Micros(us) => (IpcFlags::TIMEOUT.bits(), us),
        }
    }
}

/// When a wait must end, on the system clock ([`crate::syscall::now_us`],
/// microseconds since boot): a [`Timeout`] turned into a point in time, so
/// a loop that waits again and again (for more data, a retry) still ends
/// when the whole operation's time is up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline(Option<u64>);

impl Deadline {
    /// Never.
    pub const NEVER: Deadline = Deadline(None);

    /// `timeout` from `now`: `Forever` never ends, `NonBlocking` has ended
    /// already.
    pub fn from(timeout: Timeout, now: u64) -> Deadline {
        match timeout {
            Timeout::Forever => Deadline(None),
            Timeout::NonBlocking => Deadline(Some(now)),
            Timeout::Micros(us) => Deadline(Some(now.saturating_add(us))),
        }
    }

    /// `timeout` from now.
    pub fn after(timeout: Timeout) -> Deadline {
        match timeout {
            Timeout::Forever => Deadline(None),
            _ => Deadline::from(timeout, crate::syscall::now_us()),
        }
    }

    /// Whether it has passed at `now`.
    pub fn passed_at(self, now: u64) -> bool {
        self.0.is_some_and(|d| now >= d)
    }

    /// Whether it has passed.
    pub fn passed(self) -> bool {
        self.0.is_some() && self.passed_at(crate::syscall::now_us())
    }

    /// The time left at `now`, as the timeout of one wait: `TimedOut` once
    /// it has passed.
    pub fn left_at(self, now: u64) -> Result<Timeout, abi::Error> {
        match self.0 {
            None => Ok(Timeout::Forever),
            Some(d) if now >= d => Err(abi::Error::TimedOut),
            Some(d) => Ok(Timeout::Micros(d - now)),
        }
    }

    /// The time left now ([`Deadline::left_at`]).
    pub fn left(self) -> Result<Timeout, abi::Error> {
        match self.0 {
            None => Ok(Timeout::Forever),
            Some(_) => self.left_at(crate::syscall::now_us()),
        }
    }
}

/// A capability carried by a message: the handle (the sender's, or on
/// receive the one installed in the receiver) and the rights to send it
/// with (empty on receive: use `syscall::cap_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapTransfer {
    pub handle: Handle,
    pub rights: Rights,
}

/// An IPC message. Only its label, its words up to its length, its
/// capabilities up to their count and [`Message::reply_caps`] mean
/// anything (and are compared): [`decode_into`] leaves what a longer
/// message held past them as it was.
#[derive(Clone)]
pub struct Message {
    /// What the message means; the receiver sees it unchanged.
    pub label: u16,
    len: usize,
    words: [u64; BUFFER_WORDS],
    ncaps: usize,
    caps: [CapTransfer; BUFFER_CAPS],
    /// Sent as a call: how many capabilities the reply may carry.
    reply_caps: usize,
}

impl PartialEq for Message {
    fn eq(&self, other: &Message) -> bool {
        self.label == other.label
            && self.words() == other.words()
            && self.caps() == other.caps()
            && self.reply_caps == other.reply_caps
    }
}

impl Eq for Message {}

impl core::fmt::Debug for Message {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Message")
            .field("label", &self.label)
            .field("words", &self.words())
            .field("caps", &self.caps())
            .finish()
    }
}

const NO_CAP: CapTransfer = CapTransfer {
    handle: Handle::NULL,
    rights: Rights::empty(),
};

impl Message {
    /// An empty message with `label`.
    pub const fn new(label: u16) -> Message {
        Message {
            label,
            len: 0,
            words: [0; BUFFER_WORDS],
            ncaps: 0,
            caps: [NO_CAP; BUFFER_CAPS],
            reply_caps: 0,
        }
    }

    /// A message with `label` and `words` (at most [`BUFFER_WORDS`]; more
    /// are a bug: panics).
    pub fn with_words(label: u16, words: &[u64]) -> Message {
        let mut m = Message::new(label);
        m.set_words(words);
        m
    }

    /// Replaces the words.
    pub fn set_words(&mut self, words: &[u64]) {
        assert!(words.len() <= BUFFER_WORDS, "message too long");
        self.words[..words.len()].copy_from_slice(words);
        self.len = words.len();
    }

    /// Appends a word; `false` if the message is full.
    pub fn push(&mut self, word: u64) -> bool {
        if self.len == BUFFER_WORDS {
            return false;
        }
        self.words[self.len] = word;
        self.len += 1;
        true
    }

    /// Adds a capability to transfer with `rights` (masked by what the
    /// sender holds); `false` if the message already carries
    /// [`BUFFER_CAPS`].
    pub fn push_cap(&mut self, handle: Handle, rights: Rights) -> bool {
        if self.ncaps == BUFFER_CAPS {
            return false;
        }
        self.caps[self.ncaps] = CapTransfer { handle, rights };
        self.ncaps += 1;
        true
    }

    pub fn words(&self) -> &[u64] {
        &self.words[..self.len]
    }

    /// Word `i`, or 0 past the end (messages are often shorter than the
    /// receiver expects; missing words read as 0).
    pub fn word(&self, i: usize) -> u64 {
        self.words().get(i).copied().unwrap_or(0)
    }

    /// The capabilities the message carries. On receive they are the
    /// receiver's (installed in its space by the kernel); one taken with
    /// [`Message::take_cap`] reads as [`Handle::NULL`].
    pub fn caps(&self) -> &[CapTransfer] {
        &self.caps[..self.ncaps]
    }

    /// Takes capability `i` out of a received message: the caller owns the
    /// handle from now on (keeps it, or deletes it when done). `None` past
    /// the end or when it was taken already. A server's receive loop
    /// deletes every capability nobody took ([`crate::server::serve`],
    /// [`crate::server::drop_caps`]), so a handler takes exactly those it
    /// keeps beyond the request.
    pub fn take_cap(&mut self, i: usize) -> Option<Handle> {
        let c = self.caps[..self.ncaps].get_mut(i)?;
        (c.handle != Handle::NULL).then(|| core::mem::replace(&mut c.handle, Handle::NULL))
    }

    /// This message, to be sent as a call whose reply may carry up to `n`
    /// capabilities (at most [`BUFFER_CAPS`]; more is clamped). A call
    /// accepts none unless told: the kernel refuses a reply with more than
    /// the call accepts, and the call fails with `CapsRefused` (see
    /// [`MessageInfo::reply_caps`]), so a server cannot fill the caller's
    /// capability space. A caller owns the capabilities it accepted and
    /// deletes those it does not keep.
    pub fn accepting_caps(mut self, n: usize) -> Message {
        self.reply_caps = n.min(BUFFER_CAPS);
        self
    }

    /// How many capabilities a reply to this message (as a call) may
    /// carry: see [`Message::accepting_caps`].
    pub fn reply_caps(&self) -> usize {
        self.reply_caps
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `x1` description of this message (with the capabilities a
    /// reply may carry, for a call).
    pub fn info(&self) -> MessageInfo {
        MessageInfo::new(self.label, self.len, self.ncaps).with_reply_caps(self.reply_caps)
    }

    /// Whether sending needs the IPC buffer (long, or carries capabilities).
    pub fn needs_buffer(&self) -> bool {
        self.len > REGISTER_WORDS || self.ncaps > 0
    }
}

/// Packs `msg` for sending: returns `x1` (without flags) and `x2`–`x5`,
/// and writes the long words and capabilities into `buffer`.
pub fn encode(msg: &Message, buffer: Option<&mut IpcBuffer>) -> (u64, [u64; REGISTER_WORDS]) {
    let mut regs = [0u64; REGISTER_WORDS];
    let n = msg.len.min(REGISTER_WORDS);
    regs[..n].copy_from_slice(&msg.words[..n]);
    if let Some(b) = buffer {
        if msg.len > REGISTER_WORDS {
            b.words[REGISTER_WORDS..msg.len].copy_from_slice(&msg.words[REGISTER_WORDS..msg.len]);
        }
        for (i, c) in msg.caps().iter().enumerate() {
            b.caps[i] = c.handle.0;
            b.cap_rights[i] = c.rights.bits();
        }
    }
    (msg.info().0, regs)
}

/// Unpacks a received message from `x1`, `x2`–`x5` and the IPC buffer.
/// Lengths beyond the ABI's limits are clamped (the kernel never sends
/// them, but a bad value must not make us read out of bounds).
pub fn decode(x1: u64, regs: &[u64; REGISTER_WORDS], buffer: Option<&IpcBuffer>) -> Message {
    let mut m = Message::new(0);
    decode_into(x1, regs, buffer, &mut m);
    m
}

/// [`decode`] into `m`, which then equals what `decode` returns (no new
/// [`Message`], about 600 bytes, is zeroed and copied: a server loop
/// receives each request into the same one, [`crate::server::serve`]).
/// What `m` held past the new length and capability count stays there,
/// unread ([`Message`]).
pub fn decode_into(x1: u64, regs: &[u64; REGISTER_WORDS], buffer: Option<&IpcBuffer>, m: &mut Message) {
    let (info, _) = IpcFlags::split(x1);
    let (mut len, mut ncaps) = (info.words().min(BUFFER_WORDS), info.caps().min(BUFFER_CAPS));
    let n = len.min(REGISTER_WORDS);
    m.words[..n].copy_from_slice(&regs[..n]);
    match buffer {
        Some(b) => {
            if len > REGISTER_WORDS {
                m.words[REGISTER_WORDS..len].copy_from_slice(&b.words[REGISTER_WORDS..len]);
            }
            // The kernel reports handles only; their rights are for
            // `cap_info` to tell.
            for i in 0..ncaps {
                m.caps[i] = CapTransfer {
                    handle: Handle(b.caps[i]),
                    rights: Rights::empty(),
                };
            }
        }
        None => {
            len = n;
            ncaps = 0;
        }
    }
    m.label = info.label();
    m.len = len;
    m.ncaps = ncaps;
    m.reply_caps = 0;
}

/// Words `1..` of a message hold `text` packed little-endian, word 0 its
/// length in bytes: how the user-level protocols carry strings.
pub fn pack_text(label: u16, text: &str) -> Message {
    let bytes = text.as_bytes();
    let max = (BUFFER_WORDS - 1) * 8;
    let bytes = &bytes[..floor_char_boundary(text, bytes.len().min(max))];
    let mut m = Message::new(label);
    m.push(bytes.len() as u64);
    for chunk in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        m.push(u64::from_le_bytes(w));
    }
    m
}

/// The inverse of [`pack_text`], into `out`; returns the text (lossy: a
/// malformed message yields what is valid UTF-8 of it).
pub fn unpack_text<'a>(msg: &Message, out: &'a mut [u8; (BUFFER_WORDS - 1) * 8]) -> &'a str {
    let len = (msg.word(0) as usize)
        .min(out.len())
        .min(msg.len().saturating_sub(1) * 8);
    for (i, w) in msg.words().iter().skip(1).enumerate() {
        let b = w.to_le_bytes();
        let at = i * 8;
        if at >= out.len() {
            break;
        }
        out[at..at + 8].copy_from_slice(&b);
    }
    match core::str::from_utf8(&out[..len]) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(&out[..e.valid_up_to()]).unwrap_or(""),
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The calling thread's IPC buffer, if it has one: the user library keeps
/// its address in `TPIDR_EL0` (part of every thread's context, see the ABI).
pub fn buffer_address() -> Option<u64> {
    let a = crate::arch::thread_pointer();
    (a != 0).then_some(a)
}

/// Handle `i` of the capabilities the last received message carried, read
/// straight from the IPC buffer (for register-only receive loops, which do
/// not build a [`Message`]).
pub fn received_cap(i: usize) -> Option<Handle> {
    with_buffer(|b| b.and_then(|b| b.caps.get(i).map(|c| Handle(*c))))
}

/// Runs `f` with the calling thread's IPC buffer.
pub(crate) fn with_buffer<R>(f: impl FnOnce(Option<&mut IpcBuffer>) -> R) -> R {
    match buffer_address() {
        // SAFETY: the address was set by the library at thread start to
        // this thread's own registered, mapped, page-aligned IPC buffer; no
        // other thread uses it, the kernel touches it only during this
        // thread's system calls, and the reference does not outlive `f`.
        Some(a) => f(Some(unsafe { &mut *(a as *mut IpcBuffer) })),
        None => f(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_buffer() -> IpcBuffer {
        IpcBuffer {
            words: [0; BUFFER_WORDS],
            caps: [0; BUFFER_CAPS],
            cap_rights: [0; BUFFER_CAPS],
        }
    }

    #[test]
    fn short_message_stays_in_registers() {
        let m = Message::with_words(7, &[1, 2, 3]);
        assert!(!m.needs_buffer());
        let mut b = empty_buffer();
        let (x1, regs) = encode(&m, Some(&mut b));
        assert_eq!(x1, MessageInfo::new(7, 3, 0).0);
        assert_eq!(regs, [1, 2, 3, 0]);
        assert!(b.words.iter().all(|w| *w == 0));
        assert_eq!(decode(x1, &regs, None), m);
    }

    #[test]
    fn long_message_and_caps_round_trip_through_buffer() {
        let words: [u64; BUFFER_WORDS] = core::array::from_fn(|i| i as u64 * 3 + 1);
        let mut m = Message::with_words(0xabc, &words);
        assert!(!m.push(5));
        assert!(m.push_cap(Handle(9), Rights::SEND | Rights::GRANT));
        assert!(m.push_cap(Handle(10), Rights::READ));
        let mut b = empty_buffer();
        let (x1, regs) = encode(&m, Some(&mut b));
        assert_eq!(
            &b.words[..REGISTER_WORDS],
            &[0; REGISTER_WORDS],
            "register words stay out of the buffer"
        );
        assert_eq!(b.words[REGISTER_WORDS], words[REGISTER_WORDS]);
        assert_eq!(b.caps[..2], [9, 10]);
        let got = decode(x1 | IpcFlags::NONBLOCK.bits(), &regs, Some(&b));
        assert_eq!((got.label, got.words()), (m.label, m.words()));
        assert_eq!(
            got.caps().iter().map(|c| c.handle).collect::<Vec<_>>(),
            [Handle(9), Handle(10)]
        );
        assert!(got.caps().iter().all(|c| c.rights.is_empty()));
    }

    #[test]
    fn decode_without_buffer_keeps_register_words_only() {
        let m = Message::with_words(1, &[1, 2, 3, 4, 5, 6]);
        let (x1, regs) = encode(&m, None);
        let got = decode(x1, &regs, None);
        assert_eq!(got.words(), &[1, 2, 3, 4]);
        assert_eq!(got.word(5), 0);
    }

    #[test]
    fn decode_into_a_used_message_equals_decode() {
        // A longer message with capabilities and a reply count, received
        // into: the short one that comes next reads as `decode` makes it.
        let mut b = empty_buffer();
        b.caps[..2].copy_from_slice(&[5, 6]);
        let long: [u64; 9] = core::array::from_fn(|i| i as u64 + 100);
        b.words[REGISTER_WORDS..9].copy_from_slice(&long[REGISTER_WORDS..]);
        let mut m = Message::with_words(3, &long).accepting_caps(2);
        decode_into(MessageInfo::new(8, 9, 2).0, &[100, 101, 102, 103], Some(&b), &mut m);
        assert_eq!((m.label, m.words(), m.caps().len()), (8, &long[..], 2));
        let short = Message::with_words(2, &[7, 8]);
        let (x1, regs) = encode(&short, None);
        decode_into(x1, &regs, Some(&b), &mut m);
        assert_eq!(m, decode(x1, &regs, Some(&b)));
        assert_eq!(
            (m.label, m.words(), m.caps().len(), m.reply_caps()),
            (2, &[7, 8][..], 0, 0)
        );
        assert_eq!(m.word(2), 0, "past the length");
        assert_eq!(m.take_cap(0), None, "no capability left from before");
    }

    #[test]
    fn decode_clamps_bad_lengths() {
        let x1 = MessageInfo::new(1, 255, 7).0;
        let m = decode(x1, &[1, 2, 3, 4], Some(&empty_buffer()));
        assert_eq!((m.len(), m.caps().len()), (BUFFER_WORDS, BUFFER_CAPS));
    }

    #[test]
    fn take_cap_takes_each_capability_once() {
        let mut b = empty_buffer();
        b.caps[..3].copy_from_slice(&[5, 6, 7]);
        let mut m = decode(MessageInfo::new(1, 0, 3).0, &[0; REGISTER_WORDS], Some(&b));
        assert_eq!(m.take_cap(1), Some(Handle(6)));
        assert_eq!(m.take_cap(1), None, "taken already");
        assert_eq!(m.take_cap(3), None, "past the end");
        assert_eq!(m.caps().len(), 3, "indices stay put");
        let left: Vec<_> = (0..3).filter_map(|i| m.take_cap(i)).collect();
        assert_eq!(left, [Handle(5), Handle(7)]);
        assert!(m.caps().iter().all(|c| c.handle == Handle::NULL));
    }

    #[test]
    fn a_call_states_the_capabilities_its_reply_may_carry() {
        let m = Message::with_words(4, &[1]);
        assert_eq!((m.reply_caps(), m.info().reply_caps()), (0, 0), "none unless told");
        let m = m.accepting_caps(2);
        let (x1, regs) = encode(&m, None);
        assert_eq!(x1, MessageInfo::new(4, 1, 0).with_reply_caps(2).0);
        assert_eq!(MessageInfo(x1).reply_caps(), 2);
        assert!(MessageInfo(x1).is_valid());
        assert_eq!(Message::new(4).accepting_caps(9).reply_caps(), BUFFER_CAPS, "clamped");
        // Not part of a received message.
        assert_eq!(decode(x1, &regs, None).reply_caps(), 0);
    }

    #[test]
    fn timeouts_encode_flags() {
        assert_eq!(Timeout::Forever.encode(), (0, 0));
        assert_eq!(Timeout::NonBlocking.encode(), (IpcFlags::NONBLOCK.bits(), 0));
        assert_eq!(Timeout::millis(3).encode(), (IpcFlags::TIMEOUT.bits(), 3000));
    }

    #[test]
    fn deadlines() {
        let d = Deadline::from(Timeout::millis(2), 1_000);
        assert_eq!(d.left_at(1_000), Ok(Timeout::Micros(2_000)));
        assert_eq!(d.left_at(2_999), Ok(Timeout::Micros(1)));
        assert_eq!(d.left_at(3_000), Err(abi::Error::TimedOut));
        assert!(!d.passed_at(2_999) && d.passed_at(3_000));
        let never = Deadline::from(Timeout::Forever, 1_000);
        assert_eq!(never, Deadline::NEVER);
        assert_eq!(never.left_at(u64::MAX), Ok(Timeout::Forever));
        assert!(!never.passed_at(u64::MAX));
        let now = Deadline::from(Timeout::NonBlocking, 5);
        assert_eq!(now.left_at(5), Err(abi::Error::TimedOut));
        // No wrap near the clock's end.
        assert!(!Deadline::from(Timeout::Micros(u64::MAX), 7).passed_at(u64::MAX - 1));
    }

    #[test]
    fn text_round_trips_and_truncates_on_char_boundary() {
        let mut out = [0u8; (BUFFER_WORDS - 1) * 8];
        let m = pack_text(3, "panicked at x.rs:1: boom");
        assert_eq!(m.label, 3);
        assert_eq!(unpack_text(&m, &mut out), "panicked at x.rs:1: boom");
        let long = "é".repeat(400);
        let m = pack_text(3, &long);
        let s = unpack_text(&m, &mut out);
        assert!(s.len() <= (BUFFER_WORDS - 1) * 8 && s.chars().all(|c| c == 'é'));
        assert_eq!(unpack_text(&Message::with_words(3, &[999]), &mut out), "");
    }
}
