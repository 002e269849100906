//! test-fs: the file server (`servers/fs`) on the disk at `/data`.
//!
//! 1. Files through `userlib::fs`: create, write (inline and bulk, 1 MiB
//!    through the shared buffer), read back, seek, append, truncate,
//!    stat, read_dir, mkdir, rename, remove, fsync, drop_caches (cold
//!    reads of what was unsynced); typed errors.
//! 2. A hostile client: `..` and absolute paths cannot leave a directory
//!    handle; a read-only handle (cloned with fewer rights) cannot write,
//!    truncate, create, rename or remove; a read-only directory cannot be
//!    modified; lying string lengths, buffers out of range, requests
//!    without a buffer, a non-memory capability as buffer, unknown labels,
//!    forged and closed handles all get errors and the server keeps
//!    serving.
//! 3. A client that revokes its memory while the server copies through it
//!    (issue 11/12): a second thread revokes the attached buffer (and the
//!    object a `WRITE_MEMORY` carries) in a tight loop while this one keeps
//!    asking for `READ`, `WRITE` and `WRITE_MEMORY`. The client gets
//!    answers or errors only; the server is never restarted, and another
//!    file's unsynced write, waiting in its cache, reads back.
//! 4. The block driver restarted in the middle of writes: a thread writes
//!    and fsyncs while this one restarts `virtio-blk` (retrying what fails
//!    `Unavailable` while the driver is not back); every fsynced byte
//!    reads back afterwards.
//! 5. The block driver gone (killed): requests that need the disk fail
//!    with `Unavailable` within [`GONE_BOUND_US`] (the first, which finds
//!    the driver dead, after the server's short wait for a restart; the
//!    next ones at once), while the mounts list and a file whose sectors
//!    are cached are still served; once the driver is back, the same
//!    directory handle works again, and a synced file and one whose write
//!    was acknowledged but still cached when the driver went both read
//!    back from the disk.
//!
//! On a machine without the disk (no `virtio-blk` task, so no task that
//! may register `blk`): a request for `/data` fails `Unavailable`; when
//! this is the file server's only client (its request the mount's first),
//! within [`ABSENT_BOUND_US`], without the server's wait for a starting
//! driver. Nothing else is tested.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use userlib::abi::boot_info::StartInfo;
use userlib::abi::ObjectType;
use userlib::fs::{Dir, Error, Namespace, OpenOptions, Read, Seek, SeekFrom, Write};
use userlib::ipc::{Message, Timeout};
use userlib::names::supervisor;
use userlib::services::fs as p;
use userlib::test::Revokers;
use userlib::{log, process, syscall, thread, Rights};

userlib::entry!(main, heap = 4 << 20);

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8)
        .collect()
}

#[track_caller]
fn expect<T: core::fmt::Debug>(what: &str, r: Result<T, Error>, want: Error) {
    match r {
        Err(e) if e == want => {}
        other => panic!("{what}: expected {want:?}, got {other:?}"),
    }
}

/// A raw request on a handle (the hostile client's way in).
fn raw(ep: userlib::Handle, m: &Message) -> Result<Message, Error> {
    match syscall::call_timeout(ep, m, Timeout::millis(10_000)) {
        Ok((r, _)) => p::check(r),
        Err(_) => Err(Error::Unavailable),
    }
}

