//! The network commands: `ip`, `ping`, `fetch`, `resolve` (over
//! `userlib::net`).

use crate::http;
use crate::report;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use userlib::ipc::Timeout;
use userlib::net::{self, Ipv4Addr, Pinger, SocketAddrV4, TcpStream};
use userlib::services::net::State;
use userlib::Error;

/// Most response bytes `fetch` keeps (the shell's heap is small).
const MAX_RESPONSE: usize = 16 * 1024;

fn fail(command: &str, e: Error) -> String {
    format!("{command}: {}\n", report::error(e))
}

pub fn ip() -> Result<String, String> {
    let i = net::info().map_err(|e| fail("ip", e))?;
    let m = i.mac;
    let mut s = format!(
        "eth0: MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, link {}\n",
        m[0],
        m[1],
        m[2],
        m[3],
        m[4],
        m[5],
        if i.state == State::Down { "down" } else { "up" }
    );
    match i.state {
        State::Dhcp => s.push_str(&format!(
            "  inet {}/{} gateway {} dns {}\n  DHCP lease: {} s left\n",
            i.address, i.prefix, i.gateway, i.dns, i.lease_seconds_left
        )),
        State::LinkLocal => s.push_str(&format!(
            "  inet {}/{} (link-local: no DHCP server on this link)\n",
            i.address, i.prefix
        )),
        State::Discovering => s.push_str("  no address yet (asking DHCP)\n"),
        State::Down => s.push_str("  no network card driver\n"),
    }
    if i.state != State::Down {
        s.push_str(&format!(
            "  frames: {} in ({} unicast to other cards), {} out\n",
            i.frames_in, i.frames_foreign, i.frames_out
        ));
    }
    Ok(s)
}

fn resolve_one(command: &str, host: &str) -> Result<Ipv4Addr, String> {
    let addrs =
        net::resolve(host, Timeout::millis(5000)).map_err(|e| format!("{command}: {host}: {}\n", report::error(e)))?;
    addrs
        .first()
        .copied()
        .ok_or_else(|| format!("{command}: {host}: no IPv4 address\n"))
}

pub fn resolve(name: &str) -> Result<String, String> {
    let addrs =
        net::resolve(name, Timeout::millis(5000)).map_err(|e| format!("resolve: {name}: {}\n", report::error(e)))?;
    if addrs.is_empty() {
        return Err(format!("resolve: {name}: no IPv4 address\n"));
    }
    let list: Vec<String> = addrs.iter().map(|a| format!("{a}")).collect();
    Ok(format!("{name}: {}\n", list.join(" ")))
}

pub fn ping(host: &str) -> Result<String, String> {
    let to = resolve_one("ping", host)?;
    let ident = (userlib::syscall::now_us() & 0xffff) as u16;
    let mut p = Pinger::new(ident).map_err(|e| fail("ping", e))?;
    let payload: Vec<u8> = (0..56u8).collect();
    let mut out = format!("PING {host} ({to}): {} data bytes\n", payload.len());
    let mut received = 0;
    for seq in 0..4u16 {
        match p.ping(to, seq, &payload, Timeout::millis(2000)) {
            Ok(us) => {
                received += 1;
                out.push_str(&format!(
                    "{} bytes from {to}: icmp_seq={seq} time={}.{:03} ms\n",
                    payload.len() + 8,
                    us / 1000,
                    us % 1000
                ));
            }
            Err(Error::TimedOut) => out.push_str(&format!("icmp_seq={seq}: no reply\n")),
            Err(e) => return Err(out + &fail("ping", e)),
        }
    }
    out.push_str(&format!("4 packets sent, {received} received\n"));
    if received == 0 {
        Err(out)
    } else {
        Ok(out)
    }
}

pub fn fetch(url: &str) -> Result<String, String> {
    let u = http::parse_url(url).map_err(|m| format!("fetch: {m}\n"))?;
    let ip = resolve_one("fetch", u.host)?;
    let mut stream =
        TcpStream::connect_timeout(SocketAddrV4::new(ip, u.port), Timeout::millis(10_000)).map_err(|e| {
            let why = match e {
                Error::PeerDied => "connection refused",
                e => report::error(e),
            };
            format!("fetch: {}:{}: {why}\n", ip, u.port)
        })?;
    stream.set_timeout(Timeout::millis(15_000));
    stream
        .write_all(http::request(&u).as_bytes())
        .map_err(|e| fail("fetch", e))?;
    // One allocation of the most it keeps (growing by doubling would need
    // twice that at the end).
    let mut response = Vec::with_capacity(MAX_RESPONSE);
    let mut buf = [0u8; 2048];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if response.len() + n > MAX_RESPONSE {
                    return Err(format!("fetch: response longer than {MAX_RESPONSE} bytes\n"));
                }
                response.extend_from_slice(&buf[..n]);
            }
            Err(e) => return Err(fail("fetch", e)),
        }
    }
    let r = http::parse_response(&response).map_err(|m| format!("fetch: {m}\n"))?;
    let mut out = String::from_utf8_lossy(&r.body).into_owned();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    if r.status != 200 {
        return Err(format!("fetch: HTTP {} {}\n{out}", r.status, r.reason));
    }
    Ok(out)
}
