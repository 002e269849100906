//! compositor: the display server. The only client of `display`,
//! `keyboard` and `touch`; serves `compositor` (protocol, with the
//! guarantees it gives clients: `userlib::services::compositor`).
//!
//! One thread owns the scene and answers every request without ever
//! calling a client: events go into bounded per-client queues and a
//! notification signal says they are there. A thread per input device
//! routed to it (`keyboard`, `touch`) reads it and hands its events to the main thread by a call on the
//! compositor's own endpoint (badge [`INPUT_BADGE`]). After the requests
//! waiting have been handled (or 16 ms after the first damage, whichever
//! comes first) the damaged rectangles are composed straight into the
//! display driver's framebuffer (clients' surfaces read with `MemoryRead`,
//! never mapped: a client revoking one cannot make the compositor fault)
//! and flushed (where the framebuffer is a
//! band of rows, as on the watch, band by band: `display`'s `PUT`). Once a second the client list
//! is checked against the running tasks (and when a new client calls, or a
//! known one connects again after its task restarted): a dead client's
//! surfaces go, also a restarted task's old incarnation's, and those of a
//! client that says `BYE` (a task's client of its own that is done: the
//! bus's for a device that left).
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code, unused_imports))]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use compositor::compose::{self, Layer, Pixels, Target};
use compositor::geom::Rect;
use compositor::gesture::{Action, Decoder, Gestures, Touch};
use compositor::scene::{Buffer, Scene};
use core::sync::atomic::{AtomicU64, Ordering};
use userlib::abi::ObjectType;
use userlib::ipc::{Message, Timeout};
use userlib::names::{self, supervisor};
use userlib::proto::{reply_error, OK};
use userlib::services::compositor::{self as proto, Event, Info};
use userlib::services::display::{self, Display};
use userlib::services::input::{self, Input, Kind};
use userlib::vspace::{pages_for, reserve, Mapping};
use userlib::{log, process, syscall, thread, Error, Handle, Rights};

// The heap is static (.bss): every KiB of it is RAM on every device, the
// 4 MiB watch too. Its use is bounded: 32 clients x 64 queued 16-byte
// events (32 KiB), 64 surfaces with up to 16 pending damage rectangles
// (~25 KiB), the task list of a sweep. Measured: ~2 KiB in use on the
// watch with home (`used` of `userlib::heap::stats`).
#[cfg(not(test))]
userlib::entry!(main, heap = 96 * 1024);

/// Badge of the compositor's own input threads on its endpoint.
const INPUT_BADGE: u64 = u64::MAX;
/// Labels the input threads use (outside the client protocol's range).
const INPUT_KEYS: u16 = 0x100;
const INPUT_TOUCH: u16 = 0x101;
/// Events kept per client before the oldest are dropped.
const QUEUE: usize = 64;
/// Most clients.
const MAX_CLIENTS: usize = 32;
/// Most clients of one task's own (`userlib::proto::NS_LOOKUP_CLIENT`:
/// the bus's remote devices) at a time.
const MAX_TASK_CLIENTS: usize = 8;
/// Pages of one buffer window (the largest surface).
const WINDOW_PAGES: u64 = pages_for(proto::MAX_SIDE as u64 * proto::MAX_SIDE as u64 * 4);
/// A frame is composed at the latest this long after the first damage.
const FRAME_US: u64 = 16_000;
/// How often dead clients are looked for.
const SWEEP_US: u64 = 1_000_000;

/// Address windows owned buffers are mapped at, reused (so are the page tables
/// under them).
static WINDOWS: userlib::sync::Mutex<Vec<u64>> = userlib::sync::Mutex::new(Vec::new());

fn take_window() -> u64 {
    WINDOWS.lock().pop().unwrap_or_else(|| reserve(WINDOW_PAGES))
}

/// Bytes of all owned buffers ([`proto::BUFFER`]) now.
static OWNED_BYTES: AtomicU64 = AtomicU64::new(0);

/// A client's buffer, never mapped here: composed by reading it with
/// `MemoryRead` ([`compose::Object`]), so a client that revokes it makes a
/// read fail, never the compositor fault. Or an owned buffer
/// ([`proto::BUFFER`]): the compositor's own memory, mapped read-write in
/// a window. Dropping it unmaps it and lets go of the memory.
struct Shm {
    /// An owned buffer's mapping and the window it is in.
    map: Option<(Mapping, u64)>,
    mem: compose::Object,
    w: i32,
    h: i32,
    stride: usize,
    tag: u64,
    /// Owned: its bytes (counted in [`OWNED_BYTES`]).
    owned: u64,
}

