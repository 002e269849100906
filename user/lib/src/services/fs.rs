//! `fs`: the file server (`servers/fs`). Files and directories are
//! capabilities: every open file or directory is an endpoint the server
//! mints with a badge naming it, so holding the endpoint is the right to
//! use it, and a task can pass it on. Paths resolve inside the directory
//! they are sent to: `..` may not leave it and absolute paths are refused
//! ([`FsError::OutsideRoot`]). Each handle carries [`READ_RIGHT`] and
//! [`WRITE_RIGHT`] rights, which [`OPEN`] and [`CLONE`] can only narrow.
//!
//! **The service endpoint** (`names::connect("fs")`, badged with the
//! caller's task id) hands out the mounts the profile grants the caller
//! (the server's `grant=PROGRAM:MOUNT:ro|rw` arguments):
//!
//! | label | words in | reply |
//! |---|---|---|
//! | [`MOUNTS`] | `[index]` | `[rights]` + [`push_str`] mount name; [`FsError::NotFound`] past the end |
//! | [`ROOT`] | mount name | `[rights]` + the mount's root directory handle (endpoint) |
//!
//! A directory at the top of a mount may be a task's own (the server's
//! `private=PROGRAM:MOUNT:DIR` arguments: the phone's `/data/.bus` is the
//! soft bus's). A root handle records whether it may enter it: only if
//! the service endpoint's badge named that task itself (a connection init
//! made for one of the task's clients, `names::lookup_client`, has the
//! task's grants but not its private directories). Through any other
//! root handle, a path that is that directory or lies in it, under any
//! name a lookup finds it by (case, short alias, `.`/`..`), existing or
//! not, fails with [`FsError::AccessDenied`] in [`OPEN`], [`STAT`],
//! [`MKDIR`], [`UNLINK`], [`RMDIR`] and [`RENAME`]. Handles opened or
//! cloned from a handle keep what it may enter.
//!
//! **A handle** (an endpoint from [`ROOT`], [`OPEN`] or [`CLONE`]):
//!
//! | label | on | words in | capability in | reply |
//! |---|---|---|---|---|
//! | [`OPEN`] | dir | `[flags, rights]` + path | — | `[is_dir, size]` + new handle |
//! | [`CLOSE`] | any | — | — | — (the handle is revoked) |
//! | [`CLONE`] | any | `[rights]` | — | new handle, same node, rights ∩ held |
//! | [`ATTACH`] | file | — | memory (`READ`\|`WRITE`) | `[bytes]` |
//! | [`READ`] | file | `[offset, len, buffer offset]` | — | `[n]`: bytes placed in the attached buffer |
//! | [`WRITE`] | file | `[offset, len, buffer offset]` | — | `[n]` taken from the attached buffer |
//! | [`READ_INLINE`] | file | `[offset, len ≤ INLINE]` | — | `[n]` + bytes |
//! | [`WRITE_INLINE`] | file | `[offset]` + bytes (≤ [`INLINE`]) | — | `[n]` |
//! | [`READ_MEMORY`] | file | `[offset, len ≤ MEMORY_IO]` | — | `[n]` + a new memory object holding the `n` bytes from its start (call accepting 1 capability) |
//! | [`WRITE_MEMORY`] | file | `[offset, len]` | memory (`READ`, at least `len` bytes) | `[n]` taken from its start |
//! | [`STAT`] | any | path (empty: the handle itself) | — | [`Stat`] words |
//! | [`READDIR`] | dir | `[cursor]` (0: the first) | — | `[next cursor]` + [`Stat`] words + name; next cursor 0: the end |
//! | [`MKDIR`], [`UNLINK`], [`RMDIR`] | dir | path | — | — |
//! | [`RENAME`] | dir | path from, path to (both under this directory) | — | — |
//! | [`TRUNCATE`] | file | `[length]` | — | — |
//! | [`FSYNC`], [`SYNC`] | any | — | — | — once data, both FATs and directory entries are on the disk |
//! | [`STATFS`] | any | — | — | `[cluster bytes, clusters, free clusters, fat32]` |
//! | [`DROP_CACHES`] | any | — | — | — once the mount's changes are on the disk and its cached sectors forgotten |
//!
//! `offset` may be [`AT_CURSOR`] (the handle's position, which then
//! advances) or, for writes, [`AT_END`]. Paths and names are
//! [`push_str`]s of at most [`MAX_PATH`] bytes. Failures reply [`ERROR`]
//! with an [`FsError`] code in word 0. Writes through a handle without
//! [`WRITE_RIGHT`], and [`OPEN`] asking for rights the directory lacks, fail
//! with [`FsError::AccessDenied`]; so do [`MKDIR`], [`UNLINK`], [`RMDIR`],
//! [`RENAME`] and creating or truncating opens in a read-only directory.
//!
//! **A disk that is gone.** While a mount's block driver is gone (it
//! died and was not restarted within the server's short wait, it was
//! killed, or it never started), every request that needs the disk fails
//! at once with [`FsError::Unavailable`] (the error a client also gets
//! when it cannot reach the server: either way, nothing can be done now
//! and a later retry may work; [`FsError::Io`] stays the disk's own
//! failure). Requests that need no disk are served: [`MOUNTS`], [`ROOT`]
//! of a mounted volume, [`CLOSE`], and what the server's cache holds. The
//! server finds the driver again by itself when it registers again; the
//! handles clients hold keep working, and retrying the request is all a
//! client does. A write already answered (its bytes in the server's
//! cache) is kept and reaches the disk once it is back; [`FSYNC`] and
//! [`SYNC`] with changes to write fail with `Unavailable` meanwhile, so
//! data a client needs on the disk is never reported written while it is
//! not.
//!
//! Bulk data moves through memory the client attaches ([`ATTACH`]) to a
//! file handle: [`READ`]/[`WRITE`] copy between it and the file. The
//! server never maps a client's memory: it copies with the kernel's
//! `MemoryRead`/`MemoryWrite` (`crate::syscall::memory_read`), which check
//! the capability as they copy, so a client that deletes or revokes its
//! buffer (even in the middle of a request) gets `InvalidArgument` and
//! the buffer is forgotten; the server carries on (before, such a client
//! made the server fault between its check and its copy, and the restart
//! lost every client's unsynced writes). Small transfers fit in the
//! message ([`READ_INLINE`], [`WRITE_INLINE`]).
//!
//! A client that cannot share memory with the server (a paired device's
//! file through the soft bus: memory objects travel by value there, so its
//! `ATTACH` is refused) moves up to [`MEMORY_IO`] bytes a call in a memory
//! object of its own: [`READ_MEMORY`] returns a new object the server made
//! (the client's to delete), [`WRITE_MEMORY`] carries one (the server only
//! reads it during the call and keeps nothing).

