//! IPC semantics. Run by init as a test; it starts a second copy of itself
//! (argument `server`) in its own task as the server for the
//! cross-address-space cases, and uses threads of its own task for the
//! rest.
#![no_std]
#![no_main]

extern crate alloc;

use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use userlib::abi::boot_info::StartInfo;
use userlib::abi::{Error, ObjectType, BUFFER_WORDS, PAGE_SIZE};
use userlib::loader::{self, Child, Spawn};
use userlib::server::{serve, Action};
use userlib::test::{checksum, expect_err};
use userlib::vspace::Mapping;
use userlib::{log, process, syscall, thread, Handle, Message, Rights, Timeout};

userlib::entry!(main);

// Requests the server understands (labels).
const ECHO: u16 = 1;
const LONG: u16 = 2;
const CAP: u16 = 3;
const SHM_SETUP: u16 = 4;
const SHM: u16 = 5;
const HOLD: u16 = 6;
const DIE: u16 = 7;
/// The badge of the client's endpoint capability.
const CLIENT_BADGE: u64 = 0xc11e;

fn main(start: &StartInfo) {
    if start.args() == "server" {
        let ep = Handle(start.extra[0]);
        server(ep);
    }
    check("non-blocking variants", non_blocking);
    check("timeouts", timeouts);
    check("timed calls and replies on one CPU", timed_fast_calls);
    check("no receiver left: PeerDied", no_receiver);
    check("reply without a caller", no_caller);
    check("a reply that cannot be delivered fails its caller", undeliverable_reply);
    check("send and receive between threads", send_recv_threads);
    check(
        "a receiver whose IPC buffer is read-only gets the registers only",
        read_only_buffer,
    );
    check("notifications", notifications);
    check("priority preemption", preemption);
    check("two address spaces", cross_task);
}

fn check(name: &str, f: impl FnOnce()) {
    f();
    log::info!("{name}: ok");
}

fn new(ty: ObjectType) -> Handle {
    syscall::create(process().pool, ty, 0).unwrap_or_else(|e| panic!("create {ty:?}: {e}"))
}

fn non_blocking() {
    let ep = new(ObjectType::Endpoint);
    let n = new(ObjectType::Notification);
    expect_err("recv", syscall::recv(ep, Timeout::NonBlocking), Error::WouldBlock);
    expect_err(
        "send",
        syscall::send(ep, &Message::new(1), Timeout::NonBlocking),
        Error::WouldBlock,
    );
    expect_err(
        "call",
        syscall::call_timeout(ep, &Message::new(1), Timeout::NonBlocking),
        Error::WouldBlock,
    );
    expect_err(
        "reply_recv",
        syscall::reply_recv(ep, &Message::new(1), Timeout::NonBlocking),
        Error::WouldBlock,
    );
    expect_err("wait", syscall::wait(n, Timeout::NonBlocking), Error::WouldBlock);
    syscall::signal(n, 2).unwrap();
    assert_eq!(syscall::wait(n, Timeout::NonBlocking), Ok(2));
    syscall::cap_delete(ep).unwrap();
    syscall::cap_delete(n).unwrap();
}

fn timeouts() {
    let ep = new(ObjectType::Endpoint);
    let n = new(ObjectType::Notification);
    let timed = |what: &str, f: &dyn Fn() -> Result<(), Error>| {
        let t0 = syscall::now_us();
        expect_err(what, f(), Error::TimedOut);
        let took = syscall::now_us() - t0;
        assert!(
            took >= 20_000,
            "{what}: timed out after {took} us, before the 20 ms asked"
        );
        assert!(took < 2_000_000, "{what}: timed out only after {took} us");
    };
    timed("recv", &|| syscall::recv(ep, Timeout::millis(20)).map(drop));
    timed("send", &|| syscall::send(ep, &Message::new(1), Timeout::millis(20)));
    timed("call", &|| {
        syscall::call_timeout(ep, &Message::new(1), Timeout::millis(20)).map(drop)
    });
    timed("wait", &|| syscall::wait(n, Timeout::millis(20)).map(drop));
    syscall::cap_delete(ep).unwrap();
    syscall::cap_delete(n).unwrap();
}

