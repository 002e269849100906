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
//! | [`RECV_FROM`] | UDP, ICMP | `[max]` | `[n, address, port]` (ICMP: echo replies only, port = sequence number) |
//! | [`STATUS`] | TCP | — | `[state, local port, remote address, remote port]` ([`TcpState`]) |
//! | [`QUERY`] | DNS | name (text) | `OK` (query started) |
//! | [`RESULT`] | DNS | — | `[n, address...]`; `WouldBlock` while pending, `TimedOut` if no answer |
//! | [`CLOSE`] | all | — | `OK`: TCP sends FIN (the stack finishes the close), the socket endpoint and memory are revoked |
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
