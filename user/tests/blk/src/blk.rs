//! test-blk: the disk driver that serves `blk` (virtio-blk, or sdhci with
//! an SD card), through the service.
//!
//! 1. INFO; patterns written and read back across the disk, first and last
//!    sectors and whole-request transfers included, at odd buffer offsets.
//! 2. Malformed requests (bad counts, sectors past the end, ranges outside
//!    the buffer, unknown buffers and labels, wrong capabilities) get
//!    FAILED replies, and the driver keeps working.
//! 3. Writes each followed by a FLUSH: virtio-blk sleeps through the
//!    flushes (under `-icount`, it runs under 50,000 instructions per
//!    flush; elsewhere the figures are printed only).
//! 4. A client that revokes its buffer while the driver copies through it:
//!    a second thread revokes the attached memory in a tight loop while
//!    this one asks for whole-request READs and WRITEs; the client gets
//!    answers or errors only, and the driver is never restarted.
//! 5. The driver killed in the middle of I/O: a writer thread streams
//!    writes of sector patterns while this thread restarts the driver
//!    task that registered `blk` through the supervisor. The broken request fails, the client
//!    reconnects and retries, and at the end every sector holds exactly
//!    what was last written; the supervisor counts the restart.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use userlib::abi::boot_info::StartInfo;
use userlib::abi::ObjectType;
use userlib::ipc::{Message, Timeout};
use userlib::names::{self, supervisor};
use userlib::proto::TaskState;
use userlib::services::blk::{self, Blk, MAX_SECTORS, SECTOR_SIZE};
use userlib::sync::Mutex;
use userlib::test::{expect_err, Revokers, Rng};
use userlib::vspace::Mapping;
use userlib::{log, process, syscall, thread, Error, Rights};

userlib::entry!(main);

/// The programs that serve `blk`.
const DRIVERS: &[&str] = &["virtio-blk", "sdhci"];
const BUFFER: usize = MAX_SECTORS as usize * SECTOR_SIZE + 4096;

