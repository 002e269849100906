//! The supervisor: the task table, the name service, the device manager's
//! driver starts, and the control calls (see `userlib::proto`).
//!
//! Every task init starts gets a badged copy of init's endpoint (its
//! `parent`, and its threads' fault handler); the badge is the task's id,
//! stable across restarts. One receive loop ([`Supervisor::handle`]) sees
//! faults, exits, name-service and control calls.
//!
//! Services are routed, not looked up: the profile says which task
//! provides each service name and which tasks use it (`provides`/`uses`,
//! see the `profile` crate). Init registers a name only for its declared
//! provider and hands a client only a service routed to it; anything else
//! gets `NoRights`. So no task can take a name while its provider restarts,
//! and no task reaches a service (raw `blk`, the whole `display`) that the
//! profile does not give it.
//!
//! A task that faults is destroyed, its services unregistered (their
//! endpoints revoked, so clients' calls fail and they reconnect), and it is
//! started again after a back-off that doubles with each restart, up to
//! [`MAX_RESTARTS`]. Init never calls a child, so no child can block it.

use crate::devices::DeviceNode;
use crate::verdict::{self, Fault};
use alloc::string::String;
use alloc::vec::Vec;
use profile::Task as TaskSpec;
use userlib::abi::{FaultKind, ObjectType, PAGE_SIZE};
use userlib::ipc::{unpack_text, Message, Timeout};
use userlib::loader::{self, Child, Spawn, SpawnError};
use userlib::proto::{self, reply_error, TaskRecord, TaskState, OK};
use userlib::{log, syscall, Error, Handle, Rights};

/// Restarts of a faulting task before init gives up on it.
pub const MAX_RESTARTS: u32 = 5;
/// First restart delay; doubles with each restart.
pub const FIRST_BACKOFF_MS: u64 = 100;
/// Starts of a task that found no memory (its pool, or the memory of the
/// objects in it, refused) tried again, [`MEMORY_RETRY_MS`] apart, before
/// init gives up: memory a dead task's objects held comes back only when
/// the last task holding one lets go (the compositor drops a dead
/// client's window at its sweep, once a second).
pub const MEMORY_RETRIES: u32 = 8;
/// Delay between those tries.
pub const MEMORY_RETRY_MS: u64 = 250;
/// Stack of a driver's or server's first thread (32 KiB: their memory
/// limits are tight on a watch); test programs get the loader's default.
pub const TASK_STACK_PAGES: u64 = 8;

/// One supervised task (one program; several incarnations over restarts).
pub struct Task {
    pub id: u64,
    pub spec: TaskSpec,
    /// The device it drives: index into [`Supervisor::devices`].
    pub device: Option<usize>,
    pub child: Option<Child>,
    pub state: TaskState,
    pub restarts: u32,
    /// When to start it again (microseconds since boot).
    pub restart_at: Option<u64>,
    /// Starts in a row that found no memory (see [`MEMORY_RETRIES`]).
    pub memory_retries: u32,
    /// Pool bytes it was given.
    pub memory: u64,
    /// CPU time of its earlier incarnations.
    pub cpu_before_us: u64,
    /// A test program (the test runner owns its end).
    pub test: bool,
}

/// A registered service.
struct Service {
    name: String,
    provider: u64,
    /// The provider's endpoint (`SEND | GRANT`), from which clients get
    /// badged copies; revoking it cuts them all off.
    ep: Handle,
    /// Tasks that looked it up (ids).
    clients: Vec<u64>,
}

pub struct Supervisor {
    pub ep: Handle,
    pub tasks: Vec<Task>,
    pub devices: Vec<DeviceNode>,
    services: Vec<Service>,
    next_id: u64,
    /// Pool bytes init had at boot.
    pub pool_at_boot: u64,
    /// The device profile's name (drivers get it as `profile=NAME`).
    pub profile: String,
    /// Bumped whenever a service or task changes (for the test runner's
    /// leak check, which only holds on a quiet system).
    pub changes: u64,
    /// The reply to the request just handled: sent with the next receive
    /// ([`Supervisor::reply_recv`]), one system call for both.
    reply: Option<Message>,
    /// A capability of init's that goes once that reply is sent (a
    /// looked-up endpoint, a device region: the caller's copy stays).
    after_reply: Option<Handle>,
}

