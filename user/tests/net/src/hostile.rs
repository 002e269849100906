//! test-net-hostile: a hostile client of the network stack (`servers/net`,
//! protocol in `userlib::services::net`), on a machine with a virtio-net
//! card on QEMU user networking.
//!
//! 1. The service endpoint: unknown labels, `OPEN` without a notification,
//!    with an unknown kind, with an endpoint where the notification goes.
//! 2. Socket endpoints: calls a socket's kind does not have, ports 0 and
//!    past 65535, addresses past 32 bits, lengths past the shared buffer,
//!    `RECV`/`ACCEPT` in the wrong state, a DNS query whose text length
//!    lies, and calls on a socket after `CLOSE`.
//! 3. The per-client limit: `MAX_PER_CLIENT` sockets open, the next is
//!    `OutOfMemory`, and closing one makes room.
//! 4. The service capability has no `GRANT`: a child cannot be given it
//!    (and so cannot spend this task's socket limit).
//! 5. A UDP socket's receive ring with lying indices (with `fwd=PORT`:
//!    QEMU forwards the host's UDP port PORT to this machine's port
//!    [`RING_PORT`], so a datagram sent to 10.0.2.2:PORT comes back): a
//!    `TAIL` ahead of the stack's head stops delivery and the stack keeps
//!    the datagrams; garbage over the whole ring and its `HEAD`, then a
//!    sane `TAIL`, gets them all, intact; a `TAIL` that claims everything
//!    was read, or is not a multiple of 8, only lets the stack overwrite
//!    this socket's own ring. Then `UdpSocket` receives through its ring.
//! 6. Clients that went away: the per-client limit's sockets opened, then
//!    their notifications revoked (the stack's copies go, as when a
//!    client dies with its pool); the stack finds them gone (its liveness
//!    check of quiet sockets, at most every 100 ms, also when no frame
//!    comes) and closes them, so a new socket opens within 3 s.
//!
//! Each gets a clear error; afterwards the stack still answers and pings
//! the host through the card (`net` never faults: the case forbids it).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use userlib::abi::boot_info::StartInfo;
use userlib::abi::ObjectType;
use userlib::ipc::{Message, Timeout};
use userlib::loader::{self, Spawn, SpawnError};
use userlib::names::supervisor;
use userlib::net::{self, Ipv4Addr, Pinger};
use userlib::proto::check_reply;
use userlib::services::net::{self as p, Kind, State};
use userlib::{log, names, process, syscall, Error, Handle, Rights};

userlib::entry!(main, heap = 256 * 1024);

/// The driver whose card the stack uses.
const DRIVER: &str = "virtio-net";
/// Sockets one client may hold (`servers/net`'s `MAX_PER_CLIENT`).
const PER_CLIENT: usize = 12;

fn main(_start: &StartInfo) {
    if !supervisor::tasks()
        .expect("supervisor::tasks")
        .iter()
        .any(|t| t.name == DRIVER)
    {
        log::info!("no {DRIVER} task (no network card on this machine): nothing to test");
        return;
    }
    let svc = names::connect(p::NAME, Timeout::millis(5000)).expect("connect to net");
    let info = net::wait_configured(Timeout::millis(20_000)).expect("an address from DHCP");
    assert_eq!(info.state, State::Dhcp, "{info:?}");

    service_garbage(svc);
    log::info!("service endpoint: ok");
    socket_garbage(svc);
    log::info!("socket endpoints: ok");
    per_client_limit(svc);
    log::info!("per-client limit: ok");
    service_cap_stays_put(svc);
    log::info!("service capability stays put: ok");
    gone_clients(svc);
    match process()
        .args()
        .split_whitespace()
        .find_map(|w| w.strip_prefix("fwd="))
        .and_then(|p| p.parse::<u16>().ok())
    {
        Some(fwd) => {
            hostile_ring(svc, fwd);
            log::info!("receive ring: ok");
        }
        None => log::info!("no fwd= port: receive ring not tested"),
    }

    // The stack still serves, and its card still works.
    let after = net::info().expect("info after the abuse");
    assert_eq!(after.state, State::Dhcp, "{after:?}");
    let mut pinger = Pinger::new(7).expect("a pinger");
    let rtt = pinger
        .ping(Ipv4Addr::new(10, 0, 2, 2), 1, b"still here", Timeout::millis(5000))
        .expect("ping the host after the abuse");
    log::info!("still serving: ping 10.0.2.2 in {rtt} us");
}

fn call(ep: Handle, msg: &Message) -> Result<Message, Error> {
    check_reply(syscall::call(ep, msg)?.0)
}

#[track_caller]
fn expect_err<T: core::fmt::Debug>(what: &str, r: Result<T, Error>, want: Error) {
    match r {
        Err(e) if e == want => {}
        other => panic!("{what}: {other:?}, expected {want:?}"),
    }
}

