//! uart-pl011: the PL011 UART as the `console` service (see
//! `userlib::services::console`).
//!
//! The kernel prints its log on the same UART and writes its transmit
//! register directly, so this driver leaves the line settings (baud rate,
//! format, FIFOs) alone: it only turns the receiver and its interrupts on.
//!
//! Output: the UART that serves `console` is the kernel's log UART, and
//! its output goes through the kernel's console writer (`ConsoleWrite`),
//! the one lock every task's log and the kernel's own lines take. Both
//! the shell's `WRITE`s and this driver's `ConsoleWrite`s are cut after a
//! line end (`userlib::services::console::pieces`,
//! `userlib::console::Writer`), so a shell's line of up to 256 bytes and
//! another task's log line never interleave mid-line.
//! A UART the profile gives another name has this driver as its only
//! writer and is written through its transmit register.
//! An interrupt thread moves received bytes into a ring; `THREADS` server
//! threads receive on the one endpoint, so a `READ` that waits for input
//! does not hold up writers.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code))]

extern crate alloc;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use driverkit::tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use driverkit::{names, Device, DeviceError, Interrupt, Mmio};
use pl011::regs::{Pl011Registers, CR, DR, FR, INT};
use uart_pl011::{console_text, expand_newlines, reader_may_wait, Ring, THREADS};
use userlib::abi::boot_info::StartInfo;
use userlib::abi::ObjectType;
use userlib::ipc::Deadline;
use userlib::proto::{reply_error, OK};
use userlib::services::console::{NAME, READ, WRITE};
use userlib::services::{pack_bytes, unpack_bytes, MAX_BYTES};
use userlib::sync::Mutex;
use userlib::{log, process, syscall, thread, Error, Handle, Message, Timeout};

#[cfg(not(test))]
userlib::entry!(main, heap = 32 * 1024);

/// Input and the readers waiting for it.
struct Rx {
    ring: Ring,
    /// Server threads blocked in a `READ`.
    readers: usize,
}

/// The transmit side: one writer at a time, so messages do not interleave.
enum Tx {
    /// The kernel's console writer, through this task's console capability.
    Kernel(Handle),
    /// This UART's transmit register.
    Direct {
        regs: Mmio<Pl011Registers>,
        /// The last byte sent (for the newline translation).
        last: u8,
    },
}

struct Shared {
    ep: Handle,
    /// Signalled by the interrupt thread when input arrives.
    data: Handle,
    rx: Mutex<Rx>,
    tx: Mutex<Tx>,
}

fn main(_start: &StartInfo) -> Result<(), DeviceError> {
    let device = Device::get()?;
    let me = process();
    // One mapping per thread that touches the registers: the interrupt
    // thread reads input while a writer spins on the transmit FIFO.
    let rx_regs: Mmio<Pl011Registers> = device.map(0)?;
    let irq = device.interrupt(0)?;

    // The profile names the console's UART (`name=console`, the default);
    // without a name the first PL011 to register takes `console` and
    // others fall back to their node name.
    let name = device.arg("name").unwrap_or(NAME);
    let tx = if name == NAME && me.console != Handle::NULL {
        Tx::Kernel(me.console)
    } else {
        Tx::Direct {
            regs: device.map(0)?,
            last: 0,
        }
    };
    let ep = syscall::create(me.pool, ObjectType::Endpoint, 0)?;
    let data = syscall::create(me.pool, ObjectType::Notification, 0)?;
    let shared = Arc::new(Shared {
        ep,
        data,
        rx: Mutex::new(Rx {
            ring: Ring::new(),
            readers: 0,
        }),
        tx: Mutex::new(tx),
    });

    // Keep what was typed before the driver started, then take interrupts
    // for receive and receive-timeout (bytes waiting below the FIFO level).
    rx_regs.cr.modify(CR::RXE::SET);
    drain(&rx_regs, &shared);
    rx_regs.icr.write(INT::ALL::SET);
    rx_regs.imsc.modify(INT::RX::SET + INT::RT::SET);

    // Small stacks: the task's whole memory is a few hundred KiB.
    let builder = thread::Builder::default().stack_pages(4);
    let mut threads = Vec::new();
    let s = shared.clone();
    threads.push(builder.spawn(move || pump(rx_regs, irq, s))?);
    for _ in 1..THREADS {
        let s = shared.clone();
        threads.push(builder.spawn(move || serve(&s))?);
    }

    if let Err(e) = names::register(name, ep) {
        log::warn!("cannot register as {name}: {e}; registering as {}", device.node());
        names::register(device.node(), ep)?;
        log::info!("{} serves {}", device.node(), device.node());
    } else {
        log::info!("{} serves {name}", device.node());
    }
    serve(&shared);
    drop(threads);
    Ok(())
}

