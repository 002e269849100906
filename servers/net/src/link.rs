//! The link to the network card's driver (`netdev`, protocol in
//! `userlib::services::netdev`) as a smoltcp [`Device`].
//!
//! Received frames are fetched in batches when the driver's interrupt
//! (delivered to [`Link::notification`]) says some may wait; each frame
//! smoltcp transmits goes out with one `SEND`. When the driver dies, the
//! link is down (frames are dropped, TCP retransmits) until
//! [`Link::reconnect`] finds the restarted driver and attaches again.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use smoltcp::phy::{Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use userlib::abi::{ObjectType, PAGE_SIZE};
use userlib::proto::{check_label, check_reply};
use userlib::services::netdev::{self, MAX_FRAME, RX_SLOTS, SHARED_BYTES};
use userlib::sync::Mutex;
use userlib::vspace::Mapping;
use userlib::{log, names, process, syscall, Error, Handle, Message, Rights};

pub struct Link {
    /// Our endpoint to the driver and the frame memory it gave us.
    conn: Option<(Handle, Mapping)>,
    /// Where the driver's interrupts arrive (bit `netdev::RX_BIT`).
    pub notification: Handle,
    /// Frames may be waiting at the driver.
    pub pending: bool,
    rx: VecDeque<Rx>,
    pub mac: [u8; 6],
    /// How many times the driver was (re)attached.
    pub attaches: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    /// Frames in that were unicast to another card's MAC (a card in
    /// promiscuous mode hands them over; smoltcp drops them).
    pub frames_foreign: u64,
}

impl Link {
    pub fn new() -> Result<Link, Error> {
        let notification = syscall::create(process().pool, ObjectType::Notification, 0)?;
        Ok(Link {
            conn: None,
            notification,
            pending: false,
            rx: VecDeque::new(),
            mac: [0; 6],
            attaches: 0,
            frames_in: 0,
            frames_out: 0,
            frames_foreign: 0,
        })
    }

    pub fn is_up(&self) -> bool {
        self.conn.is_some()
    }

    /// Whether the driver we attached to is still there: when it dies, the
    /// supervisor revokes its registration and with it our endpoint (a
    /// restarted driver delivers its interrupts to nobody until we attach
    /// again, so waiting for a failed call would wait forever). The stack
    /// asks at most every `stack::CHECK_EVERY_US`.
    pub fn check(&mut self) {
        if let Some((ep, _)) = &self.conn {
            if let Err(e) = syscall::cap_info(*ep) {
                self.down(e);
            }
        }
    }

    /// Looks the driver up (without waiting) and attaches to it.
    pub fn reconnect(&mut self) -> Result<(), Error> {
        if self.conn.is_some() {
            return Ok(());
        }
        let ep = names::lookup(netdev::NAME)?;
        match self.attach(ep) {
            Ok(frames) => {
                self.conn = Some((ep, frames));
                self.attaches += 1;
                self.pending = true;
                Ok(())
            }
            Err(e) => {
                let _ = syscall::cap_delete(ep);
                Err(e)
            }
        }
    }

    fn attach(&mut self, ep: Handle) -> Result<Mapping, Error> {
        let info = check_reply(syscall::call(ep, &Message::new(netdev::INFO))?.0)?;
        self.mac = netdev::mac_from_word(info.word(0));
        // The reply carries the shared frame memory.
        let mut m = Message::new(netdev::ATTACH).accepting_caps(1);
        m.push_cap(self.notification, Rights::SEND);
        let reply = check_reply(syscall::call(ep, &m)?.0)?;
        let mem = reply.caps().first().ok_or(Error::InvalidState)?.handle;
        let pages = (SHARED_BYTES / PAGE_SIZE) as u64;
        match syscall::cap_info(mem) {
            Ok(i) if i.object == Some(ObjectType::Memory) && i.size as usize >= SHARED_BYTES => {}
            _ => {
                let _ = syscall::cap_delete(mem);
                return Err(Error::InvalidState);
            }
        }
        Mapping::map(mem, pages, Rights::READ | Rights::WRITE).inspect_err(|_| {
            let _ = syscall::cap_delete(mem);
        })
    }

