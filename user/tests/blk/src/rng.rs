//! test-rng: the virtio-rng driver through the `rng` service: bytes
//! arrive, are not all equal, two reads differ; bad sizes are refused.
#![no_std]
#![no_main]

use userlib::abi::boot_info::StartInfo;
use userlib::ipc::{Message, Timeout};
use userlib::services::rng::{self, MAX_READ};
use userlib::test::expect_err;
use userlib::{log, Error};

userlib::entry!(main);

fn main(_start: &StartInfo) {
    // Machines without a virtio entropy device have nothing to test.
    let tasks = userlib::names::supervisor::tasks().expect("supervisor::tasks");
    if !tasks.iter().any(|t| t.name == "virtio-rng") {
        log::info!("no virtio-rng task (no entropy device on this machine): nothing to test");
        return;
    }
    let mut conn = rng::connection();
    let (mut a, mut b) = ([0u8; MAX_READ], [0u8; MAX_READ]);
    rng::fill(&mut conn, &mut a).expect("first read");
    rng::fill(&mut conn, &mut b).expect("second read");
    assert!(a.iter().any(|x| *x != a[0]), "256 random bytes all equal {:#x}", a[0]);
    assert_ne!(a, b, "two reads returned the same bytes");
    // Several requests for a long read; a short one.
    let mut long = [0u8; 1000];
    rng::fill(&mut conn, &mut long).expect("long read");
    assert!(long[MAX_READ * 3..].iter().any(|x| *x != 0), "the last chunk arrived");
    let mut one = [0u8; 1];
    rng::fill(&mut conn, &mut one).expect("one byte");

    let call = |conn: &mut userlib::names::Connection, words: &[u64]| {
        conn.call(&Message::with_words(rng::READ, words), Timeout::millis(5000))
    };
    expect_err("READ 0", call(&mut conn, &[0]), Error::InvalidArgument);
    expect_err(
        "READ 257",
        call(&mut conn, &[MAX_READ as u64 + 1]),
        Error::InvalidArgument,
    );
    expect_err("READ u64::MAX", call(&mut conn, &[u64::MAX]), Error::InvalidArgument);
    expect_err(
        "unknown label",
        conn.call(&Message::with_words(77, &[16]), Timeout::millis(5000)),
        Error::InvalidArgument,
    );
    let r = call(&mut conn, &[MAX_READ as u64]).expect("READ 256");
    assert_eq!(r.word(0), MAX_READ as u64, "reply length");
    conn.reset();
    log::info!("rng: {:02x?}...", &a[..8]);
}