fn main(_start: &StartInfo) {
    // Machines without a virtio disk (most test boots) have nothing to test.
    if !supervisor::tasks()
        .expect("supervisor::tasks")
        .iter()
        .any(|t| t.name == DRIVER)
    {
        disk_absent();
        return;
    }
    let mut ns = Namespace::new();
    // A disk without a FAT file system (a blank test disk) is not ours to format.
    if let Err(Error::Unsupported) = ns.root("data") {
        log::info!("the disk holds no FAT file system: nothing to test");
        return;
    }
    let mounts = ns.mounts().expect("mounts");
    assert!(
        mounts.iter().any(|(n, r)| n == "data" && r & p::WRITE_RIGHT != 0),
        "granted /data rw: {mounts:?}"
    );
    let data = ns.root("data").expect("root of /data");
    let base = format!("test-fs-{}", syscall::now_us());
    *BASE.lock() = base.clone();
    data.create_dir(&base).expect("mkdir");
    let dir = data.open_dir(&base, p::READ_RIGHT | p::WRITE_RIGHT).expect("open_dir");
    files(&dir);
    hostile(&dir);
    revoked_buffers(&dir);
    restart_mid_write(&dir);
    disk_gone(&dir);
    dir.sync().expect("sync");
    drop(dir);
    // Clean up, and the directory is empty again.
    let d = ns.root("data").expect("root");
    for e in d.open_dir(&base, 3).expect("open").read_dir().expect("read_dir") {
        let path = format!("{base}/{}", e.name);
        if e.stat.is_dir {
            d.remove_dir(&path).expect("rmdir");
        } else {
            d.remove_file(&path).expect("rm");
        }
    }
    d.remove_dir(&base).expect("rmdir base");
    expect("gone", d.metadata(&base), Error::NotFound);
    log::info!("all file-server checks passed");
}

fn files(dir: &Dir) {
    // Small (inline) and large (through the shared buffer).
    dir.write("small.txt", b"hello\n").expect("write small");
    assert_eq!(dir.read("small.txt").expect("read small"), b"hello\n");
    let big = pattern(1 << 20, 7);
    dir.write("A big file with a long name.bin", &big).expect("write big");
    assert_eq!(
        dir.read("a big file with a LONG name.bin").expect("read big"),
        big,
        "names ignore case"
    );
    let st = dir.metadata("A big file with a long name.bin").expect("stat");
    assert!(!st.is_dir && st.size == 1 << 20, "{st:?}");
    memory_io(dir, &big);
    // Seek, partial reads, overwrite in the middle, append.
    let mut f = dir
        .open(
            "A big file with a long name.bin",
            &OpenOptions::new().read(true).write(true),
        )
        .expect("open rw");
    f.seek(SeekFrom::Start(1000)).expect("seek");
    let mut buf = [0u8; 100];
    f.read_exact(&mut buf).expect("read_exact");
    assert_eq!(&buf[..], &big[1000..1100]);
    f.seek(SeekFrom::Start(5000)).expect("seek");
    f.write_all(b"XYZ").expect("overwrite");
    assert_eq!(f.seek(SeekFrom::End(-1)).expect("seek end"), (1 << 20) - 1);
    f.set_len(10_000).expect("truncate");
    f.sync_all().expect("fsync");
    drop(f);
    let mut expect_big = big[..10_000].to_vec();
    expect_big[5000..5003].copy_from_slice(b"XYZ");
    assert_eq!(dir.read("A big file with a long name.bin").expect("read"), expect_big);
    // DROP_CACHES (any handle, a read-only one too) writes what waits in
    // the cache first: an unsynced file and the truncated one read back
    // from the disk whole.
    dir.write("unsynced.txt", b"still here\n").expect("write unsynced");
    let ro = dir.try_clone(p::READ_RIGHT).expect("clone read-only");
    ro.drop_caches().expect("drop_caches");
    drop(ro);
    assert_eq!(dir.read("unsynced.txt").expect("read unsynced"), b"still here\n");
    dir.remove_file("unsynced.txt").expect("rm unsynced");
    assert_eq!(
        dir.read("A big file with a long name.bin").expect("read cold"),
        expect_big
    );
    let mut a = dir
        .open("log.txt", &OpenOptions::new().append(true).create(true))
        .expect("append");
    a.write_all(b"one\n").expect("w");
    a.write_all(b"two\n").expect("w");
    drop(a);
    assert_eq!(dir.read("log.txt").expect("read log"), b"one\ntwo\n");
    // Directories, renames, removal, listing.
    dir.create_dir("sub").expect("mkdir sub");
    dir.rename("small.txt", "sub/moved.txt").expect("rename");
    expect("old name", dir.metadata("small.txt"), Error::NotFound);
    assert_eq!(dir.read("sub/./moved.txt").expect("read moved"), b"hello\n");
    let mut names: Vec<_> = dir.read_dir().expect("read_dir").into_iter().map(|e| e.name).collect();
    names.sort();
    assert_eq!(names, ["A big file with a long name.bin", "log.txt", "sub"]);
    // Typed errors.
    expect(
        "exclusive",
        dir.open("log.txt", &OpenOptions::new().create_new(true)),
        Error::Exists,
    );
    expect("mkdir twice", dir.create_dir("sub"), Error::Exists);
    expect("rmdir non-empty", dir.remove_dir("sub"), Error::NotEmpty);
    expect("rm dir", dir.remove_file("sub"), Error::IsADirectory);
    expect("rmdir file", dir.remove_dir("log.txt"), Error::NotADirectory);
    expect(
        "open dir as file",
        dir.open("sub", &OpenOptions::new().read(true)),
        Error::IsADirectory,
    );
    expect("through a file", dir.metadata("log.txt/x"), Error::NotADirectory);
    expect("bad name", dir.write("a:b", b"x"), Error::InvalidName);
    expect("missing", dir.read("nope"), Error::NotFound);
    dir.remove_file("sub/moved.txt").expect("rm");
    dir.remove_dir("sub").expect("rmdir");
    log::info!("files: ok");
}

