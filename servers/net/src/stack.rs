//! The stack: smoltcp's interface and sockets, DHCP and DNS, and the
//! table of client sockets (each a capability: see
//! `userlib::services::net`).

use crate::link::Link;
use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use core::sync::atomic::Ordering;
use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::socket::{dhcpv4, dns, icmp, tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    DhcpRepr, EthernetAddress, HardwareAddress, Icmpv4Packet, Icmpv4Repr, IpAddress, IpCidr, IpEndpoint,
};
use userlib::abi::{ObjectType, PAGE_SIZE};
use userlib::ipc::unpack_text;
use userlib::proto::OK;
use userlib::services::net::{self as proto, ip_word, ring, word_ip, word_port, Kind, State, TcpState, BUFFER_BYTES};
use userlib::vspace::{self, Mapping};
use userlib::{log, process, syscall, Error, Handle, Message, Rights};

/// Most sockets open at once (all clients together).
pub const MAX_SOCKETS: usize = 24;
/// Most sockets one client task may hold.
pub const MAX_PER_CLIENT: usize = 12;
const TCP_RX: usize = 64 * 1024;
const TCP_TX: usize = 16 * 1024;
/// A UDP socket's receive buffer: datagrams and bytes (room for the soft
/// bus's pull window, 16 fragments of 1,399 bytes, and some more).
const UDP_RX_PACKETS: usize = 32;
const UDP_RX_BYTES: usize = 32 * 1024;
/// Its send buffer (each `SEND_TO` is sent before the reply).
const UDP_TX_PACKETS: usize = 8;
const UDP_TX_BYTES: usize = 8 * 1024;
const ICMP_BYTES: usize = 2 * 1024;
const DNS_QUERIES: usize = 4;
/// Longest ICMP echo payload.
const MAX_PING: usize = 1024;

struct Sock {
    kind: Kind,
    badge: u64,
    owner: u64,
    /// The smoltcp socket (TCP, UDP, ICMP); none for DNS, and none for a
    /// TCP socket before `CONNECT`/`LISTEN`.
    handle: Option<SocketHandle>,
    query: Option<dns::QueryHandle>,
    /// Port a listener listens on (it gets a fresh socket after each accept).
    listen: Option<u16>,
    /// ICMP echo identifier.
    ident: u16,
    /// The client's notification (`SEND`).
    notify: Handle,
    /// The endpoint capability minted for the client: revoked on close.
    cap: Handle,
    buffer: Mapping,
    /// A UDP `SEND_TO` found the send buffer full: the client waits for
    /// room (it is signalled after the next poll that changed something).
    wants_room: bool,
    /// A UDP socket in ring mode: the ring's head (`net`'s own copy; the
    /// one in the buffer memory is never read back).
    ring: Option<u64>,
}

pub struct Stack {
    pub link: Link,
    iface: Interface,
    sockets: SocketSet<'static>,
    dhcp: SocketHandle,
    dns: SocketHandle,
    pub dns_servers: Vec<Ipv4Addr>,
    gateway: Option<Ipv4Addr>,
    /// When the lease was obtained (µs since boot) and its length (s).
    lease: Option<(u64, u32)>,
    /// When the link came up without a lease (µs since boot), and whether
    /// the link-local address is in use.
    asking_since: Option<u64>,
    link_local: bool,
    /// The client sockets, by slot; each slot maps its buffer in its own
    /// window.
    table: Vec<Option<Sock>>,
    windows: Vec<u64>,
    generation: u64,
    /// Closed TCP sockets that still finish their FIN handshake.
    lingering: Vec<SocketHandle>,
    /// The service endpoint (unbadged): socket capabilities are minted from it.
    ep: Handle,
    next_port: u16,
    /// When the last liveness check ran (µs since boot): of the driver
    /// (`Link::check`) and of the clients of the sockets a poll does not
    /// signal (see [`CHECK_EVERY_US`]).
    checked_us: u64,
    /// The time the last poll ran at (µs since boot), for [`Stack::delay_us`].
    polled_us: u64,
}

/// How often a poll checks that the driver and the clients of quiet
/// sockets are still there (each a `cap_info`): at most once in this
/// long, not at every poll (a datagram sent and its reply received made
/// about six such calls on the bench's TV). A dead client's sockets and a dead driver are
/// found at the first poll after it, and the poll thread wakes at least
/// once a second.
pub const CHECK_EVERY_US: u64 = 100_000;

/// How long the interface asks DHCP before it takes a link-local address.
const LINK_LOCAL_AFTER_US: u64 = 4_000_000;

/// 169.254.X.Y from the MAC's last two bytes, avoiding the reserved first
/// and last /24 of the range (RFC 3927) and .0/.255 hosts.
pub fn link_local_address(mac: [u8; 6]) -> Ipv4Addr {
    let x = mac[4].clamp(1, 254);
    let y = mac[5].clamp(1, 254);
    Ipv4Addr::new(169, 254, x, y)
}