impl Buffer for Shm {
    fn size(&self) -> (i32, i32) {
        (self.w, self.h)
    }
    fn tag(&self) -> u64 {
        self.tag
    }
    fn centered(&self) -> bool {
        self.owned > 0
    }
}

impl Shm {
    /// Still there (the client has not revoked it nor died)?
    fn alive(&self) -> bool {
        syscall::cap_info(self.mem.0).is_ok()
    }

    /// Its pixels: an owned buffer's mapped bytes, a client's read as
    /// they are composed (`h` rows of `stride` bytes: `map_buffer` checked
    /// the object holds them).
    fn pixels(&self) -> Pixels<'_> {
        match &self.map {
            Some((m, _)) => Pixels::Mapped(m.as_slice()),
            None => Pixels::Read(&self.mem, self.stride * self.h as usize),
        }
    }

    /// An owned buffer's bytes (a client's: none).
    fn bytes_mut(&mut self) -> &mut [u8] {
        match self.map.as_mut() {
            Some((m, _)) if self.owned > 0 => m.as_mut_slice(),
            _ => &mut [],
        }
    }
}

impl Drop for Shm {
    fn drop(&mut self) {
        if let Some((m, window)) = self.map.take() {
            drop(m);
            WINDOWS.lock().push(window);
        }
        let _ = syscall::cap_delete(self.mem.0);
        OWNED_BYTES.fetch_sub(self.owned, Ordering::Relaxed);
    }
}

struct Client {
    notification: Option<Handle>,
    role: u64,
    /// The control center's task (`panel=`): told when the panel opens
    /// and closes, and may close it. Home's task too where the profile
    /// names the same program for both (the watch: home draws the panel
    /// in its own window).
    panel: bool,
    events: VecDeque<Event>,
    dropped: u64,
    name: String,
    /// Its task's restarts when it first called: a task restarted keeps
    /// its id (the badge), so this tells its incarnations apart.
    restarts: u64,
}

struct Compositor {
    scene: Scene<Shm>,
    clients: BTreeMap<u64, Client>,
    fb: Mapping,
    info: display::Info,
    display: Display,
    roles: [(u64, String); 3],
    density: u32,
    gestures: Gestures,
    touch: Option<Decoder>,
    /// Who holds the current touch (got its down).
    grab: Option<(u64, u16, i32, i32)>,
    /// Surfaces committed since the last frame (they get `EV_FRAME`).
    frame_waiters: Vec<(u64, u16)>,
    frames: u64,
    /// Most bytes of all owned buffers together (`owned=` KiB; 0: none).
    owned_budget: u64,
}

