//! Networking, shaped like `std::net`: [`TcpStream`], [`TcpListener`],
//! [`UdpSocket`], plus [`resolve`], [`Pinger`] and [`info`]. The stack is
//! the `net` service; the protocol (a socket is a capability) is in
//! [`crate::services::net`].
//!
//! Every socket holds its endpoint, the buffer memory the stack shares
//! with it, and a notification the stack signals; a call that would block
//! waits on that notification (at most the socket's timeout) and tries
//! again. Dropping a socket closes it.

use crate::ipc::{pack_text, Deadline, Message, Timeout};
use crate::proto::{check_label, check_reply};
use crate::services::net::{self as proto, ip_word, ring, word_ip, Kind, State, TcpState, BUFFER_BYTES};
use crate::vspace::Mapping;
use crate::{names, process, syscall, Error, Handle, Rights};
use abi::{ObjectType, PAGE_SIZE};
use alloc::vec::Vec;
pub use core::net::{Ipv4Addr, SocketAddrV4};
use core::sync::atomic::Ordering;

/// How long a lookup of the `net` service waits for the stack to start.
const CONNECT_TIMEOUT: Timeout = Timeout::millis(5000);

/// The `net` service endpoint, looked up once per task (again after the
/// stack restarted).
static SERVICE: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

fn service() -> Result<Handle, Error> {
    use core::sync::atomic::Ordering;
    let h = SERVICE.load(Ordering::Relaxed);
    if h != 0 {
        return Ok(Handle(h));
    }
    let ep = names::connect(proto::NAME, CONNECT_TIMEOUT)?;
    SERVICE.store(ep.0, Ordering::Relaxed);
    Ok(ep)
}

