//! Errors returned in `x0`.

/// The raw `x0` of a returning system call: 0 for success, else an [`Error`].
pub type Status = u64;

/// Why a system call failed. The numeric values are the ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Error {
    /// The handle names no capability (never existed, deleted, or stale).
    BadHandle = 1,
    /// The capability is of the wrong object type for this call.
    WrongType = 2,
    /// The capability lacks a right this call needs.
    NoRights = 3,
    /// An argument is out of range, misaligned or inconsistent.
    InvalidArgument = 4,
    /// The memory pool (or the kernel) has no memory left for this.
    OutOfMemory = 5,
    /// A non-blocking call would have blocked.
    WouldBlock = 6,
    /// The timeout expired first.
    TimedOut = 7,
    /// The peer is gone: the server died before replying, or no capability
    /// able to receive on the endpoint remains.
    PeerDied = 8,
    /// The virtual range is already mapped.
    AlreadyMapped = 9,
    /// Nothing is mapped there.
    NotMapped = 10,
    /// The object is in the wrong state (e.g. starting a running thread).
    InvalidState = 11,
    /// The capability space is full.
    NoSlots = 12,
    /// The IPC buffer is missing or unmapped but the message needs it.
    NoIpcBuffer = 13,
    /// There is no caller to reply to.
    NoCaller = 14,
    /// This machine or kernel cannot do that (e.g. power control without
    /// the firmware interface for it).
    NotSupported = 15,
    /// A reply carried more capabilities than the call accepted
    /// ([`crate::MessageInfo::reply_caps`]): refused whole, to the server
    /// (`Reply`) and to the caller (`Call`).
    CapsRefused = 16,
}

impl Error {
    pub const ALL: [Error; 16] = [
        Error::BadHandle,
        Error::WrongType,
        Error::NoRights,
        Error::InvalidArgument,
        Error::OutOfMemory,
        Error::WouldBlock,
        Error::TimedOut,
        Error::PeerDied,
        Error::AlreadyMapped,
        Error::NotMapped,
        Error::InvalidState,
        Error::NoSlots,
        Error::NoIpcBuffer,
        Error::NoCaller,
        Error::NotSupported,
        Error::CapsRefused,
    ];

    /// Decode `x0`: `Ok(())` for 0, `Err` for a known code.
    pub fn check(status: Status) -> Result<(), Error> {
        if status == 0 {
            return Ok(());
        }
        Err(Self::ALL
            .iter()
            .copied()
            .find(|e| *e as u64 == status)
            .unwrap_or(Error::InvalidState))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Error::BadHandle => "bad handle",
            Error::WrongType => "wrong object type",
            Error::NoRights => "insufficient rights",
            Error::InvalidArgument => "invalid argument",
            Error::OutOfMemory => "out of memory",
            Error::WouldBlock => "would block",
            Error::TimedOut => "timed out",
            Error::PeerDied => "peer died",
            Error::AlreadyMapped => "already mapped",
            Error::NotMapped => "not mapped",
            Error::InvalidState => "invalid state",
            Error::NoSlots => "capability space full",
            Error::NoIpcBuffer => "no IPC buffer",
            Error::NoCaller => "no caller to reply to",
            Error::NotSupported => "not supported on this machine",
            Error::CapsRefused => "reply carries more capabilities than the call accepts",
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        assert_eq!(Error::check(0), Ok(()));
        for e in Error::ALL {
            assert_eq!(Error::check(e as u64), Err(e));
        }
    }
}
