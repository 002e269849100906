//! `net`: the network stack (`servers/net`). A socket is a capability: an
//! endpoint the stack made for that socket alone (its badge names the
//! socket), plus a memory object the stack owns through which the
//! socket's bytes travel. The typed client is [`crate::net`]
//! (`TcpStream`, `TcpListener`, `UdpSocket`, ...).
//!
//! **Service endpoint** (`names::connect("net")`):
//!
//! | label | words in | capability in | reply |
//! |---|---|---|---|
//! | [`INFO`] | — | — | `[mac, address, prefix, gateway, dns, lease seconds left, state, frames in, frames out, frames in unicast to another MAC]` ([`State`]); IPv4 addresses as `u32` |
//! | [`OPEN`] | `[kind]` ([`Kind`]) | notification (`SEND`\|`GRANT`: copied for accepted connections) | `OK` + socket endpoint (`SEND`) + buffer memory (`READ`\|`WRITE`\|`MAP`, [`BUFFER_BYTES`]) |
//!
//! **Socket endpoint**: every call answers at once. A call that cannot
//! make progress yet fails with `WouldBlock`; the stack signals the
//! socket's notification (bit [`READY_BIT`]) whenever the socket's state
//! may have changed, and the client tries again. So no client can hold
//! the stack up, and one that never comes back costs only its sockets.
//!
//! | label | kinds | words in | reply |
//! |---|---|---|---|
//! | [`CONNECT`] | TCP | `[address, port]` | `OK` (connecting: wait for [`STATUS`] or a send/receive) |
//! | [`LISTEN`] | TCP | `[port]` | `OK` |
//! | [`ACCEPT`] | TCP (listening) | — | `OK [address, port]` + endpoint + memory of the new connection |
//! | [`SEND`] | TCP | `[len]` (bytes at the buffer's start) | `[n]` bytes taken (≥ 1), or `WouldBlock` |
//! | [`RECV`] | TCP | `[max]` | `[n]` bytes at the buffer's start; 0 is the end of the stream |
//! | [`BIND`] | UDP, ICMP | `[port]` (ICMP: the echo identifier) | `OK` |
//! | [`SEND_TO`] | UDP, ICMP | `[address, port, len]` (ICMP: port = sequence number; the bytes are the echo payload) | `OK` |
//! | [`RECV_FROM`] | UDP, ICMP | `[max]` | `[n, address, port]` (ICMP: echo replies only, port = sequence number); a UDP socket in ring mode: `[0]` after moving the datagrams the ring has room for into it |
//! | [`RING`] | UDP | — | `OK`: from now on datagrams go into the socket's receive ring ([`ring`]) |
//! | [`STATUS`] | TCP | — | `[state, local port, remote address, remote port]` ([`TcpState`]) |
//! | [`QUERY`] | DNS | name (text) | `OK` (query started) |
//! | [`RESULT`] | DNS | — | `[n, address...]`; `WouldBlock` while pending, `TimedOut` if no answer |
//! | [`CLOSE`] | all | — | `OK`: TCP sends FIN (the stack finishes the close), the socket endpoint and memory are revoked |
//!
//! A UDP socket in ring mode (the client `userlib::net::UdpSocket` always
//! asks for it) gets each datagram in its buffer memory as soon as the
//! interface receives it, and a signal; the client takes it from there
//! without a call ([`ring`]). It calls `RECV_FROM` only when the ring was
//! full and `net` says more wait.
//!
//! Errors: `InvalidArgument` (bad length, port, kind), `InvalidState`
//! (wrong state for the call, e.g. send on a closed connection),
//! `PeerDied` (connection reset or refused), `OutOfMemory` (too many
//! sockets), `NotSupported` (a call the socket's kind does not have).

/// Service name.
pub const NAME: &str = "net";

pub const INFO: u16 = 1;
pub const OPEN: u16 = 2;

pub const CONNECT: u16 = 10;
pub const LISTEN: u16 = 11;
pub const ACCEPT: u16 = 12;
pub const SEND: u16 = 13;
pub const RECV: u16 = 14;
pub const BIND: u16 = 15;
pub const SEND_TO: u16 = 16;
pub const RECV_FROM: u16 = 17;
pub const STATUS: u16 = 18;
pub const QUERY: u16 = 19;
pub const RESULT: u16 = 20;
pub const CLOSE: u16 = 21;
pub const RING: u16 = 22;