use crate::ipc::Message;

/// The service name.
pub const NAME: &str = "fs";

pub const MOUNTS: u16 = 1;
pub const ROOT: u16 = 2;
pub const OPEN: u16 = 10;
pub const CLOSE: u16 = 11;
pub const CLONE: u16 = 12;
pub const ATTACH: u16 = 13;
pub const READ: u16 = 14;
pub const WRITE: u16 = 15;
pub const READ_INLINE: u16 = 16;
pub const WRITE_INLINE: u16 = 17;
pub const STAT: u16 = 18;
pub const READDIR: u16 = 19;
pub const MKDIR: u16 = 20;
pub const UNLINK: u16 = 21;
pub const RMDIR: u16 = 22;
pub const RENAME: u16 = 23;
pub const TRUNCATE: u16 = 24;
pub const FSYNC: u16 = 25;
pub const STATFS: u16 = 26;
pub const SYNC: u16 = 27;
/// Writes the mount's changes, then forgets its cached sectors, so the
/// next requests read the disk (cold-cache measurements, like Linux's
/// `drop_caches`). Any handle may ask: any reader can evict the cache by
/// reading enough, so this gives no new power; it costs only time.
pub const DROP_CACHES: u16 = 28;
/// Reads up to [`MEMORY_IO`] bytes into a memory object the reply carries.
pub const READ_MEMORY: u16 = 29;
/// Writes up to [`MEMORY_IO`] bytes from a memory object the call carries.
pub const WRITE_MEMORY: u16 = 30;
/// Reply label of a failed request; word 0 is the [`FsError`] code.
pub const ERROR: u16 = 0x7efd;

