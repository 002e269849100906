//! Micro-benchmarks, read by `cargo xtask bench` from lines
//! `bench: <name> <instructions>` (the median of [`RUNS`] runs, minus the
//! cost of reading the counter). Under QEMU `-icount shift=0` the cycle
//! counter `PMCCNTR_EL0` counts executed instructions, so the figures are
//! the same on every run.
//!
//! Run it with `utest=bench` on the kernel command line. It starts a
//! second copy of itself (argument `server`) as the IPC server in another
//! address space. Everything runs on CPU 0 except the cross-CPU case's
//! server (CPU 1), which is skipped on one CPU.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use userlib::abi::boot_info::StartInfo;
use userlib::abi::{MessageInfo, ObjectType, Syscall, PAGE_SIZE};
use userlib::arch::cycles;
use userlib::loader::{self, Child, Spawn};
use userlib::test::median;
use userlib::vspace::Mapping;
use userlib::{ipc, println, process, syscall, thread, Handle, Message, Rights, Timeout};

userlib::entry!(main);

/// Measured runs per benchmark (odd: the median is one of them).
const RUNS: usize = 501;
/// Unmeasured runs first (caches, TLB, lazy FP state).
const WARMUP: usize = 50;

const PING: u16 = 1;
const SHM_SETUP: u16 = 2;
const SHM: u16 = 3;

fn main(start: &StartInfo) {
    if start.args() == "server" {
        server(Handle(start.extra[0]));
    }
    let me = process();
    syscall::thread_configure(me.thread, me.priority, Some(0)).expect("pin to CPU 0");
    let cost = counter_cost();
    println!("bench: counter_read {cost}");
    report("null_syscall", null_syscall(cost));

    let (ep, server) = start_server(Some(0));
    report("ipc_round_trip", ipc_round_trip(ep, cost));
    report("ipc_round_trip_timeout", ipc_round_trip_timeout(ep, cost));
    report("ipc_round_trip_4k_shared", ipc_round_trip_shared(ep, cost));
    stop_server(ep, server);

    report("notify_wake", notify_wake(cost));
    report("yield_switch", yield_switch(cost));

    if me.cpus >= 2 {
        let (ep, server) = start_server(Some(1));
        report("ipc_round_trip_cross_cpu", ipc_round_trip(ep, cost));
        stop_server(ep, server);
    } else {
        println!("bench-note: ipc_round_trip_cross_cpu needs 2 CPUs; skipped");
    }
}

fn report(name: &str, value: u64) {
    println!("bench: {name} {value}");
}

/// The median cost of one counter read (two back-to-back reads).
fn counter_cost() -> u64 {
    let mut s = [0u64; RUNS];
    for x in s.iter_mut() {
        let a = cycles();
        let b = cycles();
        *x = b - a;
    }
    median(&mut s)
}

fn measure(cost: u64, mut f: impl FnMut() -> u64) -> u64 {
    for _ in 0..WARMUP {
        f();
    }
    let mut s = [0u64; RUNS];
    for x in s.iter_mut() {
        *x = f().saturating_sub(cost);
    }
    median(&mut s)
}

fn null_syscall(cost: u64) -> u64 {
    measure(cost, || {
        let a = cycles();
        let _ = syscall::null();
        cycles() - a
    })
}

fn start_server(cpu: Option<usize>) -> (Handle, Child) {
    let me = process();
    let ep = syscall::create(me.pool, ObjectType::Endpoint, 0).expect("endpoint");
    let elf = loader::find_program(me.name()).expect("find myself in the archive");
    let child = loader::spawn(&Spawn {
        args: "server",
        pool_bytes: 1 << 20,
        cpu,
        extra: &[(ep, Rights::RECEIVE)],
        ..Spawn::new(me.name(), elf)
    })
    .expect("start the server");
    (ep, child)
}

fn stop_server(ep: Handle, child: Child) {
    child.destroy().expect("destroy the server");
    syscall::cap_delete(ep).unwrap();
}

fn ipc_round_trip(ep: Handle, cost: u64) -> u64 {
    let info = MessageInfo::new(PING, 4, 0);
    measure(cost, || {
        let a = cycles();
        let r = syscall::call_fast(ep, info, [1, 2, 3, 4]);
        let b = cycles();
        assert!(r.is_ok(), "call: {r:?}");
        b - a
    })
}

/// [`ipc_round_trip`] with a 30 s timeout on the call (as `userlib::fs`
/// calls): the kernel sets the timeout and takes it off again.
fn ipc_round_trip_timeout(ep: Handle, cost: u64) -> u64 {
    let (flags, x6) = Timeout::millis(30_000).encode();
    let x1 = MessageInfo::new(PING, 4, 0).0 | flags;
    let args = [ep.0 as u64, x1, 1, 2, 3, 4, x6, 0];
    measure(cost, || {
        let a = cycles();
        // SAFETY: a register-only call: the kernel reads and writes no
        // memory of this task for it.
        let r = unsafe { userlib::sys::call(Syscall::Call, &args) };
        let b = cycles();
        assert_eq!(r[0], 0, "call: {r:?}");
        b - a
    })
}

