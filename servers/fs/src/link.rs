//! The file server's link to a mount's block driver: when a request may
//! wait for the driver and when it fails at once (pure, so that it is
//! tested on the host against a fake driver; `main.rs` runs it over
//! `userlib::services::blk::Blk`).
//!
//! - **Up**: requests go to the driver.
//! - **Lost**: the driver died during a request (the call failed with
//!   `PeerDied`, or `BadHandle`/`WrongType` once the supervisor revoked
//!   the endpoint), or the link is new (the mount's first request since
//!   the server started, when the driver may still be starting). The
//!   request waits up to [`Link::grace_us`] for a driver to register the
//!   service (the supervisor restarts a driver that died) and then runs
//!   again: block requests are idempotent, so a driver restart loses no
//!   written data, and one that registers within the grace is not seen
//!   by clients.
//! - **Gone**: no driver came within the grace. Each request looks the
//!   service up once, without waiting, and fails at once
//!   ([`Failure::Gone`]) while none has registered it; the first that
//!   finds one is carried out (the link is up again).
//!
//! A service no task here may register (the machine has no such disk:
//! no driver was started for it, [`Port::provided`]) is not waited for:
//! the request fails at once and the link is Gone (still looked up once
//! per request, as above).
//!
//! One request waits at most one grace per outage; a driver that has
//! registered but does not answer makes each call fail after the block
//! client's own timeout ([`Failure::Gone`] as well: nothing can reach the
//! disk).

use userlib::Error;

/// How long a request waits for a driver that died (or has not started
/// yet) to register again. A fault's first back-off is 100 ms; a restart
/// of virtio-blk on request took up to about 0.5 s of guest time to
/// register on a loaded host (`utest-fs`), so a slow restart can outlast
/// it: requests then fail `Unavailable` until the driver is back. It
/// bounds what the first request that finds a driver killed waits.
pub const GRACE_US: u64 = 300_000;

/// How long to sleep between two lookups while waiting.
pub const POLL_MS: u64 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Up,
    Lost,
    Gone,
}

/// Why a block request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No driver serves the disk now (dead, restarting, never started, or
    /// not answering): the same request may work once one is back.
    Gone,
    /// The driver answered with an error (the device failed the request,
    /// or the request was refused).
    Io,
}

/// What the link needs of the driver's client.
pub trait Port {
    /// Looks the service up once, without waiting (`Ok` at once if the
    /// client holds an endpoint): `WouldBlock` while no task registered it.
    fn lookup_now(&mut self) -> Result<(), Error>;
    fn now_us(&self) -> u64;
    /// Sleeps [`POLL_MS`].
    fn pause(&mut self);
    /// Whether some task here may register the service (the supervisor's
    /// routes: a provider task, running, restarting or killed). Asked only
    /// when a lookup finds it unregistered; `false` means no driver will
    /// come (the machine has no such device).
    fn provided(&mut self) -> bool;
}

/// Whether a call's error means the driver is gone (its endpoint dead).
fn dead(e: Error) -> bool {
    matches!(e, Error::PeerDied | Error::BadHandle | Error::WrongType)
}

#[derive(Clone, Copy, Debug)]
pub struct Link {
    state: State,
    pub grace_us: u64,
    /// The last wait found no task that may register the service.
    absent: bool,
}

impl Link {
    /// A link that waits for the driver once (a mount's first request).
    pub fn new() -> Link {
        Link::with_state(State::Lost)
    }

