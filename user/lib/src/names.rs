//! The name service, client side: servers register named endpoints,
//! clients look them up. Init serves it on every task's `parent` endpoint
//! (see [`crate::proto`] for the messages). Services are routed: a task
//! registers only the names its profile entry `provides`, and looks up only
//! those it `uses`; anything else is `NoRights` (test programs: init's
//! `config::TEST_ROUTES`).
//!
//! A looked-up endpoint carries a badge that names the client to the
//! server. When a server dies, its endpoint dies with it: calls on it fail
//! with `PeerDied` (or `BadHandle` once the supervisor has revoked the
//! client's copy), and the client reconnects with [`connect`], which waits
//! until the restarted server has registered again.
//!
//! **Remote services.** [`connect_remote`] (or [`Connection::remote`])
//! gives an endpoint for a service another device of the group shares
//! (`docs/BUS.md`): an endpoint of the soft bus task, which carries each
//! call to the device and its reply back. It is called exactly like a
//! local service's endpoint. Calls fail with `PeerDied` while the device
//! is away (or `TimedOut` if it does not answer within
//! [`REMOTE_REPLY_TIMEOUT_US`]), and go through again, on the same
//! endpoint, once it is back. The task needs the route `uses = ["bus"]`.

use crate::ipc::{pack_text, Deadline, Message, Timeout};
use crate::proto::{self, check_reply};
use crate::{syscall, Error, Handle, Rights};

fn parent() -> Result<Handle, Error> {
    let p = crate::process().parent;
    if p == Handle::NULL {
        Err(Error::BadHandle)
    } else {
        Ok(p)
    }
}

fn name_message(label: u16, name: &str) -> Result<Message, Error> {
    if name.is_empty() || name.len() > proto::MAX_NAME || name.contains(char::is_whitespace) {
        return Err(Error::InvalidArgument);
    }
    Ok(pack_text(label, name))
}

/// Registers `ep` (this task's endpoint) as service `name`. Clients get
/// badged copies that may only send.
pub fn register(name: &str, ep: Handle) -> Result<(), Error> {
    let mut m = name_message(proto::NS_REGISTER, name)?;
    m.push_cap(ep, Rights::SEND | Rights::GRANT);
    check_reply(syscall::call(parent()?, &m)?.0).map(drop)
}

/// Looks up service `name` once: its endpoint, badged for this task.
/// `WouldBlock` if no task registered it (yet); `NoRights` if it is not
/// routed to this task.
pub fn lookup(name: &str) -> Result<Handle, Error> {
    // The reply carries the endpoint.
    let m = name_message(proto::NS_LOOKUP, name)?.accepting_caps(1);
    let reply = check_reply(syscall::call(parent()?, &m)?.0)?;
    reply.caps().first().map(|c| c.handle).ok_or(Error::InvalidState)
}

/// Looks up service `name` for this task's client `client` (1 or more;
/// [`proto::NS_LOOKUP_CLIENT`]): an endpoint whose badge the server tells
/// apart from this task's own and from its other clients', for a task
/// that serves clients of its own through the service (the soft bus: each
/// remote device). Done with it: [`proto::BYE`] on it, then delete it.
pub fn lookup_client(name: &str, client: u32) -> Result<Handle, Error> {
    if client == 0 {
        return Err(Error::InvalidArgument);
    }
    name_message(proto::NS_LOOKUP_CLIENT, name)?;
    let m = proto::pack_record(proto::NS_LOOKUP_CLIENT, &[u64::from(client)], name).accepting_caps(1);
    let reply = check_reply(syscall::call(parent()?, &m)?.0)?;
    reply.caps().first().map(|c| c.handle).ok_or(Error::InvalidState)
}

/// Looks up `name`, retrying every 10 ms (a server may still be starting
/// or restarting) until `timeout` runs out. Any error but `WouldBlock`
/// (say `NoRights`) returns at once.
pub fn connect(name: &str, timeout: Timeout) -> Result<Handle, Error> {
    let deadline = Deadline::after(timeout);
    loop {
        match lookup(name) {
            Err(Error::WouldBlock) => {}
            other => return other,
        }
        if deadline.passed() {
            return Err(Error::TimedOut);
        }
        syscall::sleep_ms(10);
    }
}

/// How long the soft bus waits for a remote device's reply before it
/// answers a call through a remote endpoint with `TimedOut`.
pub const REMOTE_REPLY_TIMEOUT_US: u64 = 5_000_000;