fn ipc_round_trip_shared(ep: Handle, cost: u64) -> u64 {
    let mut shm = Mapping::new(1, Rights::READ | Rights::WRITE).expect("shared memory");
    let mut m = Message::new(SHM_SETUP);
    m.push_cap(shm.handle(), Rights::READ | Rights::WRITE | Rights::MAP);
    syscall::call(ep, &m).expect("shared memory setup");
    let payload = [0x5au8; PAGE_SIZE];
    let info = MessageInfo::new(SHM, 1, 0);
    measure(cost, || {
        let a = cycles();
        shm.as_mut_slice().copy_from_slice(&payload);
        let r = syscall::call_fast(ep, info, [PAGE_SIZE as u64, 0, 0, 0]);
        let b = cycles();
        assert!(r.is_ok(), "call: {r:?}");
        b - a
    })
}

/// The server: register-only receive loop (the fast path), echoing.
fn server(ep: Handle) -> ! {
    let mut shared: Option<Mapping> = None;
    let mut local = [0u8; PAGE_SIZE];
    let (mut info, mut words, _) = syscall::recv_fast(ep).expect("receive");
    loop {
        let reply = match info.label() {
            SHM_SETUP => {
                let h = ipc::received_cap(0).expect("a memory capability");
                shared = Some(Mapping::map(h, 1, Rights::READ | Rights::WRITE).expect("map shared memory"));
                MessageInfo::new(SHM_SETUP, 0, 0)
            }
            SHM => {
                if let Some(m) = &shared {
                    local.copy_from_slice(m.as_slice());
                }
                words[0] = local[0] as u64;
                MessageInfo::new(SHM, 1, 0)
            }
            _ => MessageInfo::new(PING, 4, 0),
        };
        (info, words, _) = syscall::reply_recv_fast(ep, reply, words).expect("reply and receive");
    }
}

static SAMPLES: [AtomicU64; WARMUP + RUNS] = [const { AtomicU64::new(0) }; WARMUP + RUNS];
static SAMPLE: AtomicUsize = AtomicUsize::new(0);
static STAMP: AtomicU64 = AtomicU64::new(0);

fn record(v: u64) {
    let i = SAMPLE.fetch_add(1, Ordering::Relaxed);
    if let Some(s) = SAMPLES.get(i) {
        s.store(v, Ordering::Relaxed);
    }
}

/// The median of the samples recorded since the last call, minus `cost`.
fn collect(cost: u64) -> u64 {
    let n = SAMPLE.swap(0, Ordering::SeqCst).min(SAMPLES.len());
    let mut s = [0u64; WARMUP + RUNS];
    for (i, x) in s[..n].iter_mut().enumerate() {
        *x = SAMPLES[i].load(Ordering::Relaxed).saturating_sub(cost);
    }
    let skip = WARMUP.min(n);
    median(&mut s[skip..n])
}

/// From just before `Signal` in one thread to just after `Wait` returns in
/// a higher-priority thread of the same CPU that it wakes.
fn notify_wake(cost: u64) -> u64 {
    let me = process();
    let p = me.priority;
    let n = syscall::create(me.pool, ObjectType::Notification, 0).expect("notification");
    let done = syscall::create(me.pool, ObjectType::Notification, 0).expect("notification");
    let rounds = (WARMUP + RUNS) as u64;
    let waiter = thread::Builder::default()
        .priority(p)
        .cpu(0)
        .spawn(move || {
            for _ in 0..rounds {
                let _ = syscall::wait(n, Timeout::Forever);
                let t = cycles();
                record(t - STAMP.load(Ordering::Relaxed));
            }
        })
        .expect("waiter");
    let signaller = thread::Builder::default()
        .priority(p - 1)
        .cpu(0)
        .spawn(move || {
            for _ in 0..rounds {
                STAMP.store(cycles(), Ordering::Relaxed);
                let _ = syscall::signal(n, 1);
            }
            let _ = syscall::signal(done, 1);
        })
        .expect("signaller");
    syscall::wait(done, Timeout::Forever).expect("signaller done");
    waiter.join().expect("waiter");
    signaller.join().expect("signaller");
    syscall::cap_delete(n).unwrap();
    syscall::cap_delete(done).unwrap();
    collect(cost)
}

/// One `Yield` from a thread to the other of two equal-priority threads of
/// the same CPU: from just before the call to the other thread running.
fn yield_switch(cost: u64) -> u64 {
    let me = process();
    let done = syscall::create(me.pool, ObjectType::Notification, 0).expect("notification");
    let rounds = (WARMUP + RUNS) / 2 + 1;
    let spawn = |bit: u64| {
        thread::Builder::default()
            .cpu(0)
            .spawn(move || {
                for _ in 0..rounds {
                    let t = cycles();
                    let s = STAMP.swap(0, Ordering::Relaxed);
                    if s != 0 {
                        record(t - s);
                    }
                    STAMP.store(cycles(), Ordering::Relaxed);
                    syscall::yield_now();
                }
                STAMP.store(0, Ordering::Relaxed);
                let _ = syscall::signal(done, bit);
            })
            .expect("yield thread")
    };
    STAMP.store(0, Ordering::SeqCst);
    let (a, b) = (spawn(1), spawn(2));
    let mut bits = 0;
    while bits != 3 {
        bits |= syscall::wait(done, Timeout::Forever).expect("threads done");
    }
    a.join().unwrap();
    b.join().unwrap();
    syscall::cap_delete(done).unwrap();
    collect(cost)
}
