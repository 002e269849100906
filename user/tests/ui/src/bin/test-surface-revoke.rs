//! A hostile compositor client that revokes its surfaces' memory while the
//! compositor composes them (the part of the hostile client that needs
//! its app shown, so a profile with owned buffers: the TV's; a profile
//! without them skips it). Its first commit of an owned buffer
//! ([`proto::BUFFER`]) brings it forward; then, for a few seconds, it
//! attaches one memory object to a big opaque surface and to a smaller
//! translucent one, damages and commits them, and sends [`proto::WRITE`]s
//! from it into the owned buffer, while one thread per CPU (below the
//! compositor's priority) revokes every capability derived from that
//! object at random moments: some revokes land between the compositor's
//! check of a buffer and its compose, or inside the compose or the copy.
//! The compositor must answer every request, never fault nor restart,
//! and afterwards still compose a good surface (`EV_FRAME`).
#![no_std]
#![no_main]

use test_ui::{compositor_restarts, wait_frame};
use userlib::abi::boot_info::StartInfo;
use userlib::abi::ObjectType;
use userlib::ipc::{Message, Timeout};
use userlib::services::compositor::{self as proto, Client};
use userlib::test::Revokers;
use userlib::vspace::{pages_for, Mapping};
use userlib::{names, println, process, syscall, Error, Rights};

userlib::entry!(main, heap = 64 * 1024);

/// How long the revokers run.
const RUN_US: u64 = 4_000_000;
/// The opaque surface: 3.5 MiB of pixels, composed over a few hundred
/// thousand instructions (a wide window for a revoke to land in).
const BIG: (u64, u64) = (1280, 720);
/// The translucent surface (blended).
const GLASS: (u64, u64) = (256, 256);

fn main(_: &StartInfo) {
    if !test_ui::compositor_here() {
        println!("test-surface-revoke: no compositor on a driven display here: nothing to test");
        return;
    }
    names::connect(proto::NAME, Timeout::millis(30_000)).expect("no `compositor` service within 30 s");
    let n = syscall::create(process().pool, ObjectType::Notification, 0).expect("notification");
    let mut c = Client::new(n);
    let info = c.info().expect("INFO");
    let restarts_before = compositor_restarts();
    // An owned buffer's first commit shows this client's app.
    let owned = call(&mut c, proto::CREATE, &[64, 64, 0]).expect("CREATE").word(0);
    match call(&mut c, proto::BUFFER, &[owned, 64, 64]) {
        Err(Error::NotSupported) => {
            println!("test-surface-revoke: no owned buffers here (no app can be shown): nothing to test");
            return;
        }
        r => {
            r.expect("BUFFER");
        }
    }
    call(&mut c, proto::COMMIT, &[owned]).expect("COMMIT the owned buffer");
    wait_frame(&mut c, "the owned buffer's commit");
    println!(
        "test-surface-revoke: shown on {}x{}, {} CPUs",
        info.width,
        info.height,
        process().cpus
    );

    let big = call(&mut c, proto::CREATE, &[BIG.0, BIG.1, 0]).expect("CREATE").word(0);
    let glass = call(&mut c, proto::CREATE, &[GLASS.0, GLASS.1, proto::FLAG_ALPHA])
        .expect("CREATE")
        .word(0);
    let stride = BIG.0 * 4;
    let mut buf = Mapping::new(pages_for(stride * BIG.1), Rights::READ | Rights::WRITE).expect("buffer");
    // Half-transparent grey where it is blended; a pattern elsewhere.
    for (i, px) in buf.as_mut_slice().chunks_exact_mut(4).enumerate() {
        px.copy_from_slice(&(0x8040_4040u32 ^ (i as u32 & 0x3f)).to_le_bytes());
    }
    let mem = buf.handle();
    let priority = process().priority.min(10);
    let revokers = Revokers::start(mem, priority, 200_000, 0x5c0de);
    // [answers, errors]
    let mut tally = [0u64; 2];
    let mut count = |r: Result<Message, Error>, what: &str| match r {
        Ok(_) => tally[0] += 1,
        // Refused: the capability was revoked before the compositor
        // looked at it, or a WRITE's copy found it gone.
        Err(Error::InvalidArgument | Error::BadHandle | Error::InvalidState | Error::NoRights) => tally[1] += 1,
        Err(e) => panic!(
            "{what}: {e:?} (the compositor restarted {} times)",
            compositor_restarts() - restarts_before
        ),
    };
    let start = syscall::now_us();
    let mut rounds = 0u64;
    while syscall::now_us() - start < RUN_US {
        rounds += 1;
        count(attach(&mut c, big, BIG.0, BIG.1, stride, mem), "ATTACH big");
        count(call(&mut c, proto::COMMIT, &[big]), "COMMIT big");
        count(attach(&mut c, glass, GLASS.0, GLASS.1, stride, mem), "ATTACH glass");
        count(call(&mut c, proto::COMMIT, &[glass]), "COMMIT glass");
        let mut m = Message::with_words(proto::WRITE, &[owned, 0, 0, 64, 64, stride]);
        m.push_cap(mem, Rights::READ | Rights::MAP);
        count(c.call(&m), "WRITE");
        count(call(&mut c, proto::COMMIT, &[owned]), "COMMIT owned");
        // Now and then, let the frames go out with nothing queued.
        if rounds.is_multiple_of(4) {
            syscall::sleep_ms(2);
        }
    }
    let revokes = revokers.stop();
    let [ok, refused] = tally;
    println!("test-surface-revoke: {rounds} rounds, {ok} answers, {refused} refused, {revokes} revokes");
    assert_eq!(
        compositor_restarts(),
        restarts_before,
        "the compositor restarted under revoked surfaces"
    );

    // A good surface still gets its frame.
    let good = call(&mut c, proto::CREATE, &[64, 64, 0]).expect("CREATE").word(0);
    let buf2 = Mapping::new(pages_for(64 * 64 * 4), Rights::READ | Rights::WRITE).expect("buffer");
    attach(&mut c, good, 64, 64, 256, buf2.handle()).expect("ATTACH good");
    call(&mut c, proto::COMMIT, &[good]).expect("COMMIT good");
    wait_frame(&mut c, "a good buffer after the revokes");
    assert_eq!(compositor_restarts(), restarts_before, "the compositor restarted");
    println!("test-surface-revoke: the compositor composes, never restarted");
}

fn call(c: &mut Client, label: u16, words: &[u64]) -> Result<Message, Error> {
    c.call(&Message::with_words(label, words))
}

fn attach(c: &mut Client, s: u64, w: u64, h: u64, stride: u64, cap: userlib::Handle) -> Result<Message, Error> {
    let mut m = Message::with_words(proto::ATTACH, &[s, w, h, stride, 1]);
    m.push_cap(cap, Rights::READ | Rights::MAP);
    c.call(&m)
}