fn arg<'a>(args: &'a str, key: &str) -> Option<&'a str> {
    args.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn main(_: &userlib::abi::boot_info::StartInfo) -> Result<(), Error> {
    let args = process().args();
    let mut display = Display::new();
    let (fb, info) = loop {
        match display.map() {
            Ok(m) => break m,
            Err(e) => {
                log::warn!("display not ready ({e:?}); retrying");
                syscall::sleep_ms(200);
            }
        }
    };
    let (w, h) = (info.width as i32, info.height as i32);
    // No status bar in the profile (the watch): no strip kept for one.
    let has_bar = arg(args, "bar").is_some_and(|b| !b.is_empty());
    let bar = arg(args, "bar_height")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if has_bar { (h / 24).clamp(24, 64) } else { 0 });
    let density = arg(args, "density")
        .and_then(|v| v.parse().ok())
        .unwrap_or((info.width / 7).max(20));
    let role = |k: &str, r: u64| (r, String::from(arg(args, k).unwrap_or("")));
    let mut c = Compositor {
        scene: Scene::new(w, h, bar),
        clients: BTreeMap::new(),
        fb,
        info,
        display,
        roles: [
            role("bar", proto::ROLE_BAR),
            role("home", proto::ROLE_HOME),
            role("panel", proto::ROLE_PANEL),
        ],
        density,
        gestures: Gestures::new(h, (h / 40).max(12)),
        touch: None,
        grab: None,
        frame_waiters: Vec::new(),
        frames: 0,
        owned_budget: arg(args, "owned").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * 1024,
    };

    let me = process();
    let ep = syscall::create(me.pool, ObjectType::Endpoint, 0)?;
    // The handles own the threads' stacks: kept for the task's life.
    let mut _readers = Vec::new();
    for (service, label) in [("keyboard", INPUT_KEYS), ("touch", INPUT_TOUCH)] {
        // An input service not routed to the compositor never will be: no
        // thread (and no stack) waits for it (the watch has no keyboard).
        match names::lookup(service) {
            Err(Error::NoRights) => {
                log::info!("`{service}` is not routed here: not read");
                continue;
            }
            Ok(h) => {
                let _ = syscall::cap_delete(h);
            }
            Err(_) => {}
        }
        let own = syscall::cap_mint(ep, Rights::SEND, INPUT_BADGE)?;
        _readers.push(
            thread::Builder::default()
                .stack_pages(4)
                .spawn(move || input_thread(service, label, own))?,
        );
    }
    names::register(proto::NAME, ep)?;
    log::info!("{w}x{h}, bar {bar} px; serving `{}`", proto::NAME);
    c.frame();

    let mut pending: Option<(Message, u64)> = None;
    let mut first_damage: Option<u64> = None;
    let mut last_sweep = syscall::now_us();
    loop {
        // Take the next request: without waiting while a frame is due,
        // else until the next sweep.
        let next = match pending.take() {
            Some(p) => Ok(p),
            None => {
                let now = syscall::now_us();
                let timeout = if !c.scene.damage.is_empty() {
                    Timeout::NonBlocking
                } else {
                    Timeout::Micros((last_sweep + SWEEP_US).saturating_sub(now).max(1000))
                };
                syscall::recv(ep, timeout)
            }
        };
        match next {
            Ok((mut msg, badge)) => {
                let reply = c.handle(&mut msg, badge);
                // Capabilities `handle` did not take must not fill the
                // cspace (a client can send some with any request).
                userlib::server::drop_caps(&mut msg);
                let reply = match reply {
                    Ok(r) => r,
                    Err(e) => reply_error(e),
                };
                // Reply and take the next request in one call; a caller
                // that died meanwhile costs nothing.
                if !c.scene.damage.is_empty() {
                    let now = syscall::now_us();
                    let since = *first_damage.get_or_insert(now);
                    if now - since >= FRAME_US {
                        let _ = syscall::reply(&reply);
                        c.frame();
                        first_damage = None;
                        continue;
                    }
                }
                match syscall::reply_recv(ep, &reply, Timeout::NonBlocking) {
                    Ok(p) => pending = Some(p),
                    Err(_) => {
                        if !c.scene.damage.is_empty() {
                            c.frame();
                            first_damage = None;
                        }
                    }
                }
            }
            Err(_) => {
                if !c.scene.damage.is_empty() {
                    c.frame();
                    first_damage = None;
                }
            }
        }
        if syscall::now_us() - last_sweep >= SWEEP_US {
            c.sweep();
            last_sweep = syscall::now_us();
        }
    }
}

/// Reads one input service forever and hands its events to the main
/// thread (a call on the compositor's own endpoint).
fn input_thread(service: &'static str, label: u16, own: Handle) {
    let mut dev = Input::new(service);
    let mut buf = [input::Event::default(); input::MAX_EVENTS];
    // Touch devices first tell their axis ranges.
    if label == INPUT_TOUCH {
        loop {
            match dev.info() {
                Ok(i) if i.kind == Kind::Touch => {
                    let m = Message::with_words(
                        INPUT_TOUCH,
                        &[0, i.x.0 as u64, i.x.1 as u64, i.y.0 as u64, i.y.1 as u64],
                    );
                    let _ = syscall::call(own, &m);
                    break;
                }
                _ => syscall::sleep_ms(1000),
            }
        }
    }
    loop {
        match dev.read(&mut buf, Timeout::Forever) {
            Ok((events, _)) => {
                let mut m = Message::new(label);
                m.push(1);
                for e in events {
                    m.push(e.to_word());
                }
                let _ = syscall::call(own, &m);
            }
            Err(_) => syscall::sleep_ms(500),
        }
    }
}

