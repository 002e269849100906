//! The parent protocol: messages a task sends on its `parent` endpoint
//! (`StartInfo::parent`, badged by the parent so that it knows who speaks).
//! The kernel's own fault messages (label [`abi::FaultKind::LABEL`]) arrive
//! on the same endpoint, because the library makes it the fault handler of
//! the task's threads.
//!
//! | label | how | words | meaning |
//! |---|---|---|---|
//! | [`EXIT`] | send | `[code]` | `main` returned 0; the task is done and may be destroyed |
//! | [`REASON`] | send | text ([`crate::ipc::pack_text`]) | why the task is about to fail (panic message); a `Panic` fault follows |
//! | [`EXPECT_FAULT`] | call | `[kind, far]` | (tests) the next fault of this task is expected: kind [`abi::FaultKind`], `far` or [`ANY_ADDRESS`]; the parent replies before the test goes on |
//!
//! A task that exits with a nonzero code reports no `EXIT`: the kernel
//! turns the exit into a `Panic` fault with the code in word 2.

/// `main` returned success.
pub const EXIT: u16 = 0x7e00;
/// Text explaining a failure that follows.
pub const REASON: u16 = 0x7e01;
/// A test announces the fault it is about to cause.
pub const EXPECT_FAULT: u16 = 0x7e02;
/// `far` value of [`EXPECT_FAULT`] that matches any fault address.
pub const ANY_ADDRESS: u64 = u64::MAX;

/// Exit code of a panicking thread.
pub const PANIC_EXIT_CODE: u64 = 101;
/// Exit code when the start-up information is missing or malformed.
pub const BAD_START_EXIT_CODE: u64 = 102;
