//! A hostile task: [`CALLS_PER_CPU`] (or `calls=N`) system calls per CPU with
//! random numbers and arguments, from fuzzers on every CPU at once, from a
//! fresh seed each run (printed; `utest=hostile seed=N` replays a run: the
//! same seed gives each fuzzer the same calls, though on several CPUs their
//! interleaving differs).
//!
//! The calls run in child tasks (this program started again with argument
//! `fuzz SEED COUNT`) so that a fuzzer that hurts itself (unmaps its own
//! code, suspends itself...) is just replaced: the point is that the kernel
//! survives. Each round runs one fuzzer per CPU; after it the kernel's
//! self-check must pass (pool charges, mappings, the derivation tree, the
//! run queues). The fuzzers hold every kind of object: their own task,
//! thread and pool, what they create (endpoints, notifications, memory,
//! pools, tasks, threads), a device region (read-only: the RTC's, which
//! init gives this program), an interrupt (the RTC's) and a console
//! without rights (no writes, no power control). The parent reads the
//! kernel's counters before and after, with every child destroyed in
//! between, and checks that nothing leaked: objects alive, free memory,
//! kernel heap, and its own pool.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;
use userlib::abi::boot_info::{StartInfo, CHILD_IPC_BUFFER, START_INFO_ADDRESS};
use userlib::abi::{IpcFlags, ObjectType, Syscall, USER_LIMIT};
use userlib::ipc::Message;
use userlib::loader::{self, Child, Spawn};
use userlib::syscall::KernelStats;
use userlib::test::Rng;
use userlib::vspace::{Mapping, WINDOW_BASE};
use userlib::{log, println, process, proto, syscall, Handle, Rights, Timeout};

userlib::entry!(main, heap = 512 * 1024);

/// Random calls per CPU in one run, unless `calls=N` says otherwise. The
/// case `utest-virt-hostile-smp2` of `cargo xtask test` asks for millions,
/// so that the SMP cases of one run make more than 10,000,000 together
/// (the harness prints the total).
const CALLS_PER_CPU: u64 = 50_000;
const CALLS_PER_CHILD: u64 = 20_000;
/// A fuzzer reports its progress (label [`PROGRESS`], word 0 = calls made)
/// every this many calls.
const REPORT_EVERY: u64 = 500;
const PROGRESS: u16 = 0x7e10;
/// Kernel memory that may stay in use after a run, for caches and
/// tables that grow and are kept (not a leak: bounded, not per call).
const SLACK_BYTES: u64 = 256 * 1024;
/// How long the system's counts must hold still to be read, and how many
/// times to wait for that.
const SETTLE_MS: u64 = 300;
const SETTLE_TRIES: u32 = 40;
/// Words of the record of the call in progress: index, number, x0-x7.
const RECORD_WORDS: usize = 10;

