//! The bus's packets: UDP datagrams on port [`PORT`], every one of them
//! starting with the same fixed header (see `docs/BUS.md`):
//!
//! | bytes | field |
//! |---|---|
//! | 0..2 | magic `KB` |
//! | 2 | version, [`VERSION`] |
//! | 3 | kind ([`Kind`]) |
//! | 4..12 | sender's device id, u64 little-endian |
//! | 12..20 | receiver's device id (0 in announcements) |
//! | 20..28 | counter: an announcement's sequence number, a data message's nonce (0 in handshakes) |
//! | 28.. | body, by kind |
//!
//! Announcements go to the IPv4 broadcast address; everything else to the
//! address an announcement came from. Bodies that are not Noise messages
//! are postcard encodings of [`Announcement`] and [`SessionMsg`].

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// The bus's UDP port.
pub const PORT: u16 = 4747;
pub const MAGIC: [u8; 2] = *b"KB";
pub const VERSION: u8 = 1;
/// Bytes of the fixed header.
pub const HEADER: usize = 28;
/// Largest packet sent or taken (fits one Ethernet frame with IPv4 and UDP).
pub const MAX_PACKET: usize = 1400;

/// Longest device or profile name in an announcement.
pub const MAX_NAME: usize = 31;
/// Longest service name (`userlib::proto::MAX_NAME`).
pub const MAX_SERVICE: usize = 32;
/// Most shared services one device announces.
pub const MAX_SHARED: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Sealed [`Announcement`], broadcast every second.
    Announce = 1,
    /// Noise message 1 (`-> e`), initiator to responder.
    Hello = 2,
    /// Noise message 2 (`<- e, ee, s, es`).
    Reply = 3,
    /// Noise message 3 (`-> s, se, psk`).
    Finish = 4,
    /// A Noise transport message holding a [`SessionMsg`].
    Data = 5,
    /// Pairing by code (`crate::pair`): "a code is shown here", broadcast
    /// in clear by the showing device; the body is its name.
    Offer = 6,
    /// Pairing: the joiner's SPAKE2 message and static key.
    PairStart = 7,
    /// Pairing: the shower's SPAKE2 message, static key and confirmation.
    PairReply = 8,
    /// Pairing: the joiner's confirmation.
    PairConfirm = 9,
}

impl Kind {
    pub fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Announce,
            2 => Kind::Hello,
            3 => Kind::Reply,
            4 => Kind::Finish,
            5 => Kind::Data,
            6 => Kind::Offer,
            7 => Kind::PairStart,
            8 => Kind::PairReply,
            9 => Kind::PairConfirm,
            _ => return None,
        })
    }
}

/// Whether `s` is a name as announcements and offers carry them: 1 to
/// `max` printable ASCII bytes, no blanks.
pub fn is_word(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_graphic())
}

/// The fixed header of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub from: u64,
    pub to: u64,
    pub counter: u64,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[0..2].copy_from_slice(&MAGIC);
        h[2] = VERSION;
        h[3] = self.kind as u8;
        h[4..12].copy_from_slice(&self.from.to_le_bytes());
        h[12..20].copy_from_slice(&self.to.to_le_bytes());
        h[20..28].copy_from_slice(&self.counter.to_le_bytes());
        h
    }

    /// The header and the body of a packet; `None` if it is not one of ours
    /// (too short or too long, another magic, version or kind).
    pub fn parse(packet: &[u8]) -> Option<(Header, &[u8])> {
        if packet.len() < HEADER || packet.len() > MAX_PACKET {
            return None;
        }
        if packet[0..2] != MAGIC || packet[2] != VERSION {
            return None;
        }
        let word = |at: usize| u64::from_le_bytes(packet[at..at + 8].try_into().unwrap_or([0; 8]));
        let h = Header {
            kind: Kind::from_u8(packet[3])?,
            from: word(4),
            to: word(12),
            counter: word(20),
        };
        Some((h, &packet[HEADER..]))
    }

    /// This header followed by `body`.
    pub fn with_body(&self, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(HEADER + body.len());
        v.extend_from_slice(&self.encode());
        v.extend_from_slice(body);
        v
    }
}