/// Labels of [`timed_fast_calls`]' server thread.
const T_ECHO: u16 = 30;
const T_HOLD: u16 = 31;
const T_TIMED_RECV: u16 = 32;
const T_STOP: u16 = 33;
/// What the server's timed receive (`T_TIMED_RECV`) ended with: 1 timed
/// out as asked, 2 too early, 3 another result.
static TIMED_RECV: AtomicU8 = AtomicU8::new(0);

/// Calls and replies with a timeout between two threads on one CPU, the
/// server already waiting (what the kernel's fast path takes): the reply
/// comes back, the timeout of an answered call never fires later, the
/// timeout of an unanswered one does, and so does a server's timed receive
/// after its reply.
fn timed_fast_calls() {
    let me = process();
    syscall::thread_configure(me.thread, me.priority, Some(0)).expect("pin to CPU 0");
    let ep = new(ObjectType::Endpoint);
    let n = new(ObjectType::Notification);
    let server = thread::Builder::default()
        .priority(me.priority)
        .cpu(0)
        .spawn(move || {
            let (mut m, _) = syscall::recv(ep, Timeout::Forever).expect("server recv");
            loop {
                let next = match m.label {
                    T_ECHO => syscall::reply_recv(ep, &Message::with_words(T_ECHO, &[m.word(0) + 1]), Timeout::Forever),
                    // No answer: the caller's timeout ends its call.
                    T_HOLD => syscall::recv(ep, Timeout::Forever),
                    T_TIMED_RECV => {
                        let t0 = syscall::now_us();
                        let r = syscall::reply_recv(ep, &Message::new(T_TIMED_RECV), Timeout::millis(20));
                        let took = syscall::now_us() - t0;
                        let result = match r {
                            Err(Error::TimedOut) if took >= 20_000 => 1,
                            Err(Error::TimedOut) => 2,
                            _ => 3,
                        };
                        TIMED_RECV.store(result, Ordering::SeqCst);
                        syscall::recv(ep, Timeout::Forever)
                    }
                    _ => {
                        syscall::reply(&Message::new(T_STOP)).expect("reply to stop");
                        return;
                    }
                };
                m = next.expect("server receive").0;
            }
        })
        .unwrap();
    syscall::sleep_ms(10); // the server waits in `recv`
    for i in 0..100u64 {
        let (r, _) = syscall::call_timeout(ep, &Message::with_words(T_ECHO, &[i]), Timeout::millis(30))
            .unwrap_or_else(|e| panic!("timed call {i}: {e}"));
        assert_eq!((r.label, r.word(0)), (T_ECHO, i + 1), "reply {i}");
    }
    // The answered calls' 30 ms timeouts are gone: an untimed wait that
    // lasts longer is not cut short.
    let signaller = thread::Builder::default()
        .cpu(0)
        .spawn(move || {
            syscall::sleep_ms(100);
            syscall::signal(n, 4).unwrap();
        })
        .unwrap();
    assert_eq!(
        syscall::wait(n, Timeout::Forever),
        Ok(4),
        "an answered call's timeout fired later"
    );
    signaller.join().unwrap();
    // A call the server takes and never answers times out.
    let t0 = syscall::now_us();
    expect_err(
        "unanswered timed call",
        syscall::call_timeout(ep, &Message::new(T_HOLD), Timeout::millis(20)).map(drop),
        Error::TimedOut,
    );
    let took = syscall::now_us() - t0;
    assert!(took >= 20_000, "timed out after {took} us, before the 20 ms asked");
    assert!(took < 2_000_000, "timed out only after {took} us");
    // The server is still there, and its timed receive after a reply
    // times out (nobody calls for 100 ms).
    let (r, _) = syscall::call_timeout(ep, &Message::with_words(T_ECHO, &[7]), Timeout::millis(30)).expect("echo");
    assert_eq!(r.word(0), 8);
    let (r, _) = syscall::call_timeout(ep, &Message::new(T_TIMED_RECV), Timeout::millis(30)).expect("timed recv");
    assert_eq!(r.label, T_TIMED_RECV);
    syscall::sleep_ms(100);
    assert_eq!(
        TIMED_RECV.load(Ordering::SeqCst),
        1,
        "the server's timed receive (1: timed out, 2: too early, 3: other)"
    );
    let (r, _) = syscall::call_timeout(ep, &Message::new(T_STOP), Timeout::millis(1000)).expect("stop");
    assert_eq!(r.label, T_STOP);
    server.join().unwrap();
    syscall::thread_configure(me.thread, me.priority, None).unwrap();
    syscall::cap_delete(ep).unwrap();
    syscall::cap_delete(n).unwrap();
}