/// READ_MEMORY and WRITE_MEMORY (what a paired device's file moves its
/// data in): 64 KiB in an object the reply carries, 100 bytes from an
/// object the call carries (the same bytes again: the file is unchanged).
fn memory_io(dir: &Dir, big: &[u8]) {
    let f = dir
        .open(
            "A big file with a long name.bin",
            &OpenOptions::new().read(true).write(true),
        )
        .expect("open");
    let call = |m: &Message| {
        syscall::call_timeout(f.handle(), m, Timeout::millis(30_000))
            .map_err(|_| Error::Unavailable)
            .and_then(|(r, _)| p::check(r))
    };
    let m = Message::with_words(p::READ_MEMORY, &[70_000, p::MEMORY_IO as u64 + 1]).accepting_caps(1);
    let r = call(&m).expect("READ_MEMORY");
    assert_eq!(r.word(0), p::MEMORY_IO as u64, "at most MEMORY_IO");
    let mem = r.caps()[0].handle;
    let map = userlib::vspace::Mapping::map(mem, 16, Rights::READ).expect("map the reply's object");
    assert!(map.as_slice()[..p::MEMORY_IO] == big[70_000..70_000 + p::MEMORY_IO]);
    drop(map);
    let _ = syscall::cap_delete(mem);
    let mut obj = userlib::vspace::Mapping::new(1, Rights::READ | Rights::WRITE).expect("object");
    obj.as_mut_slice()[..100].copy_from_slice(&big[2000..2100]);
    let mut m = Message::with_words(p::WRITE_MEMORY, &[2000, 100]);
    m.push_cap(obj.handle(), Rights::READ | Rights::MAP);
    assert_eq!(call(&m).expect("WRITE_MEMORY").word(0), 100);
    // Longer than the object: refused.
    let mut m = Message::with_words(p::WRITE_MEMORY, &[2000, 5000]);
    m.push_cap(obj.handle(), Rights::READ | Rights::MAP);
    expect("WRITE_MEMORY past its object", call(&m), Error::InvalidArgument);
    expect(
        "WRITE_MEMORY without an object",
        call(&Message::with_words(p::WRITE_MEMORY, &[0, 1])),
        Error::InvalidArgument,
    );
    log::info!("memory io: ok");
}

