//! The networking and soft-bus rows of `cargo xtask bench` (issue 14).
//!
//! Instruction counts come from the benchmark programs (`bench: NAME N`,
//! instructions retired on the measuring device's one CPU); wall times are
//! the host's: when a console line arrived (`bench-mark: ...`), or how long
//! the host's own TCP transfer took. These boots run with
//! `-icount shift=0,sleep=on` ([`crate::bench::bench_qemu_sleeping`]):
//! a device waiting for the other device, or for the host, must wait in
//! real time, not jump its clock to its next timer.

use crate::bench::{Row, Unit};
use crate::machines::{qemu, Machines};
use crate::util::Result;
use crate::{bail, note};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// KiB/s of `bytes` in `t` (the [`Unit::MibPerSecond`] rows' value).
fn kib_per_s(bytes: u64, t: Duration) -> u64 {
    (bytes as f64 / 1024.0 / t.as_secs_f64()) as u64
}

fn median(v: &[u64]) -> u64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    s[s.len() / 2]
}

/// Connections the host makes to `bench-net`, and MiB on each (as the
/// program expects: `user/bench/src/net.rs`).
const RUNS: usize = 5;
const RUN_MIB: usize = 16;
/// `bench-net`'s port.
const NET_PORT: u16 = 5001;

/// TCP from the host to `img` (the phone image: its drivers and network
/// stack, `servers=net`) through QEMU user networking: the host sends
/// [`RUN_MIB`] MiB [`RUNS`] times and times each run from its connect to
/// the device's close (every run is printed; the row is the median);
/// `bench-net` counts the device's instructions per MiB.
pub fn host_tcp(img: &Path) -> Result<Vec<Row>> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let devices = [
        "-netdev".to_string(),
        format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:{NET_PORT}"),
        "-device".into(),
        "virtio-net-device,netdev=n0".into(),
    ];
    let mut m = Machines::new();
    let id = m.spawn(qemu(img, "utest=bench-net servers=net", &devices, 1))?;
    let deadline = Instant::now() + Duration::from_secs(300);
    m.wait_for(id, "bench-net: listening", deadline)?;
    let chunk = vec![0xa5u8; 64 << 10];
    let mut rates = Vec::new();
    for run in 0..RUNS {
        let t = Instant::now();
        let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(60))).ok();
        for _ in 0..RUN_MIB * 16 {
            s.write_all(&chunk).map_err(|e| format!("send: {e}"))?;
        }
        s.shutdown(Shutdown::Write).map_err(|e| format!("shutdown: {e}"))?;
        let mut rest = Vec::new();
        s.read_to_end(&mut rest)
            .map_err(|e| format!("waiting for the device's close: {e}"))?;
        let took = t.elapsed();
        let r = kib_per_s((RUN_MIB << 20) as u64, took);
        note!(
            "net_tcp_host_to_device run {run}: {RUN_MIB} MiB in {:.3} s, {:.1} MiB/s",
            took.as_secs_f64(),
            r as f64 / 1024.0
        );
        rates.push(r);
    }
    let mut rows = vec![Row {
        name: "net_tcp_host_to_device".into(),
        value: median(&rates),
        unit: Unit::MibPerSecond,
        target: None,
    }];
    for (name, value) in m.results(id, "bench-net", deadline)? {
        rows.push(Row::instructions(&name, value, None));
    }
    Ok(rows)
}

/// The soft bus between two devices on one link (`bench-bus` on `tv`,
/// `bench-bus-peer` on `phone`, both built with one group file; the phone
/// with a fresh FAT32 disk): discovery, a remote call, the 4 MiB remote
/// read and the same bytes over TCP between the two (see
/// `user/bench/src/bus.rs`).
pub fn bus(tv: &Path, phone: &Path) -> Result<Vec<Row>> {
    let disk = crate::build::out_dir().join("bench-bus-disk.img");
    crate::qemu::make_disk(&disk, 64 << 20, true)?;
    let link = format!("bench-{}", std::process::id());
    let mut phone_dev = crate::qemu::link_args(&link, "phone", std::process::id());
    phone_dev.extend([
        "-device".to_string(),
        "virtio-rng-device".into(),
        "-drive".into(),
        format!("if=none,id=disk0,format=raw,file={}", disk.display()),
        "-device".into(),
        "virtio-blk-device,drive=disk0".into(),
    ]);
    let mut tv_dev = crate::qemu::link_args(&link, "tv", std::process::id());
    tv_dev.extend(["-device".to_string(), "virtio-rng-device".into()]);
    let mut m = Machines::new();
    let start = Instant::now();
    let caller = m.spawn(qemu(tv, "utest=bench-bus servers=net,bus", &tv_dev, 1))?;
    let peer = m.spawn(qemu(phone, "utest=bench-bus-peer servers=fs,net,bus", &phone_dev, 2))?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let found = m.wait_for(caller, "bench-mark: discovered", deadline)?;
    let read = m.wait_for(caller, "bench-mark: bus_read start", deadline)?;
    let read_end = m.wait_for(caller, "bench-mark: bus_read end", deadline)?;
    let tcp = m.wait_for(caller, "bench-mark: tcp start", deadline)?;
    let tcp_end = m.wait_for(caller, "bench-mark: tcp end", deadline)?;
    let results = m.results(caller, "bench-bus", deadline)?;
    if let Err(e) = m.wait_for(
        peer,
        "utest: bench-bus-peer ... ok",
        Instant::now() + Duration::from_secs(30),
    ) {
        bail!("the peer did not finish: {e}");
    }
    let bytes = 4u64 << 20;
    let (bus_t, tcp_t) = (read_end - read, tcp_end - tcp);
    let (bus_rate, tcp_rate) = (kib_per_s(bytes, bus_t), kib_per_s(bytes, tcp_t));
    let ms = |name: &str, d: Duration| Row {
        name: name.into(),
        value: d.as_millis() as u64,
        unit: Unit::Milliseconds,
        target: None,
    };
    let rate = |name: &str, v: u64| Row {
        name: name.into(),
        value: v,
        unit: Unit::MibPerSecond,
        target: None,
    };
    let mut rows = vec![ms("bus_discovery (both QEMUs started)", found - start)];
    for (name, value) in results {
        let target = (name == "bus_remote_call").then_some(30_000 + 1);
        rows.push(Row::instructions(&name, value, target));
    }
    rows.push(ms("bus_read_4mib wall", bus_t));
    rows.push(rate("bus_read_4mib throughput", bus_rate));
    rows.push(ms("tcp_rx_4mib wall (device to device)", tcp_t));
    rows.push(rate("tcp_rx_4mib throughput", tcp_rate));
    // Issue 14's goal: bulk over the bus at least half of plain TCP.
    let half = bus_rate * 2 >= tcp_rate;
    note!(
        "goal: bus bulk >= 1/2 of device-to-device TCP: {} ({:.1}% of TCP)",
        if half { "met" } else { "MISSED" },
        bus_rate as f64 * 100.0 / tcp_rate.max(1) as f64
    );
    Ok(rows)
}