fn main(start: &StartInfo) {
    let args = start.args();
    if let Some(rest) = args.strip_prefix("fuzz ") {
        let mut it = rest.split(' ').map(|w| u64::from_str_radix(w, 16).unwrap_or(0));
        let (seed, count) = (it.next().unwrap_or(1), it.next().unwrap_or(1000));
        fuzz(seed, count);
        return;
    }
    let me = process();
    let cpus = me.cpus.max(1) as u64;
    let seed = args
        .split_whitespace()
        .find_map(|w| w.strip_prefix("seed="))
        .and_then(|v| match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => v.parse().ok(),
        })
        .unwrap_or_else(fresh_seed);
    // `calls=N` (per CPU) shortens or lengthens a run, to replay one fast.
    let per_cpu = args
        .split_whitespace()
        .find_map(|w| w.strip_prefix("calls="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(CALLS_PER_CPU);
    let total_calls = per_cpu * cpus;
    println!(
        "test-hostile: seed {seed:#x} (replay: utest=hostile seed={seed:#x}), {total_calls} calls on {cpus} CPUs in children of {CALLS_PER_CHILD}"
    );
    // SystemControl (power off, reboot) needs the console with MANAGE. The
    // fuzzers get a console with no rights at all, and this task's own has
    // no MANAGE (nor can a copy of it gain it), so no random call can stop
    // the machine.
    let console = syscall::cap_info(me.console).expect("console").rights;
    assert!(!console.contains(Rights::MANAGE), "test-hostile's console has MANAGE");
    let sup = syscall::create(me.pool, ObjectType::Endpoint, 0).expect("endpoint");
    // What init gave this program beside the usual (the RTC's region and
    // interrupt, when the machine has one), and a console without rights.
    let device = [Handle(start.extra[0]), Handle(start.extra[1])];
    let mut handed: Vec<(Handle, Rights)> = Vec::new();
    if device[0] != Handle::NULL && device[1] != Handle::NULL {
        handed.push((device[0], Rights::READ | Rights::MAP));
        handed.push((device[1], Rights::MANAGE));
    }
    handed.push((me.console, Rights::empty()));
    // Each fuzzer writes the call it is about to make in its own page, so
    // that a hang can be pinned on a call.
    let records: Vec<Mapping> = (0..cpus)
        .map(|_| Mapping::new(1, Rights::READ | Rights::WRITE).expect("record page"))
        .collect();
    let mut rng = Rng::new(seed);
    let mut badge = 0;
    // The longest interrupts-masked stretch is measured from here (under
    // -icount; elsewhere the kernel does not count).
    let _ = syscall::masked_max();
    // A first round fills the kernel's caches before measuring.
    let mut discarded = 0;
    let _ = run_round(sup, &records, &handed, &mut badge, &mut rng, 2000, &mut discarded);
    let pool_before = syscall::cap_info(me.pool).unwrap().size;
    // The counts are the whole system's: the profile's servers may still
    // be starting (apps mapping their surfaces), so measure once they
    // hold still.
    let before = settled(me.counters);
    log::info!("before: {before:?}, pool {pool_before}");

    let started = syscall::now_us();
    let (mut total, mut died, mut rounds) = (0, 0, 0);
    while total < total_calls {
        let (calls, ended) = run_round(
            sup,
            &records,
            &handed,
            &mut badge,
            &mut rng,
            CALLS_PER_CHILD,
            &mut discarded,
        );
        total += calls;
        died += cpus - ended;
        rounds += 1;
        // The kernel's tables must agree after every round (pool charges,
        // mappings, the derivation tree, the run queues).
        if let Err(e) = syscall::self_check() {
            userlib::fail(
                1,
                &format!("kernel self-check after round {rounds} (seed {seed:#x}): {e}"),
            );
        }
    }
    let took_ms = (syscall::now_us() - started) / 1000;
    let pool_after = syscall::cap_info(me.pool).unwrap().size;
    let after = settled(me.counters);
    log::info!("after: {after:?}, pool {pool_after}");
    println!(
        "test-hostile: {total} random calls on {cpus} CPUs in {took_ms} ms ({} calls/s), {rounds} rounds of {cpus} fuzzers ({died} killed themselves), {discarded} capabilities sent to the parent discarded",
        total * 1000 / took_ms.max(1)
    );
    assert_eq!(
        pool_after, pool_before,
        "this task's pool did not get all its memory back"
    );
    check_no_leak(&before, &after);
    drop(records);
    syscall::cap_delete(sup).unwrap();
    if let Ok(max) = syscall::masked_max() {
        // `cargo xtask bench` reads this line.
        println!("bench: max_irq_masked {max}");
    }
}

/// A seed no earlier run had: the cycle counter and the clock.
fn fresh_seed() -> u64 {
    let (us, _) = syscall::clock();
    let mut rng = Rng::new(userlib::arch::cycles() ^ us.rotate_left(32));
    rng.next_u64()
}

/// The kernel's counts once two readings [`SETTLE_MS`] apart agree (at
/// most [`SETTLE_TRIES`] tries: a real leak stays, and the check after
/// sees it).
fn settled(counters: Handle) -> KernelStats {
    let mut last = syscall::kernel_stats(counters).expect("kernel stats");
    for _ in 0..SETTLE_TRIES {
        syscall::sleep_ms(SETTLE_MS);
        let now = syscall::kernel_stats(counters).expect("kernel stats");
        if now == last {
            break;
        }
        last = now;
    }
    last
}

fn check_no_leak(before: &KernelStats, after: &KernelStats) {
    assert_eq!(
        after.objects, before.objects,
        "kernel objects leaked: {before:?} -> {after:?}"
    );
    assert!(
        after.free_bytes + SLACK_BYTES >= before.free_bytes,
        "free memory fell by {} bytes: {before:?} -> {after:?}",
        before.free_bytes - after.free_bytes
    );
    assert!(
        after.heap_used <= before.heap_used + SLACK_BYTES,
        "kernel heap grew by {} bytes: {before:?} -> {after:?}",
        after.heap_used - before.heap_used
    );
}

/// One fuzzer on each CPU, each with its own record page and seed, run to
/// their ends; the calls they reported and how many finished (rather than
/// killing themselves). A fuzzer that hangs is a kernel bug (every call it
/// makes is bounded): the test fails, naming the call.
fn run_round(
    sup: Handle,
    records: &[Mapping],
    handed: &[(Handle, Rights)],
    badge: &mut u64,
    rng: &mut Rng,
    count: u64,
    discarded: &mut u64,
) -> (u64, u64) {
    let me = process();
    let elf = loader::find_program(me.name()).expect("find myself in the archive");
    struct Running {
        child: Child,
        badge: u64,
        seed: u64,
        done: u64,
        ended: Option<bool>,
    }
    let mut running: Vec<Running> = Vec::new();
    for (cpu, record) in records.iter().enumerate() {
        *badge += 1;
        let seed = rng.next_u64();
        let args = format!("fuzz {seed:x} {count:x}");
        let mut extra = Vec::from([(record.handle(), Rights::READ | Rights::WRITE | Rights::MAP)]);
        extra.extend_from_slice(handed);
        let child = loader::spawn(&Spawn {
            args: &args,
            pool_bytes: 4 << 20,
            console: false,
            cpu: Some(cpu),
            supervisor: Some((sup, *badge)),
            extra: &extra,
            ..Spawn::new(me.name(), elf)
        })
        .expect("start a fuzzer");
        running.push(Running {
            child,
            badge: *badge,
            seed,
            done: 0,
            ended: None,
        });
    }
    while running.iter().any(|r| r.ended.is_none()) {
        match syscall::recv(sup, Timeout::millis(20_000)) {
            Ok((m, b)) => {
                // A fuzzer may send capabilities with its calls to us:
                // they land in this task's capability space, and would
                // keep the fuzzer's objects (and its pool's memory) alive
                // after it is destroyed. None is wanted here.
                for c in m.caps() {
                    let _ = syscall::cap_delete(c.handle);
                    *discarded += 1;
                }
                let Some(r) = running.iter_mut().find(|r| r.badge == b) else {
                    let _ = syscall::reply(&Message::new(0));
                    continue;
                };
                match m.label {
                    PROGRESS => {
                        r.done = r.done.max(m.word(0));
                        let _ = syscall::reply(&Message::new(PROGRESS));
                    }
                    proto::EXIT => {
                        r.done = count;
                        r.ended = Some(true);
                    }
                    userlib::abi::FaultKind::LABEL => r.ended = Some(false),
                    // Fuzzed calls to us: answer so that they don't hang.
                    _ => {
                        let _ = syscall::reply(&Message::new(0));
                    }
                }
            }
            Err(userlib::Error::TimedOut) => {
                let (i, r) = running
                    .iter()
                    .enumerate()
                    .find(|(_, r)| r.ended.is_none())
                    .expect("one is running");
                let w: Vec<u64> = records[i].as_slice()[..RECORD_WORDS * 8]
                    .chunks(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                    .collect();
                let call = Syscall::from_number(w[1]).map_or(format!("#{}", w[1]), |c| format!("{c:?}"));
                panic!(
                    "fuzzer {} (seed {:#x}, CPU {i}) hung in call {} of {count}: {call} x0-x7 = {:x?}",
                    r.badge,
                    r.seed,
                    w[0],
                    &w[2..]
                );
            }
            Err(e) => panic!("receive: {e}"),
        }
    }
    let (mut calls, mut ended) = (0, 0);
    for r in running {
        calls += r.done;
        ended += u64::from(r.ended == Some(true));
        r.child.destroy().expect("destroy a fuzzer");
    }
    (calls, ended)
}

/// The fuzzer: random calls with random arguments, biased towards values
/// that get past the first checks (its own handles, mapped addresses,
/// valid rights and sizes), and kept from the few things that would only
/// stop it without testing the kernel (exiting, unbounded sleeps and
/// waits, destroying its own task, code or IPC buffer).
fn fuzz(seed: u64, count: u64) {
    let me = process();
    assert_eq!(
        me.console,
        Handle::NULL,
        "a fuzzer holds a console (SystemControl could power off)"
    );
    let extra = me.start_info.map_or([0; 8], |s| s.extra);
    let mut record = Mapping::map(Handle(extra[0]), 1, Rights::READ | Rights::WRITE).ok();
    let mut rng = Rng::new(seed);
    let protected = [me.task, me.thread, me.pool, me.parent];
    let mut handles: Vec<u32> = protected.iter().map(|h| h.0).collect();
    // The device region, interrupt and rightless console it was given.
    handles.extend(extra[1..].iter().copied().filter(|h| *h != 0));
    let kept = handles.len();
    let calls: Vec<Syscall> = Syscall::ALL
        .iter()
        .copied()
        .filter(|c| *c != Syscall::ThreadExit)
        .collect();
    let addresses = [
        0,
        0x40_0000,
        START_INFO_ADDRESS,
        CHILD_IPC_BUFFER,
        0x7fff_0000,
        WINDOW_BASE,
        WINDOW_BASE + 0x10_0000,
        0x5000_0000,
        USER_LIMIT - 0x1000,
        USER_LIMIT,
        0xffff_ffff_8000_0000,
        0xffff_0000_4000_0000,
    ];
    for i in 0..count {
        if i % REPORT_EVERY == 0 && i > 0 {
            let _ = syscall::call_timeout(me.parent, &Message::with_words(PROGRESS, &[i]), Timeout::millis(5000));
        }
        let call = calls[rng.below(calls.len() as u64) as usize];
        let mut a = [0u64; 8];
        for slot in a.iter_mut() {
            *slot = match rng.below(10) {
                0..=3 => handles[rng.below(handles.len() as u64) as usize] as u64,
                4 => rng.next_u64(),
                5 => rng.next_u64() as u32 as u64,
                6 => rng.below(16),
                7 => addresses[rng.below(addresses.len() as u64) as usize] + rng.below(3) * 0x1000,
                8 => Rights::from_bits_truncate(rng.next_u64() as u32).bits() as u64,
                _ => rng.below(1 << 20),
            };
        }
        tame(call, &mut a, &protected, &mut rng);
        if let Some(r) = record.as_mut() {
            let words = [i, call as u64, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]];
            for (dst, w) in r.as_mut_slice().chunks_mut(8).zip(words) {
                dst.copy_from_slice(&w.to_le_bytes());
            }
        }
        // SAFETY: `tame` keeps the call from touching this task's own
        // memory (no unmapping, no IPC buffer moves, no threads running
        // arbitrary code here); everything else is the kernel's to refuse.
        let r = unsafe { userlib::sys::call(call, &a) };
        if r[0] == 0 && returns_handle(call) && r[1] <= u32::MAX as u64 {
            if handles.len() < 48 {
                handles.push(r[1] as u32);
            } else {
                let victim = kept + rng.below((handles.len() - kept) as u64) as usize;
                let _ = syscall::cap_delete(Handle(handles[victim]));
                handles[victim] = r[1] as u32;
            }
        }
    }
}

fn returns_handle(c: Syscall) -> bool {
    matches!(
        c,
        Syscall::CapCopy | Syscall::CapMint | Syscall::Create | Syscall::ThreadCreate
    )
}

/// Bounds a random call so that the fuzzer keeps running.
fn tame(call: Syscall, a: &mut [u64; 8], protected: &[Handle; 4], rng: &mut Rng) {
    let [task, thread, pool, parent] = protected.map(|h| h.0 as u64);
    let garbage = 0xdead_0000 | rng.below(0x1000);
    match call {
        Syscall::Sleep => a[1] %= 200,
        // Memory with its one flag (DMA) or none, mostly: other flags are
        // refused before anything is made.
        Syscall::Create if rng.chance(7, 8) => a[3] &= userlib::abi::MEMORY_CONTIGUOUS,
        Syscall::Call | Syscall::Send | Syscall::Recv | Syscall::ReplyRecv | Syscall::Wait => {
            // Never block for long: non-blocking, or a timeout under 1 ms.
            a[1] &= 0xffff_ffff;
            if rng.chance(1, 2) {
                a[1] |= IpcFlags::NONBLOCK.bits();
            } else {
                a[1] |= IpcFlags::TIMEOUT.bits();
                a[6] %= 1000;
            }
        }
        Syscall::CapDelete
        | Syscall::CapRevoke
        | Syscall::TaskDestroy
        | Syscall::ThreadSuspend
        | Syscall::ThreadConfigure
        | Syscall::ThreadRegisters
        | Syscall::ThreadSetFaultHandler
            if [task, thread, pool, parent].contains(&a[0]) =>
        {
            a[0] = garbage
        }
        Syscall::Unmap if a[0] == task => a[0] = garbage,
        // Moving its IPC buffer onto its own data would let the kernel
        // write there: only the real one or invalid addresses.
        Syscall::ThreadSetIpcBuffer => {
            a[1] = if rng.chance(1, 2) {
                CHILD_IPC_BUFFER
            } else {
                USER_LIMIT + a[1] % 3
            }
        }
        // Threads in its own task start where they exit at once.
        Syscall::ThreadCreate if a[1] == task => a[2] = quit as *const () as u64,
        // Mapping over its own image or stack would change its code or
        // data under it: map only into the run-time window.
        Syscall::Map if a[0] == task => a[4] = WINDOW_BASE + 0x1_0000_0000 + (a[4] % (1 << 30)) / 0x1000 * 0x1000,
        // A copy out of a memory object writes the caller's memory: only
        // into that window (what the fuzzer mapped there), or invalid
        // addresses.
        Syscall::MemoryRead => {
            a[2] = if rng.chance(3, 4) {
                WINDOW_BASE + 0x1_0000_0000 + a[2] % (1 << 30)
            } else {
                USER_LIMIT + a[2] % 0x2000
            }
        }
        // Its rows too: the caller's stride under 1 MiB, at most 64 rows
        // (the last inside the window's next 64 MiB) and any progress in
        // `x4`'s high half, or nearly 2^32 rows with a stride past the
        // user half (their last address overflows: refused whole).
        Syscall::MemoryReadRows => {
            a[2] = if rng.chance(3, 4) {
                WINDOW_BASE + 0x1_0000_0000 + a[2] % (1 << 30)
            } else {
                USER_LIMIT + a[2] % 0x2000
            };
            let done = if rng.chance(1, 2) { 0 } else { a[4] >> 32 };
            if rng.chance(7, 8) {
                a[4] = (a[4] % 65) | (done << 32);
                a[6] %= 1 << 20;
            } else {
                a[4] = u64::from(u32::MAX - (a[4] % 4) as u32) | done << 32;
                a[6] = USER_LIMIT + a[6] % (1 << 20);
            }
        }
        _ => {}
    }
}

extern "C" fn quit(_: u64) -> ! {
    syscall::thread_exit(0)
}