/// An endpoint for service `service` of the paired device `device`,
/// through the soft bus (a proxy: the same calls as to the local
/// service). Waits up to `timeout` for the device to pair (`TimedOut`);
/// `NoRights` if the device does not share the service (its profile's
/// `shared` list) or this task may not use the bus.
pub fn connect_remote(device: &str, service: &str, timeout: Timeout) -> Result<Handle, Error> {
    use crate::services::bus;
    if device.is_empty() || device.contains('/') || service.is_empty() {
        return Err(Error::InvalidArgument);
    }
    let deadline = Deadline::after(timeout);
    let bus = connect(bus::NAME, timeout)?;
    let m = name_message(bus::CONNECT, &alloc::format!("{device}/{service}")).map(|m| m.accepting_caps(1));
    let r = loop {
        let r = m
            .clone()
            .and_then(|m| syscall::call_timeout(bus, &m, timeout))
            .and_then(|(r, _)| check_reply(r));
        if !matches!(r, Err(Error::WouldBlock)) {
            break r;
        }
        if deadline.passed() {
            break Err(Error::TimedOut);
        }
        syscall::sleep_ms(100);
    };
    let _ = syscall::cap_delete(bus);
    r?.caps().first().map(|c| c.handle).ok_or(Error::InvalidState)
}

