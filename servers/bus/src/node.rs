//! One device on the bus: the devices nearby and their sessions, driven by
//! packets and by time. [`Node::receive`] takes a packet and
//! [`Node::tick`] the passing of time; both return the packets to send.
//! Nothing here touches the network, so the host tests play whole links,
//! hostile peers included.
//!
//! - Every [`ANNOUNCE_EVERY_US`] the node broadcasts its sealed
//!   announcement, numbered one above the last.
//! - An announcement that opens under the group key and is numbered above
//!   the last one taken from its device makes (or keeps) the device
//!   *present*. Anything else is counted and dropped.
//! - Of two present devices, the one with the lower id starts the Noise
//!   handshake; a device is *paired*, and listed, once the session is up
//!   and confirmed (see [`crate::session`]).
//! - Each side pings a paired device every [`PING_EVERY_US`] over the
//!   session ([`Peer::rtt_us`] is the last round trip).
//! - A device not heard from (no announcement, no session message) for
//!   [`FORGET_AFTER_US`] is no longer present: its session ends. Its id and last number are kept (up to
//!   [`MAX_PEERS`] devices), so an old announcement replayed later does not
//!   bring it back.
//! - Remote calls ([`SessionMsg::Call`]) travel over a paired session. A
//!   callee takes each call id once ([`Node::take_calls`]), answers it
//!   through [`Node::answer`], and sends the same answer again if the
//!   call comes again (it was lost on the way back). A call for a service
//!   this device does not share is answered `NoRights` at once and counted
//!   ([`Refused::unshared`]); nothing else sees it. The caller sends with
//!   [`Node::call`] and picks replies up with [`Node::take_reply`].
//! - Memory objects travel with calls and replies by value ([`Node::call_object`],
//!   [`RemoteReply::object`]): the header (`Call`/`Reply` with `object:
//!   Some(size)`) goes first; the receiver keeps a bounded reassembly
//!   buffer for it and *pulls* the contents ([`SessionMsg::Pull`]), at most
//!   [`PULL_WINDOW`] fragments in flight, [`PULL_BATCH`] more asked each
//!   time that many came; the holder answers each pull with those
//!   [`SessionMsg::Chunk`]s from its copy. A fragment lost (or reordered
//!   past the session's window) is asked for again after [`REPULL_US`]
//!   without progress; a reassembly without progress for
//!   [`ASSEMBLY_TIMEOUT_US`] is dropped. The call (or reply) is delivered
//!   once every fragment is in. At most [`MAX_ASSEMBLIES`] reassemblies
//!   live at once on a node; fragments of no reassembly, or past the
//!   object's size, are dropped and counted (`malformed`).
//! - Pairing by code ([`crate::pair`]): [`Node::show_code`] shows a code
//!   (and offers it on the link), [`Node::join`] pairs with the device of
//!   that name by its code, [`Node::pairing`] says how it went. A device
//!   paired by code is trusted through its own key, not the group's: its
//!   announcements are sealed under the pairing's key (sent to it alone),
//!   its sessions use the pairing's psk, and its handshake must show the
//!   static key pinned at pairing. A device without a group key pairs by
//!   code only. Pairings can be kept across restarts ([`Node::stored`],
//!   [`Node::restore`]): a paired device whose id is new is found by the
//!   pairing key that opens its announcement.

use crate::keys::GroupKey;
use crate::pair::{self, Joiner, Pairing, Shown, StartAnswer};
use crate::session::{public, static_key, static_key_from, static_secret, Handshake, Session, StaticKey, TAG};
use crate::store::{Stored, StoredPairing};
use crate::wire::{
    encode_into, fragments, is_word, Announcement, CallRef, ChunkRef, Header, Kind, SessionMsg, Target, FRAGMENT,
    HEADER, MAX_NAME, MAX_OBJECT,
};
use alloc::string::String;
use alloc::vec::Vec;
pub use core::net::SocketAddrV4 as Addr;

/// How often a device announces itself.
pub const ANNOUNCE_EVERY_US: u64 = 1_000_000;
/// How long a device stays present without an announcement: a device that
/// leaves is gone from the list within 5 s (this, plus one tick).
pub const FORGET_AFTER_US: u64 = 3_500_000;
/// How long a handshake, or a session awaiting its confirmation, may take.
pub const HANDSHAKE_TIMEOUT_US: u64 = 1_000_000;
/// Devices remembered (present or not).
pub const MAX_PEERS: usize = 32;
/// How often a session is pinged (its round trip is measured, and a link
/// that carries announcements but not the session shows).
pub const PING_EVERY_US: u64 = 2_000_000;

/// Fragments of an object asked for and not come yet, at most (the
/// receiving `net` holds 32 datagrams of a socket, 32 KiB).
pub const PULL_WINDOW: u32 = 16;
/// Fragments asked for at a time once [`PULL_WINDOW`] less this are in
/// flight (one pull for every 8 fragments).
pub const PULL_BATCH: u32 = 8;
/// A reassembly without progress for this long asks again for the
/// fragments it lacks.
pub const REPULL_US: u64 = 50_000;
/// A reassembly without progress for this long is dropped (the call's
/// sender gives up after `names::REMOTE_REPLY_TIMEOUT_US`, 5 s).
pub const ASSEMBLY_TIMEOUT_US: u64 = 5_000_000;
/// Objects being received, and objects kept to be pulled again (answers
/// given), at most, over all devices (each at most [`MAX_OBJECT`] bytes).
pub const MAX_ASSEMBLIES: usize = 4;

/// A packet to send: to a device, or broadcast (`to: None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Out {
    pub to: Option<Addr>,
    pub bytes: Vec<u8>,
}

/// What changed, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A device's session is up and confirmed.
    Paired { name: String, addr: Addr },
    /// A paired device is gone (no announcement for [`FORGET_AFTER_US`]).
    Left { name: String },
    /// A pairing by code succeeded with device `peer` (listed once its
    /// session is up).
    PairedByCode { peer: u64 },
    /// A pairing by code failed.
    PairFailed(Failure),
}

/// Why a pairing by code failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The code shown here was tried, and no confirmation checked in time
    /// (a wrong code was typed, or the joiner gave up): it is used up.
    NotConfirmed,
    /// The code shown here was not used in time.
    Expired,
    /// The code typed here was wrong (the shower's confirmation did not
    /// check), or an impostor answered.
    WrongCode,
    /// No device of that name offered a code in time.
    NoOffer,
    /// The device offering a code did not answer in time (its code may be
    /// used up).
    NoAnswer,
}

/// Where pairing by code stands ([`Node::pairing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairState {
    Idle,
    /// A code is shown here until `until` (µs); `used`: a device tried it.
    Showing {
        code: u32,
        until: u64,
        used: bool,
    },
    /// Pairing with the device of this name by a typed code.
    Joining {
        name: String,
    },
    /// The last pairing succeeded, with this device.
    Paired {
        peer: u64,
    },
    /// The last pairing failed.
    Failed(Failure),
}

