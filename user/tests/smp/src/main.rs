//! SMP stress: one server thread per CPU, several client threads per CPU,
//! every client calling random servers with checksummed messages (some
//! long, through the IPC buffers). Every call must come back intact and
//! every request must be counted once by its server (no lost or duplicated
//! message), within a time limit (no deadlock).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use userlib::abi::boot_info::StartInfo;
use userlib::abi::ObjectType;
use userlib::server::{serve, Action};
use userlib::test::{checksum, Rng};
use userlib::{log, println, process, syscall, thread, Handle, Message, Timeout};

userlib::entry!(main, heap = 1 << 20);

const CLIENTS_PER_CPU: usize = 3;
const CALLS_PER_CLIENT: u64 = 1500;
const SEED: u64 = 0x5eed_5a9e;
const REQUEST: u16 = 1;
const STOP: u16 = 2;
/// The longest any single call may take before it counts as lost.
const CALL_TIMEOUT: Timeout = Timeout::Micros(30_000_000);

static SERVED: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];
static DONE_CALLS: AtomicU64 = AtomicU64::new(0);

fn main(_: &StartInfo) {
    let me = process();
    let cpus = (me.cpus as usize).min(16);
    let clients = cpus * CLIENTS_PER_CPU;
    println!(
        "test-smp-stress: {cpus} CPUs, {cpus} servers, {clients} clients x {CALLS_PER_CLIENT} calls, seed {SEED:#x}"
    );
    let endpoints: Vec<Handle> = (0..cpus)
        .map(|_| syscall::create(me.pool, ObjectType::Endpoint, 0).expect("endpoint"))
        .collect();
    let t0 = syscall::now_us();

    let servers: Vec<thread::JoinHandle> = endpoints
        .iter()
        .enumerate()
        .map(|(id, &ep)| {
            thread::Builder::default()
                .cpu(id)
                .spawn(move || server(id, ep))
                .expect("server thread")
        })
        .collect();
    let eps: &'static [Handle] = endpoints.clone().leak();
    let client_threads: Vec<thread::JoinHandle> = (0..clients)
        .map(|id| {
            thread::Builder::default()
                .cpu(id % cpus)
                .spawn(move || client(id, eps))
                .expect("client thread")
        })
        .collect();

    // Joins with a deadline: a deadlock shows as clients that never finish.
    let deadline = t0 + 400_000_000;
    for (i, c) in client_threads.into_iter().enumerate() {
        let left = deadline.saturating_sub(syscall::now_us()).max(1);
        if let Err((_, e)) = c.join_timeout(Timeout::Micros(left)) {
            panic!(
                "client {i} did not finish ({e}): deadlock or lost message; {} of {} calls done",
                DONE_CALLS.load(Ordering::SeqCst),
                clients as u64 * CALLS_PER_CLIENT
            );
        }
    }
    for &ep in &endpoints {
        syscall::call_timeout(ep, &Message::new(STOP), CALL_TIMEOUT).expect("stop a server");
    }
    for s in servers {
        s.join().expect("server ends");
    }
    let total = clients as u64 * CALLS_PER_CLIENT;
    let served: u64 = SERVED.iter().map(|c| c.load(Ordering::SeqCst)).sum();
    assert_eq!(DONE_CALLS.load(Ordering::SeqCst), total, "calls completed");
    assert_eq!(served, total, "requests served (lost or duplicated messages)");
    let ms = (syscall::now_us() - t0) / 1000;
    log::info!(
        "{total} calls in {ms} ms; per server: {:?}",
        &SERVED[..cpus]
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .collect::<Vec<_>>()
    );
    for ep in endpoints {
        syscall::cap_delete(ep).unwrap();
    }
}

fn server(id: usize, ep: Handle) {
    serve(ep, |m, _badge| {
        if m.label == STOP {
            return Action::ReplyAndStop(Message::new(STOP));
        }
        let words = m.words();
        let (body, sum) = words.split_at(words.len() - 1);
        assert_eq!(checksum(body), sum[0], "server {id}: request corrupted: {m:?}");
        SERVED[id].fetch_add(1, Ordering::Relaxed);
        // Reply: the request's words transformed, plus a checksum.
        let mut r = Message::new(REQUEST);
        for w in body {
            r.push(w.rotate_left(7) ^ id as u64);
        }
        let s = checksum(r.words());
        r.push(s);
        Action::Reply(r)
    })
    .expect("server receive");
}

fn client(id: usize, eps: &[Handle]) {
    let mut rng = Rng::new(SEED ^ (id as u64 + 1).wrapping_mul(0x9e37_79b9));
    for seq in 0..CALLS_PER_CLIENT {
        let server = rng.below(eps.len() as u64) as usize;
        // Mostly register-sized, sometimes long.
        let len = if rng.chance(1, 4) {
            4 + rng.below(40) as usize
        } else {
            1 + rng.below(3) as usize
        };
        let mut m = Message::new(REQUEST);
        m.push(((id as u64) << 32) | seq);
        for _ in 1..len {
            m.push(rng.next_u64());
        }
        let s = checksum(m.words());
        m.push(s);
        let (r, _) = syscall::call_timeout(eps[server], &m, CALL_TIMEOUT)
            .unwrap_or_else(|e| panic!("client {id}: call {seq} to server {server}: {e} (lost message?)"));
        let want: Vec<u64> = m.words()[..len]
            .iter()
            .map(|w| w.rotate_left(7) ^ server as u64)
            .collect();
        let (body, sum) = r.words().split_at(r.len().max(1) - 1);
        assert_eq!(
            body,
            &want[..],
            "client {id}: call {seq}: wrong reply from server {server}"
        );
        assert_eq!(checksum(body), sum[0], "client {id}: reply checksum");
        DONE_CALLS.fetch_add(1, Ordering::Relaxed);
        if rng.chance(1, 64) {
            syscall::yield_now();
        }
    }
}
