//! fs: the file server. It mounts FAT16/FAT32 volumes (the `fat` crate)
//! on block services (`blk`, protocol `userlib::services::blk`) and
//! serves them as `fs` (protocol: `userlib::services::fs`).
//!
//! Every open file or directory is a badged copy of the server's one
//! endpoint, minted for it; the badge indexes the handle table
//! ([`fs::handles`]), which holds the node, the rights and the attached
//! buffer. Closing a handle revokes every copy of it. Which task may open
//! which mount's root, and with which rights, is the profile's: the
//! `grant=` arguments ([`fs::config`]), checked against the name of the
//! calling task (the name service badges the service endpoint with the
//! caller's task id; the supervisor names it: `supervisor::task_name`).
//! A `private=` directory is its task's alone: a root handle records
//! which it may enter (its task's own, if the badge names the task, not
//! one of its clients), and `Server::check_private` refuses the others.
//!
//! A mount is mounted on the first request for it, and again after it
//! failed (an unformatted disk, a corrupt image: the caller gets the
//! error; other mounts are unaffected).
//!
//! **A disk whose driver is gone** ([`fs::link`]): a block request that
//! finds the driver dead waits up to [`fs::link::GRACE_US`] for the
//! supervisor's restart and runs again (the `blk` protocol's requests are
//! idempotent), so a driver restart loses no written data, and clients
//! see nothing of one that is back in time. A driver that is not back by
//! then (killed, slow to restart), or that no task here may be (a machine
//! without the disk: not waited for, [`fs::link::Port::provided`]), makes
//! the mount's requests that need the disk fail at once with
//! [`FsError::Unavailable`], until a request or the write-back finds a
//! driver registered again; what needs no disk (the mounts list, sectors
//! in the cache, other mounts) is served meanwhile. Changes waiting in the
//! cache stay there (they were acknowledged: the write-back retries them
//! every [`WRITEBACK_MS`] and they reach the disk once it is back); a
//! change that cannot be cached, and an FSYNC/SYNC with changes to write
//! while the disk is gone, fails with `Unavailable`.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
#![forbid(unsafe_code)]

extern crate alloc;

#[cfg(not(test))]
mod server {
    use alloc::boxed::Box;
    use alloc::string::String;
    use alloc::vec::Vec;
    use fat::{NodeId, OpenFlags, Volume};
    use fs::config::{self, Config};
    use fs::handles::{Table, HANDLE_BIT};
    use fs::link::{self, Failure, Link, Port, State};
    use userlib::abi::boot_info::StartInfo;
    use userlib::abi::ObjectType;
    use userlib::ipc::Timeout;
    use userlib::names::{self, supervisor};
    use userlib::services::blk::{self, Blk};
    use userlib::services::fs::{self as p, FsError, Stat};
    use userlib::services::rtc;
    use userlib::vspace::Mapping;
    use userlib::{log, process, syscall, Error, Handle, Message, Rights};

    // Heap: each mount's block cache (1 MiB by default) and node table,
    // the handle table, request scratch.
    userlib::entry!(main, heap = 3 << 20);

    /// How long changes may wait in the cache (see the request loop).
    const WRITEBACK_MS: u64 = 500;

    /// Client programs remembered by task id (the oldest goes first).
    const MAX_CLIENT_NAMES: usize = 64;

    /// Most open handles (all clients together).
    const MAX_HANDLES: usize = 1024;

    /// A block service as the FAT code's disk. Its requests run through
    /// the mount's [`Link`]: they wait for a driver that died only up to
    /// the link's grace, then fail at once ([`fat::Error::Unavailable`])
    /// until a driver serves the disk again.
    struct BlkDev {
        port: BlkPort,
        link: Link,
        info: blk::Info,
        per_request: u64,
    }

