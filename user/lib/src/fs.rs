//! Files, shaped like `std::fs`, over the file server (protocol:
//! [`crate::services::fs`]).
//!
//! - [`Namespace`]: the mounts this task was granted, by absolute path
//!   (`/data/notes.txt`), with `read`, `write`, `create_dir`,
//!   `remove_file`, `remove_dir`, `rename`, `metadata`, `read_dir`.
//! - [`Dir`]: a directory capability; paths resolve inside it only.
//! - [`File`]: an open file, with `embedded_io`'s `Read`, `Write` and
//!   `Seek`, and `read_at`/`write_at`, `set_len`, `sync_all`.
//!
//! Transfers up to [`p::INLINE`] bytes travel in the message; larger ones
//! through a 64 KiB buffer the file attaches on its first large transfer.
//! A file whose handle refuses the buffer (a paired device's file through
//! the soft bus, where memory travels by value) moves up to
//! [`p::MEMORY_IO`] bytes a call in a memory object instead
//! ([`p::READ_MEMORY`], [`p::WRITE_MEMORY`]).

use crate::ipc::{Message, Timeout};
use crate::services::fs::{self as p, FsError, Stat};
use crate::vspace::Mapping;
use crate::{names, syscall, Handle, Rights};
use alloc::string::String;
use alloc::vec::Vec;

pub use crate::services::fs::FsError as Error;
pub use embedded_io::{Read, Seek, SeekFrom, Write};

pub type Result<T> = core::result::Result<T, FsError>;

impl core::error::Error for FsError {}

impl embedded_io::Error for FsError {
    fn kind(&self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind as K;
        match self {
            FsError::NotFound => K::NotFound,
            FsError::Exists => K::AlreadyExists,
            FsError::AccessDenied | FsError::OutsideRoot | FsError::ReadOnly => K::PermissionDenied,
            FsError::InvalidName | FsError::InvalidArgument => K::InvalidInput,
            FsError::NoSpace => K::OutOfMemory,
            _ => K::Other,
        }
    }
}

/// How long a request may take before the client gives up on the server
/// ([`FsError::Unavailable`]). The file server answers at once when its
/// disk is gone (`Unavailable` too) and waits for a restarting block
/// driver only briefly (`fs::link`), so this guards only a server that is
/// stuck: its slowest honest answer is a block driver that does not
/// answer (the block client gives up after 10 s) or a large write-back to
/// a slow card. Each request waits this once: a call is tried again only
/// when the server was found dead (restarted), never after this ran out.
const TIMEOUT: Timeout = Timeout::millis(30_000);
/// Bytes of a file's shared buffer.
pub const BUFFER_BYTES: usize = 64 << 10;

fn call(ep: Handle, m: &Message) -> Result<Message> {
    match syscall::call_timeout(ep, m, TIMEOUT) {
        Ok((r, _)) => p::check(r),
        Err(_) => Err(FsError::Unavailable),
    }
}

fn path_msg(label: u16, words: &[u64], path: &str) -> Result<Message> {
    let mut m = Message::with_words(label, words);
    p::push_str(&mut m, path)?;
    Ok(m)
}

fn new_handle(r: &Message) -> Result<Handle> {
    r.caps().first().map(|c| c.handle).ok_or(FsError::Unavailable)
}

/// How to open a file, as `std::fs::OpenOptions`.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenOptions {
    pub read: bool,
    pub write: bool,
    pub create: bool,
    pub create_new: bool,
    pub truncate: bool,
    pub append: bool,
}

impl OpenOptions {
    pub fn new() -> OpenOptions {
        OpenOptions::default()
    }
    pub fn read(mut self, v: bool) -> Self {
        self.read = v;
        self
    }
    pub fn write(mut self, v: bool) -> Self {
        self.write = v;
        self
    }
    pub fn create(mut self, v: bool) -> Self {
        self.create = v;
        self
    }
    pub fn create_new(mut self, v: bool) -> Self {
        self.create_new = v;
        self
    }
    pub fn truncate(mut self, v: bool) -> Self {
        self.truncate = v;
        self
    }
    pub fn append(mut self, v: bool) -> Self {
        self.append = v;
        self
    }