impl Compositor {
    /// One request. It takes the capabilities it keeps out of `msg`; the
    /// loop deletes the rest.
    fn handle(&mut self, msg: &mut Message, badge: u64) -> Result<Message, Error> {
        if badge == INPUT_BADGE {
            self.input(msg);
            return Ok(Message::new(OK));
        }
        // A new client, or a known one connecting again that is a restarted
        // task's new incarnation (the badge of the old, another restart
        // count: one call to init, so a flood of CONNECTs costs no sweep
        // each): the dead go first, their surfaces and an open panel with
        // them.
        let restarted = || {
            let known = self.clients.get(&badge).map(|c| c.restarts);
            known.is_some_and(|r| task_info(badge).is_none_or(|(_, now)| now != r))
        };
        // The client is done (a task's client of its own: the bus's for a
        // device that left): as if its task died. Never a new client.
        if msg.label == userlib::proto::BYE {
            if self.clients.contains_key(&badge) {
                let c = &self.clients[&badge];
                log::info!(
                    "client {} (task {}, its client {}) said bye; removing its surfaces",
                    c.name,
                    userlib::proto::task_of(badge),
                    userlib::proto::client_of(badge)
                );
                self.forget(&[badge]);
            }
            return Ok(Message::new(OK));
        }
        if !self.clients.contains_key(&badge) || (msg.label == proto::CONNECT && restarted()) {
            self.sweep();
        }
        if !self.clients.contains_key(&badge) {
            if self.clients.len() >= MAX_CLIENTS {
                return Err(Error::InvalidState);
            }
            // A task's clients of its own (the bus's remote devices) are
            // bounded per task: one task cannot take every slot.
            let task = userlib::proto::task_of(badge);
            if userlib::proto::client_of(badge) != 0
                && self
                    .clients
                    .keys()
                    .filter(|b| userlib::proto::task_of(**b) == task && **b != task)
                    .count()
                    >= MAX_TASK_CLIENTS
            {
                return Err(Error::InvalidState);
            }
            let (name, restarts) = task_info(badge).unwrap_or_default();
            let role = self
                .roles
                .iter()
                .find(|(_, n)| !n.is_empty() && *n == name)
                .map(|(r, _)| *r)
                .unwrap_or(proto::ROLE_APP);
            let panel = !name.is_empty() && self.roles.iter().any(|(r, n)| *r == proto::ROLE_PANEL && *n == name);
            log::info!(
                "client {name} (task {task}{}) role {role}{}",
                match userlib::proto::client_of(badge) {
                    0 => String::new(),
                    n => alloc::format!(", its client {n}"),
                },
                if panel { ", panel" } else { "" }
            );
            self.clients.insert(
                badge,
                Client {
                    notification: None,
                    role,
                    panel,
                    events: VecDeque::new(),
                    dropped: 0,
                    name,
                    restarts,
                },
            );
        }
        let role = self.clients[&badge].role;
        // The one capability a request may bring (a notification or a
        // buffer): this request's to keep or delete from here on.
        let cap = match msg.label {
            proto::CONNECT | proto::ATTACH | proto::WRITE => msg.take_cap(0),
            _ => None,
        };
        let msg = &*msg;
        let w = |i: usize| msg.word(i);
        match msg.label {
            proto::INFO => {
                let a = self.scene.area(role);
                let i = Info {
                    width: self.info.width,
                    height: self.info.height,
                    role,
                    area: (a.x as u32, a.y as u32, a.w as u32, a.h as u32),
                    density: self.density,
                };
                Ok(Message::with_words(OK, &i.to_words()))
            }
            proto::CONNECT => {
                let n = cap.ok_or(Error::InvalidArgument)?;
                let ok = syscall::cap_info(n)
                    .map(|i| i.object == Some(ObjectType::Notification))
                    .unwrap_or(false);
                if !ok {
                    let _ = syscall::cap_delete(n);
                    return Err(Error::InvalidArgument);
                }
                let c = self.clients.get_mut(&badge).expect("inserted above");
                if let Some(old) = c.notification.replace(n) {
                    let _ = syscall::cap_delete(old);
                }
                Ok(Message::new(OK))
            }
            proto::CREATE => {
                let alpha = w(2) & proto::FLAG_ALPHA != 0;
                let id = self.scene.create(badge, role, alpha)?;
                Ok(Message::with_words(OK, &[id as u64]))
            }
            proto::ATTACH => {
                let mem = cap.ok_or(Error::InvalidArgument)?;
                match self.map_buffer(mem, w(1), w(2), w(3), w(4)) {
                    Ok(shm) => match self.scene.attach(badge, w(0), shm) {
                        Ok(old) => {
                            drop(old);
                            Ok(Message::new(OK))
                        }
                        Err(e) => Err(e),
                    },
                    Err(e) => {
                        let _ = syscall::cap_delete(mem);
                        Err(e)
                    }
                }
            }
            proto::DAMAGE => {
                let g = |i: usize| i32::try_from(w(i)).map_err(|_| Error::InvalidArgument);
                self.scene
                    .add_damage(badge, w(0), Rect::new(g(1)?, g(2)?, g(3)?, g(4)?))?;
                Ok(Message::new(OK))
            }
            proto::BUFFER => {
                let shm = self.owned_buffer(w(1), w(2))?;
                let old = self.scene.attach(badge, w(0), shm)?;
                drop(old);
                Ok(Message::new(OK))
            }
            proto::WRITE => {
                let mem = cap.ok_or(Error::InvalidArgument)?;
                let r = self.write(badge, msg, mem);
                let _ = syscall::cap_delete(mem);
                r.map(|()| Message::new(OK))
            }
            proto::COMMIT => {
                // The first commit of an owned buffer brings its app forward.
                let opens = self.scene.pending(badge, w(0)).is_some_and(|b| b.owned > 0);
                let retired = self.scene.commit(badge, w(0))?;
                if let Some(old) = retired {
                    let ev = Event {
                        kind: proto::EV_RELEASE,
                        surface: w(0) as u16,
                        payload: old.tag,
                    };
                    drop(old);
                    self.push_event(badge, ev);
                }
                if !self.frame_waiters.contains(&(badge, w(0) as u16)) {
                    self.frame_waiters.push((badge, w(0) as u16));
                }
                if opens && role == proto::ROLE_APP && self.scene.active_app != Some(badge) {
                    let name = &self.clients[&badge].name;
                    log::info!("showing {name}'s surface {} (owned buffer: a projection)", w(0));
                    self.show_app(Some(badge));
                }
                Ok(Message::new(OK))
            }
            proto::DESTROY => {
                let s = self.scene.destroy(badge, w(0))?;
                drop(s);
                Ok(Message::new(OK))
            }
            proto::EVENTS => {
                let c = self.clients.get_mut(&badge).expect("inserted above");
                let n = c.events.len().min(proto::MAX_EVENTS);
                let reply = proto::pack_events(c.events.drain(..n), c.dropped);
                if !c.events.is_empty() {
                    signal(c);
                }
                Ok(reply)
            }
            proto::ACTIVATE if role == proto::ROLE_HOME => {
                let mut buf = [0u8; userlib::proto::TEXT_BYTES];
                let name = userlib::ipc::unpack_text(msg, &mut buf);
                let (owner, panel) = self
                    .clients
                    .iter()
                    .find(|(_, c)| c.name == name && (c.role == proto::ROLE_APP || c.panel))
                    .map(|(id, c)| (*id, c.panel))
                    .ok_or(Error::InvalidArgument)?;
                if panel {
                    self.set_panel(true);
                } else {
                    self.show_app(Some(owner));
                }
                Ok(Message::new(OK))
            }
            proto::HIDE if self.clients[&badge].panel => {
                self.set_panel(false);
                Ok(Message::new(OK))
            }
            _ => Err(Error::InvalidArgument),
        }
    }

