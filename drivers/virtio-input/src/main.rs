//! virtio-input: one task per input device (keyboard, tablet, mouse) on
//! virtio-mmio.
//!
//! At start it reads the device's name and event bitmaps, decides what it
//! is ([`events::classify`]) and registers the service of that kind
//! (`keyboard`, `touch`, `mouse`, `input`; `keyboard1`... for the second
//! of a kind). The first thread then waits on the device's interrupt,
//! acknowledges it and moves the device's events into a bounded queue
//! (`driverkit::input::Ring`), waking the readers; [`READERS`] server
//! threads (`driverkit::input::serve_requests`) answer `INFO` and `READ`
//! (protocol: `userlib::services::input`), so a `READ` blocked waiting for
//! events does not hold up the others.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
// On the host only the pure parts are tested; the rest goes unused there.
#![cfg_attr(test, allow(dead_code, unused_imports))]

extern crate alloc;

mod events;

use alloc::string::String;
use driverkit::input::{self, Ring};
use driverkit::virtio::{self, virtio_drivers, KitHal};
use driverkit::{log, Device, DeviceError, Handle, Timeout};
use userlib::services::input::{Event, Info, Kind, ABS_X, ABS_Y, EV_ABS, EV_KEY, EV_REL};
use userlib::sync::Mutex;
use userlib::syscall;
use virtio_drivers::device::input::VirtIOInput;

#[cfg(not(test))]
userlib::entry!(main, heap = 16 * 1024);

/// Server threads: each can sit in one blocking `READ`.
const READERS: usize = 2;

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

fn main(_: &userlib::abi::boot_info::StartInfo) -> Result<(), DeviceError> {
    let device = Device::get()?;
    let (transport, _registers) = virtio::transport(&device)?;
    let mut dev: Input = VirtIOInput::new(transport)?;
    let info = identify(&mut dev)?;
    let irq = device.interrupt(0)?;
    let (service, wakes) = input::serve(&info, &RING, READERS)?;
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
