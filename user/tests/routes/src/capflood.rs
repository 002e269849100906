//! A client floods servers with capabilities (issue 11): every request
//! carries [`BUFFER_CAPS`] capabilities (an endpoint and a notification of
//! its own) that the protocol has no use for. The kernel installs each one
//! in the server's capability space, charged to the server's pool; the
//! server must delete what it did not take, or its memory fills up with
//! the client's capabilities (up to its limit; init's is all free memory).
//!
//! For each server this program is routed to (`console`: uart-pl011,
//! `rtc`: rtc-pl031, and init through `parent`, the name service), it
//! sends [`ROUNDS`] ordinary requests so loaded, and compares the server's
//! memory use (init's `SV_TASK` records: what left its pool) and the
//! kernel's object count (`KernelStats`, which counts capabilities) before
//! and after; every request must be answered. Before the fix the figures
//! grew by the capabilities' cost, about 400 bytes each, until the
//! server's pool was full (`utest-capflood`: uart-pl011 285,998 -> 523,998
//! bytes of its 512 KiB, rtc-pl031 157,966 -> 523,966, init 30,080 ->
//! 1,620,480 and on without bound; kernel objects +595, +915, +3,976); now
//! they stay flat. A server that is not running here (no PL031 on a
//! Raspberry Pi) is skipped.
//!
//! The other way round, a hostile server (a thread of this program) answers
//! [`ROUNDS`] calls with [`BUFFER_CAPS`] capabilities each that the calls
//! did not ask for: the kernel must refuse each such reply
//! (`CapsRefused`, to the server and to the caller), so that this task's
//! memory use and the kernel's object count stay flat; a call that accepts
//! 4 still gets its 4. Before the fix the client received all 4,000
//! (`utest-capflood`: memory used 323,861 -> 2,115,861 bytes, kernel
//! objects 306 -> 4,306).
#![no_std]
#![no_main]

extern crate alloc;

use core::sync::atomic::{AtomicU64, Ordering};
use userlib::abi::boot_info::StartInfo;
use userlib::abi::{ObjectType, BUFFER_CAPS};
use userlib::ipc::{Message, Timeout};
use userlib::names::{self, supervisor};
use userlib::proto::{self, check_reply};
use userlib::services::{console, pack_bytes, rtc};
use userlib::{println, process, syscall, thread, Error, Handle, Rights};

userlib::entry!(main, heap = 64 * 1024);

/// Requests per server.
const ROUNDS: u64 = 1000;

/// How much a server's memory may move meanwhile for other reasons (in a
/// full `utest` run the profile's servers run beside), in bytes: far below
/// what the flood leaves when kept (about 400 bytes a capability, so
/// 1.6 MB for `ROUNDS` requests, or up to the server's limit).
const SLACK: u64 = 16 * 1024;

/// How many more kernel objects there may be after a flood, for the same
/// reason (kept, the flood adds one per capability, up to 4,000).
const OBJECT_SLACK: u64 = ROUNDS / 10;

