//! A hostile compositor client, beside the system UI (the profile's
//! compositor, status bar, home and apps run): garbage requests, huge and
//! overflowing sizes, capabilities of the wrong kind or with too few
//! rights, more surfaces than allowed, a flood of requests, a buffer it
//! shares and then revokes before and after committing it, and at the end
//! it exits with a damaged, uncommitted surface (the compositor must drop
//! it: the harness sees `client task N is gone`). Through all of it the
//! compositor must answer every request with an error or OK, keep
//! composing frames (a good surface of this client still gets
//! `EV_FRAME`), and never restart.
#![no_std]
#![no_main]

use test_ui::{compositor_restarts, wait_frame};
use userlib::abi::boot_info::StartInfo;
use userlib::abi::ObjectType;
use userlib::ipc::{Message, Timeout};
use userlib::services::compositor::{self as proto, Client, MAX_SIDE, MAX_SURFACES};
use userlib::test::{expect_err, Rng};
use userlib::vspace::{pages_for, Mapping};
use userlib::{names, println, process, syscall, Error, Rights};

userlib::entry!(main, heap = 64 * 1024);

fn main(_: &StartInfo) {
    if !test_ui::compositor_here() {
        println!("test-compositor: no compositor on a driven display here: nothing to test");
        return;
    }
    names::connect(proto::NAME, Timeout::millis(30_000)).expect("no `compositor` service within 30 s");
    let n = syscall::create(process().pool, ObjectType::Notification, 0).expect("notification");
    let mut c = Client::new(n);
    let info = c.info().expect("INFO");
    println!(
        "test-compositor: screen {}x{}, role {}, area {:?}",
        info.width, info.height, info.role, info.area
    );
    let restarts_before = compositor_restarts();

    // Garbage: unknown labels with random words; a label of the
    // compositor's own input threads (only their badge may use it).
    let mut rng = Rng::new(0x13_c0de);
    println!("test-compositor: seed 0x13c0de");
    for label in [0u16, 13, 14, 99, 0x100, 0x101, 0x7fff, 0xffff] {
        for _ in 0..8 {
            let words: [u64; 6] = core::array::from_fn(|_| rng.next_u64());
            let len = rng.below(7) as usize;
            expect_err(
                "garbage",
                c.call(&Message::with_words(label, &words[..len])),
                Error::InvalidArgument,
            );
        }
    }
    // Requests with missing or wild arguments.
    expect_err(
        "CONNECT without a capability",
        c.call(&Message::new(proto::CONNECT)),
        Error::InvalidArgument,
    );
    let mut m = Message::new(proto::CONNECT);
    let ep = syscall::create(process().pool, ObjectType::Endpoint, 0).expect("endpoint");
    m.push_cap(ep, Rights::SEND);
    expect_err("CONNECT with an endpoint", c.call(&m), Error::InvalidArgument);
    expect_err("ACTIVATE from an app", c.activate("clock"), Error::InvalidArgument);
    expect_err("HIDE from an app", c.hide(), Error::InvalidArgument);
    for id in [0u64, 1, 99, u64::MAX] {
        expect_err("COMMIT of no surface", commit(&mut c, id), Error::InvalidArgument);
        expect_err(
            "DESTROY of no surface",
            call(&mut c, proto::DESTROY, &[id]),
            Error::InvalidArgument,
        );
    }
    println!("test-compositor: garbage refused");

    // Surfaces: at most MAX_SURFACES.
    let mut ids = [0u64; MAX_SURFACES];
    for id in ids.iter_mut() {
        *id = call(&mut c, proto::CREATE, &[64, 64, 0]).expect("CREATE").word(0);
    }
    expect_err(
        "CREATE past the limit",
        call(&mut c, proto::CREATE, &[64, 64, 0]),
        Error::InvalidArgument,
    );
    for id in &ids[1..] {
        call(&mut c, proto::DESTROY, &[*id]).expect("DESTROY");
    }
    let s = ids[0];

    // Buffers: sizes out of range or overflowing, too little memory, the
    // wrong kind of capability, too few rights.
    let buf = Mapping::new(pages_for(64 * 64 * 4), Rights::READ | Rights::WRITE).expect("buffer");
    let max = MAX_SIDE as u64;
    for (w, h, stride) in [
        (0, 64, 256),
        (64, 0, 256),
        (max + 1, 64, (max + 1) * 4),
        (64, max + 1, 256),
        (u64::MAX, u64::MAX, u64::MAX),
        (64, 64, 255),
        (64, 64, u64::MAX),
        (1 << 33, 1 << 33, 1 << 35),
        (max, max, max * 4),
        (64, 65, 256),
    ] {
        expect_err(
            "ATTACH of a wrong size",
            attach(&mut c, s, w, h, stride, buf.handle(), Rights::READ | Rights::MAP),
            Error::InvalidArgument,
        );
    }
    expect_err(
        "ATTACH without MAP",
        attach(&mut c, s, 64, 64, 256, buf.handle(), Rights::READ),
        Error::InvalidArgument,
    );
    expect_err(
        "ATTACH of an endpoint",
        attach(&mut c, s, 64, 64, 256, ep, Rights::SEND),
        Error::InvalidArgument,
    );
    expect_err(
        "ATTACH without a capability",
        call(&mut c, proto::ATTACH, &[s, 64, 64, 256, 1]),
        Error::InvalidArgument,
    );
    expect_err(
        "ATTACH to another's surface",
        attach(&mut c, 999, 64, 64, 256, buf.handle(), Rights::READ | Rights::MAP),
        Error::InvalidArgument,
    );
    for (x, y, w, h) in [(1u64 << 40, 0, 1, 1), (0, 0, u64::MAX, u64::MAX)] {
        expect_err(
            "DAMAGE past i32",
            call(&mut c, proto::DAMAGE, &[s, x, y, w, h]),
            Error::InvalidArgument,
        );
    }
    println!("test-compositor: bad sizes and capabilities refused");
    // Owned buffers (projection): this compositor has no `owned=` budget;
    // writes to a surface without an owned buffer, or malformed, are refused.
    expect_err(
        "BUFFER without a budget",
        call(&mut c, proto::BUFFER, &[s, 64, 64]),
        Error::NotSupported,
    );
    for (w, h) in [(0, 64), (64, 0), (max + 1, 1), (u64::MAX, u64::MAX)] {
        expect_err(
            "BUFFER of a wrong size",
            call(&mut c, proto::BUFFER, &[s, w, h]),
            Error::InvalidArgument,
        );
    }
    let write = |c: &mut Client, words: &[u64], cap: Option<(userlib::Handle, Rights)>| {
        let mut m = Message::with_words(proto::WRITE, words);
        if let Some((h, r)) = cap {
            m.push_cap(h, r);
        }
        c.call(&m)
    };
    let mem = Some((buf.handle(), Rights::READ | Rights::MAP));
    for words in [
        &[s, 0, 0, 8, 8, 32][..],
        &[s, 0, 0, 0, 8, 32],
        &[s, 0, 0, 8, 8, 31],
        &[s, 0, 0, 8, 8, u64::MAX],
        &[s, u64::MAX, u64::MAX, u64::MAX, u64::MAX, u64::MAX],
        &[s, 0, 0, 64, 65, 256],
        &[999, 0, 0, 8, 8, 32],
        &[],
    ] {
        expect_err("WRITE refused", write(&mut c, words, mem), Error::InvalidArgument);
    }
    expect_err(
        "WRITE without a capability",
        write(&mut c, &[s, 0, 0, 8, 8, 32], None),
        Error::InvalidArgument,
    );
    expect_err(
        "WRITE of an endpoint",
        write(&mut c, &[s, 0, 0, 8, 8, 32], Some((ep, Rights::SEND))),
        Error::InvalidArgument,
    );
    expect_err(
        "WRITE without MAP",
        write(&mut c, &[s, 0, 0, 8, 8, 32], Some((buf.handle(), Rights::READ))),
        Error::InvalidArgument,
    );
    println!("test-compositor: owned-buffer requests refused without a budget");

    // A good buffer: it is composed (frames come), then revoked under
    // the compositor, committed again, revoked after the commit.
    attach(&mut c, s, 64, 64, 256, buf.handle(), Rights::READ | Rights::MAP).expect("ATTACH");
    call(&mut c, proto::DAMAGE, &[s, i32::MAX as u64, 0, i32::MAX as u64, 5]).expect("DAMAGE off the surface");
    commit(&mut c, s).expect("COMMIT");
    wait_frame(&mut c, "the first commit");
    syscall::cap_revoke(buf.handle()).expect("revoke the shared buffer");
    commit(&mut c, s).expect("COMMIT after the revoke");
    let buf2 = Mapping::new(pages_for(64 * 64 * 4), Rights::READ | Rights::WRITE).expect("buffer");
    attach(&mut c, s, 64, 64, 256, buf2.handle(), Rights::READ | Rights::MAP).expect("ATTACH again");
    syscall::cap_revoke(buf2.handle()).expect("revoke before the commit");
    commit(&mut c, s).expect("COMMIT of a revoked buffer");
    println!("test-compositor: revoked buffers survived");

    // A flood: many requests, fast.
    for i in 0..2000u64 {
        let _ = call(&mut c, proto::DAMAGE, &[s, i % 64, i % 61, 3, 3]);
        let _ = c.info();
    }
    println!("test-compositor: flood of 4000 requests answered");

    // Frames still come for a good buffer.
    let good = call(&mut c, proto::CREATE, &[64, 64, 0]).expect("CREATE").word(0);
    let buf3 = Mapping::new(pages_for(64 * 64 * 4), Rights::READ | Rights::WRITE).expect("buffer");
    attach(&mut c, good, 64, 64, 256, buf3.handle(), Rights::READ | Rights::MAP).expect("ATTACH good");
    commit(&mut c, good).expect("COMMIT good");
    wait_frame(&mut c, "a good buffer after the abuse");
    let info2 = c.info().expect("INFO after the abuse");
    assert_eq!((info2.width, info2.height), (info.width, info.height));
    assert_eq!(compositor_restarts(), restarts_before, "the compositor restarted");

    // Leave mid-commit: damage pending, never committed; exit.
    let last = call(&mut c, proto::CREATE, &[32, 32, 0]).expect("CREATE").word(0);
    let buf4 = Mapping::new(pages_for(32 * 32 * 4), Rights::READ | Rights::WRITE).expect("buffer");
    attach(&mut c, last, 32, 32, 128, buf4.handle(), Rights::READ | Rights::MAP).expect("ATTACH last");
    call(&mut c, proto::DAMAGE, &[last, 0, 0, 8, 8]).expect("DAMAGE last");
    println!("test-compositor: leaving with an uncommitted surface; the compositor is up");
    core::mem::forget(buf4);
}

fn call(c: &mut Client, label: u16, words: &[u64]) -> Result<Message, Error> {
    c.call(&Message::with_words(label, words))
}

fn commit(c: &mut Client, s: u64) -> Result<Message, Error> {
    call(c, proto::COMMIT, &[s])
}

fn attach(
    c: &mut Client,
    s: u64,
    w: u64,
    h: u64,
    stride: u64,
    cap: userlib::Handle,
    rights: Rights,
) -> Result<Message, Error> {
    let mut m = Message::with_words(proto::ATTACH, &[s, w, h, stride, 7]);
    m.push_cap(cap, rights);
    c.call(&m)
}