fn notification() -> Handle {
    syscall::create(process().pool, ObjectType::Notification, 0).expect("notification")
}

/// A raw socket: its endpoint and buffer capabilities (unmapped: the
/// stack's side is what is under test).
struct Raw {
    ep: Handle,
    mem: Handle,
    notify: Handle,
}

fn open(svc: Handle, kind: u64) -> Result<Raw, Error> {
    let notify = notification();
    let mut m = Message::with_words(p::OPEN, &[kind]).accepting_caps(2);
    m.push_cap(notify, Rights::SEND | Rights::GRANT);
    match call(svc, &m) {
        Ok(r) => {
            let caps = r.caps();
            assert_eq!(caps.len(), 2, "OPEN's reply carries the endpoint and the buffer");
            Ok(Raw {
                ep: caps[0].handle,
                mem: caps[1].handle,
                notify,
            })
        }
        Err(e) => {
            let _ = syscall::cap_delete(notify);
            Err(e)
        }
    }
}

fn close(s: Raw) {
    call(s.ep, &Message::new(p::CLOSE)).expect("CLOSE");
    for h in [s.ep, s.mem, s.notify] {
        let _ = syscall::cap_delete(h);
    }
}

fn service_garbage(svc: Handle) {
    expect_err("label 0", call(svc, &Message::new(0)), Error::InvalidArgument);
    expect_err("label 999", call(svc, &Message::new(999)), Error::InvalidArgument);
    expect_err(
        "OPEN without a notification",
        call(svc, &Message::with_words(p::OPEN, &[Kind::Udp as u64])),
        Error::InvalidArgument,
    );
    for kind in [0, 5, u64::MAX] {
        expect_err(
            "OPEN of an unknown kind",
            open(svc, kind).map(|_| ()),
            Error::InvalidArgument,
        );
    }
    // An endpoint where the notification goes: the stack would signal it.
    let ep = syscall::create(process().pool, ObjectType::Endpoint, 0).expect("endpoint");
    let mut m = Message::with_words(p::OPEN, &[Kind::Udp as u64]);
    m.push_cap(ep, Rights::SEND | Rights::GRANT);
    expect_err(
        "OPEN with an endpoint for a notification",
        call(svc, &m),
        Error::WrongType,
    );
    // Two notifications: one too many.
    let (a, b) = (notification(), notification());
    let mut m = Message::with_words(p::OPEN, &[Kind::Udp as u64]);
    m.push_cap(a, Rights::SEND | Rights::GRANT);
    m.push_cap(b, Rights::SEND | Rights::GRANT);
    expect_err("OPEN with two notifications", call(svc, &m), Error::InvalidArgument);
    for h in [ep, a, b] {
        syscall::cap_delete(h).expect("delete");
    }
}