fn main(_: &StartInfo) {
    let me = process();
    let ep = syscall::create(me.pool, ObjectType::Endpoint, 0).expect("an endpoint");
    let n = syscall::create(me.pool, ObjectType::Notification, 0).expect("a notification");
    let load = [ep, n];

    // The drivers this board and profile run (no PL031 on a Raspberry Pi).
    let tasks = supervisor::tasks().expect("task records");
    let connect = |server: &str, service: &str| {
        tasks.iter().any(|t| t.name == server).then(|| {
            names::connect(service, Timeout::millis(10_000)).unwrap_or_else(|e| panic!("the routed {service}: {e}"))
        })
    };
    let targets: [(&str, Option<Handle>, Message); 3] = [
        (
            "uart-pl011",
            connect("uart-pl011", console::NAME),
            pack_bytes(console::WRITE, &[]),
        ),
        ("rtc-pl031", connect("rtc-pl031", rtc::NAME), Message::new(rtc::GET)),
        ("init", Some(me.parent), Message::new(proto::SV_MEMORY)),
    ];
    let mut failures = 0;
    for (server, target, request) in &targets {
        let Some(target) = *target else {
            println!("test-capflood: no {server} here: skipped");
            continue;
        };
        let used_before = memory_used(server);
        let objects_before = objects();
        let mut answered = 0;
        let mut first_error = None;
        for _ in 0..ROUNDS {
            let mut m = request.clone();
            for i in 0..BUFFER_CAPS {
                m.push_cap(load[i % 2], Rights::SEND | Rights::GRANT);
            }
            match syscall::call_timeout(target, &m, Timeout::millis(5000)).and_then(|(r, _)| check_reply(r)) {
                Ok(_) => answered += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let used_after = memory_used(server);
        let objects_after = objects();
        // An ordinary request, without capabilities, after the flood.
        let still = syscall::call_timeout(target, request, Timeout::millis(5000)).and_then(|(r, _)| check_reply(r));
        println!(
            "test-capflood: {server}: {ROUNDS} requests with {BUFFER_CAPS} capabilities each: \
             {answered} answered, memory used {used_before} -> {used_after} bytes, \
             kernel objects {objects_before} -> {objects_after}, then serving: {}",
            match still {
                Ok(_) => "yes".into(),
                Err(e) => alloc::format!("no ({e})"),
            }
        );
        let grew = used_after.saturating_sub(used_before);
        let flat = grew <= SLACK && objects_after <= objects_before + OBJECT_SLACK;
        if !flat || answered != ROUNDS || still.is_err() {
            println!(
                "test-capflood: {server} keeps what clients send (grew {grew} bytes; first error {first_error:?})"
            );
            failures += 1;
        }
    }
    for h in targets.iter().take(2).filter_map(|t| t.1) {
        syscall::cap_delete(h).expect("delete");
    }
    assert!(failures == 0, "{failures} servers keep the capabilities clients send");
    println!("test-capflood: every server deleted the capabilities it did not take");
    let client_ok = hostile_server(load);
    for h in [ep, n] {
        syscall::cap_delete(h).expect("delete");
    }
    assert!(client_ok, "a server filled its client with capabilities in replies");
    println!("test-capflood: replies carry no more capabilities than the call accepts");
}

/// Replies the hostile server sent, by result.
static REPLIES_REFUSED: AtomicU64 = AtomicU64::new(0);
static REPLIES_DELIVERED: AtomicU64 = AtomicU64::new(0);
static REPLIES_FAILED: AtomicU64 = AtomicU64::new(0);

/// Labels of the hostile server's protocol: an ordinary request (answered
/// with 4 capabilities whatever the call accepts), and the end.
const REQUEST: u16 = 1;
const STOP: u16 = 2;

/// A server thread answers every call with `BUFFER_CAPS` capabilities
/// (`load`'s); the calls of this thread accept none, but one. Whether this
/// task's memory and the kernel's objects stayed flat and each refused
/// reply was reported to both sides.
fn hostile_server(load: [Handle; 2]) -> bool {
    let me = process();
    let ep = syscall::create(me.pool, ObjectType::Endpoint, 0).expect("the hostile server's endpoint");
    let server = thread::Builder::default()
        .spawn(move || {
            while let Ok((m, _)) = syscall::recv(ep, Timeout::millis(30_000)) {
                let mut r = Message::new(m.label);
                for i in 0..BUFFER_CAPS {
                    r.push_cap(load[i % 2], Rights::SEND | Rights::GRANT);
                }
                let counter = match syscall::reply(&r) {
                    Ok(()) => &REPLIES_DELIVERED,
                    Err(Error::CapsRefused) => &REPLIES_REFUSED,
                    Err(_) => &REPLIES_FAILED,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                if m.label == STOP {
                    break;
                }
            }
        })
        .expect("the hostile server");
    let used_before = memory_used(me.name());
    let objects_before = objects();
    let (mut refused, mut received, mut other) = (0u64, 0u64, None);
    for _ in 0..ROUNDS {
        match syscall::call_timeout(ep, &Message::new(REQUEST), Timeout::millis(5000)) {
            Err(Error::CapsRefused) => refused += 1,
            // (Kept, as a client that expects none would keep them.)
            Ok((r, _)) => received += r.caps().len() as u64,
            Err(e) => {
                other.get_or_insert(e);
            }
        }
    }
    let used_after = memory_used(me.name());
    let objects_after = objects();
    // A call that accepts what the reply carries gets it all.
    let accepted = syscall::call_timeout(
        ep,
        &Message::new(STOP).accepting_caps(BUFFER_CAPS),
        Timeout::millis(5000),
    );
    let accepted = match accepted {
        Ok((r, _)) => {
            for c in r.caps() {
                syscall::cap_delete(c.handle).expect("delete an accepted capability");
            }
            r.caps().len()
        }
        Err(e) => {
            println!("test-capflood: hostile server: a call accepting {BUFFER_CAPS} capabilities failed: {e}");
            0
        }
    };
    server.join().expect("the hostile server ends");
    syscall::cap_delete(ep).expect("delete the hostile server's endpoint");
    let (server_refused, server_failed) = (
        REPLIES_REFUSED.load(Ordering::Relaxed),
        REPLIES_FAILED.load(Ordering::Relaxed),
    );
    println!(
        "test-capflood: hostile server: {ROUNDS} replies with {BUFFER_CAPS} capabilities each to calls accepting none: \
         {refused} refused ({server_refused} reported to the server), {received} capabilities received, \
         memory used {used_before} -> {used_after} bytes, kernel objects {objects_before} -> {objects_after}; \
         a call accepting {BUFFER_CAPS} got {accepted}"
    );
    let grew = used_after.saturating_sub(used_before);
    let flat = grew <= SLACK && objects_after <= objects_before + OBJECT_SLACK;
    let ok = flat
        && refused == ROUNDS
        && server_refused == ROUNDS
        && received == 0
        && other.is_none()
        && server_failed == 0
        && accepted == BUFFER_CAPS;
    if !ok {
        println!("test-capflood: hostile server: the client kept what it was sent (grew {grew} bytes; other error {other:?})");
    }
    ok
}

/// What `server` uses of its memory limit, per init's task records.
fn memory_used(server: &str) -> u64 {
    supervisor::tasks()
        .expect("task records")
        .iter()
        .find(|t| t.name == server)
        .unwrap_or_else(|| panic!("no task {server}"))
        .memory_used
}

/// The kernel's objects alive, capabilities included.
fn objects() -> u64 {
    syscall::kernel_stats(process().counters)
        .expect("kernel statistics")
        .objects
}
