//! Soft-bus benchmarks between two devices on one link, read by `cargo
//! xtask bench` (`bench: <name> <value>`, `bench-note:` lines, and
//! `bench-mark: <what>` lines the host timestamps for the wall-time rows).
//!
//! Run with `utest=bench-bus servers=net,bus` on the TV image, beside a
//! phone that runs `bench-bus-peer` (`utest=bench-bus-peer
//! servers=fs,net,bus`), both built with one group file and on one link
//! without DHCP (they take link-local addresses). In order:
//! - `bench-mark: discovered` once the bus lists the phone (the host
//!   times it from the start of both QEMUs: `bus_discovery`);
//! - `bus_remote_call`: a remote call (the phone's `rtc` GET, through
//!   [`names::Connection::remote`]), [`CALLS`] times after [`WARM`] calls
//!   that are not counted; each sample is printed, the row is the median;
//!   a note then says how many instructions a call each task took
//!   (`per_task`);
//! - `bus_read_4mib`: the phone's `/data/bench4m` (4 MiB, written by the
//!   peer) read through the bus in 64 KiB reads (the file proxy moves
//!   496 bytes a call: docs/BUS.md), between `bench-mark: bus_read start`
//!   and `end`;
//! - `tcp_rx_4mib`: the same 4 MiB sent by the peer over one TCP
//!   connection between the two devices, between `bench-mark: tcp start`
//!   and `end` (the host's wall time of each gives the throughput rows).
//!
//! Counted in instructions retired (PMU event 0x08, [`instructions`]) on
//! the one CPU of this (the calling) device: this program, its bus, its
//! network stack, its virtio-net driver and its kernel. The other device's
//! work and the time spent waiting for it are not counted. Checking the
//! data received is not counted either.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::net::SocketAddrV4;
use userlib::abi::boot_info::StartInfo;
use userlib::arch::instructions;
use userlib::fs::{Namespace, OpenOptions, Read};
use userlib::net::TcpStream;
use userlib::services::{bus, rtc};
use userlib::{names, println, syscall, Timeout};

mod bus_common;
use bus_common::{pattern, FILE, FILE_MIB, PORT};

userlib::entry!(main, heap = 512 << 10);

/// The device read from (the phone image's name).
const PEER: &str = "phone";
/// Remote calls counted, after `WARM` that are not.
const CALLS: usize = 51;
const WARM: usize = 5;
const CHUNK: usize = 64 << 10;

/// `f` and the instructions it took.
fn counted<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let a = instructions();
    let r = f();
    (r, instructions().wrapping_sub(a) as u64)
}

/// Each task's CPU time (microseconds) but init's (which answers the
/// listing) and this one's (see [`own_cpu`]), for [`per_task`].
fn cpu_of_tasks() -> Vec<(String, u64)> {
    names::supervisor::tasks()
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.id != 0 && t.name != "bench-bus")
        .map(|t| (t.name, t.cpu_us))
        .collect()
}

/// This task's CPU time (microseconds), read next to the calls (not around
/// the listings).
fn own_cpu() -> (String, u64) {
    let us = syscall::task_info(userlib::process().task).map_or(0, |i| i.cpu_micros);
    (String::from("bench-bus"), us)
}

/// `bench-note: bus_remote_call per task`: where the counted calls'
/// instructions went, per task, in instructions a call. Under `-icount
/// shift=0` (which the bench runs) a guest nanosecond is one instruction,
/// so a task's CPU time is the instructions its threads retired, the
/// kernel's work while they ran included (a microsecond each: about 20
/// instructions a call over [`CALLS`]). What no task ran (the idle thread,
/// and interrupts taken in it) is the rest of `total`.
fn per_task(before: &[(String, u64)], after: &[(String, u64)], total: u64) {
    let mut counted = 0;
    let mut line = String::new();
    for (name, us) in after {
        let Some((_, was)) = before.iter().find(|(n, _)| n == name) else {
            continue;
        };
        let n = us.saturating_sub(*was) * 1000 / CALLS as u64;
        if n > 0 {
            counted += n;
            line.push_str(&alloc::format!(" {name} {n},"));
        }
    }
    let rest = (total / CALLS as u64).saturating_sub(counted);
    println!("bench-note: bus_remote_call per task (instructions a call):{line} the rest {rest}");
}

fn main(_: &StartInfo) {
    let me = userlib::process();
    syscall::thread_configure(me.thread, me.priority, Some(0)).expect("pin to CPU 0");

    // Discovery: poll the bus until it lists the phone (paired).
    let addr = loop {
        if let Ok(devices) = bus::devices_within(Timeout::millis(2000)) {
            if let Some(d) = devices.iter().find(|d| d.name == PEER) {
                break d.addr.expect("a listed device has an address");
            }
        }
        syscall::sleep_ms(10);
    };
    println!("bench-mark: discovered");
    println!(
        "bench-note: bus_discovery {PEER} at {addr}, {} ms of this device's clock",
        syscall::now_us() / 1000
    );

    // A remote call.
    let mut clock = names::Connection::remote(PEER, rtc::NAME);
    for _ in 0..WARM {
        rtc::now(&mut clock).expect("the phone's clock");
    }
    let mut samples: Vec<u64> = Vec::new();
    let mut tasks_before = cpu_of_tasks();
    tasks_before.push(own_cpu());
    for _ in 0..CALLS {
        let (r, n) = counted(|| rtc::now(&mut clock));
        r.expect("the phone's clock");
        samples.push(n);
    }
    let own = own_cpu();
    let mut tasks_after = cpu_of_tasks();
    tasks_after.push(own);
    println!("bench-note: bus_remote_call samples {samples:?}");
    per_task(&tasks_before, &tasks_after, samples.iter().sum());
    samples.sort_unstable();
    println!("bench: bus_remote_call {}", samples[CALLS / 2]);

    // The 4 MiB file, once the peer has written all of it.
    let total = FILE_MIB << 20;
    let mut ns = Namespace::remote(PEER);
    loop {
        if let Ok(s) = ns.metadata(&alloc::format!("/data/{FILE}")) {
            if s.size == total as u64 {
                break;
            }
        }
        syscall::sleep_ms(100);
    }
    let data = ns.root("data").expect("the phone's /data");
    let mut f = data.open(FILE, &OpenOptions::new().read(true)).expect("open");
    let mut buf = vec![0u8; CHUNK];
    let mut want = vec![0u8; CHUNK];
    println!("bench-mark: bus_read start");
    let mut read = 0;
    for i in 0..total / CHUNK {
        let (r, n) = counted(|| f.read_exact(&mut buf));
        r.expect("read");
        read += n;
        pattern(i * CHUNK, &mut want);
        assert!(buf == want, "read what the peer wrote");
    }
    println!("bench-mark: bus_read end");
    drop(f);
    println!("bench: bus_read_4mib {read}");

    // The same bytes over TCP between the two devices.
    println!("bench-mark: tcp start");
    let (s, mut rx) = counted(|| TcpStream::connect(SocketAddrV4::new(addr, PORT)));
    let mut s = s.expect("connect to the peer");
    let mut got = 0;
    while got < total {
        let (r, n) = counted(|| s.read(&mut buf));
        rx += n;
        let k = r.expect("receive");
        assert!(k > 0, "the peer sends {total} bytes");
        pattern(got, &mut want[..k]);
        assert!(buf[..k] == want[..k], "received what the peer sent");
        got += k;
    }
    println!("bench-mark: tcp end");
    drop(s);
    println!("bench: tcp_rx_4mib {rx}");
}
