//! `blk`: a block device (the virtio-blk driver serves it; a second disk
//! registers as `blk1`, ... as its profile names it). Data moves through a
//! buffer the client shares with the driver, never through messages.
//!
//! | label | words in | capability in | reply |
//! |---|---|---|---|
//! | [`INFO`] | — | — | `[sectors, read-only (0/1), most sectors per request]` |
//! | [`ATTACH`] | `[buffer id]` | memory (`READ`\|`WRITE`) | `[buffer bytes, sectors, read-only (0/1), most sectors per request]` (the buffer's size, then what [`INFO`] tells) |
//! | [`READ`] | `[sector, count, offset, buffer id]` | — | [`crate::proto::OK`] once the data is in the buffer |
//! | [`WRITE`] | `[sector, count, offset, buffer id]` | — | [`crate::proto::OK`] once the device has the data |
//! | [`DETACH`] | `[buffer id]` | — | [`crate::proto::OK`] |
//! | [`FLUSH`] | — | — | [`crate::proto::OK`] once every completed write is durable (the device's write cache flushed; a device without one replies at once) |
//!
//! Sectors are [`SECTOR_SIZE`] bytes; `count` sectors go to or from the
//! buffer at byte `offset`. A client may attach several buffers, told
//! apart by an id of its choosing (the [`Blk`] client uses the memory
//! capability's handle); the driver keys them by the client's badge and
//! the id. Failures ([`crate::proto::FAILED`]): `InvalidArgument` for a
//! malformed request (count 0 or above the limit, sectors past the end, a
//! range outside the buffer, a capability that is not memory of at most
//! [`MAX_BUFFER_BYTES`]), `NoRights` for a write to a read-only disk or a
//! buffer without the rights above, `InvalidState` for an unknown buffer
//! id (never attached, or dropped: the driver keeps [`MAX_BUFFERS`] and
//! forgets the least recently used; attach again) or a request the device
//! failed.
//!
//! READ, WRITE, INFO and FLUSH and their replies fit in the four register
//! words (the [`Blk`] client sends them without building a `Message`, and
//! the kernel takes its fast path both ways).
//!
//! Requests are idempotent: when the driver dies during one (the call
//! fails with `PeerDied`), retrying it after the restart is safe. The
//! driver holds the buffer's memory object until [`DETACH`] (which
//! [`Blk`]'s `Drop` sends) or its own restart.

use crate::ipc::{Message, Timeout};
use crate::names::Connection;
use crate::vspace::Mapping;
use crate::{Error, Rights};

/// The first disk's service name.
pub const NAME: &str = "blk";
pub const INFO: u16 = 1;
pub const ATTACH: u16 = 2;
pub const READ: u16 = 3;
pub const WRITE: u16 = 4;
pub const DETACH: u16 = 5;
pub const FLUSH: u16 = 6;

pub const SECTOR_SIZE: usize = 512;
/// Most sectors one request moves (64 KiB).
pub const MAX_SECTORS: u64 = 128;
/// Largest buffer a client may attach.
pub const MAX_BUFFER_BYTES: usize = 4 << 20;
/// Buffers the driver keeps attached (all clients together).
pub const MAX_BUFFERS: usize = 16;

/// What [`INFO`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Info {
    /// Capacity in [`SECTOR_SIZE`] sectors.
    pub sectors: u64,
    pub read_only: bool,
    /// Most sectors one request moves.
    pub max_sectors: u64,
}

/// Why a [`READ`] or [`WRITE`] is malformed (the driver's checks, pure so
/// that they are tested on the host): `count` sectors at `sector` on a
/// disk of `capacity` sectors, to or from `offset` in a buffer of
/// `buffer_bytes`. Returns the byte range in the buffer.
pub fn check_request(
    capacity: u64,
    sector: u64,
    count: u64,
    offset: u64,
    buffer_bytes: usize,
) -> Result<core::ops::Range<usize>, Error> {
    if count == 0 || count > MAX_SECTORS {
        return Err(Error::InvalidArgument);
    }
    if sector.checked_add(count).is_none_or(|end| end > capacity) {
        return Err(Error::InvalidArgument);
    }
    let bytes = count as usize * SECTOR_SIZE;
    let start = usize::try_from(offset).map_err(|_| Error::InvalidArgument)?;
    match start.checked_add(bytes) {
        Some(end) if end <= buffer_bytes => Ok(start..end),
        _ => Err(Error::InvalidArgument),
    }
}

/// A disk client with its shared buffer. It reconnects after the driver
/// restarts (the call that saw the driver die returns the error; the next
/// one looks the service up again) and attaches its buffer again.
pub struct Blk {
    conn: Connection,
    buffer: Mapping,
    attached: bool,
    /// What the last [`ATTACH`] reply told of the disk.
    info: Option<Info>,
    timeout: Timeout,
}

impl Blk {
    /// A client of disk `name` (e.g. [`NAME`]) with a shared buffer of at
    /// least `buffer_bytes` (whole pages, at most [`MAX_BUFFER_BYTES`]).
    /// Calls wait up to 10 s (for the driver, or for its restart).
    pub fn new(name: &'static str, buffer_bytes: usize) -> Result<Blk, Error> {
        if buffer_bytes == 0 || buffer_bytes > MAX_BUFFER_BYTES {
            return Err(Error::InvalidArgument);
        }
        let pages = crate::vspace::pages_for(buffer_bytes as u64);
        Ok(Blk {
            conn: Connection::new(name),
            buffer: Mapping::new(pages, Rights::READ | Rights::WRITE)?,
            attached: false,
            info: None,
            timeout: Timeout::millis(10_000),
        })
    }