fn no_receiver() {
    let ep = new(ObjectType::Endpoint);
    let send_only = syscall::cap_copy(ep, Rights::SEND).unwrap();
    syscall::cap_delete(ep).unwrap();
    expect_err(
        "send with no receive capability left",
        syscall::send(send_only, &Message::new(1), Timeout::millis(1000)),
        Error::PeerDied,
    );
    expect_err(
        "call with no receive capability left",
        syscall::call_timeout(send_only, &Message::new(1), Timeout::millis(1000)).map(drop),
        Error::PeerDied,
    );
    // A caller blocked when the last receive capability goes is woken too.
    let ep = new(ObjectType::Endpoint);
    let send_only = syscall::cap_copy(ep, Rights::SEND).unwrap();
    let caller = thread::spawn(move || {
        expect_err(
            "blocked call",
            syscall::call_timeout(send_only, &Message::new(1), Timeout::millis(5000)).map(drop),
            Error::PeerDied,
        );
    })
    .unwrap();
    syscall::sleep_ms(20);
    syscall::cap_delete(ep).unwrap();
    caller.join().unwrap();
}

fn no_caller() {
    expect_err(
        "reply with no caller",
        syscall::reply(&Message::new(1)),
        Error::NoCaller,
    );
}

/// A server whose reply names a capability it may not grant gets the error,
/// and so does its caller — which must not wait for a reply that will never
/// come.
fn undeliverable_reply() {
    let ep = new(ObjectType::Endpoint);
    let cpus = process().cpus as usize;
    let client = thread::Builder::default()
        .cpu(cpus - 1)
        .spawn(move || {
            let r = syscall::call_timeout(ep, &Message::new(21), Timeout::millis(10_000));
            assert_eq!(r.map(|(m, _)| m.label), Err(Error::NoRights), "the caller's result");
        })
        .unwrap();
    let (m, _) = syscall::recv(ep, Timeout::millis(5000)).expect("recv the call");
    assert_eq!(m.label, 21);
    let n = new(ObjectType::Notification);
    let no_grant = syscall::cap_copy(n, Rights::SEND).expect("copy without GRANT");
    let mut reply = Message::new(22);
    reply.push_cap(no_grant, Rights::SEND);
    expect_err(
        "reply carrying an ungrantable capability",
        syscall::reply(&reply),
        Error::NoRights,
    );
    client.join().unwrap();
    for h in [no_grant, n, ep] {
        syscall::cap_delete(h).unwrap();
    }
}

fn send_recv_threads() {
    let ep = new(ObjectType::Endpoint);
    let cpus = process().cpus as usize;
    let sender = thread::Builder::default()
        .cpu(cpus - 1)
        .spawn(move || {
            for i in 0..100u64 {
                let mut m = Message::with_words(10, &[i, i * i, !i]);
                if i % 10 == 0 {
                    // Long now and then, through the IPC buffer.
                    for j in 0..40 {
                        m.push(i ^ j);
                    }
                }
                syscall::send(ep, &m, Timeout::millis(5000)).expect("send");
            }
            let (r, _) = syscall::call(ep, &Message::with_words(11, &[7])).expect("call");
            assert_eq!((r.label, r.word(0)), (12, 8));
        })
        .unwrap();
    for i in 0..100u64 {
        let (m, badge) = syscall::recv(ep, Timeout::millis(5000)).expect("recv");
        assert_eq!((m.label, badge), (10, 0));
        assert_eq!(&m.words()[..3], &[i, i * i, !i], "message {i}");
        if i % 10 == 0 {
            assert_eq!(m.len(), 43);
            assert!(m.words()[3..].iter().enumerate().all(|(j, w)| *w == i ^ j as u64));
        }
    }
    let (m, _) = syscall::recv(ep, Timeout::millis(5000)).expect("recv call");
    assert_eq!(m.label, 11);
    syscall::reply(&Message::with_words(12, &[m.word(0) + 1])).expect("reply");
    sender.join().unwrap();
    syscall::cap_delete(ep).unwrap();
}