    fn words(&self) -> [u64; 2] {
        let mut flags = 0;
        if self.create || self.create_new {
            flags |= p::CREATE;
        }
        if self.create_new {
            flags |= p::EXCLUSIVE;
        }
        if self.truncate {
            flags |= p::TRUNCATE_FLAG;
        }
        let mut rights = 0;
        if self.read {
            rights |= p::READ_RIGHT;
        }
        if self.write || self.append || self.truncate || self.create || self.create_new {
            rights |= p::WRITE_RIGHT;
        }
        [flags, rights]
    }
}

/// An entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub stat: Stat,
}

/// A directory capability. Dropping it closes it.
#[derive(Debug)]
pub struct Dir {
    ep: Handle,
    rights: u64,
}

impl Dir {
    /// Takes ownership of a directory handle received from the server.
    pub fn from_handle(ep: Handle, rights: u64) -> Dir {
        Dir { ep, rights }
    }

    /// The endpoint (for passing the directory to another task).
    pub fn handle(&self) -> Handle {
        self.ep
    }

    pub fn rights(&self) -> u64 {
        self.rights
    }

    pub fn open(&self, path: &str, o: &OpenOptions) -> Result<File> {
        let r = call(self.ep, &path_msg(p::OPEN, &o.words(), path)?.accepting_caps(1))?;
        let ep = new_handle(&r)?;
        if r.word(0) != 0 {
            let _ = call(ep, &Message::new(p::CLOSE));
            let _ = syscall::cap_delete(ep);
            return Err(FsError::IsADirectory);
        }
        Ok(File {
            ep,
            pos: 0,
            append: o.append,
            buffer: None,
            inline_only: false,
        })
    }

    /// Opens a subdirectory with `rights` (at most this one's).
    pub fn open_dir(&self, path: &str, rights: u64) -> Result<Dir> {
        let r = call(
            self.ep,
            &path_msg(p::OPEN, &[p::DIRECTORY, rights], path)?.accepting_caps(1),
        )?;
        Ok(Dir {
            ep: new_handle(&r)?,
            rights: rights & self.rights,
        })
    }

    /// A second handle to this directory with `rights` (narrowed).
    pub fn try_clone(&self, rights: u64) -> Result<Dir> {
        let r = call(self.ep, &Message::with_words(p::CLONE, &[rights]).accepting_caps(1))?;
        Ok(Dir {
            ep: new_handle(&r)?,
            rights: rights & self.rights,
        })
    }