/// What a device says about itself to its group (sealed, see
/// [`crate::keys`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// The device's name (`cargo xtask run --name`).
    pub name: String,
    /// Its profile's name.
    pub profile: String,
    /// The services its profile shares (`shared = [...]`).
    pub shared: Vec<String>,
}

impl Announcement {
    /// Whether every field is within bounds: names of printable ASCII
    /// without blanks, no longer than the limits.
    pub fn is_valid(&self) -> bool {
        let word = is_word;
        word(&self.name, MAX_NAME)
            && word(&self.profile, MAX_NAME)
            && self.shared.len() <= MAX_SHARED
            && self.shared.iter().all(|s| word(s, MAX_SERVICE))
    }

    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// The announcement `bytes` hold, if they hold exactly a valid one.
    pub fn decode(bytes: &[u8]) -> Option<Announcement> {
        match postcard::take_from_bytes::<Announcement>(bytes) {
            Ok((a, rest)) if rest.is_empty() && a.is_valid() => Some(a),
            _ => None,
        }
    }
}

/// Most words a remote call or reply carries (`abi::BUFFER_WORDS`).
pub const MAX_WORDS: usize = 64;
/// Most endpoint capabilities a reply carries (`abi::BUFFER_CAPS`).
pub const MAX_CAPS: usize = 4;
/// Largest memory object a call or reply carries (copied across by value,
/// see [`SessionMsg::Chunk`]); a bigger one is refused (`TooLarge`) by the
/// sending bus, and a header announcing one is dropped by the receiving
/// bus. 64 KiB: a file's bulk transfer (`userlib::fs::BUFFER_BYTES`).
pub const MAX_OBJECT: usize = 64 << 10;
/// Bytes of an object in one [`SessionMsg::Chunk`]: the largest chunk, its
/// header and its tag fit [`MAX_PACKET`].
pub const FRAGMENT: usize = 1328;
/// Most fragments one [`SessionMsg::Pull`] asks for.
pub const MAX_PULL: u32 = 16;

/// Fragments of an object of `size` bytes.
pub const fn fragments(size: usize) -> usize {
    size.div_ceil(FRAGMENT)
}

/// What a remote call is addressed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// A service the callee's profile shares, by name.
    Service(String),
    /// An endpoint the callee handed out in an earlier reply of this
    /// session ([`SessionMsg::Reply`]'s `handles`), by its number.
    Handle(u32),
}

/// What travels in a session's data messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionMsg {
    /// The responder's first message: it proves the responder holds the
    /// group key (the initiator only lists the device once it has this).
    Confirm,
    /// Are you there? (answered with [`SessionMsg::Pong`] and the same number)
    Ping(u64),
    Pong(u64),
    /// A call through a remote capability: an IPC message's label and
    /// words, for `target`. `id` numbers the caller's calls in this
    /// session, upwards; a call is sent again, with the same `id`, until
    /// its reply comes, and the callee carries out each `id` once.
    ///
    /// `object`: the call carries a memory object of this many bytes (at
    /// most [`MAX_OBJECT`]); its contents follow as [`SessionMsg::Chunk`]s
    /// the callee asks for with [`SessionMsg::Pull`], and the call is
    /// carried out once all of them came.
    Call {
        id: u64,
        target: Target,
        label: u16,
        words: Vec<u64>,
        object: Option<u32>,
    },
    /// The answer to call `id`: the reply message's label and words, and
    /// the endpoints it carried, by the numbers the callee gave them (the
    /// caller makes each a proxy in its turn). `closed`: the call's target
    /// handle is gone afterwards (say a file closed); the caller drops its
    /// proxy. `object`: as in a call; the caller pulls its contents.
    Reply {
        id: u64,
        label: u16,
        words: Vec<u64>,
        handles: Vec<u32>,
        closed: bool,
        object: Option<u32>,
    },
    /// Asks for fragments `first..first + count` (`count` at most
    /// [`MAX_PULL`]) of the object of call `id`'s reply (`reply`) or of
    /// call `id` itself (`!reply`). The sender of the object answers with
    /// those [`SessionMsg::Chunk`]s; a pull for an object it does not hold
    /// gets nothing.
    Pull {
        id: u64,
        reply: bool,
        first: u32,
        count: u32,
    },
    /// Fragment `index` of an object: bytes `index * FRAGMENT ..`, at most
    /// [`FRAGMENT`] of them ([`FRAGMENT`] but in the last).
    Chunk {
        id: u64,
        reply: bool,
        index: u32,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
}