/// Bytes of a socket's buffer memory.
pub const BUFFER_BYTES: usize = 16 * 1024;
/// Notification bit the stack sets when a socket may have progressed.
pub const READY_BIT: u64 = 1;
/// Badges of socket endpoints have this bit (the service endpoint's
/// badges are task ids, which never do).
pub const SOCKET_BADGE: u64 = 1 << 62;

/// Socket kinds for [`OPEN`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Kind {
    Tcp = 1,
    Udp = 2,
    Icmp = 3,
    Dns = 4,
}

impl Kind {
    pub fn from_word(w: u64) -> Option<Kind> {
        [Kind::Tcp, Kind::Udp, Kind::Icmp, Kind::Dns]
            .into_iter()
            .find(|k| *k as u64 == w)
    }
}

/// How the interface got its address ([`INFO`] word 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum State {
    /// No card, or the card's driver is not there.
    Down = 0,
    /// Asking DHCP.
    Discovering = 1,
    /// Leased by DHCP.
    Dhcp = 2,
    /// No DHCP server answered: a link-local address (169.254/16).
    LinkLocal = 3,
}

/// TCP states as [`STATUS`] reports them (RFC 793 names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum TcpState {
    Closed = 0,
    Listen = 1,
    SynSent = 2,
    SynReceived = 3,
    Established = 4,
    FinWait1 = 5,
    FinWait2 = 6,
    CloseWait = 7,
    Closing = 8,
    LastAck = 9,
    TimeWait = 10,
}

impl TcpState {
    pub fn from_word(w: u64) -> TcpState {
        use TcpState::*;
        [
            Closed,
            Listen,
            SynSent,
            SynReceived,
            Established,
            FinWait1,
            FinWait2,
            CloseWait,
            Closing,
            LastAck,
            TimeWait,
        ]
        .get(w as usize)
        .copied()
        .unwrap_or(Closed)
    }
}

/// A UDP socket's receive ring (after [`RING`]): `net` copies each
/// datagram into the socket's buffer memory as soon as the interface has
/// received it, and the client takes it from there without a call.
///
/// The buffer memory of a UDP socket in ring mode:
///
/// | bytes | what | written by |
/// |---|---|---|
/// | `0..2048` | the datagram of a [`SEND_TO`] | the client |
/// | [`HEAD`] (8 bytes) | ring bytes written, ever (wraps at 2^64) | `net` |
/// | [`TAIL`] (8 bytes) | ring bytes taken, ever | the client |
/// | [`MORE`] (8 bytes) | 1: `net` holds datagrams the ring had no room for | `net` |
/// | [`DATA`]`..`[`super::BUFFER_BYTES`] ([`BYTES`]) | records | `net` |
///
/// A record starts at ring offset `HEAD mod BYTES` (always a multiple of
/// 8): an 8-byte header (`len: u16`, `port: u16`, IPv4 address `u32`,
/// little-endian), then `len` bytes of datagram, padded to a multiple of
/// 8. A record never wraps: where the rest of the ring is too short,
/// `net` writes a header with `len` = [`PAD`] and the record starts at
/// offset 0. `net` advances `HEAD` (a release store) after writing a
/// record; the client advances `TAIL` after reading it.
///
/// `net` keeps its own copy of `HEAD` and reads only `TAIL` from the
/// memory, never trusting it: a `TAIL` more than `BYTES` behind its `HEAD`
/// (or ahead of it) stops delivery into the ring until it makes sense
/// again; whatever the client writes, `net` writes only inside this
/// socket's ring. Datagrams longer than [`MAX_DATAGRAM`] are cut there.
pub mod ring {
    /// Offset of the ring's header words and data in the buffer memory.
    pub const HEAD: usize = 2048;
    pub const TAIL: usize = HEAD + 8;
    pub const MORE: usize = HEAD + 16;
    pub const DATA: usize = 4096;
    /// Bytes of ring data.
    pub const BYTES: usize = super::BUFFER_BYTES - DATA;
    /// Record header bytes.
    pub const RECORD: usize = 8;
    /// `len` of a record that only skips to the ring's start.
    pub const PAD: u16 = 0xffff;
    /// Longest datagram a record carries (a 1500-byte IPv4 packet's UDP payload).
    pub const MAX_DATAGRAM: usize = 1472;