    /// Every entry (without `.` and `..`).
    pub fn read_dir(&self) -> Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        let mut cursor = 0;
        loop {
            let r = call(self.ep, &Message::with_words(p::READDIR, &[cursor]))?;
            if r.word(0) == 0 {
                return Ok(out);
            }
            cursor = r.word(0);
            let stat = Stat::from_words(&r, 1);
            let mut buf = [0u8; p::MAX_PATH];
            let (name, _) = p::get_str(&r, 1 + p::STAT_WORDS, &mut buf)?;
            out.push(DirEntry {
                name: name.into(),
                stat,
            });
        }
    }

    pub fn create_dir(&self, path: &str) -> Result<()> {
        call(self.ep, &path_msg(p::MKDIR, &[], path)?).map(drop)
    }

    pub fn remove_file(&self, path: &str) -> Result<()> {
        call(self.ep, &path_msg(p::UNLINK, &[], path)?).map(drop)
    }

    pub fn remove_dir(&self, path: &str) -> Result<()> {
        call(self.ep, &path_msg(p::RMDIR, &[], path)?).map(drop)
    }

    /// Renames within this directory's tree.
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        let mut m = path_msg(p::RENAME, &[], from)?;
        p::push_str(&mut m, to)?;
        call(self.ep, &m).map(drop)
    }

    /// Metadata of `path` (`""`: this directory).
    pub fn metadata(&self, path: &str) -> Result<Stat> {
        let r = call(self.ep, &path_msg(p::STAT, &[], path)?)?;
        Ok(Stat::from_words(&r, 0))
    }

    /// `[cluster bytes, clusters, free clusters, fat32]`.
    pub fn statfs(&self) -> Result<[u64; 4]> {
        let r = call(self.ep, &Message::new(p::STATFS))?;
        Ok([r.word(0), r.word(1), r.word(2), r.word(3)])
    }

    /// Writes everything the volume has cached.
    pub fn sync(&self) -> Result<()> {
        call(self.ep, &Message::new(p::SYNC)).map(drop)
    }

    /// Writes everything the volume has cached, then forgets the cached
    /// sectors: the next requests read the disk ([`p::DROP_CACHES`]).
    pub fn drop_caches(&self) -> Result<()> {
        call(self.ep, &Message::new(p::DROP_CACHES)).map(drop)
    }

    /// Reads a whole file.
    pub fn read(&self, path: &str) -> Result<Vec<u8>> {
        let mut f = self.open(path, &OpenOptions::new().read(true))?;
        // Read straight into a vector of the file's size (it may still
        // change meanwhile: reading goes on to the end).
        let size = f.metadata()?.size as usize;
        let mut out = alloc::vec![0u8; size];
        let mut done = 0;
        loop {
            if done == out.len() {
                // At the size it had: anything more?
                let mut more = [0u8; 256];
                let n = f.read_at(done as u64, &mut more)?;
                if n == 0 {
                    return Ok(out);
                }
                out.extend_from_slice(&more[..n]);
                done += n;
                continue;
            }
            let n = f.read_at(done as u64, &mut out[done..])?;
            if n == 0 {
                out.truncate(done);
                return Ok(out);
            }
            done += n;
        }
    }

    /// Creates or replaces a file with `data`.
    pub fn write(&self, path: &str, data: &[u8]) -> Result<()> {
        let mut f = self.open(path, &OpenOptions::new().write(true).create(true).truncate(true))?;
        f.write_all_at(0, data)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = call(self.ep, &Message::new(p::CLOSE));
        let _ = syscall::cap_delete(self.ep);
    }
}

/// An open file. Dropping it closes it.
#[derive(Debug)]
pub struct File {
    ep: Handle,
    pos: u64,
    append: bool,
    /// The shared buffer, once attached.
    buffer: Option<Mapping>,
    /// The handle took no buffer (`Unsupported`, or `AccessDenied`: a
    /// remote handle gets a read-only copy of it): data goes in memory
    /// objects of its own, one per call.
    inline_only: bool,
}

impl File {
    /// The endpoint (for passing the file to another task).
    pub fn handle(&self) -> Handle {
        self.ep
    }

    fn buffer(&mut self) -> Result<&mut Mapping> {
        if self.inline_only {
            return Err(FsError::Unsupported);
        }
        if self.buffer.is_none() {
            let pages = crate::vspace::pages_for(BUFFER_BYTES as u64);
            let map = Mapping::new(pages, Rights::READ | Rights::WRITE).map_err(|_| FsError::NoSpace)?;
            let mut m = Message::new(p::ATTACH);
            m.push_cap(map.handle(), Rights::READ | Rights::WRITE | Rights::MAP);
            // A handle that cannot share memory (a paired device's file,
            // through the soft bus: its server gets a read-only copy, and
            // answers AccessDenied; a bus that carries no memory answers
            // Unsupported): the caller then moves the data in memory
            // objects of their own, or in the messages.
            match call(self.ep, &m) {
                Err(FsError::Unsupported | FsError::AccessDenied) => {
                    self.inline_only = true;
                    return Err(FsError::Unsupported);
                }
                r => r?,
            };
            self.buffer = Some(map);
        }
        self.buffer.as_mut().ok_or(FsError::Unavailable)
    }

