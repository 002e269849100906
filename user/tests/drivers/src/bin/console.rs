//! test-console: the `console` service (uart-pl011) writes; reads a line
//! typed on the serial console (the `utest-drivers-virt` boot case types
//! [`TYPED`] when it sees [`CUE`]; without a typist the read times out and
//! that part is skipped); a `READ` with no input comes back `TimedOut`
//! without holding up the server: more timed-out reads than the server has
//! threads, a write while another thread waits in a read; and refused
//! requests. It stops the shell while it runs (one typist, one reader).
#![no_std]
#![no_main]

extern crate alloc;

use driver_tests::{board_has, wait_for};
use userlib::abi::boot_info::StartInfo;
use userlib::ipc::{Message, Timeout};
use userlib::names::Connection;
use userlib::services::console::{Console, NAME, READ};
use userlib::services::MAX_BYTES;
use userlib::test::expect_err;
use userlib::{log, names, syscall, thread, Error};

userlib::entry!(main);

/// What the test asks for (the log adds the `test-console: ` prefix the
/// boot case waits for), and what the boot case types.
const CUE: &str = "type a line";
const TYPED: &str = "hello kestrel";
/// How long to wait for a typist (every plain `utest` run waits this long).
const TYPING_MS: u64 = 3000;

/// A line from the console within [`TYPING_MS`], or `None` if nothing
/// was typed at all.
fn read_line(c: &mut Console) -> Option<alloc::string::String> {
    let mut line = alloc::vec::Vec::new();
    let deadline = syscall::now_us() + TYPING_MS * 1000;
    loop {
        let now = syscall::now_us();
        if now >= deadline {
            assert!(line.is_empty(), "a line without its end: {line:?}");
            return None;
        }
        let mut buf = [0u8; MAX_BYTES];
        match c.read(&mut buf, Timeout::Micros(deadline - now)) {
            Ok(bytes) => {
                if let Some(end) = bytes.iter().position(|b| *b == b'\n' || *b == b'\r') {
                    line.extend_from_slice(&bytes[..end]);
                    return Some(alloc::string::String::from_utf8_lossy(&line).into_owned());
                }
                line.extend_from_slice(bytes);
            }
            Err(Error::TimedOut) => {}
            Err(e) => panic!("READ: {e}"),
        }
    }
}

/// A read with nothing typed: `TimedOut`, or input if someone typed.
fn read_briefly(c: &mut Console, ms: u64) {
    let mut buf = [0u8; MAX_BYTES];
    match c.read(&mut buf, Timeout::millis(ms)) {
        Err(Error::TimedOut) => {}
        Ok(bytes) => log::info!("input arrived: {bytes:?}"),
        Err(e) => panic!("READ: {e}"),
    }
}

fn main(_start: &StartInfo) {
    if !board_has("arm,pl011", "PL011 UART") {
        return;
    }
    wait_for(NAME);
    let mut c = Console::new();
    c.write(b"test-console: a line through the console service\n")
        .expect("WRITE");
    // Longer than one message: the client splits it.
    let long = [b'='; MAX_BYTES + 40];
    c.write(&long).expect("a long WRITE");
    c.write(b"\n").expect("WRITE");

    // One typist, one reader: the shell (when the profile starts one)
    // would take the line.
    let shell_stopped = names::supervisor::kill("shell").is_ok();
    log::info!("{CUE}");
    match read_line(&mut c) {
        Some(line) => {
            log::info!("read {line:?} from the serial console");
            assert_eq!(line, TYPED, "the typed line");
        }
        None => log::info!("nothing typed within {TYPING_MS} ms: input not checked"),
    }

    // Each timed-out read must free its server thread.
    for _ in 0..6 {
        read_briefly(&mut c, 50);
    }

    // A reader waiting does not hold up a writer.
    let reader = thread::spawn(|| read_briefly(&mut Console::new(), 1500)).expect("spawn a reader");
    syscall::sleep_ms(200);
    let t = syscall::now_us();
    c.write(b"test-console: written while a reader waits\n")
        .expect("WRITE during a READ");
    let took_ms = (syscall::now_us() - t) / 1000;
    assert!(took_ms < 1000, "a WRITE waited {took_ms} ms behind a READ");
    reader.join().expect("join the reader");

    let mut raw = Connection::new(NAME);
    let t = Timeout::millis(1000);
    expect_err(
        "READ of 0 bytes",
        raw.call(&Message::with_words(READ, &[0, 1000]), t),
        Error::InvalidArgument,
    );
    expect_err(
        "an unknown request",
        raw.call(&Message::new(0x55), t),
        Error::InvalidArgument,
    );
    if shell_stopped {
        names::supervisor::restart("shell").expect("restart the shell");
    }
    log::info!("console writes, reads time out cleanly, writers are not held up");
}
