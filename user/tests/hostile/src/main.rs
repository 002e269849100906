//! A hostile task: at least [`TOTAL_CALLS`] system calls with random
//! numbers and arguments, from a fixed seed (printed, to replay a failure).
//!
//! The calls run in child tasks (this program started again with argument
//! `fuzz SEED COUNT`) so that a fuzzer that hurts itself (unmaps its own
//! code, suspends itself...) is just replaced: the point is that the kernel
//! survives. The parent reads the kernel's counters before and after, with
//! every child destroyed in between, and checks that nothing leaked:
//! objects alive, free memory, kernel heap, and its own pool.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;
use userlib::abi::boot_info::{StartInfo, CHILD_IPC_BUFFER, START_INFO_ADDRESS};
use userlib::abi::{IpcFlags, ObjectType, Syscall, USER_LIMIT};
use userlib::ipc::Message;
use userlib::loader::{self, Spawn};
use userlib::syscall::KernelStats;
use userlib::test::Rng;
use userlib::vspace::{Mapping, WINDOW_BASE};
use userlib::{log, println, process, proto, syscall, Handle, Rights, Timeout};

userlib::entry!(main, heap = 512 * 1024);

const TOTAL_CALLS: u64 = 100_000;
const CALLS_PER_CHILD: u64 = 20_000;
const SEED: u64 = 0x6b65_7374_7265_6c21;
/// A fuzzer reports its progress (label [`PROGRESS`], word 0 = calls made)
/// every this many calls.
const REPORT_EVERY: u64 = 500;
const PROGRESS: u16 = 0x7e10;
/// Kernel memory that may stay in use after a round, for caches and
/// tables that grow and are kept (not a leak: bounded, not per call).
const SLACK_BYTES: u64 = 256 * 1024;
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
    println!("test-hostile: seed {SEED:#x}, {TOTAL_CALLS} calls in children of {CALLS_PER_CHILD}");
    // SystemControl (power off, reboot) needs the console with MANAGE. The
    // fuzzers get no console at all, and this task's own has no MANAGE
    // (nor can a copy of it gain it), so no random call can stop the machine.
    let console = syscall::cap_info(me.console).expect("console").rights;
    assert!(!console.contains(Rights::MANAGE), "test-hostile's console has MANAGE");
    let sup = syscall::create(me.pool, ObjectType::Endpoint, 0).expect("endpoint");
    // Each fuzzer writes the call it is about to make here, so that a hang
    // can be pinned on a call.
    let record = Mapping::new(1, Rights::READ | Rights::WRITE).expect("record page");
    let mut rng = Rng::new(SEED);
    let mut badge = 0;
    // The longest interrupts-masked stretch is measured from here (under
    // -icount; elsewhere the kernel does not count).
    let _ = syscall::masked_max();
    // A first round fills the kernel's caches before measuring.
    badge += 1;
    run_child(sup, &record, badge, rng.next_u64(), 2000);
    let pool_before = syscall::cap_info(me.pool).unwrap().size;
    let before = syscall::kernel_stats(me.counters).expect("kernel stats");
    log::info!("before: {before:?}, pool {pool_before}");

    let (mut total, mut died) = (0, 0);
    while total < TOTAL_CALLS {
        badge += 1;
        let (calls, ended) = run_child(sup, &record, badge, rng.next_u64(), CALLS_PER_CHILD);
        total += calls;
        // The kernel's tables must agree after every round (pool charges,
        // mappings, the derivation tree, the run queues).
        if let Err(e) = syscall::self_check() {
            userlib::fail(1, &format!("kernel self-check after fuzzer {badge}: {e}"));
        }
        if !ended {
            died += 1;
        }
    }
    let pool_after = syscall::cap_info(me.pool).unwrap().size;
    let after = syscall::kernel_stats(me.counters).expect("kernel stats");
    log::info!("after: {after:?}, pool {pool_after}");
    println!(
        "test-hostile: {total} random calls in {} children ({died} killed themselves or hung)",
        badge - 1
    );
    assert_eq!(
        pool_after, pool_before,
        "this task's pool did not get all its memory back"
    );
    check_no_leak(&before, &after);
    drop(record);
    syscall::cap_delete(sup).unwrap();
    if let Ok(max) = syscall::masked_max() {
        // `cargo xtask bench` reads this line.
        println!("bench: max_irq_masked {max}");
    }
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

/// Runs one fuzzer child to its end; returns the calls it reported and
/// whether it finished (rather than killing itself). A fuzzer that hangs
/// is a kernel bug (every call it makes is bounded): the test fails,
/// naming the call.
fn run_child(sup: Handle, record: &Mapping, badge: u64, seed: u64, count: u64) -> (u64, bool) {
    let me = process();
    let elf = loader::find_program(me.name()).expect("find myself in the archive");
    let args = format!("fuzz {seed:x} {count:x}");
    let child = loader::spawn(&Spawn {
        args: &args,
        pool_bytes: 4 << 20,
        console: false,
        supervisor: Some((sup, badge)),
        extra: &[(record.handle(), Rights::READ | Rights::WRITE | Rights::MAP)],
        ..Spawn::new(me.name(), elf)
    })
    .expect("start a fuzzer");
    let mut done = 0;
    let finished = loop {
        match syscall::recv(sup, Timeout::millis(20_000)) {
            Ok((m, b)) if b == badge => match m.label {
                PROGRESS => {
                    done = done.max(m.word(0));
                    let _ = syscall::reply(&Message::new(PROGRESS));
                }
                proto::EXIT => {
                    done = count;
                    break true;
                }
                userlib::abi::FaultKind::LABEL => break false,
                _ => {
                    // Fuzzed calls to us: answer so that they don't hang.
                    let _ = syscall::reply(&Message::new(0));
                }
            },
            Ok(_) => {
                let _ = syscall::reply(&Message::new(0));
            }
            Err(userlib::Error::TimedOut) => {
                let w: Vec<u64> = record.as_slice()[..RECORD_WORDS * 8]
                    .chunks(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                    .collect();
                let call = Syscall::from_number(w[1]).map_or(format!("#{}", w[1]), |c| format!("{c:?}"));
                let _ = child.destroy();
                panic!(
                    "fuzzer {badge} (seed {seed:#x}) hung in call {} of {count}: {call} x0-x7 = {:x?}",
                    w[0],
                    &w[2..]
                );
            }
            Err(e) => panic!("receive: {e}"),
        }
    };
    child.destroy().expect("destroy a fuzzer");
    (done, finished)
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
    let extra = me.start_info.map_or(0, |s| s.extra[0]);
    let mut record = Mapping::map(Handle(extra), 1, Rights::READ | Rights::WRITE).ok();
    let mut rng = Rng::new(seed);
    let protected = [me.task, me.thread, me.pool, me.parent];
    let mut handles: Vec<u32> = protected.iter().map(|h| h.0).collect();
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
                let victim = 4 + rng.below(handles.len() as u64 - 4) as usize;
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
        _ => {}
    }
}

extern "C" fn quit(_: u64) -> ! {
    syscall::thread_exit(0)
}
