//! Serving the block protocol (`userlib::services::blk`) for a block
//! device: what every disk driver (virtio-blk, sdhci) shares.
//!
//! A driver implements [`BlockDevice`] (read and write whole sectors
//! to or from a DMA buffer) and hands it to [`serve`], which registers the
//! service and answers INFO, ATTACH, READ, WRITE, DETACH and FLUSH.
//!
//! Data goes through each client's attached buffer: the device reads and
//! writes the server's own DMA buffer and the server copies to or from
//! the client's. (Pointing the device straight at client memory would
//! save the copy, but a client could free that memory while the device
//! writes to it.) One request is in flight at a time.
//!
//! Client buffers are mapped in fixed windows, one per attachment slot
//! (`services::blk::MAX_BUFFERS`, least recently used pushed out), so that
//! clients attaching again and again cost no new translation tables.
//!
//! A client can still make the driver fault: by revoking its buffer's
//! memory between the server's check and its copy. The supervisor then
//! restarts the driver and every client reconnects.

mod clients;

use crate::device::Device;
use crate::dma::Dma;
use alloc::string::String;
use alloc::vec::Vec;
use clients::Clients;
use userlib::abi::{ObjectType, PAGE_SIZE};
use userlib::proto::{reply_error, OK};
use userlib::services::blk::{self, check_request, MAX_BUFFERS, MAX_BUFFER_BYTES, MAX_SECTORS, SECTOR_SIZE};
use userlib::vspace::{self, Mapping};
use userlib::{names, process, syscall, Error, Handle, Message, Rights};

/// A disk as the block server drives it.
pub trait BlockDevice {
    /// Capacity in [`SECTOR_SIZE`] sectors.
    fn sectors(&self) -> u64;
    /// Whether writes are refused (`NoRights` to the client).
    fn read_only(&self) -> bool;
    /// Reads `bytes / SECTOR_SIZE` sectors from `sector` into the start of
    /// `dma`. The server has checked the range against [`Self::sectors`]
    /// and `bytes` against [`MAX_SECTORS`]. Errors go to the client as
    /// they are (`TimedOut` for a device that did not answer, `InvalidState`
    /// for one that failed the request).
    fn read(&mut self, sector: u64, dma: &mut Dma, bytes: usize) -> Result<(), Error>;
    /// Writes the first `bytes` of `dma` to the disk from `sector` on.
    fn write(&mut self, sector: u64, dma: &mut Dma, bytes: usize) -> Result<(), Error>;
    /// Makes every completed write durable (a device with a write cache
    /// flushes it; one whose writes are durable once done returns at once).
    fn flush(&mut self) -> Result<(), Error>;
}

/// A client's buffer, mapped here in window `window`.
struct Attached {
    mem: Handle,
    map: Option<Mapping>,
    window: usize,
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.map.take();
        let _ = syscall::cap_delete(self.mem);
    }
}

struct Server<D> {
    device: D,
    /// Where the device reads and writes (one request's worth).
    data: Dma,
    clients: Clients<Attached>,
    /// Where client buffers are mapped: one fixed window per entry of
    /// `clients`, so that attaching again and again reuses the same
    /// translation tables instead of making new ones.
    windows: Vec<u64>,
}

/// Registers the service (see [`register`]) and serves `device` on a new
/// endpoint until receiving fails. Returns the error that ended it.
pub fn serve<D: BlockDevice>(node: &Device, device: D) -> Error {
    let data = match Dma::new(MAX_SECTORS as usize * SECTOR_SIZE) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let ep = match syscall::create(process().pool, ObjectType::Endpoint, 0) {
        Ok(ep) => ep,
        Err(e) => return e,
    };
    let name = match register(node, ep) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let sectors = device.sectors();
    userlib::log::info!(
        "{name}: {} sectors ({} KiB{}) on {}",
        sectors,
        sectors / 2,
        if device.read_only() { ", read-only" } else { "" },
        node.node(),
    );
    let mut s = Server {
        device,
        data,
        clients: Clients::new(MAX_BUFFERS),
        windows: (0..MAX_BUFFERS)
            .map(|_| vspace::reserve((MAX_BUFFER_BYTES / PAGE_SIZE) as u64))
            .collect(),
    };
    match crate::serve(ep, |msg, badge| crate::Action::Reply(s.handle(msg, badge))) {
        Ok(()) => Error::InvalidState,
        Err(e) => e,
    }
}