    /// The block client, and its service's name, as the link's [`Port`].
    struct BlkPort(Blk, &'static str);

    impl Port for BlkPort {
        fn lookup_now(&mut self) -> Result<(), Error> {
            self.0.lookup_now()
        }
        fn now_us(&self) -> u64 {
            syscall::now_us()
        }
        fn pause(&mut self) {
            syscall::sleep_ms(link::POLL_MS);
        }
        /// Whether a route of the supervisor's (a registered service, or a
        /// provider task's `provides` pattern not registered now) names the
        /// disk's service. If the routes cannot be listed, the driver is
        /// waited for as one that is starting.
        fn provided(&mut self) -> bool {
            let service = self.1;
            supervisor::services().map_or(true, |routes| {
                routes.iter().any(|(_, text)| {
                    text.split(' ')
                        .next()
                        .is_some_and(|pattern| profile::name_matches(pattern, service))
                })
            })
        }
    }

    impl BlkDev {
        /// Connects to disk `service` through `link` (a new link waits
        /// for a driver that is starting; a Gone one fails at once).
        fn open(service: &'static str, mut link: Link) -> Result<BlkDev, (Link, fat::Error)> {
            let blk = match Blk::new(service, blk::MAX_SECTORS as usize * blk::SECTOR_SIZE) {
                Ok(b) => b,
                Err(_) => return Err((link, fat::Error::Io)),
            };
            let mut port = BlkPort(blk, service);
            match link.request(&mut port, |p| p.0.info()) {
                Ok(info) => {
                    let per_request = info.max_sectors.clamp(1, blk::MAX_SECTORS);
                    Ok(BlkDev {
                        port,
                        link,
                        info,
                        per_request,
                    })
                }
                Err(f) => Err((link, disk_error(f))),
            }
        }

        /// Runs block call `call` through the link; logs when the disk
        /// goes and comes back. A driver found again after the disk was
        /// gone is asked first which disk it serves: one of another size
        /// is not the disk the cache holds sectors of, and is not used.
        fn request<T>(&mut self, mut call: impl FnMut(&mut Blk) -> Result<T, Error>) -> Result<T, fat::Error> {
            if self.link.state() == State::Gone {
                match self.link.request(&mut self.port, |p| p.0.info()) {
                    Ok(i) if i.sectors == self.info.sectors => {
                        log::info!("block driver back: serving the disk again");
                    }
                    Ok(i) => {
                        log::warn!(
                            "block driver back with another disk ({} sectors, was {}): not using it",
                            i.sectors,
                            self.info.sectors
                        );
                        self.link = Link::with_state(State::Gone);
                        return Err(fat::Error::Unavailable);
                    }
                    Err(f) => return Err(disk_error(f)),
                }
            }
            let r = self.link.request(&mut self.port, |p| call(&mut p.0));
            if self.link.state() == State::Gone {
                log::warn!("block driver gone: requests that need the disk fail until it is back");
            }
            r.map_err(disk_error)
        }
    }

    fn disk_error(f: Failure) -> fat::Error {
        match f {
            Failure::Gone => fat::Error::Unavailable,
            Failure::Io => fat::Error::Io,
        }
    }

    impl fat::BlockDevice for BlkDev {
        fn sectors(&self) -> u64 {
            self.info.sectors
        }
        fn read_only(&self) -> bool {
            self.info.read_only
        }
        fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), fat::Error> {
            for (k, chunk) in buf.chunks_mut(self.per_request as usize * blk::SECTOR_SIZE).enumerate() {
                let sector = lba + k as u64 * self.per_request;
                let n = (chunk.len() / blk::SECTOR_SIZE) as u64;
                self.request(|b| b.read(sector, n, 0))?;
                chunk.copy_from_slice(&self.port.0.buffer()[..chunk.len()]);
            }
            Ok(())
        }
        /// Hands the cache each request's sectors in the shared buffer
        /// (one copy fewer than [`Self::read`]).
        fn read_each(&mut self, lba: u64, n: usize, sink: &mut dyn FnMut(usize, &[u8])) -> Result<(), fat::Error> {
            let per = self.per_request as usize;
            let mut k = 0;
            while k < n {
                let m = per.min(n - k);
                let sector = lba + k as u64;
                self.request(|b| b.read(sector, m as u64, 0))?;
                sink(k, &self.port.0.buffer()[..m * blk::SECTOR_SIZE]);
                k += m;
            }
            Ok(())
        }
        fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), fat::Error> {
            for (k, chunk) in buf.chunks(self.per_request as usize * blk::SECTOR_SIZE).enumerate() {
                let sector = lba + k as u64 * self.per_request;
                let n = (chunk.len() / blk::SECTOR_SIZE) as u64;
                self.port.0.buffer_mut()[..chunk.len()].copy_from_slice(chunk);
                self.request(|b| b.write(sector, n, 0))?;
            }
            Ok(())
        }
        fn flush(&mut self) -> Result<(), fat::Error> {
            self.request(|b| b.flush())
        }
    }

    /// FAT timestamps from the RTC plus the time since. The RTC is read
    /// when the first timestamp is needed, so a mount that is only read
    /// never asks it (connecting to `rtc` and reading it cost about 16,000
    /// instructions of a mount).
    struct RtcClock {
        /// `(unix seconds, microseconds since boot)` when it was read;
        /// `None` if the RTC had no plausible time (FixedClock's date then).
        start: core::cell::OnceCell<Option<(u64, u64)>>,
    }

    impl fat::Clock for RtcClock {
        fn now(&self) -> (u16, u16) {
            let Some((unix_at_start, us_at_start)) = *self.start.get_or_init(read_rtc) else {
                return fat::volume::FixedClock.now();
            };
            let t = unix_at_start + (syscall::now_us() - us_at_start) / 1_000_000;
            let (y, mo, d, h, mi, s) = rtc::civil_from_unix(t);
            let y = y.clamp(1980, 2107) as u16;
            (
                ((y - 1980) << 9) | (mo as u16) << 5 | d as u16,
                (h as u16) << 11 | (mi as u16) << 5 | (s as u16 / 2),
            )
        }
    }

    /// The RTC's time if it is after 1980 (FAT's epoch), and when it was read.
    fn read_rtc() -> Option<(u64, u64)> {
        let mut conn = rtc::connection();
        match rtc::now(&mut conn) {
            Ok(t) if t > 315_532_800 => Some((t, syscall::now_us())),
            _ => None,
        }
    }

    fn clock() -> Box<dyn fat::Clock + Send> {
        Box::new(RtcClock {
            start: core::cell::OnceCell::new(),
        })
    }

    fn fs_error(e: fat::Error) -> FsError {
        use fat::Error as E;
        match e {
            E::NotFound => FsError::NotFound,
            E::Exists => FsError::Exists,
            E::NotADirectory => FsError::NotADirectory,
            E::IsADirectory => FsError::IsADirectory,
            E::NotEmpty => FsError::NotEmpty,
            E::NoSpace => FsError::NoSpace,
            E::ReadOnly => FsError::ReadOnly,
            E::InvalidName => FsError::InvalidName,
            E::TooLarge => FsError::TooLarge,
            E::Busy => FsError::Busy,
            E::Escape => FsError::OutsideRoot,
            E::Io => FsError::Io,
            E::Unavailable => FsError::Unavailable,
            E::Corrupt => FsError::Corrupt,
            E::Unsupported => FsError::Unsupported,
            E::BadNode => FsError::InvalidArgument,
        }
    }

    struct MountState {
        spec: config::Mount,
        /// `spec.service`, for the block client (which keeps the name).
        service: &'static str,
        volume: Option<Volume<BlkDev>>,
        /// The link to the driver while not mounted (a mounted volume's
        /// device holds it): Gone after a mount found no driver, so that
        /// the next mount attempt does not wait for one again.
        link: Link,
    }

    /// A client's buffer: its memory object, which the server copies to
    /// and from with `MemoryRead`/`MemoryWrite` (never mapped here, so a
    /// client that revokes it makes a request fail, not the server fault).
    struct Buffer {
        mem: Handle,
        size: u64,
    }

    impl Drop for Buffer {
        fn drop(&mut self) {
            let _ = syscall::cap_delete(self.mem);
        }
    }

    struct Open {
        mount: usize,
        node: NodeId,
        is_dir: bool,
        rights: u64,
        /// The private directories (`private=`) it may enter: a mask of
        /// [`Config::privates_of`]'s, which every handle opened or cloned
        /// from it keeps.
        private: u64,
        pos: u64,
        buffer: Option<Buffer>,
        /// The server's minted endpoint (revoked on close).
        cap: Handle,
    }

    struct Server {
        ep: Handle,
        config: Config,
        mounts: Vec<MountState>,
        handles: Table<Open>,
        /// Task id -> program name, from the supervisor's list.
        names: Vec<(u64, String)>,
        /// The memory object of the last [`p::READ_MEMORY`] reply: deleted
        /// once that reply is sent.
        sent_object: Option<Handle>,
        /// Where data to be written passes from a client's memory object
        /// to the volume ([`SCRATCH`] bytes): memory of the server's own,
        /// mapped at a page boundary, so that the copy into the cache
        /// (whose slots are 16-byte aligned) takes userlib's q-register
        /// loop. Reads need none: `MemoryWrite` copies straight from the
        /// cache ([`fat::Volume::read_to`]).
        scratch: Mapping,
    }

    /// Bytes of file data moved per `MemoryRead` of a write: a client's
    /// whole buffer (`userlib::fs`'s is 64 KiB) and a whole
    /// [`p::MEMORY_IO`].
    const SCRATCH: usize = 64 << 10;

    fn main(_start: &StartInfo) {
        let config = config::parse(process().args()).unwrap_or_else(|e| panic!("arguments: {e}"));
        let ep = syscall::create(process().pool, ObjectType::Endpoint, 0).expect("endpoint");
        names::register(p::NAME, ep).unwrap_or_else(|e| panic!("register: {e}"));
        for m in &config.mounts {
            log::info!(
                "/{} on {}{}{}",
                m.name,
                m.service,
                m.partition
                    .map(|n| alloc::format!(" partition {n}"))
                    .unwrap_or_default(),
                if m.read_only { " (read-only)" } else { "" }
            );
        }
        let mut s = Server {
            ep,
            mounts: config
                .mounts
                .iter()
                .map(|m| MountState {
                    spec: m.clone(),
                    service: Box::leak(m.service.clone().into_boxed_str()),
                    volume: None,
                    link: Link::new(),
                })
                .collect(),
            config,
            handles: Table::new(MAX_HANDLES),
            names: Vec::new(),
            sent_object: None,
            scratch: Mapping::new(userlib::vspace::pages_for(SCRATCH as u64), Rights::READ | Rights::WRITE)
                .expect("scratch buffer"),
        };
        let (mut msg, mut badge) = syscall::recv(ep, Timeout::Forever).expect("receive");
        // Write-back: changes reach the disk once requests pause for
        // WRITEBACK_MS, or WRITEBACK_MS after the first unsynced change
        // under steady load (and at once on FSYNC/SYNC).
        let mut dirty_since: Option<u64> = None;
        loop {
            let caps: Vec<Handle> = msg.caps().iter().map(|c| c.handle).collect();
            let mut used = None;
            let reply = s.handle(&msg, badge, &caps, &mut used).unwrap_or_else(FsError::reply);
            // Capabilities nobody asked for must not fill the cspace.
            for c in caps {
                if Some(c) != used {
                    let _ = syscall::cap_delete(c);
                }
            }
            // (The clock is read only while changes wait: a system call.)
            match dirty_since {
                None if s.dirty() => dirty_since = Some(syscall::now_us()),
                Some(t) if syscall::now_us() - t > WRITEBACK_MS * 1000 => {
                    s.sync_all();
                    dirty_since = None;
                }
                _ => {}
            }
            let timeout = if dirty_since.is_some() {
                Timeout::millis(WRITEBACK_MS)
            } else {
                Timeout::Forever
            };
            let mut next = match s.sent_object.take() {
                Some(mem) => {
                    let _ = syscall::reply(&reply);
                    let _ = syscall::cap_delete(mem);
                    syscall::recv(ep, timeout)
                }
                None => syscall::reply_recv(ep, &reply, timeout),
            };
            if let Err(Error::TimedOut) = next {
                s.sync_all();
                dirty_since = None;
                next = syscall::recv(ep, Timeout::Forever);
            }
            match next {
                Ok((m, b)) => (msg, badge) = (m, b),
                Err(e) => panic!("receive: {e}"),
            }
        }
    }

    impl Server {
        fn handle(
            &mut self,
            msg: &Message,
            badge: u64,
            caps: &[Handle],
            used: &mut Option<Handle>,
        ) -> Result<Message, FsError> {
            if badge & HANDLE_BIT == 0 {
                return match msg.label {
                    p::MOUNTS => self.list_mounts(badge, msg.word(0)),
                    p::ROOT => {
                        let mut buf = [0u8; p::MAX_PATH];
                        let (name, _) = p::get_str(msg, 0, &mut buf)?;
                        self.root(badge, name)
                    }
                    _ => Err(FsError::InvalidArgument),
                };
            }
            let h = self.handles.get_mut(badge).ok_or(FsError::InvalidArgument)?;
            let (mount, node, is_dir, rights, private) = (h.mount, h.node, h.is_dir, h.rights, h.private);
            let need_write = matches!(
                msg.label,
                p::WRITE
                    | p::WRITE_INLINE
                    | p::WRITE_MEMORY
                    | p::TRUNCATE
                    | p::MKDIR
                    | p::UNLINK
                    | p::RMDIR
                    | p::RENAME
            );
            if need_write && rights & p::WRITE_RIGHT == 0 {
                return Err(FsError::AccessDenied);
            }
            let file_only = matches!(
                msg.label,
                p::ATTACH
                    | p::READ
                    | p::WRITE
                    | p::READ_INLINE
                    | p::WRITE_INLINE
                    | p::READ_MEMORY
                    | p::WRITE_MEMORY
                    | p::TRUNCATE
            );
            let dir_only = matches!(
                msg.label,
                p::OPEN | p::READDIR | p::MKDIR | p::UNLINK | p::RMDIR | p::RENAME
            );
            if file_only && is_dir {
                return Err(FsError::IsADirectory);
            }
            if dir_only && !is_dir {
                return Err(FsError::NotADirectory);
            }
            if matches!(msg.label, p::READ | p::READ_INLINE | p::READ_MEMORY) && rights & p::READ_RIGHT == 0 {
                return Err(FsError::AccessDenied);
            }
            // (A path's buffer is zeroed only by the requests that carry one.)
            match msg.label {
                p::CLOSE => {
                    self.close(badge);
                    Ok(Message::new(0))
                }
                p::CLONE => {
                    let v = self.volume(mount)?;
                    v.dup(node).map_err(fs_error)?;
                    self.new_handle(mount, node, is_dir, rights & msg.word(0), private)
                }
                p::OPEN => {
                    let (flags, want) = (msg.word(0), msg.word(1));
                    let mut buf = [0u8; p::MAX_PATH];
                    let (path, _) = p::get_str(msg, 2, &mut buf)?;
                    self.check_private(mount, node, private, path)?;
                    if want & !rights & (p::READ_RIGHT | p::WRITE_RIGHT) != 0 {
                        return Err(FsError::AccessDenied);
                    }
                    if flags & (p::CREATE | p::TRUNCATE_FLAG) != 0 && rights & p::WRITE_RIGHT == 0 {
                        return Err(FsError::AccessDenied);
                    }
                    let f = OpenFlags {
                        create: flags & p::CREATE != 0,
                        exclusive: flags & p::EXCLUSIVE != 0,
                        truncate: flags & p::TRUNCATE_FLAG != 0,
                        directory: flags & p::DIRECTORY != 0,
                    };
                    let v = self.volume(mount)?;
                    let id = v.open(node, path, f).map_err(fs_error)?;
                    let st = v.stat(id).map_err(fs_error);
                    let st = match st {
                        Ok(st) => st,
                        Err(e) => {
                            let _ = v.close(id);
                            return Err(e);
                        }
                    };
                    let mut r = self.new_handle(mount, id, st.is_dir, want & rights, private)?;
                    r.set_words(&[st.is_dir as u64, st.size]);
                    Ok(r)
                }
                p::ATTACH => {
                    let &[mem] = caps else {
                        return Err(FsError::InvalidArgument);
                    };
                    let info = syscall::cap_info(mem).map_err(|_| FsError::InvalidArgument)?;
                    if info.object != Some(ObjectType::Memory) || info.size == 0 || info.size > p::MAX_BUFFER as u64 {
                        return Err(FsError::InvalidArgument);
                    }
                    if !info.rights.contains(Rights::READ | Rights::WRITE) {
                        return Err(FsError::AccessDenied);
                    }
                    *used = Some(mem);
                    let h = self.handles.get_mut(badge).ok_or(FsError::InvalidArgument)?;
                    h.buffer = Some(Buffer { mem, size: info.size });
                    Ok(Message::with_words(0, &[info.size]))
                }
                p::READ | p::WRITE => self.bulk(badge, msg),
                p::READ_MEMORY => {
                    let len = msg.word(1).min(p::MEMORY_IO as u64) as usize;
                    let off = self.offset(badge, msg.word(0), false)?;
                    self.volume(mount)?;
                    let pages = userlib::vspace::pages_for(len as u64).max(1);
                    let mem =
                        syscall::create(process().pool, ObjectType::Memory, pages).map_err(|_| FsError::NoSpace)?;
                    // Each run of cached sectors straight into the new
                    // object (which only this server holds yet).
                    let mut at = 0u64;
                    let n = match self.mounts[mount].volume.as_mut().ok_or(FsError::Io) {
                        Ok(v) => v
                            .read_to(node, off, len, &mut |bytes| {
                                syscall::memory_write(mem, at, bytes).map_err(|_| fat::Error::NoSpace)?;
                                at += bytes.len() as u64;
                                Ok(())
                            })
                            .map_err(fs_error),
                        Err(e) => Err(e),
                    };
                    let n = match n {
                        Ok(n) => n,
                        Err(e) => {
                            let _ = syscall::cap_delete(mem);
                            return Err(e);
                        }
                    };
                    self.advance(badge, msg.word(0), off + n as u64);
                    // Deleted here once the reply is sent (the client's
                    // copy keeps the object).
                    self.sent_object = Some(mem);
                    let mut r = Message::with_words(0, &[n as u64]);
                    r.push_cap(mem, Rights::READ | Rights::WRITE | Rights::MAP);
                    Ok(r)
                }
                p::WRITE_MEMORY => {
                    let &[mem] = caps else {
                        return Err(FsError::InvalidArgument);
                    };
                    let info = syscall::cap_info(mem).map_err(|_| FsError::InvalidArgument)?;
                    let len = msg.word(1);
                    if info.object != Some(ObjectType::Memory) || len > info.size || len > p::MEMORY_IO as u64 {
                        return Err(FsError::InvalidArgument);
                    }
                    if !info.rights.contains(Rights::READ) {
                        return Err(FsError::AccessDenied);
                    }
                    let off = self.offset(badge, msg.word(0), true)?;
                    self.volume(mount)?;
                    let Server { mounts, scratch, .. } = self;
                    let data = &mut scratch.as_mut_slice()[..len as usize];
                    // (The client may have revoked it since `cap_info`.)
                    syscall::memory_read(mem, 0, data).map_err(|_| FsError::InvalidArgument)?;
                    let v = mounts[mount].volume.as_mut().ok_or(FsError::Io)?;
                    let n = v.write(node, off, data).map_err(fs_error)?;
                    self.advance(badge, msg.word(0), off + n as u64);
                    Ok(Message::with_words(0, &[n as u64]))
                }
                p::READ_INLINE => {
                    let len = (msg.word(1) as usize).min(p::INLINE);
                    let off = self.offset(badge, msg.word(0), false)?;
                    let mut data = [0u8; p::INLINE];
                    let n = self
                        .volume(mount)?
                        .read(node, off, &mut data[..len])
                        .map_err(fs_error)?;
                    self.advance(badge, msg.word(0), off + n as u64);
                    let mut r = Message::new(0);
                    p::push_bytes(&mut r, &data[..n], p::INLINE)?;
                    Ok(r)
                }
                p::WRITE_INLINE => {
                    let mut data = [0u8; p::INLINE];
                    let (bytes, _) = p::get_bytes(msg, 1, &mut data)?;
                    let off = self.offset(badge, msg.word(0), true)?;
                    let n = self.volume(mount)?.write(node, off, bytes).map_err(fs_error)?;
                    self.advance(badge, msg.word(0), off + n as u64);
                    Ok(Message::with_words(0, &[n as u64]))
                }
                p::STAT => {
                    let mut buf = [0u8; p::MAX_PATH];
                    let (path, _) = p::get_str(msg, 0, &mut buf)?;
                    self.check_private(mount, node, private, path)?;
                    let v = self.volume(mount)?;
                    let m = if path.is_empty() {
                        v.stat(node)
                    } else {
                        v.stat_path(node, path)
                    }
                    .map_err(fs_error)?;
                    let mut r = Message::new(0);
                    stat_of(&m).push(&mut r);
                    Ok(r)
                }
                p::READDIR => {
                    let cursor = u32::try_from(msg.word(0)).map_err(|_| FsError::InvalidArgument)?;
                    let v = self.volume(mount)?;
                    let mut r = Message::new(0);
                    match v.read_dir(node, cursor).map_err(fs_error)? {
                        None => {
                            r.push(0);
                        }
                        Some((e, next)) => {
                            r.push(next as u64);
                            stat_of(&e.meta).push(&mut r);
                            // Names longer than a message holds are cut
                            // (FAT names are at most 255 UTF-16 units).
                            let mut end = e.name.len().min(p::MAX_PATH);
                            while !e.name.is_char_boundary(end) {
                                end -= 1;
                            }
                            p::push_str(&mut r, &e.name[..end])?;
                        }
                    }
                    Ok(r)
                }
                p::MKDIR | p::UNLINK | p::RMDIR => {
                    let mut buf = [0u8; p::MAX_PATH];
                    let (path, _) = p::get_str(msg, 0, &mut buf)?;
                    self.check_private(mount, node, private, path)?;
                    let v = self.volume(mount)?;
                    match msg.label {
                        p::MKDIR => v.mkdir(node, path),
                        p::UNLINK => v.unlink(node, path),
                        _ => v.rmdir(node, path),
                    }
                    .map_err(fs_error)?;
                    Ok(Message::new(0))
                }
                p::RENAME => {
                    let mut buf = [0u8; p::MAX_PATH];
                    let (from, next) = p::get_str(msg, 0, &mut buf)?;
                    let mut to_buf = [0u8; p::MAX_PATH];
                    let (to, _) = p::get_str(msg, next, &mut to_buf)?;
                    self.check_private(mount, node, private, from)?;
                    self.check_private(mount, node, private, to)?;
                    self.volume(mount)?.rename(node, from, node, to).map_err(fs_error)?;
                    Ok(Message::new(0))
                }
                p::TRUNCATE => {
                    self.volume(mount)?.set_len(node, msg.word(0)).map_err(fs_error)?;
                    Ok(Message::new(0))
                }
                // FAT keeps one allocation table for every file, so a
                // file's fsync writes the volume's cache (in order).
                p::FSYNC | p::SYNC => {
                    self.volume(mount)?.sync().map_err(fs_error)?;
                    Ok(Message::new(0))
                }
                p::DROP_CACHES => {
                    let v = self.volume(mount)?;
                    v.sync().map_err(fs_error)?;
                    v.drop_caches();
                    Ok(Message::new(0))
                }
                p::STATFS => {
                    let s = self.volume(mount)?.statfs().map_err(fs_error)?;
                    Ok(Message::with_words(
                        0,
                        &[s.cluster_bytes, s.clusters, s.free_clusters, s.fat32 as u64],
                    ))
                }
                _ => Err(FsError::InvalidArgument),
            }
        }

        /// The offset a request means ([`p::AT_CURSOR`], [`p::AT_END`]).
        fn offset(&mut self, badge: u64, word: u64, write: bool) -> Result<u64, FsError> {
            let h = self.handles.get_mut(badge).ok_or(FsError::InvalidArgument)?;
            let (mount, node, pos) = (h.mount, h.node, h.pos);
            match word {
                p::AT_CURSOR => Ok(pos),
                p::AT_END if write => Ok(self.volume(mount)?.stat(node).map_err(fs_error)?.size),
                p::AT_END => Err(FsError::InvalidArgument),
                o => Ok(o),
            }
        }

        fn advance(&mut self, badge: u64, word: u64, to: u64) {
            if matches!(word, p::AT_CURSOR | p::AT_END) {
                if let Some(h) = self.handles.get_mut(badge) {
                    h.pos = to;
                }
            }
        }

        /// [`p::READ`] and [`p::WRITE`] through the attached buffer. A read
        /// hands each run of cached sectors to `MemoryWrite`, which copies
        /// it from the cache into the client's object (one copy); a write
        /// moves pieces of [`SCRATCH`] bytes from the client's object with
        /// `MemoryRead` into the scratch buffer, which the volume writes. A
        /// client that deleted or revoked its buffer, even in the middle,
        /// gets `InvalidArgument` and its buffer is forgotten; a volume
        /// error after some bytes is a short count (the next request gets
        /// the error).
        fn bulk(&mut self, badge: u64, msg: &Message) -> Result<Message, FsError> {
            let write = msg.label == p::WRITE;
            let off = self.offset(badge, msg.word(0), write)?;
            let (len, at) = (msg.word(1), msg.word(2));
            let Server {
                handles,
                mounts,
                scratch,
                ..
            } = self;
            let h = handles.get_mut(badge).ok_or(FsError::InvalidArgument)?;
            let b = h.buffer.as_ref().ok_or(FsError::InvalidArgument)?;
            let end = at.checked_add(len).ok_or(FsError::InvalidArgument)?;
            if end > b.size {
                return Err(FsError::InvalidArgument);
            }
            let mem = b.mem;
            let v = mounts[h.mount].volume.as_mut().ok_or(FsError::Io)?;
            let mut done = 0u64;
            if write {
                while done < len {
                    let k = (len - done).min(SCRATCH as u64) as usize;
                    let data = &mut scratch.as_mut_slice()[..k];
                    if syscall::memory_read(mem, at + done, data).is_err() {
                        h.buffer = None;
                        return Err(FsError::InvalidArgument);
                    }
                    match v.write(h.node, off + done, data) {
                        Ok(n) => {
                            done += n as u64;
                            if n < k {
                                break;
                            }
                        }
                        Err(e) if done == 0 => return Err(fs_error(e)),
                        Err(_) => break,
                    }
                }
            } else {
                let len = usize::try_from(len).map_err(|_| FsError::InvalidArgument)?;
                let mut gone = false;
                let r = v.read_to(h.node, off, len, &mut |bytes| {
                    if syscall::memory_write(mem, at + done, bytes).is_err() {
                        gone = true;
                        return Err(fat::Error::Io);
                    }
                    done += bytes.len() as u64;
                    Ok(())
                });
                if gone {
                    h.buffer = None;
                    return Err(FsError::InvalidArgument);
                }
                match r {
                    Ok(n) => done = n as u64,
                    Err(e) if done == 0 => return Err(fs_error(e)),
                    Err(_) => {}
                }
            }
            if matches!(msg.word(0), p::AT_CURSOR | p::AT_END) {
                h.pos = off + done;
            }
            Ok(Message::with_words(0, &[done]))
        }

        fn new_handle(
            &mut self,
            mount: usize,
            node: NodeId,
            is_dir: bool,
            rights: u64,
            private: u64,
        ) -> Result<Message, FsError> {
            let open = Open {
                mount,
                node,
                is_dir,
                rights: rights & (p::READ_RIGHT | p::WRITE_RIGHT),
                private,
                pos: 0,
                buffer: None,
                cap: Handle::NULL,
            };
            let release = |s: &mut Server| {
                if let Some(v) = s.mounts[mount].volume.as_mut() {
                    let _ = v.close(node);
                }
            };
            let Some(badge) = self.handles.insert(open) else {
                release(self);
                return Err(FsError::TooManyHandles);
            };
            // GRANT on the server's copy lets the reply hand it on; the
            // client's copy may only send.
            let cap = match syscall::cap_mint(self.ep, Rights::SEND | Rights::GRANT, badge) {
                Ok(c) => c,
                Err(_) => {
                    self.handles.remove(badge);
                    release(self);
                    return Err(FsError::TooManyHandles);
                }
            };
            if let Some(h) = self.handles.get_mut(badge) {
                h.cap = cap;
            }
            let mut r = Message::with_words(0, &[rights & (p::READ_RIGHT | p::WRITE_RIGHT)]);
            r.push_cap(cap, Rights::SEND);
            Ok(r)
        }

        /// Refuses (`AccessDenied`) a path that, sent to directory `node`
        /// through a handle that may enter the private directories in
        /// `private` only, is or reaches into another of its mount's:
        /// any name a lookup finds it by ([`fat::Volume::within`]: case,
        /// short alias, `.` and `..`). A private directory is at the top
        /// of its mount, and a path may not leave the directory it is sent
        /// to, so only a handle of the mount's root can name one; a handle
        /// inside one was opened through it, by a handle that could.
        fn check_private(&mut self, mount: usize, node: NodeId, private: u64, path: &str) -> Result<(), FsError> {
            if self.config.barred(mount, private).next().is_none() {
                return Ok(());
            }
            self.volume(mount)?;
            let Server { config, mounts, .. } = self;
            let v = mounts[mount].volume.as_mut().ok_or(FsError::Io)?;
            if !v.is_root(node) {
                return Ok(());
            }
            for dir in config.barred(mount, private) {
                if v.within(node, path, dir).map_err(fs_error)? {
                    return Err(FsError::AccessDenied);
                }
            }
            Ok(())
        }

        fn close(&mut self, badge: u64) {
            if let Some(h) = self.handles.remove(badge) {
                let _ = syscall::cap_revoke(h.cap);
                let _ = syscall::cap_delete(h.cap);
                if let Some(v) = self.mounts[h.mount].volume.as_mut() {
                    let _ = v.close(h.node);
                }
            }
        }

        fn volume(&mut self, mount: usize) -> Result<&mut Volume<BlkDev>, FsError> {
            let m = self.mounts.get_mut(mount).ok_or(FsError::InvalidArgument)?;
            if m.volume.is_none() {
                let dev = match BlkDev::open(m.service, m.link) {
                    Ok(dev) => dev,
                    Err((link, e)) => {
                        match e {
                            // (Logged once, not on each request while gone.)
                            _ if m.link.state() == State::Gone => {}
                            fat::Error::Unavailable if link.absent() => log::warn!(
                                "/{}: no task here provides {} (the machine has no such disk): requests that need the disk fail at once",
                                m.spec.name,
                                m.spec.service
                            ),
                            fat::Error::Unavailable => log::warn!(
                                "/{}: no driver serves {}: requests that need the disk fail until one does",
                                m.spec.name,
                                m.spec.service
                            ),
                            e => log::warn!("/{}: {}: {}", m.spec.name, m.spec.service, fs_error(e)),
                        }
                        m.link = link;
                        return Err(fs_error(e));
                    }
                };
                let cache = self.config.cache_kib * 1024 / fat::SECTOR;
                match Volume::mount(dev, m.spec.partition, cache, clock()) {
                    Ok(v) => {
                        let g = v.geometry();
                        log::info!(
                            "/{}: mounted FAT{} ({} clusters of {} bytes){}",
                            m.spec.name,
                            if g.fat_type == fat::bpb::FatType::Fat32 { 32 } else { 16 },
                            g.clusters,
                            g.cluster_bytes(),
                            if v.is_read_only() || m.spec.read_only {
                                ", read-only"
                            } else {
                                ""
                            }
                        );
                        m.volume = Some(v);
                    }
                    Err(e) => {
                        log::warn!("/{}: cannot mount {}: {}", m.spec.name, m.spec.service, fs_error(e));
                        // (The device and its link went with the failed
                        // mount: a driver lost during it is not waited for
                        // again by the next attempt.)
                        m.link = Link::with_state(if e == fat::Error::Unavailable {
                            State::Gone
                        } else {
                            State::Lost
                        });
                        return Err(fs_error(e));
                    }
                }
            }
            m.volume.as_mut().ok_or(FsError::Io)
        }

        fn dirty(&self) -> bool {
            self.mounts
                .iter()
                .any(|m| m.volume.as_ref().is_some_and(|v| v.is_dirty()))
        }

        /// Writes every mount's changes; a failure is logged (the next
        /// write-back or FSYNC tries again: while the disk is gone, the
        /// write-back looks for its driver every [`WRITEBACK_MS`], and the
        /// changes reach the disk once it is back; the link logs when the
        /// disk goes and comes back).
        fn sync_all(&mut self) {
            for m in &mut self.mounts {
                if let Some(v) = m.volume.as_mut() {
                    match v.sync() {
                        Ok(()) | Err(fat::Error::Unavailable) => {}
                        Err(e) => log::warn!("/{}: write-back failed: {}", m.spec.name, fs_error(e)),
                    }
                }
            }
        }

        fn program(&mut self, task: u64) -> Option<String> {
            if let Some((_, n)) = self.names.iter().find(|(id, _)| *id == task) {
                return Some(n.clone());
            }
            // One register-only call for this task's program name (listing
            // every task cost about 72,000 instructions of the first mount
            // in `bench-fs`, its whole record about 8,600).
            let name = supervisor::task_name(task).ok()?;
            if self.names.len() >= MAX_CLIENT_NAMES {
                self.names.remove(0);
            }
            self.names.push((task, name.clone()));
            Some(name)
        }

        fn list_mounts(&mut self, task: u64, index: u64) -> Result<Message, FsError> {
            let program = self.program(task).ok_or(FsError::AccessDenied)?;
            let (i, write) = self
                .config
                .granted(&program)
                .nth(index as usize)
                .ok_or(FsError::NotFound)?;
            let mut r = Message::with_words(0, &[p::READ_RIGHT | if write { p::WRITE_RIGHT } else { 0 }]);
            p::push_str(&mut r, &self.config.mounts[i].name)?;
            Ok(r)
        }

        fn root(&mut self, task: u64, name: &str) -> Result<Message, FsError> {
            let program = self.program(task).ok_or(FsError::AccessDenied)?;
            let i = self
                .config
                .mounts
                .iter()
                .position(|m| m.name == name)
                .ok_or(FsError::NotFound)?;
            let (_, write) = self
                .config
                .granted(&program)
                .find(|(m, _)| *m == i)
                .ok_or(FsError::AccessDenied)?;
            // A task's client (the soft bus's for a paired device,
            // `names::lookup_client`: the badge init minted says so) has
            // the task's grants but not its private directories.
            let own = (userlib::proto::client_of(task) == 0).then_some(program.as_str());
            let private = self.config.privates_of(own, i);
            let v = self.volume(i)?;
            let write = write && !v.is_read_only();
            let root = v.root();
            self.new_handle(
                i,
                root,
                true,
                p::READ_RIGHT | if write { p::WRITE_RIGHT } else { 0 },
                private,
            )
        }
    }

    fn stat_of(m: &fat::Metadata) -> Stat {
        Stat {
            is_dir: m.is_dir,
            size: m.size,
            date: m.modified.0,
            time: m.modified.1,
            read_only: m.read_only,
        }
    }
}