fn hostile(dir: &Dir) {
    dir.write("victim.txt", b"keep me\n").expect("write victim");
    // Paths cannot climb out of a directory handle.
    for bad in ["..", "../x", "a/../../x", "/data/victim.txt", "/"] {
        expect(bad, dir.metadata(bad), Error::OutsideRoot);
        expect(bad, dir.open(bad, &OpenOptions::new().read(true)), Error::OutsideRoot);
    }
    dir.create_dir("inner").expect("mkdir");
    let inner = dir.open_dir("inner", 3).expect("inner");
    expect("inner ..", inner.read("../victim.txt"), Error::OutsideRoot);
    expect(
        "inner rename out",
        inner.rename("../victim.txt", "stolen"),
        Error::OutsideRoot,
    );
    drop(inner);
    // A read-only directory handle: no changes through it or what it opens.
    let ro = dir.try_clone(p::READ_RIGHT).expect("clone read-only");
    assert_eq!(ro.read("victim.txt").expect("read through ro"), b"keep me\n");
    expect("ro write", ro.write("victim.txt", b"x"), Error::AccessDenied);
    expect(
        "ro create",
        ro.open("new", &OpenOptions::new().create(true)),
        Error::AccessDenied,
    );
    expect(
        "ro open rw",
        ro.open("victim.txt", &OpenOptions::new().read(true).write(true)),
        Error::AccessDenied,
    );
    expect("ro mkdir", ro.create_dir("d"), Error::AccessDenied);
    expect("ro rm", ro.remove_file("victim.txt"), Error::AccessDenied);
    expect("ro rmdir", ro.remove_dir("inner"), Error::AccessDenied);
    expect("ro mv", ro.rename("victim.txt", "x"), Error::AccessDenied);
    expect("rights do not grow", ro.open_dir("inner", 3), Error::AccessDenied);
    let sub = ro.open_dir("inner", p::READ_RIGHT).expect("subdir of ro");
    expect("read-only below too", sub.create_dir("x"), Error::AccessDenied);
    drop(sub);
    // A file opened read-only: every write path refused.
    let mut f = ro.open("victim.txt", &OpenOptions::new().read(true)).expect("open ro");
    expect("ro file write", f.write_at(0, b"x"), Error::AccessDenied);
    expect("ro file bulk write", f.write_at(0, &[0u8; 4096]), Error::AccessDenied);
    expect("ro file truncate", f.set_len(0), Error::AccessDenied);
    let h = f.handle();
    expect(
        "raw write",
        raw(h, &Message::with_words(p::WRITE_INLINE, &[0, 1, 0x41])),
        Error::AccessDenied,
    );
    expect(
        "raw truncate",
        raw(h, &Message::with_words(p::TRUNCATE, &[0])),
        Error::AccessDenied,
    );
    // Rights asked of a clone are cut to those held.
    let f2 = f.try_clone(p::READ_RIGHT | p::WRITE_RIGHT).expect("clone");
    expect(
        "clone cannot widen",
        raw(f2.handle(), &Message::with_words(p::TRUNCATE, &[0])),
        Error::AccessDenied,
    );
    drop(f2);
    drop(f);
    drop(ro);
    assert_eq!(dir.read("victim.txt").expect("victim intact"), b"keep me\n");
    // Malformed requests on a writable file.
    let mut f = dir
        .open("victim.txt", &OpenOptions::new().read(true).write(true))
        .expect("open rw");
    let h = f.handle();
    for (what, m) in [
        (
            "string longer than the message",
            Message::with_words(p::STAT, &[200, 0x41]),
        ),
        ("huge string length", Message::with_words(p::STAT, &[u64::MAX])),
        (
            "inline write longer than it says",
            Message::with_words(p::WRITE_INLINE, &[0, 1000, 1]),
        ),
        ("bulk read without a buffer", Message::with_words(p::READ, &[0, 10, 0])),
        (
            "bulk write without a buffer",
            Message::with_words(p::WRITE, &[0, 10, 0]),
        ),
        ("unknown label", Message::new(999)),
        ("directory call on a file", Message::with_words(p::READDIR, &[0])),
        ("ATTACH without a capability", Message::new(p::ATTACH)),
    ] {
        match raw(h, &m) {
            Err(Error::InvalidArgument | Error::NotADirectory | Error::InvalidName) => {}
            other => panic!("{what}: expected an error, got {other:?}"),
        }
    }
    // A capability that is not memory, as a buffer.
    let ep = syscall::create(process().pool, ObjectType::Endpoint, 0).expect("endpoint");
    let mut m = Message::new(p::ATTACH);
    m.push_cap(ep, Rights::SEND | Rights::GRANT);
    expect("endpoint as buffer", raw(h, &m), Error::InvalidArgument);
    let _ = syscall::cap_delete(ep);
    // A real buffer, then transfers outside it.
    let mut big = vec![0u8; 8192];
    assert_eq!(f.read_at(0, &mut big).expect("bulk read attaches"), 8);
    for (what, words) in [
        ("past the buffer", [0u64, 10, (64 << 10) - 5]),
        ("offset overflows", [0, 10, u64::MAX - 3]),
        ("length past the buffer", [0, (64 << 10) + 1, 0]),
    ] {
        expect(
            what,
            raw(h, &Message::with_words(p::READ, &words)),
            Error::InvalidArgument,
        );
        expect(
            what,
            raw(h, &Message::with_words(p::WRITE, &words)),
            Error::InvalidArgument,
        );
    }
    expect("file too large", f.write_at(u32::MAX as u64, b"x"), Error::TooLarge);
    drop(f);
    // Closed and forged handles: the capability is gone.
    let f = dir.open("victim.txt", &OpenOptions::new().read(true)).expect("open");
    let h = f.handle();
    raw(h, &Message::new(p::CLOSE)).expect("close");
    // CLOSE revoked the capability: it names nothing now.
    expect(
        "closed handle",
        raw(h, &Message::with_words(p::STAT, &[0])),
        Error::Unavailable,
    );
    drop(f);
    // The service endpoint does not take handle requests.
    let svc = userlib::names::connect(p::NAME, Timeout::millis(1000)).expect("connect");
    expect(
        "read on the service endpoint",
        raw(svc, &Message::with_words(p::READ_INLINE, &[0, 8])),
        Error::InvalidArgument,
    );
    let mut m = Message::new(p::ROOT);
    p::push_str(&mut m, "boot").expect("name");
    expect("a mount not granted", raw(svc, &m), Error::NotFound);
    let _ = syscall::cap_delete(svc);
    // Still serving.
    assert_eq!(dir.read("victim.txt").expect("after all that"), b"keep me\n");
    dir.remove_file("victim.txt").expect("rm");
    dir.remove_dir("inner").expect("rmdir");
    log::info!("hostile client: ok");
}