    /// A new owned `w` x `h` buffer (black), within the `owned=` budget.
    fn owned_buffer(&mut self, w: u64, h: u64) -> Result<Shm, Error> {
        let max = proto::MAX_SIDE as u64;
        if !(1..=max).contains(&w) || !(1..=max).contains(&h) {
            return Err(Error::InvalidArgument);
        }
        if self.owned_budget == 0 {
            return Err(Error::NotSupported);
        }
        let bytes = w * h * 4;
        if OWNED_BYTES.load(Ordering::Relaxed) + bytes > self.owned_budget {
            return Err(Error::OutOfMemory);
        }
        let pages = pages_for(bytes);
        let mem = syscall::create(process().pool, ObjectType::Memory, pages)?;
        let window = take_window();
        match Mapping::map_at(mem, pages, Rights::READ | Rights::WRITE, window) {
            Ok(m) => {
                OWNED_BYTES.fetch_add(bytes, Ordering::Relaxed);
                Ok(Shm {
                    map: Some((m, window)),
                    mem: compose::Object(mem),
                    w: w as i32,
                    h: h as i32,
                    stride: (w * 4) as usize,
                    tag: 0,
                    owned: bytes,
                })
            }
            Err(e) => {
                let _ = syscall::cap_delete(mem);
                WINDOWS.lock().push(window);
                Err(e)
            }
        }
    }

