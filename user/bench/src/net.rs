//! TCP receive benchmark over QEMU user networking, read by `cargo xtask
//! bench` (`bench: <name> <instructions>`, `bench-note:` lines).
//!
//! Run with `utest=bench-net servers=net` on a machine whose virtio-net
//! card is on QEMU user networking with host port P forwarded to the
//! device's [`PORT`]: the phone profile's drivers and its network stack
//! run, nothing else. The program listens, says `bench-net: listening`,
//! and then takes [`RUNS`] connections from the host, one after the
//! other. It reads each to its end (the host sends [`RUN_MIB`] MiB, then
//! shuts its side), then closes it; the host times each run from its
//! connect to that close (wall time: the MiB/s rows are the host's).
//!
//! Counted in instructions retired (PMU event 0x08, [`instructions`]) on
//! the one CPU from the accept to the end of the stream: this client, the
//! network stack, the virtio-net driver and the kernel; waiting for the
//! host is not counted.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use userlib::abi::boot_info::StartInfo;
use userlib::arch::instructions;
use userlib::net::{self, TcpListener};
use userlib::{println, syscall, Timeout};

userlib::entry!(main, heap = 256 << 10);

/// The device's port the host connects to.
pub const PORT: u16 = 5001;
/// Connections the host makes.
const RUNS: usize = 5;
/// MiB the host sends on each.
const RUN_MIB: u64 = 16;

fn main(_: &StartInfo) {
    let me = userlib::process();
    syscall::thread_configure(me.thread, me.priority, Some(0)).expect("pin to CPU 0");
    net::wait_configured(Timeout::millis(30_000)).expect("an address from DHCP");
    let listener = TcpListener::bind(PORT).expect("listen");
    println!("bench-net: listening on {PORT}");
    let mut buf = vec![0u8; 64 << 10];
    let mut per_mib: Vec<u64> = Vec::new();
    for run in 0..RUNS {
        let (mut s, _) = listener.accept().expect("accept");
        let start = instructions();
        let mut bytes = 0u64;
        loop {
            match s.read(&mut buf).expect("read") {
                0 => break,
                n => bytes += n as u64,
            }
        }
        let used = instructions().wrapping_sub(start) as u64;
        drop(s);
        assert_eq!(bytes, RUN_MIB << 20, "the host sends {RUN_MIB} MiB a run");
        let v = used / RUN_MIB;
        println!("bench-note: net_tcp_rx_per_mib run {run}: {v} instructions ({bytes} bytes)");
        per_mib.push(v);
    }
    per_mib.sort_unstable();
    println!("bench: net_tcp_rx_per_mib {}", per_mib[RUNS / 2]);
}