    fn read_inline(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let len = buf.len().min(p::INLINE);
        let r = call(self.ep, &Message::with_words(p::READ_INLINE, &[offset, len as u64]))?;
        let mut tmp = [0u8; p::INLINE];
        let (bytes, _) = p::get_bytes(&r, 0, &mut tmp)?;
        let n = bytes.len().min(len);
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(n)
    }

    /// [`p::READ_MEMORY`]: up to [`p::MEMORY_IO`] bytes, in a memory
    /// object the reply carries.
    fn read_memory(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let len = buf.len().min(p::MEMORY_IO);
        let m = Message::with_words(p::READ_MEMORY, &[offset, len as u64]).accepting_caps(1);
        let r = call(self.ep, &m)?;
        let Some(mem) = r.caps().first().map(|c| c.handle) else {
            return Err(FsError::InvalidArgument);
        };
        let n = (r.word(0) as usize).min(len);
        let size = syscall::cap_info(mem).map(|i| i.size as usize).unwrap_or(0);
        let copied = if n <= size {
            crate::vspace::with_scratch(mem, crate::vspace::pages_for(n as u64).max(1), Rights::READ, |b| {
                buf[..n].copy_from_slice(&b[..n])
            })
            .map_err(|_| FsError::InvalidArgument)
        } else {
            Err(FsError::InvalidArgument)
        };
        for c in r.caps() {
            let _ = syscall::cap_delete(c.handle);
        }
        copied.map(|()| n)
    }

    /// [`p::WRITE_MEMORY`]: up to [`p::MEMORY_IO`] bytes, in a memory
    /// object the call carries.
    fn write_memory(&self, offset: u64, data: &[u8]) -> Result<usize> {
        let len = data.len().min(p::MEMORY_IO);
        let mut map = Mapping::new(crate::vspace::pages_for(len as u64), Rights::READ | Rights::WRITE)
            .map_err(|_| FsError::NoSpace)?;
        map.as_mut_slice()[..len].copy_from_slice(&data[..len]);
        let mut m = Message::with_words(p::WRITE_MEMORY, &[offset, len as u64]);
        m.push_cap(map.handle(), Rights::READ | Rights::MAP);
        Ok((call(self.ep, &m)?.word(0) as usize).min(len))
    }

    /// Reads at `offset` (not moving the position); 0 at the end.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if buf.len() <= p::INLINE {
            return self.read_inline(offset, buf);
        }
        if let Err(FsError::Unsupported) = self.buffer() {
            // No shared memory: a memory object a call (or, for the
            // tail, the message).
            let mut done = 0;
            while done < buf.len() {
                let at = offset + done as u64;
                let n = if buf.len() - done > p::INLINE {
                    self.read_memory(at, &mut buf[done..])?
                } else {
                    self.read_inline(at, &mut buf[done..])?
                };
                done += n;
                if n == 0 {
                    break;
                }
            }
            return Ok(done);
        }
        self.buffer()?;
        let mut done = 0;
        while done < buf.len() {
            let len = (buf.len() - done).min(BUFFER_BYTES);
            let ep = self.ep;
            let r = call(
                ep,
                &Message::with_words(p::READ, &[offset + done as u64, len as u64, 0]),
            )?;
            let n = (r.word(0) as usize).min(len);
            let map = self.buffer()?;
            buf[done..done + n].copy_from_slice(&map.as_slice()[..n]);
            done += n;
            if n < len {
                break;
            }
        }
        Ok(done)
    }

    /// Writes at `offset` ([`p::AT_END`]: at the end), not moving the
    /// position. Returns the bytes written.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<usize> {
        if data.len() > p::INLINE && matches!(self.buffer(), Err(FsError::Unsupported)) {
            return self.write_memory(offset, data);
        }
        if data.len() <= p::INLINE {
            let mut m = Message::with_words(p::WRITE_INLINE, &[offset]);
            p::push_bytes(&mut m, data, p::INLINE)?;
            return Ok(call(self.ep, &m)?.word(0) as usize);
        }
        let len = data.len().min(BUFFER_BYTES);
        self.buffer()?.as_mut_slice()[..len].copy_from_slice(&data[..len]);
        let r = call(self.ep, &Message::with_words(p::WRITE, &[offset, len as u64, 0]))?;
        Ok((r.word(0) as usize).min(len))
    }

    pub fn write_all_at(&mut self, mut offset: u64, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let n = self.write_at(offset, data)?;
            if n == 0 {
                return Err(FsError::Io);
            }
            data = &data[n..];
            if offset != p::AT_END {
                offset += n as u64;
            }
        }
        Ok(())
    }

    pub fn metadata(&self) -> Result<Stat> {
        let r = call(self.ep, &path_msg(p::STAT, &[], "")?)?;
        Ok(Stat::from_words(&r, 0))
    }

    pub fn set_len(&mut self, len: u64) -> Result<()> {
        call(self.ep, &Message::with_words(p::TRUNCATE, &[len])).map(drop)
    }

    /// Returns once the file's data, both FATs and its directory entry
    /// are on the disk.
    pub fn sync_all(&mut self) -> Result<()> {
        call(self.ep, &Message::new(p::FSYNC)).map(drop)
    }

    /// A second handle with `rights` (narrowed), e.g. read-only.
    pub fn try_clone(&self, rights: u64) -> Result<File> {
        let r = call(self.ep, &Message::with_words(p::CLONE, &[rights]).accepting_caps(1))?;
        Ok(File {
            ep: new_handle(&r)?,
            pos: 0,
            append: false,
            buffer: None,
            inline_only: false,
        })
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let _ = call(self.ep, &Message::new(p::CLOSE));
        let _ = syscall::cap_delete(self.ep);
    }
}

