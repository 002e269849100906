//! bus: the soft bus task. It moves packets between the UDP socket on the
//! bus port and [`bus::node::Node`] (which holds all the logic, tested on
//! the host), and answers the `bus` service (`userlib::services::bus`):
//! the paired devices nearby and this device's own status.
//!
//! Arguments (from the profile): `name=DEVICE profile=PROFILE`. From the
//! boot archive (the task has `archive = true`): the profile (`shared`)
//! and the group file [`GROUP_ENTRY`] (`cargo xtask run --group FILE`);
//! without a group file the bus pairs with no one and says so. The random
//! seed comes from the `rng` service.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

extern crate alloc;

/// The group file's name in the boot archive.
pub const GROUP_ENTRY: &str = "bus.group";

#[cfg(not(test))]
mod serve {
    #![forbid(unsafe_code)]

    use super::GROUP_ENTRY;
    use alloc::boxed::Box;
    use alloc::string::String;
    use alloc::vec::Vec;
    use bus::keys::GroupKey;
    use bus::node::{Event, Node, Out};
    use bus::wire::{Announcement, MAX_PACKET, PORT};
    use userlib::abi::boot_info::StartInfo;
    use userlib::abi::ObjectType;
    use userlib::ipc::Timeout;
    use userlib::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
    use userlib::proto::{pack_record, reply_error};
    use userlib::server::{serve, Action};
    use userlib::services::bus as proto;
    use userlib::services::net::ip_word;
    use userlib::sync::Mutex;
    use userlib::{log, names, process, syscall, thread, Error, Handle, Message};

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

    struct State {
        me: Announcement,
        node: Option<Node>,
    }

    pub fn main(_start: &StartInfo) {
        let me = Announcement {
            name: String::from(arg("name").unwrap_or("device")),
            profile: String::from(arg("profile").unwrap_or("unknown")),
            shared: shared(),
        };
        let key = archive_file(GROUP_ENTRY).and_then(GroupKey::from_file);
        let mut seed = [0u8; 32];
        let seeded = userlib::services::rng::fill(&mut userlib::services::rng::connection(), &mut seed);
        let node = match (&key, seeded) {
            (Some(k), Ok(())) => {
                bus::rng::seed(seed);
                Some(Node::new(bus::rng::u64(), me.clone(), k.clone()))
            }
            (None, _) => {
                log::warn!("no group key in the boot archive (cargo xtask run --group FILE): pairing with no one");
                None
            }
            (_, Err(e)) => {
                log::warn!("no random numbers from the rng service ({e}): pairing with no one");
                None
            }
        };
        let state: &'static Mutex<State> = Box::leak(Box::new(Mutex::new(State { me, node })));
        let ep = syscall::create(process().pool, ObjectType::Endpoint, 0).expect("endpoint");
        names::register(proto::NAME, ep).unwrap_or_else(|e| panic!("register {}: {e}", proto::NAME));
        let _requests = thread::Builder::default()
            .stack_pages(16)
            .spawn(move || serve_requests(state, ep))
            .expect("request thread");
        if state.lock().node.is_some() {
            run(state);
        }
        // Without a key or seed: only the service.
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
        let mut buf = [0u8; MAX_PACKET];
        loop {
            let out = with_node(state, |n| n.tick(syscall::now_us()));
            send(&mut sock, out);
            match sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let out = with_node(state, |node| node.receive(from, &buf[..n], syscall::now_us()));
                    send(&mut sock, out);
                }
                Err(Error::TimedOut | Error::WouldBlock) => {}
                Err(e) => {
                    log::warn!("receive: {e}");
                    syscall::sleep_ms(100);
                }
            }
            for e in with_node(state, |n| n.take_events()) {
                match e {
                    Event::Paired { name, addr } => log::info!("paired with {name} at {}", addr.ip()),
                    Event::Left { name } => log::info!("{name} left"),
                }
            }
        }
    }

    fn with_node<R: Default>(state: &Mutex<State>, f: impl FnOnce(&mut Node) -> R) -> R {
        state.lock().node.as_mut().map(f).unwrap_or_default()
    }

    fn send(sock: &mut UdpSocket, out: Vec<Out>) {
        for o in out {
            let to = o.to.unwrap_or(SocketAddrV4::new(Ipv4Addr::BROADCAST, PORT));
            if let Err(e) = sock.send_to(&o.bytes, to) {
                log::warn!("send to {to}: {e}");
            }
        }
    }

    fn serve_requests(state: &'static Mutex<State>, ep: Handle) {
        let r = serve(ep, |msg, _badge| {
            let s = state.lock();
            Action::Reply(answer(&s, msg).unwrap_or_else(reply_error))
        });
        if let Err(e) = r {
            panic!("receive on the service endpoint: {e}");
        }
    }

    fn answer(s: &State, msg: &Message) -> Result<Message, Error> {
        match msg.label {
            proto::DEVICE => {
                let p = s
                    .node
                    .as_ref()
                    .and_then(|n| n.nearby().nth(msg.word(0) as usize))
                    .ok_or(Error::InvalidArgument)?;
                Ok(pack_record(
                    proto::DEVICE,
                    &[ip_word(*p.addr.ip()), p.id, p.rtt_us.unwrap_or(u64::MAX)],
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
                    &[id, paired, r.malformed, r.unsealed, r.replayed, r.handshake],
                    &proto::device_text(&s.me.name, &s.me.profile, &s.me.shared),
                ))
            }
            _ => Err(Error::NotSupported),
        }
    }
}

#[cfg(not(test))]
userlib::entry!(serve::main, heap = 128 * 1024);
