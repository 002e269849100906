//! Message layout: the register message, the IPC buffer, fault messages.

/// Message words carried in registers `x2`–`x5`.
pub const REGISTER_WORDS: usize = 4;
/// Message words the IPC buffer can carry (including the register words).
pub const BUFFER_WORDS: usize = 64;
/// Capabilities one message can carry.
pub const BUFFER_CAPS: usize = 4;

/// Message description in `x1`: bits 0–7 length in words, bits 8–10 number
/// of capabilities, bits 11–13 (a `Call`'s only) how many capabilities the
/// caller accepts in the reply ([`MessageInfo::reply_caps`]), bits 16–31 a
/// label the receiver sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MessageInfo(pub u64);

impl MessageInfo {
    pub const fn new(label: u16, words: usize, caps: usize) -> MessageInfo {
        MessageInfo(((label as u64) << 16) | (((caps & 7) as u64) << 8) | (words & 0xff) as u64)
    }

    pub const fn words(self) -> usize {
        (self.0 & 0xff) as usize
    }

    pub const fn caps(self) -> usize {
        ((self.0 >> 8) & 7) as usize
    }

    pub const fn label(self) -> u16 {
        (self.0 >> 16) as u16
    }

    /// On a `Call`: the most capabilities the caller accepts in the reply
    /// (0 to [`BUFFER_CAPS`]; 0 unless set). The kernel refuses a reply
    /// carrying more: the server's `Reply` fails with `CapsRefused` and so
    /// does the call (the caller gets none of it), so a server cannot fill
    /// its clients' capability spaces with capabilities they never asked
    /// for. Ignored on other messages; never delivered (the receiver's
    /// `MessageInfo` has these bits clear).
    pub const fn reply_caps(self) -> usize {
        ((self.0 >> 11) & 7) as usize
    }

    /// This info with [`MessageInfo::reply_caps`] set to `n` (at most
    /// [`BUFFER_CAPS`]: more is clamped).
    pub const fn with_reply_caps(self, n: usize) -> MessageInfo {
        let n = if n > BUFFER_CAPS { BUFFER_CAPS } else { n };
        MessageInfo((self.0 & !(7 << 11)) | ((n as u64) << 11))
    }

    /// Whether the kernel can deliver it: lengths within limits.
    pub const fn is_valid(self) -> bool {
        self.words() <= BUFFER_WORDS
            && self.caps() <= BUFFER_CAPS
            && self.reply_caps() <= BUFFER_CAPS
            && self.0 >> 32 == 0
    }
}

bitflags::bitflags! {
    /// Options for blocking calls, in the high bits of `x1`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct IpcFlags: u64 {
        /// Fail with `WouldBlock` instead of waiting.
        const NONBLOCK = 1 << 32;
        /// Give up after `x6` microseconds with `TimedOut`.
        const TIMEOUT = 1 << 33;
    }
}

impl IpcFlags {
    /// Split `x1` into message info and flags.
    pub fn split(x1: u64) -> (MessageInfo, IpcFlags) {
        (MessageInfo(x1 & 0xffff_ffff), IpcFlags::from_bits_truncate(x1))
    }
}

/// The per-thread IPC buffer (one page, registered with
/// `ThreadSetIpcBuffer`).
///
/// Message word `i` is in register `x(2+i)` for `i < REGISTER_WORDS` and in
/// `words[i]` otherwise: `words[..REGISTER_WORDS]` is never read or written
/// by the kernel, so an index means the same on both sides. On send, `caps`
/// lists the first `MessageInfo::caps()` handles to transfer (each needs
/// `GRANT`), with `cap_rights` the rights to keep; on receive the kernel
/// writes the handles it installed in the receiver's space into `caps` and
/// the count into the received `MessageInfo` (`cap_rights` is left as it
/// was: ask `CapInfo`). A sender without a registered buffer gets
/// `NoIpcBuffer` if the message needs one; a receiver without one gets
/// only the register words and no capabilities (the received
/// `MessageInfo` says what arrived).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IpcBuffer {
    pub words: [u64; BUFFER_WORDS],
    pub caps: [u32; BUFFER_CAPS],
    /// Rights to keep on each transferred capability (masked with what the
    /// sender holds).
    pub cap_rights: [u32; BUFFER_CAPS],
}

/// Why a thread faulted; word 0 of a fault message (label
/// [`FaultKind::LABEL`]). Words 1–3 are ESR, FAR and the faulting PC; for
/// [`FaultKind::Panic`] word 2 (FAR) is the thread's exit code, and for
/// [`FaultKind::BadSyscall`] the call number. The fault arrives as a call
/// from the faulting thread: it stays stopped until its handler replies
/// (resuming it, possibly after `ThreadRegisters`), or deletes or destroys
/// it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum FaultKind {
    /// Data abort: access to unmapped memory, or without permission.
    DataAbort = 1,
    /// Instruction abort: executing unmapped or non-executable memory.
    InstructionAbort = 2,
    /// Misaligned PC or SP, or alignment fault.
    Alignment = 3,
    /// Undefined or trapped instruction.
    UndefinedInstruction = 4,
    /// `svc` with an unknown call number.
    BadSyscall = 5,
    /// The thread panicked (reported by the user library through `exit`).
    Panic = 6,
    /// Anything else (breakpoint, FP exception, SError).
    Other = 7,
}

impl FaultKind {
    /// Label of fault messages.
    pub const LABEL: u16 = 0xfa17;

    pub fn from_word(word: u64) -> FaultKind {
        match word {
            1 => FaultKind::DataAbort,
            2 => FaultKind::InstructionAbort,
            3 => FaultKind::Alignment,
            4 => FaultKind::UndefinedInstruction,
            5 => FaultKind::BadSyscall,
            6 => FaultKind::Panic,
            _ => FaultKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_info_packs_fields() {
        let m = MessageInfo::new(0xbeef, 12, 3);
        assert_eq!((m.label(), m.words(), m.caps()), (0xbeef, 12, 3));
        assert!(m.is_valid());
        assert!(!MessageInfo::new(0, BUFFER_WORDS + 1, 0).is_valid());
        assert!(!MessageInfo::new(0, 1, 5).is_valid());
    }

    #[test]
    fn reply_caps_have_their_own_bits() {
        let m = MessageInfo::new(0xbeef, 12, 3).with_reply_caps(4);
        assert_eq!((m.label(), m.words(), m.caps(), m.reply_caps()), (0xbeef, 12, 3, 4));
        assert!(m.is_valid());
        assert_eq!(m.with_reply_caps(1).reply_caps(), 1, "replaced, not or-ed");
        assert_eq!(MessageInfo::new(0, 0, 0).with_reply_caps(7).reply_caps(), BUFFER_CAPS);
        assert!(!MessageInfo(5 << 11).is_valid(), "more than a message can carry");
    }

    #[test]
    fn flags_split_from_message_info() {
        let x1 = MessageInfo::new(1, 2, 0).0 | IpcFlags::NONBLOCK.bits();
        let (info, flags) = IpcFlags::split(x1);
        assert_eq!(info, MessageInfo::new(1, 2, 0));
        assert_eq!(flags, IpcFlags::NONBLOCK);
    }

    #[test]
    fn buffer_fits_in_a_page() {
        assert!(core::mem::size_of::<IpcBuffer>() <= crate::PAGE_SIZE);
    }
}