impl Supervisor {
    pub fn new(ep: Handle, devices: Vec<DeviceNode>, pool_at_boot: u64) -> Supervisor {
        Supervisor {
            ep,
            tasks: Vec::new(),
            devices,
            services: Vec::new(),
            next_id: 1,
            pool_at_boot,
            profile: String::new(),
            changes: 0,
            reply: None,
            after_reply: None,
        }
    }

    /// Adds a task to the table and starts it; returns its id.
    pub fn add(&mut self, spec: TaskSpec, device: Option<usize>, test: bool) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.tasks.push(Task {
            id,
            memory: spec.memory,
            spec,
            device,
            child: None,
            state: TaskState::Stopped,
            restarts: 0,
            restart_at: None,
            memory_retries: 0,
            cpu_before_us: 0,
            test,
        });
        self.start(id);
        id
    }

    fn task_mut(&mut self, id: u64) -> Option<&mut Task> {
        self.tasks.iter_mut().find(|t| t.id == id)
    }

    fn task(&self, id: u64) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }

    /// Starts (or starts again) task `id`. Out of memory, a task that is
    /// not a test is tried again later (see [`MEMORY_RETRIES`]; `true`).
    pub fn start(&mut self, id: u64) -> bool {
        let Some(i) = self.tasks.iter().position(|t| t.id == id) else {
            return false;
        };
        let ep = self.ep;
        let t = &self.tasks[i];
        let device = t.device.and_then(|d| self.devices.get(d));
        let mut extra: Vec<(Handle, Rights)> = Vec::new();
        let args = match device {
            Some(d) => {
                let regions = d.regions.len().min(8);
                let irqs = d.irqs.len().min(8 - regions);
                // A test program may pass its device on (test-hostile's
                // fuzzers get copies); a driver may not.
                let grant = if t.test { Rights::GRANT } else { Rights::empty() };
                let device_rights = Rights::READ | Rights::WRITE | Rights::MAP | Rights::MANAGE | grant;
                extra.extend(d.regions[..regions].iter().map(|r| (r.0, device_rights)));
                extra.extend(d.irqs[..irqs].iter().map(|q| (q.0, Rights::MANAGE | grant)));
                let compatible = d.keys.first().map_or(d.compatible.as_str(), |k| k.as_str());
                let ranges: Vec<(u64, u64)> = d.regions[..regions].iter().map(|r| (r.1, r.2)).collect();
                let rest = alloc::format!("profile={} {}", self.profile, t.spec.args);
                proto::driver_args(&d.name, compatible, &ranges, irqs, rest.trim_end())
            }
            None => t.spec.args.clone(),
        };
        let mut no_memory = false;
        let result = loader::find_program(&t.spec.program)
            .map_err(|e| alloc::format!("{e}"))
            .and_then(|elf| {
                let spawn = Spawn {
                    args: &args,
                    pool_bytes: t.memory,
                    priority: t.spec.priority,
                    archive: t.test || t.spec.archive,
                    counters: t.test && crate::config::test_counters(&t.spec.program),
                    stack_pages: if t.test {
                        loader::DEFAULT_STACK_PAGES
                    } else {
                        TASK_STACK_PAGES
                    },
                    supervisor: Some((ep, id)),
                    extra: &extra,
                    ..Spawn::new(&t.spec.program, elf)
                };
                loader::spawn(&spawn).map_err(|e| {
                    no_memory = matches!(e, SpawnError::Kernel(_, Error::OutOfMemory));
                    alloc::format!("cannot start: {e}")
                })
            });
        self.changes += 1;
        let t = &mut self.tasks[i];
        t.restart_at = None;
        match result {
            Ok(child) => {
                let on = device.map(|d| alloc::format!(" for {}", d.name)).unwrap_or_default();
                if !t.test {
                    log::info!("started {} (task {id}){on}", t.spec.program);
                }
                t.child = Some(child);
                t.state = TaskState::Running;
                t.memory_retries = 0;
                true
            }
            Err(_) if no_memory && !t.test && t.memory_retries < MEMORY_RETRIES => {
                t.memory_retries += 1;
                t.state = TaskState::Restarting;
                t.restart_at = Some(syscall::now_us() + MEMORY_RETRY_MS * 1000);
                log::info!(
                    "{}: no memory for it yet; trying again in {MEMORY_RETRY_MS} ms ({}/{MEMORY_RETRIES})",
                    t.spec.program,
                    t.memory_retries
                );
                true
            }
            Err(e) => {
                t.memory_retries = 0;
                log::error!("{}: {e}", t.spec.program);
                t.state = TaskState::Stopped;
                false
            }
        }
    }

    /// Destroys task `id`'s current incarnation and unregisters its
    /// services. Its record stays (for `ps` and a later restart).
    pub fn stop(&mut self, id: u64) {
        let mut gone = Vec::new();
        self.services.retain(|s| {
            if s.provider == id {
                gone.push((s.ep, s.name.clone()));
                false
            } else {
                true
            }
        });
        for (ep, name) in gone {
            // Revoke first: every client's copy goes, so their calls fail
            // at once instead of waiting on an endpoint with no server.
            let _ = syscall::cap_revoke(ep);
            let _ = syscall::cap_delete(ep);
            log::info!("names: {name} unregistered");
        }
        // A virtio device is reset before its driver's memory is freed
        // (see `devices::reset_virtio`).
        let device = self.task(id).and_then(|t| t.device.filter(|_| t.child.is_some()));
        if let Some(d) = device.and_then(|d| self.devices.get(d)) {
            if d.compatible == crate::devices::VIRTIO_MMIO {
                if let Some(&(region, physical, _)) = d.regions.first() {
                    crate::devices::reset_virtio(region, physical);
                }
            }
        }
        if let Some(t) = self.task_mut(id) {
            if let Some(c) = t.child.take() {
                t.cpu_before_us += cpu_us(&c);
                if let Err(e) = c.destroy() {
                    log::warn!("{}: cleaning up: {e}", t.spec.program);
                }
            }
            t.state = TaskState::Stopped;
            t.restart_at = None;
        }
        self.changes += 1;
    }

    /// After a fault: stop it and schedule a restart with back-off.
    fn failed(&mut self, id: u64, why: &str) {
        let Some(t) = self.task(id) else { return };
        let (program, restarts, test) = (t.spec.program.clone(), t.restarts, t.test);
        log::info!("{program} {why}");
        self.stop(id);
        if test {
            return;
        }
        let t = self.task_mut(id).expect("task exists");
        if restarts >= MAX_RESTARTS {
            log::warn!("{program}: failed {} times; leaving it stopped", restarts + 1);
            return;
        }
        let delay = FIRST_BACKOFF_MS << restarts;
        t.restarts += 1;
        t.state = TaskState::Restarting;
        t.restart_at = Some(syscall::now_us() + delay * 1000);
        log::info!(
            "restarting {program} in {delay} ms (restart {}/{MAX_RESTARTS})",
            t.restarts
        );
    }

    /// Starts the tasks whose back-off is over; returns how long until the
    /// next one is due. Reads the clock only while a restart is pending.
    pub fn run_due(&mut self) -> Option<u64> {
        if self.tasks.iter().all(|t| t.restart_at.is_none()) {
            return None;
        }
        let now = syscall::now_us();
        let mut i = 0;
        while i < self.tasks.len() {
            let t = &self.tasks[i];
            if t.restart_at.is_some_and(|at| at <= now) {
                let id = t.id;
                self.start(id);
            }
            i += 1;
        }
        let next = self.tasks.iter().filter_map(|t| t.restart_at).min()?;
        Some(next.saturating_sub(syscall::now_us()))
    }

    /// Sends the reply to the request just handled, if it has one, and
    /// receives the next message (`ReplyRecv`: one system call; a plain
    /// receive when there is nothing to answer). The reply goes even when
    /// the receive fails (times out); a reply the caller can no longer
    /// take is dropped. Then init's copy of a capability the reply handed
    /// over is deleted.
    pub fn reply_recv(&mut self, timeout: Timeout) -> Result<(Message, u64), Error> {
        let r = match self.reply.take() {
            Some(reply) => syscall::reply_recv(self.ep, &reply, timeout),
            None => syscall::recv(self.ep, timeout),
        };
        self.after_reply_done();
        r
    }

    /// Sends a pending reply at once (before init stops receiving for a
    /// while: the end of a test).
    pub fn flush_reply(&mut self) {
        if let Some(reply) = self.reply.take() {
            let _ = syscall::reply(&reply);
        }
        self.after_reply_done();
    }

    fn after_reply_done(&mut self) {
        if let Some(h) = self.after_reply.take() {
            let _ = syscall::cap_delete(h);
        }
    }

    /// Answers the message just received with `reply` (sent by the next
    /// [`Supervisor::reply_recv`] or [`Supervisor::flush_reply`]).
    pub fn set_reply(&mut self, reply: Message) {
        self.reply = Some(reply);
    }

    /// Handles one message from task `badge`; a request's reply goes with
    /// the next [`Supervisor::reply_recv`]. Messages of a test program's
    /// protocol (exit, reason, expected faults, faults) are handed back for
    /// the test runner (`true`) when `test` is its id.
    ///
    /// Any task can send capabilities with any call to init: init keeps
    /// only the endpoint of a registration it accepts and deletes every
    /// other capability a message brings (they would be charged to init's
    /// pool, all free memory), also those of a message it hands back.
    pub fn handle(&mut self, msg: &mut Message, badge: u64, test: Option<u64>) -> bool {
        let is_test = test == Some(badge);
        let handed_back = self.handle_inner(msg, badge, is_test);
        userlib::server::drop_caps(msg);
        handed_back
    }

    /// [`Supervisor::handle`] without the capability clean-up: whether the
    /// message is handed back to the test loop.
    fn handle_inner(&mut self, msg: &mut Message, badge: u64, is_test: bool) -> bool {
        match msg.label {
            proto::EXIT | proto::REASON | proto::EXPECT_FAULT | FaultKind::LABEL if is_test => return true,
            FaultKind::LABEL => {
                let f = Fault::from_words(msg.words());
                self.failed(badge, &alloc::format!("faulted: {}", verdict::describe(&f)));
            }
            proto::EXIT => {
                if let Some(t) = self.task(badge) {
                    log::info!("{} exited with code {}", t.spec.program, msg.word(0));
                }
                self.stop(badge);
            }
            proto::REASON => {
                let mut buf = [0u8; proto::TEXT_BYTES];
                if let Some(t) = self.task(badge) {
                    log::info!("{} is failing: {}", t.spec.program, unpack_text(msg, &mut buf));
                }
            }
            _ => {
                let (reply, handed) = self.request(msg, badge);
                self.reply = Some(reply);
                // A looked-up endpoint is the client's once the reply is
                // sent; init's copy goes then (the client's stays, derived
                // from the registration).
                self.after_reply = handed;
            }
        }
        false
    }

    /// A name-service or control call: the reply, and a capability of
    /// init's to delete once the reply is sent.
    fn request(&mut self, msg: &mut Message, badge: u64) -> (Message, Option<Handle>) {
        let Some(caller) = self.task(badge) else {
            return (reply_error(Error::BadHandle), None);
        };
        let control = caller.spec.control || caller.test;
        let text = || {
            let mut b = [0u8; proto::TEXT_BYTES];
            String::from(unpack_text(msg, &mut b))
        };
        let r = match msg.label {
            proto::NS_REGISTER => {
                let mut buf = [0u8; proto::TEXT_BYTES];
                let name = unpack_text(msg, &mut buf);
                self.register(msg, badge, name).map(|()| Message::new(OK))
            }
            proto::NS_LOOKUP => {
                let mut buf = [0u8; proto::TEXT_BYTES];
                return self.lookup(unpack_text(msg, &mut buf), badge, 0);
            }
            proto::NS_LOOKUP_CLIENT => {
                let mut buf = [0u8; proto::TEXT_BYTES];
                let (values, name) = proto::unpack_record(msg, &mut buf);
                return match values.first().and_then(|c| u32::try_from(*c).ok()).filter(|c| *c > 0) {
                    Some(client) => self.lookup(name, badge, client),
                    None => (reply_error(Error::InvalidArgument), None),
                };
            }
            proto::NS_LIST => self.list_service(msg.word(0)),
            proto::SV_TASK => self.list_task(msg.word(0)),
            // A badge of a task's client names the task.
            proto::SV_TASK_BY_ID => self.task_by_id(proto::task_of(msg.word(0))),
            proto::SV_TASK_NAME => self.task_name(proto::task_of(msg.word(0))),
            proto::SV_DEVICE => self.list_device(msg.word(0)),
            proto::SV_MEMORY => self.memory(),
            proto::SV_KILL | proto::SV_RESTART | proto::SV_POWER if !control => Err(Error::NoRights),
            proto::SV_KILL => self.kill(&text(), false),
            proto::SV_RESTART => self.kill(&text(), true),
            proto::SV_POWER => Err(power(msg.word(0))),
            // Only drivers, and only inside the ranges their profile entry
            // declares (`device_memory`): never another device's registers.
            proto::SV_DEVICE_MEMORY if caller.device.is_none() || !caller.spec.may_map(msg.word(0), msg.word(1)) => {
                log::warn!(
                    "{} may not have device memory {:#x}+{:#x} (not in its profile's device_memory)",
                    caller.spec.program,
                    msg.word(0),
                    msg.word(1)
                );
                Err(Error::NoRights)
            }
            proto::SV_DEVICE_MEMORY => return device_memory(msg.word(0), msg.word(1)),
            _ => Err(Error::InvalidArgument),
        };
        (r.unwrap_or_else(reply_error), None)
    }

    /// Registers `name` for task `badge` if the profile routes it there
    /// (`provides`): `NoRights` otherwise, `InvalidState` if another
    /// instance of the provider has it.
    fn register(&mut self, msg: &mut Message, badge: u64, name: &str) -> Result<(), Error> {
        // Taken: kept if accepted, deleted below if not.
        let ep = msg.take_cap(0).ok_or(Error::InvalidArgument)?;
        let valid = !name.is_empty() && name.len() <= proto::MAX_NAME && !name.contains(char::is_whitespace);
        let is_endpoint = syscall::cap_info(ep).map(|i| i.object) == Ok(Some(ObjectType::Endpoint));
        let provider = self.task(badge).map(|t| t.spec.program.clone()).unwrap_or_default();
        let routed = self.task(badge).is_some_and(|t| t.spec.provides(name));
        let taken = self.services.iter().any(|s| s.name == name);
        let refused = if !valid || !is_endpoint {
            Some(Error::InvalidArgument)
        } else if !routed {
            log::warn!("names: {provider} may not register {name} (the profile does not route it there)");
            Some(Error::NoRights)
        } else if taken {
            Some(Error::InvalidState)
        } else {
            None
        };
        if let Some(e) = refused {
            let _ = syscall::cap_delete(ep);
            return Err(e);
        }
        log::info!("names: {name} registered by {provider}");
        self.services.push(Service {
            name: name.into(),
            provider: badge,
            ep,
            clients: Vec::new(),
        });
        self.changes += 1;
        Ok(())
    }

    /// A badged copy of service `name`'s endpoint for task `badge` (its
    /// client `client`, if not 0: [`proto::client_badge`]), if the profile
    /// routes it there (`uses`): `NoRights` otherwise (whether or not the
    /// service exists), `WouldBlock` while it is not registered.
    fn lookup(&mut self, name: &str, badge: u64, client: u32) -> (Message, Option<Handle>) {
        if !self.task(badge).is_some_and(|t| t.spec.uses(name)) {
            return (reply_error(Error::NoRights), None);
        }
        let Some(s) = self.services.iter_mut().find(|s| s.name == name) else {
            return (reply_error(Error::WouldBlock), None);
        };
        match syscall::cap_mint(s.ep, Rights::SEND | Rights::GRANT, proto::client_badge(badge, client)) {
            Ok(minted) => {
                if !s.clients.contains(&badge) {
                    s.clients.push(badge);
                }
                let mut m = Message::new(OK);
                m.push_cap(minted, Rights::SEND);
                (m, Some(minted))
            }
            Err(e) => (reply_error(e), None),
        }
    }

    /// The routes: first each registered service, then each declared
    /// service (pattern) no one has registered now (its provider is down or
    /// restarting). See [`proto::NS_LIST`].
    fn list_service(&self, index: u64) -> Result<Message, Error> {
        let index = index as usize;
        if let Some(s) = self.services.get(index) {
            let provider = self.task(s.provider).map_or("?", |t| t.spec.program.as_str());
            let users = self.users(|t| t.uses(&s.name));
            let text = alloc::format!("{} {provider} {users}", s.name);
            // Clients: the running tasks that looked it up.
            let running = |id: &&u64| self.task(**id).is_some_and(|t| t.child.is_some());
            let clients = s.clients.iter().filter(running).count() as u64;
            return Ok(proto::pack_record(OK, &[s.provider, clients, 1], &text));
        }
        let routes = self.unregistered_routes();
        let &(pattern, provider) = routes.get(index - self.services.len()).ok_or(Error::InvalidArgument)?;
        let users = self.users(|t| t.uses.iter().any(|u| profile::patterns_overlap(u, pattern)));
        let text = alloc::format!("{pattern} {} {users}", provider.spec.program);
        Ok(proto::pack_record(OK, &[provider.id, 0, 0], &text))
    }

    /// Declared services (`provides` patterns, with a task of their
    /// provider) that match no registered service of that program, once
    /// each.
    fn unregistered_routes(&self) -> Vec<(&str, &Task)> {
        let mut v: Vec<(&str, &Task)> = Vec::new();
        for t in &self.tasks {
            for p in &t.spec.provides {
                let program = &t.spec.program;
                let up = self.services.iter().any(|s| {
                    profile::name_matches(p, &s.name)
                        && self.task(s.provider).is_some_and(|o| &o.spec.program == program)
                });
                if !up && !v.iter().any(|(q, o)| q == p && &o.spec.program == program) {
                    v.push((p, t));
                }
            }
        }
        v
    }

    /// The programs routed to a service (`a,b`, or `-` for none).
    fn users(&self, routed: impl Fn(&TaskSpec) -> bool) -> String {
        let mut names: Vec<&str> = Vec::new();
        for t in self.tasks.iter().filter(|t| routed(&t.spec)) {
            if !names.contains(&t.spec.program.as_str()) {
                names.push(&t.spec.program);
            }
        }
        if names.is_empty() {
            "-".into()
        } else {
            names.join(",")
        }
    }

    /// [`proto::SV_TASK_BY_ID`]: the record [`Self::list_task`] gives the
    /// task with this id (0 is init).
    fn task_by_id(&self, id: u64) -> Result<Message, Error> {
        let index = match id {
            0 => 0,
            _ => {
                self.tasks
                    .iter()
                    .position(|t| t.id == id)
                    .ok_or(Error::InvalidArgument)?
                    + 1
            }
        };
        self.list_task(index as u64)
    }

    /// [`proto::SV_TASK_NAME`]: the program name of the task with this id
    /// (0 is init), in the reply's four words.
    fn task_name(&self, id: u64) -> Result<Message, Error> {
        let name = match id {
            0 => "init",
            _ => self.task(id).ok_or(Error::InvalidArgument)?.spec.program.as_str(),
        };
        let w = proto::task_name_words(name).ok_or(Error::NotSupported)?;
        Ok(Message::with_words(OK, &w))
    }

    fn list_task(&self, index: u64) -> Result<Message, Error> {
        // Index 0 is init itself.
        if index == 0 {
            let me = userlib::process();
            let left = syscall::cap_info(me.pool).map(|i| i.size).unwrap_or(0);
            let cpu = syscall::task_info(me.task).map(|i| i.cpu_micros).unwrap_or(0);
            let r = TaskRecord {
                id: 0,
                state: TaskState::Running,
                memory_limit: self.pool_at_boot,
                // Its own use: what left its pool, less what it moved into
                // the pools of the tasks it started.
                memory_used: self
                    .pool_at_boot
                    .saturating_sub(left)
                    .saturating_sub(self.tasks.iter().filter(|t| t.child.is_some()).map(|t| t.memory).sum()),
                cpu_us: cpu,
                restarts: 0,
                priority: me.priority as u64,
                name: "init".into(),
                device: String::new(),
            };
            return Ok(r.to_message());
        }
        let t = self.tasks.get(index as usize - 1).ok_or(Error::InvalidArgument)?;
        let (used, cpu_now) = match &t.child {
            Some(c) => {
                let left = syscall::cap_info(c.pool).map(|i| i.size).unwrap_or(0);
                (t.memory.saturating_sub(left), cpu_us(c))
            }
            None => (0, 0),
        };
        let r = TaskRecord {
            id: t.id,
            state: t.state,
            memory_limit: t.memory,
            memory_used: used,
            cpu_us: t.cpu_before_us + cpu_now,
            restarts: t.restarts as u64,
            priority: t.spec.priority as u64,
            name: t.spec.program.clone(),
            device: t
                .device
                .and_then(|d| self.devices.get(d))
                .map(|d| d.name.clone())
                .unwrap_or_default(),
        };
        Ok(r.to_message())
    }

    fn list_device(&self, index: u64) -> Result<Message, Error> {
        let d = self.devices.get(index as usize).ok_or(Error::InvalidArgument)?;
        let driver = self
            .tasks
            .iter()
            .find(|t| t.device == Some(index as usize))
            .map_or("-", |t| t.spec.program.as_str());
        let (physical, size) = d.regions.first().map_or((0, 0), |r| (r.1, r.2));
        let irq = d.irqs.first().map_or(0, |q| q.1 as u64);
        let compatible = d.keys.first().unwrap_or(&d.compatible);
        let text = alloc::format!("{} {compatible} {driver}", d.name);
        Ok(proto::pack_record(OK, &[physical, size, irq], &text))
    }

    fn memory(&self) -> Result<Message, Error> {
        let me = userlib::process();
        let free = syscall::cap_info(me.pool)?.size;
        let k = syscall::kernel_stats(me.counters)?;
        Ok(Message::with_words(
            OK,
            &[self.pool_at_boot, free, k.objects, k.free_bytes, k.heap_used],
        ))
    }

    /// `kill`/`restart` by program name or task id. Init and test programs
    /// are not targets.
    fn kill(&mut self, target: &str, restart: bool) -> Result<Message, Error> {
        let id = self
            .tasks
            .iter()
            .find(|t| !t.test && (t.spec.program == target || target.parse() == Ok(t.id)))
            .map(|t| t.id)
            .ok_or(Error::InvalidArgument)?;
        let name = self.task(id).map(|t| t.spec.program.clone()).unwrap_or_default();
        log::info!(
            "{} {name} (task {id}) on request",
            if restart { "restarting" } else { "killing" }
        );
        self.stop(id);
        if restart {
            if let Some(t) = self.task_mut(id) {
                t.restarts += 1;
            }
            if !self.start(id) {
                return Err(Error::OutOfMemory);
            }
        }
        Ok(Message::new(OK))
    }

    /// Starts the profile's drivers for the matched devices and its
    /// servers; logs the devices no driver matches.
    pub fn start_profile(&mut self, profile: &profile::Profile) -> usize {
        self.profile = profile.name.clone();
        let mut started = 0;
        for i in 0..self.devices.len() {
            let keys: Vec<&str> = self.devices[i].keys.iter().map(String::as_str).collect();
            match profile.driver_for(&keys) {
                Some(spec) => {
                    log::info!("devices: {} ({}) -> {}", self.devices[i].name, keys[0], spec.program);
                    self.add(spec.clone(), Some(i), false);
                    started += 1;
                }
                None => log::info!("devices: {} ({}) unmatched", self.devices[i].name, keys[0]),
            }
        }
        for spec in &profile.servers {
            self.add(spec.clone(), None, false);
            started += 1;
        }
        started
    }
}