/// Word `j` of sector `sector` as generation `generation` writes it.
fn pattern_word(sector: u64, generation: u64, j: usize) -> u64 {
    match j {
        0 => sector,
        1 => generation,
        _ => (sector << 32 ^ generation << 12 ^ j as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
    }
}

fn fill(buf: &mut [u8], first_sector: u64, generation: &dyn Fn(u64) -> u64) {
    for (i, s) in buf.chunks_exact_mut(SECTOR_SIZE).enumerate() {
        let sector = first_sector + i as u64;
        for (j, w) in s.chunks_exact_mut(8).enumerate() {
            w.copy_from_slice(&pattern_word(sector, generation(sector), j).to_le_bytes());
        }
    }
}

/// The first sector of `buf` that does not hold its pattern.
fn mismatch(buf: &[u8], first_sector: u64, generation: &dyn Fn(u64) -> u64) -> Option<(u64, u64, u64)> {
    for (i, s) in buf.chunks_exact(SECTOR_SIZE).enumerate() {
        let sector = first_sector + i as u64;
        for (j, w) in s.chunks_exact(8).enumerate() {
            if u64::from_le_bytes(w.try_into().unwrap()) != pattern_word(sector, generation(sector), j) {
                let word = |k: usize| u64::from_le_bytes(s[k * 8..k * 8 + 8].try_into().unwrap());
                return Some((sector, word(0), word(1)));
            }
        }
    }
    None
}

fn main(_start: &StartInfo) {
    // Machines without a disk driver (most test boots) have nothing to test.
    if !supervisor::tasks()
        .expect("supervisor::tasks")
        .iter()
        .any(|t| DRIVERS.contains(&t.name.as_str()))
    {
        log::info!("no disk driver task ({DRIVERS:?}) on this machine: nothing to test");
        return;
    }
    // A driver may still be identifying its disk (an SD card).
    match names::connect(blk::NAME, Timeout::millis(10_000)) {
        Ok(ep) => syscall::cap_delete(ep).expect("cap_delete"),
        Err(e) => {
            log::info!("no task registered {} ({e}): no disk to test", blk::NAME);
            return;
        }
    }
    let driver = Driver::find();
    log::info!("{} is served by {} (task {})", blk::NAME, driver.name, driver.id);
    let mut disk = Blk::new(blk::NAME, BUFFER).expect("Blk::new");
    let info = disk.info().expect("INFO");
    log::info!(
        "disk: {} sectors, read-only {}, {} sectors per request",
        info.sectors,
        info.read_only,
        info.max_sectors
    );
    assert!(
        info.sectors >= 256,
        "a disk of {} sectors is too small for this test",
        info.sectors
    );
    assert!(!info.read_only);
    assert_eq!(info.max_sectors, MAX_SECTORS);

    patterns(&mut disk, info.sectors);
    malformed(&mut disk, info.sectors);
    throughput(&mut disk, info.sectors);
    flush_sleeps(&mut disk, info.sectors, &driver);
    attach_churn(&mut disk, &driver);
    revoked_buffers(&driver);
    restart_mid_io(disk, info.sectors, &driver);
}

/// The task that serves `blk`.
struct Driver {
    id: u64,
    name: alloc::string::String,
}

impl Driver {
    fn find() -> Driver {
        let services = supervisor::services().expect("supervisor::services");
        let id = services
            .iter()
            .find(|(_, text)| text.split_whitespace().next() == Some(blk::NAME))
            .map(|(v, _)| v[0])
            .expect("blk in the service list");
        Driver {
            id,
            name: record(id).name,
        }
    }
}

fn record(id: u64) -> userlib::proto::TaskRecord {
    supervisor::tasks()
        .expect("supervisor::tasks")
        .into_iter()
        .find(|t| t.id == id)
        .unwrap_or_else(|| panic!("no task {id} in the supervisor's list"))
}

fn patterns(disk: &mut Blk, sectors: u64) {
    let gen = |_: u64| 1;
    let last = sectors - 1;
    let max = MAX_SECTORS;
    // (sector, count, buffer offset)
    let cases = [
        (0, 1, 0),
        (last, 1, 0),
        (1, 7, 512),
        (sectors / 2, max, 0),
        (sectors - max, max, 4096),
        (last - 2, 3, 3),
    ];
    for (sector, count, offset) in cases {
        let bytes = count as usize * SECTOR_SIZE;
        fill(&mut disk.buffer_mut()[offset..offset + bytes], sector, &gen);
        disk.write(sector, count, offset)
            .unwrap_or_else(|e| panic!("write {sector}+{count}: {e}"));
        disk.buffer_mut()[..BUFFER].fill(0xee);
        disk.read(sector, count, offset)
            .unwrap_or_else(|e| panic!("read {sector}+{count}: {e}"));
        if let Some(m) = mismatch(&disk.buffer()[offset..offset + bytes], sector, &gen) {
            panic!(
                "{sector}+{count} at offset {offset}: sector {} reads back as (sector {}, generation {})",
                m.0, m.1, m.2
            );
        }
        // Nothing beyond the range was touched.
        assert!(disk.buffer()[offset + bytes..BUFFER].iter().all(|b| *b == 0xee));
    }
    // Reads of one sector at a time agree with the multi-sector write.
    for s in [sectors / 2, sectors / 2 + max - 1] {
        disk.read(s, 1, 0).expect("single-sector read");
        assert_eq!(mismatch(&disk.buffer()[..SECTOR_SIZE], s, &gen), None, "sector {s}");
    }
    disk.flush().expect("FLUSH");
    log::info!("patterns: first, last and whole-request transfers read back intact");
}

fn malformed(disk: &mut Blk, sectors: u64) {
    let ep = names::connect(blk::NAME, Timeout::millis(10_000)).expect("connect");
    let call = |m: &Message| -> Result<Message, Error> {
        syscall::call_timeout(ep, m, Timeout::millis(10_000)).and_then(|(r, _)| userlib::proto::check_reply(r))
    };
    let attach = |id: u64, mem: userlib::Handle, rights: Rights| {
        let mut m = Message::with_words(blk::ATTACH, &[id]);
        m.push_cap(mem, rights);
        call(&m)
    };
    let all = Rights::READ | Rights::WRITE | Rights::MAP;
    let mut mine = Mapping::new(1, Rights::READ | Rights::WRITE).expect("buffer");
    // Ids above u32::MAX: the typed client's (a handle) cannot be one.
    let id = 1 << 40;
    let other = id + 7;
    let r = attach(id, mine.handle(), all).expect("ATTACH");
    assert_eq!(r.word(0), 4096);
    // The reply tells what INFO does as well.
    assert_eq!(r.words()[1..], [sectors, 0, blk::MAX_SECTORS][..], "ATTACH reply");

    let rw = |label, sector: u64, count: u64, offset: u64, id: u64| {
        call(&Message::with_words(label, &[sector, count, offset, id]))
    };
    for label in [blk::READ, blk::WRITE] {
        let what = if label == blk::READ { "READ" } else { "WRITE" };
        for (sector, count, offset, expected) in [
            (0, 0, 0, Error::InvalidArgument),               // no sectors
            (0, MAX_SECTORS + 1, 0, Error::InvalidArgument), // too many
            (sectors, 1, 0, Error::InvalidArgument),         // past the end
            (sectors - 1, 2, 0, Error::InvalidArgument),     // over the end
            (u64::MAX, 2, 0, Error::InvalidArgument),        // wraps around
            (0, 1, 4096 - 511, Error::InvalidArgument),      // out of the buffer
            (0, 9, 0, Error::InvalidArgument),               // larger than the buffer
            (0, 1, u64::MAX - 100, Error::InvalidArgument),  // offset wraps
        ] {
            expect_err(
                &alloc::format!("{what} [{sector}, {count}, {offset}]"),
                rw(label, sector, count, offset, id),
                expected,
            );
        }
        expect_err(
            &alloc::format!("{what} with an unknown buffer"),
            rw(label, 0, 1, 0, id + 1),
            Error::InvalidState,
        );
    }
    // A well-formed request on the same buffer works.
    mine.as_mut_slice()[..SECTOR_SIZE].fill(0x5a);
    rw(blk::WRITE, 3, 1, 0, id).expect("WRITE through the raw buffer");
    mine.as_mut_slice().fill(0);
    rw(blk::READ, 3, 1, 2048, id).expect("READ through the raw buffer");
    assert!(mine.as_slice()[2048..2048 + SECTOR_SIZE].iter().all(|b| *b == 0x5a));
    assert!(mine.as_slice()[..2048].iter().all(|b| *b == 0));

    expect_err(
        "unknown label",
        call(&Message::with_words(99, &[0, 1, 0, id])),
        Error::InvalidArgument,
    );
    expect_err(
        "ATTACH without a capability",
        call(&Message::with_words(blk::ATTACH, &[other])),
        Error::InvalidArgument,
    );
    let me = process();
    let notification = syscall::create(me.pool, ObjectType::Notification, 0).expect("notification");
    expect_err(
        "ATTACH of a notification",
        attach(other, notification, Rights::all()),
        Error::InvalidArgument,
    );
    expect_err(
        "ATTACH of read-only memory",
        attach(other, mine.handle(), Rights::READ | Rights::MAP),
        Error::NoRights,
    );
    let big = syscall::create(me.pool, ObjectType::Memory, (blk::MAX_BUFFER_BYTES / 4096 + 1) as u64).expect("memory");
    expect_err(
        "ATTACH of too much memory",
        attach(other, big, all),
        Error::InvalidArgument,
    );
    let mut two = Message::with_words(blk::ATTACH, &[other]);
    two.push_cap(mine.handle(), all);
    two.push_cap(mine.handle(), all);
    expect_err("ATTACH with two capabilities", call(&two), Error::InvalidArgument);
    expect_err(
        "READ of a refused buffer",
        rw(blk::READ, 0, 1, 0, other),
        Error::InvalidState,
    );
    // Capabilities sent with other requests are dropped by the driver.
    let mut info = Message::new(blk::INFO);
    info.push_cap(mine.handle(), all);
    assert_eq!(call(&info).expect("INFO with a capability").word(0), sectors);

    call(&Message::with_words(blk::DETACH, &[id])).expect("DETACH");
    expect_err(
        "DETACH twice",
        call(&Message::with_words(blk::DETACH, &[id])),
        Error::InvalidState,
    );
    expect_err("READ after DETACH", rw(blk::READ, 0, 1, 0, id), Error::InvalidState);
    for h in [notification, big, ep] {
        syscall::cap_delete(h).expect("cap_delete");
    }
    // The typed client still works.
    disk.read(0, 1, 0).expect("read after the malformed requests");
    assert_eq!(mismatch(&disk.buffer()[..SECTOR_SIZE], 0, &|_| 1), None);
    log::info!("malformed requests: all refused, the driver carries on");
}

/// Cost of whole-request transfers, in PMU cycles (instructions under
/// `-icount shift=0`, counted on this CPU: with one CPU, the client,
/// kernel and driver together) and microseconds.
fn throughput(disk: &mut Blk, sectors: u64) {
    const ROUNDS: u64 = 16;
    let kib = MAX_SECTORS * SECTOR_SIZE as u64 / 1024;
    for write in [false, true] {
        let (c0, t0) = (userlib::arch::cycles(), syscall::now_us());
        for i in 0..ROUNDS {
            let sector = (i * MAX_SECTORS) % (sectors - MAX_SECTORS + 1);
            let r = if write {
                disk.write(sector, MAX_SECTORS, 0)
            } else {
                disk.read(sector, MAX_SECTORS, 0)
            };
            r.expect("throughput transfer");
        }
        let (cycles, us) = (
            (userlib::arch::cycles() - c0) / ROUNDS,
            (syscall::now_us() - t0) / ROUNDS,
        );
        let kind = if write { "write" } else { "read" };
        if cycles == 0 {
            log::info!("throughput: {kind} of {kib} KiB: {us} us (no cycle counter)");
        } else {
            log::info!(
                "throughput: {kind} of {kib} KiB: {cycles} cycles ({} per KiB), {us} us",
                cycles / kib
            );
        }
    }
}

/// The most a driver may run per FLUSH under `-icount`, in microseconds
/// (thousands of instructions).
const FLUSH_WORK_US: u64 = 50;

/// FLUSH after each of a run of writes: virtio-blk sleeps while the
/// device flushes. A driver that spins until the device answers
/// (virtio-blk on virtio-drivers' `VirtIOBlk::flush`, until 2026-12-06) is
/// on the CPU for as long as the host takes to make the writes durable.
///
/// Checked only under `-icount shift=0` (`utest-virtio-blk-icount`),
/// where a task's CPU time is the instructions it ran (1 ns each): the
/// driver must have run less than [`FLUSH_WORK_US`] per flush. Its own
/// work per flush is about 6,000 instructions; spinning through the host's
/// `fdatasync` cost 100,000 to 1.9 million per flush on a disk-backed
/// image (session 12's counters), and would pass unnoticed only where the
/// host makes a flush durable in under 50 us. The flushes' own time is no
/// measure under `-icount sleep=off` (an idle CPU skips ahead to its next
/// timer). Without `-icount` a task's CPU time is wall-clock time on a
/// virtual CPU, which also counts the time the host does not run that
/// CPU's thread (4 virtual CPUs on a loaded 2-core host: the sleeping
/// driver measured 66,821 of 117,271 us of flushes there, the old
/// spinning one 360 of 488 ms on an idle host), so the figures are
/// printed, not checked. sdhci, whose flush returns at once, is not
/// checked.
fn flush_sleeps(disk: &mut Blk, sectors: u64, driver: &Driver) {
    const ROUNDS: u64 = 32;
    let gen = |_: u64| 3;
    let (mut cpu, mut us) = (0, 0);
    for i in 0..ROUNDS {
        let sector = (i * MAX_SECTORS) % (sectors - MAX_SECTORS + 1);
        fill(
            &mut disk.buffer_mut()[..MAX_SECTORS as usize * SECTOR_SIZE],
            sector,
            &gen,
        );
        disk.write(sector, MAX_SECTORS, 0).expect("write before FLUSH");
        // Only the FLUSH is timed (reading the driver's CPU time is a call
        // to the supervisor, outside the timed part).
        let cpu0 = record(driver.id).cpu_us;
        let t0 = syscall::now_us();
        disk.flush().expect("FLUSH");
        us += syscall::now_us() - t0;
        cpu += record(driver.id).cpu_us - cpu0;
    }
    // `masked_max` answers only where the kernel counts instructions.
    let icount = syscall::masked_max().is_ok();
    let checked = if driver.name != "virtio-blk" {
        "not checked: its flush returns at once"
    } else if icount {
        "checked (-icount)"
    } else {
        "not checked: wall clock"
    };
    log::info!(
        "flushes: {ROUNDS} flushes after writes in {us} us, the driver on the CPU for {cpu} us of them ({checked})"
    );
    assert!(
        driver.name != "virtio-blk" || !icount || cpu < ROUNDS * FLUSH_WORK_US,
        "the driver ran {cpu} us (instructions / 1000) in {ROUNDS} flushes, more than {FLUSH_WORK_US} per flush: it does not sleep through them"
    );
}

/// Attaching over and over costs the driver no memory (it maps buffers in
/// fixed windows), more buffers than it keeps push out the least recently
/// used, and the typed client attaches again when its buffer was pushed out.
fn attach_churn(disk: &mut Blk, driver: &Driver) {
    let ep = names::connect(blk::NAME, Timeout::millis(10_000)).expect("connect");
    let call = |m: &Message| -> Result<Message, Error> {
        syscall::call_timeout(ep, m, Timeout::millis(10_000)).and_then(|(r, _)| userlib::proto::check_reply(r))
    };
    let mem = Mapping::new(256, Rights::READ | Rights::WRITE).expect("1 MiB buffer");
    let attach = |id: u64| {
        let mut m = Message::with_words(blk::ATTACH, &[id]);
        m.push_cap(mem.handle(), Rights::READ | Rights::WRITE | Rights::MAP);
        call(&m)
    };
    let base = 2 << 40;
    attach(base).expect("first ATTACH");
    call(&Message::with_words(blk::DETACH, &[base])).expect("DETACH");
    let before = record(driver.id).memory_used;
    for i in 0..64 {
        attach(base + i).expect("ATTACH");
        call(&Message::with_words(blk::READ, &[0, 1, 0, base + i])).expect("READ");
        call(&Message::with_words(blk::DETACH, &[base + i])).expect("DETACH");
    }
    let after = record(driver.id).memory_used;
    assert!(
        after <= before + 8192,
        "64 attachments of 1 MiB: the driver grew from {before} to {after} bytes"
    );
    // More buffers than the driver keeps: the oldest are forgotten.
    let n = blk::MAX_BUFFERS as u64 + 4;
    for i in 0..n {
        attach(base + i).expect("ATTACH");
    }
    expect_err(
        "READ on a pushed-out buffer",
        call(&Message::with_words(blk::READ, &[0, 1, 0, base])),
        Error::InvalidState,
    );
    call(&Message::with_words(blk::READ, &[0, 1, 0, base + n - 1])).expect("READ on the newest buffer");
    // The typed client's buffer was pushed out too: it attaches again.
    disk.read(0, 1, 0)
        .expect("read after the client's buffer was pushed out");
    for i in 0..n {
        let _ = call(&Message::with_words(blk::DETACH, &[base + i]));
    }
    syscall::cap_delete(ep).expect("cap_delete");
    log::info!(
        "attach churn: driver memory {} -> {} KiB, least recently used buffers pushed out",
        before >> 10,
        after >> 10
    );
}

/// A hostile client revokes its attached buffer in a tight loop (a second
/// thread) while asking for whole-request transfers through it. Before the
/// driver kit copied with `MemoryRead`/`MemoryWrite`, it mapped the buffer
/// and faulted when the revoke landed between its check and its copy.
fn revoked_buffers(driver: &Driver) {
    const RUN_US: u64 = 1_500_000;
    let ep = names::connect(blk::NAME, Timeout::millis(10_000)).expect("connect");
    let restarts = record(driver.id).restarts;
    let bytes = MAX_SECTORS as usize * SECTOR_SIZE;
    let mem = syscall::create(process().pool, ObjectType::Memory, (bytes / 4096) as u64).expect("memory");
    // One revoker per CPU, below the driver's priority, each pausing a
    // random spin of up to about a request between two revokes.
    let revokers = Revokers::start(mem, 10, 40_000, 0x5eed);
    let id = 3 << 40;
    let (mut ok, mut refused) = (0u64, 0u64);
    let start = syscall::now_us();
    'run: while syscall::now_us() - start < RUN_US {
        let mut m = Message::with_words(blk::ATTACH, &[id]);
        m.push_cap(mem, Rights::READ | Rights::WRITE | Rights::MAP);
        let mut requests = alloc::vec![m];
        for i in 0..4u64 {
            let label = if i % 2 == 0 { blk::READ } else { blk::WRITE };
            // Sectors 16.. of the disk: what restart_mid_io writes next.
            requests.push(Message::with_words(label, &[16, MAX_SECTORS, 0, id]));
        }
        for m in &requests {
            match syscall::call_timeout(ep, m, Timeout::millis(10_000))
                .and_then(|(r, _)| userlib::proto::check_reply(r))
            {
                Ok(_) => ok += 1,
                // (BadHandle: revoked before the driver looked at it.)
                Err(Error::InvalidState | Error::InvalidArgument | Error::NoRights | Error::BadHandle) => refused += 1,
                Err(e) => {
                    panic!(
                        "the driver failed under a client revoking its buffer ({ok} answers, {refused} errors): {e:?}; restarts {} -> {}",
                        restarts,
                        record(driver.id).restarts
                    );
                }
            }
            if syscall::now_us() - start > RUN_US {
                break 'run;
            }
        }
    }
    let revokes = revokers.stop();
    let _ = call_detach(ep, id);
    syscall::cap_delete(mem).expect("cap_delete");
    syscall::cap_delete(ep).expect("cap_delete");
    let after = record(driver.id).restarts;
    assert_eq!(
        after, restarts,
        "the driver was restarted under a client revoking its buffer"
    );
    log::info!("revoked buffers: {ok} answers, {refused} errors, {revokes} revokes; the driver never restarted");
}

