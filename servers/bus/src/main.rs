//! bus: the soft bus task. It moves packets between the UDP socket on the
//! bus port and [`bus::node::Node`] (which holds all the logic, tested on
//! the host), and answers the `bus` service (`userlib::services::bus`):
//! the paired devices nearby, this device's own status, and proxies for
//! remote services.
//!
//! Four threads:
//! - the packet loop: receives on the bus port, feeds the node, sends what
//!   it answers, and wakes the two threads below when a remote call or
//!   reply came;
//! - the `bus` service (`DEVICE`, `STATUS`, `CONNECT`, and pairing by
//!   code: `PAIR`, `JOIN`, `PAIRING`, `PAIRINGS`, `FORGET`);
//! - the proxy: serves the endpoint that `CONNECT` hands out, badged per
//!   route (a device's shared service, or an endpoint a device handed
//!   out), and carries each call to the device ([`bus::node::Node::call`],
//!   sent again every [`RESEND_US`]) until its reply comes, the device
//!   leaves (`PeerDied`) or [`names::REMOTE_REPLY_TIMEOUT_US`] passes
//!   (`TimedOut`). One call at a time;
//! - the worker: carries out the calls other devices make here, on the
//!   local service (looked up under the bus's own routes) or on an
//!   endpoint handed out earlier, and sends the reply. Each device calls a
//!   local service through a connection of its own (the bus's client for
//!   it, `names::lookup_client`: the service tells devices apart as it
//!   tells tasks apart), ended with `BYE` when the device leaves, so the
//!   service forgets what it held for it (the compositor: its surfaces)
//!   as when a local client dies (`BYE` is sent without waiting: a
//!   service not receiving just then is told again on the worker's next
//!   turn, at most [`BYE_RETRY_MS`] on, so the other devices' calls
//!   never wait behind it). Endpoints in a reply are kept,
//!   numbered, for that device (at most [`MAX_EXPORTED`]), and dropped
//!   when the device leaves or the endpoint dies.
//!
//! Calls and replies leave from a second UDP socket (an ephemeral port),
//! so that sending never waits for the packet loop's receive.
//!
//! Memory objects travel by value ([`bus::node`]): the proxy copies the
//! one memory object a call may carry (at most [`bus::wire::MAX_OBJECT`]
//! bytes, else `OutOfMemory`; any other capability in a call is refused,
//! `NotSupported`) and the worker hands the callee a fresh object of the
//! same size holding the copy, read-only (`READ | MAP`: writes to it would
//! reach no one, so a server that wants shared memory, like the file
//! server's `ATTACH`, refuses it), revoked once the call returns. A reply's
//! memory object is copied the same way, and the caller gets a fresh,
//! writable object of its own.
//!
//! Arguments (from the profile): `name=DEVICE profile=PROFILE`. From the
//! boot archive (the task has `archive = true`): the profile (`shared`)
//! and the group file [`GROUP_ENTRY`] (`cargo xtask run --group FILE`);
//! without a group file the bus pairs by code only, and says so. The
//! random seed comes from the `rng` service. On a device whose profile
//! routes the bus to `fs` and whose file server grants it `/data`
//! read-write, the static key and the pairings by code are kept in
//! [`bus::store::PATH`] (read at start, written again when they change);
//! elsewhere they are kept in memory only (they end when the bus
//! restarts), and `bus` says so.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

extern crate alloc;

/// The group file's name in the boot archive.
pub const GROUP_ENTRY: &str = "bus.group";
/// How often a remote call is sent again while its reply has not come.
pub const RESEND_US: u64 = 500_000;
/// How often the packet loop runs the node's timers ([`bus::node::Node::tick`])
/// while datagrams keep coming (else at each 100 ms wait that ends empty).
pub const TICK_US: u64 = 5_000;
/// Endpoints one device may hold through this device's bus.
pub const MAX_EXPORTED: usize = 64;
/// How long the worker waits for a local service's reply.
pub const LOCAL_TIMEOUT_MS: u64 = 3000;
/// How soon the worker tries again to give a service a leaving device's
/// `BYE` that it was not receiving for (the worker wakes sooner when a
/// call comes).
pub const BYE_RETRY_MS: u64 = 100;

#[cfg(not(test))]
mod serve {
    #![forbid(unsafe_code)]

    use super::{BYE_RETRY_MS, GROUP_ENTRY, LOCAL_TIMEOUT_MS, MAX_EXPORTED, RESEND_US, TICK_US};
    use alloc::boxed::Box;
    use alloc::collections::BTreeMap;
    use alloc::string::String;
    use alloc::vec::Vec;
    use bus::keys::GroupKey;
    use bus::node::{refusal, CallError, Event, Failure, Incoming, Node, Out, PairState, RemoteReply};
    use bus::store::{self, Stored};
    use bus::wire::{Announcement, Target, HEADER, MAX_OBJECT, MAX_PACKET, PORT};
    use userlib::abi::boot_info::StartInfo;
    use userlib::abi::{ObjectType, BUFFER_CAPS};
    use userlib::fs::Namespace;
    use userlib::ipc::Timeout;
    use userlib::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
    use userlib::proto::{pack_record, reply_error};
    use userlib::server::{serve, Action};
    use userlib::services::bus as proto;
    use userlib::services::fs::{FsError, WRITE_RIGHT};
    use userlib::services::net::ip_word;
    use userlib::sync::Mutex;
    use userlib::vspace::{pages_for, with_scratch};
    use userlib::{log, names, process, syscall, thread, Error, Handle, Message, Rights};