/// Packets refused, by reason (the `bus` service reports them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refused {
    /// Not a bus packet, or not for this device.
    pub malformed: u64,
    /// Did not open under the group key (another group, or changed).
    pub unsealed: u64,
    /// Numbered at or below one already taken (a replay).
    pub replayed: u64,
    /// A handshake message that did not check out or came out of turn.
    pub handshake: u64,
    /// A remote call for a service this device does not share.
    pub unshared: u64,
    /// A pairing message refused: no code shown (or it is used up), a
    /// confirmation that did not check, an answer to no attempt.
    pub pairing: u64,
}

/// Most remote calls waiting to be carried out, and replies waiting to be
/// picked up (a call past this is dropped, and taken when sent again).
pub const MAX_QUEUED: usize = 16;

/// A remote call to carry out (the callee's side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The calling device.
    pub peer: u64,
    pub id: u64,
    pub target: Target,
    pub label: u16,
    pub words: Vec<u64>,
    /// The contents of the memory object the call carried.
    pub object: Option<Vec<u8>>,
}

/// The reply to a remote call (the caller's side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteReply {
    pub label: u16,
    pub words: Vec<u64>,
    pub handles: Vec<u32>,
    pub closed: bool,
    /// The contents of the memory object the reply carries (at most
    /// [`MAX_OBJECT`] bytes).
    pub object: Option<Vec<u8>>,
}

/// Why a remote call could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// No paired device of that id.
    NotNearby,
    /// The device does not share that service (its announcement says).
    NotShared,
    /// The memory object is larger than [`MAX_OBJECT`].
    TooLarge,
}

/// Pulls a device may have waiting to be answered ([`Node::next_fragment`]):
/// the receiver has at most two objects from this device in flight (a
/// call's and a reply's), and asks again at most every [`REPULL_US`].
pub const MAX_OWED: usize = 4;

/// A memory object being received: the call or reply it came with, and its
/// bytes so far.
struct Assembly {
    id: u64,
    /// The `Call` or `Reply`, delivered once every fragment is in.
    msg: SessionMsg,
    data: Vec<u8>,
    got: Vec<bool>,
    have: usize,
    /// Fragments asked for and not come yet (about: lost ones count until
    /// asked again).
    asked: u32,
    /// The first fragment not asked for yet.
    next: u32,
    /// When it last made progress.
    last: u64,
    /// When it last asked for fragments.
    pulled: u64,
}

impl Assembly {
    fn new(id: u64, msg: SessionMsg, size: usize, now: u64) -> Assembly {
        Assembly {
            id,
            msg,
            data: alloc::vec![0; size],
            got: alloc::vec![false; fragments(size)],
            have: 0,
            asked: 0,
            next: 0,
            last: now,
            pulled: now,
        }
    }

    fn done(&self) -> bool {
        self.have == self.got.len()
    }

    /// The next fragments to ask for, if few are in flight.
    fn more(&mut self, reply: bool) -> Option<SessionMsg> {
        let total = self.got.len() as u32;
        if self.next >= total || self.asked > PULL_WINDOW - PULL_BATCH {
            return None;
        }
        let count = (PULL_WINDOW - self.asked).min(total - self.next);
        let first = self.next;
        self.next += count;
        self.asked += count;
        Some(SessionMsg::Pull {
            id: self.id,
            reply,
            first,
            count,
        })
    }

    /// Asks again, from the first fragment missing.
    fn again(&mut self, reply: bool, now: u64) -> Option<SessionMsg> {
        let first = self.got.iter().position(|g| !g)? as u32;
        let count = PULL_WINDOW.min(self.got.len() as u32 - first);
        self.next = self.next.max(first + count);
        self.asked = count;
        self.pulled = now;
        Some(SessionMsg::Pull {
            id: self.id,
            reply,
            first,
            count,
        })
    }

    /// Takes fragment `index`: whether it was new and fit.
    fn take(&mut self, index: u32, bytes: &[u8], now: u64) -> Result<bool, ()> {
        let i = index as usize;
        let at = i * FRAGMENT;
        let len = self.data.len().saturating_sub(at).min(FRAGMENT);
        if i >= self.got.len() || bytes.len() != len {
            return Err(());
        }
        if self.got[i] {
            return Ok(false);
        }
        self.data[at..at + len].copy_from_slice(bytes);
        self.got[i] = true;
        self.have += 1;
        self.asked = self.asked.saturating_sub(1);
        self.last = now;
        self.pulled = now;
        Ok(true)
    }
}

/// Room for the postcard encoding of a session message other than a
/// fragment (a `Call` or `Reply` with a few words); a larger one grows its
/// packet.
const SMALL_MESSAGE: usize = 64;

/// A data packet to device `to` at `addr` from device `me`: the header,
/// then `msg`'s encoding sealed in `session`. The encoding is made in a
/// buffer of its own, sized for `room` bytes and the tag, and sealed
/// there (in place, from an aligned start: ChaCha20's block copies are
/// slower out of step), then put after the header.
fn sealed<T: serde::Serialize>(
    session: &mut Session,
    me: u64,
    to: u64,
    addr: Addr,
    msg: &T,
    room: usize,
) -> Option<Out> {
    let mut body = encode_into(msg, Vec::with_capacity(room + TAG))?;
    let counter = session.seal_in_place(&mut body, 0)?;
    let h = Header {
        kind: Kind::Data,
        from: me,
        to,
        counter,
    };
    Some(Out {
        to: Some(addr),
        bytes: h.with_body(&body),
    })
}

struct Up {
    session: Session,
    confirmed: bool,
    since: u64,
    /// The highest call id taken from the peer in this session.
    served: u64,
    /// The answer to the last call carried out, sent again if that call
    /// comes again, and the object it carries (pulled by the caller).
    answered: Option<(u64, SessionMsg, Option<Vec<u8>>)>,
    /// The object of this device's call in flight to the peer: its call
    /// id and bytes (pulled by the callee).
    sending: Option<(u64, Vec<u8>)>,
    /// The object of a call from the peer, being received.
    call_in: Option<Assembly>,
    /// The object of a reply from the peer, being received.
    reply_in: Option<Assembly>,
    /// The last call id whose reply's object came in whole.
    replied: u64,
    /// Fragments the peer pulled and not sent yet, oldest first: call id,
    /// of the reply's object or the call's, the next index and the end
    /// ([`Node::next_fragment`] seals them one at a time). At most
    /// [`MAX_OWED`] pulls; a newer one drops the oldest.
    owed: Vec<(u64, bool, u32, u32)>,
}

impl Up {
    fn new(session: Session, confirmed: bool, since: u64) -> Up {
        Up {
            session,
            confirmed,
            since,
            served: 0,
            answered: None,
            sending: None,
            call_in: None,
            reply_in: None,
            replied: 0,
            owed: Vec::new(),
        }
    }
}

struct Pending {
    hs: Handshake,
    initiator: bool,
    since: u64,
}

/// A device this one has heard from.
pub struct Peer {
    pub id: u64,
    pub addr: Addr,
    pub info: Announcement,
    /// The highest announcement number taken.
    seq: u64,
    last_seen: u64,
    present: bool,
    up: Option<Up>,
    pending: Option<Pending>,
    /// Round trip of the last answered ping, in µs.
    pub rtt_us: Option<u64>,
    last_ping: u64,
    /// The psk of its sessions: the group's, or its pairing's.
    psk: [u8; 32],
    /// Paired by code: the static key its handshakes must show.
    pub pinned: Option<[u8; 32]>,
}