/// [`SessionMsg::Chunk`]'s variant number (postcard writes an enum's
/// variant as this number, then the variant's fields).
const CHUNK_VARIANT: u32 = 6;

/// A [`SessionMsg::Chunk`] whose bytes stay where they are: the same
/// bytes on the wire (its first field is the variant's number), written
/// from a slice of the object sent and read as a slice of the opened
/// message, so that a fragment is not copied into a `Vec` of its own on
/// either side ([`ChunkRef::decode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef<'a> {
    variant: u32,
    pub id: u64,
    pub reply: bool,
    pub index: u32,
    #[serde(borrow, with = "serde_bytes")]
    pub bytes: &'a [u8],
}

impl<'a> ChunkRef<'a> {
    pub fn new(id: u64, reply: bool, index: u32, bytes: &'a [u8]) -> ChunkRef<'a> {
        ChunkRef {
            variant: CHUNK_VARIANT,
            id,
            reply,
            index,
            bytes,
        }
    }

    /// The fragment `bytes` hold, if they hold exactly one
    /// [`SessionMsg::Chunk`] within bounds (as [`SessionMsg::decode`]
    /// takes it); `None` for any other message.
    pub fn decode(bytes: &'a [u8]) -> Option<ChunkRef<'a>> {
        if bytes.first() != Some(&(CHUNK_VARIANT as u8)) {
            return None;
        }
        match postcard::take_from_bytes::<ChunkRef>(bytes) {
            Ok((c, [])) if c.variant == CHUNK_VARIANT && chunk_is_valid(c.index, c.bytes) => Some(c),
            _ => None,
        }
    }
}

/// The variant number of [`SessionMsg::Call`] (its place in the enum).
const CALL_VARIANT: u32 = 3;

/// A [`SessionMsg::Call`] that borrows its target and words: the same
/// bytes on the wire (its first field is the variant's number), encoded
/// without copying the service's name and the words into a message of
/// their own first (the caller sends it, again, from what it holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CallRef<'a> {
    variant: u32,
    pub id: u64,
    pub target: &'a Target,
    pub label: u16,
    pub words: &'a [u64],
    pub object: Option<u32>,
}

impl<'a> CallRef<'a> {
    pub fn new(id: u64, target: &'a Target, label: u16, words: &'a [u64], object: Option<u32>) -> CallRef<'a> {
        CallRef {
            variant: CALL_VARIANT,
            id,
            target,
            label,
            words,
            object,
        }
    }
}

/// Whether fragment `index` of `bytes` may be part of an object.
fn chunk_is_valid(index: u32, bytes: &[u8]) -> bool {
    (index as usize) < fragments(MAX_OBJECT) && !bytes.is_empty() && bytes.len() <= FRAGMENT
}

/// Appends `value`'s postcard encoding to `out` (no `Vec` of its own:
/// `out` may already hold the room the encoding needs).
pub fn encode_into<T: Serialize>(value: &T, out: Vec<u8>) -> Option<Vec<u8>> {
    postcard::serialize_with_flavor(value, Append(out)).ok()
}

