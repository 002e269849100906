//! Serving the block protocol (`userlib::services::blk`) for a block
//! device: what every disk driver (virtio-blk, sdhci) shares.
//!
//! A driver implements [`BlockDevice`] (read and write whole sectors
//! to or from a DMA buffer) and hands it to [`serve`], which registers the
//! service and answers INFO, ATTACH, READ, WRITE, DETACH and FLUSH.
//!
//! Data goes through each client's attached buffer: the device reads and
//! writes the server's own DMA buffer and the server copies to or from
//! the client's memory object with `MemoryRead`/`MemoryWrite`
//! (`userlib::syscall::memory_read`), without mapping it. (Pointing the
//! device straight at client memory would save the copy, but a client
//! could free that memory while the device writes to it.) One request is
//! in flight at a time. The driver keeps `services::blk::MAX_BUFFERS`
//! attachments (least recently used pushed out).
//!
//! The kernel checks the client's capability as it copies: a client that
//! deletes or revokes its buffer's memory, at any time, gets its request
//! failed (`InvalidState`, and the attachment is forgotten); the driver
//! never touches memory the client can take away.

mod clients;

use crate::device::Device;
use crate::dma::Dma;
use alloc::string::String;
use alloc::vec::Vec;
use clients::Clients;
use userlib::abi::ObjectType;
use userlib::proto::{reply_error, OK};
use userlib::services::blk::{self, check_request, MAX_BUFFERS, MAX_BUFFER_BYTES, MAX_SECTORS, SECTOR_SIZE};
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

/// A client's buffer: its memory object (never mapped here).
struct Attached {
    mem: Handle,
    size: usize,
}

impl Drop for Attached {
    fn drop(&mut self) {
        let _ = syscall::cap_delete(self.mem);
    }
}

struct Server<D> {
    device: D,
    /// Where the device reads and writes (one request's worth).
    data: Dma,
    clients: Clients<Attached>,
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

    /// Keeps the client's buffer; takes the capability from `msg`.
    fn attach(&mut self, badge: u64, id: u64, msg: &mut Message) -> Result<Message, Error> {
        let mem = msg.caps()[0].handle;
        let info = syscall::cap_info(mem)?;
        if info.object != Some(ObjectType::Memory) || info.size == 0 || info.size > MAX_BUFFER_BYTES as u64 {
            return Err(Error::InvalidArgument);
        }
        if !info.rights.contains(Rights::READ | Rights::WRITE) {
            return Err(Error::NoRights);
        }
        // The buffer this replaces, or else the least recently used
        // one if all are taken, goes (its capability deleted).
        if self.clients.remove(badge, id).is_none() && self.clients.is_full() {
            self.clients.evict_lru();
        }
        msg.take_cap(0);
        let attached = Attached {
            mem,
            size: info.size as usize,
        };
        if self.clients.insert(badge, id, attached).is_err() {
            return Err(Error::InvalidState); // (made room above)
        }
        Ok(Message::with_words(
            OK,
            &[
                info.size,
                self.device.sectors(),
                self.device.read_only() as u64,
                MAX_SECTORS,
            ],
        ))
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
        let range = check_request(sectors, sector, count, offset, a.size)?;
        let (n, mem, at) = (range.len(), a.mem, range.start as u64);
        // The client may delete or revoke its buffer at any time: the
        // kernel then fails the copy, and the attachment goes.
        let copied = if write {
            syscall::memory_read(mem, at, &mut self.data.as_mut_slice()[..n])
        } else {
            self.device.read(sector, &mut self.data, n)?;
            syscall::memory_write(mem, at, &self.data.as_slice()[..n])
        };
        if copied.is_err() {
            self.clients.remove(badge, id);
            return Err(Error::InvalidState);
        }
        if write {
            self.device.write(sector, &mut self.data, n)?;
        }
        Ok(Message::new(OK))
    }
}
