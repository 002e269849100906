//! The Kestrel system-call ABI.
//!
//! This crate is the whole contract between the kernel and user space; both
//! sides depend on it and nothing else is shared. It is `no_std`, has no
//! `unsafe`, and is tested on the host.
//!
//! # Calling convention
//!
//! A system call is `svc #0` with the call number in `x8`:
//!
//! | register | on entry | on return |
//! |---|---|---|
//! | `x0` | capability handle (the object operated on) | [`Status`]: 0 or an [`Error`] code |
//! | `x1` | [`MessageInfo`] (IPC) or first extra argument | [`MessageInfo`] received, or result |
//! | `x2`–`x5` | message words 0–3, or further arguments | message words 0–3, or results |
//! | `x6` | timeout in microseconds, when [`IpcFlags::TIMEOUT`] is set | badge of the sender (IPC) |
//! | `x7` | second handle (e.g. the endpoint to wait on in `reply_recv`) | preserved |
//! | `x8` | [`Syscall`] number | preserved |
//! | `x9`–`x18` | — | preserved (restored from the thread's saved registers, so no kernel value leaks) |
//! | `x19`–`x30`, `sp` | — | preserved |
//!
//! FP/SIMD registers and `TPIDR_EL0` (the user thread pointer, 0 when a
//! thread starts; the user library keeps the thread's IPC-buffer address
//! there) are part of each thread's context and preserved across calls and
//! context switches. An unknown call number is a fault
//! ([`FaultKind::BadSyscall`]), delivered to the thread's fault handler;
//! bad arguments to a known call return an [`Error`].
//!
//! # Capabilities
//!
//! A task names kernel objects only through [`Handle`]s: indices into its
//! own capability space, with a generation so that a deleted slot's handle
//! stays invalid after the slot is reused. Every capability carries
//! [`Rights`]; derived capabilities (copy, mint, transfer) can only drop
//! rights. `revoke` deletes every capability derived from one, recursively,
//! including the memory mappings made through them.
//!
//! # Messages
//!
//! Up to [`REGISTER_WORDS`] words travel in registers (the fast path). Longer
//! messages, and capabilities to transfer, use the thread's IPC buffer
//! ([`IpcBuffer`]), a page the thread registers with
//! [`Syscall::ThreadSetIpcBuffer`]. Bulk data goes through shared memory
//! objects, never through the kernel.
#![no_std]

pub mod boot_info;
mod error;
mod ipc;
pub mod ratio;
mod rights;
mod syscall;

pub use error::{Error, Status};
pub use ipc::{FaultKind, IpcBuffer, IpcFlags, MessageInfo, BUFFER_CAPS, BUFFER_WORDS, REGISTER_WORDS};
pub use rights::Rights;
pub use syscall::{ObjectType, Syscall};

/// A task's name for one of its capabilities: slot index (low 12 bits) and
/// slot generation (high 20 bits). A handle never names another object than
/// the one it was issued for: the kernel retires a slot for good rather than
/// let its generation wrap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(transparent)]
pub struct Handle(pub u32);

impl Handle {
    /// Never a valid handle.
    pub const NULL: Handle = Handle(0);
    pub const INDEX_BITS: u32 = 12;
    pub const MAX_INDEX: u32 = (1 << Self::INDEX_BITS) - 1;

    pub const fn new(index: u32, generation: u32) -> Handle {
        Handle((generation << Self::INDEX_BITS) | (index & Self::MAX_INDEX))
    }

    pub const fn index(self) -> u32 {
        self.0 & Self::MAX_INDEX
    }

    pub const fn generation(self) -> u32 {
        self.0 >> Self::INDEX_BITS
    }

    /// From a register: handles above 32 bits are invalid, not truncated.
    pub fn from_register(value: u64) -> Option<Handle> {
        u32::try_from(value).ok().map(Handle)
    }
}

/// Page size for every mapping.
pub const PAGE_SIZE: usize = 4096;

/// Highest thread priority; 0 is the lowest (the idle threads run below it).
pub const MAX_PRIORITY: u8 = 31;

/// User virtual addresses are below this (48-bit lower half).
pub const USER_LIMIT: u64 = 1 << 47;

/// `Create` of memory, `x3` bit: the pages are physically contiguous, so
/// that a device can reach them by one physical address (DMA, see
/// [`Syscall::MemoryPhysical`]). Without it the kernel may build the object
/// from several runs of pages where memory is fragmented; the only
/// difference user space sees is that `MemoryPhysical` refuses it.
pub const MEMORY_CONTIGUOUS: u64 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_round_trips_and_rejects_wide_values() {
        let h = Handle::new(1234, 7);
        assert_eq!(h.index(), 1234);
        assert_eq!(h.generation(), 7);
        assert_eq!(Handle::from_register(h.0 as u64), Some(h));
        assert_eq!(Handle::from_register(1 << 32), None);
        assert_eq!(Handle::new(Handle::MAX_INDEX + 5, 0).index(), 4);
    }
}