impl embedded_io::ErrorType for File {
    type Error = FsError;
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let n = self.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for File {
    fn write(&mut self, data: &[u8]) -> Result<usize> {
        if self.append {
            let n = self.write_at(p::AT_END, data)?;
            self.pos = self.metadata()?.size;
            return Ok(n);
        }
        let n = self.write_at(self.pos, data)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> Result<u64> {
        let base = match pos {
            SeekFrom::Start(n) => {
                self.pos = n;
                return Ok(n);
            }
            SeekFrom::Current(d) => (self.pos, d),
            SeekFrom::End(d) => (self.metadata()?.size, d),
        };
        let new = base.0.checked_add_signed(base.1).ok_or(FsError::InvalidArgument)?;
        self.pos = new;
        Ok(new)
    }
}

/// The mounts granted to this task, addressed by absolute paths
/// (`/data/notes.txt`).
pub struct Namespace {
    conn: names::Connection,
    roots: Vec<(String, Dir)>,
    /// A paired device's mounts ([`Namespace::remote`]).
    remote: bool,
}

impl Default for Namespace {
    fn default() -> Self {
        Namespace::new()
    }
}

impl Namespace {
    pub fn new() -> Namespace {
        Namespace {
            conn: names::Connection::new(p::NAME),
            roots: Vec::new(),
            remote: false,
        }
    }

    /// The mounts a paired device grants its soft bus (its file server's
    /// `grant=bus:...`), through a remote capability
    /// ([`names::Connection::remote`]); the device must share `fs`.
    pub fn remote(device: &str) -> Namespace {
        Namespace {
            conn: names::Connection::remote(device, p::NAME),
            roots: Vec::new(),
            remote: true,
        }
    }

    fn call(&mut self, m: &Message) -> Result<Message> {
        // A server that restarted: the first call finds the old endpoint
        // dead (and drops it), the second looks the service up again. A
        // server that did not answer in time is not waited for twice.
        for _ in 0..2 {
            match self.conn.call(m, TIMEOUT) {
                Ok(r) => return p::check(r),
                Err(abi::Error::PeerDied | abi::Error::BadHandle | abi::Error::WrongType) => {}
                Err(_) => break,
            }
        }
        Err(FsError::Unavailable)
    }

    /// The mounts granted: `(name, rights)`.
    pub fn mounts(&mut self) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for i in 0.. {
            match self.call(&Message::with_words(p::MOUNTS, &[i])) {
                Ok(r) => {
                    let mut buf = [0u8; p::MAX_PATH];
                    let (name, _) = p::get_str(&r, 1, &mut buf)?;
                    out.push((name.into(), r.word(0)));
                }
                Err(FsError::NotFound) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The root directory of mount `name`.
    pub fn root(&mut self, name: &str) -> Result<&Dir> {
        if let Some(i) = self.roots.iter().position(|(n, _)| n == name) {
            return Ok(&self.roots[i].1);
        }
        let r = self.call(&path_msg(p::ROOT, &[], name)?.accepting_caps(1))?;
        let dir = Dir::from_handle(new_handle(&r)?, r.word(0));
        self.roots.push((name.into(), dir));
        Ok(&self.roots.last().ok_or(FsError::Unavailable)?.1)
    }

    /// Forgets the cached roots (after the server restarted).
    pub fn reset(&mut self) {
        self.roots.clear();
    }

    /// Runs `f` on the mount's root and the rest of absolute `path`; a
    /// server that restarted is reconnected and `f` run once more. Not
    /// after an `Unavailable` from a local server that still runs (its
    /// disk is gone, or it did not answer in time): the caller retries
    /// later. (A paired device's server cannot be asked so: its mounts
    /// are looked up again after any `Unavailable`.)
    pub fn with<T>(&mut self, path: &str, f: impl Fn(&Dir, &str) -> Result<T>) -> Result<T> {
        let path = p::absolute("/", path);
        let (mount, rest) = p::split_mount(&path).ok_or(FsError::InvalidArgument)?;
        let rest = String::from(rest);
        match f(self.root(mount)?, &rest) {
            Err(FsError::Unavailable) if self.remote || self.conn.is_revoked() => {
                self.reset();
                f(self.root(mount)?, &rest)
            }
            r => r,
        }
    }

    pub fn read(&mut self, path: &str) -> Result<Vec<u8>> {
        self.with(path, |d, p| d.read(p))
    }
    pub fn write(&mut self, path: &str, data: &[u8]) -> Result<()> {
        self.with(path, |d, p| d.write(p, data))
    }
    pub fn create_dir(&mut self, path: &str) -> Result<()> {
        self.with(path, |d, p| d.create_dir(p))
    }
    pub fn remove_file(&mut self, path: &str) -> Result<()> {
        self.with(path, |d, p| d.remove_file(p))
    }
    pub fn remove_dir(&mut self, path: &str) -> Result<()> {
        self.with(path, |d, p| d.remove_dir(p))
    }
    pub fn metadata(&mut self, path: &str) -> Result<Stat> {
        self.with(path, |d, p| d.metadata(p))
    }
    pub fn read_dir(&mut self, path: &str) -> Result<Vec<DirEntry>> {
        self.with(path, |d, p| {
            if p.is_empty() {
                d.read_dir()
            } else {
                d.open_dir(p, p::READ_RIGHT)?.read_dir()
            }
        })
    }
    pub fn open(&mut self, path: &str, o: &OpenOptions) -> Result<File> {
        self.with(path, |d, p| d.open(p, o))
    }
    /// Renames within one mount ([`FsError::InvalidArgument`] across mounts).
    pub fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        let (from, to) = (p::absolute("/", from), p::absolute("/", to));
        let (m1, r1) = p::split_mount(&from).ok_or(FsError::InvalidArgument)?;
        let (m2, r2) = p::split_mount(&to).ok_or(FsError::InvalidArgument)?;
        if m1 != m2 {
            return Err(FsError::InvalidArgument);
        }
        let r2 = String::from(r2);
        self.with(&from, |d, _| d.rename(r1, &r2))
    }
    pub fn statfs(&mut self, path: &str) -> Result<[u64; 4]> {
        self.with(path, |d, _| d.statfs())
    }
    pub fn sync(&mut self, path: &str) -> Result<()> {
        self.with(path, |d, _| d.sync())
    }
}