    /// A link in `state` (a mount whose driver was found gone starts Gone).
    pub fn with_state(state: State) -> Link {
        Link {
            state,
            grace_us: GRACE_US,
            absent: false,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the link went Gone without waiting because no task here
    /// may register the service ([`Port::provided`]).
    pub fn absent(&self) -> bool {
        self.absent
    }

    /// Runs block call `call` on `port` as the state allows (see the
    /// module's rustdoc): once, or once more after the driver came back.
    pub fn request<P: Port, T>(
        &mut self,
        port: &mut P,
        mut call: impl FnMut(&mut P) -> Result<T, Error>,
    ) -> Result<T, Failure> {
        if self.state != State::Up {
            self.reach(port)?;
        }
        match call(port) {
            Ok(t) => Ok(t),
            Err(e) if dead(e) => {
                self.state = State::Lost;
                self.reach(port)?;
                call(port).map_err(|e| {
                    if dead(e) {
                        self.state = State::Gone;
                    }
                    failure(e)
                })
            }
            Err(e) => Err(failure(e)),
        }
    }

    /// Connects: waits up to the grace if Lost (not at all if no task may
    /// register the service), looks up once if Gone.
    fn reach<P: Port>(&mut self, port: &mut P) -> Result<(), Failure> {
        let deadline = match self.state {
            State::Gone => 0,
            _ => port.now_us().saturating_add(self.grace_us),
        };
        let mut asked = false;
        loop {
            match port.lookup_now() {
                Ok(()) => {
                    self.state = State::Up;
                    self.absent = false;
                    return Ok(());
                }
                Err(Error::WouldBlock) if !asked && deadline > 0 => {
                    asked = true;
                    if !port.provided() {
                        self.absent = true;
                        self.state = State::Gone;
                        return Err(Failure::Gone);
                    }
                    port.pause();
                }
                Err(Error::WouldBlock) if port.now_us() < deadline => port.pause(),
                Err(_) => {
                    self.state = State::Gone;
                    return Err(Failure::Gone);
                }
            }
        }
    }
}

impl Default for Link {
    fn default() -> Link {
        Link::new()
    }
}

fn failure(e: Error) -> Failure {
    if dead(e) || e == Error::TimedOut {
        Failure::Gone
    } else {
        Failure::Io
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// A driver that registers at `up_at` (never: `None`), dies at
    /// `dies_at`, on a clock that each lookup and pause moves.
    struct Fake {
        now: u64,
        registered_at: Option<u64>,
        dies_at: Option<u64>,
        /// Registers again this long after a call found it dead (the
        /// supervisor's restart).
        back_after: Option<u64>,
        /// Lookups and calls, in order ("lookup", "call").
        log: Vec<&'static str>,
        connected: bool,
        /// Whether a task may register the service at all.
        provided: bool,
    }

    impl Fake {
        fn new(registered_at: Option<u64>) -> Fake {
            Fake {
                now: 0,
                registered_at,
                dies_at: None,
                back_after: None,
                log: Vec::new(),
                connected: false,
                provided: true,
            }
        }
        fn alive(&self) -> bool {
            self.registered_at.is_some_and(|t| t <= self.now) && self.dies_at.is_none_or(|t| t > self.now)
        }
        fn call(&mut self) -> Result<u32, Error> {
            self.log.push("call");
            self.now += 100;
            if !self.connected {
                return Err(Error::BadHandle);
            }
            if !self.alive() {
                self.connected = false;
                if let Some(b) = self.back_after {
                    self.registered_at = Some(self.now + b);
                    self.dies_at = None;
                }
                return Err(Error::PeerDied);
            }
            Ok(7)
        }
    }

    impl Port for Fake {
        fn lookup_now(&mut self) -> Result<(), Error> {
            self.log.push("lookup");
            if self.connected {
                return Ok(());
            }
            if self.alive() {
                self.connected = true;
                Ok(())
            } else {
                Err(Error::WouldBlock)
            }
        }
        fn now_us(&self) -> u64 {
            self.now
        }
        fn pause(&mut self) {
            self.now += POLL_MS * 1000;
        }
        fn provided(&mut self) -> bool {
            self.log.push("provided");
            self.provided
        }
    }

    #[test]
    fn a_driver_that_is_up_is_called_once() {
        let mut d = Fake::new(Some(0));
        let mut l = Link::new();
        assert_eq!(l.request(&mut d, Fake::call), Ok(7));
        assert_eq!(l.request(&mut d, Fake::call), Ok(7));
        assert_eq!(d.log, ["lookup", "call", "call"]);
        assert_eq!(l.state(), State::Up);
    }

    #[test]
    fn the_first_request_waits_for_a_starting_driver() {
        let mut d = Fake::new(Some(50_000));
        let mut l = Link::new();
        assert_eq!(l.request(&mut d, Fake::call), Ok(7));
        assert!(d.now >= 50_000 && d.now < GRACE_US);
    }

    #[test]
    fn no_driver_fails_within_one_grace_then_at_once() {
        let mut d = Fake::new(None);
        let mut l = Link::new();
        assert_eq!(l.request(&mut d, Fake::call), Err(Failure::Gone));
        assert!(d.now >= GRACE_US && d.now <= GRACE_US + POLL_MS * 1000, "{}", d.now);
        assert_eq!(l.state(), State::Gone);
        // Then each request is one lookup, no wait, no call.
        let (t, n) = (d.now, d.log.len());
        for _ in 0..5 {
            assert_eq!(l.request(&mut d, Fake::call), Err(Failure::Gone));
        }
        assert_eq!(d.now, t, "a request waited");
        assert_eq!(d.log[n..], ["lookup"; 5]);
    }

    #[test]
    fn no_task_that_may_register_the_service_fails_at_once() {
        // A machine without the disk: no driver was started for it.
        let mut d = Fake::new(None);
        d.provided = false;
        let mut l = Link::new();
        assert_eq!(l.request(&mut d, Fake::call), Err(Failure::Gone));
        assert_eq!(d.now, 0, "the request waited {} us", d.now);
        assert_eq!(d.log, ["lookup", "provided"]);
        assert_eq!(l.state(), State::Gone);
        assert!(l.absent());
        // Then one lookup per request, the routes not asked again.
        assert_eq!(l.request(&mut d, Fake::call), Err(Failure::Gone));
        assert_eq!(d.log[2..], ["lookup"]);
        assert_eq!(d.now, 0);
    }

    #[test]
    fn a_driver_restarted_within_the_grace_is_not_noticed() {
        let mut d = Fake::new(Some(0));
        let mut l = Link::new();
        assert_eq!(l.request(&mut d, Fake::call), Ok(7));
        // Dies during the next call, registers again 40 ms later.
        d.dies_at = Some(d.now);
        d.back_after = Some(40_000);
        let t = d.now;
        assert_eq!(l.request(&mut d, Fake::call), Ok(7));
        assert_eq!(l.state(), State::Up);
        assert!(d.now - t >= 40_000 && d.now - t < GRACE_US);
        assert_eq!(d.log.iter().filter(|e| **e == "call").count(), 3, "{:?}", d.log);
    }

    #[test]
    fn a_killed_driver_fails_the_request_within_the_grace_and_its_return_is_found() {
        let mut d = Fake::new(Some(0));
        let mut l = Link::new();
        assert_eq!(l.request(&mut d, Fake::call), Ok(7));
        d.dies_at = Some(d.now);
        let t = d.now;
        assert_eq!(l.request(&mut d, Fake::call), Err(Failure::Gone));
        assert!(d.now - t <= GRACE_US + POLL_MS * 1000 + 200);
        assert_eq!(l.state(), State::Gone);
        let t = d.now;
        assert_eq!(l.request(&mut d, Fake::call), Err(Failure::Gone));
        assert_eq!(d.now, t);
        // Back: the next request goes through, without waiting.
        d.dies_at = None;
        d.registered_at = Some(d.now);
        assert_eq!(l.request(&mut d, Fake::call), Ok(7));
        assert_eq!(d.now, t + 100);
        assert_eq!(l.state(), State::Up);
    }

    #[test]
    fn errors_the_driver_answers_are_io_and_keep_the_link() {
        let mut d = Fake::new(Some(0));
        let mut l = Link::new();
        for e in [Error::InvalidState, Error::InvalidArgument, Error::NoRights] {
            assert_eq!(l.request(&mut d, |_| Err::<(), _>(e)), Err(Failure::Io));
            assert_eq!(l.state(), State::Up);
        }
        // A driver that does not answer in the client's time: gone, but
        // not waited for again.
        assert_eq!(l.request(&mut d, |_| Err::<(), _>(Error::TimedOut)), Err(Failure::Gone));
        assert_eq!(l.state(), State::Up);
    }

    #[test]
    fn a_route_refused_is_gone_at_once() {
        struct Refused;
        impl Port for Refused {
            fn lookup_now(&mut self) -> Result<(), Error> {
                Err(Error::NoRights)
            }
            fn now_us(&self) -> u64 {
                0
            }
            fn pause(&mut self) {
                unreachable!("no wait for a refused lookup")
            }
            fn provided(&mut self) -> bool {
                unreachable!("a refused lookup is not a missing driver")
            }
        }
        let mut l = Link::new();
        assert_eq!(l.request(&mut Refused, |_| Ok(())), Err(Failure::Gone));
        assert_eq!(l.state(), State::Gone);
    }
}
