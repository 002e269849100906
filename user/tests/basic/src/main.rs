//! The user library's basics work under the real kernel: start-up
//! information, IPC buffer, heap, console, clock, sleep, threads.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::{collections::BTreeMap, string::String, vec::Vec};
use core::sync::atomic::{AtomicU64, Ordering};
use userlib::abi::boot_info::{StartInfo, CHILD_IPC_BUFFER};
use userlib::abi::ObjectType;
use userlib::test::expect_err;
use userlib::{ipc, loader, log, process, syscall, thread, Error, Rights};

userlib::entry!(main, heap = 512 * 1024);

fn main(start: &StartInfo) {
    let me = process();
    assert_eq!(start.name(), "test-basic");
    assert_eq!(me.name(), "test-basic");
    assert_eq!(ipc::buffer_address(), Some(CHILD_IPC_BUFFER), "IPC buffer registered");
    for (what, h, ty) in [
        ("task", me.task, ObjectType::Task),
        ("thread", me.thread, ObjectType::Thread),
        ("pool", me.pool, ObjectType::Pool),
        ("console", me.console, ObjectType::Console),
        ("parent", me.parent, ObjectType::Endpoint),
        ("archive", me.archive, ObjectType::Memory),
    ] {
        let info = syscall::cap_info(h).unwrap_or_else(|e| panic!("cap_info({what}): {e}"));
        assert_eq!(info.object, Some(ty), "{what}");
    }
    assert!(syscall::cap_info(me.parent).unwrap().rights.contains(Rights::SEND));
    least_privilege();
    copies_and_fills();
    windows_are_reused();
    tasks_found_by_id();
    assert!(syscall::cap_info(me.archive)
        .unwrap()
        .rights
        .contains(Rights::READ | Rights::MAP));
    log::info!(
        "{} CPUs, priority {}, pool {} KiB",
        me.cpus,
        me.priority,
        syscall::cap_info(me.pool).unwrap().size >> 10
    );

    syscall::null().expect("null call");

    // Heap: many sizes, freed again.
    let (used0, _) = userlib::heap::stats();
    {
        let mut v: Vec<Vec<u8>> = (0..200).map(|i| alloc::vec![i as u8; i * 37 % 3000]).collect();
        v.retain(|x| x.len() % 2 == 0);
        let mut m = BTreeMap::new();
        for i in 0..1000u64 {
            m.insert(i * 7919 % 1000, i);
        }
        assert_eq!(m.len(), 1000);
        let s: String = (0..100).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        assert_eq!(s.len(), 100);
    }
    assert_eq!(userlib::heap::stats().0, used0, "heap returns to its level");

    // Clock and sleep.
    let (t0, freq) = syscall::clock();
    assert!(freq > 0, "counter frequency");
    // `now_us` reads the counter itself: it agrees with the kernel's
    // clock (never behind a reading before it, never ahead of one after).
    for _ in 0..100 {
        let (a, _) = syscall::clock();
        let b = syscall::now_us();
        let (c, _) = syscall::clock();
        assert!(a <= b && b <= c, "clock {a}, now_us {b}, clock {c}");
    }
    syscall::sleep_ms(20);
    let t1 = syscall::now_us();
    assert!(t1 - t0 >= 20_000, "slept {} us, wanted >= 20000", t1 - t0);
    assert!(t1 - t0 < 5_000_000, "slept {} us", t1 - t0);
    syscall::yield_now();
    // Short sleeps too (each must return: a lost timer wake-up hangs here
    // and init reports the test as timed out).
    for us in 0..300 {
        syscall::sleep(us);
    }

    // Threads, on every CPU, each with its own IPC buffer.
    static SUM: AtomicU64 = AtomicU64::new(0);
    let handles: Vec<thread::JoinHandle> = (0..me.cpus as usize * 2)
        .map(|i| {
            thread::Builder::default()
                .cpu(i % me.cpus as usize)
                .spawn(move || {
                    let buf = ipc::buffer_address().expect("thread IPC buffer");
                    assert_ne!(buf, CHILD_IPC_BUFFER, "threads get their own buffer");
                    SUM.fetch_add(i as u64 + 1, Ordering::SeqCst);
                })
                .expect("spawn thread")
        })
        .collect();
    let n = handles.len() as u64;
    for h in handles {
        h.join().expect("join");
    }
    assert_eq!(SUM.load(Ordering::SeqCst), n * (n + 1) / 2);
    joined_threads_are_gone();
    yield_alternates();
    signal_wakes_at_once();
    userlib::println!("test-basic: all checks passed");
    // The console gives each writer its own line: init's verdict on this
    // program, printed next, must not run on from this unfinished one.
    userlib::print!("test-basic: a line left unfinished");
}