/// A thread whose IPC buffer was writable when it set it and is mapped
/// read-only now receives a long message carrying a capability: the kernel
/// delivers the label and the register words, no buffer words and no
/// capability (it writes nothing into a page it may not write), and the
/// sender keeps its own capability.
fn read_only_buffer() {
    static GOT: [AtomicUsize; 6] = [const { AtomicUsize::new(usize::MAX) }; 6];
    let me = process();
    let ep = new(ObjectType::Endpoint);
    let mem = syscall::create(me.pool, ObjectType::Memory, 1).expect("buffer page");
    let addr = userlib::vspace::reserve(1);
    syscall::map(me.task, mem, 1, 0, addr, Rights::READ | Rights::WRITE).expect("map the buffer writable");
    let ready = new(ObjectType::Notification);
    let receiver = thread::spawn(move || {
        syscall::thread_set_ipc_buffer(addr).expect("set the IPC buffer");
        syscall::unmap(process().task, addr, 1).expect("unmap it");
        syscall::map(process().task, mem, 1, 0, addr, Rights::READ).expect("map it read-only");
        syscall::signal(ready, 1).expect("signal");
        // The message's counts come in x1: the library's decode reads only
        // what the kernel says it delivered.
        let (m, _) = syscall::recv(ep, Timeout::millis(5000)).expect("receive");
        let got = [
            m.label as usize,
            m.len(),
            m.caps().len(),
            m.word(0) as usize,
            m.word(3) as usize,
            0,
        ];
        for (g, v) in GOT.iter().zip(got) {
            g.store(v, Ordering::SeqCst);
        }
    })
    .expect("spawn the receiver");
    syscall::wait(ready, Timeout::millis(5000)).expect("receiver ready");
    let n = new(ObjectType::Notification);
    let words: [u64; 8] = core::array::from_fn(|i| 100 + i as u64);
    let mut m = Message::with_words(0x55, &words);
    m.push_cap(n, Rights::SEND | Rights::GRANT);
    syscall::send(ep, &m, Timeout::millis(5000)).expect("send");
    receiver.join().expect("receiver");
    let got: [usize; 5] = core::array::from_fn(|i| GOT[i].load(Ordering::SeqCst));
    assert_eq!(got, [0x55, 4, 0, 100, 103], "label, 4 register words, no capability");
    let info = syscall::cap_info(n).expect("the sender's notification");
    assert_eq!(info.object, Some(ObjectType::Notification));
    syscall::unmap(me.task, addr, 1).expect("unmap");
    for h in [n, ready, mem, ep] {
        syscall::cap_delete(h).unwrap();
    }
}

fn notifications() {
    let n = new(ObjectType::Notification);
    // Bits accumulate until waited for.
    for b in [1u64, 4, 4, 1 << 63] {
        syscall::signal(n, b).unwrap();
    }
    assert_eq!(syscall::wait(n, Timeout::NonBlocking), Ok(1 | 4 | 1 << 63));
    expect_err(
        "bits cleared",
        syscall::wait(n, Timeout::NonBlocking),
        Error::WouldBlock,
    );
    // A waiter on another CPU (if there is one) is woken.
    let ack = new(ObjectType::Notification);
    let cpus = process().cpus as usize;
    let waiter = thread::Builder::default()
        .cpu(cpus - 1)
        .spawn(move || {
            for round in 0..50u64 {
                let bits = syscall::wait(n, Timeout::millis(5000)).expect("wake");
                assert_eq!(bits, 1 << (round % 64), "round {round}");
                syscall::signal(ack, 1).unwrap();
            }
        })
        .unwrap();
    for round in 0..50u64 {
        syscall::signal(n, 1 << (round % 64)).unwrap();
        syscall::wait(ack, Timeout::millis(5000)).expect("ack");
    }
    waiter.join().unwrap();
    syscall::cap_delete(ack).unwrap();
    syscall::cap_delete(n).unwrap();
}

/// Order in which the threads of [`preemption`] got somewhere.
static ORDER: [AtomicU8; 4] = [const { AtomicU8::new(0) }; 4];
static NEXT: AtomicUsize = AtomicUsize::new(0);

fn record(step: u8) {
    ORDER[NEXT.fetch_add(1, Ordering::SeqCst) % 4].store(step, Ordering::SeqCst);
}