    /// [`proto::WRITE`]: `msg`'s rectangle of pixels, from `mem`, into the
    /// surface's owned buffer; the rectangle becomes pending damage.
    fn write(&mut self, owner: u64, msg: &Message, mem: Handle) -> Result<(), Error> {
        let w = |i: usize| msg.word(i);
        let (x, y, rw, rh, stride) = (w(1), w(2), w(3), w(4), w(5));
        let max = proto::MAX_SIDE as u64;
        if !(1..=max).contains(&rw) || !(1..=max).contains(&rh) || stride < rw * 4 || stride > max * 4 {
            return Err(Error::InvalidArgument);
        }
        let need = stride * (rh - 1) + rw * 4;
        // A capability already revoked is refused as any wrong one is (a
        // `BadHandle` would read as the compositor gone to `Client::call`).
        let ci = syscall::cap_info(mem).map_err(|_| Error::InvalidArgument)?;
        if ci.object != Some(ObjectType::Memory) || ci.size < need || !ci.rights.contains(Rights::READ | Rights::MAP) {
            return Err(Error::InvalidArgument);
        }
        let buf = self.scene.target_mut(owner, w(0))?;
        if buf.owned == 0 {
            return Err(Error::InvalidArgument);
        }
        let size = (buf.w as u32, buf.h as u32);
        // Read with `MemoryRead`, not mapped: a revoke meanwhile fails the
        // copy, never faults the compositor.
        let src = compose::Object(mem);
        let done = compose::write_rect(
            buf.bytes_mut(),
            size,
            (x, y, rw, rh),
            Pixels::Read(&src, ci.size as usize),
            stride,
        );
        let r = done.ok_or(Error::InvalidArgument)?;
        self.scene.add_damage(owner, w(0), r)
    }

    /// A client's memory as a `w` x `h` buffer (not mapped: read as it is
    /// composed).
    fn map_buffer(&mut self, mem: Handle, w: u64, h: u64, stride: u64, tag: u64) -> Result<Shm, Error> {
        let max = proto::MAX_SIDE as u64;
        if !(1..=max).contains(&w) || !(1..=max).contains(&h) || stride < w * 4 || stride > max * 4 {
            return Err(Error::InvalidArgument);
        }
        let need = stride * h;
        // A capability already revoked is refused as any wrong one is (a
        // `BadHandle` would read as the compositor gone to `Client::call`).
        let ci = syscall::cap_info(mem).map_err(|_| Error::InvalidArgument)?;
        if ci.object != Some(ObjectType::Memory) || ci.size < need || !ci.rights.contains(Rights::READ | Rights::MAP) {
            return Err(Error::InvalidArgument);
        }
        Ok(Shm {
            map: None,
            mem: compose::Object(mem),
            w: w as i32,
            h: h as i32,
            stride: stride as usize,
            tag,
            owned: 0,
        })
    }

    fn push_event(&mut self, owner: u64, e: Event) {
        if let Some(c) = self.clients.get_mut(&owner) {
            if c.events.len() >= QUEUE {
                c.events.pop_front();
                c.dropped += 1;
            }
            c.events.push_back(e);
            signal(c);
        }
    }

    fn show_app(&mut self, owner: Option<u64>) {
        let before = self.scene.active_app;
        self.scene.activate(owner);
        self.set_panel(false);
        for (o, shown) in [(before, 0), (owner, 1)] {
            if let Some(o) = o.filter(|_| before != owner) {
                self.push_event(
                    o,
                    Event {
                        kind: proto::EV_SHOWN,
                        surface: 0,
                        payload: shown,
                    },
                );
            }
        }
    }

    fn set_panel(&mut self, open: bool) {
        if self.scene.panel_open != open {
            // Home drawing the panel (the watch): home is what shows it.
            if open && self.clients.values().any(|c| c.panel && c.role == proto::ROLE_HOME) {
                self.show_app(None);
            }
            self.scene.set_panel(open);
            let owners: Vec<u64> = self.clients.iter().filter(|(_, c)| c.panel).map(|(o, _)| *o).collect();
            for o in owners {
                self.push_event(
                    o,
                    Event {
                        kind: proto::EV_SHOWN,
                        surface: 0,
                        payload: open as u64,
                    },
                );
            }
        }
    }

