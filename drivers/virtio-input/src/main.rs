//! virtio-input: one task per input device (keyboard, tablet, mouse) on
//! virtio-mmio.
//!
//! At start it reads the device's name and event bitmaps, decides what it
//! is ([`events::classify`]) and registers the service of that kind
//! (`keyboard`, `touch`, `mouse`, `input`; `keyboard1`... for the second
//! of a kind). The first thread then waits on the device's interrupt,
//! acknowledges it and moves the device's events into a bounded queue
//! ([`events::Ring`]), waking the readers; [`READERS`] server threads
//! answer `INFO` and `READ` (protocol: `userlib::services::input`), so a
//! `READ` blocked waiting for events does not hold up the others.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
// On the host only the pure parts are tested; the rest goes unused there.
#![cfg_attr(test, allow(dead_code, unused_imports))]

extern crate alloc;

mod events;

use alloc::string::String;
use alloc::vec::Vec;
use driverkit::virtio::{self, virtio_drivers, KitHal};
use driverkit::{log, names, Device, DeviceError, Error, Handle, Message, Timeout};
use events::Ring;
use userlib::abi::ObjectType;
use userlib::proto::reply_error;
use userlib::services::input::{
    self, pack_events, service_name, Event, Info, Kind, ABS_X, ABS_Y, EV_ABS, EV_KEY, EV_REL, FOREVER, MAX_EVENTS,
};
use userlib::sync::Mutex;
use userlib::{process, syscall, thread};
use virtio_drivers::device::input::VirtIOInput;

#[cfg(not(test))]
userlib::entry!(main, heap = 16 * 1024);

/// Server threads: each can sit in one blocking `READ`.
const READERS: usize = 2;
/// Service names tried per kind (`keyboard` .. `keyboard7`).
const MAX_OF_A_KIND: usize = 8;

/// Events between the interrupt thread and the readers.
static RING: Mutex<Ring> = Mutex::new(Ring::new());

type Input = VirtIOInput<KitHal, virtio_drivers::transport::mmio::MmioTransport<'static>>;

/// What the device is, as `INFO` tells it.
fn identify(dev: &mut Input) -> Result<Info, DeviceError> {
    // QEMU's names end in a NUL (counted in the config field's size).
    let name = dev
        .name()
        .map(|n| String::from(n.trim_end_matches(['\0', ' '])))
        .unwrap_or_else(|_| String::from("?"));
    let keys = dev.ev_bits(EV_KEY as u8)?;
    let abs = dev.ev_bits(EV_ABS as u8)?;
    let rel = dev.ev_bits(EV_REL as u8)?;
    let kind = events::classify(&keys, &abs, &rel);
    let range = |dev: &mut Input, axis: u16| dev.abs_info(axis as u8).map(|a| (a.min, a.max)).unwrap_or((0, 0));
    let (x, y) = if kind == Kind::Touch {
        (range(dev, ABS_X), range(dev, ABS_Y))
    } else {
        ((0, 0), (0, 0))
    };
    Ok(Info {
        kind,
        x,
        y,
        dropped: 0,
        name,
    })
}