    /// A call to the driver failed: the link is down until it returns.
    fn down(&mut self, e: Error) {
        if let Some((ep, frames)) = self.conn.take() {
            log::warn!("netdev: lost the driver ({e}); waiting for it to return");
            let mem = frames.handle();
            drop(frames);
            let _ = syscall::cap_delete(mem);
            let _ = syscall::cap_delete(ep);
        }
        self.rx.clear();
    }

    /// A request to the driver (`SEND` and `RECV` fit in registers, and
    /// their replies carry words only: [`syscall::call_words`], no
    /// `Message` built or copied): the reply's words in `out`, and their
    /// number.
    fn call(&mut self, label: u16, words: &[u64], out: &mut [u64]) -> Result<usize, Error> {
        let Some((ep, _)) = &self.conn else {
            return Err(Error::PeerDied);
        };
        let r = syscall::call_words(*ep, label, words, out)
            .and_then(|(label, n)| check_label(label, out.first().copied().unwrap_or(0)).map(|()| n));
        if let Err(e @ (Error::PeerDied | Error::BadHandle | Error::WrongType | Error::InvalidState)) = r {
            self.down(e);
        }
        r
    }

    /// Fetches a batch of frames from the driver.
    fn fetch(&mut self) {
        let mut words = [0u64; RX_SLOTS + 1];
        let Ok(n) = self.call(netdev::RECV, &[], &mut words) else {
            self.pending = false;
            return;
        };
        let Some(lens) = netdev::lengths(&words[..n.min(words.len())], RX_SLOTS) else {
            self.pending = false;
            return;
        };
        let Some((_, frames)) = &self.conn else { return };
        let mut n = 0;
        for (i, len) in lens.enumerate() {
            let at = netdev::rx_slot(i);
            let frame = &frames.as_slice()[at..at + len];
            if frame.len() >= 6 && frame[0] & 1 == 0 && frame[..6] != self.mac {
                self.frames_foreign += 1;
            }
            let mut buf = SPARE.lock().pop().unwrap_or_else(|| Vec::with_capacity(MAX_FRAME));
            buf.clear();
            buf.extend_from_slice(frame);
            self.rx.push_back(Rx(buf));
            n += 1;
        }
        self.frames_in += n as u64;
        // A full batch: more may wait.
        self.pending = n == RX_SLOTS;
    }

    /// The transmit slot, while the link is up.
    fn tx_slot(&mut self) -> Option<&mut [u8]> {
        let (_, frames) = self.conn.as_mut()?;
        let at = netdev::tx_slot(0);
        Some(&mut frames.as_mut_slice()[at..at + MAX_FRAME])
    }

    /// Sends the frame in the transmit slot.
    fn send_tx(&mut self, len: usize) {
        if self.call(netdev::SEND, &[1, len as u64], &mut [0]).is_ok() {
            self.frames_out += 1;
        }
    }
}

/// A received frame. Its buffer goes back to [`SPARE`] when smoltcp is
/// done with it (no allocation per frame).
pub struct Rx(Vec<u8>);

/// Frame buffers to reuse, at most [`RX_SLOTS`].
static SPARE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

impl Drop for Rx {
    fn drop(&mut self) {
        let mut spare = SPARE.lock();
        if spare.len() < RX_SLOTS {
            spare.push(core::mem::take(&mut self.0));
        }
    }
}

pub struct Tx<'a>(&'a mut Link);

impl smoltcp::phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl smoltcp::phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(MAX_FRAME);
        match self.0.tx_slot() {
            Some(slot) => {
                let r = f(&mut slot[..len]);
                self.0.send_tx(len);
                r
            }
            // Link down: the frame is built and dropped, as a cable would.
            None => f(&mut alloc::vec![0; len]),
        }
    }
}

impl Device for Link {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(Rx, Tx<'_>)> {
        if self.rx.is_empty() && self.pending && self.is_up() {
            self.fetch();
        }
        let frame = self.rx.pop_front()?;
        Some((frame, Tx(self)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx<'_>> {
        Some(Tx(self))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME;
        caps
    }
}
