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
#![no_std]
#![no_main]

extern crate alloc;

use userlib::abi::boot_info::StartInfo;
use userlib::abi::{ObjectType, BUFFER_CAPS};
use userlib::ipc::{Message, Timeout};
use userlib::names::{self, supervisor};
use userlib::proto::{self, check_reply};
use userlib::services::{console, pack_bytes, rtc};
use userlib::{println, process, syscall, Handle, Rights};

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
    for h in targets.iter().take(2).filter_map(|t| t.1).chain([ep, n]) {
        syscall::cap_delete(h).expect("delete");
    }
    assert!(failures == 0, "{failures} servers keep the capabilities clients send");
    println!("test-capflood: every server deleted the capabilities it did not take");
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