/// Below the file server's (14) and the block driver's: see
/// [`revoked_buffers`].
const REVOKER_PRIORITY: u8 = 10;

/// The file server's restarts so far.
fn fs_restarts() -> u64 {
    supervisor::tasks()
        .expect("tasks")
        .iter()
        .find(|t| t.name == "fs")
        .map_or(0, |t| t.restarts)
}

/// A hostile client revokes the memory it gave the server while the
/// server copies through it: a second thread revokes the object in a tight
/// loop (deleting the server's copy of the capability) while this thread
/// attaches it and asks for 64 KiB `READ`s and `WRITE`s and `WRITE_MEMORY`s
/// of it. Before the server copied with `MemoryRead`/`MemoryWrite`, it
/// mapped the object and faulted when the revoke landed between its check
/// and its copy; init restarted it and its unsynced cache was lost.
fn revoked_buffers(dir: &Dir) {
    const SIZE: usize = 64 << 10;
    const RUN_US: u64 = 1_500_000;
    let before = fs_restarts();
    // Another file, written again in every round (in the message): its
    // last write waits in the server's cache (written back only 500 ms
    // after requests pause, or 500 ms into steady load).
    let mut other_file = dir
        .open("other.bin", &OpenOptions::new().write(true).create(true).truncate(true))
        .expect("open other.bin");
    let mut other = pattern(p::INLINE, 0);
    let mut f = dir
        .open(
            "hostile.bin",
            &OpenOptions::new().read(true).write(true).create(true).truncate(true),
        )
        .expect("open hostile.bin");
    f.write_all_at(0, &pattern(SIZE, 3)).expect("fill hostile.bin");
    // Nothing waits in the cache now: the first write of other.bin below
    // starts the 500 ms the server waits before writing it back.
    dir.sync().expect("sync");
    let h = f.handle();
    let mem = syscall::create(process().pool, ObjectType::Memory, (SIZE / 4096) as u64).expect("memory");
    // One revoker per CPU, below the server's priority, revoking
    // without a pause.
    let revokers = Revokers::start(mem, REVOKER_PRIORITY, 0, 0x5eed);
    // [answers, errors, calls that found the server gone]
    let mut tally = [0u64; 3];
    let mut count = |r: Result<Message, Error>, what: &str| match r {
        Ok(_) => tally[0] += 1,
        Err(Error::InvalidArgument | Error::AccessDenied | Error::NoSpace | Error::Io) => tally[1] += 1,
        Err(Error::Unavailable) => tally[2] += 1,
        Err(e) => panic!("{what}: unexpected {e:?}"),
    };
    let start = syscall::now_us();
    for round in 1.. {
        if syscall::now_us() - start > RUN_US {
            break;
        }
        let next = pattern(p::INLINE, round as u8);
        if let Err(e) = other_file.write_all_at(0, &next) {
            count(Err(e), "write other.bin");
            break;
        }
        other = next;
        let mut m = Message::new(p::ATTACH);
        m.push_cap(mem, Rights::READ | Rights::WRITE | Rights::MAP);
        count(raw(h, &m), "ATTACH");
        for _ in 0..4 {
            count(raw(h, &Message::with_words(p::READ, &[0, SIZE as u64, 0])), "READ");
            count(raw(h, &Message::with_words(p::WRITE, &[0, SIZE as u64, 0])), "WRITE");
        }
        let mut m = Message::with_words(p::WRITE_MEMORY, &[0, SIZE as u64]);
        m.push_cap(mem, Rights::READ | Rights::MAP);
        let r = raw(h, &m);
        let gone = matches!(r, Err(Error::Unavailable));
        count(r, "WRITE_MEMORY");
        if gone {
            break;
        }
    }
    let [ok, refused, gone] = tally;
    let revokes = revokers.stop();
    let _ = syscall::cap_delete(mem);
    let restarted = fs_restarts() - before;
    if gone > 0 || restarted > 0 {
        // What the restart cost another client: a fresh connection reads
        // the file from the disk.
        let lost = match Namespace::new().root("data") {
            Ok(root) => match root.read(&alloc::format!("{}/other.bin", BASE.lock().as_str())) {
                Ok(d) if d == other => "other.bin's last write intact",
                Ok(_) => "other.bin's last (unsynced) write LOST: an older version is on the disk",
                Err(_) => "other.bin's unsynced write LOST (the file is gone)",
            },
            Err(_) => "the file server does not answer",
        };
        panic!(
            "the file server died under a client revoking its buffer ({ok} answers, {refused} errors, \
             {revokes} revokes; restarted {restarted} times): {lost}"
        );
    }
    drop(f);
    drop(other_file);
    assert!(
        dir.read("other.bin").expect("read other.bin") == other,
        "another file's last write was lost"
    );
    log::info!(
        "revoked buffers: {ok} answers, {refused} errors, {revokes} revokes; the server never restarted, \
         another file's unsynced write reads back"
    );
}