    fn input(&mut self, msg: &Message) {
        if msg.label == INPUT_TOUCH && msg.word(0) == 0 {
            let r = |i: usize| msg.word(i) as u32;
            self.touch = Some(Decoder::new(
                (r(1), r(2)),
                (r(3), r(4)),
                self.info.width,
                self.info.height,
            ));
            return;
        }
        for word in msg.words().iter().skip(1) {
            let e = input::Event::from_word(*word);
            if msg.label == INPUT_KEYS {
                self.key(e);
            } else if let Some(t) = self.touch.as_mut().and_then(|d| d.feed(e)) {
                let a = self.gestures.feed(t);
                self.touch_action(a);
            }
        }
    }

    fn key(&mut self, e: input::Event) {
        if e.kind != input::EV_KEY {
            return;
        }
        const KEY_F1: u16 = 59;
        match (e.code, e.value) {
            (KEY_F1, 1) => return self.set_panel(true),
            (input::KEY_ESC, 1) if self.scene.panel_open => return self.set_panel(false),
            (input::KEY_ESC, 1) if self.scene.active_app.is_some() => return self.show_app(None),
            _ => {}
        }
        if let Some((owner, id)) = self.scene.focus() {
            let ev = Event {
                kind: proto::EV_KEY,
                surface: id,
                payload: e.code as u64 | (e.value as u32 as u64) << 32,
            };
            self.push_event(owner, ev);
        }
    }

    fn touch_action(&mut self, a: Action) {
        match a {
            Action::OpenPanel => self.set_panel(true),
            Action::GoHome => self.show_app(None),
            Action::Tap(x, y) => {
                self.touch_action(Action::Deliver(Touch::Down(x, y)));
                self.touch_action(Action::Deliver(Touch::Up(x, y)));
            }
            Action::Deliver(t) => {
                let (kind, x, y) = match t {
                    Touch::Down(x, y) => {
                        self.grab = self.scene.hit(x, y);
                        (proto::EV_TOUCH_DOWN, x, y)
                    }
                    Touch::Move(x, y) => (proto::EV_TOUCH_MOVE, x, y),
                    Touch::Up(x, y) => (proto::EV_TOUCH_UP, x, y),
                };
                if let Some((owner, id, _, _)) = self.grab {
                    let origin = self
                        .scene
                        .visible()
                        .iter()
                        .find(|(s, _)| s.owner == owner && s.id == id)
                        .map(|(_, r)| (r.x, r.y));
                    if let Some((ox, oy)) = origin {
                        self.push_event(owner, Event::touch(kind, id, x - ox, y - oy));
                    }
                }
                if matches!(t, Touch::Up(..)) {
                    self.grab = None;
                }
            }
            Action::None => {}
        }
    }

    /// Composes and flushes the damaged rectangles; tells the surfaces
    /// committed since the last frame that it is done.
    fn frame(&mut self) {
        // Buffers revoked (or whose client died) leave the screen first.
        let dead: Vec<(u64, u16)> = self
            .scene
            .visible()
            .iter()
            .filter(|(s, _)| !s.current.as_ref().is_some_and(Shm::alive))
            .map(|(s, _)| (s.owner, s.id))
            .collect();
        for (owner, id) in dead {
            let b = self.scene.drop_current(owner, id);
            drop(b);
        }
        let rects = self.scene.damage.take();
        if rects.is_empty() {
            return;
        }
        let failed = if self.info.is_band() {
            self.compose_bands(&rects)
        } else {
            self.compose_frame(&rects)
        };
        if let Some((owner, id)) = failed {
            // A buffer that could not be read (revoked while it was
            // composed) leaves the screen as a dead client's does; the
            // frame's damage waits again, and the main loop composes it
            // at once without that buffer (the frame was not flushed, or,
            // in bands, only its bands above were put).
            drop(self.scene.drop_current(owner, id));
            for r in rects {
                self.scene.damage.add(r);
            }
            return;
        }
        self.frames += 1;
        for (owner, id) in core::mem::take(&mut self.frame_waiters) {
            self.push_event(
                owner,
                Event {
                    kind: proto::EV_FRAME,
                    surface: id,
                    payload: self.frames,
                },
            );
        }
    }

    /// A frame into a framebuffer of the whole screen: the damaged
    /// rectangles composed, then flushed. A surface whose buffer could
    /// not be read stops it, unflushed.
    fn compose_frame(&mut self, rects: &[Rect]) -> Option<(u64, u16)> {
        let (layers, owners) = layers(&self.scene, 0);
        let mut t = Target {
            buf: self.fb.as_mut_slice(),
            stride: self.info.stride as usize,
            width: self.info.width as i32,
            height: self.info.height as i32,
        };
        for r in rects {
            if let Err(i) = compose::compose(&mut t, &layers, *r) {
                return Some(owners[i]);
            }
        }
        // Only the damaged rectangles go to the device (they lie inside
        // the screen: `Damage` clips them).
        if let Err(e) = self.display.flush_all(&display_rects(rects)) {
            log::warn!("flush failed: {e:?}");
        }
        None
    }