pub fn now() -> Instant {
    Instant::from_micros(syscall::now_us() as i64)
}

fn tcp_state(s: tcp::State) -> TcpState {
    match s {
        tcp::State::Closed => TcpState::Closed,
        tcp::State::Listen => TcpState::Listen,
        tcp::State::SynSent => TcpState::SynSent,
        tcp::State::SynReceived => TcpState::SynReceived,
        tcp::State::Established => TcpState::Established,
        tcp::State::FinWait1 => TcpState::FinWait1,
        tcp::State::FinWait2 => TcpState::FinWait2,
        tcp::State::CloseWait => TcpState::CloseWait,
        tcp::State::Closing => TcpState::Closing,
        tcp::State::LastAck => TcpState::LastAck,
        tcp::State::TimeWait => TcpState::TimeWait,
    }
}

/// Moves the datagrams waiting on UDP socket `h` into `s`'s receive ring
/// while they fit, and says in the ring's `MORE` whether some are left.
/// Only `net`'s own copy of the head decides where bytes go; the client's
/// `TAIL` is read once and only bounds the room (see `ring::put`).
/// Whether the client should be signalled (some went in, or some wait).
fn fill_ring(sockets: &mut SocketSet<'static>, h: SocketHandle, s: &mut Sock) -> bool {
    let Some(mut head) = s.ring else { return false };
    let u = sockets.get_mut::<udp::Socket>(h);
    if !u.can_recv() {
        return false;
    }
    let tail = s.buffer.atomic_u64(ring::TAIL).load(Ordering::Acquire);
    let mut moved = false;
    while let Ok((data, meta)) = u.peek() {
        let addr = u32::from(v4(meta.endpoint.addr));
        let port = meta.endpoint.port;
        let Some(next) = ring::put(&mut s.buffer.as_mut_slice()[ring::DATA..], head, tail, data, addr, port) else {
            break;
        };
        head = next;
        moved = true;
        let _ = u.recv();
    }
    let more = u.can_recv();
    s.ring = Some(head);
    if moved {
        s.buffer.atomic_u64(ring::HEAD).store(head, Ordering::Release);
    }
    s.buffer.atomic_u64(ring::MORE).store(more as u64, Ordering::Release);
    moved || more
}

fn v4(a: IpAddress) -> Ipv4Addr {
    match a {
        IpAddress::Ipv4(a) => a,
    }
}

impl Stack {
    pub fn new(mut link: Link, ep: Handle) -> Stack {
        let (us, ticks) = syscall::clock();
        let mac = link.mac;
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        // Seeds TCP initial sequence numbers and DHCP transaction ids: the
        // clock (microseconds and timer ticks since boot) and the MAC. Not
        // secret: whoever knows when the stack started can guess it. (The
        // cycle counter is not readable here: only tasks given the counters
        // capability read it.)
        config.random_seed = us
            ^ ticks.rotate_left(17)
            ^ u64::from_be_bytes({
                let mut b = [0u8; 8];
                b[2..].copy_from_slice(&mac);
                b
            });
        let iface = Interface::new(config, &mut link, now());
        let mut sockets = SocketSet::new(vec![]);
        let mut dhcp = dhcpv4::Socket::new();
        // Keeps the ACK, whose lease time `ip` shows.
        dhcp.set_receive_packet_buffer(alloc::boxed::Box::leak(vec![0u8; 1500].into_boxed_slice()));
        let dhcp = sockets.add(dhcp);
        let dns = sockets.add(dns::Socket::new(
            &[],
            (0..DNS_QUERIES).map(|_| None).collect::<Vec<_>>(),
        ));
        Stack {
            link,
            iface,
            sockets,
            dhcp,
            dns,
            dns_servers: Vec::new(),
            gateway: None,
            asking_since: None,
            link_local: false,
            lease: None,
            table: (0..MAX_SOCKETS).map(|_| None).collect(),
            windows: (0..MAX_SOCKETS)
                .map(|_| vspace::reserve((BUFFER_BYTES / PAGE_SIZE) as u64))
                .collect(),
            generation: 0,
            lingering: Vec::new(),
            ep,
            next_port: 49152 + (ticks % 1000) as u16,
            checked_us: us,
            polled_us: us,
        }
    }

    /// Runs the interface: frames in and out, timers, DHCP. Signals every
    /// socket when something may have changed. Checks that the driver and
    /// the quiet sockets' clients are still there when the last check is
    /// [`CHECK_EVERY_US`] old.
    pub fn poll(&mut self) {
        let us = syscall::now_us();
        self.polled_us = us;
        let check = us.wrapping_sub(self.checked_us) >= CHECK_EVERY_US;
        if check {
            self.checked_us = us;
            self.link.check();
        }
        self.link_local_fallback(us);
        if !self.link.is_up() && self.link.reconnect().is_ok() {
            let m = self.link.mac;
            log::info!(
                "netdev: attached (link {}), MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                self.link.attaches,
                m[0],
                m[1],
                m[2],
                m[3],
                m[4],
                m[5]
            );
            self.iface
                .set_hardware_addr(HardwareAddress::Ethernet(EthernetAddress(self.link.mac)));
            if self.lease.is_none() {
                // Ask at once rather than at the next retry.
                self.sockets.get_mut::<dhcpv4::Socket>(self.dhcp).reset();
            }
        }
        let changed = self
            .iface
            .poll(Instant::from_micros(us as i64), &mut self.link, &mut self.sockets)
            == PollResult::SocketStateChanged;
        self.dhcp_events();
        self.reap_lingering();
        if changed || check {
            self.notify_ready(changed, check);
        }
    }