impl Peer {
    /// Present, with a confirmed session.
    pub fn is_paired(&self) -> bool {
        self.present && self.up.as_ref().is_some_and(|u| u.confirmed)
    }

    /// The device is gone (not heard from, forgotten, or back under a new
    /// id): its session and any handshake end; `Left` is told if it was
    /// paired.
    fn depart(&mut self, events: &mut Vec<Event>) {
        if self.is_paired() {
            events.push(Event::Left {
                name: self.info.name.clone(),
            });
        }
        self.present = false;
        self.up = None;
        self.pending = None;
    }
}

/// A pairing by code under way on the joiner's side.
struct Join {
    name: String,
    code: u32,
    since: u64,
    /// Once the device's offer came: its id, address and the PAKE state.
    to: Option<(u64, Addr, Joiner)>,
    started: u64,
    sent: u64,
}

/// A confirmation sent, sent again until the shower's announcement comes.
struct Confirming {
    peer: u64,
    addr: Addr,
    body: Vec<u8>,
    since: u64,
    sent: u64,
}

/// A pairing by code this node keeps.
struct Kept {
    /// Its `peer` is the device's id in its current start (0 for one
    /// restored from storage and not heard from yet).
    pairing: Pairing,
    /// Where to send it announcements: where its last one came from;
    /// `None` (broadcast) for one restored and not heard from yet.
    addr: Option<Addr>,
    /// The device's name, from its announcements (empty until one came).
    name: String,
}

pub struct Node {
    pub me: u64,
    info: Announcement,
    key: Option<GroupKey>,
    stat: StaticKey,
    /// The devices paired by code.
    pairs: Vec<Kept>,
    /// Whether what [`Node::stored`] returns changed since
    /// [`Node::take_pairings_changed`] was last called.
    pairs_changed: bool,
    shown: Option<Shown>,
    join: Option<Join>,
    confirming: Option<Confirming>,
    outcome: Option<PairState>,
    seq: u64,
    next_announce: u64,
    peers: Vec<Peer>,
    events: Vec<Event>,
    calls: Vec<Incoming>,
    replies: Vec<(u64, u64, RemoteReply)>,
    pub refused: Refused,
}

impl Node {
    /// Device `me` (a random id, new at each start) announcing `info`,
    /// in the group of `key` (`None`: it pairs by code only). The RNG must
    /// be seeded (static keys are made here).
    pub fn new(me: u64, info: Announcement, key: Option<GroupKey>) -> Node {
        Node {
            me,
            info,
            key,
            stat: static_key(),
            pairs: Vec::new(),
            pairs_changed: false,
            shown: None,
            join: None,
            confirming: None,
            outcome: None,
            seq: 0,
            next_announce: 0,
            peers: Vec::new(),
            events: Vec::new(),
            calls: Vec::new(),
            replies: Vec::new(),
            refused: Refused::default(),
        }
    }

    /// The paired devices.
    pub fn nearby(&self) -> impl Iterator<Item = &Peer> {
        self.peers.iter().filter(|p| p.is_paired())
    }

