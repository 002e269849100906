//! Locks for the kernel's own state.

use spin::mutex::MutexGuard;

/// A spin lock taken by an out-of-line call: for state off the hot paths
/// (memory maps, allocators, the console), where one call at each use is
/// smaller than a copy of the acquire loop there. The object tables keep
/// `spin::Mutex` itself, inline.
pub struct ColdMutex<T>(spin::Mutex<T>);

impl<T> ColdMutex<T> {
    pub const fn new(value: T) -> Self {
        ColdMutex(spin::Mutex::new(value))
    }

    #[inline(never)]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock()
    }

    #[inline(never)]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.0.try_lock()
    }

    /// Release a lock whose holder can never finish (a panic on this CPU).
    ///
    /// # Safety
    /// As `spin::Mutex::force_unlock`: the holder must never touch the
    /// data again.
    pub unsafe fn force_unlock(&self) {
        // SAFETY: passed on from the caller.
        unsafe { self.0.force_unlock() }
    }
}