/// Registers `ep` under the service name: the profile's `name=` argument,
/// else the first free of `blk`, `blk1`, ... `blk7` (drivers start in
/// device-tree order, and a restarted driver finds only its own name free
/// again).
pub fn register(device: &Device, ep: Handle) -> Result<String, Error> {
    let names: Vec<String> = match device.arg("name") {
        Some(n) => alloc::vec![n.into()],
        None => (0..8)
            .map(|i| match i {
                0 => blk::NAME.into(),
                i => alloc::format!("{}{i}", blk::NAME),
            })
            .collect(),
    };
    for name in names {
        match names::register(&name, ep) {
            Ok(()) => return Ok(name),
            Err(Error::InvalidState) => continue, // taken
            Err(e) => return Err(e),
        }
    }
    Err(Error::InvalidState)
}

impl<D: BlockDevice> Server<D> {
    /// One request. Capabilities the request carries and `attach` does not
    /// take are deleted by `serve` (they must not fill the cspace).
    fn handle(&mut self, msg: &mut Message, badge: u64) -> Message {
        let r = match msg.label {
            blk::INFO => Ok(Message::with_words(
                OK,
                &[self.device.sectors(), self.device.read_only() as u64, MAX_SECTORS],
            )),
            blk::ATTACH if msg.caps().len() == 1 => self.attach(badge, msg.word(0), msg),
            blk::READ | blk::WRITE => self.transfer(msg, badge),
            blk::FLUSH => self.device.flush().map(|()| Message::new(OK)),
            blk::DETACH => self
                .clients
                .remove(badge, msg.word(0))
                .map(|_| Message::new(OK))
                .ok_or(Error::InvalidState),
            _ => Err(Error::InvalidArgument),
        };
        r.unwrap_or_else(reply_error)
    }

    /// Maps the client's buffer; takes the capability from `msg` once mapped.
    fn attach(&mut self, badge: u64, id: u64, msg: &mut Message) -> Result<Message, Error> {
        let mem = msg.caps()[0].handle;
        let info = syscall::cap_info(mem)?;
        if info.object != Some(ObjectType::Memory) || info.size == 0 || info.size > MAX_BUFFER_BYTES as u64 {
            return Err(Error::InvalidArgument);
        }
        if !info.rights.contains(Rights::READ | Rights::WRITE | Rights::MAP) {
            return Err(Error::NoRights);
        }
        let pages = info.size / PAGE_SIZE as u64;
        // The buffer this replaces, or else the least recently used
        // one if all are taken, is unmapped and its capability deleted.
        if self.clients.remove(badge, id).is_none() && self.clients.is_full() {
            self.clients.evict_lru();
        }
        let window = (0..self.windows.len())
            .find(|w| self.clients.values().all(|a| a.window != *w))
            .ok_or(Error::InvalidState)?;
        let map = Mapping::map_at(mem, pages, Rights::READ | Rights::WRITE, self.windows[window])?;
        let bytes = map.len() as u64;
        msg.take_cap(0);
        let attached = Attached {
            mem,
            map: Some(map),
            window,
        };
        if self.clients.insert(badge, id, attached).is_err() {
            return Err(Error::InvalidState); // (made room above)
        }
        Ok(Message::with_words(OK, &[bytes]))
    }

    fn transfer(&mut self, msg: &Message, badge: u64) -> Result<Message, Error> {
        let (sector, count, offset, id) = (msg.word(0), msg.word(1), msg.word(2), msg.word(3));
        let write = msg.label == blk::WRITE;
        let sectors = self.device.sectors();
        // Malformed whatever the buffer: checked first.
        check_request(sectors, sector, count, 0, usize::MAX)?;
        if write && self.device.read_only() {
            return Err(Error::NoRights);
        }
        let a = self.clients.get_mut(badge, id).ok_or(Error::InvalidState)?;
        let map = a.map.as_mut().ok_or(Error::InvalidState)?;
        let range = check_request(sectors, sector, count, offset, map.len())?;
        let n = range.len();
        // A buffer the client revoked is gone from here too: touching
        // it would fault. (The client could still revoke it after
        // this check; see the module docs.)
        if syscall::cap_info(a.mem).is_err() {
            self.clients.remove(badge, id);
            return Err(Error::InvalidState);
        }
        if write {
            self.data.as_mut_slice()[..n].copy_from_slice(&map.as_slice()[range]);
            self.device.write(sector, &mut self.data, n)?;
        } else {
            self.device.read(sector, &mut self.data, n)?;
            map.as_mut_slice()[range].copy_from_slice(&self.data.as_slice()[..n]);
        }
        Ok(Message::new(OK))
    }
}