/// Handle rights.
pub const READ_RIGHT: u64 = 1;
pub const WRITE_RIGHT: u64 = 2;

/// [`OPEN`] flags.
pub const CREATE: u64 = 1;
/// With [`CREATE`]: fail if the name exists.
pub const EXCLUSIVE: u64 = 2;
pub const TRUNCATE_FLAG: u64 = 4;
/// The node must be a directory.
pub const DIRECTORY: u64 = 8;

/// Offset meaning "the handle's position" (which then advances).
pub const AT_CURSOR: u64 = u64::MAX;
/// Write offset meaning "the end of the file".
pub const AT_END: u64 = u64::MAX - 1;

/// Longest path or name in a message.
pub const MAX_PATH: usize = 240;
/// Most bytes a [`READ_INLINE`] reply or [`WRITE_INLINE`] request holds.
pub const INLINE: usize = (abi::BUFFER_WORDS - 2) * 8;
/// Largest buffer a client may attach.
pub const MAX_BUFFER: usize = 1 << 20;
/// Most bytes a [`READ_MEMORY`] or [`WRITE_MEMORY`] moves (the soft bus
/// carries memory objects up to this size).
pub const MEMORY_IO: usize = 64 << 10;

/// What went wrong, as the protocol reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum FsError {
    NotFound = 1,
    Exists = 2,
    NotADirectory = 3,
    IsADirectory = 4,
    NotEmpty = 5,
    NoSpace = 6,
    /// The volume or device is read-only.
    ReadOnly = 7,
    InvalidName = 8,
    /// Past FAT's 4 GiB - 1 file size.
    TooLarge = 9,
    /// In use (an open file being removed, a directory moved into itself).
    Busy = 10,
    /// A path that leaves its directory (`..` past it, or absolute).
    OutsideRoot = 11,
    /// The handle lacks the right for the request.
    AccessDenied = 12,
    /// The disk failed.
    Io = 13,
    /// The volume's structures are inconsistent.
    Corrupt = 14,
    /// Not a FAT16/FAT32 volume.
    Unsupported = 15,
    /// A malformed request (bad label, lengths, missing buffer).
    InvalidArgument = 16,
    /// Too many open handles.
    TooManyHandles = 17,
    /// The server could not be reached or died during the call (the
    /// client's own answer), or the server cannot reach the mount's disk
    /// now: its block driver is gone (killed, restarting, never started).
    /// Try again later: nothing is lost by the failure (see the module's
    /// *A disk that is gone*).
    Unavailable = 18,
}

impl FsError {
    pub fn from_code(code: u64) -> FsError {
        use FsError::*;
        [
            NotFound,
            Exists,
            NotADirectory,
            IsADirectory,
            NotEmpty,
            NoSpace,
            ReadOnly,
            InvalidName,
            TooLarge,
            Busy,
            OutsideRoot,
            AccessDenied,
            Io,
            Corrupt,
            Unsupported,
            InvalidArgument,
            TooManyHandles,
            Unavailable,
        ]
        .into_iter()
        .find(|e| *e as u64 == code)
        .unwrap_or(InvalidArgument)
    }

    /// Lower-case words for one-line messages (`cat: /data/x: not found`).
    pub fn as_str(self) -> &'static str {
        use FsError::*;
        match self {
            NotFound => "not found",
            Exists => "already exists",
            NotADirectory => "not a directory",
            IsADirectory => "is a directory",
            NotEmpty => "directory not empty",
            NoSpace => "no space left",
            ReadOnly => "read-only file system",
            InvalidName => "invalid name",
            TooLarge => "file too large",
            Busy => "busy",
            OutsideRoot => "outside the directory",
            AccessDenied => "access denied",
            Io => "I/O error",
            Corrupt => "file system corrupt",
            Unsupported => "not a FAT file system",
            InvalidArgument => "invalid argument",
            TooManyHandles => "too many open files",
            Unavailable => "file server unavailable",
        }
    }

    /// The reply for this error.
    pub fn reply(self) -> Message {
        Message::with_words(ERROR, &[self as u64])
    }
}