/// CPU time of a running child.
fn cpu_us(c: &Child) -> u64 {
    syscall::task_info(c.task).map(|i| i.cpu_micros).unwrap_or(0)
}

/// A device region for `bytes` at `physical` (whole pages), handed over in
/// the reply; init's copy goes once the reply is sent.
fn device_memory(physical: u64, bytes: u64) -> (Message, Option<Handle>) {
    let page = PAGE_SIZE as u64;
    let start = physical & !(page - 1);
    let Some(end) = physical
        .checked_add(bytes)
        .and_then(|e| e.checked_next_multiple_of(page))
    else {
        return (reply_error(Error::InvalidArgument), None);
    };
    let me = userlib::process();
    match syscall::device_memory(me.pool, me.console, start, (end - start) / page) {
        Ok(region) => {
            log::info!("device memory {start:#x}..{end:#x} handed to a driver");
            let mut m = Message::new(OK);
            // GRANT: the driver shares it with its clients (a framebuffer).
            let rights = Rights::READ | Rights::WRITE | Rights::MAP | Rights::MANAGE | Rights::GRANT;
            m.push_cap(region, rights);
            (m, Some(region))
        }
        Err(e) => (reply_error(e), None),
    }
}

/// Powers off (0) or reboots (1); returns only on failure.
fn power(how: u64) -> Error {
    let op = match how {
        0 => syscall::SystemOp::PowerOff,
        1 => syscall::SystemOp::Reboot,
        _ => return Error::InvalidArgument,
    };
    log::info!("{}", if how == 0 { "powering off" } else { "rebooting" });
    let e = syscall::system_control(userlib::process().console, op);
    log::error!("power control failed: {e}");
    e
}

/// Wait time for a receive: until the earlier of two deadlines.
pub fn timeout_until(a: Option<u64>, b: Option<u64>) -> Timeout {
    match (a, b) {
        (None, None) => Timeout::Forever,
        (x, y) => Timeout::Micros(x.unwrap_or(u64::MAX).min(y.unwrap_or(u64::MAX)).max(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(timeout_until(None, None), Timeout::Forever);
        assert_eq!(timeout_until(Some(5), None), Timeout::Micros(5));
        assert_eq!(timeout_until(Some(5), Some(3)), Timeout::Micros(3));
        assert_eq!(timeout_until(Some(0), None), Timeout::Micros(1));
    }
}