    /// Ring bytes a record of `len` datagram bytes takes.
    pub const fn record_bytes(len: usize) -> usize {
        RECORD + ((len + 7) & !7)
    }

    /// Bytes in use between `tail` and `head`, if `tail` is a position the
    /// ring can have (at most [`BYTES`] behind `head`).
    pub fn used(head: u64, tail: u64) -> Option<usize> {
        let used = head.wrapping_sub(tail);
        (used <= BYTES as u64).then_some(used as usize)
    }

    /// Writes a record of `payload` (cut at [`MAX_DATAGRAM`]) into `data`
    /// (the ring's [`BYTES`]) at `head`, if there is room before `tail`;
    /// the new head. `tail` may be anything: only `head` (the writer's
    /// own) chooses where the bytes go.
    pub fn put(data: &mut [u8], head: u64, tail: u64, payload: &[u8], addr: u32, port: u16) -> Option<u64> {
        let data = data.get_mut(..BYTES)?;
        let used = used(head, tail)?;
        let payload = &payload[..payload.len().min(MAX_DATAGRAM)];
        let rec = record_bytes(payload.len());
        let at = (head % BYTES as u64) as usize;
        if !at.is_multiple_of(8) {
            return None;
        }
        let left = BYTES - at;
        let skip = if rec > left { left } else { 0 };
        if used + skip + rec > BYTES {
            return None;
        }
        let mut head = head;
        let mut at = at;
        if skip > 0 {
            data[at..at + 2].copy_from_slice(&PAD.to_le_bytes());
            head = head.wrapping_add(skip as u64);
            at = 0;
        }
        data[at..at + 2].copy_from_slice(&(payload.len() as u16).to_le_bytes());
        data[at + 2..at + 4].copy_from_slice(&port.to_le_bytes());
        data[at + 4..at + 8].copy_from_slice(&addr.to_le_bytes());
        data[at + RECORD..at + RECORD + payload.len()].copy_from_slice(payload);
        Some(head.wrapping_add(rec as u64))
    }

    /// Reads the record at `tail` from `data` into `out` (cut at its
    /// length): `(n, addr, port, new tail)`; `Ok(None)` when the ring is
    /// empty; `Err(())` when `head`, `tail` or the record make no sense.
    #[allow(clippy::result_unit_err)]
    pub fn take(data: &[u8], head: u64, tail: u64, out: &mut [u8]) -> Result<Option<(usize, u32, u16, u64)>, ()> {
        let data = data.get(..BYTES).ok_or(())?;
        let mut tail = tail;
        loop {
            let used = used(head, tail).ok_or(())?;
            if used == 0 {
                return Ok(None);
            }
            if !tail.is_multiple_of(8) || used < RECORD {
                return Err(());
            }
            let at = (tail % BYTES as u64) as usize;
            let len = u16::from_le_bytes([data[at], data[at + 1]]);
            if len == PAD {
                tail = tail.wrapping_add((BYTES - at) as u64);
                continue;
            }
            let len = len as usize;
            let rec = record_bytes(len);
            if len > MAX_DATAGRAM || rec > used || at + rec > BYTES {
                return Err(());
            }
            let port = u16::from_le_bytes([data[at + 2], data[at + 3]]);
            let addr = u32::from_le_bytes([data[at + 4], data[at + 5], data[at + 6], data[at + 7]]);
            let n = len.min(out.len());
            out[..n].copy_from_slice(&data[at + RECORD..at + RECORD + n]);
            return Ok(Some((n, addr, port, tail.wrapping_add(rec as u64))));
        }
    }
}

/// An IPv4 address as a message word.
pub fn ip_word(ip: core::net::Ipv4Addr) -> u64 {
    u32::from(ip) as u64
}

/// The IPv4 address in a message word (`None` beyond 32 bits).
pub fn word_ip(w: u64) -> Option<core::net::Ipv4Addr> {
    u32::try_from(w).ok().map(core::net::Ipv4Addr::from)
}