    /// How long the interface may sleep before it must poll again,
    /// counted from the last poll's clock reading (no second reading: a
    /// timer may fire as much later as that poll took, microseconds).
    /// While a driver that was there is away, every 50 ms (to attach to
    /// its successor soon).
    pub fn delay_us(&mut self) -> u64 {
        let most = if !self.link.is_up() && self.link.attaches > 0 {
            50_000
        } else {
            1_000_000
        };
        match self
            .iface
            .poll_delay(Instant::from_micros(self.polled_us as i64), &self.sockets)
        {
            Some(d) => d.total_micros().clamp(1, most),
            None => most,
        }
    }

    fn dhcp_events(&mut self) {
        /// What a DHCP event changes, copied out of the socket's borrow.
        enum Change {
            Leased(smoltcp::wire::Ipv4Cidr, Option<Ipv4Addr>, Vec<Ipv4Addr>, u32),
            Lost,
        }
        let change = match self.sockets.get_mut::<dhcpv4::Socket>(self.dhcp).poll() {
            None => return,
            Some(dhcpv4::Event::Configured(c)) => {
                let lease = c
                    .packet
                    .and_then(|p| DhcpRepr::parse(&p).ok().and_then(|r| r.lease_duration));
                Change::Leased(
                    c.address,
                    c.router,
                    c.dns_servers.iter().copied().collect(),
                    lease.unwrap_or(0),
                )
            }
            Some(dhcpv4::Event::Deconfigured) => Change::Lost,
        };
        match change {
            Change::Leased(cidr, router, dns, lease) => {
                self.link_local = false;
                self.iface.update_ip_addrs(|addrs| {
                    addrs.clear();
                    let _ = addrs.push(IpCidr::Ipv4(cidr));
                });
                self.gateway = router;
                match router {
                    Some(r) => {
                        let _ = self.iface.routes_mut().add_default_ipv4_route(r);
                    }
                    None => {
                        self.iface.routes_mut().remove_default_ipv4_route();
                    }
                }
                self.lease = Some((syscall::now_us(), lease));
                let servers: Vec<IpAddress> = dns.iter().map(|a| IpAddress::Ipv4(*a)).collect();
                self.sockets.get_mut::<dns::Socket>(self.dns).update_servers(&servers);
                self.dns_servers = dns;
                log::info!(
                    "dhcp: leased {} (router {}, dns {}) for {} s",
                    cidr,
                    router.unwrap_or(Ipv4Addr::UNSPECIFIED),
                    self.dns_servers.first().copied().unwrap_or(Ipv4Addr::UNSPECIFIED),
                    lease
                );
            }
            Change::Lost if self.lease.is_none() => return,
            Change::Lost => {
                log::info!("dhcp: lease lost");
                self.iface.update_ip_addrs(|addrs| addrs.clear());
                self.iface.routes_mut().remove_default_ipv4_route();
                self.lease = None;
                self.gateway = None;
            }
        }
        self.notify_all();
    }