fn preemption() {
    let me = process();
    let p = me.priority;
    assert!(p >= 1, "need a priority below ours");
    // Everything on CPU 0, so that only priorities decide who runs.
    syscall::thread_configure(me.thread, p, Some(0)).expect("pin to CPU 0");
    let wake = new(ObjectType::Notification);
    let done = new(ObjectType::Notification);
    let high = thread::Builder::default()
        .priority(p)
        .cpu(0)
        .spawn(move || {
            syscall::wait(wake, Timeout::Forever).unwrap();
            record(2);
            syscall::signal(done, 1).unwrap();
        })
        .unwrap();
    syscall::sleep_ms(10); // `high` blocks in wait
    let low = thread::Builder::default()
        .priority(p - 1)
        .cpu(0)
        .spawn(move || {
            record(1);
            syscall::signal(wake, 1).unwrap(); // `high` must run now ...
            record(3); // ... before this
            syscall::signal(done, 2).unwrap();
        })
        .unwrap();
    let mut bits = 0;
    while bits != 3 {
        bits |= syscall::wait(done, Timeout::millis(5000)).expect("threads finish");
    }
    high.join().unwrap();
    low.join().unwrap();
    let order: [u8; 3] = core::array::from_fn(|i| ORDER[i].load(Ordering::SeqCst));
    assert_eq!(
        order,
        [1, 2, 3],
        "the woken higher-priority thread did not preempt the lower one"
    );
    syscall::thread_configure(me.thread, p, None).unwrap();
    syscall::cap_delete(wake).unwrap();
    syscall::cap_delete(done).unwrap();
}