/// A TCP or UDP port in a message word (`None` for 0 or beyond 16 bits).
pub fn word_port(w: u64) -> Option<u16> {
    u16::try_from(w).ok().filter(|p| *p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    #[test]
    fn addresses_and_ports() {
        let ip = Ipv4Addr::new(10, 0, 2, 15);
        assert_eq!(word_ip(ip_word(ip)), Some(ip));
        assert_eq!(word_ip(1 << 32), None);
        assert_eq!(word_port(80), Some(80));
        assert_eq!(word_port(0), None);
        assert_eq!(word_port(65536), None);
    }

    #[test]
    fn ring_round_trip_and_wrap() {
        let mut data = alloc::vec![0u8; ring::BYTES];
        let (mut head, mut tail) = (0u64, 0u64);
        let mut out = [0u8; 2048];
        // Enough datagrams of odd lengths to wrap the ring several times.
        for round in 0..200usize {
            let len = (round * 37) % 1473;
            let payload: alloc::vec::Vec<u8> = (0..len).map(|i| (i + round) as u8).collect();
            head = ring::put(&mut data, head, tail, &payload, 0x0a00_0002 + round as u32, 7000)
                .expect("room in an emptied ring");
            let (n, addr, port, t) = ring::take(&data, head, tail, &mut out).unwrap().unwrap();
            assert_eq!((n, addr, port), (len, 0x0a00_0002 + round as u32, 7000));
            assert_eq!(&out[..n], &payload[..]);
            tail = t;
            assert_eq!(ring::take(&data, head, tail, &mut out), Ok(None));
        }
        assert!(head > 2 * ring::BYTES as u64);
    }

    #[test]
    fn ring_full_and_cut() {
        let mut data = alloc::vec![0u8; ring::BYTES];
        let mut head = 0u64;
        let big = [7u8; 2000];
        let mut n = 0;
        while let Some(h) = ring::put(&mut data, head, 0, &big, 1, 2) {
            head = h;
            n += 1;
        }
        // Cut at MAX_DATAGRAM: 8 records of 1,480 bytes fit in 12,288.
        assert_eq!(n, ring::BYTES / ring::record_bytes(ring::MAX_DATAGRAM));
        let mut out = [0u8; 100];
        let (got, _, _, _) = ring::take(&data, head, 0, &mut out).unwrap().unwrap();
        assert_eq!(got, 100, "cut at the reader's buffer");
    }

    #[test]
    fn ring_hostile_tail() {
        let mut data = alloc::vec![0u8; ring::BYTES];
        let head = ring::put(&mut data, 0, 0, &[1, 2, 3], 1, 2).unwrap();
        // A tail ahead of the head, or far behind it: no delivery.
        for tail in [head + 8, head + 1, head.wrapping_sub(ring::BYTES as u64 + 8), 1 << 40] {
            assert_eq!(ring::put(&mut data, head, tail, &[1], 1, 2), None, "tail {tail}");
        }
        // A tail that lies about what was read only lets the writer
        // overwrite the ring's own bytes (offsets come from the head).
        let h = ring::put(&mut data, head, head, &[9; 1472], 1, 2).unwrap();
        assert_eq!(h, head + ring::record_bytes(1472) as u64);
        // A reader with nonsense gets an error, not a panic.
        let mut out = [0u8; 16];
        assert_eq!(ring::take(&data, 3, 0, &mut out), Err(()));
        assert_eq!(ring::take(&data, head, 4, &mut out), Err(()));
        let mut bad = alloc::vec![0u8; ring::BYTES];
        bad[..2].copy_from_slice(&2000u16.to_le_bytes());
        assert_eq!(ring::take(&bad, 2008, 0, &mut out), Err(()));
        bad[..2].copy_from_slice(&1000u16.to_le_bytes());
        assert_eq!(ring::take(&bad, 16, 0, &mut out), Err(()), "record past the head");
        assert!(ring::take(&data[..8], head, 0, &mut out).is_err(), "short ring");
    }

    #[test]
    fn kinds_and_states() {
        assert_eq!(Kind::from_word(1), Some(Kind::Tcp));
        assert_eq!(Kind::from_word(4), Some(Kind::Dns));
        assert_eq!(Kind::from_word(0), None);
        assert_eq!(Kind::from_word(5), None);
        assert_eq!(TcpState::from_word(4), TcpState::Established);
        assert_eq!(TcpState::from_word(99), TcpState::Closed);
        assert!(SOCKET_BADGE > u32::MAX as u64);
    }
}