/// `Yield` hands the CPU to the other of two equal-priority threads on one
/// CPU (and back): each writes its mark into a shared log, then yields, so
/// the log alternates. A time slice that ends between a thread's mark and
/// its yield lets the other mark twice in a row; three marks in a row mean
/// a yield that did not switch. (The kernel's fast path takes these
/// yields; a lost or doubly queued thread hangs or breaks the pattern.)
fn yield_alternates() {
    const ROUNDS: usize = 400;
    static LOG: [AtomicU64; 2 * ROUNDS] = [const { AtomicU64::new(0) }; 2 * ROUNDS];
    static AT: AtomicU64 = AtomicU64::new(0);
    static READY: AtomicU64 = AtomicU64::new(0);
    let cpu = syscall::thread_info(process().thread).expect("thread info").cpu;
    let spawn = |mark: u64| {
        thread::Builder::default()
            .cpu(cpu)
            .spawn(move || {
                // Both start before either marks.
                READY.fetch_add(1, Ordering::SeqCst);
                while READY.load(Ordering::SeqCst) < 2 {
                    syscall::yield_now();
                }
                for _ in 0..ROUNDS {
                    let i = AT.fetch_add(1, Ordering::SeqCst) as usize;
                    LOG[i].store(mark, Ordering::SeqCst);
                    syscall::yield_now();
                }
            })
            .expect("spawn a yielding thread")
    };
    let (a, b) = (spawn(1), spawn(2));
    a.join().expect("join");
    b.join().expect("join");
    let log: Vec<u64> = LOG.iter().map(|m| m.load(Ordering::SeqCst)).collect();
    let (mut run, mut longest, mut switches) = (1, 1, 0);
    for w in log.windows(2) {
        if w[0] == w[1] {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 1;
            switches += 1;
        }
    }
    assert!(
        longest <= 2,
        "a thread marked {longest} times in a row: a yield did not switch ({switches} switches in {} marks)",
        log.len()
    );
    log::info!(
        "yield: {} marks, {switches} switches, at most {longest} in a row",
        log.len()
    );
}

/// A signal to a higher-priority thread waiting on the signaller's CPU
/// runs that thread before `signal` returns, with exactly the bits
/// signalled (the kernel's fast path takes these signals).
fn signal_wakes_at_once() {
    const ROUNDS: usize = 300;
    static GOT: [AtomicU64; ROUNDS] = [const { AtomicU64::new(0) }; ROUNDS];
    static RAN: AtomicU64 = AtomicU64::new(0);
    let me = process();
    let cpu = syscall::thread_info(me.thread).expect("thread info").cpu;
    let n = syscall::create(me.pool, ObjectType::Notification, 0).expect("notification");
    let bits = |i: usize| (1u64 << (i % 64)) | (i as u64 & 0xff) << 8;
    let waiter = thread::Builder::default()
        .cpu(cpu)
        .priority(me.priority)
        .spawn(move || {
            for slot in GOT.iter() {
                let got = syscall::wait(n, ipc::Timeout::Forever).expect("wait");
                slot.store(got, Ordering::SeqCst);
                RAN.fetch_add(1, Ordering::SeqCst);
            }
        })
        .expect("spawn the waiter");
    let signaller = thread::Builder::default()
        .cpu(cpu)
        .priority(me.priority - 1)
        .spawn(move || {
            let mut late = 0;
            for i in 0..ROUNDS {
                syscall::signal(n, bits(i)).expect("signal");
                if RAN.load(Ordering::SeqCst) != i as u64 + 1 {
                    late += 1;
                }
            }
            assert_eq!(late, 0, "{late} of {ROUNDS} signals returned before the waiter ran");
        })
        .expect("spawn the signaller");
    signaller.join().expect("join the signaller");
    waiter.join().expect("join the waiter");
    for (i, got) in GOT.iter().enumerate() {
        let got = got.load(Ordering::SeqCst);
        assert_eq!(
            got,
            bits(i),
            "round {i}: the waiter got {got:#x}, {:#x} signalled",
            bits(i)
        );
    }
    syscall::cap_delete(n).expect("delete the notification");
    log::info!("signal: {ROUNDS} signals, each ran the waiter at once with its bits");
}

/// A joined thread is gone when `join` returns: its pool has the thread's
/// kernel memory back at once. The thread runs below this one on this
/// thread's CPU, so the `done` it signals switches to this thread before it
/// has made its `thread_exit`: the moment a joiner on another CPU can see
/// by chance (the full 8-CPU utest run did: a pool check 2,096 bytes off,
/// one thread's charge, refunded later).
fn joined_threads_are_gone() {
    let me = process();
    let left = || syscall::cap_info(me.pool).expect("pool info").size;
    let cpu = syscall::thread_info(me.thread).expect("thread info").cpu;
    let below = || {
        thread::Builder::default()
            .cpu(cpu)
            .priority(me.priority.saturating_sub(1).max(1))
            .spawn(|| {})
            .expect("spawn a thread")
    };
    // The first one grows the heap and makes the stack's tables.
    below().join().expect("join");
    for round in 0..8 {
        let before = left();
        below().join().expect("join");
        let after = left();
        assert_eq!(
            after, before,
            "round {round}: the pool has {after} bytes after a join, {before} before"
        );
    }
}