impl core::fmt::Display for FsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The reply's result: `Err` for an [`ERROR`] reply.
pub fn check(reply: Message) -> Result<Message, FsError> {
    if reply.label == ERROR {
        Err(FsError::from_code(reply.word(0)))
    } else if reply.label == crate::proto::FAILED {
        // Not the file server's answer but the system's: a remote
        // handle's proxy (`names::connect_remote`) whose device left,
        // refused or could not carry the request.
        Err(match abi::Error::check(reply.word(0)) {
            Err(abi::Error::NoRights) => FsError::AccessDenied,
            Err(abi::Error::NotSupported) => FsError::Unsupported,
            _ => FsError::Unavailable,
        })
    } else {
        Ok(reply)
    }
}

/// Appends a string: a length word, then the bytes little-endian in
/// words. [`FsError::InvalidName`] if longer than [`MAX_PATH`];
/// [`FsError::InvalidArgument`] if the message has no room.
pub fn push_str(m: &mut Message, s: &str) -> Result<(), FsError> {
    push_bytes(m, s.as_bytes(), MAX_PATH).map_err(|e| {
        if e == FsError::TooLarge {
            FsError::InvalidName
        } else {
            e
        }
    })
}

/// Appends `bytes` (at most `max`) as a length word and data words.
pub fn push_bytes(m: &mut Message, bytes: &[u8], max: usize) -> Result<(), FsError> {
    if bytes.len() > max {
        return Err(FsError::TooLarge);
    }
    if m.len() + 1 + bytes.len().div_ceil(8) > abi::BUFFER_WORDS {
        return Err(FsError::InvalidArgument);
    }
    m.push(bytes.len() as u64);
    for chunk in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        m.push(u64::from_le_bytes(w));
    }
    Ok(())
}

/// Reads bytes pushed at word `at` into `out`: the bytes and the word
/// after them. A length beyond `out` or the message is
/// [`FsError::InvalidArgument`].
pub fn get_bytes<'a>(m: &Message, at: usize, out: &'a mut [u8]) -> Result<(&'a [u8], usize), FsError> {
    let len = usize::try_from(m.word(at)).map_err(|_| FsError::InvalidArgument)?;
    let words = len.div_ceil(8);
    if at >= m.len() || len > out.len() || at + 1 + words > m.len() {
        return Err(FsError::InvalidArgument);
    }
    for i in 0..words {
        let b = m.word(at + 1 + i).to_le_bytes();
        let n = (len - i * 8).min(8);
        out[i * 8..i * 8 + n].copy_from_slice(&b[..n]);
    }
    Ok((&out[..len], at + 1 + words))
}

/// A string pushed at word `at` (see [`get_bytes`]); not UTF-8 is
/// [`FsError::InvalidName`].
pub fn get_str<'a>(m: &Message, at: usize, out: &'a mut [u8; MAX_PATH]) -> Result<(&'a str, usize), FsError> {
    let (b, next) = get_bytes(m, at, out)?;
    Ok((core::str::from_utf8(b).map_err(|_| FsError::InvalidName)?, next))
}

/// A node's metadata, as [`STAT`] and [`READDIR`] carry it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub is_dir: bool,
    pub size: u64,
    /// FAT date and time of the last change: `((year - 1980) << 9 |
    /// month << 5 | day, hour << 11 | minute << 5 | second / 2)`.
    pub date: u16,
    pub time: u16,
    /// The entry's read-only attribute.
    pub read_only: bool,
}

/// Words a [`Stat`] takes.
pub const STAT_WORDS: usize = 4;

impl Stat {
    pub fn push(&self, m: &mut Message) {
        m.push(self.is_dir as u64 | (self.read_only as u64) << 1);
        m.push(self.size);
        m.push(self.date as u64);
        m.push(self.time as u64);
    }

    pub fn from_words(m: &Message, at: usize) -> Stat {
        Stat {
            is_dir: m.word(at) & 1 != 0,
            read_only: m.word(at) & 2 != 0,
            size: m.word(at + 1),
            date: m.word(at + 2) as u16,
            time: m.word(at + 3) as u16,
        }
    }