/// Registers `ep` under the first free name of `kind`.
fn register(kind: Kind, ep: Handle) -> Result<String, Error> {
    let mut last = Error::InvalidState;
    for i in 0..MAX_OF_A_KIND {
        let name = service_name(kind, i);
        match names::register(&name, ep) {
            Ok(()) => return Ok(name),
            // Taken (by another device of this kind): the next number.
            Err(e @ Error::InvalidState) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

fn main(_: &userlib::abi::boot_info::StartInfo) -> Result<(), DeviceError> {
    let device = Device::get()?;
    let (transport, _registers) = virtio::transport(&device)?;
    let mut dev: Input = VirtIOInput::new(transport)?;
    let info = identify(&mut dev)?;
    let irq = device.interrupt(0)?;
    let me = process();
    let ep = syscall::create(me.pool, ObjectType::Endpoint, 0)?;

    let mut readers = Vec::new();
    let mut wakes = Vec::new();
    for _ in 0..READERS {
        let wake = syscall::create(me.pool, ObjectType::Notification, 0)?;
        let info = info.clone();
        let t = thread::Builder::default()
            .stack_pages(2)
            .spawn(move || serve_requests(ep, wake, info))?;
        readers.push(t);
        wakes.push(wake);
    }
    let service = register(info.kind, ep)?;
    log::info!(
        "{}: \"{}\" is a {:?} device{}; serving `{service}`",
        device.node(),
        info.name,
        info.kind,
        if info.kind == Kind::Touch {
            alloc::format!(" (x {}..={}, y {}..={})", info.x.0, info.x.1, info.y.0, info.y.1)
        } else {
            String::new()
        }
    );

    // The interrupt thread: events the device already holds, then one
    // batch per interrupt. The device's interrupt status is cleared before
    // the line is unmasked, so an event after the drain interrupts again.
    loop {
        drain(&mut dev, &wakes);
        irq.wait(Timeout::Forever)?;
        dev.ack_interrupt();
        drain(&mut dev, &wakes);
        irq.ack()?;
    }
}

/// Moves the device's pending events into the queue and wakes the readers.
fn drain(dev: &mut Input, wakes: &[Handle]) {
    let mut moved = 0;
    {
        let mut ring = RING.lock();
        while let Some(e) = dev.pop_pending_event() {
            ring.push(Event {
                kind: e.event_type,
                code: e.code,
                value: e.value as i32,
            });
            moved += 1;
        }
    }
    if moved > 0 {
        for w in wakes {
            let _ = syscall::signal(*w, 1);
        }
    }
}

/// A server thread: `wake` is its own notification, which the interrupt
/// thread signals when events arrive.
///
/// A `READ` takes events out of the queue only once its reply went: a
/// reader that died while its `READ` waited (a compositor that crashed and
/// was restarted) gets nothing, and the events stay for the next reader.
/// Taken as soon as they were packed, they went to the dead caller and were
/// lost: a restarted compositor missed the first tap.
fn serve_requests(ep: Handle, wake: Handle, info: Info) {
    let mut next = syscall::recv(ep, Timeout::Forever);
    loop {
        let mut msg = match next {
            Ok((msg, _badge)) => msg,
            Err(e) => return log::error!("server thread: {e}"),
        };
        let reply = match msg.label {
            input::INFO => Some(
                Info {
                    dropped: RING.lock().dropped(),
                    ..info.clone()
                }
                .to_message(),
            ),
            input::READ => read(msg.word(0), msg.word(1), wake),
            _ => Some(reply_error(Error::InvalidArgument)),
        };
        // A request's capabilities are none of this driver's business.
        userlib::server::drop_caps(&mut msg);
        next = match reply {
            Some(r) => syscall::reply_recv(ep, &r, Timeout::Forever),
            None => syscall::recv(ep, Timeout::Forever),
        };
    }
}

/// `READ [max, timeout ms]`: waits for the first event, then replies with
/// the queued ones up to `max` and takes them out of the queue once the
/// reply went (`None`: replied here). A time-out or an error is the reply
/// to send.
fn read(max: u64, timeout_ms: u64, wake: Handle) -> Option<Message> {
    let max = (max as usize).clamp(1, MAX_EVENTS);
    let deadline = (timeout_ms != FOREVER).then(|| syscall::now_us().saturating_add(timeout_ms.saturating_mul(1000)));
    loop {
        {
            // Held across the reply, so that no other reader sends the
            // same events meanwhile.
            let mut ring = RING.lock();
            if !ring.is_empty() {
                let n = ring.len().min(max);
                let m = pack_events((0..n).filter_map(|i| ring.peek(i)), ring.dropped());
                if syscall::reply(&m).is_ok() {
                    for _ in 0..n {
                        ring.pop();
                    }
                }
                return None;
            }
        }
        let timeout = match deadline {
            None => Timeout::Forever,
            Some(d) => match d.checked_sub(syscall::now_us()).filter(|us| *us > 0) {
                Some(us) => Timeout::Micros(us),
                None => return Some(reply_error(Error::TimedOut)),
            },
        };
        // A stale wake-up (events another reader took) just loops.
        match syscall::wait(wake, timeout) {
            Ok(_) | Err(Error::TimedOut) => {}
            Err(e) => return Some(reply_error(e)),
        }
    }
}
