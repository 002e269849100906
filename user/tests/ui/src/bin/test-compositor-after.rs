//! Runs after `test-compositor` (name order), which exited with a damaged,
//! uncommitted surface: within the compositor's liveness sweep its
//! surfaces go (the harness sees `client task N is gone`), and the
//! compositor, never restarted, still answers and composes: a new
//! client's commit gets its `EV_FRAME`.
#![no_std]
#![no_main]

use userlib::abi::boot_info::StartInfo;
use userlib::abi::ObjectType;
use userlib::ipc::{Message, Timeout};
use userlib::names::supervisor;
use userlib::services::compositor::{self as proto, Client, Event, EV_FRAME, MAX_EVENTS};
use userlib::vspace::{pages_for, Mapping};
use userlib::{names, println, process, syscall, Rights};

userlib::entry!(main, heap = 64 * 1024);

fn main(_: &StartInfo) {
    if !test_ui::compositor_here() {
        println!("test-compositor-after: no compositor on a driven display here: nothing to test");
        return;
    }
    names::connect(proto::NAME, Timeout::millis(30_000)).expect("no `compositor` service");
    // Past the compositor's once-a-second sweep.
    syscall::sleep_ms(2500);
    let n = syscall::create(process().pool, ObjectType::Notification, 0).expect("notification");
    let mut c = Client::new(n);
    c.info().expect("INFO");
    let s = c
        .call(&Message::with_words(proto::CREATE, &[16, 16, 0]))
        .expect("CREATE")
        .word(0);
    let buf = Mapping::new(pages_for(16 * 16 * 4), Rights::READ | Rights::WRITE).expect("buffer");
    let mut m = Message::with_words(proto::ATTACH, &[s, 16, 16, 64, 1]);
    m.push_cap(buf.handle(), Rights::READ | Rights::MAP);
    c.call(&m).expect("ATTACH");
    c.call(&Message::with_words(proto::COMMIT, &[s])).expect("COMMIT");
    let until = syscall::now_us() + 10_000_000;
    let mut ev = [Event::default(); MAX_EVENTS];
    let mut framed = false;
    while !framed && syscall::now_us() < until {
        let _ = syscall::wait(c.notification, Timeout::millis(200));
        let (k, _) = c.events(&mut ev).expect("EVENTS");
        framed = ev[..k].iter().any(|e| e.kind == EV_FRAME);
    }
    assert!(framed, "no frame within 10 s");
    let compositor = supervisor::tasks()
        .expect("tasks")
        .into_iter()
        .find(|t| t.name == "compositor")
        .expect("a compositor task");
    assert_eq!(compositor.restarts, 0, "the compositor was restarted");
    println!("test-compositor-after: the compositor composes, restarts 0");
}