    /// What changed since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        core::mem::take(&mut self.events)
    }

    fn send(&self, kind: Kind, to: &Peer, counter: u64, body: &[u8]) -> Out {
        let h = Header {
            kind,
            from: self.me,
            to: to.id,
            counter,
        };
        Out {
            to: Some(to.addr),
            bytes: h.with_body(body),
        }
    }

    /// A session message to peer `i`, if its session is up.
    fn data<T: serde::Serialize>(&mut self, i: usize, msg: &T) -> Option<Out> {
        let p = &mut self.peers[i];
        let up = p.up.as_mut()?;
        sealed(&mut up.session, self.me, p.id, p.addr, msg, SMALL_MESSAGE)
    }

    /// The paired device called `name`.
    pub fn paired(&self, name: &str) -> Option<&Peer> {
        self.nearby().find(|p| p.info.name == name)
    }

    /// Whether device `id` is paired (a remote call to it can still be
    /// answered).
    pub fn is_paired(&self, id: u64) -> bool {
        self.nearby().any(|p| p.id == id)
    }

    /// Sends remote call `id` (numbered upwards by the caller; the same
    /// `id` again to send it again) to paired device `peer`.
    pub fn call(&mut self, peer: u64, id: u64, target: &Target, label: u16, words: &[u64]) -> Result<Out, CallError> {
        self.call_object(peer, id, target, label, words, None)
    }

    /// [`Node::call`] carrying a memory object's contents (copied across:
    /// the callee pulls them). The object is kept (for the callee's pulls)
    /// until the reply is taken or another call with an object is sent.
    pub fn call_object(
        &mut self,
        peer: u64,
        id: u64,
        target: &Target,
        label: u16,
        words: &[u64],
        object: Option<&[u8]>,
    ) -> Result<Out, CallError> {
        if object.is_some_and(|o| o.len() > MAX_OBJECT) {
            return Err(CallError::TooLarge);
        }
        let i = self
            .peers
            .iter()
            .position(|p| p.id == peer && p.is_paired())
            .ok_or(CallError::NotNearby)?;
        if let Target::Service(s) = target {
            if !self.peers[i].info.shared.iter().any(|x| x == s) {
                return Err(CallError::NotShared);
            }
        }
        let msg = CallRef::new(id, target, label, words, object.map(|o| o.len() as u32));
        if let (Some(o), Some(up)) = (object, self.peers[i].up.as_mut()) {
            if up.sending.as_ref().is_none_or(|s| s.0 != id) {
                up.sending = Some((id, o.to_vec()));
            }
        }
        self.data(i, &msg).ok_or(CallError::NotNearby)
    }

    /// The reply to call `id` to device `peer`, once it came. Replies to
    /// earlier calls of that device (given up on) are dropped.
    pub fn take_reply(&mut self, peer: u64, id: u64) -> Option<RemoteReply> {
        let at = self.replies.iter().position(|r| r.0 == peer && r.1 == id)?;
        let (_, _, reply) = self.replies.remove(at);
        self.replies.retain(|r| r.0 != peer || r.1 > id);
        if let Some(up) = self.peers.iter_mut().find(|p| p.id == peer).and_then(|p| p.up.as_mut()) {
            if up.sending.as_ref().is_some_and(|s| s.0 <= id) {
                up.sending = None;
            }
        }
        Some(reply)
    }

    /// The remote calls to carry out, in the order they came.
    /// Whether remote calls wait to be taken ([`Node::take_calls`]).
    pub fn has_calls(&self) -> bool {
        !self.calls.is_empty()
    }

    /// Whether replies wait to be taken ([`Node::take_reply`]).
    pub fn has_replies(&self) -> bool {
        !self.replies.is_empty()
    }

    pub fn take_calls(&mut self) -> Vec<Incoming> {
        core::mem::take(&mut self.calls)
    }

    /// Answers call `id` of device `peer` (sent again if the call comes
    /// again); `None` if the device's session is gone.
    ///
    /// A reply's object (at most [`MAX_OBJECT`] bytes, else the answer is
    /// a refusal, `OutOfMemory`) is kept for the caller's pulls until the
    /// next answer to that device; when more than [`MAX_ASSEMBLIES`]
    /// objects would be kept (reassemblies included), the other devices'
    /// kept objects are dropped first (their callers then time out).
    pub fn answer(&mut self, peer: u64, id: u64, reply: RemoteReply) -> Option<Out> {
        let i = self.peers.iter().position(|p| p.id == peer && p.is_paired())?;
        let reply = if reply.object.as_ref().is_some_and(|o| o.len() > MAX_OBJECT) {
            refusal(userlib::abi::Error::OutOfMemory)
        } else {
            reply
        };
        if reply.object.is_some() {
            for (j, p) in self.peers.iter_mut().enumerate() {
                if j != i {
                    if let Some(a) = p.up.as_mut().and_then(|u| u.answered.as_mut()) {
                        a.2 = None;
                    }
                }
            }
        }
        let msg = SessionMsg::Reply {
            id,
            label: reply.label,
            words: reply.words,
            handles: reply.handles,
            closed: reply.closed,
            object: reply.object.as_ref().map(|o| o.len() as u32),
        };
        let up = self.peers[i].up.as_mut()?;
        if up.served == id {
            up.answered = Some((id, msg.clone(), reply.object));
        }
        self.data(i, &msg)
    }

    /// Reassemblies under way on this node.
    fn assemblies(&self) -> usize {
        self.peers
            .iter()
            .filter_map(|p| p.up.as_ref())
            .map(|u| usize::from(u.call_in.is_some()) + usize::from(u.reply_in.is_some()))
            .sum()
    }

    /// Whether a new reassembly of `size` bytes may start.
    fn room_for(&self, size: usize) -> bool {
        size <= MAX_OBJECT && self.assemblies() < MAX_ASSEMBLIES
    }

    /// Peer `i` pulled fragments `first..first + count` of an object:
    /// they are owed, to be sealed and sent by [`Node::next_fragment`].
    fn owe(&mut self, i: usize, id: u64, reply: bool, first: u32, count: u32) {
        let count = count.min(crate::wire::MAX_PULL);
        if let Some(up) = self.peers[i].up.as_mut() {
            if up.owed.len() >= MAX_OWED {
                up.owed.remove(0);
            }
            up.owed.push((id, reply, first, first.saturating_add(count)));
        }
    }

    /// The next fragment a device pulled, sealed, if one is owed (of an
    /// object this device still holds). A pull is answered one fragment at
    /// a time, so that the first leaves as soon as it is sealed rather
    /// than after the whole window (the receiver opens it meanwhile).
    pub fn next_fragment(&mut self) -> Option<Out> {
        let i = self
            .peers
            .iter()
            .position(|p| p.up.as_ref().is_some_and(|u| !u.owed.is_empty()))?;
        let (me, to, addr) = (self.me, self.peers[i].id, self.peers[i].addr);
        let Up {
            session,
            answered,
            sending,
            owed,
            ..
        } = self.peers[i].up.as_mut()?;
        while let Some(&(id, reply, index, end)) = owed.first() {
            let object = if reply {
                answered.as_ref().filter(|a| a.0 == id).and_then(|a| a.2.as_deref())
            } else {
                sending.as_ref().filter(|s| s.0 == id).map(|s| s.1.as_slice())
            };
            let at = index as usize * FRAGMENT;
            let bytes = object
                .and_then(|o| o.get(at..o.len().min(at + FRAGMENT)))
                .filter(|b| !b.is_empty());
            if bytes.is_none() || index + 1 >= end {
                owed.remove(0);
            } else {
                owed[0].2 += 1;
            }
            // The object is gone, or the pull ran past its end: the next.
            let Some(bytes) = bytes else { continue };
            // Encoded from the object where it lies (no `Vec` of its own),
            // then sealed (`sealed`).
            return sealed(
                session,
                me,
                to,
                addr,
                &ChunkRef::new(id, reply, index, bytes),
                bytes.len() + 24,
            );
        }
        // Nothing left of this device's pulls; another device's, if any.
        self.next_fragment()
    }

    /// A reassembly of peer `i` took a fragment, or is done: what to ask
    /// for next, and the call or reply it completes.
    fn progress(&mut self, i: usize, reply: bool) -> Vec<Out> {
        let peer = self.peers[i].id;
        let Some(up) = self.peers[i].up.as_mut() else {
            return Vec::new();
        };
        let slot = if reply { &mut up.reply_in } else { &mut up.call_in };
        let Some(a) = slot.as_mut() else {
            return Vec::new();
        };
        if !a.done() {
            let pull = a.more(reply);
            return pull.and_then(|m| self.data(i, &m)).into_iter().collect();
        }
        let Some(a) = slot.take() else {
            return Vec::new();
        };
        match a.msg {
            SessionMsg::Call {
                id,
                target,
                label,
                words,
                ..
            } => {
                if self.calls.len() >= MAX_QUEUED {
                    // Taken when sent again (pulled again then).
                    return Vec::new();
                }
                up.served = id;
                self.calls.push(Incoming {
                    peer,
                    id,
                    target,
                    label,
                    words,
                    object: Some(a.data),
                });
            }
            SessionMsg::Reply {
                id,
                label,
                words,
                handles,
                closed,
                ..
            } => {
                up.replied = up.replied.max(id);
                self.push_reply(
                    peer,
                    id,
                    RemoteReply {
                        label,
                        words,
                        handles,
                        closed,
                        object: Some(a.data),
                    },
                )
            }
            _ => {}
        }
        Vec::new()
    }

    fn push_reply(&mut self, peer: u64, id: u64, reply: RemoteReply) {
        if self.replies.len() >= MAX_QUEUED {
            self.replies.remove(0);
        }
        self.replies.push((peer, id, reply));
    }

    /// Asks a paired device whether it is there (the answer sets its
    /// [`Peer::rtt_us`]); `now` is the ping's number.
    pub fn ping(&mut self, id: u64, now: u64) -> Option<Out> {
        let i = self.peers.iter().position(|p| p.id == id && p.is_paired())?;
        self.data(i, &SessionMsg::Ping(now))
    }

    /// Time passes: announce when due, forget silent devices, give up on
    /// stale handshakes, start the handshakes this device owes.
    pub fn tick(&mut self, now: u64) -> Vec<Out> {
        let mut out = Vec::new();
        if now >= self.next_announce {
            self.seq += 1;
            self.next_announce = now + ANNOUNCE_EVERY_US;
            if let Some(k) = &self.key {
                out.push(Out {
                    to: None,
                    bytes: k.seal_announcement(self.me, self.seq, &self.info),
                });
            }
            for k in &self.pairs {
                out.push(Out {
                    to: k.addr,
                    bytes: k.pairing.key.seal_announcement(self.me, self.seq, &self.info),
                });
            }
            if self.shown.as_ref().is_some_and(|s| !s.is_used() && !s.is_over(now)) {
                let h = Header {
                    kind: Kind::Offer,
                    from: self.me,
                    to: 0,
                    counter: self.seq,
                };
                out.push(Out {
                    to: None,
                    bytes: h.with_body(self.info.name.as_bytes()),
                });
            }
        }
        out.extend(self.pairing_tick(now));
        for p in &mut self.peers {
            if p.present && now.saturating_sub(p.last_seen) > FORGET_AFTER_US {
                p.depart(&mut self.events);
            }
            if p.pending
                .as_ref()
                .is_some_and(|h| now.saturating_sub(h.since) > HANDSHAKE_TIMEOUT_US)
            {
                p.pending = None;
            }
            if p.up
                .as_ref()
                .is_some_and(|u| !u.confirmed && now.saturating_sub(u.since) > HANDSHAKE_TIMEOUT_US)
            {
                p.up = None;
            }
        }
        for i in 0..self.peers.len() {
            out.extend(self.repull(i, now));
            out.extend(self.maybe_initiate(i, now));
            if self.peers[i].is_paired() && now.saturating_sub(self.peers[i].last_ping) >= PING_EVERY_US {
                self.peers[i].last_ping = now;
                out.extend(self.data(i, &SessionMsg::Ping(now)));
            }
        }
        out
    }

    /// Asks again for the fragments peer `i`'s reassemblies lack, if they
    /// made no progress for [`REPULL_US`]; drops those stalled for
    /// [`ASSEMBLY_TIMEOUT_US`].
    fn repull(&mut self, i: usize, now: u64) -> Vec<Out> {
        let mut pulls = Vec::new();
        if let Some(up) = self.peers[i].up.as_mut() {
            for (reply, slot) in [(false, &mut up.call_in), (true, &mut up.reply_in)] {
                let stalled = slot.as_ref().map_or(0, |a| now.saturating_sub(a.last));
                let asked = slot.as_ref().map_or(0, |a| now.saturating_sub(a.pulled));
                if stalled > ASSEMBLY_TIMEOUT_US {
                    *slot = None;
                } else if asked >= REPULL_US {
                    pulls.extend(slot.as_mut().and_then(|a| a.again(reply, now)));
                }
            }
        }
        pulls.iter().filter_map(|m| self.data(i, m)).collect()
    }

    /// Starts a handshake with peer `i` if this device owes one: it is
    /// present, has no session or handshake, and has the higher id.
    fn maybe_initiate(&mut self, i: usize, now: u64) -> Option<Out> {
        let p = &self.peers[i];
        if !p.present || p.up.is_some() || p.pending.is_some() || self.me >= p.id {
            return None;
        }
        let (hs, m1) = Handshake::initiate(&self.stat, &p.psk, self.me, p.id)?;
        let out = self.send(Kind::Hello, p, 0, &m1);
        self.peers[i].pending = Some(Pending {
            hs,
            initiator: true,
            since: now,
        });
        Some(out)
    }

    /// A packet from `from`: what to send in answer, the fragments it
    /// pulled included (all sealed at once; the bus task sends them one by
    /// one instead, [`Node::receive_owing`]). The packet is used up: a data
    /// message is opened where it lies.
    pub fn receive(&mut self, from: Addr, packet: &mut [u8], now: u64) -> Vec<Out> {
        let mut out = self.receive_owing(from, packet, now);
        out.extend(core::iter::from_fn(|| self.next_fragment()));
        out
    }

    /// [`Node::receive`], but the fragments a pull asks for are left owed,
    /// for [`Node::next_fragment`].
    pub fn receive_owing(&mut self, from: Addr, packet: &mut [u8], now: u64) -> Vec<Out> {
        let Some((h, _)) = Header::parse(packet) else {
            self.refused.malformed += 1;
            return Vec::new();
        };
        // A data message is opened where it lies (`Session::open_in_place`).
        let body = &mut packet[HEADER..];
        if h.from == self.me {
            // Our own broadcast, looped back.
            return Vec::new();
        }
        match h.kind {
            Kind::Announce => return self.on_announce(from, &h, body, now).into_iter().collect(),
            Kind::Offer => return self.on_offer(from, &h, body, now).into_iter().collect(),
            Kind::PairStart | Kind::PairReply | Kind::PairConfirm => {
                if h.to != self.me {
                    self.refused.malformed += 1;
                    return Vec::new();
                }
                return self.on_pair(from, &h, body, now).into_iter().collect();
            }
            _ => {}
        }
        let Some(i) = self.peers.iter().position(|p| p.id == h.from && p.present) else {
            self.refused.malformed += 1;
            return Vec::new();
        };
        if h.to != self.me {
            self.refused.malformed += 1;
            return Vec::new();
        }
        let out = match h.kind {
            Kind::Hello => self.on_hello(i, body, now),
            Kind::Reply => self.on_reply(i, body, now),
            Kind::Finish => self.on_finish(i, body, now),
            Kind::Data => return self.on_data(i, h.counter, body, now),
            _ => None,
        };
        out.into_iter().collect()
    }

    fn on_announce(&mut self, from: Addr, h: &Header, body: &[u8], now: u64) -> Option<Out> {
        let group = |k: &Option<GroupKey>| k.as_ref().and_then(|k| k.open_announcement(h, body));
        // A device paired by code counts by its pairing's key only. One
        // whose id is new (its bus restarted, the pairing kept on storage
        // on one side or both) is found by the pairing whose key opens its
        // announcement.
        let known = self.pairs.iter().position(|k| k.pairing.peer == h.from);
        let opened = match known {
            Some(j) => self.pairs[j]
                .pairing
                .key
                .open_announcement(h, body)
                .map(|info| (j, info)),
            None => self
                .pairs
                .iter()
                .enumerate()
                .find_map(|(j, k)| k.pairing.key.open_announcement(h, body).map(|info| (j, info))),
        };
        let (info, psk, pinned, by_code) = match (opened, known) {
            (Some((j, info)), _) => {
                let p = &self.pairs[j].pairing;
                (info, p.key.psk(), Some(p.peer_static), Some(j))
            }
            // Its announcement to its group, if we are of it too.
            (None, Some(_)) if group(&self.key).is_some() => return None,
            (None, Some(_)) => {
                self.refused.unsealed += 1;
                return None;
            }
            (None, None) => match (group(&self.key), &self.key) {
                (Some(info), Some(k)) => (info, k.psk(), None, None),
                _ => {
                    self.refused.unsealed += 1;
                    return None;
                }
            },
        };
        let i = match self.peers.iter().position(|p| p.id == h.from) {
            Some(i) => {
                let p = &mut self.peers[i];
                if h.counter <= p.seq {
                    self.refused.replayed += 1;
                    return None;
                }
                i
            }
            None => {
                if self.peers.len() >= MAX_PEERS {
                    // Make room by forgetting the longest-silent absent device.
                    let old = (0..self.peers.len())
                        .filter(|&i| !self.peers[i].present)
                        .min_by_key(|&i| self.peers[i].last_seen)?;
                    self.peers.swap_remove(old);
                }
                self.peers.push(Peer {
                    id: h.from,
                    addr: from,
                    info: info.clone(),
                    seq: 0,
                    last_seen: now,
                    present: false,
                    up: None,
                    pending: None,
                    rtt_us: None,
                    last_ping: now,
                    psk,
                    pinned,
                });
                self.peers.len() - 1
            }
        };
        if let Some(j) = by_code {
            self.rebind(j, h.from, from, &info.name);
        }
        let p = &mut self.peers[i];
        p.seq = h.counter;
        p.last_seen = now;
        p.addr = from;
        p.info = info;
        p.present = true;
        if p.pinned != pinned {
            // Trusted another way now (by a pairing, or by the group
            // again): its session starts again under that psk and key.
            p.up = None;
            p.pending = None;
        }
        p.psk = psk;
        p.pinned = pinned;
        if self.confirming.as_ref().is_some_and(|c| c.peer == h.from) {
            // The shower has the pairing: its announcement opened.
            self.confirming = None;
        }
        self.maybe_initiate(i, now)
    }

    fn on_hello(&mut self, i: usize, m1: &[u8], now: u64) -> Option<Out> {
        let p = &self.peers[i];
        // The lower id starts; a session already up stays until a new one
        // completes (so a replayed message 1 cannot end it).
        if p.id >= self.me {
            self.refused.handshake += 1;
            return None;
        }
        let Some((hs, m2)) = Handshake::respond(&self.stat, &p.psk, p.id, self.me, m1) else {
            self.refused.handshake += 1;
            return None;
        };
        let out = self.send(Kind::Reply, p, 0, &m2);
        self.peers[i].pending = Some(Pending {
            hs,
            initiator: false,
            since: now,
        });
        Some(out)
    }

    fn on_reply(&mut self, i: usize, m2: &[u8], now: u64) -> Option<Out> {
        let p = &mut self.peers[i];
        if !p.pending.as_ref().is_some_and(|h| h.initiator) {
            self.refused.handshake += 1;
            return None;
        }
        let hs = p.pending.take()?.hs;
        let Some((session, m3)) = hs
            .finish(m2)
            .filter(|(s, _)| p.pinned.is_none_or(|k| k == s.remote_static))
        else {
            self.refused.handshake += 1;
            return None;
        };
        p.up = Some(Up::new(session, false, now));
        Some(self.send(Kind::Finish, &self.peers[i], 0, &m3))
    }

    fn on_finish(&mut self, i: usize, m3: &[u8], now: u64) -> Option<Out> {
        let p = &mut self.peers[i];
        if p.pending.as_ref().is_none_or(|h| h.initiator) {
            self.refused.handshake += 1;
            return None;
        }
        let hs = p.pending.take()?.hs;
        let Some(session) = hs
            .complete(m3)
            .filter(|s| p.pinned.is_none_or(|k| k == s.remote_static))
        else {
            self.refused.handshake += 1;
            return None;
        };
        p.up = Some(Up::new(session, true, now));
        self.events.push(Event::Paired {
            name: p.info.name.clone(),
            addr: p.addr,
        });
        self.data(i, &SessionMsg::Confirm)
    }

    fn on_data(&mut self, i: usize, nonce: u64, sealed: &mut [u8], now: u64) -> Vec<Out> {
        let Some(up) = self.peers[i].up.as_mut() else {
            self.refused.handshake += 1;
            return Vec::new();
        };
        let Some(plain) = up.session.open_in_place(nonce, sealed) else {
            self.refused.replayed += 1;
            return Vec::new();
        };
        // A message of the session shows the device is there as well as an
        // announcement does (a device busy sending an object, its clock
        // slowed by the work under QEMU's -icount, may announce late).
        self.peers[i].last_seen = now;
        // Most of an object's messages are its fragments: taken from the
        // opened message where they lie.
        if let Some(c) = ChunkRef::decode(plain) {
            return self.on_chunk(i, c, now);
        }
        let Some(msg) = SessionMsg::decode(plain) else {
            self.refused.malformed += 1;
            return Vec::new();
        };
        let unshared = self.unshared(&msg);
        let Some(up) = self.peers[i].up.as_mut() else {
            return Vec::new();
        };
        match msg {
            SessionMsg::Pull {
                id,
                reply,
                first,
                count,
            } => {
                self.owe(i, id, reply, first, count);
                Vec::new()
            }
            SessionMsg::Chunk {
                id,
                reply,
                index,
                bytes,
            } => self.on_chunk(i, ChunkRef::new(id, reply, index, &bytes), now),
            SessionMsg::Call {
                id, object: Some(size), ..
            } if up.confirmed && id > up.served && !unshared => {
                let size = size as usize;
                if up.call_in.as_ref().is_some_and(|a| a.id == id) {
                    // Sent again while its object comes: ask again.
                    let pull = up.call_in.as_mut().and_then(|a| a.again(false, now));
                    return pull.and_then(|m| self.data(i, &m)).into_iter().collect();
                }
                up.call_in = None;
                if !self.room_for(size) || self.calls.len() >= MAX_QUEUED {
                    return Vec::new();
                }
                if let Some(up) = self.peers[i].up.as_mut() {
                    up.call_in = Some(Assembly::new(id, msg, size, now));
                }
                self.progress(i, false)
            }
            SessionMsg::Reply {
                id, object: Some(size), ..
            } => {
                let size = size as usize;
                if up.reply_in.as_ref().is_some_and(|a| a.id == id) {
                    let pull = up.reply_in.as_mut().and_then(|a| a.again(true, now));
                    return pull.and_then(|m| self.data(i, &m)).into_iter().collect();
                }
                up.reply_in = None;
                if !self.room_for(size) {
                    return Vec::new();
                }
                if let Some(up) = self.peers[i].up.as_mut() {
                    up.reply_in = Some(Assembly::new(id, msg, size, now));
                }
                self.progress(i, true)
            }
            msg => self.on_message(i, msg, now).into_iter().collect(),
        }
    }

    /// Fragment `c` of an object from peer `i`.
    fn on_chunk(&mut self, i: usize, c: ChunkRef, now: u64) -> Vec<Out> {
        let Some(up) = self.peers[i].up.as_mut() else {
            return Vec::new();
        };
        let slot = if c.reply { &mut up.reply_in } else { &mut up.call_in };
        match slot
            .as_mut()
            .filter(|a| a.id == c.id)
            .map(|a| a.take(c.index, c.bytes, now))
        {
            Some(Ok(true)) => self.progress(i, c.reply),
            // A duplicate.
            Some(Ok(false)) => Vec::new(),
            // Late: sent again for an object come in whole since.
            None if c.id <= if c.reply { up.replied } else { up.served } => Vec::new(),
            // Of no object being received, or past its size.
            _ => {
                self.refused.malformed += 1;
                Vec::new()
            }
        }
    }

    /// Whether `msg` is a call for a service this device does not share.
    fn unshared(&self, msg: &SessionMsg) -> bool {
        matches!(msg, SessionMsg::Call { target: Target::Service(s), .. } if !self.info.shared.iter().any(|x| x == s))
    }

    fn on_message(&mut self, i: usize, msg: SessionMsg, now: u64) -> Option<Out> {
        let up = self.peers[i].up.as_mut()?;
        match msg {
            SessionMsg::Confirm => {
                if !up.confirmed {
                    up.confirmed = true;
                    let p = &self.peers[i];
                    self.events.push(Event::Paired {
                        name: p.info.name.clone(),
                        addr: p.addr,
                    });
                }
                None
            }
            SessionMsg::Ping(n) => self.data(i, &SessionMsg::Pong(n)),
            SessionMsg::Pong(n) => {
                self.peers[i].rtt_us = Some(now.saturating_sub(n));
                None
            }
            SessionMsg::Call { .. } if !up.confirmed => {
                self.refused.handshake += 1;
                None
            }
            SessionMsg::Call {
                id,
                target,
                label,
                words,
                ..
            } => {
                if id <= up.served {
                    // Sent again: answered again if done (the answer was
                    // lost), else it is under way.
                    let again = up.answered.as_ref().filter(|a| a.0 == id).map(|a| a.1.clone());
                    return again.and_then(|m| self.data(i, &m));
                }
                if let Target::Service(s) = &target {
                    if !self.info.shared.iter().any(|x| x == s) {
                        up.served = id;
                        self.refused.unshared += 1;
                        let peer = self.peers[i].id;
                        return self.answer(peer, id, refusal(userlib::abi::Error::NoRights));
                    }
                }
                if self.calls.len() >= MAX_QUEUED {
                    return None;
                }
                up.served = id;
                self.calls.push(Incoming {
                    peer: self.peers[i].id,
                    id,
                    target,
                    label,
                    words,
                    object: None,
                });
                None
            }
            SessionMsg::Reply {
                id,
                label,
                words,
                handles,
                closed,
                ..
            } => {
                let peer = self.peers[i].id;
                self.push_reply(
                    peer,
                    id,
                    RemoteReply {
                        label,
                        words,
                        handles,
                        closed,
                        object: None,
                    },
                );
                None
            }
            // Taken in `on_data`.
            SessionMsg::Pull { .. } | SessionMsg::Chunk { .. } => None,
        }
    }
}