/// The cases with the server in another task.
fn cross_task() {
    let me = process();
    let ep = new(ObjectType::Endpoint);
    let supervisor = new(ObjectType::Endpoint);
    let elf = loader::find_program(me.name()).expect("find myself in the archive");
    let child: Child = loader::spawn(&Spawn {
        args: "server",
        pool_bytes: 4 << 20,
        supervisor: Some((supervisor, 1)),
        extra: &[(ep, Rights::RECEIVE | Rights::SEND)],
        ..Spawn::new(me.name(), elf)
    })
    .expect("start the server");
    let client = syscall::cap_mint(ep, Rights::SEND | Rights::GRANT, CLIENT_BADGE).unwrap();

    // Register message, both ways, with the badge.
    for i in 0..100u64 {
        let (r, _) = syscall::call(client, &Message::with_words(ECHO, &[i, i + 1, i + 2, i + 3])).expect("echo");
        assert_eq!(r.label, ECHO + 0x100);
        assert_eq!(r.words(), &[i + 1, i + 2, i + 3, CLIENT_BADGE]);
    }
    // The register fast path, as the benchmark uses it.
    let info = userlib::abi::MessageInfo::new(ECHO, 4, 0);
    let (ri, rw) = syscall::call_fast(client, info, [5, 6, 7, 8]).expect("fast echo");
    assert_eq!((ri.label(), ri.words(), rw), (ECHO + 0x100, 4, [6, 7, 8, CLIENT_BADGE]));

    // Long message through both IPC buffers.
    let words: [u64; BUFFER_WORDS] = core::array::from_fn(|i| (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let (r, _) = syscall::call(client, &Message::with_words(LONG, &words)).expect("long");
    assert_eq!(r.len(), BUFFER_WORDS);
    assert!(r.words().iter().rev().eq(words.iter()), "long reply reversed");

    // Capability transfer: ours to the server, and one of its back.
    let n = new(ObjectType::Notification);
    let mut m = Message::new(CAP).accepting_caps(1);
    m.push_cap(n, Rights::SEND | Rights::GRANT);
    let (r, _) = syscall::call(client, &m).expect("cap transfer");
    assert_eq!(r.word(0), ObjectType::Notification as u64, "server saw a notification");
    assert_eq!(
        r.word(1),
        (Rights::SEND | Rights::GRANT).bits() as u64,
        "with the rights sent"
    );
    assert_eq!(
        syscall::wait(n, Timeout::NonBlocking),
        Ok(0x40),
        "server signalled through it"
    );
    assert_eq!(r.caps().len(), 1, "reply carries a capability");
    let theirs = r.caps()[0].handle;
    let info = syscall::cap_info(theirs).expect("received capability");
    assert_eq!((info.object, info.rights), (Some(ObjectType::Endpoint), Rights::SEND));

    // Shared memory: 4 KiB each way, no copying through the kernel.
    let mut shm = Mapping::new(1, Rights::READ | Rights::WRITE).unwrap();
    let mut m = Message::new(SHM_SETUP);
    m.push_cap(shm.handle(), Rights::READ | Rights::WRITE | Rights::MAP);
    syscall::call(client, &m).expect("shared memory setup");
    for round in 0..4u8 {
        let buf = shm.as_mut_slice();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(round);
        }
        let sum = bytes_checksum(buf);
        let (r, _) = syscall::call(client, &Message::with_words(SHM, &[PAGE_SIZE as u64])).expect("shared memory call");
        assert_eq!(r.word(0), sum, "server read the 4 KiB we wrote");
        let buf = shm.as_slice();
        assert!(
            buf.iter()
                .enumerate()
                .all(|(i, b)| *b == !(i as u8).wrapping_mul(31).wrapping_add(round)),
            "server wrote back"
        );
    }

    // A call the server never answers times out ...
    expect_err(
        "unanswered call",
        syscall::call_timeout(client, &Message::new(HOLD), Timeout::millis(50)).map(drop),
        Error::TimedOut,
    );
    // ... and the server goes on.
    let (r, _) = syscall::call(client, &Message::with_words(ECHO, &[1, 2, 3, 4])).expect("echo after timeout");
    assert_eq!(r.word(0), 2);

    // The server dies in the middle of a call: the caller is told.
    expect_err(
        "server died mid-call",
        syscall::call_timeout(client, &Message::new(DIE), Timeout::millis(5000)).map(drop),
        Error::PeerDied,
    );
    // Its task is gone, but our endpoint capability still receives: no server, so:
    expect_err(
        "call after the server died",
        syscall::call_timeout(client, &Message::new(ECHO), Timeout::NonBlocking).map(drop),
        Error::WouldBlock,
    );

    drop(shm);
    child.destroy().expect("destroy the server task");
    for h in [theirs, n, client, supervisor, ep] {
        syscall::cap_delete(h).unwrap();
    }
}

fn bytes_checksum(b: &[u8]) -> u64 {
    let words: alloc::vec::Vec<u64> = b.chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
    checksum(&words)
}

/// The server task's loop.
fn server(ep: Handle) -> ! {
    let mut shared: Option<Mapping> = None;
    let mine = new(ObjectType::Endpoint);
    let r = serve(ep, |msg, badge| match msg.label {
        ECHO => Action::Reply(Message::with_words(
            ECHO + 0x100,
            &[msg.word(0) + 1, msg.word(1) + 1, msg.word(2) + 1, badge],
        )),
        LONG => {
            let mut words = [0u64; BUFFER_WORDS];
            let n = msg.len();
            for (i, w) in msg.words().iter().enumerate() {
                words[n - 1 - i] = *w;
            }
            Action::Reply(Message::with_words(LONG, &words[..n]))
        }
        CAP => {
            let c = msg.caps().first().expect("a capability").handle;
            let info = syscall::cap_info(c).expect("cap_info of the received capability");
            syscall::signal(c, 0x40).expect("signal through it");
            let mut r = Message::with_words(CAP, &[info.object.map_or(0, |o| o as u64), info.rights.bits() as u64]);
            r.push_cap(mine, Rights::SEND);
            Action::Reply(r)
        }
        SHM_SETUP => {
            // Kept (mapped) beyond the request: taken, or `serve` deletes it.
            let c = msg.take_cap(0).expect("a memory capability");
            shared = Some(Mapping::map(c, 1, Rights::READ | Rights::WRITE).expect("map shared memory"));
            Action::Reply(Message::new(SHM_SETUP))
        }
        SHM => {
            let m = shared.as_mut().expect("set up first");
            let sum = bytes_checksum(m.as_slice());
            for b in m.as_mut_slice() {
                *b = !*b;
            }
            Action::Reply(Message::with_words(SHM, &[sum]))
        }
        HOLD => Action::NoReply,
        DIE => syscall::thread_exit(0),
        _ => Action::Reply(Message::new(0xbad)),
    });
    panic!("server loop ended: {r:?}");
}