fn call_detach(ep: userlib::Handle, id: u64) -> Result<(Message, u64), Error> {
    syscall::call_timeout(ep, &Message::with_words(blk::DETACH, &[id]), Timeout::millis(10_000))
}

/// What the writer and the checker share.
struct Shared {
    disk: Option<Blk>,
    /// Generation last written to each sector of the region.
    generation: Vec<u64>,
    /// Calls that failed (then retried).
    errors: Vec<Error>,
}

fn restart_mid_io(mut disk: Blk, sectors: u64, driver: &Driver) {
    let driver_restarts = || {
        let t = record(driver.id);
        (t.restarts, t.state)
    };
    // The region the writer uses: the whole disk, up to 2048 sectors.
    let region = sectors.min(2048);
    let (restarts_before, _) = driver_restarts();
    // Generation 1 everywhere first, so every sector's content is known.
    for start in (0..region).step_by(MAX_SECTORS as usize) {
        let count = MAX_SECTORS.min(region - start);
        fill(&mut disk.buffer_mut()[..count as usize * SECTOR_SIZE], start, &|_| 1);
        disk.write(start, count, 0).expect("initial write");
    }
    const WRITES: u64 = 400;
    const RESTART_AT: u64 = 60;
    let shared = Arc::new(Mutex::new(Shared {
        disk: Some(disk),
        generation: vec![1; region as usize],
        errors: Vec::new(),
    }));
    let progress = Arc::new(AtomicU64::new(0));
    let seed = syscall::now_us() | 1;
    log::info!(
        "writer: {WRITES} writes over {region} sectors, seed {seed:#x}; restarting {} after {RESTART_AT}",
        driver.name
    );
    let writer = {
        let (shared, progress) = (shared.clone(), progress.clone());
        thread::spawn(move || {
            let mut rng = Rng::new(seed);
            let mut disk = shared.lock().disk.take().expect("the disk");
            for i in 0..WRITES {
                let generation = i + 2;
                let count = 1 + rng.below(16);
                let sector = rng.below(region - count + 1);
                fill(&mut disk.buffer_mut()[..count as usize * SECTOR_SIZE], sector, &|_| {
                    generation
                });
                let mut tries = 0;
                while let Err(e) = disk.write(sector, count, 0) {
                    // Broken by the restart: the client reconnects on the
                    // next call; writing the same data again is safe.
                    shared.lock().errors.push(e);
                    tries += 1;
                    assert!(
                        tries < 50,
                        "write {sector}+{count} still fails after {tries} tries: {e}"
                    );
                    syscall::sleep_ms(20);
                }
                let mut s = shared.lock();
                for g in &mut s.generation[sector as usize..(sector + count) as usize] {
                    *g = generation;
                }
                drop(s);
                progress.store(i + 1, Ordering::Release);
            }
            shared.lock().disk = Some(disk);
        })
        .expect("spawn the writer")
    };
    while progress.load(Ordering::Acquire) < RESTART_AT {
        syscall::sleep(200);
    }
    supervisor::restart(&alloc::format!("{}", driver.id)).expect("restart the driver (needs the control right)");
    let at = progress.load(Ordering::Acquire);
    log::info!("{} restarted after {at} writes", driver.name);
    writer.join().expect("join the writer");
    let mut s = shared.lock();
    let mut disk = s.disk.take().expect("the writer hands the disk back");
    assert!(at < WRITES, "the restart came after the last write");
    assert!(!s.errors.is_empty(), "no request failed across the driver restart");
    log::info!(
        "{} failed call(s) across the restart, all retried: {:?}",
        s.errors.len(),
        s.errors
    );

    // Every sector holds its last generation.
    let generation = core::mem::take(&mut s.generation);
    drop(s);
    let gen = |sector: u64| generation[sector as usize];
    for start in (0..region).step_by(MAX_SECTORS as usize) {
        let count = MAX_SECTORS.min(region - start);
        disk.buffer_mut()[..count as usize * SECTOR_SIZE].fill(0);
        disk.read(start, count, 0).expect("read back");
        if let Some((sector, holds, holds_gen)) = mismatch(&disk.buffer()[..count as usize * SECTOR_SIZE], start, &gen)
        {
            panic!(
                "sector {sector} should hold generation {} but holds (sector {holds}, generation {holds_gen})",
                gen(sector)
            );
        }
    }
    let (restarts_after, state) = driver_restarts();
    assert!(
        restarts_after > restarts_before,
        "the supervisor counts {restarts_after} restarts of {}, {restarts_before} before",
        driver.name
    );
    assert_eq!(state, TaskState::Running);
    log::info!(
        "after the restart: all {region} sectors hold their last write; {} restarts {restarts_before} -> {restarts_after}",
        driver.name
    );
    let t = record(driver.id);
    log::info!(
        "{}: {} of {} KiB used",
        t.name,
        t.memory_used >> 10,
        t.memory_limit >> 10
    );
    drop(disk);
}