/// The name of this test's directory under `/data` (for a fresh connection).
static BASE: userlib::sync::Mutex<alloc::string::String> = userlib::sync::Mutex::new(alloc::string::String::new());

const DRIVER: &str = "virtio-blk";

fn restarts() -> u64 {
    supervisor::tasks()
        .expect("tasks")
        .iter()
        .find(|t| t.name == DRIVER)
        .map_or(0, |t| t.restarts)
}

/// A writer thread appends chunks and fsyncs after each; this thread
/// restarts the block driver meanwhile. Every fsynced chunk must read back.
fn restart_mid_write(dir: &Dir) {
    const CHUNK: usize = 32 << 10;
    const CHUNKS: u64 = 48;
    const RESTART_AT: u64 = 8;
    let before = restarts();
    let synced = Arc::new(AtomicU64::new(0));
    let writer = {
        let synced = synced.clone();
        let mut f = dir
            .open(
                "durable.bin",
                &OpenOptions::new().write(true).create(true).truncate(true),
            )
            .expect("open durable.bin");
        thread::spawn(move || {
            for i in 0..CHUNKS {
                // A driver that takes longer than the server's wait for
                // it to register makes requests fail `Unavailable` until
                // it has: the protocol's answer is to try again.
                let t = syscall::now_us();
                while let Err(e) = f
                    .write_all_at(i * CHUNK as u64, &pattern(CHUNK, i as u8))
                    .and_then(|()| f.sync_all())
                {
                    assert!(
                        e == Error::Unavailable && syscall::now_us() - t < 10_000_000,
                        "chunk {i} through the restart: {e:?}"
                    );
                    syscall::sleep_ms(20);
                }
                synced.store(i + 1, Ordering::Release);
            }
        })
        .expect("spawn the writer")
    };
    while synced.load(Ordering::Acquire) < RESTART_AT {
        syscall::sleep(500);
    }
    supervisor::restart(DRIVER).expect("restart the driver (needs the control right)");
    let at = synced.load(Ordering::Acquire);
    writer.join().expect("writer");
    assert!(restarts() > before, "the driver was not restarted");
    let got = dir.read("durable.bin").expect("read back");
    assert_eq!(got.len(), CHUNK * CHUNKS as usize);
    for i in 0..CHUNKS as usize {
        assert!(
            got[i * CHUNK..(i + 1) * CHUNK] == pattern(CHUNK, i as u8)[..],
            "chunk {i} differs"
        );
    }
    log::info!("restart mid-write: {DRIVER} restarted after {at} of {CHUNKS} synced chunks; all {CHUNKS} read back");
}