    /// Looks the driver up once if the client has lost it (or never had
    /// it), without waiting: `WouldBlock` while no driver registered the
    /// disk ([`Connection::lookup_now`]). Calls wait for the driver
    /// otherwise (up to the timeout).
    pub fn lookup_now(&mut self) -> Result<(), Error> {
        self.conn.lookup_now()
    }

    /// Sets how long each call may take (lookup included).
    pub fn set_timeout(&mut self, timeout: Timeout) {
        self.timeout = timeout;
    }

    /// The shared buffer: fill it before [`Blk::write`], read it after
    /// [`Blk::read`].
    pub fn buffer(&self) -> &[u8] {
        self.buffer.as_slice()
    }

    pub fn buffer_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut_slice()
    }

    /// The id this client's buffer has in the protocol.
    pub fn buffer_id(&self) -> u64 {
        self.buffer.handle().0 as u64
    }

    /// The disk's size and limits. Not yet attached, the buffer is
    /// attached first, and the [`ATTACH`] reply tells them (one call for
    /// both).
    pub fn info(&mut self) -> Result<Info, Error> {
        if !self.attached {
            self.attach()?;
            if let Some(info) = self.info {
                return Ok(info);
            }
        }
        let w = self.call_fast(INFO, [0; 4], 0)?;
        Ok(Info {
            sectors: w[0],
            read_only: w[1] != 0,
            max_sectors: w[2],
        })
    }

    /// Reads `count` sectors from `sector` into the buffer at `offset`.
    pub fn read(&mut self, sector: u64, count: u64, offset: usize) -> Result<(), Error> {
        self.transfer(READ, sector, count, offset)
    }

    /// Writes `count` sectors from the buffer at `offset` to `sector`.
    pub fn write(&mut self, sector: u64, count: u64, offset: usize) -> Result<(), Error> {
        self.transfer(WRITE, sector, count, offset)
    }

    /// Makes every completed write durable ([`FLUSH`]).
    pub fn flush(&mut self) -> Result<(), Error> {
        self.call_fast(FLUSH, [0; 4], 0).map(drop)
    }

    fn transfer(&mut self, label: u16, sector: u64, count: u64, offset: usize) -> Result<(), Error> {
        let words = [sector, count, offset as u64, self.buffer_id()];
        if !self.attached {
            self.attach()?;
        }
        match self.call_fast(label, words, 4) {
            // The driver forgot the buffer (evicted it): once more.
            Err(Error::InvalidState) => {
                self.attached = false;
                self.attach()?;
                self.call_fast(label, words, 4).map(drop)
            }
            r => r.map(drop),
        }
    }

    fn attach(&mut self) -> Result<(), Error> {
        let mut m = Message::with_words(ATTACH, &[self.buffer_id()]);
        m.push_cap(self.buffer.handle(), Rights::READ | Rights::WRITE | Rights::MAP);
        let r = self.call(&m)?;
        self.info = (r.words().len() >= 4).then(|| Info {
            sectors: r.word(1),
            read_only: r.word(2) != 0,
            max_sectors: r.word(3),
        });
        self.attached = true;
        Ok(())
    }

    fn call(&mut self, msg: &Message) -> Result<Message, Error> {
        let r = self.conn.call(msg, self.timeout);
        self.check(r)
    }

    /// A register-only request ([`Connection::call_fast`]).
    fn call_fast(&mut self, label: u16, words: [u64; 4], n: usize) -> Result<[u64; 4], Error> {
        let r = self.conn.call_fast(label, words, n, self.timeout);
        self.check(r)
    }

    fn check<T>(&mut self, r: Result<T, Error>) -> Result<T, Error> {
        if let Err(Error::PeerDied | Error::BadHandle | Error::WrongType) = r {
            // A new driver instance knows nothing of this buffer.
            self.attached = false;
        }
        r
    }
}

impl Drop for Blk {
    fn drop(&mut self) {
        // The driver's copy of the capability keeps the memory (charged
        // to this task) alive: hand it back.
        if self.attached {
            let m = Message::with_words(DETACH, &[self.buffer_id()]);
            let _ = self.conn.call(&m, Timeout::millis(1000));
        }
        self.conn.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_bounds_checked() {
        let ok = |s, c, o, b| check_request(2048, s, c, o, b);
        assert_eq!(ok(0, 1, 0, 4096), Ok(0..512));
        assert_eq!(ok(2047, 1, 3584, 4096), Ok(3584..4096));
        assert_eq!(ok(1920, 128, 0, 65536), Ok(0..65536));
        assert_eq!(ok(0, 1, 1, 4096), Ok(1..513), "offsets need no alignment");
        for (s, c, o, b) in [
            (0, 0, 0, 4096),                  // nothing to do
            (0, MAX_SECTORS + 1, 0, 1 << 20), // too many at once
            (2048, 1, 0, 4096),               // past the end
            (2047, 2, 0, 4096),               // runs over the end
            (u64::MAX, 1, 0, 4096),           // sector + count overflows
            (0, 1, 3585, 4096),               // out of the buffer
            (0, 1, u64::MAX, 4096),           // offset + bytes overflows
            (0, 8, 0, 4095),                  // buffer too small
        ] {
            assert_eq!(ok(s, c, o, b), Err(Error::InvalidArgument), "{s} {c} {o} {b}");
        }
    }
}