impl Node {
    /// Shows a fresh code (any code shown before is over): the code, to be
    /// typed on the other device within [`pair::CODE_VALID_US`]; one try.
    pub fn show_code(&mut self, now: u64) -> u32 {
        let code = pair::new_code();
        self.shown = Some(Shown::new(code, now));
        self.outcome = None;
        // Offer it at once.
        self.next_announce = now;
        code
    }

    /// Pairs with the device called `name` that shows `code` (any pairing
    /// this device was joining is over).
    pub fn join(&mut self, name: &str, code: u32, now: u64) {
        self.join = Some(Join {
            name: name.into(),
            code,
            since: now,
            to: None,
            started: now,
            sent: now,
        });
        self.outcome = None;
    }

    /// Where pairing by code stands.
    pub fn pairing(&self) -> PairState {
        if let Some(s) = &self.shown {
            return PairState::Showing {
                code: s.code,
                until: s.until,
                used: s.is_used(),
            };
        }
        if let Some(j) = &self.join {
            return PairState::Joining { name: j.name.clone() };
        }
        self.outcome.clone().unwrap_or(PairState::Idle)
    }

    /// The ids of the devices paired by code (0 for one kept from an
    /// earlier start and not heard from since).
    pub fn paired_by_code(&self) -> impl Iterator<Item = u64> + '_ {
        self.pairs.iter().map(|k| k.pairing.peer)
    }

    /// Pairing `j`'s device announced itself as `name`, with id `id`, from
    /// `addr` (an announcement that opened under the pairing's key and
    /// was new). An id other than the one kept means its bus started
    /// again: the session of the old id is over.
    fn rebind(&mut self, j: usize, id: u64, addr: Addr, name: &str) {
        let k = &mut self.pairs[j];
        k.addr = Some(addr);
        let old = core::mem::replace(&mut k.pairing.peer, id);
        if k.name != name {
            k.name = name.into();
            self.pairs_changed = true;
            // Another pairing of that name is stale (the device paired
            // again, with a new static key).
            let me = self.pairs[j].pairing.peer_static;
            self.pairs.retain(|k| k.name != name || k.pairing.peer_static == me);
        }
        if old != id && old != 0 {
            if self.outcome == Some(PairState::Paired { peer: old }) {
                self.outcome = Some(PairState::Paired { peer: id });
            }
            if let Some(q) = self.peers.iter_mut().find(|q| q.id == old) {
                q.depart(&mut self.events);
            }
        }
    }

    /// What to keep on storage: this device's static key and its
    /// pairings by code ([`crate::store`]).
    pub fn stored(&self) -> Stored {
        Stored {
            static_secret: static_secret(&self.stat),
            pairings: self
                .pairs
                .iter()
                .map(|k| StoredPairing {
                    name: k.name.clone(),
                    peer_static: k.pairing.peer_static,
                    secret: k.pairing.key.secret(),
                })
                .collect(),
        }
    }

    /// Takes the static key and pairings kept by an earlier start (read
    /// from storage, before any packet). Their devices are found again by
    /// their announcements, which are broadcast to them until one comes.
    pub fn restore(&mut self, s: &Stored) {
        self.stat = static_key_from(s.static_secret);
        self.pairs = s
            .pairings
            .iter()
            .take(MAX_PEERS)
            .map(|p| Kept {
                pairing: Pairing {
                    peer: 0,
                    peer_static: p.peer_static,
                    key: GroupKey::from_secret(p.secret),
                },
                addr: None,
                name: p.name.clone(),
            })
            .collect();
        self.pairs_changed = false;
    }

    /// Whether the pairings (or a paired device's name) changed since the
    /// last call: the task then writes [`Node::stored`] again.
    pub fn take_pairings_changed(&mut self) -> bool {
        core::mem::take(&mut self.pairs_changed)
    }

    /// Every pairing by code: its device's name (empty until the device's
    /// first announcement came), its static key's fingerprint
    /// ([`crate::keys::fingerprint`]) and whether the device is listed
    /// nearby now.
    pub fn pairings(&self) -> impl Iterator<Item = (&str, u64, bool)> + '_ {
        self.pairs.iter().map(|k| {
            (
                k.name.as_str(),
                crate::keys::fingerprint(&k.pairing.peer_static),
                k.pairing.peer != 0 && self.is_paired(k.pairing.peer),
            )
        })
    }

    /// Ends the pairing by code that `which` names: the device called
    /// `which` or, if `which` is a key's fingerprint as shown
    /// (`userlib::services::bus::parse_key`: 16 hex digits, never taken as
    /// a name), the pairing whose device's static key has it (a pairing whose
    /// device's name is not known yet has only that). Its session ends,
    /// and its announcements are no longer taken (a device of this
    /// device's group is trusted by the group key again). Whether there
    /// was one.
    pub fn forget(&mut self, which: &str) -> bool {
        let j = match userlib::services::bus::parse_key(which) {
            Some(f) => self
                .pairs
                .iter()
                .position(|k| crate::keys::fingerprint(&k.pairing.peer_static) == f),
            // (An empty name is a device's not known yet: no name.)
            None if which.is_empty() => None,
            None => self.pairs.iter().position(|k| k.name == which),
        };
        let Some(j) = j else {
            return false;
        };
        let k = self.pairs.remove(j);
        if let Some(q) = self.peers.iter_mut().find(|q| q.id == k.pairing.peer) {
            q.depart(&mut self.events);
            q.pinned = None;
        }
        self.pairs_changed = true;
        true
    }

    fn done(&mut self, state: PairState) {
        self.events.push(match &state {
            PairState::Failed(f) => Event::PairFailed(*f),
            PairState::Paired { peer } => Event::PairedByCode { peer: *peer },
            _ => return,
        });
        self.outcome = Some(state);
    }

    fn keep(&mut self, p: Pairing, addr: Addr) {
        // A device paired again: the new pairing replaces the old.
        self.pairs
            .retain(|k| k.pairing.peer != p.peer && k.pairing.peer_static != p.peer_static);
        if self.pairs.len() >= MAX_PEERS {
            self.pairs.remove(0);
        }
        let peer = p.peer;
        // A device listed already (by the group key): from now on it is
        // trusted by the pairing, so its session starts again under the
        // pairing's psk and pinned key.
        if let Some(q) = self.peers.iter_mut().find(|q| q.id == peer) {
            q.psk = p.key.psk();
            q.pinned = Some(p.peer_static);
            q.up = None;
            q.pending = None;
        }
        self.pairs.push(Kept {
            pairing: p,
            addr: Some(addr),
            name: String::new(),
        });
        self.pairs_changed = true;
        self.done(PairState::Paired { peer });
    }

    fn pair_packet(&self, kind: Kind, to: u64, addr: Addr, body: &[u8]) -> Out {
        let h = Header {
            kind,
            from: self.me,
            to,
            counter: 0,
        };
        Out {
            to: Some(addr),
            bytes: h.with_body(body),
        }
    }

    /// Time passes for pairing: codes expire, joins time out, starts and
    /// confirmations are sent again.
    fn pairing_tick(&mut self, now: u64) -> Vec<Out> {
        let mut out = Vec::new();
        if let Some(s) = self.shown.as_ref().filter(|s| s.is_over(now)) {
            let f = if s.is_used() {
                Failure::NotConfirmed
            } else {
                Failure::Expired
            };
            self.shown = None;
            self.done(PairState::Failed(f));
        }
        if let Some(j) = &mut self.join {
            match &j.to {
                None if now.saturating_sub(j.since) > pair::JOIN_TIMEOUT_US => {
                    self.join = None;
                    self.done(PairState::Failed(Failure::NoOffer));
                }
                Some(_) if now.saturating_sub(j.started) > pair::PAIR_TIMEOUT_US => {
                    self.join = None;
                    self.done(PairState::Failed(Failure::NoAnswer));
                }
                Some((peer, addr, joiner)) if now.saturating_sub(j.sent) >= pair::RESEND_US => {
                    j.sent = now;
                    let (peer, addr, body) = (*peer, *addr, joiner.start.clone());
                    out.push(self.pair_packet(Kind::PairStart, peer, addr, &body));
                }
                _ => {}
            }
        }
        if let Some(c) = &mut self.confirming {
            if now.saturating_sub(c.since) > pair::PAIR_TIMEOUT_US {
                self.confirming = None;
            } else if now.saturating_sub(c.sent) >= pair::RESEND_US {
                c.sent = now;
                let (peer, addr, body) = (c.peer, c.addr, c.body.clone());
                out.push(self.pair_packet(Kind::PairConfirm, peer, addr, &body));
            }
        }
        out
    }

    /// An offer: if it is the device this one is joining, the pair start.
    fn on_offer(&mut self, from: Addr, h: &Header, body: &[u8], now: u64) -> Option<Out> {
        let name = core::str::from_utf8(body).ok().filter(|n| is_word(n, MAX_NAME));
        if h.to != 0 || name.is_none() {
            self.refused.malformed += 1;
            return None;
        }
        let me = self.me;
        let mine = public(&self.stat);
        let j = self
            .join
            .as_mut()
            .filter(|j| j.to.is_none() && Some(j.name.as_str()) == name)?;
        let joiner = Joiner::start(me, &mine, h.from, j.code);
        let body = joiner.start.clone();
        j.to = Some((h.from, from, joiner));
        j.started = now;
        j.sent = now;
        Some(self.pair_packet(Kind::PairStart, h.from, from, &body))
    }

    fn on_pair(&mut self, from: Addr, h: &Header, body: &[u8], now: u64) -> Option<Out> {
        match h.kind {
            Kind::PairStart => {
                let (me, mine) = (self.me, public(&self.stat));
                let answer = match &mut self.shown {
                    Some(s) => s.on_start(me, &mine, h.from, body, now),
                    None => StartAnswer::Refused,
                };
                match answer {
                    StartAnswer::Reply(r) => Some(self.pair_packet(Kind::PairReply, h.from, from, &r)),
                    StartAnswer::Malformed => {
                        self.refused.malformed += 1;
                        None
                    }
                    StartAnswer::Refused => {
                        self.refused.pairing += 1;
                        None
                    }
                }
            }
            Kind::PairReply => {
                let ours = self
                    .join
                    .as_ref()
                    .is_some_and(|j| j.to.as_ref().is_some_and(|t| t.0 == h.from));
                if !ours {
                    if let Some(c) = self.confirming.as_ref().filter(|c| c.peer == h.from) {
                        // Our start came twice: the shower answered twice.
                        return Some(self.pair_packet(Kind::PairConfirm, c.peer, c.addr, &c.body.clone()));
                    }
                    self.refused.pairing += 1;
                    return None;
                }
                if !Joiner::is_reply(body) {
                    self.refused.malformed += 1;
                    return None;
                }
                let (_, addr, joiner) = self.join.take()?.to?;
                match joiner.finish(body) {
                    Some((p, confirm)) => {
                        self.keep(p, addr);
                        self.confirming = Some(Confirming {
                            peer: h.from,
                            addr,
                            body: confirm.clone(),
                            since: now,
                            sent: now,
                        });
                        Some(self.pair_packet(Kind::PairConfirm, h.from, addr, &confirm))
                    }
                    None => {
                        self.refused.pairing += 1;
                        self.done(PairState::Failed(Failure::WrongCode));
                        None
                    }
                }
            }
            _ => {
                let pairing = self.shown.as_ref().and_then(|s| s.on_confirm(h.from, body, now));
                match pairing {
                    Some(p) => {
                        self.shown = None;
                        self.keep(p, from);
                    }
                    // A confirmation sent again after we took one.
                    None if self.shown.is_none() && self.pairs.iter().any(|k| k.pairing.peer == h.from) => {}
                    None => self.refused.pairing += 1,
                }
                None
            }
        }
    }
}

/// A reply that says the call failed with `e`, as a local server's
/// (`userlib::proto::reply_error`).
pub fn refusal(e: userlib::abi::Error) -> RemoteReply {
    RemoteReply {
        label: userlib::proto::FAILED,
        words: alloc::vec![e as u64],
        handles: Vec::new(),
        closed: false,
        object: None,
    }
}

#[cfg(test)]
mod tests;