/// A call on the service endpoint; a dead stack is looked up again next time.
fn call_service(msg: &Message) -> Result<Message, Error> {
    let ep = service()?;
    match syscall::call(ep, msg) {
        Ok((reply, _)) => check_reply(reply),
        Err(e @ (Error::PeerDied | Error::BadHandle | Error::WrongType)) => {
            use core::sync::atomic::Ordering;
            if SERVICE
                .compare_exchange(ep.0, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                let _ = syscall::cap_delete(ep);
            }
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// The interface as the stack reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Info {
    pub mac: [u8; 6],
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub dns: Ipv4Addr,
    pub lease_seconds_left: u64,
    pub state: State,
    /// Frames the stack received from the card, sent, and received
    /// unicast to another card's MAC (which it drops).
    pub frames_in: u64,
    pub frames_out: u64,
    pub frames_foreign: u64,
}

/// The interface's MAC, address and lease.
pub fn info() -> Result<Info, Error> {
    let r = call_service(&Message::new(proto::INFO))?;
    let ip = |i| word_ip(r.word(i)).unwrap_or(Ipv4Addr::UNSPECIFIED);
    Ok(Info {
        mac: crate::services::netdev::mac_from_word(r.word(0)),
        address: ip(1),
        prefix: r.word(2) as u8,
        gateway: ip(3),
        dns: ip(4),
        lease_seconds_left: r.word(5),
        state: match r.word(6) {
            1 => State::Discovering,
            2 => State::Dhcp,
            3 => State::LinkLocal,
            _ => State::Down,
        },
        frames_in: r.word(7),
        frames_out: r.word(8),
        frames_foreign: r.word(9),
    })
}

/// Waits until the interface has an address (DHCP or link-local), at most `timeout`.
pub fn wait_configured(timeout: Timeout) -> Result<Info, Error> {
    let deadline = Deadline::after(timeout);
    loop {
        let i = info()?;
        if matches!(i.state, State::Dhcp | State::LinkLocal) {
            return Ok(i);
        }
        if deadline.passed() {
            return Err(Error::TimedOut);
        }
        syscall::sleep_ms(20);
    }
}

/// Waits on `notify` until it is signalled or `deadline` passes;
/// `TimedOut` once it has passed.
fn wait_until(notify: Handle, deadline: Deadline) -> Result<(), Error> {
    match syscall::wait(notify, deadline.left()?) {
        Ok(_) | Err(Error::TimedOut) => Ok(()),
        Err(e) => Err(e),
    }
}

/// One socket: its endpoint, shared buffer and notification.
struct Socket {
    ep: Handle,
    buffer: Mapping,
    notify: Handle,
    timeout: Timeout,
}

impl Socket {
    fn open(kind: Kind) -> Result<Socket, Error> {
        let notify = syscall::create(process().pool, ObjectType::Notification, 0)?;
        // The reply carries the socket's endpoint and buffer.
        let mut m = Message::with_words(proto::OPEN, &[kind as u64]).accepting_caps(2);
        // GRANT: the stack copies it for the connections a listener accepts.
        m.push_cap(notify, Rights::SEND | Rights::GRANT);
        match call_service(&m) {
            Ok(reply) => Socket::from_reply(&reply, notify),
            Err(e) => {
                let _ = syscall::cap_delete(notify);
                Err(e)
            }
        }
    }

    /// The socket an `OPEN` or `ACCEPT` reply carries.
    fn from_reply(reply: &Message, notify: Handle) -> Result<Socket, Error> {
        let caps = reply.caps();
        if caps.len() != 2 {
            for c in caps {
                let _ = syscall::cap_delete(c.handle);
            }
            let _ = syscall::cap_delete(notify);
            return Err(Error::InvalidState);
        }
        let (ep, mem) = (caps[0].handle, caps[1].handle);
        match Mapping::map(mem, (BUFFER_BYTES / PAGE_SIZE) as u64, Rights::READ | Rights::WRITE) {
            Ok(buffer) => Ok(Socket {
                ep,
                buffer,
                notify,
                timeout: Timeout::Forever,
            }),
            Err(e) => {
                let _ = syscall::cap_delete(ep);
                let _ = syscall::cap_delete(mem);
                let _ = syscall::cap_delete(notify);
                Err(e)
            }
        }
    }

    fn call(&self, msg: &Message) -> Result<Message, Error> {
        check_reply(syscall::call(self.ep, msg)?.0)
    }

    /// Calls until the stack stops saying `WouldBlock`, waiting on the
    /// notification in between (at most the socket's timeout).
    fn call_waiting(&self, msg: &Message) -> Result<Message, Error> {
        self.waiting(|| self.call(msg))
    }

    /// [`Socket::call_waiting`] of a register-only request whose reply
    /// carries no words that matter ([`syscall::call_words`]: no `Message`
    /// is built or copied).
    fn call_short_waiting(&self, label: u16, words: &[u64]) -> Result<(), Error> {
        self.waiting(|| {
            let mut w = [0];
            let (label, _) = syscall::call_words(self.ep, label, words, &mut w)?;
            check_label(label, w[0])
        })
    }

    /// `call` until it stops failing with `WouldBlock`, waiting on the
    /// notification in between, at most the socket's timeout from the
    /// first `WouldBlock` (the clock is read only then).
    fn waiting<T>(&self, mut call: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
        let mut deadline = None;
        loop {
            match call() {
                Err(Error::WouldBlock) => {}
                other => return other,
            }
            let d = *deadline.get_or_insert_with(|| Deadline::after(self.timeout));
            wait_until(self.notify, d)?;
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let _ = self.call(&Message::new(proto::CLOSE));
        let _ = syscall::cap_delete(self.ep);
        let _ = syscall::cap_delete(self.notify);
        // Deleting the memory capability unmaps it too (`buffer`'s own
        // unmap then finds nothing).
        let _ = syscall::cap_delete(self.buffer.handle());
    }
}

/// A TCP connection.
pub struct TcpStream {
    s: Socket,
}

impl TcpStream {
    /// Connects to `addr`, waiting at most `timeout` for the handshake.
    pub fn connect_timeout(addr: SocketAddrV4, timeout: Timeout) -> Result<TcpStream, Error> {
        let mut s = Socket::open(Kind::Tcp)?;
        s.call(&Message::with_words(
            proto::CONNECT,
            &[ip_word(*addr.ip()), addr.port() as u64],
        ))?;
        s.timeout = timeout;
        let mut stream = TcpStream { s };
        let d = Deadline::after(timeout);
        loop {
            match stream.state()? {
                TcpState::Established | TcpState::CloseWait => break,
                TcpState::SynSent | TcpState::SynReceived => {}
                _ => return Err(Error::PeerDied),
            }
            if d.passed() {
                return Err(Error::TimedOut);
            }
            let _ = syscall::wait(stream.s.notify, Timeout::millis(50));
        }
        stream.s.timeout = Timeout::Forever;
        Ok(stream)
    }

    pub fn connect(addr: SocketAddrV4) -> Result<TcpStream, Error> {
        TcpStream::connect_timeout(addr, Timeout::millis(10_000))
    }

    fn state(&self) -> Result<TcpState, Error> {
        Ok(TcpState::from_word(self.s.call(&Message::new(proto::STATUS))?.word(0)))
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> Result<SocketAddrV4, Error> {
        let r = self.s.call(&Message::new(proto::STATUS))?;
        Ok(SocketAddrV4::new(
            word_ip(r.word(2)).unwrap_or(Ipv4Addr::UNSPECIFIED),
            r.word(3) as u16,
        ))
    }

    /// How long a read or write may wait (`Timeout::Forever` by default).
    pub fn set_timeout(&mut self, timeout: Timeout) {
        self.s.timeout = timeout;
    }

    /// Reads what has arrived (at least one byte, waiting for it); 0 at
    /// the end of the stream.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let max = buf.len().min(BUFFER_BYTES);
        let r = self.s.call_waiting(&Message::with_words(proto::RECV, &[max as u64]))?;
        let n = (r.word(0) as usize).min(max);
        buf[..n].copy_from_slice(&self.s.buffer.as_slice()[..n]);
        Ok(n)
    }

    /// Writes some of `buf` (at least one byte, waiting for room).
    pub fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        let n = buf.len().min(BUFFER_BYTES);
        if n == 0 {
            return Ok(0);
        }
        self.s.buffer.as_mut_slice()[..n].copy_from_slice(&buf[..n]);
        let r = self.s.call_waiting(&Message::with_words(proto::SEND, &[n as u64]))?;
        Ok((r.word(0) as usize).min(n))
    }

    pub fn write_all(&mut self, mut buf: &[u8]) -> Result<(), Error> {
        while !buf.is_empty() {
            let n = self.write(buf)?;
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Reads to the end of the stream, appending to `out`.
    pub fn read_to_end(&mut self, out: &mut Vec<u8>) -> Result<usize, Error> {
        let mut buf = [0u8; 2048];
        let start = out.len();
        loop {
            match self.read(&mut buf)? {
                0 => return Ok(out.len() - start),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }
}

/// A TCP socket listening for connections.
pub struct TcpListener {
    s: Socket,
}

impl TcpListener {
    /// Listens on `port` on this device's address.
    pub fn bind(port: u16) -> Result<TcpListener, Error> {
        let s = Socket::open(Kind::Tcp)?;
        s.call(&Message::with_words(proto::LISTEN, &[port as u64]))?;
        Ok(TcpListener { s })
    }

    /// Waits for the next connection.
    pub fn accept(&self) -> Result<(TcpStream, SocketAddrV4), Error> {
        let r = self.s.call_waiting(&Message::new(proto::ACCEPT).accepting_caps(2))?;
        let peer = SocketAddrV4::new(word_ip(r.word(0)).unwrap_or(Ipv4Addr::UNSPECIFIED), r.word(1) as u16);
        // The new connection signals the listener's notification: give it
        // a copy of its own.
        let notify = syscall::cap_copy(self.s.notify, Rights::SEND | Rights::RECEIVE)?;
        Ok((
            TcpStream {
                s: Socket::from_reply(&r, notify)?,
            },
            peer,
        ))
    }
}

/// A UDP socket. It receives through its ring
/// ([`crate::services::net::ring`]): the stack puts each datagram in the
/// shared buffer as it arrives, and a receive takes it from there without
/// a call.
pub struct UdpSocket {
    s: Socket,
    /// Ring bytes taken (this side's copy of `TAIL`).
    tail: u64,
}

impl UdpSocket {
    /// A socket on `port` (0: the stack picks one when it first sends).
    pub fn bind(port: u16) -> Result<UdpSocket, Error> {
        let s = Socket::open(Kind::Udp)?;
        if port != 0 {
            s.call(&Message::with_words(proto::BIND, &[port as u64]))?;
        }
        s.call(&Message::new(proto::RING))?;
        Ok(UdpSocket { s, tail: 0 })
    }

    pub fn set_timeout(&mut self, timeout: Timeout) {
        self.s.timeout = timeout;
    }

    pub fn send_to(&mut self, buf: &[u8], addr: SocketAddrV4) -> Result<usize, Error> {
        // The bytes before the ring's header (the stack takes at most a
        // 1,472-byte datagram).
        if buf.len() > ring::HEAD {
            return Err(Error::InvalidArgument);
        }
        let n = buf.len();
        self.s.buffer.as_mut_slice()[..n].copy_from_slice(&buf[..n]);
        self.s
            .call_short_waiting(proto::SEND_TO, &[ip_word(*addr.ip()), addr.port() as u64, n as u64])?;
        Ok(n)
    }

    /// Whether a datagram may wait: at once if the ring holds one (or the
    /// stack holds some the ring had no room for); otherwise waits at most
    /// `timeout` for the stack's signal (`net` signals a UDP socket after
    /// it put datagrams in its ring). A signal left from earlier also
    /// counts, so a receive may still find nothing.
    pub fn wait_ready(&self, timeout: Timeout) -> bool {
        // The stack signals once for all it put in the ring: what is left
        // there from an earlier signal is ready now.
        let b = &self.s.buffer;
        if b.atomic_u64(ring::HEAD).load(Ordering::Acquire) != self.tail
            || b.atomic_u64(ring::MORE).load(Ordering::Acquire) != 0
        {
            return true;
        }
        syscall::wait(self.s.notify, timeout).is_ok()
    }

    /// The next datagram (cut at `buf`'s length), waiting for it at most
    /// the socket's timeout.
    pub fn recv_from(&mut self, buf: &mut [u8]) -> Result<(usize, SocketAddrV4), Error> {
        let deadline = Deadline::after(self.s.timeout);
        loop {
            match self.try_recv_from(buf) {
                Err(Error::WouldBlock) => {}
                other => return other,
            }
            wait_until(self.s.notify, deadline)?;
        }
    }

    /// The next datagram if one waits (`WouldBlock` otherwise), without
    /// waiting, for use after [`UdpSocket::wait_ready`]: from the ring,
    /// and with a `RECV_FROM` only when the ring ran empty while the stack
    /// holds more.
    pub fn try_recv_from(&mut self, buf: &mut [u8]) -> Result<(usize, SocketAddrV4), Error> {
        if let Some(got) = self.take(buf)? {
            return Ok(got);
        }
        if self.s.buffer.atomic_u64(ring::MORE).load(Ordering::Acquire) == 0 {
            return Err(Error::WouldBlock);
        }
        self.s.call(&Message::with_words(proto::RECV_FROM, &[0]))?;
        self.take(buf)?.ok_or(Error::WouldBlock)
    }

    /// Takes the ring's next record into `buf`.
    fn take(&mut self, buf: &mut [u8]) -> Result<Option<(usize, SocketAddrV4)>, Error> {
        let head = self.s.buffer.atomic_u64(ring::HEAD).load(Ordering::Acquire);
        match ring::take(&self.s.buffer.as_slice()[ring::DATA..], head, self.tail, buf) {
            Ok(Some((n, addr, port, tail))) => {
                self.tail = tail;
                self.s.buffer.atomic_u64(ring::TAIL).store(tail, Ordering::Release);
                Ok(Some((n, SocketAddrV4::new(Ipv4Addr::from(addr), port))))
            }
            Ok(None) => Ok(None),
            Err(()) => Err(Error::InvalidState),
        }
    }
}

/// ICMP echo (ping).
pub struct Pinger {
    s: Socket,
}

impl Pinger {
    /// A pinger with echo identifier `ident`.
    pub fn new(ident: u16) -> Result<Pinger, Error> {
        let s = Socket::open(Kind::Icmp)?;
        s.call(&Message::with_words(proto::BIND, &[ident as u64]))?;
        Ok(Pinger { s })
    }

    /// Sends echo request `seq` with `payload` to `to` and waits at most
    /// `timeout` for its reply; returns the round trip in microseconds.
    pub fn ping(&mut self, to: Ipv4Addr, seq: u16, payload: &[u8], timeout: Timeout) -> Result<u64, Error> {
        let n = payload.len().min(1024);
        self.s.buffer.as_mut_slice()[..n].copy_from_slice(&payload[..n]);
        let start = syscall::now_us();
        self.s.timeout = timeout;
        self.s.call_waiting(&Message::with_words(
            proto::SEND_TO,
            &[ip_word(to), seq as u64, n as u64],
        ))?;
        loop {
            let r = self
                .s
                .call_waiting(&Message::with_words(proto::RECV_FROM, &[n as u64]))?;
            let payload_ok = r.word(0) as usize == n && self.s.buffer.as_slice()[..n] == payload[..n];
            if r.word(2) == seq as u64 && word_ip(r.word(1)) == Some(to) && payload_ok {
                return Ok(syscall::now_us() - start);
            }
            if syscall::now_us().saturating_sub(start) > 60_000_000 {
                return Err(Error::TimedOut);
            }
        }
    }
}

/// The IPv4 addresses of `name` (a dotted address is its own answer),
/// asking the DNS server DHCP named; at most `timeout`.
pub fn resolve(name: &str, timeout: Timeout) -> Result<Vec<Ipv4Addr>, Error> {
    if let Ok(ip) = name.parse::<Ipv4Addr>() {
        return Ok(alloc::vec![ip]);
    }
    let mut s = Socket::open(Kind::Dns)?;
    s.timeout = timeout;
    s.call_waiting(&pack_text(proto::QUERY, name))?;
    let r = s.call_waiting(&Message::new(proto::RESULT))?;
    let n = (r.word(0) as usize).min(r.len().saturating_sub(1));
    Ok((0..n).filter_map(|i| word_ip(r.word(1 + i))).collect())
}