/// How long a request that needs the disk may take to fail while the
/// block driver is gone (guest time).
const GONE_BOUND_US: u64 = 1_000_000;

/// Kills the block driver; requests that need the disk must fail at once,
/// the rest be served, and everything come back with the driver.
fn disk_gone(dir: &Dir) {
    let timed = |f: &dyn Fn() -> Result<(), Error>| {
        let t = syscall::now_us();
        let r = f();
        (r, syscall::now_us() - t)
    };
    let kept = pattern(96 << 10, 0x31);
    dir.write("kept.bin", &kept).expect("write kept.bin");
    dir.sync().expect("sync kept.bin");
    // Acknowledged, and left in the server's cache (the write-back waits
    // 500 ms for requests to pause).
    let cached = pattern(20 << 10, 0x47);
    dir.write("cached.bin", &cached).expect("write cached.bin");
    supervisor::kill(DRIVER).expect("kill the driver (needs the control right)");
    // The first request that needs the disk finds the driver dead.
    let (r, first) = timed(&|| dir.sync());
    expect("sync with the disk gone", r, Error::Unavailable);
    assert!(
        first < GONE_BOUND_US,
        "the first sync with the disk gone took {first} us"
    );
    let mut next = [0u64; 5];
    for us in &mut next {
        let (r, t) = timed(&|| dir.sync());
        expect("sync with the disk still gone", r, Error::Unavailable);
        *us = t;
    }
    let worst = next.iter().copied().max().unwrap_or(0);
    assert!(worst < GONE_BOUND_US, "a sync with the disk gone took {worst} us");
    // What needs no disk is served: the mounts, and the cached file.
    let (r, mounts_us) = timed(&|| Namespace::new().mounts().map(drop));
    r.expect("the mounts list with the disk gone");
    assert!(dir.read("cached.bin").expect("read cached.bin from the cache") == cached);

    supervisor::restart(DRIVER).expect("start the driver again");
    // Back: the same handle works once the driver has registered (the
    // server finds it on the next request; until then, Unavailable).
    let t = syscall::now_us();
    loop {
        match dir.sync() {
            Ok(()) => break,
            Err(Error::Unavailable) if syscall::now_us() - t < 10_000_000 => syscall::sleep_ms(20),
            Err(e) => panic!("sync after {DRIVER} came back: {e:?}"),
        }
    }
    let back = syscall::now_us() - t;
    dir.drop_caches().expect("drop_caches");
    assert!(dir.read("kept.bin").expect("read kept.bin") == kept, "kept.bin differs");
    assert!(
        dir.read("cached.bin").expect("read cached.bin") == cached,
        "cached.bin differs"
    );
    dir.remove_file("kept.bin").expect("rm kept.bin");
    dir.remove_file("cached.bin").expect("rm cached.bin");
    log::info!(
        "disk gone: a sync failed Unavailable in {first} us (the first), at most {worst} us (the next 5: {next:?} us); \
         mounts listed in {mounts_us} us and a cached file read meanwhile; \
         {DRIVER} back: synced {back} us after its restart, both files read back from the disk"
    );
}