/// The interrupt thread: received bytes into the ring.
fn pump(regs: Mmio<Pl011Registers>, irq: Interrupt, shared: Arc<Shared>) {
    loop {
        if let Err(e) = irq.wait(Timeout::Forever) {
            panic!("waiting for the UART interrupt: {e}");
        }
        // Clear before draining: a byte that arrives after the drain
        // raises the interrupt again instead of being cleared unseen.
        regs.icr
            .write(INT::RX::SET + INT::RT::SET + INT::OE::SET + INT::BE::SET + INT::PE::SET + INT::FE::SET);
        drain(&regs, &shared);
        if let Err(e) = irq.ack() {
            panic!("acknowledging the UART interrupt: {e}");
        }
    }
}

/// Moves the receive FIFO into the ring and wakes a reader.
fn drain(regs: &Mmio<Pl011Registers>, shared: &Shared) {
    let mut got = false;
    {
        let mut rx = shared.rx.lock();
        while !regs.fr.is_set(FR::RXFE) {
            let d = regs.dr.extract();
            // Bytes with framing, parity or break errors are line noise
            // (a cable plugged in, a wrong baud rate), not input.
            if d.is_set(DR::FE) || d.is_set(DR::PE) || d.is_set(DR::BE) {
                continue;
            }
            rx.ring.push(d.read(DR::DATA) as u8);
            got = true;
        }
    }
    if got {
        let _ = syscall::signal(shared.data, 1);
    }
}

/// A server thread's loop: `ReplyRecv` for writes, a separate reply for
/// input (to learn whether the reader is still there).
fn serve(shared: &Shared) {
    let mut next = syscall::recv(shared.ep, Timeout::Forever);
    loop {
        let mut msg = match next {
            Ok((msg, _badge)) => msg,
            Err(e) => panic!("receiving on the console endpoint: {e}"),
        };
        let result = handle(shared, &msg);
        // The protocol takes no capabilities: any sent must not stay.
        userlib::server::drop_caps(&mut msg);
        next = match result {
            Ok(None) => syscall::reply_recv(shared.ep, &Message::new(OK), Timeout::Forever),
            Err(e) => syscall::reply_recv(shared.ep, &reply_error(e), Timeout::Forever),
            Ok(Some(input)) => {
                if syscall::reply(&pack_bytes(OK, &input)).is_err() {
                    // The reader gave up meanwhile: keep its input.
                    shared.rx.lock().ring.unread(&input);
                    let _ = syscall::signal(shared.data, 1);
                }
                syscall::recv(shared.ep, Timeout::Forever)
            }
        };
    }
}

/// Carries out a request: `Some(input)` for a `READ`.
fn handle(shared: &Shared, msg: &Message) -> Result<Option<Vec<u8>>, Error> {
    match msg.label {
        WRITE => {
            let mut buf = [0u8; MAX_BYTES];
            let bytes = unpack_bytes(msg, &mut buf);
            match &mut *shared.tx.lock() {
                Tx::Kernel(console) => {
                    let mut out = userlib::console::Writer::to(*console);
                    let _ = fmt::Write::write_str(&mut out, &console_text(bytes));
                }
                Tx::Direct { regs, last } => expand_newlines(bytes, last, |b| {
                    while regs.fr.is_set(FR::TXFF) {
                        syscall::yield_now();
                    }
                    regs.dr.write(DR::DATA.val(b.into()));
                }),
            }
            Ok(None)
        }
        READ => {
            let max = (msg.word(0) as usize).min(MAX_BYTES);
            if max == 0 {
                return Err(Error::InvalidArgument);
            }
            read(shared, max, msg.word(1)).map(Some)
        }
        _ => Err(Error::InvalidArgument),
    }
}

/// Waits for input: up to `max` bytes, within `timeout_us` (0: no limit).
fn read(shared: &Shared, max: usize, timeout_us: u64) -> Result<Vec<u8>, Error> {
    let deadline = match timeout_us {
        0 => Deadline::NEVER,
        us => Deadline::after(Timeout::Micros(us)),
    };
    let mut waiting = false;
    let result = loop {
        {
            let mut rx = shared.rx.lock();
            if !rx.ring.is_empty() {
                let bytes = rx.ring.take(max);
                if !rx.ring.is_empty() {
                    // More than this reader wanted: wake the next one.
                    let _ = syscall::signal(shared.data, 1);
                }
                break Ok(bytes);
            }
            if !waiting {
                if !reader_may_wait(rx.readers) {
                    return Err(Error::WouldBlock);
                }
                rx.readers += 1;
                waiting = true;
            }
        }
        let timeout = match deadline.left() {
            Ok(t) => t,
            Err(e) => break Err(e),
        };
        match syscall::wait(shared.data, timeout) {
            Ok(_) | Err(Error::TimedOut) => {}
            Err(e) => break Err(e),
        }
    };
    if waiting {
        shared.rx.lock().readers -= 1;
    }
    result
}
