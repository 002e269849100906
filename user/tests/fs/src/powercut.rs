//! test-powercut: the workload the harness cuts the power under (case
//! `utest-fs-powercut`: QEMU is killed in the middle of it, booted again on
//! the same disk, killed again...).
//!
//! Each run first checks what the runs before it left in `/data/cut`:
//! every file `R-N` (run R, file N) must hold exactly the bytes run R
//! wrote to it — its first or its appended version — and is listed as
//! `test-powercut: intact R-N LEN`; a file that does not is a failure.
//! Temporary files (`*.tmp`: written, not yet renamed when the power went)
//! are removed, and so are the files of runs [`KEEP_RUNS`] or more before
//! this one, each announced first as `test-powercut: removing R-N` (so the
//! directory stays small over a hundred runs; each file is checked by the
//! [`KEEP_RUNS`] runs after it). Then the workload: [`FILES`] files, each
//! written to `R-N.tmp` in several writes, fsynced, renamed to `R-N` and
//! synced, then reported as `test-powercut: synced R-N LEN`; every third
//! file is then appended to, fsynced and reported again with its new
//! length. The harness checks that every file reported synced before a cut,
//! and not announced as removed since, is listed intact, at least at that
//! length, by the next run.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use userlib::abi::boot_info::StartInfo;
use userlib::fs::{Error, Namespace, OpenOptions, Write};
use userlib::log;
use userlib::names::supervisor;

userlib::entry!(main, heap = 1 << 20);

/// Files each run writes (the harness's `SYNCED_PER_RUN` counts their
/// synced reports: one each, one more for every third).
const FILES: u32 = 6;

/// Runs whose files a run keeps (checks): older ones it removes.
const KEEP_RUNS: u32 = 2;

const DRIVER: &str = "virtio-blk";

/// First length of file `N` of run `R`.
fn base_len(r: u32, n: u32) -> usize {
    1 + ((r as usize * 7919 + n as usize * 104_729) % 40_000)
}

/// Length after the append (files with `n % 3 == 2`).
fn full_len(r: u32, n: u32) -> usize {
    base_len(r, n) + 1 + ((r as usize * 31 + n as usize * 17) % 9000)
}

fn byte(r: u32, n: u32, i: usize) -> u8 {
    (i as u8)
        .wrapping_mul(31)
        .wrapping_add(r as u8 * 7)
        .wrapping_add(n as u8 * 13)
        ^ (i >> 9) as u8
}

fn pattern(r: u32, n: u32, range: core::ops::Range<usize>) -> Vec<u8> {
    range.map(|i| byte(r, n, i)).collect()
}

/// `R-N` -> (R, N).
fn parse_name(name: &str) -> Option<(u32, u32)> {
    let (r, n) = name.split_once('-')?;
    Some((r.parse().ok()?, n.parse().ok()?))
}

fn main(_start: &StartInfo) {
    // Machines without a virtio disk (most test boots) have nothing to test.
    if !supervisor::tasks()
        .expect("supervisor::tasks")
        .iter()
        .any(|t| t.name == DRIVER)
    {
        log::info!("no {DRIVER} task (no virtio disk on this machine): nothing to test");
        return;
    }
    let mut ns = Namespace::new();
    if let Err(Error::Unsupported) = ns.root("data") {
        log::info!("the disk holds no FAT file system: nothing to test");
        return;
    }
    let data = ns.root("data").expect("root of /data");
    // The harness cuts the power a random time after this line.
    log::info!("start");
    let start_us = userlib::syscall::now_us();
    match data.create_dir("cut") {
        Ok(()) | Err(Error::Exists) => {}
        Err(e) => panic!("mkdir cut: {e:?}"),
    }
    let dir = data
        .open_dir(
            "cut",
            userlib::services::fs::READ_RIGHT | userlib::services::fs::WRITE_RIGHT,
        )
        .expect("open cut");

    // What the runs before this one left.
    let mut run = 0;
    let mut intact = 0;
    let mut removed = 0;
    let mut kept: Vec<(String, u32)> = Vec::new();
    for e in dir.read_dir().expect("read_dir cut") {
        if e.name.ends_with(".tmp") {
            dir.remove_file(&e.name)
                .unwrap_or_else(|err| panic!("rm {}: {err:?}", e.name));
            removed += 1;
            continue;
        }
        let Some((r, n)) = parse_name(&e.name) else {
            panic!("unexpected file {:?} in /data/cut", e.name);
        };
        run = run.max(r + 1);
        let bytes = dir
            .read(&e.name)
            .unwrap_or_else(|err| panic!("read {}: {err:?}", e.name));
        let ok_len = bytes.len() == base_len(r, n) || (n % 3 == 2 && bytes.len() == full_len(r, n));
        assert!(
            ok_len && bytes == pattern(r, n, 0..bytes.len()),
            "torn file {}: {} bytes (written: {} or {}), {} differ",
            e.name,
            bytes.len(),
            base_len(r, n),
            full_len(r, n),
            bytes.iter().enumerate().filter(|&(i, &b)| b != byte(r, n, i)).count()
        );
        log::info!("intact {} {}", e.name, bytes.len());
        intact += 1;
        kept.push((e.name, r));
    }
    let mut old = 0;
    for (name, r) in kept {
        if r + KEEP_RUNS <= run {
            log::info!("removing {name}");
            dir.remove_file(&name)
                .unwrap_or_else(|err| panic!("rm {name}: {err:?}"));
            old += 1;
        }
    }
    let writes_us = userlib::syscall::now_us();
    log::info!(
        "run {run}: {intact} files intact, {removed} temporary files removed, {old} old files removed in {} ms",
        (writes_us - start_us) / 1000
    );

    for n in 0..FILES {
        let name = format!("{run}-{n}");
        let tmp: String = format!("{name}.tmp");
        let len = base_len(run, n);
        let mut f = dir
            .open(&tmp, &OpenOptions::new().write(true).create(true).truncate(true))
            .unwrap_or_else(|e| panic!("create {tmp}: {e:?}"));
        // Several writes of uneven sizes.
        let mut at = 0;
        let mut step = 1 + (n as usize * 2749) % 12_000;
        while at < len {
            let end = (at + step).min(len);
            f.write_all(&pattern(run, n, at..end)).expect("write");
            at = end;
            step = step * 3 / 2 + 511;
        }
        f.sync_all().expect("fsync");
        drop(f);
        dir.rename(&tmp, &name)
            .unwrap_or_else(|e| panic!("rename {tmp}: {e:?}"));
        dir.sync().expect("sync");
        log::info!("synced {name} {len}");
        if n % 3 == 2 {
            let mut f = dir
                .open(&name, &OpenOptions::new().write(true).append(true))
                .unwrap_or_else(|e| panic!("open {name}: {e:?}"));
            let full = full_len(run, n);
            f.write_all(&pattern(run, n, len..full)).expect("append");
            f.sync_all().expect("fsync append");
            log::info!("synced {name} {full}");
        }
    }
    log::info!(
        "run {run}: {FILES} files written in {} ms",
        (userlib::syscall::now_us() - writes_us) / 1000
    );
}