    /// A frame when the framebuffer is a band (the display keeps the
    /// picture): composed and put on the screen band by band, each band's
    /// part of the damage, with the band as the target's rows 0.. (the
    /// layers and the damage moved up by the band's top row). A surface
    /// whose buffer could not be read stops it before that band is put.
    fn compose_bands(&mut self, rects: &[Rect]) -> Option<(u64, u16)> {
        let (width, height) = (self.info.width as i32, self.info.height as i32);
        let band = self.info.rows as i32;
        for top in (0..height).step_by(band as usize) {
            let rows = Rect::new(0, top, width, band.min(height - top));
            let parts: Vec<Rect> = rects
                .iter()
                .map(|r| r.intersect(&rows))
                .filter(|r| !r.is_empty())
                .collect();
            if parts.is_empty() {
                continue;
            }
            let (layers, owners) = layers(&self.scene, top);
            let mut t = Target {
                buf: self.fb.as_mut_slice(),
                stride: self.info.stride as usize,
                width,
                height: rows.h,
            };
            for r in &parts {
                if let Err(i) = compose::compose(&mut t, &layers, r.offset(0, -top)) {
                    return Some(owners[i]);
                }
            }
            if let Err(e) = self.display.put(top as u32, &display_rects(&parts)) {
                log::warn!("flush failed: {e:?}");
                return None;
            }
        }
        None
    }

    /// Forgets clients whose task is gone (their surfaces leave the screen),
    /// the task's clients of its own with it.
    fn sweep(&mut self) {
        let Ok(tasks) = supervisor::tasks() else { return };
        let alive = |id: u64, c: &Client| {
            let task = userlib::proto::task_of(id);
            tasks
                .iter()
                .any(|t| t.id == task && t.state == userlib::proto::TaskState::Running && t.restarts == c.restarts)
        };
        let dead: Vec<u64> = self
            .clients
            .iter()
            .filter(|(id, c)| !alive(**id, c))
            .map(|(id, _)| *id)
            .collect();
        for id in &dead {
            log::info!(
                "client task {} is gone; removing its surfaces",
                userlib::proto::task_of(*id)
            );
        }
        self.forget(&dead);
    }

    /// Forgets clients `ids`: their surfaces leave the screen.
    fn forget(&mut self, ids: &[u64]) {
        let mut panel_gone = false;
        for &id in ids {
            drop(self.scene.remove_owner(id));
            if let Some(c) = self.clients.remove(&id) {
                panel_gone |= c.panel;
                if let Some(n) = c.notification {
                    let _ = syscall::cap_delete(n);
                }
            }
        }
        // The panel's task died with it open: it closes (a new incarnation
        // starts with it closed, and is told so).
        if panel_gone {
            self.set_panel(false);
        }
    }
}

/// The visible surfaces' layers, moved up by `top` rows, each with
/// its surface.
fn layers(scene: &Scene<Shm>, top: i32) -> (Vec<Layer<'_>>, Vec<(u64, u16)>) {
    scene
        .visible()
        .into_iter()
        .filter_map(|(s, r)| {
            let b = s.current.as_ref()?;
            let l = Layer::new(r.offset(0, -top), b.pixels(), b.stride, !s.alpha)?;
            Some((l, (s.owner, s.id)))
        })
        .unzip()
}

/// `rects` (inside the screen) as the display's.
fn display_rects(rects: &[Rect]) -> Vec<display::Rect> {
    rects
        .iter()
        .map(|r| display::Rect {
            x: r.x as u32,
            y: r.y as u32,
            w: r.w as u32,
            h: r.h as u32,
        })
        .collect()
}

fn signal(c: &Client) {
    if let Some(n) = c.notification {
        let _ = syscall::signal(n, proto::EVENT_BIT);
    }
}

/// The program name and restarts of the task badge `badge` names.
fn task_info(badge: u64) -> Option<(String, u64)> {
    supervisor::task(userlib::proto::task_of(badge))
        .ok()
        .map(|t| (t.name, t.restarts))
}