    /// A segment without a DHCP server (`cargo xtask run --link`): after
    /// [`LINK_LOCAL_AFTER_US`] without a lease the interface takes the
    /// link-local address 169.254.X.Y/16 made from its MAC's last two bytes
    /// (RFC 3927's range; without its ARP probing, so two cards whose MACs
    /// end alike would clash). DHCP keeps asking; a lease replaces it.
    fn link_local_fallback(&mut self, now: u64) {
        if self.lease.is_some() || !self.link.is_up() {
            self.asking_since = None;
            return;
        }
        if self.link_local {
            return;
        }
        let since = *self.asking_since.get_or_insert(now);
        if now.saturating_sub(since) < LINK_LOCAL_AFTER_US {
            return;
        }
        let addr = link_local_address(self.link.mac);
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            let _ = addrs.push(IpCidr::Ipv4(smoltcp::wire::Ipv4Cidr::new(addr, 16)));
        });
        self.link_local = true;
        log::info!("no DHCP answer: link-local address {addr}/16");
        self.notify_all();
    }

    fn reap_lingering(&mut self) {
        let sockets = &mut self.sockets;
        self.lingering.retain(|&h| {
            let s = sockets.get::<tcp::Socket>(h);
            if matches!(s.state(), tcp::State::Closed | tcp::State::TimeWait) {
                sockets.remove(h);
                false
            } else {
                true
            }
        });
    }

    /// After a poll that `changed` something: signals the clients whose
    /// sockets may have news. A UDP socket's client is signalled only when
    /// a datagram waits or it waited for room to send (a poll that sent
    /// another socket's datagram does not wake a receiver that has nothing
    /// to take); the others as [`Stack::notify_all`]. A client that died
    /// took its notification with it: its sockets are closed (found by the
    /// failed signal, or, if this poll does not signal it, by `cap_info`
    /// when `check`).
    ///
    /// A UDP socket in ring mode gets its datagrams in its ring first, and
    /// is signalled only if some went in or some wait for room.
    pub fn notify_ready(&mut self, changed: bool, check: bool) {
        let sockets = &mut self.sockets;
        let dead: Vec<usize> = self
            .table
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| {
                let s = s.as_mut()?;
                let quiet = !changed
                    || match (s.kind, s.handle) {
                        (Kind::Udp, Some(h)) if s.ring.is_some() => !fill_ring(sockets, h, s) && !s.wants_room,
                        (Kind::Udp, Some(h)) => !sockets.get::<udp::Socket>(h).can_recv() && !s.wants_room,
                        _ => false,
                    };
                let alive = if quiet {
                    !check || syscall::cap_info(s.notify).is_ok()
                } else {
                    s.wants_room = false;
                    syscall::signal(s.notify, proto::READY_BIT).is_ok()
                };
                (!alive).then_some(i)
            })
            .collect();
        for i in dead {
            self.close_slot(i, true);
        }
    }

    pub fn notify_all(&mut self) {
        let dead: Vec<usize> = self
            .table
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let s = s.as_ref()?;
                syscall::signal(s.notify, proto::READY_BIT).is_err().then_some(i)
            })
            .collect();
        for i in dead {
            self.close_slot(i, true);
        }
    }

    /// `INFO`: `[mac, address, prefix, gateway, dns, lease seconds left, state]`.
    pub fn info(&self) -> Message {
        let (mut addr, mut prefix) = (Ipv4Addr::UNSPECIFIED, 0u8);
        if let Some(IpCidr::Ipv4(c)) = self.iface.ip_addrs().first() {
            addr = c.address();
            prefix = c.prefix_len();
        }
        let gateway = self.gateway.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let dns = self.dns_servers.first().copied().unwrap_or(Ipv4Addr::UNSPECIFIED);
        let left = self.lease.map_or(0, |(at, secs)| {
            (secs as u64).saturating_sub(syscall::now_us().saturating_sub(at) / 1_000_000)
        });
        let state = if !self.link.is_up() {
            State::Down
        } else if self.lease.is_some() {
            State::Dhcp
        } else if self.link_local {
            State::LinkLocal
        } else {
            State::Discovering
        };
        Message::with_words(
            OK,
            &[
                userlib::services::netdev::mac_to_word(self.link.mac),
                ip_word(addr),
                prefix as u64,
                ip_word(gateway),
                ip_word(dns),
                left,
                state as u64,
                self.link.frames_in,
                self.link.frames_out,
                self.link.frames_foreign,
            ],
        )
    }

    /// `OPEN [kind]` + notification from client `owner`.
    pub fn open(&mut self, owner: u64, kind: u64, notify: Handle) -> Result<Message, Error> {
        let kind = Kind::from_word(kind).ok_or(Error::InvalidArgument)?;
        if syscall::cap_info(notify)?.object != Some(ObjectType::Notification) {
            return Err(Error::WrongType);
        }
        let handle = match kind {
            Kind::Tcp => None,
            Kind::Udp => Some(self.sockets.add(udp::Socket::new(
                udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; UDP_RX_PACKETS], vec![0; UDP_RX_BYTES]),
                udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; UDP_TX_PACKETS], vec![0; UDP_TX_BYTES]),
            ))),
            Kind::Icmp => Some(self.sockets.add(icmp::Socket::new(
                icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 4], vec![0; ICMP_BYTES]),
                icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 4], vec![0; ICMP_BYTES]),
            ))),
            Kind::Dns => None,
        };
        match self.install(owner, kind, handle, notify) {
            Ok((badge, reply)) => {
                let _ = badge;
                Ok(reply)
            }
            Err(e) => {
                if let Some(h) = handle {
                    self.sockets.remove(h);
                }
                Err(e)
            }
        }
    }

    /// Puts a socket in a free slot: its buffer, its endpoint capability.
    /// The reply carries both. Takes `notify` (deleted on failure).
    fn install(
        &mut self,
        owner: u64,
        kind: Kind,
        handle: Option<SocketHandle>,
        notify: Handle,
    ) -> Result<(u64, Message), Error> {
        let r = self.install_inner(owner, kind, handle, notify);
        if r.is_err() {
            let _ = syscall::cap_delete(notify);
        }
        r
    }

    fn install_inner(
        &mut self,
        owner: u64,
        kind: Kind,
        handle: Option<SocketHandle>,
        notify: Handle,
    ) -> Result<(u64, Message), Error> {
        let held = self.table.iter().flatten().filter(|s| s.owner == owner).count();
        if held >= MAX_PER_CLIENT {
            return Err(Error::OutOfMemory);
        }
        let slot = self.table.iter().position(Option::is_none).ok_or(Error::OutOfMemory)?;
        let pages = (BUFFER_BYTES / PAGE_SIZE) as u64;
        let mem = syscall::create(process().pool, ObjectType::Memory, pages)?;
        let buffer = match Mapping::map_at(mem, pages, Rights::READ | Rights::WRITE, self.windows[slot]) {
            Ok(m) => m,
            Err(e) => {
                let _ = syscall::cap_delete(mem);
                return Err(e);
            }
        };
        self.generation += 1;
        let badge = proto::SOCKET_BADGE | (self.generation << 8) | slot as u64;
        // GRANT, to hand it over (the client's copy has SEND only).
        let cap = match syscall::cap_mint(self.ep, Rights::SEND | Rights::GRANT, badge) {
            Ok(c) => c,
            Err(e) => {
                drop(buffer);
                let _ = syscall::cap_delete(mem);
                return Err(e);
            }
        };
        let mut reply = Message::new(OK);
        reply.push_cap(cap, Rights::SEND);
        reply.push_cap(mem, Rights::READ | Rights::WRITE | Rights::MAP);
        self.table[slot] = Some(Sock {
            kind,
            badge,
            owner,
            handle,
            query: None,
            listen: None,
            ident: 0,
            notify,
            cap,
            buffer,
            wants_room: false,
            ring: None,
        });
        Ok((badge, reply))
    }

    fn slot_of(&self, badge: u64) -> Option<usize> {
        let slot = (badge & 0xff) as usize;
        self.table
            .get(slot)?
            .as_ref()
            .filter(|s| s.badge == badge)
            .map(|_| slot)
    }

    /// Closes slot `i`: the client's capability goes; a TCP connection
    /// finishes with FIN (or RST if `abort`).
    fn close_slot(&mut self, i: usize, abort: bool) {
        let Some(s) = self.table[i].take() else { return };
        let _ = syscall::cap_revoke(s.cap);
        let _ = syscall::cap_delete(s.cap);
        let _ = syscall::cap_delete(s.notify);
        let mem = s.buffer.handle();
        drop(s.buffer);
        let _ = syscall::cap_revoke(mem);
        let _ = syscall::cap_delete(mem);
        if let Some(q) = s.query {
            self.sockets.get_mut::<dns::Socket>(self.dns).cancel_query(q);
        }
        if let Some(h) = s.handle {
            match s.kind {
                Kind::Tcp if !abort => {
                    self.sockets.get_mut::<tcp::Socket>(h).close();
                    self.lingering.push(h);
                }
                Kind::Tcp => {
                    self.sockets.get_mut::<tcp::Socket>(h).abort();
                    self.lingering.push(h);
                }
                _ => {
                    self.sockets.remove(h);
                }
            }
        }
    }

    fn new_tcp() -> tcp::Socket<'static> {
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; TCP_RX]),
            tcp::SocketBuffer::new(vec![0; TCP_TX]),
        );
        s.set_nagle_enabled(false);
        s.set_keep_alive(Some(Duration::from_secs(30)));
        s
    }

    fn ephemeral_port(&mut self) -> u16 {
        self.next_port = if self.next_port >= 65000 {
            49152
        } else {
            self.next_port + 1
        };
        self.next_port
    }

    /// A request on socket endpoint `badge`.
    /// Whether the interface must run after request `label` on `badge`:
    /// not after one that only reads what an earlier poll received (a
    /// UDP or ICMP `RECV_FROM`, a TCP `STATUS`, a DNS `RESULT`) or the
    /// interface's `INFO`; those queue no frame and start no timer. (A
    /// TCP `RECV` may open the window, which the peer must be told.)
    pub fn polls_after(&self, badge: u64, label: u16) -> bool {
        if badge & proto::SOCKET_BADGE == 0 {
            return label != proto::INFO;
        }
        let kind = self.slot_of(badge).and_then(|i| self.table[i].as_ref()).map(|s| s.kind);
        !matches!(
            (kind, label),
            (Some(Kind::Udp | Kind::Icmp), proto::RECV_FROM)
                | (Some(Kind::Tcp), proto::STATUS)
                | (Some(Kind::Dns), proto::RESULT)
        )
    }

    pub fn socket_request(&mut self, badge: u64, msg: &Message) -> Result<Message, Error> {
        let i = self.slot_of(badge).ok_or(Error::BadHandle)?;
        if msg.label == proto::CLOSE {
            self.close_slot(i, false);
            return Ok(Message::new(OK));
        }
        let kind = self.table[i].as_ref().map(|s| s.kind).ok_or(Error::BadHandle)?;
        match (kind, msg.label) {
            (Kind::Tcp, proto::CONNECT) => self.connect(i, msg),
            (Kind::Tcp, proto::LISTEN) => self.listen(i, msg),
            (Kind::Tcp, proto::ACCEPT) => self.accept(i),
            (Kind::Tcp, proto::SEND) => self.tcp_send(i, msg.word(0)),
            (Kind::Tcp, proto::RECV) => self.tcp_recv(i, msg.word(0)),
            (Kind::Tcp, proto::STATUS) => Ok(self.tcp_status(i)),
            (Kind::Udp, proto::BIND) => self.udp_bind(i, msg.word(0)),
            (Kind::Udp, proto::SEND_TO) => self.udp_send(i, msg),
            (Kind::Udp, proto::RECV_FROM) => self.udp_recv(i, msg.word(0)),
            (Kind::Udp, proto::RING) => {
                let s = self.sock(i);
                s.ring = Some(0);
                s.buffer.atomic_u64(ring::HEAD).store(0, Ordering::Release);
                s.buffer.atomic_u64(ring::MORE).store(0, Ordering::Release);
                Ok(Message::new(OK))
            }
            (Kind::Icmp, proto::BIND) => self.icmp_bind(i, msg.word(0)),
            (Kind::Icmp, proto::SEND_TO) => self.ping(i, msg),
            (Kind::Icmp, proto::RECV_FROM) => self.pong(i, msg.word(0)),
            (Kind::Dns, proto::QUERY) => self.query(i, msg),
            (Kind::Dns, proto::RESULT) => self.result(i),
            _ => Err(Error::NotSupported),
        }
    }

    fn sock(&mut self, i: usize) -> &mut Sock {
        self.table[i].as_mut().expect("checked slot")
    }

    fn connect(&mut self, i: usize, msg: &Message) -> Result<Message, Error> {
        let ip = word_ip(msg.word(0)).ok_or(Error::InvalidArgument)?;
        let port = word_port(msg.word(1)).ok_or(Error::InvalidArgument)?;
        if self.sock(i).handle.is_some() {
            return Err(Error::InvalidState);
        }
        let local = self.ephemeral_port();
        let mut s = Self::new_tcp();
        s.connect(self.iface.context(), IpEndpoint::new(IpAddress::Ipv4(ip), port), local)
            .map_err(|_| Error::InvalidArgument)?;
        let h = self.sockets.add(s);
        self.sock(i).handle = Some(h);
        Ok(Message::new(OK))
    }

    fn listen(&mut self, i: usize, msg: &Message) -> Result<Message, Error> {
        let port = word_port(msg.word(0)).ok_or(Error::InvalidArgument)?;
        if self.sock(i).handle.is_some() {
            return Err(Error::InvalidState);
        }
        let taken = self.table.iter().flatten().any(|s| s.listen == Some(port));
        if taken {
            return Err(Error::InvalidState);
        }
        let mut s = Self::new_tcp();
        s.listen(port).map_err(|_| Error::InvalidArgument)?;
        let h = self.sockets.add(s);
        let sock = self.sock(i);
        sock.handle = Some(h);
        sock.listen = Some(port);
        Ok(Message::new(OK))
    }

    fn accept(&mut self, i: usize) -> Result<Message, Error> {
        let (h, port, owner) = {
            let s = self.sock(i);
            (
                s.handle.ok_or(Error::InvalidState)?,
                s.listen.ok_or(Error::InvalidState)?,
                s.owner,
            )
        };
        let t = self.sockets.get::<tcp::Socket>(h);
        if matches!(t.state(), tcp::State::Listen | tcp::State::SynReceived) {
            return Err(Error::WouldBlock);
        }
        let remote = t.remote_endpoint();
        // The connection becomes a socket of its own; the listener listens
        // again on a fresh one.
        let notify = syscall::cap_copy(self.sock(i).notify, Rights::SEND)?;
        let (_, mut reply) = self.install(owner, Kind::Tcp, Some(h), notify)?;
        let mut fresh = Self::new_tcp();
        fresh.listen(port).map_err(|_| Error::InvalidState)?;
        let nh = self.sockets.add(fresh);
        self.sock(i).handle = Some(nh);
        let (ip, rport) = remote.map_or((Ipv4Addr::UNSPECIFIED, 0), |e| (v4(e.addr), e.port));
        reply.push(ip_word(ip));
        reply.push(rport as u64);
        Ok(reply)
    }

    fn tcp(&mut self, i: usize) -> Result<&mut tcp::Socket<'static>, Error> {
        let h = self.sock(i).handle.ok_or(Error::InvalidState)?;
        Ok(self.sockets.get_mut::<tcp::Socket>(h))
    }

    fn tcp_send(&mut self, i: usize, len: u64) -> Result<Message, Error> {
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= BUFFER_BYTES)
            .ok_or(Error::InvalidArgument)?;
        let h = self.sock(i).handle.ok_or(Error::InvalidState)?;
        let (s, sock) = (&mut self.sockets, self.table[i].as_ref().expect("checked slot"));
        let t = s.get_mut::<tcp::Socket>(h);
        if !t.may_send() {
            return Err(match t.state() {
                tcp::State::SynSent | tcp::State::SynReceived => Error::WouldBlock,
                tcp::State::Closed => Error::PeerDied,
                _ => Error::InvalidState,
            });
        }
        let n = t
            .send_slice(&sock.buffer.as_slice()[..len])
            .map_err(|_| Error::InvalidState)?;
        if n == 0 && len > 0 {
            return Err(Error::WouldBlock);
        }
        Ok(Message::with_words(OK, &[n as u64]))
    }

    fn tcp_recv(&mut self, i: usize, max: u64) -> Result<Message, Error> {
        let max = (max as usize).min(BUFFER_BYTES);
        let h = self.sock(i).handle.ok_or(Error::InvalidState)?;
        let sock = self.table[i].as_mut().expect("checked slot");
        let t = self.sockets.get_mut::<tcp::Socket>(h);
        if t.can_recv() {
            let n = t
                .recv_slice(&mut sock.buffer.as_mut_slice()[..max])
                .map_err(|_| Error::InvalidState)?;
            return Ok(Message::with_words(OK, &[n as u64]));
        }
        match t.state() {
            tcp::State::SynSent | tcp::State::SynReceived | tcp::State::Established => Err(Error::WouldBlock),
            tcp::State::FinWait1 | tcp::State::FinWait2 if t.may_recv() => Err(Error::WouldBlock),
            // A connection that never got through, or was reset.
            tcp::State::Closed if !t.may_recv() && t.remote_endpoint().is_none() => Err(Error::PeerDied),
            // The peer sent FIN: end of stream.
            _ => Ok(Message::with_words(OK, &[0])),
        }
    }

    fn tcp_status(&mut self, i: usize) -> Message {
        let Ok(t) = self.tcp(i) else {
            return Message::with_words(OK, &[TcpState::Closed as u64, 0, 0, 0]);
        };
        let local = t.local_endpoint().map_or(0, |e| e.port);
        let (ip, port) = t
            .remote_endpoint()
            .map_or((Ipv4Addr::UNSPECIFIED, 0), |e| (v4(e.addr), e.port));
        Message::with_words(
            OK,
            &[tcp_state(t.state()) as u64, local as u64, ip_word(ip), port as u64],
        )
    }

    fn udp(&mut self, i: usize) -> &mut udp::Socket<'static> {
        let h = self.sock(i).handle.expect("UDP sockets are made with OPEN");
        self.sockets.get_mut::<udp::Socket>(h)
    }

    fn udp_bind(&mut self, i: usize, port: u64) -> Result<Message, Error> {
        let port = word_port(port).ok_or(Error::InvalidArgument)?;
        self.udp(i).bind(port).map_err(|_| Error::InvalidState)?;
        Ok(Message::new(OK))
    }

    fn udp_send(&mut self, i: usize, msg: &Message) -> Result<Message, Error> {
        let ip = word_ip(msg.word(0)).ok_or(Error::InvalidArgument)?;
        let port = word_port(msg.word(1)).ok_or(Error::InvalidArgument)?;
        let len = (msg.word(2) as usize).min(BUFFER_BYTES + 1);
        if len > 1472 {
            return Err(Error::InvalidArgument);
        }
        if !self.udp(i).is_open() {
            let p = self.ephemeral_port();
            self.udp(i).bind(p).map_err(|_| Error::InvalidState)?;
        }
        let h = self.sock(i).handle.expect("UDP sockets are made with OPEN");
        let sock = self.table[i].as_ref().expect("checked slot");
        let u = self.sockets.get_mut::<udp::Socket>(h);
        match u.send_slice(
            &sock.buffer.as_slice()[..len],
            IpEndpoint::new(IpAddress::Ipv4(ip), port),
        ) {
            Ok(()) => Ok(Message::new(OK)),
            Err(udp::SendError::BufferFull) => {
                self.sock(i).wants_room = true;
                Err(Error::WouldBlock)
            }
            Err(udp::SendError::Unaddressable) => Err(Error::InvalidArgument),
        }
    }

    fn udp_recv(&mut self, i: usize, max: u64) -> Result<Message, Error> {
        let max = (max as usize).min(BUFFER_BYTES);
        let h = self.sock(i).handle.expect("UDP sockets are made with OPEN");
        let sock = self.table[i].as_mut().expect("checked slot");
        if sock.ring.is_some() {
            // Ring mode: what waits goes into the ring (as much as fits).
            fill_ring(&mut self.sockets, h, sock);
            return Ok(Message::with_words(OK, &[0]));
        }
        let u = self.sockets.get_mut::<udp::Socket>(h);
        match u.recv() {
            Ok((data, meta)) => {
                let n = data.len().min(max);
                sock.buffer.as_mut_slice()[..n].copy_from_slice(&data[..n]);
                let ip = v4(meta.endpoint.addr);
                // Another datagram waits: the client's next wait returns
                // at once (it may wait before it asks again).
                if u.can_recv() {
                    let _ = syscall::signal(sock.notify, proto::READY_BIT);
                }
                Ok(Message::with_words(
                    OK,
                    &[n as u64, ip_word(ip), meta.endpoint.port as u64],
                ))
            }
            Err(_) => Err(Error::WouldBlock),
        }
    }

    fn icmp_bind(&mut self, i: usize, ident: u64) -> Result<Message, Error> {
        let ident = u16::try_from(ident).map_err(|_| Error::InvalidArgument)?;
        let h = self.sock(i).handle.expect("ICMP sockets are made with OPEN");
        self.sockets
            .get_mut::<icmp::Socket>(h)
            .bind(icmp::Endpoint::Ident(ident))
            .map_err(|_| Error::InvalidState)?;
        self.sock(i).ident = ident;
        Ok(Message::new(OK))
    }

    fn ping(&mut self, i: usize, msg: &Message) -> Result<Message, Error> {
        let ip = word_ip(msg.word(0)).ok_or(Error::InvalidArgument)?;
        let seq = u16::try_from(msg.word(1)).map_err(|_| Error::InvalidArgument)?;
        let len = msg.word(2) as usize;
        if len > MAX_PING {
            return Err(Error::InvalidArgument);
        }
        let h = self.sock(i).handle.expect("ICMP sockets are made with OPEN");
        let sock = self.table[i].as_ref().expect("checked slot");
        let caps = smoltcp::phy::ChecksumCapabilities::default();
        let repr = Icmpv4Repr::EchoRequest {
            ident: sock.ident,
            seq_no: seq,
            data: &sock.buffer.as_slice()[..len],
        };
        let s = self.sockets.get_mut::<icmp::Socket>(h);
        if !s.is_open() {
            return Err(Error::InvalidState);
        }
        let buf = s.send(repr.buffer_len(), IpAddress::Ipv4(ip)).map_err(|e| match e {
            icmp::SendError::BufferFull => Error::WouldBlock,
            icmp::SendError::Unaddressable => Error::InvalidArgument,
        })?;
        repr.emit(&mut Icmpv4Packet::new_unchecked(buf), &caps);
        Ok(Message::new(OK))
    }

    fn pong(&mut self, i: usize, max: u64) -> Result<Message, Error> {
        let max = (max as usize).min(BUFFER_BYTES);
        let h = self.sock(i).handle.expect("ICMP sockets are made with OPEN");
        let sock = self.table[i].as_mut().expect("checked slot");
        let s = self.sockets.get_mut::<icmp::Socket>(h);
        let caps = smoltcp::phy::ChecksumCapabilities::default();
        while let Ok((data, from)) = s.recv() {
            let Ok(packet) = Icmpv4Packet::new_checked(data) else {
                continue;
            };
            let Ok(Icmpv4Repr::EchoReply { ident, seq_no, data }) = Icmpv4Repr::parse(&packet, &caps) else {
                continue;
            };
            if ident != sock.ident {
                continue;
            }
            let n = data.len().min(max);
            sock.buffer.as_mut_slice()[..n].copy_from_slice(&data[..n]);
            return Ok(Message::with_words(OK, &[n as u64, ip_word(v4(from)), seq_no as u64]));
        }
        Err(Error::WouldBlock)
    }

    fn query(&mut self, i: usize, msg: &Message) -> Result<Message, Error> {
        if self.sock(i).query.is_some() {
            return Err(Error::InvalidState);
        }
        let mut text = [0u8; (userlib::abi::BUFFER_WORDS - 1) * 8];
        let name = unpack_text(msg, &mut text);
        if name.is_empty() || name.len() > 253 {
            return Err(Error::InvalidArgument);
        }
        let cx = self.iface.context();
        let q = self
            .sockets
            .get_mut::<dns::Socket>(self.dns)
            .start_query(cx, name, smoltcp::wire::DnsQueryType::A)
            .map_err(|e| match e {
                dns::StartQueryError::NoFreeSlot => Error::WouldBlock,
                dns::StartQueryError::InvalidName | dns::StartQueryError::NameTooLong => Error::InvalidArgument,
            })?;
        self.sock(i).query = Some(q);
        Ok(Message::new(OK))
    }

    fn result(&mut self, i: usize) -> Result<Message, Error> {
        let q = self.sock(i).query.ok_or(Error::InvalidState)?;
        let r = self.sockets.get_mut::<dns::Socket>(self.dns).get_query_result(q);
        match r {
            Err(dns::GetQueryResultError::Pending) => Err(Error::WouldBlock),
            Err(dns::GetQueryResultError::Failed) => {
                self.sock(i).query = None;
                Err(Error::TimedOut)
            }
            Ok(addrs) => {
                self.sock(i).query = None;
                let mut m = Message::with_words(OK, &[addrs.len() as u64]);
                for a in addrs {
                    m.push(ip_word(v4(a)));
                }
                Ok(m)
            }
        }
    }
}