    /// `YYYY-MM-DD HH:MM` of [`Stat::date`] and [`Stat::time`].
    pub fn modified(&self) -> alloc::string::String {
        let (d, t) = (self.date as u32, self.time as u32);
        alloc::format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            1980 + (d >> 9),
            (d >> 5) & 15,
            d & 31,
            t >> 11,
            (t >> 5) & 63
        )
    }
}

/// Splits an absolute, normalised path `/MOUNT/REST` into the mount and
/// the rest (`""` for the mount's root).
pub fn split_mount(path: &str) -> Option<(&str, &str)> {
    let p = path.strip_prefix('/')?;
    if p.is_empty() {
        return None;
    }
    Some(p.split_once('/').unwrap_or((p, "")))
}

/// Joins `path` to the absolute directory `cwd` and normalises it (`.`
/// and empty components dropped, `..` taking one back, never above `/`).
pub fn absolute(cwd: &str, path: &str) -> alloc::string::String {
    let mut parts: alloc::vec::Vec<&str> = alloc::vec::Vec::new();
    let start = if path.starts_with('/') { "" } else { cwd };
    for c in start.split('/').chain(path.split('/')) {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut s = alloc::string::String::new();
    for p in parts {
        s.push('/');
        s.push_str(p);
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_and_hostile_lengths() {
        let mut m = Message::with_words(OPEN, &[CREATE, READ_RIGHT]);
        push_str(&mut m, "a/long name.txt").unwrap();
        push_str(&mut m, "second").unwrap();
        let mut out = [0u8; MAX_PATH];
        let (s, next) = get_str(&m, 2, &mut out).unwrap();
        assert_eq!(s, "a/long name.txt");
        let mut out2 = [0u8; MAX_PATH];
        assert_eq!(get_str(&m, next, &mut out2).unwrap().0, "second");
        assert_eq!(push_str(&mut m, &"x".repeat(MAX_PATH + 1)), Err(FsError::InvalidName));
        // Lengths that lie: past the message, past the buffer, huge.
        for len in [9, 300, u64::MAX] {
            let m = Message::with_words(OPEN, &[len, 0x41]);
            assert_eq!(get_str(&m, 0, &mut out).err(), Some(FsError::InvalidArgument), "{len}");
        }
        let m = Message::with_words(OPEN, &[2, 0xffff]);
        assert_eq!(get_str(&m, 0, &mut out).err(), Some(FsError::InvalidName), "not UTF-8");
        assert_eq!(
            get_str(&Message::new(OPEN), 5, &mut out).err(),
            Some(FsError::InvalidArgument)
        );
    }

    #[test]
    fn errors_and_stats_round_trip() {
        for code in 1..=18 {
            assert_eq!(FsError::from_code(code) as u64, code);
            assert_eq!(
                check(FsError::from_code(code).reply()).err(),
                Some(FsError::from_code(code))
            );
        }
        assert_eq!(FsError::from_code(999), FsError::InvalidArgument);
        let s = Stat {
            is_dir: true,
            size: 77,
            date: (44 << 9) | (3 << 5) | 9,
            time: (13 << 11) | (5 << 5),
            read_only: true,
        };
        let mut m = Message::new(0);
        s.push(&mut m);
        assert_eq!(Stat::from_words(&m, 0), s);
        assert_eq!(s.modified(), "2024-03-09 13:05");
    }

    #[test]
    fn paths() {
        assert_eq!(absolute("/data", "notes.txt"), "/data/notes.txt");
        assert_eq!(absolute("/data/a", "../b/./c"), "/data/b/c");
        assert_eq!(absolute("/data", "/boot/x"), "/boot/x");
        assert_eq!(absolute("/", "../../.."), "/");
        assert_eq!(split_mount("/data/x/y"), Some(("data", "x/y")));
        assert_eq!(split_mount("/data"), Some(("data", "")));
        assert_eq!(split_mount("/"), None);
        assert_eq!(split_mount("rel"), None);
    }
}