/// A task's rights to its own task and pool are only what it needs (issue
/// 11, finding 11): it maps memory, starts threads and reads its task's
/// information, and allocates from its pool; it cannot install capabilities
/// into its task or destroy it. (A test program may start programs, so it
/// also splits pools off its own: `MANAGE` on the pool.)
fn least_privilege() {
    let me = process();
    let task = syscall::cap_info(me.task).expect("cap_info(task)").rights;
    assert_eq!(task, loader::OWN_TASK_RIGHTS, "rights to its own task");
    assert!(!task.contains(Rights::MANAGE) && !task.contains(Rights::GRANT));
    let pool = syscall::cap_info(me.pool).expect("cap_info(pool)").rights;
    assert_eq!(
        pool,
        loader::OWN_POOL_RIGHTS | Rights::MANAGE,
        "rights to its own pool (a test program)"
    );
    expect_err(
        "installing a capability into its own task",
        syscall::task_install(me.task, me.parent, Rights::SEND),
        Error::NoRights,
    );
    expect_err(
        "destroying its own task",
        syscall::task_destroy(me.task),
        Error::NoRights,
    );
    syscall::task_info(me.task).expect("task_info of its own task (READ)");
    log::info!("own task: {task:?}; own pool: {pool:?}; install and destroy refused");
}

/// The library's `memcpy` and `memset` ([`userlib::mem`]) against byte
/// loops, at every size to 300 bytes and some large ones, from and to every
/// offset within 8 bytes: each byte lands where it should and no byte
/// around the destination changes.
fn copies_and_fills() {
    const PAD: usize = 16;
    // Offsets 0..16 on each side: the 16-byte (q register) loop runs for
    // the pairs in step to 16 bytes whatever the buffers' own alignment.
    let sizes = (0..300).chain([511, 512, 513, 4096 + 13]);
    let mut src = Vec::new();
    let mut dst = Vec::new();
    let mut cases = 0u32;
    for n in sizes {
        src.clear();
        src.extend((0..n + 2 * PAD).map(|i| (i * 7 + n) as u8 | 1));
        for s in 0..16 {
            for d in 0..16 {
                dst.clear();
                dst.resize(n + 2 * PAD, 0);
                let from = &src[s..s + n];
                // A call to the library's memcpy, whatever the size.
                core::hint::black_box(&mut dst[d..d + n]).copy_from_slice(core::hint::black_box(from));
                for (i, &b) in dst.iter().enumerate() {
                    let want = if (d..d + n).contains(&i) { src[s + i - d] } else { 0 };
                    assert_eq!(
                        core::hint::black_box(b),
                        want,
                        "memcpy of {n} bytes, source +{s}, destination +{d}: byte {i}"
                    );
                }
                let v = (n as u8) ^ 0xa5;
                core::hint::black_box(&mut dst[d..d + n]).fill(core::hint::black_box(v));
                for (i, &b) in dst.iter().enumerate() {
                    let want = if (d..d + n).contains(&i) { v } else { 0 };
                    assert_eq!(core::hint::black_box(b), want, "memset of {n} bytes at +{d}: byte {i}");
                }
                cases += 1;
            }
        }
    }
    log::info!("memcpy and memset: {cases} cases against byte loops");
}

/// Mapping and dropping memory again and again does not grow this task's
/// translation tables: a dropped mapping's window is reused
/// (`userlib::vspace`). With fresh addresses each time, 2,048 one-page
/// mappings (two pages of addresses each, with the guard) took 8 new
/// 4 KiB tables from the pool, and a driver's bounce buffers in time
/// took all of it.
/// `supervisor::task(id)` (a server naming a client by its connection's
/// badge) gives the record `supervisor::tasks()` lists for that id, init's
/// (id 0) included; an id no task has is `InvalidArgument`.
fn tasks_found_by_id() {
    let all = userlib::names::supervisor::tasks().expect("task records");
    assert!(all.len() >= 2, "init and this task at least: {}", all.len());
    for t in &all {
        let one = userlib::names::supervisor::task(t.id).unwrap_or_else(|e| panic!("task {}: {e}", t.id));
        assert_eq!(
            (one.id, &one.name, &one.device),
            (t.id, &t.name, &t.device),
            "task {}",
            t.id
        );
    }
    let unused = all.iter().map(|t| t.id).max().unwrap_or(0) + 1000;
    assert_eq!(
        userlib::names::supervisor::task(unused).map(|t| t.id),
        Err(Error::InvalidArgument),
        "a task id nobody has"
    );
    log::info!("{} tasks found by their ids", all.len());
}

fn windows_are_reused() {
    let used = || {
        userlib::names::supervisor::tasks()
            .expect("task records")
            .iter()
            .find(|t| t.name == "test-basic")
            .expect("this task's record")
            .memory_used
    };
    let map = || userlib::vspace::Mapping::new(1, Rights::READ | Rights::WRITE).expect("map a page");
    drop(map());
    let before = used();
    for i in 0..2048u32 {
        let mut m = map();
        m.as_mut_slice()[0] = i as u8;
    }
    let after = used();
    log::info!("2048 one-page mappings made and dropped: memory used {before} -> {after} bytes");
    assert!(
        after <= before,
        "mapping and dropping memory grew this task's memory: {before} -> {after} bytes"
    );
}
