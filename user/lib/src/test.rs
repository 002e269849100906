//! Helpers for test programs (`test-*` in the archive, run by init when
//! the kernel command line says `utest`).
//!
//! A test passes when `main` returns success and fails when it returns an
//! error, panics or faults; a test that must fault announces the fault with
//! [`expect_fault`] first (see [`crate::proto`]).

use crate::ipc::{Message, Timeout};
use crate::rt::process;
use crate::{proto, syscall, thread};
use abi::{Error, FaultKind, Handle};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Tells the supervisor that the next fault is expected: `kind`, and the
/// fault address if `far` is given. Returns once it has acknowledged.
pub fn expect_fault(kind: FaultKind, far: Option<u64>) {
    let parent = process().parent;
    assert!(parent != Handle::NULL, "expect_fault: no supervisor to tell");
    let msg = Message::with_words(proto::EXPECT_FAULT, &[kind as u64, far.unwrap_or(proto::ANY_ADDRESS)]);
    if let Err(e) = syscall::call_timeout(parent, &msg, Timeout::millis(10_000)) {
        panic!("expect_fault: supervisor did not answer: {e}");
    }
}

/// Asserts that `result` is the error `expected`.
#[track_caller]
pub fn expect_err<T: core::fmt::Debug>(what: &str, result: Result<T, Error>, expected: Error) {
    match result {
        Err(e) if e == expected => {}
        other => panic!("{what}: expected Err({expected:?}), got {other:?}"),
    }
}

/// A xorshift64* generator: fast, deterministic from its seed (tests print
/// the seed so that a failure can be replayed).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Zero is xorshift's one fixed point.
        Rng(if seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { seed })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-enough value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() >> 32) * n) >> 32
    }

    /// `true` with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}

/// Threads that revoke one capability over and over until
/// [`stop`](Revokers::stop): one per CPU, at `priority` (below the server
/// under attack: whichever CPU that server runs on, a revoke can land from
/// another one meanwhile; a revoker above it would keep it off its own CPU
/// instead). Between two revokes each spins a random count below
/// `max_spin` (0: none), so that some revokes land in the middle of a
/// request rather than all before the next one starts.
pub struct Revokers {
    stop: Arc<AtomicBool>,
    revokes: Arc<AtomicU64>,
    threads: Vec<thread::JoinHandle>,
}

impl Revokers {
    /// Starts them, revoking `cap` (`syscall::cap_revoke`: every
    /// capability derived from it goes, `cap` stays); `seed` seeds the
    /// pauses (each CPU's from `seed + cpu`).
    pub fn start(cap: Handle, priority: u8, max_spin: u64, seed: u64) -> Revokers {
        let stop = Arc::new(AtomicBool::new(false));
        let revokes = Arc::new(AtomicU64::new(0));
        let threads = (0..process().cpus as usize)
            .map(|cpu| {
                let (stop, revokes) = (stop.clone(), revokes.clone());
                thread::Builder::default()
                    .priority(priority)
                    .cpu(cpu)
                    .spawn(move || {
                        let mut rng = Rng::new(seed + cpu as u64);
                        while !stop.load(Ordering::Relaxed) {
                            if max_spin > 0 {
                                for _ in 0..rng.below(max_spin) {
                                    core::hint::spin_loop();
                                }
                            }
                            let _ = syscall::cap_revoke(cap);
                            revokes.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                    .expect("spawn a revoker")
            })
            .collect();
        Revokers { stop, revokes, threads }
    }

    /// Stops and joins them; returns how many revokes they made.
    pub fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("revoker");
        }
        self.revokes.load(Ordering::Relaxed)
    }
}

/// A 64-bit checksum of words (FNV-1a over their bytes), for messages that
/// must arrive intact.
pub fn checksum(words: &[u64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for w in words {
        for b in w.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Median of `samples` (sorts them).
pub fn median(samples: &mut [u64]) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    samples.sort_unstable();
    samples[samples.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_bounded() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            assert!(a.below(7) < 7);
            b.below(7);
        }
        let mut z = Rng::new(0);
        assert_ne!(z.next_u64(), 0);
        let hits = (0..10_000).filter(|_| a.chance(1, 4)).count();
        assert!((2000..3000).contains(&hits), "{hits}");
    }

    #[test]
    fn checksum_detects_changes() {
        assert_ne!(checksum(&[1, 2]), checksum(&[2, 1]));
        assert_eq!(checksum(&[]), 0xcbf2_9ce4_8422_2325);
    }

    #[test]
    fn median_of_samples() {
        assert_eq!(median(&mut [5, 1, 3]), 3);
        assert_eq!(median(&mut []), 0);
    }
}
