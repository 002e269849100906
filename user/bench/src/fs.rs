//! File-server benchmarks, read by `cargo xtask bench` like `bench`'s
//! (`bench: <name> <instructions>`).
//!
//! Run with `utest=bench-fs servers=fs` on a machine with a FAT32 disk on
//! virtio-blk (`cargo xtask bench` boots the phone image with a fresh
//! 64 MiB disk from `mkfs.vfat -F 32`): the phone profile's drivers and
//! its file server run, nothing else. Counted in instructions retired (PMU
//! event 0x08, [`instructions`]) on the one CPU: this client, the file
//! server, the virtio-blk driver and the kernel together, the way the
//! issue's Linux figures count the whole system; waiting for the disk is
//! not counted. It needs the counters capability (`config::TEST_COUNTERS`
//! in init), as the other benchmark programs do. The operations are those Linux was measured with:
//! - `fs_mount`: the first request for `/data` (it mounts the volume), from
//!   the lookup of `fs` on, once the file server and the drivers are up;
//! - a 16 MiB file in 64 KiB writes (`fs_write_per_mib`), then fsync
//!   (`fs_fsync_per_mib`), and the two together (`fs_write_fsync_per_mib`);
//! - reading it back in 64 KiB reads after the caches were dropped
//!   (`fs_read_cold_per_mib`), and a file that fits the server's cache read
//!   a second time (`fs_read_cached_per_mib`);
//! - 1,000 files of 64 bytes named `f0000`.. in a new directory: create
//!   (open, write, close), stat twice (`fs_stat_cached_per_file`, then
//!   after dropping the caches `fs_stat_cold_per_file`) and unlink, each
//!   per file.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use userlib::abi::boot_info::StartInfo;
use userlib::arch::instructions;
use userlib::fs::{Namespace, OpenOptions, Read, Write};
use userlib::ipc::Timeout;
use userlib::services::fs::{READ_RIGHT, WRITE_RIGHT};
use userlib::{names, println, syscall};

// The transfer buffers and the names.
userlib::entry!(main, heap = 512 << 10);

const MIB: usize = 1 << 20;
/// The big file, as Linux was measured.
const BIG_MIB: usize = 16;
/// Each read or write of the big file.
const CHUNK: usize = 64 << 10;
/// The file read cached: it fits the server's block cache (1 MiB).
const WARM: usize = MIB / 2;
/// Small files created, stat-ed and deleted (64 bytes each).
const SMALL_FILES: u64 = 1000;

/// `f` and the instructions it took.
fn counted<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let a = instructions();
    let r = f();
    (r, instructions().wrapping_sub(a) as u64)
}

fn report(name: &str, value: u64) {
    println!("bench: {name} {value}");
}

fn main(_: &StartInfo) {
    let me = userlib::process();
    syscall::thread_configure(me.thread, me.priority, Some(0)).expect("pin to CPU 0");
    // The count starts once the file server is up and the tasks started
    // with it are done starting: this program starts beside them, and its
    // first lookup of `fs` otherwise waits (10 ms at a time) for the
    // server to register, counting whatever runs meanwhile (the server's
    // own start, the drivers') as the mount's: about 55,000 instructions.
    // The lookup counted below is a fresh one, as the first open of a
    // client of a running server makes.
    let fs = names::connect(userlib::services::fs::NAME, Timeout::millis(10_000)).expect("fs registered");
    syscall::cap_delete(fs).expect("drop the endpoint");
    syscall::sleep_ms(100);
    let mut ns = Namespace::new();
    let (root, mount) = counted(|| ns.root("data").map(|_| ()));
    root.expect("mount /data");
    report("fs_mount", mount);
    let data = ns.root("data").expect("root");
    let chunk = vec![0x5au8; CHUNK];

    // Sequential write, then fsync.
    let mut f = data
        .open("big", &OpenOptions::new().write(true).create(true).truncate(true))
        .expect("create big");
    let ((), write) = counted(|| {
        for _ in 0..BIG_MIB * MIB / CHUNK {
            f.write_all(&chunk).expect("write");
        }
    });
    let ((), fsync) = counted(|| f.sync_all().expect("fsync"));
    drop(f);
    let mib = BIG_MIB as u64;
    report("fs_write_fsync_per_mib", (write + fsync) / mib);
    report("fs_write_per_mib", write / mib);
    report("fs_fsync_per_mib", fsync / mib);

    // Cold: every sector from the disk.
    data.drop_caches().expect("drop caches");
    let mut buf = vec![0u8; CHUNK];
    let mut f = data.open("big", &OpenOptions::new().read(true)).expect("open big");
    // Each read is counted; checking what it read is not (Linux was
    // measured reading into a buffer no one looked at).
    let mut cold = 0;
    for _ in 0..BIG_MIB * MIB / CHUNK {
        let ((), n) = counted(|| f.read_exact(&mut buf).expect("read"));
        cold += n;
        assert!(buf.iter().all(|&b| b == 0x5a), "read back what was written");
    }
    report("fs_read_cold_per_mib", cold / mib);
    drop(f);

    // Cached: a file the cache holds, read a second time.
    let mut f = data
        .open(
            "warm",
            &OpenOptions::new().read(true).write(true).create(true).truncate(true),
        )
        .expect("create warm");
    for _ in 0..WARM / CHUNK {
        f.write_all(&chunk).expect("write warm");
    }
    let mut read_all = |f: &mut userlib::fs::File| {
        for i in 0..WARM / CHUNK {
            let n = f.read_at((i * CHUNK) as u64, &mut buf).expect("read");
            assert_eq!(n, CHUNK);
        }
    };
    read_all(&mut f);
    let ((), cached) = counted(|| read_all(&mut f));
    report("fs_read_cached_per_mib", cached * (MIB / WARM) as u64);
    drop(f);

    // 1,000 small files: create (and write 64 bytes), stat, delete.
    data.create_dir("small").expect("mkdir small");
    let dir = data.open_dir("small", READ_RIGHT | WRITE_RIGHT).expect("open small");
    let names: Vec<String> = (0..SMALL_FILES).map(|i| format!("f{i:04}")).collect();
    let line = [b'x'; 64];
    let ((), create) = counted(|| {
        for n in &names {
            dir.write(n, &line).expect("create");
        }
    });
    let stat_all = || {
        for n in &names {
            assert_eq!(dir.metadata(n).expect("stat").size, 64);
        }
    };
    let ((), stat) = counted(stat_all);
    data.drop_caches().expect("drop caches");
    let ((), stat_cold) = counted(stat_all);
    let ((), unlink) = counted(|| {
        for n in &names {
            dir.remove_file(n).expect("unlink");
        }
    });
    report("fs_create_64b_per_file", create / SMALL_FILES);
    report("fs_stat_cached_per_file", stat / SMALL_FILES);
    report("fs_stat_cold_per_file", stat_cold / SMALL_FILES);
    report("fs_unlink_per_file", unlink / SMALL_FILES);
    data.sync().expect("sync");
}