/// postcard's output into a `Vec` it is given, a byte string in one
/// `extend_from_slice` (`postcard::to_extend` goes through `Extend`, a
/// byte at a time: 7,400 instructions for a 1,328-byte fragment against
/// 2,200 for `to_allocvec`).
struct Append(Vec<u8>);

impl postcard::ser_flavors::Flavor for Append {
    type Output = Vec<u8>;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.0)
    }
}

impl SessionMsg {
    /// Its encoding in a `Vec` of its own (the bus encodes into a packet's
    /// buffer: [`encode_into`]).
    pub fn encode(&self) -> Vec<u8> {
        encode_into(self, Vec::new()).unwrap_or_default()
    }

    /// The message `bytes` hold, if they hold exactly one within bounds
    /// (at most [`MAX_WORDS`] words and [`MAX_CAPS`] handles, a service
    /// name as an announcement's).
    pub fn decode(bytes: &[u8]) -> Option<SessionMsg> {
        match postcard::take_from_bytes::<SessionMsg>(bytes) {
            Ok((m, [])) if m.is_valid() => Some(m),
            _ => None,
        }
    }

    fn is_valid(&self) -> bool {
        match self {
            SessionMsg::Call {
                target, words, object, ..
            } => {
                object.is_none_or(|n| n as usize <= MAX_OBJECT)
                    && words.len() <= MAX_WORDS
                    && match target {
                        Target::Service(s) => {
                            !s.is_empty() && s.len() <= MAX_SERVICE && s.bytes().all(|b| b.is_ascii_graphic())
                        }
                        Target::Handle(_) => true,
                    }
            }
            SessionMsg::Reply {
                words, handles, object, ..
            } => {
                words.len() <= MAX_WORDS && handles.len() <= MAX_CAPS && object.is_none_or(|n| n as usize <= MAX_OBJECT)
            }
            SessionMsg::Pull { count, .. } => *count <= MAX_PULL,
            SessionMsg::Chunk { index, bytes, .. } => chunk_is_valid(*index, bytes),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    /// A fragment's bytes are postcard's byte string (the length, then the
    /// bytes), the same bytes as a sequence of `u8`: the wire format did
    /// not change when they became one (`serde_bytes`).
    #[test]
    fn a_chunk_encodes_as_its_length_then_its_bytes() {
        let m = SessionMsg::Chunk {
            id: 1,
            reply: true,
            index: 20,
            bytes: vec![9, 8, 7],
        };
        // Variant 6, id 1, true, index 20, length 3, the bytes.
        assert_eq!(m.encode(), [6, 1, 1, 20, 3, 9, 8, 7]);
        assert_eq!(SessionMsg::decode(&m.encode()), Some(m));
        let big = SessionMsg::Chunk {
            id: 2,
            reply: false,
            index: 0,
            bytes: vec![0x5a; FRAGMENT],
        };
        let e = big.encode();
        assert_eq!(e.len(), 4 + 2 + FRAGMENT);
        assert_eq!(SessionMsg::decode(&e), Some(big));
        // A length past the bytes there does not decode.
        assert_eq!(SessionMsg::decode(&e[..e.len() - 1]), None);
    }

    /// A [`CallRef`] is the same bytes as the [`SessionMsg::Call`] it
    /// stands for, and decodes as that call.
    #[test]
    fn a_call_ref_is_a_call_on_the_wire() {
        let targets = [Target::Service(String::from("rtc")), Target::Handle(7)];
        for (target, words, object) in [
            (&targets[0], &[][..], None),
            (&targets[1], &[1u64, u64::MAX, 300][..], Some(65_536)),
        ] {
            let m = SessionMsg::Call {
                id: 41,
                target: target.clone(),
                label: 0x1234,
                words: words.to_vec(),
                object,
            };
            let r = CallRef::new(41, target, 0x1234, words, object);
            let bytes = postcard::to_allocvec(&r).unwrap();
            assert_eq!(bytes, postcard::to_allocvec(&m).unwrap());
            assert_eq!(SessionMsg::decode(&bytes), Some(m));
        }
    }

    /// A [`ChunkRef`] is the same bytes as the [`SessionMsg::Chunk`] it
    /// stands for, both ways, and takes only what `SessionMsg::decode`
    /// takes as a chunk.
    #[test]
    fn a_chunk_ref_is_a_chunk_on_the_wire() {
        for (id, reply, index, len) in [(1, true, 20, 3), (300, false, 0, FRAGMENT), (u64::MAX, true, 49, 1)] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let m = SessionMsg::Chunk {
                id,
                reply,
                index,
                bytes: bytes.clone(),
            };
            let r = ChunkRef::new(id, reply, index, &bytes);
            let e = encode_into(&r, vec![0xee]).unwrap();
            assert_eq!(e[0], 0xee, "appended");
            assert_eq!(e[1..], m.encode()[..]);
            assert_eq!(ChunkRef::decode(&m.encode()), Some(r));
        }
        // Not a chunk, or not one within bounds: nothing (as decode).
        assert_eq!(ChunkRef::decode(&SessionMsg::Ping(6).encode()), None);
        assert_eq!(ChunkRef::decode(&[]), None);
        let empty = SessionMsg::Chunk {
            id: 1,
            reply: true,
            index: 0,
            bytes: vec![],
        };
        assert_eq!(SessionMsg::decode(&empty.encode()), None);
        assert_eq!(ChunkRef::decode(&empty.encode()), None);
        let far = SessionMsg::Chunk {
            id: 1,
            reply: true,
            index: fragments(MAX_OBJECT) as u32,
            bytes: vec![1],
        };
        assert_eq!(ChunkRef::decode(&far.encode()), None);
        assert_eq!(ChunkRef::decode(&m_big()), None, "past FRAGMENT");
        let mut trailing = encode_into(&ChunkRef::new(1, true, 0, &[5]), Vec::new()).unwrap();
        assert!(ChunkRef::decode(&trailing).is_some());
        trailing.push(0);
        assert_eq!(ChunkRef::decode(&trailing), None, "trailing bytes");
    }

    /// A chunk of one byte past [`FRAGMENT`], encoded.
    fn m_big() -> Vec<u8> {
        SessionMsg::Chunk {
            id: 2,
            reply: false,
            index: 0,
            bytes: vec![7; FRAGMENT + 1],
        }
        .encode()
    }

    #[test]
    fn headers_round_trip_and_strangers_are_refused() {
        let h = Header {
            kind: Kind::Data,
            from: 0x0102_0304_0506_0708,
            to: 9,
            counter: 77,
        };
        let p = h.with_body(b"xyz");
        assert_eq!(Header::parse(&p), Some((h, &b"xyz"[..])));
        assert_eq!(&p[..4], b"KB\x01\x05");
        // Too short, another magic, version or kind, too long.
        assert_eq!(Header::parse(&p[..HEADER - 1]), None);
        for (at, v) in [(0, b'X'), (2, 2), (3, 0), (3, 10)] {
            let mut q = p.clone();
            q[at] = v;
            assert_eq!(Header::parse(&q), None, "byte {at} = {v}");
        }
        assert_eq!(Header::parse(&vec![0u8; MAX_PACKET + 1]), None);
    }

    #[test]
    fn announcements_are_checked() {
        let a = Announcement {
            name: "phone".into(),
            profile: "phone".into(),
            shared: vec!["rtc".into()],
        };
        assert_eq!(Announcement::decode(&a.encode()), Some(a.clone()));
        let mut trailing = a.encode();
        trailing.push(0);
        assert_eq!(Announcement::decode(&trailing), None);
        for bad in [
            Announcement {
                name: String::new(),
                ..a.clone()
            },
            Announcement {
                name: "a b".into(),
                ..a.clone()
            },
            Announcement {
                name: "x".repeat(MAX_NAME + 1),
                ..a.clone()
            },
            Announcement {
                shared: vec!["\n".into()],
                ..a.clone()
            },
            Announcement {
                shared: (0..=MAX_SHARED).map(|i| i.to_string()).collect(),
                ..a.clone()
            },
        ] {
            assert_eq!(Announcement::decode(&bad.encode()), None, "{bad:?}");
        }
        assert_eq!(Announcement::decode(&[0xff; 8]), None);
    }

    #[test]
    fn session_messages_round_trip() {
        let call = SessionMsg::Call {
            id: 3,
            target: Target::Service("rtc".into()),
            label: 1,
            words: vec![u64::MAX; MAX_WORDS],
            object: Some(MAX_OBJECT as u32),
        };
        let reply = SessionMsg::Reply {
            id: 3,
            label: 2,
            words: vec![7; MAX_WORDS],
            handles: vec![1, 2, 3, 4],
            closed: false,
            object: Some(u32::MAX >> 1),
        };
        let chunk = SessionMsg::Chunk {
            id: u64::MAX,
            reply: true,
            index: fragments(MAX_OBJECT) as u32 - 1,
            bytes: vec![0xa5; FRAGMENT],
        };
        // The largest of them fits a packet with its header and tag.
        assert!(HEADER + call.encode().len() + 16 <= MAX_PACKET);
        assert!(HEADER + reply.encode().len() + 16 <= MAX_PACKET);
        assert!(HEADER + chunk.encode().len() + 16 <= MAX_PACKET);
        let reply = SessionMsg::Reply {
            id: 3,
            label: 2,
            words: vec![7; MAX_WORDS],
            handles: vec![1, 2, 3, 4],
            closed: false,
            object: Some(MAX_OBJECT as u32),
        };
        for m in [
            SessionMsg::Confirm,
            SessionMsg::Ping(5),
            SessionMsg::Pong(u64::MAX),
            call,
            reply,
            chunk,
            SessionMsg::Pull {
                id: 1,
                reply: false,
                first: 3,
                count: MAX_PULL,
            },
        ] {
            assert_eq!(SessionMsg::decode(&m.encode()), Some(m));
        }
        assert_eq!(SessionMsg::decode(&[9]), None);
        // Past the bounds: refused.
        for bad in [
            SessionMsg::Call {
                id: 1,
                target: Target::Handle(1),
                label: 1,
                words: vec![0; MAX_WORDS + 1],
                object: None,
            },
            SessionMsg::Call {
                id: 1,
                target: Target::Handle(1),
                label: 1,
                words: vec![],
                object: Some(MAX_OBJECT as u32 + 1),
            },
            SessionMsg::Pull {
                id: 1,
                reply: true,
                first: 0,
                count: MAX_PULL + 1,
            },
            SessionMsg::Chunk {
                id: 1,
                reply: true,
                index: fragments(MAX_OBJECT) as u32,
                bytes: vec![1],
            },
            SessionMsg::Chunk {
                id: 1,
                reply: true,
                index: 0,
                bytes: vec![1; FRAGMENT + 1],
            },
            SessionMsg::Call {
                id: 1,
                target: Target::Service("a b".into()),
                label: 1,
                words: vec![],
                object: None,
            },
            SessionMsg::Call {
                id: 1,
                target: Target::Service(String::new()),
                label: 1,
                words: vec![],
                object: None,
            },
            SessionMsg::Reply {
                id: 1,
                label: 1,
                words: vec![],
                handles: vec![0; MAX_CAPS + 1],
                closed: false,
                object: None,
            },
        ] {
            assert_eq!(SessionMsg::decode(&bad.encode()), None, "{bad:?}");
        }
    }
}
