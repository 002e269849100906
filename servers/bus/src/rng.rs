//! The bus's random numbers: a ChaCha20 generator (`rand_chacha`, a
//! cryptographically secure stream cipher RNG) seeded once with 32 bytes
//! from the `rng` service. Device ids, static and ephemeral X25519 keys
//! come from it. Noise (`clatter`) asks for its generator by type
//! (`Default`), so the state is one global, behind a lock.

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use spin::Mutex;

#[cfg(not(test))]
static STATE: Mutex<Option<ChaCha20Rng>> = Mutex::new(None);

// Host tests run in parallel threads, and each seeds its own devices: one
// generator per thread, so that no test reseeds another's mid-run.
#[cfg(test)]
std::thread_local! {
    static STATE: Mutex<Option<ChaCha20Rng>> = const { Mutex::new(None) };
}

#[cfg(not(test))]
fn state<R>(f: impl FnOnce(&Mutex<Option<ChaCha20Rng>>) -> R) -> R {
    f(&STATE)
}

#[cfg(test)]
fn state<R>(f: impl FnOnce(&Mutex<Option<ChaCha20Rng>>) -> R) -> R {
    STATE.with(f)
}

/// Seeds the generator (again: the stream restarts from this seed).
pub fn seed(seed: [u8; 32]) {
    state(|s| *s.lock() = Some(ChaCha20Rng::from_seed(seed)));
}

/// Whether [`seed`] has been called.
pub fn seeded() -> bool {
    state(|s| s.lock().is_some())
}

/// The generator, as `clatter` and `rand_core` want it. Using it before
/// [`seed`] is a bug of the task, and panics (no key is ever made from a
/// missing seed).
#[derive(Default, Clone, Copy, Debug)]
pub struct BusRng;

impl BusRng {
    fn with<R>(f: impl FnOnce(&mut ChaCha20Rng) -> R) -> R {
        state(|s| {
            f(s.lock()
                .as_mut()
                .expect("bus: the random number generator was used before it was seeded"))
        })
    }
}

impl RngCore for BusRng {
    fn next_u32(&mut self) -> u32 {
        Self::with(|r| r.next_u32())
    }

    fn next_u64(&mut self) -> u64 {
        Self::with(|r| r.next_u64())
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        Self::with(|r| r.fill_bytes(dest))
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for BusRng {}

/// A random `u64` (a device id).
pub fn u64() -> u64 {
    BusRng.next_u64()
}
