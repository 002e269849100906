//! What the UI tests share: whether this machine has the device with its
//! driver running (a `utest` run on a board without it skips the test),
//! the services a driver registered, and the compositor tests' waits for a
//! frame and count of the compositor's restarts.
#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use userlib::ipc::Timeout;
use userlib::names::supervisor;
use userlib::services::compositor::{Client, Event, EV_FRAME, MAX_EVENTS};
use userlib::syscall;

/// Devices whose driver (as the device manager reports it) is `program`.
pub fn driven(program: &str) -> usize {
    supervisor::devices()
        .unwrap_or_default()
        .iter()
        .filter(|(_, text)| text.split_whitespace().nth(2) == Some(program))
        .count()
}

/// Does this machine run the profile's compositor on a virtio-gpu display
/// (a `utest` run elsewhere, or with `servers=none`, skips the compositor
/// tests)?
pub fn compositor_here() -> bool {
    driven("virtio-gpu") > 0
        && supervisor::tasks()
            .unwrap_or_default()
            .iter()
            .any(|t| t.name == "compositor")
}

/// The services `program` provides, once there are `count` of them (each
/// of its tasks registers one), waiting up to `timeout_ms`; the ones there
/// are if that runs out.
pub fn services_of(program: &str, count: usize, timeout_ms: u64) -> Vec<String> {
    let until = syscall::now_us() + timeout_ms * 1000;
    loop {
        let names: Vec<String> = supervisor::services()
            .unwrap_or_default()
            .iter()
            // Registered ones only (not routes whose provider is down).
            .filter(|(v, _)| v.get(2) != Some(&0))
            .filter_map(|(_, text)| {
                let mut w = text.split_whitespace();
                let (name, provider) = (w.next()?, w.next()?);
                (provider == program).then(|| String::from(name))
            })
            .collect();
        if names.len() >= count || syscall::now_us() >= until {
            return names;
        }
        syscall::sleep_ms(20);
    }
}

/// Waits (10 s at most) for `EV_FRAME` on `c`; panics naming `what`
/// (the step it followed) if none comes.
pub fn wait_frame(c: &mut Client, what: &str) {
    let until = syscall::now_us() + 10_000_000;
    let mut ev = [Event::default(); MAX_EVENTS];
    while syscall::now_us() < until {
        let _ = syscall::wait(c.notification, Timeout::millis(200));
        let (n, _) = c.events(&mut ev).expect("EVENTS");
        if ev[..n].iter().any(|e| e.kind == EV_FRAME) {
            return;
        }
    }
    panic!("no frame within 10 s after {what}");
}

/// How many times the supervisor has restarted the compositor.
pub fn compositor_restarts() -> u64 {
    supervisor::tasks()
        .expect("tasks")
        .iter()
        .find(|t| t.name == "compositor")
        .map(|t| t.restarts)
        .expect("a compositor task")
}