fn socket_garbage(svc: Handle) {
    let big = p::BUFFER_BYTES as u64 + 1;
    let host = p::ip_word(Ipv4Addr::new(10, 0, 2, 2));

    let udp = open(svc, Kind::Udp as u64).expect("open UDP");
    let u = |label, words: &[u64]| call(udp.ep, &Message::with_words(label, words));
    expect_err("LISTEN on UDP", u(p::LISTEN, &[80]), Error::NotSupported);
    expect_err("ACCEPT on UDP", u(p::ACCEPT, &[]), Error::NotSupported);
    expect_err("label 999 on a socket", u(999, &[]), Error::NotSupported);
    expect_err("BIND port 0", u(p::BIND, &[0]), Error::InvalidArgument);
    expect_err("BIND port 65536", u(p::BIND, &[65_536]), Error::InvalidArgument);
    u(p::BIND, &[4000]).expect("BIND 4000");
    expect_err("a second BIND", u(p::BIND, &[4001]), Error::InvalidState);
    expect_err(
        "SEND_TO past the buffer",
        u(p::SEND_TO, &[host, 9, big]),
        Error::InvalidArgument,
    );
    expect_err(
        "SEND_TO a 33-bit address",
        u(p::SEND_TO, &[1 << 32, 9, 4]),
        Error::InvalidArgument,
    );
    expect_err("SEND_TO port 0", u(p::SEND_TO, &[host, 0, 4]), Error::InvalidArgument);
    // A receive with nothing there does not block the stack.
    expect_err(
        "RECV_FROM with nothing queued",
        u(p::RECV_FROM, &[16]),
        Error::WouldBlock,
    );
    close(udp);

    let tcp = open(svc, Kind::Tcp as u64).expect("open TCP");
    let t = |label, words: &[u64]| call(tcp.ep, &Message::with_words(label, words));
    expect_err("RECV before CONNECT", t(p::RECV, &[16]), Error::InvalidState);
    expect_err("SEND before CONNECT", t(p::SEND, &[16]), Error::InvalidState);
    expect_err("ACCEPT without LISTEN", t(p::ACCEPT, &[]), Error::InvalidState);
    expect_err("BIND on TCP", t(p::BIND, &[80]), Error::NotSupported);
    expect_err("CONNECT to port 0", t(p::CONNECT, &[host, 0]), Error::InvalidArgument);
    expect_err(
        "CONNECT to a 33-bit address",
        t(p::CONNECT, &[1 << 40, 80]),
        Error::InvalidArgument,
    );
    // The endpoint after CLOSE (the stack revoked it).
    call(tcp.ep, &Message::new(p::CLOSE)).expect("CLOSE");
    match call(tcp.ep, &Message::new(p::STATUS)) {
        Err(Error::BadHandle | Error::PeerDied | Error::NoRights) => {}
        other => panic!("STATUS on a closed socket: {other:?}"),
    }
    for h in [tcp.ep, tcp.mem, tcp.notify] {
        let _ = syscall::cap_delete(h);
    }

    // Queries whose text is not a name: a length that says more than the
    // message holds (over bytes that are not UTF-8), and no text at all.
    // (No query may leave: QEMU's DNS would ask the host's resolver.)
    let dns = open(svc, Kind::Dns as u64).expect("open DNS");
    let lying = Message::with_words(p::QUERY, &[1 << 20, u64::MAX, u64::MAX]);
    expect_err(
        "QUERY with a lying length",
        call(dns.ep, &lying),
        Error::InvalidArgument,
    );
    let empty = Message::with_words(p::QUERY, &[]);
    expect_err("QUERY without a name", call(dns.ep, &empty), Error::InvalidArgument);
    expect_err(
        "RESULT without a query",
        call(dns.ep, &Message::new(p::RESULT)),
        Error::InvalidState,
    );
    close(dns);
}

fn per_client_limit(svc: Handle) {
    let mut held: Vec<Raw> = (0..PER_CLIENT)
        .map(|i| open(svc, Kind::Udp as u64).unwrap_or_else(|e| panic!("socket {i}: {e}")))
        .collect();
    expect_err(
        "one socket past the per-client limit",
        open(svc, Kind::Udp as u64).map(|_| ()),
        Error::OutOfMemory,
    );
    close(held.pop().expect("one"));
    held.push(open(svc, Kind::Udp as u64).expect("room again after a CLOSE"));
    for s in held {
        close(s);
    }
}

/// Sockets whose client went away are closed by the stack, also on a
/// quiet network: [`PER_CLIENT`] sockets open, their notifications revoked
/// (the stack's copies are derived from them), then a new one opens once
/// the stack has noticed (every `OPEN` that fails is a poll, and the poll
/// thread wakes at least once a second).
fn gone_clients(svc: Handle) {
    let held: Vec<Raw> = (0..PER_CLIENT)
        .map(|i| open(svc, Kind::Udp as u64).unwrap_or_else(|e| panic!("socket {i}: {e}")))
        .collect();
    for s in &held {
        syscall::cap_revoke(s.notify).expect("revoke the notification's copies");
    }
    let start = syscall::now_us();
    let fresh = loop {
        match open(svc, Kind::Udp as u64) {
            Ok(s) => break s,
            Err(Error::OutOfMemory) if syscall::now_us() - start < 3_000_000 => syscall::sleep_ms(20),
            Err(e) => panic!("a socket after its client's others went away: {e}"),
        }
    };
    let waited = (syscall::now_us() - start) / 1000;
    // The gone sockets' endpoints were revoked with them.
    for s in held {
        expect_err(
            "a socket closed because its client went away",
            call(s.ep, &Message::new(p::CLOSE)),
            Error::BadHandle,
        );
        for h in [s.ep, s.mem, s.notify] {
            let _ = syscall::cap_delete(h);
        }
    }
    close(fresh);
    log::info!("gone clients' sockets closed: ok (a new socket after {waited} ms)");
}

/// A client's capability to the stack carries no `GRANT`: it cannot hand
/// its sockets' owner (the badge the stack counts sockets by) to a task it
/// starts, so a child cannot spend its parent's socket limit.
fn service_cap_stays_put(svc: Handle) {
    let me = process();
    let info = syscall::cap_info(svc).expect("cap_info(net)");
    assert!(!info.rights.contains(Rights::GRANT), "{info:?}");
    match loader::spawn(&Spawn {
        args: "never",
        pool_bytes: 1 << 20,
        console: false,
        extra: &[(svc, Rights::SEND)],
        ..Spawn::new(me.name(), loader::find_program(me.name()).expect("find myself"))
    }) {
        Err(SpawnError::Kernel(_, Error::NoRights)) => {}
        Err(e) => panic!("handing on the net capability: {e:?}, expected NoRights"),
        Ok(child) => {
            let _ = child.destroy();
            panic!("a child was given this task's net capability");
        }
    }
}