/// What a [`Connection`] connects to.
enum Target {
    Local(&'static str),
    Remote(alloc::string::String, &'static str),
}

/// A connection to a service that reconnects after the server restarts.
pub struct Connection {
    target: Target,
    ep: Option<Handle>,
}

impl Connection {
    pub const fn new(name: &'static str) -> Connection {
        Connection {
            target: Target::Local(name),
            ep: None,
        }
    }

    /// A connection over an endpoint [`connect`] already returned (so
    /// that waiting for a service does not cost a second lookup).
    pub const fn with_endpoint(name: &'static str, ep: Handle) -> Connection {
        Connection {
            target: Target::Local(name),
            ep: Some(ep),
        }
    }

    /// A connection to service `name` of the paired device `device`
    /// ([`connect_remote`]).
    pub fn remote(device: &str, name: &'static str) -> Connection {
        Connection {
            target: Target::Remote(device.into(), name),
            ep: None,
        }
    }

    /// Calls the service. On a broken connection (the server died: the
    /// request may or may not have been carried out) the error is
    /// returned and the next call reconnects first.
    pub fn call(&mut self, msg: &Message, timeout: Timeout) -> Result<Message, Error> {
        let ep = self.endpoint(timeout)?;
        match syscall::call_timeout(ep, msg, timeout) {
            Ok((reply, _)) => check_reply(reply),
            Err(e) => Err(self.broken(ep, e)),
        }
    }

    /// [`Connection::call`] of a register-only request (`label` and `n` of
    /// `words`, at most four, no capabilities: no `Message` is built or
    /// copied, and the kernel takes its fast path) whose reply is
    /// register-only too: the reply's four words, or the error of a
    /// [`proto::FAILED`] reply.
    pub fn call_fast(&mut self, label: u16, words: [u64; 4], n: usize, timeout: Timeout) -> Result<[u64; 4], Error> {
        let ep = self.endpoint(timeout)?;
        let info = abi::MessageInfo::new(label, n.min(4), 0);
        match syscall::call_fast_timeout(ep, info, words, timeout) {
            Ok((r, w)) => proto::check_label(r.label(), w[0]).map(|()| w),
            Err(e) => Err(self.broken(ep, e)),
        }
    }

    /// The service's endpoint, looked up if there is none.
    fn endpoint(&mut self, timeout: Timeout) -> Result<Handle, Error> {
        if let Some(ep) = self.ep {
            return Ok(ep);
        }
        let ep = match &self.target {
            Target::Local(name) => connect(name, timeout)?,
            Target::Remote(device, name) => connect_remote(device, name, timeout)?,
        };
        self.ep = Some(ep);
        Ok(ep)
    }

    /// A call on `ep` failed with `e`: a dead server's endpoint goes (the
    /// next call looks the service up again).
    fn broken(&mut self, ep: Handle, e: Error) -> Error {
        if let Error::PeerDied | Error::BadHandle | Error::WrongType = e {
            let _ = syscall::cap_delete(ep);
            self.ep = None;
        }
        e
    }

    /// Looks the service up once if this connection holds no endpoint,
    /// without waiting: `WouldBlock` while no task registered it (a
    /// client that must not wait for a server that is gone: the file
    /// server for its block driver). `Ok` at once while it holds one. A
    /// remote service cannot be looked up without waiting
    /// (`NotSupported`).
    pub fn lookup_now(&mut self) -> Result<(), Error> {
        if self.ep.is_some() {
            return Ok(());
        }
        let Target::Local(name) = &self.target else {
            return Err(Error::NotSupported);
        };
        self.ep = Some(lookup(name)?);
        Ok(())
    }

    /// Whether the endpoint this connection holds was revoked: its server
    /// died (the supervisor revokes a dead server's endpoint, and every
    /// client's copy with it, before it destroys the task). Asks the
    /// kernel about the capability only; no call.
    pub fn is_revoked(&self) -> bool {
        self.ep.is_some_and(|ep| syscall::cap_info(ep).is_err())
    }

    /// Drops the endpoint (the next call looks the service up again).
    pub fn reset(&mut self) {
        if let Some(ep) = self.ep.take() {
            let _ = syscall::cap_delete(ep);
        }
    }
}

/// Supervisor control and information calls (the shell's `ps`,
/// `services`, `devices`, `kill`...).
pub mod supervisor {
    use super::*;
    use crate::proto::TaskRecord;
    use alloc::string::String;
    use alloc::vec::Vec;

    fn call(msg: &Message) -> Result<Message, Error> {
        check_reply(syscall::call(parent()?, msg)?.0)
    }

    /// Every record of a listing call, by index until the end, each
    /// decoded as it arrives (a `Message` is large; small heaps such as
    /// the shell's need not hold them all).
    fn list<T>(label: u16, decode: impl Fn(&Message) -> Option<T>) -> Result<Vec<T>, Error> {
        let mut out = Vec::new();
        for i in 0.. {
            match call(&Message::with_words(label, &[i])) {
                Ok(m) => out.extend(decode(&m)),
                Err(Error::InvalidArgument) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    pub fn tasks() -> Result<Vec<TaskRecord>, Error> {
        list(proto::SV_TASK, TaskRecord::from_message)
    }

    /// The task whose id is `id` (a connection's badge names its client
    /// task so): `InvalidArgument` if no task has it.
    pub fn task(id: u64) -> Result<TaskRecord, Error> {
        let m = call(&Message::with_words(proto::SV_TASK_BY_ID, &[id]))?;
        TaskRecord::from_message(&m).ok_or(Error::InvalidArgument)
    }

    /// The program name of the task whose id is `id` (as [`task`] gives
    /// it, in one register-only call: [`proto::SV_TASK_NAME`]; a name too
    /// long for it is asked for with [`task`]). `InvalidArgument` if no
    /// task has the id.
    pub fn task_name(id: u64) -> Result<String, Error> {
        let info = abi::MessageInfo::new(proto::SV_TASK_NAME, 1, 0);
        let (r, w) = syscall::call_fast(parent()?, info, [id, 0, 0, 0])?;
        if r.label() == proto::FAILED {
            return match Error::check(w[0]).err().unwrap_or(Error::InvalidState) {
                Error::NotSupported => task(id).map(|t| t.name),
                e => Err(e),
            };
        }
        let mut buf = [0u8; proto::TASK_NAME_BYTES];
        proto::task_name_from_words(&w, &mut buf)
            .map(String::from)
            .ok_or(Error::InvalidState)
    }

    /// Device-tree nodes with resources: `(values, "node compatible driver")`.
    pub fn devices() -> Result<Vec<(Vec<u64>, String)>, Error> {
        list(proto::SV_DEVICE, text_record)
    }

    /// Registered services: `([provider id, clients], "name provider")`.
    pub fn services() -> Result<Vec<(Vec<u64>, String)>, Error> {
        list(proto::NS_LIST, text_record)
    }

    fn text_record(m: &Message) -> Option<(Vec<u64>, String)> {
        let mut buf = [0u8; proto::TEXT_BYTES];
        let (v, t) = proto::unpack_record(m, &mut buf);
        Some((v, t.into()))
    }

    /// `[pool total, pool free, kernel objects, free RAM, kernel heap]`.
    pub fn memory() -> Result<[u64; 5], Error> {
        let m = call(&Message::new(proto::SV_MEMORY))?;
        Ok([m.word(0), m.word(1), m.word(2), m.word(3), m.word(4)])
    }

    /// Kills a task (by name or id) and leaves it stopped.
    pub fn kill(target: &str) -> Result<(), Error> {
        call(&name_message(proto::SV_KILL, target)?).map(drop)
    }

    /// Kills a task (by name or id) and starts it again.
    pub fn restart(target: &str) -> Result<(), Error> {
        call(&name_message(proto::SV_RESTART, target)?).map(drop)
    }

    /// A device region for `bytes` of physical memory at `physical`
    /// (rounded out to whole pages) that the device tree does not describe,
    /// for a driver whose device's firmware allocated it (a framebuffer).
    pub fn device_memory(physical: u64, bytes: u64) -> Result<Handle, Error> {
        let reply = call(&Message::with_words(proto::SV_DEVICE_MEMORY, &[physical, bytes]).accepting_caps(1))?;
        reply.caps().first().map(|c| c.handle).ok_or(Error::InvalidState)
    }

    /// Powers the machine off (`reboot = false`) or reboots it. Returns
    /// only on failure.
    pub fn power(reboot: bool) -> Error {
        match call(&Message::with_words(proto::SV_POWER, &[reboot as u64])) {
            Ok(_) => Error::InvalidState,
            Err(e) => e,
        }
    }
}