/// How long the first request for a mount whose disk no task here serves
/// may take to fail (guest time): less than the server's wait for a
/// driver that is starting (`fs::link::GRACE_US`, 300 ms), which it must
/// not wait (it took 33 and 48 ms on a loaded host: the lookup and the
/// supervisor's route list).
const ABSENT_BOUND_US: u64 = 250_000;

/// A machine without the disk: `/data` fails `Unavailable`, and, when this
/// is the file server's only client (so its request is the mount's first:
/// `servers=fs`), within [`ABSENT_BOUND_US`]. In a boot with other clients
/// (the shell, the soft bus) one of them may have asked first, and this
/// request's time tells nothing: it is printed, not checked.
fn disk_absent() {
    let routes = supervisor::services().expect("supervisor::services");
    let word = |t: &str, i: usize| String::from(t.split(' ').nth(i).unwrap_or(""));
    let Some((_, fs_route)) = routes.iter().find(|(_, t)| word(t, 0) == "fs") else {
        log::info!("no {DRIVER} task (no virtio disk on this machine), no file server: nothing to test");
        return;
    };
    // Another block driver (the Pi's sdhci): not this test.
    if routes.iter().any(|(_, t)| word(t, 0).starts_with("blk")) {
        log::info!("no {DRIVER} task (no virtio disk on this machine): nothing to test");
        return;
    }
    let alone = word(fs_route, 2).split(',').all(|user| user == "test-fs");
    let mut ns = Namespace::new();
    // Connected (the mounts list needs no disk), so that the time below
    // is the server's.
    ns.mounts().expect("the mounts list without the disk");
    let t = syscall::now_us();
    let r = ns.root("data").map(drop);
    let us = syscall::now_us() - t;
    expect("/data on a machine without the disk", r, Error::Unavailable);
    if alone {
        assert!(
            us < ABSENT_BOUND_US,
            "/data on a machine without the disk failed after {us} us"
        );
    }
    log::info!(
        "no {DRIVER} task (no virtio disk on this machine): /data failed Unavailable in {us} us ({}); nothing more to test",
        if alone {
            "the mount's first request"
        } else {
            "other clients of fs: not timed"
        }
    );
}
