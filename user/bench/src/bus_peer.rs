//! The other device of `bench-bus` (see there): run with
//! `utest=bench-bus-peer servers=fs,net,bus` on the phone image, with a
//! FAT32 disk and a virtio-net card on the same link as the device that
//! runs `bench-bus`.
//!
//! It listens on TCP port [`PORT`], writes [`FILE_MIB`] MiB to
//! `/data/`[`FILE`] (byte `i` is `i as u8 ^ (i >> 12) as u8`: the reader
//! checks what it got), says `bench-bus-peer: ready`, then serves one TCP
//! connection: it sends the same [`FILE_MIB`] MiB (the same bytes) and
//! waits for the reader to close it. It then ends (and its device powers off), so the device
//! reading makes that connection last.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use userlib::abi::boot_info::StartInfo;
use userlib::fs::{Namespace, OpenOptions, Write};
use userlib::net::{self, TcpListener};
use userlib::{println, Timeout};

mod bus_common;
use bus_common::{pattern, FILE, FILE_MIB, PORT};

userlib::entry!(main, heap = 256 << 10);

const CHUNK: usize = 64 << 10;

fn main(_: &StartInfo) {
    net::wait_configured(Timeout::millis(30_000)).expect("an address");
    let listener = TcpListener::bind(PORT).expect("listen");
    let mut ns = Namespace::new();
    let data = ns.root("data").expect("mount /data");
    let mut f = data
        .open(FILE, &OpenOptions::new().write(true).create(true).truncate(true))
        .expect("create the file");
    let mut chunk = vec![0u8; CHUNK];
    for i in 0..FILE_MIB * (1 << 20) / CHUNK {
        pattern(i * CHUNK, &mut chunk);
        f.write_all(&chunk).expect("write");
    }
    f.sync_all().expect("fsync");
    drop(f);
    println!("bench-bus-peer: ready");
    let (mut s, from) = listener.accept().expect("accept");
    println!("bench-bus-peer: connection from {from}");
    for i in 0..FILE_MIB * (1 << 20) / CHUNK {
        pattern(i * CHUNK, &mut chunk);
        s.write_all(&chunk).expect("send");
    }
    // The reader closes once it has every byte; closing first could end
    // the device (and its stack) with bytes still unsent.
    while s.read(&mut chunk).is_ok_and(|n| n > 0) {}
    drop(s);
    println!("bench-bus-peer: sent");
}