    fn arg(key: &str) -> Option<&'static str> {
        process()
            .args()
            .split_whitespace()
            .find_map(|w| w.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
    }

    /// An entry of the boot archive.
    fn archive_file(name: &str) -> Option<&'static [u8]> {
        let a = userlib::loader::archive()?;
        userlib::cpio::Archive::new(a).find(name).ok().flatten().map(|e| e.data)
    }

    /// The services the profile shares.
    fn shared() -> Vec<String> {
        archive_file("profile")
            .and_then(|d| profile::decode(d).ok())
            .map(|p| p.shared)
            .unwrap_or_default()
    }

    /// Where a proxy endpoint's calls go.
    #[derive(Clone, PartialEq, Eq)]
    enum Route {
        /// A shared service of the device of this name (whichever session
        /// it has now: the route outlives the device's absences).
        Service { device: String, service: String },
        /// Endpoint `number` that device `peer` handed out (it dies with
        /// that device's session).
        Handle { peer: u64, number: u32 },
    }

    struct Proxy {
        route: Route,
        /// The badged endpoint minted for the route (clients hold copies).
        minted: Handle,
        dead: bool,
    }

    /// An endpoint handed out to a device.
    struct Exported {
        peer: u64,
        number: u32,
        ep: Handle,
    }

    struct State {
        me: Announcement,
        node: Option<Node>,
        /// The proxy endpoint (the proxy thread receives on it).
        proxy_ep: Handle,
        /// Proxies by badge.
        proxies: BTreeMap<u64, Proxy>,
        next_badge: u64,
        exported: Vec<Exported>,
        next_number: u32,
        /// Woken when a reply came or a device left (the proxy waits on it).
        replies: Handle,
        /// Woken when a remote call came (the worker waits on it).
        calls: Handle,
        /// The socket calls and replies leave from.
        out: Option<UdpSocket>,
        /// Where the pairings are kept.
        storage: proto::Storage,
    }

    /// The file server, for [`store::PATH`] (`None`: no storage). Apart
    /// from [`State`]: a write does not hold the node's lock.
    static FILES: Mutex<Option<Namespace>> = Mutex::new(None);

    /// Reads the kept static key and pairings, if this device has storage
    /// for them: a `/data` this task may write. A file that is refused
    /// (torn, changed, another version) is logged and left as it is,
    /// until the next write replaces it; the bus starts without it.
    fn load(state: &Mutex<State>) {
        if state.lock().node.is_none() {
            // No random seed: no pairing at all, nothing to restore into
            // (and nothing to wait on the file server for).
            state.lock().storage = proto::Storage::Memory;
            return;
        }
        let mut fs = Namespace::new();
        let writable = fs
            .mounts()
            .is_ok_and(|m| m.iter().any(|(n, r)| n == "data" && r & WRITE_RIGHT != 0));
        if !writable {
            log::info!("no /data to write here: pairings by code are kept in memory only");
            state.lock().storage = proto::Storage::Memory;
            return;
        }
        match fs.read(store::PATH).or_else(|e| match e {
            // A cut between the rename's removal of the old file and its
            // new entry (docs/BUS.md): the written file is whole.
            FsError::NotFound => fs.read(store::TMP),
            e => Err(e),
        }) {
            Ok(bytes) => match Stored::decode(&bytes) {
                Ok(kept) => {
                    log::info!("{} pairing(s) by code read from {}", kept.pairings.len(), store::PATH);
                    with_node(state, |n| n.restore(&kept));
                }
                Err(e) => log::warn!("{} refused ({e}): starting with no pairing by code", store::PATH),
            },
            Err(FsError::NotFound) => {}
            Err(e) => {
                // Not written this time: a write would replace the kept
                // pairings with this start's (none) and its new static key.
                log::warn!(
                    "{}: {e}: pairings by code are kept in memory only until the bus restarts (the file is left as it is)",
                    store::PATH
                );
                state.lock().storage = proto::Storage::Unreadable;
                return;
            }
        }
        *FILES.lock() = Some(fs);
        state.lock().storage = proto::Storage::Data;
    }

    /// Writes the node's static key and pairings to [`store::PATH`]: into
    /// [`store::TMP`], synced, then renamed over it (docs/BUS.md says what
    /// a power cut can leave). Whether they are on storage now.
    fn save(state: &Mutex<State>) -> Result<bool, FsError> {
        let mut files = FILES.lock();
        let Some(fs) = files.as_mut() else {
            return Ok(false);
        };
        let Some((bytes, names)) = state.lock().node.as_ref().map(|n| {
            // A device whose name is not known yet, by its key.
            let names: Vec<String> = n
                .pairings()
                .map(|(m, key, _)| if m.is_empty() { proto::show_key(key) } else { m.into() })
                .collect();
            let names = if names.is_empty() {
                String::from("none")
            } else {
                names.join(", ")
            };
            (n.stored().encode(), names)
        }) else {
            return Ok(false);
        };
        match fs.create_dir(store::DIR) {
            Ok(()) | Err(FsError::Exists) => {}
            Err(e) => return Err(e),
        }
        let mut f = fs.open(
            store::TMP,
            &userlib::fs::OpenOptions::new().write(true).create(true).truncate(true),
        )?;
        f.write_all_at(0, &bytes)?;
        f.sync_all()?;
        drop(f);
        fs.rename(store::TMP, store::PATH)?;
        fs.sync(store::PATH)?;
        log::info!("pairings by code written to {} ({names})", store::PATH);
        Ok(true)
    }

    /// [`save`], logged.
    fn save_logged(state: &Mutex<State>) -> Result<bool, FsError> {
        let r = save(state);
        if let Err(e) = r {
            log::warn!("writing {}: {e} (the pairings are kept in memory)", store::PATH);
        }
        r
    }

    pub fn main(_start: &StartInfo) {
        // A remote call makes and drops dozens of small `Vec`s, and no heap
        // buffer of the bus goes to a device (`userlib::heap`).
        if !userlib::heap::keep_small_blocks() {
            log::warn!("heap: the small-block cache is off (something was allocated before main)");
        }
        let me = Announcement {
            name: String::from(arg("name").unwrap_or("device")),
            profile: String::from(arg("profile").unwrap_or("unknown")),
            shared: shared(),
        };
        let key = archive_file(GROUP_ENTRY).and_then(GroupKey::from_file);
        let mut seed = [0u8; 32];
        let seeded = userlib::services::rng::fill(&mut userlib::services::rng::connection(), &mut seed);
        if key.is_none() {
            log::warn!("no group key in the boot archive (cargo xtask run --group FILE): pairing by code only");
        }
        let node = match seeded {
            Ok(()) => {
                bus::rng::seed(seed);
                Some(Node::new(bus::rng::u64(), me.clone(), key))
            }
            Err(e) => {
                log::warn!("no random numbers from the rng service ({e}): pairing with no one");
                None
            }
        };
        let pool = process().pool;
        let object = |ty| syscall::create(pool, ty, 0).expect("bus objects");
        let state: &'static Mutex<State> = Box::leak(Box::new(Mutex::new(State {
            me,
            node,
            proxy_ep: object(ObjectType::Endpoint),
            proxies: BTreeMap::new(),
            next_badge: 1,
            exported: Vec::new(),
            next_number: 1,
            replies: object(ObjectType::Notification),
            calls: object(ObjectType::Notification),
            out: None,
            storage: proto::Storage::Reading,
        })));
        // The service answers at once (`STATUS` says `Reading` until the
        // file is read): the file server may itself wait for its disk,
        // and init starts the next programs only once the bus registered.
        let ep = object(ObjectType::Endpoint);
        names::register(proto::NAME, ep).unwrap_or_else(|e| panic!("register {}: {e}", proto::NAME));
        let _requests = thread::Builder::default()
            .stack_pages(16)
            .spawn(move || serve_requests(state, ep))
            .expect("request thread");
        // Before any thread talks to another device: the static key read
        // back replaces the one made at start.
        load(state);
        if state.lock().node.is_some() {
            let _proxy = thread::Builder::default()
                .stack_pages(16)
                .spawn(move || proxy(state))
                .expect("proxy thread");
            let _worker = thread::Builder::default()
                .stack_pages(16)
                .spawn(move || worker(state))
                .expect("worker thread");
            run(state);
        }
        // Without a seed: only the service.
        loop {
            syscall::sleep_ms(60_000);
        }
    }

    /// The packet loop: announce, listen, answer.
    fn run(state: &'static Mutex<State>) {
        // A device may have no network card, or get one later: ask once a
        // second (not in a tight loop) until the interface has an address.
        let info = loop {
            match userlib::net::wait_configured(Timeout::NonBlocking) {
                Ok(i) => break i,
                Err(Error::TimedOut) => syscall::sleep_ms(1000),
                Err(e) => {
                    log::warn!("the network is not there ({e}): pairing with no one");
                    return;
                }
            }
        };
        let mut sock = loop {
            match UdpSocket::bind(PORT) {
                Ok(s) => break s,
                Err(e) => {
                    log::warn!("bind UDP port {PORT}: {e}; retrying");
                    syscall::sleep_ms(1000);
                }
            }
        };
        sock.set_timeout(Timeout::millis(100));
        match UdpSocket::bind(0) {
            Ok(s) => state.lock().out = Some(s),
            Err(e) => log::warn!("no socket for remote calls ({e}): serving none"),
        }
        {
            let s = state.lock();
            let shared = if s.me.shared.is_empty() {
                String::from("nothing")
            } else {
                s.me.shared.join(", ")
            };
            log::info!(
                "{} ({}) on the bus at {}:{PORT}, sharing {shared}",
                s.me.name,
                s.me.profile,
                info.address
            );
        }
        let mut raw = Datagram([0; ALIGN_BODY + MAX_PACKET]);
        let buf = &mut raw.0[ALIGN_BODY..];
        // The clock read for the last datagram, which the next tick uses
        // (one reading a packet, not two; it is microseconds old).
        let mut received_at = None;
        let mut ticked = 0;
        loop {
            let now = received_at.take().unwrap_or_else(syscall::now_us);
            // The node's timers (the shortest is `REPULL_US`, 50 ms) are
            // looked at once every `TICK_US`, not after every datagram.
            if now.saturating_sub(ticked) >= TICK_US {
                ticked = now;
                let out = with_node(state, |n| n.tick(now));
                take_events(state);
                send(&mut sock, out);
            }
            // Waits for the stack's signal (at most 100 ms, for the node's
            // timers) and only then asks for a datagram: no `RECV_FROM`
            // that finds nothing after each packet.
            let got = if sock.wait_ready(Timeout::millis(100)) {
                sock.try_recv_from(buf)
            } else {
                Err(Error::TimedOut)
            };
            match got {
                Ok((n, from)) => {
                    let now = syscall::now_us();
                    received_at = Some(now);
                    let (out, reply, call) = with_node(state, |node| {
                        let out = node.receive_owing(from, &mut buf[..n], now);
                        (out, node.has_replies(), node.has_calls())
                    });
                    send(&mut sock, out);
                    // The fragments a pull asked for: each sent as soon as
                    // it is sealed (the other device opens it meanwhile),
                    // the state unlocked between them.
                    while let Some(o) = with_node(state, |n| n.next_fragment()) {
                        send(&mut sock, Some(o));
                    }
                    // Wake the thread that has something to take (not
                    // both on every packet: announcements wake neither).
                    let s = state.lock();
                    if reply {
                        let _ = syscall::signal(s.replies, 1);
                    }
                    if call {
                        let _ = syscall::signal(s.calls, 1);
                    }
                }
                Err(Error::TimedOut | Error::WouldBlock) => {}
                Err(e) => {
                    log::warn!("receive: {e}");
                    syscall::sleep_ms(100);
                }
            }
            take_events(state);
        }
    }

    /// Bytes before a received datagram in [`Datagram`], so that a data
    /// message's body (after its header) starts 16-byte aligned: it is
    /// opened where it lies, and ChaCha20's block copies are slower out of
    /// step (docs/BUS.md, *The transport crypto's cost*).
    const ALIGN_BODY: usize = (16 - HEADER % 16) % 16;

    /// The packet loop's receive buffer.
    #[repr(C, align(16))]
    struct Datagram([u8; ALIGN_BODY + MAX_PACKET]);

    /// Logs and acts on what the node's last tick or packet changed. Called
    /// right after each, so that a device's leaving is logged as soon as a
    /// listing can show it (a packet loop waiting for a datagram that does
    /// not come would otherwise log it up to 100 ms later).
    fn take_events(state: &Mutex<State>) {
        // One lock for both (this runs twice a turn of the packet loop).
        let (changed, events) = with_node(state, |n| (n.take_pairings_changed(), n.take_events()));
        if changed {
            // Rare (a pairing made, a paired device's name learnt): the
            // packet loop waits for the file server meanwhile.
            let _ = save_logged(state);
        }
        for e in events {
            match e {
                Event::Paired { name, addr } => log::info!("paired with {name} at {}", addr.ip()),
                Event::PairedByCode { peer } => log::info!("paired by code with device {peer:016x}"),
                Event::PairFailed(f) => log::info!("pairing by code failed: {f:?}"),
                Event::Left { name } => {
                    log::info!("{name} left");
                    forget_exports(state);
                    // The proxy fails its call; the worker ends the
                    // device's connections.
                    let s = state.lock();
                    let _ = syscall::signal(s.replies, 1);
                    let _ = syscall::signal(s.calls, 1);
                }
            }
        }
    }

    fn with_node<R: Default>(state: &Mutex<State>, f: impl FnOnce(&mut Node) -> R) -> R {
        state.lock().node.as_mut().map(f).unwrap_or_default()
    }

    fn send(sock: &mut UdpSocket, out: impl IntoIterator<Item = Out>) {
        for o in out {
            let to = o.to.unwrap_or(SocketAddrV4::new(Ipv4Addr::BROADCAST, PORT));
            if let Err(e) = sock.send_to(&o.bytes, to) {
                log::warn!("send to {to}: {e}");
            }
        }
    }

    /// Drops the endpoints handed out to devices that are no longer
    /// paired.
    fn forget_exports(state: &Mutex<State>) {
        let mut s = state.lock();
        let s = &mut *s;
        let Some(node) = &s.node else { return };
        s.exported.retain(|e| {
            let keep = node.is_paired(e.peer);
            if !keep {
                let _ = syscall::cap_delete(e.ep);
            }
            keep
        });
    }

    /// Sends `o` from the calls' socket.
    fn send_out(state: &Mutex<State>, o: Out) {
        let mut s = state.lock();
        if let (Some(sock), Some(to)) = (s.out.as_mut(), o.to) {
            if let Err(e) = sock.send_to(&o.bytes, to) {
                log::warn!("send to {to}: {e}");
            }
        }
    }

    // ---- the proxy: calls through remote capabilities ----

    fn proxy(state: &'static Mutex<State>) {
        let (ep, replies) = {
            let s = state.lock();
            (s.proxy_ep, s.replies)
        };
        let mut next_id = 1u64;
        let r = serve(ep, |msg, badge| {
            let (reply, object) = match forward(state, replies, &mut next_id, msg, badge) {
                Ok(r) => r,
                Err(e) => (reply_error(e), None),
            };
            let Some(object) = object else {
                return Action::Reply(reply);
            };
            // The client's copy of the reply's object is its own: this
            // one goes once the reply is sent.
            let _ = syscall::reply(&reply);
            let _ = syscall::cap_delete(object);
            Action::NoReply
        });
        if let Err(e) = r {
            panic!("receive on the proxy endpoint: {e}");
        }
    }

    /// The contents of memory object `mem` (a copy), if it is one of at
    /// most [`MAX_OBJECT`] bytes that this task may read. Read with
    /// `MemoryRead`, not through a mapping: a client that revokes the
    /// object meanwhile gets its call failed, not the bus faulted.
    fn object_bytes(mem: Handle) -> Result<Vec<u8>, Error> {
        let info = syscall::cap_info(mem)?;
        if info.object != Some(ObjectType::Memory) {
            return Err(Error::NotSupported);
        }
        if info.size > MAX_OBJECT as u64 {
            return Err(Error::OutOfMemory);
        }
        let mut v = Vec::new();
        v.try_reserve_exact(info.size as usize)
            .map_err(|_| Error::OutOfMemory)?;
        v.resize(info.size as usize, 0);
        syscall::memory_read(mem, 0, &mut v)?;
        Ok(v)
    }

    /// A new memory object of this task's holding `bytes` (its size
    /// rounded up to pages, one page at least).
    fn new_object(bytes: &[u8]) -> Result<Handle, Error> {
        let pages = pages_for(bytes.len() as u64).max(1);
        let mem = syscall::create(process().pool, ObjectType::Memory, pages)?;
        match with_scratch(mem, pages, Rights::READ | Rights::WRITE, |b| {
            b[..bytes.len()].copy_from_slice(bytes)
        }) {
            Ok(()) => Ok(mem),
            Err(e) => {
                let _ = syscall::cap_delete(mem);
                Err(e)
            }
        }
    }

    /// Carries one call to its device and brings the reply back, with the
    /// reply's memory object if it carries one (this task's copy, to be
    /// deleted once the reply is sent).
    fn forward(
        state: &Mutex<State>,
        replies: Handle,
        next_id: &mut u64,
        msg: &Message,
        badge: u64,
    ) -> Result<(Message, Option<Handle>), Error> {
        // One memory object travels (copied); nothing else does. `serve`
        // deletes what the call carried.
        let object = match msg.caps() {
            [] => None,
            [c] => Some(object_bytes(c.handle)?),
            _ => return Err(Error::NotSupported),
        };
        let (peer, target) = {
            let s = state.lock();
            let p = s.proxies.get(&badge).ok_or(Error::BadHandle)?;
            if p.dead {
                return Err(Error::PeerDied);
            }
            let node = s.node.as_ref().ok_or(Error::PeerDied)?;
            match &p.route {
                Route::Service { device, service } => (
                    node.paired(device).ok_or(Error::PeerDied)?.id,
                    Target::Service(service.clone()),
                ),
                Route::Handle { peer, number } => (*peer, Target::Handle(*number)),
            }
        };
        let id = *next_id;
        *next_id += 1;
        let start = syscall::now_us();
        let mut sent = 0u64;
        // The first round sends at once (no second clock read).
        let mut now = start;
        let reply = loop {
            if now.saturating_sub(sent) >= RESEND_US {
                sent = now;
                let out = {
                    let mut s = state.lock();
                    s.node.as_mut().ok_or(Error::PeerDied)?.call_object(
                        peer,
                        id,
                        &target,
                        msg.label,
                        msg.words(),
                        object.as_deref(),
                    )
                };
                match out {
                    Ok(o) => send_out(state, o),
                    Err(CallError::NotNearby) => break Err(Error::PeerDied),
                    Err(CallError::NotShared) => break Err(Error::NoRights),
                    Err(CallError::TooLarge) => break Err(Error::OutOfMemory),
                }
            }
            let _ = syscall::wait(replies, Timeout::Micros(RESEND_US / 5));
            let mut s = state.lock();
            let node = s.node.as_mut().ok_or(Error::PeerDied)?;
            if let Some(r) = node.take_reply(peer, id) {
                break Ok(r);
            }
            if !node.is_paired(peer) {
                break Err(Error::PeerDied);
            }
            now = syscall::now_us();
            if now.saturating_sub(start) >= names::REMOTE_REPLY_TIMEOUT_US {
                break Err(Error::TimedOut);
            }
        };
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                if e == Error::PeerDied {
                    bury(state, badge);
                }
                return Err(e);
            }
        };
        if reply.closed {
            bury(state, badge);
        }
        let mut m = Message::with_words(reply.label, &reply.words);
        for n in reply.handles {
            let ep = mint(state, Route::Handle { peer, number: n })?;
            m.push_cap(ep, Rights::SEND | Rights::GRANT);
        }
        let object = match reply.object {
            Some(bytes) => {
                let mem = new_object(&bytes)?;
                if !m.push_cap(mem, Rights::READ | Rights::WRITE | Rights::MAP) {
                    let _ = syscall::cap_delete(mem);
                    return Err(Error::OutOfMemory);
                }
                Some(mem)
            }
            None => None,
        };
        Ok((m, object))
    }

    /// A proxy whose handle route died (its device left, or the endpoint
    /// was closed): its clients' copies are revoked; later calls with its
    /// badge fail with `PeerDied`. Service routes stay (the device may
    /// come back).
    fn bury(state: &Mutex<State>, badge: u64) {
        let mut s = state.lock();
        if let Some(p) = s.proxies.get_mut(&badge) {
            if matches!(p.route, Route::Handle { .. }) && !p.dead {
                p.dead = true;
                let _ = syscall::cap_revoke(p.minted);
                let _ = syscall::cap_delete(p.minted);
            }
        }
    }

    /// The proxy endpoint for `route`: a new badge for a device's
    /// endpoint, the same one again for a service.
    fn mint(state: &Mutex<State>, route: Route) -> Result<Handle, Error> {
        let mut s = state.lock();
        if matches!(route, Route::Service { .. }) {
            if let Some(p) = s.proxies.values().find(|p| p.route == route) {
                return Ok(p.minted);
            }
        }
        // Dead proxies are forgotten once there are many (their badges
        // are not used again: a stale client copy finds no route).
        if s.proxies.len() >= 256 {
            s.proxies.retain(|_, p| !p.dead);
            if s.proxies.len() >= 256 {
                return Err(Error::OutOfMemory);
            }
        }
        let badge = s.next_badge;
        s.next_badge += 1;
        let minted = syscall::cap_mint(s.proxy_ep, Rights::SEND | Rights::GRANT, badge)?;
        s.proxies.insert(
            badge,
            Proxy {
                route,
                minted,
                dead: false,
            },
        );
        Ok(minted)
    }

    // ---- the worker: calls other devices make here ----

    /// A device's connection to a local service: the bus's client `client`
    /// of it (`names::lookup_client`), one per device and service, so at
    /// most [`bus::node::MAX_PEERS`] times the services shared.
    struct Conn {
        peer: u64,
        service: String,
        ep: Handle,
    }

    /// The worker's connections, and the next client number.
    #[derive(Default)]
    struct Conns {
        open: Vec<Conn>,
        /// Of devices that left, waiting for their service to take `BYE`.
        leaving: Vec<Conn>,
        next_client: u32,
    }

    impl Conns {
        /// Device `peer`'s connection to service `name`.
        fn get(&mut self, peer: u64, name: &str) -> Result<Handle, Error> {
            if let Some(c) = self.open.iter().find(|c| c.peer == peer && c.service == name) {
                return Ok(c.ep);
            }
            self.next_client = self.next_client.wrapping_add(1).max(1);
            let ep = names::lookup_client(name, self.next_client).map_err(|e| match e {
                Error::WouldBlock => Error::PeerDied,
                e => e,
            })?;
            self.open.push(Conn {
                peer,
                service: name.into(),
                ep,
            });
            Ok(ep)
        }

        /// Drops a connection whose server died (no `BYE`: the server's
        /// next incarnation never knew it).
        fn drop_dead(&mut self, ep: Handle) {
            self.open.retain(|c| c.ep != ep);
            let _ = syscall::cap_delete(ep);
        }

        /// Ends the connections of devices no longer paired: `BYE` on
        /// each, then it goes. `BYE` is sent, not called, and only if the
        /// service is receiving right now (`NonBlocking`): the worker never
        /// waits for a service, so the other devices' calls do not wait
        /// behind one that is busy; a connection whose service was not
        /// receiving stays, to be tried again. Whether some are still
        /// leaving.
        fn end_departed(&mut self, state: &Mutex<State>) -> bool {
            let (gone, open): (Vec<Conn>, Vec<Conn>) = core::mem::take(&mut self.open)
                .into_iter()
                .partition(|c| !with_node(state, |n| n.is_paired(c.peer)));
            self.open = open;
            self.leaving.extend(gone);
            self.leaving.retain(|c| {
                let bye = Message::new(userlib::proto::BYE);
                if syscall::send(c.ep, &bye, Timeout::NonBlocking) == Err(Error::WouldBlock) {
                    return true;
                }
                let _ = syscall::cap_delete(c.ep);
                false
            });
            !self.leaving.is_empty()
        }
    }

    fn worker(state: &'static Mutex<State>) {
        let calls = state.lock().calls;
        let mut conns = Conns::default();
        let mut leaving = false;
        loop {
            let wait = if leaving {
                Timeout::millis(BYE_RETRY_MS)
            } else {
                Timeout::Forever
            };
            let _ = syscall::wait(calls, wait);
            leaving = conns.end_departed(state);
            loop {
                let batch = with_node(state, |n| n.take_calls());
                if batch.is_empty() {
                    break;
                }
                for c in batch {
                    let (peer, id) = (c.peer, c.id);
                    let reply = carry_out(state, &mut conns, c).unwrap_or_else(refusal);
                    let out = with_node(state, |n| n.answer(peer, id, reply).into_iter().collect::<Vec<_>>());
                    for o in out {
                        send_out(state, o);
                    }
                }
            }
        }
    }

    fn carry_out(state: &Mutex<State>, conns: &mut Conns, c: Incoming) -> Result<RemoteReply, Error> {
        // Whatever capabilities the reply carries are taken care of below
        // (endpoints exported within the peer's limit, one memory object
        // copied, the rest deleted).
        let mut msg = Message::with_words(c.label, &c.words).accepting_caps(BUFFER_CAPS);
        // The call's object: a fresh copy, read-only, for this call only.
        let lent = match &c.object {
            Some(bytes) => {
                let mem = new_object(bytes)?;
                msg.push_cap(mem, Rights::READ | Rights::MAP);
                Some(mem)
            }
            None => None,
        };
        let r = call_local(state, conns, &c, &msg);
        if let Some(mem) = lent {
            let _ = syscall::cap_revoke(mem);
            let _ = syscall::cap_delete(mem);
        }
        let (reply, handle) = r?;
        reply_of(state, &c, reply, handle)
    }

    /// Calls the local service or endpoint `c` is for with `msg`: its
    /// reply, and the endpoint called if it was one handed out.
    fn call_local(
        state: &Mutex<State>,
        conns: &mut Conns,
        c: &Incoming,
        msg: &Message,
    ) -> Result<(Message, Option<Handle>), Error> {
        Ok(match &c.target {
            Target::Service(name) => {
                // (The node took only a service this device shares.)
                let mut tries = 0;
                loop {
                    let ep = conns.get(c.peer, name)?;
                    match syscall::call_timeout(ep, msg, Timeout::millis(LOCAL_TIMEOUT_MS)) {
                        // The server restarted: look it up again, once.
                        Err(Error::PeerDied | Error::BadHandle) if tries == 0 => {
                            tries += 1;
                            conns.drop_dead(ep);
                        }
                        r => break (r?.0, None),
                    }
                }
            }
            Target::Handle(number) => {
                let ep = state
                    .lock()
                    .exported
                    .iter()
                    .find(|e| e.peer == c.peer && e.number == *number)
                    .map(|e| e.ep)
                    .ok_or(Error::BadHandle)?;
                let r = syscall::call_timeout(ep, msg, Timeout::millis(LOCAL_TIMEOUT_MS));
                (r?.0, Some(ep))
            }
        })
    }

    /// The remote reply for the local `reply` to call `c`.
    fn reply_of(
        state: &Mutex<State>,
        c: &Incoming,
        reply: Message,
        handle: Option<Handle>,
    ) -> Result<RemoteReply, Error> {
        // The target endpoint is gone now (a file closed): dropped.
        let closed = handle.is_some_and(|ep| syscall::cap_info(ep).is_err());
        let mut s = state.lock();
        if closed {
            s.exported.retain(|e| {
                let dead = Some(e.ep) == handle;
                if dead {
                    let _ = syscall::cap_delete(e.ep);
                }
                !dead
            });
        }
        let mut handles = Vec::new();
        let mut object = None;
        let held = s.exported.iter().filter(|e| e.peer == c.peer).count();
        if held + reply.caps().len() > MAX_EXPORTED {
            for cap in reply.caps() {
                let _ = syscall::cap_delete(cap.handle);
            }
            return Err(Error::OutOfMemory);
        }
        for cap in reply.caps() {
            let ty = syscall::cap_info(cap.handle).map(|i| i.object);
            if ty == Ok(Some(ObjectType::Memory)) && object.is_none() {
                // Copied (the caller pulls the copy), then let go.
                let bytes = object_bytes(cap.handle);
                let _ = syscall::cap_delete(cap.handle);
                object = Some(bytes);
                continue;
            }
            if ty != Ok(Some(ObjectType::Endpoint)) {
                // Other capabilities do not travel.
                let _ = syscall::cap_delete(cap.handle);
                continue;
            }
            let number = s.next_number;
            s.next_number = s.next_number.wrapping_add(1).max(1);
            s.exported.push(Exported {
                peer: c.peer,
                number,
                ep: cap.handle,
            });
            handles.push(number);
        }
        Ok(RemoteReply {
            label: reply.label,
            words: reply.words().to_vec(),
            handles,
            closed,
            object: object.transpose()?,
        })
    }

    fn serve_requests(state: &'static Mutex<State>, ep: Handle) {
        let r = serve(ep, |msg, _badge| {
            if msg.label == proto::CONNECT {
                return Action::Reply(connect(state, msg).unwrap_or_else(reply_error));
            }
            if msg.label == proto::FORGET {
                return Action::Reply(forget(state, msg).unwrap_or_else(reply_error));
            }
            let mut s = state.lock();
            Action::Reply(answer(&mut s, msg).unwrap_or_else(reply_error))
        });
        if let Err(e) = r {
            panic!("receive on the service endpoint: {e}");
        }
    }

    /// `FORGET DEVICE` (or `FORGET KEY`, [`Node::forget`]): ends that
    /// pairing by code, and writes the pairings without it (outside the
    /// node's lock).
    fn forget(state: &Mutex<State>, msg: &Message) -> Result<Message, Error> {
        let mut text = [0u8; userlib::proto::TEXT_BYTES];
        let device = userlib::ipc::unpack_text(msg, &mut text);
        let found = {
            let mut s = state.lock();
            if s.storage == proto::Storage::Reading {
                return Err(Error::WouldBlock);
            }
            let node = s.node.as_mut().ok_or(Error::WouldBlock)?;
            let found = node.forget(device);
            // Written here, not by the packet loop.
            let _ = node.take_pairings_changed();
            found
        };
        if !found {
            return Err(Error::InvalidArgument);
        }
        log::info!("forgot the pairing with {device}");
        // The device's connections and endpoints go as when it leaves.
        take_events(state);
        let kept = match save_logged(state) {
            Ok(true) => proto::Forgot::Stored,
            Ok(false) => proto::Forgot::Memory,
            Err(_) => proto::Forgot::WriteFailed,
        };
        Ok(Message::with_words(proto::FORGET, &[kept as u64]))
    }

    /// `CONNECT DEVICE/SERVICE`: the proxy endpoint for it.
    fn connect(state: &Mutex<State>, msg: &Message) -> Result<Message, Error> {
        let mut text = [0u8; userlib::proto::TEXT_BYTES];
        let t = userlib::ipc::unpack_text(msg, &mut text);
        let (device, service) = t.split_once('/').ok_or(Error::InvalidArgument)?;
        {
            let s = state.lock();
            let p = s
                .node
                .as_ref()
                .and_then(|n| n.paired(device))
                .ok_or(Error::WouldBlock)?;
            if !p.info.shared.iter().any(|x| x == service) {
                return Err(Error::NoRights);
            }
        }
        let ep = mint(
            state,
            Route::Service {
                device: device.into(),
                service: service.into(),
            },
        )?;
        let mut m = Message::new(proto::CONNECT);
        m.push_cap(ep, Rights::SEND | Rights::GRANT);
        Ok(m)
    }

    fn answer(s: &mut State, msg: &Message) -> Result<Message, Error> {
        // A pairing made before the file is read would be replaced by it
        // (and made with a static key about to be replaced).
        if matches!(msg.label, proto::PAIR | proto::JOIN) && s.storage == proto::Storage::Reading {
            return Err(Error::WouldBlock);
        }
        match msg.label {
            proto::DEVICE => {
                let p = s
                    .node
                    .as_ref()
                    .and_then(|n| n.nearby().nth(msg.word(0) as usize))
                    .ok_or(Error::InvalidArgument)?;
                Ok(pack_record(
                    proto::DEVICE,
                    &[
                        ip_word(*p.addr.ip()),
                        p.id,
                        p.rtt_us.unwrap_or(u64::MAX),
                        u64::from(p.pinned.is_some()),
                    ],
                    &proto::device_text(&p.info.name, &p.info.profile, &p.info.shared),
                ))
            }
            proto::STATUS => {
                let (id, paired, r) = match &s.node {
                    Some(n) => (n.me, n.nearby().count() as u64, n.refused),
                    None => (0, 0, Default::default()),
                };
                Ok(pack_record(
                    proto::STATUS,
                    &[
                        id,
                        paired,
                        r.malformed,
                        r.unsealed,
                        r.replayed,
                        r.handshake,
                        r.unshared,
                        r.pairing,
                        s.storage as u64,
                    ],
                    &proto::device_text(&s.me.name, &s.me.profile, &s.me.shared),
                ))
            }
            proto::PAIR => {
                let node = s.node.as_mut().ok_or(Error::WouldBlock)?;
                let code = node.show_code(syscall::now_us());
                Ok(Message::with_words(
                    proto::PAIR,
                    &[u64::from(code), bus::pair::CODE_VALID_US / 1000],
                ))
            }
            proto::JOIN => {
                let mut text = [0u8; userlib::proto::TEXT_BYTES];
                let t = userlib::ipc::unpack_text(msg, &mut text);
                let (device, code) = t.split_once(' ').ok_or(Error::InvalidArgument)?;
                let code = bus::pair::parse_code(code).ok_or(Error::InvalidArgument)?;
                if !bus::wire::is_word(device, bus::wire::MAX_NAME) {
                    return Err(Error::InvalidArgument);
                }
                let node = s.node.as_mut().ok_or(Error::WouldBlock)?;
                node.join(device, code, syscall::now_us());
                Ok(Message::new(proto::JOIN))
            }
            proto::PAIRINGS => {
                let (name, key, nearby) = s
                    .node
                    .as_ref()
                    .and_then(|n| n.pairings().nth(msg.word(0) as usize))
                    .ok_or(Error::InvalidArgument)?;
                Ok(pack_record(proto::PAIRINGS, &[key, u64::from(nearby)], name))
            }
            proto::PAIRING => {
                let now = syscall::now_us();
                let state = match &s.node {
                    None => proto::Pairing::Idle,
                    Some(n) => match n.pairing() {
                        PairState::Idle => proto::Pairing::Idle,
                        PairState::Showing { code, until, used } => proto::Pairing::Showing {
                            code,
                            left_ms: until.saturating_sub(now) / 1000,
                            used,
                        },
                        PairState::Joining { name } => proto::Pairing::Joining(name),
                        PairState::Paired { peer } => proto::Pairing::Paired(
                            n.nearby()
                                .find(|p| p.id == peer)
                                .map_or_else(|| alloc::format!("{peer:016x}"), |p| p.info.name.clone()),
                        ),
                        PairState::Failed(f) => proto::Pairing::Failed(match f {
                            Failure::NotConfirmed => proto::PairFailure::NotConfirmed,
                            Failure::Expired => proto::PairFailure::Expired,
                            Failure::WrongCode => proto::PairFailure::WrongCode,
                            Failure::NoOffer => proto::PairFailure::NoOffer,
                            Failure::NoAnswer => proto::PairFailure::NoAnswer,
                        }),
                    },
                };
                let (values, text) = state.record();
                Ok(pack_record(proto::PAIRING, &values, &text))
            }
            _ => Err(Error::NotSupported),
        }
    }
}

#[cfg(not(test))]
// Room for the objects in flight (each at most `bus::wire::MAX_OBJECT`,
// at most `bus::node::MAX_ASSEMBLIES` of them, kept for pulls or being
// received, and their copies on the way in and out).
userlib::entry!(serve::main, heap = 512 * 1024);