/// The guest port QEMU forwards `fwd=PORT` to.
const RING_PORT: u16 = 4001;

/// Sends `n` datagrams `ring <i>` padded to `len` bytes to 10.0.2.2:`fwd`
/// (they come back to [`RING_PORT`]) and waits until the stack has had
/// them for a while.
fn loop_back(out: &mut net::UdpSocket, fwd: u16, n: usize, len: usize) {
    for i in 0..n {
        let mut d = alloc::vec![b'.'; len];
        let tag = alloc::format!("ring {i}");
        d[..tag.len()].copy_from_slice(tag.as_bytes());
        out.send_to(&d, net::SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 2), fwd))
            .expect("send to the forwarded port");
    }
    syscall::sleep_ms(500);
}

fn hostile_ring(svc: Handle, fwd: u16) {
    use core::sync::atomic::Ordering::SeqCst;
    use userlib::services::net::ring;
    let raw = open(svc, Kind::Udp as u64).expect("open UDP");
    let u = |label, words: &[u64]| call(raw.ep, &Message::with_words(label, words));
    u(p::BIND, &[RING_PORT as u64]).expect("BIND");
    u(p::RING, &[]).expect("RING");
    let mut mem = userlib::vspace::Mapping::map(
        raw.mem,
        (p::BUFFER_BYTES / userlib::abi::PAGE_SIZE) as u64,
        Rights::READ | Rights::WRITE,
    )
    .expect("map the socket's buffer");
    let mut out = net::UdpSocket::bind(0).expect("a sending socket");
    let word = |m: &userlib::vspace::Mapping, at| m.atomic_u64(at).load(SeqCst);

    // A TAIL ahead of the head: nothing delivered, the stack keeps them.
    mem.atomic_u64(ring::TAIL).store(8, SeqCst);
    loop_back(&mut out, fwd, 3, 40);
    u(p::RECV_FROM, &[0]).expect("RECV_FROM in ring mode");
    assert_eq!(word(&mem, ring::HEAD), 0, "delivered past a TAIL ahead of the head");
    assert_eq!(word(&mem, ring::MORE), 1, "the stack says it holds datagrams");

    // Garbage over the ring and its HEAD, then a sane TAIL: all three,
    // intact (the stack writes from its own head).
    mem.as_mut_slice()[ring::HEAD..].fill(0xa5);
    mem.atomic_u64(ring::TAIL).store(0, SeqCst);
    u(p::RECV_FROM, &[0]).expect("RECV_FROM in ring mode");
    let head = word(&mem, ring::HEAD);
    let mut tail = 0;
    let mut buf = [0u8; 64];
    for i in 0..3 {
        let (n, addr, _port, t) = ring::take(&mem.as_slice()[ring::DATA..], head, tail, &mut buf)
            .expect("a well-formed ring")
            .unwrap_or_else(|| panic!("datagram {i} missing (head {head})"));
        let tag = alloc::format!("ring {i}");
        assert_eq!((n, &buf[..tag.len()]), (40, tag.as_bytes()), "datagram {i}");
        assert_ne!(addr, 0, "datagram {i}'s sender");
        tail = t;
    }
    assert_eq!(word(&mem, ring::MORE), 0);

    // A TAIL that says everything was read (the stack then writes over
    // what was not), and one that is no record's start: the stack writes
    // only into this ring, and serves on.
    mem.atomic_u64(ring::TAIL).store(head + 1_000_000, SeqCst);
    loop_back(&mut out, fwd, 2, 1000);
    mem.atomic_u64(ring::TAIL).store(head, SeqCst);
    loop_back(&mut out, fwd, 12, 1400);
    mem.atomic_u64(ring::TAIL)
        .store(word(&mem, ring::HEAD).wrapping_sub(3), SeqCst);
    loop_back(&mut out, fwd, 2, 100);
    u(p::RECV_FROM, &[0]).expect("RECV_FROM after lying TAILs");
    drop(mem);
    close(raw);

    // The client's own ring: a datagram comes back through it.
    let mut sock = net::UdpSocket::bind(RING_PORT).expect("bind the forwarded port");
    sock.set_timeout(Timeout::millis(5000));
    loop_back(&mut out, fwd, 1, 300);
    let mut got = [0u8; 512];
    let (n, from) = sock.recv_from(&mut got).expect("a datagram through the ring");
    assert_eq!((n, &got[..6]), (300, &b"ring 0"[..]), "from {from}");
}
