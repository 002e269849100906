//! Typed wrappers, one per [`abi::Syscall`].
//!
//! Each returns `Result<_, Error>` decoded from `x0`. They are safe
//! functions: the kernel checks every handle, right and address. The one
//! hazard left to the program is removing its own memory (`unmap`,
//! `cap_delete`/`cap_revoke` of a memory capability it still uses, or
//! `task_destroy` of itself): the next access faults, and the fault goes to
//! the supervisor, as with `munmap` elsewhere.

use crate::ipc::{self, Message, Timeout};
use crate::sys::{self, Args, Ret};
use abi::{Error, Handle, MessageInfo, ObjectType, Rights, Syscall, REGISTER_WORDS};

#[inline(always)]
fn raw(number: Syscall, args: Args) -> Ret {
    // SAFETY: every wrapper in this module passes arguments whose effect on
    // this task's memory is what the caller asked for (see module docs);
    // pointers passed to the kernel come from live Rust references.
    unsafe { sys::call(number, &args) }
}

#[inline(always)]
fn check(number: Syscall, args: Args) -> Result<Ret, Error> {
    let r = raw(number, args);
    Error::check(r[0]).map(|()| r)
}

fn h(handle: Handle) -> u64 {
    handle.0 as u64
}

fn handle_out(word: u64) -> Result<Handle, Error> {
    Handle::from_register(word).ok_or(Error::InvalidState)
}

/// Enters and leaves the kernel; measures the bare cost of a call.
#[inline(always)]
pub fn null() -> Result<(), Error> {
    Error::check(sys::null_call())
}

/// Gives the CPU to the next ready thread of the same priority.
pub fn yield_now() {
    let _ = raw(Syscall::Yield, [0; 8]);
}

/// Sleeps at least `micros` microseconds.
pub fn sleep(micros: u64) {
    let _ = raw(Syscall::Sleep, [0, micros, 0, 0, 0, 0, 0, 0]);
}

/// Sleeps at least `ms` milliseconds.
pub fn sleep_ms(ms: u64) {
    sleep(ms.saturating_mul(1000))
}

/// Ends the calling thread with `code` (nonzero: reported to its fault
/// handler as a `Panic` fault). Programs normally return from `main` or
/// call [`crate::exit`] instead, which also tell the parent.
pub fn thread_exit(code: u64) -> ! {
    sys::exit_thread(code)
}

/// Microseconds since boot and the counter's frequency (ticks per second).
pub fn clock() -> (u64, u64) {
    let r = raw(Syscall::Clock, [0; 8]);
    (r[1], r[2])
}

/// The counter's frequency as the kernel scales it (from the first
/// [`clock`] call of [`now_us`]; 0 until then).
static COUNTER_HZ: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Microseconds since boot: the same value as [`clock`]'s, read without a
/// system call (the counter is readable at EL0, and scaled by the
/// frequency the kernel uses, asked once: `abi::Syscall::Clock`).
pub fn now_us() -> u64 {
    use core::sync::atomic::Ordering;
    let hz = COUNTER_HZ.load(Ordering::Relaxed);
    if hz == 0 || cfg!(not(all(target_arch = "aarch64", target_os = "none"))) {
        let (us, hz) = clock();
        COUNTER_HZ.store(hz, Ordering::Relaxed);
        return us;
    }
    abi::ratio::scale(crate::arch::counter(), 1_000_000, hz)
}

/// Most bytes one `ConsoleWrite` takes.
pub const CONSOLE_CHUNK: usize = 256;

/// Writes `bytes` to the kernel console, in chunks of at most 256 bytes.
pub fn console_write(console: Handle, bytes: &[u8]) -> Result<(), Error> {
    for chunk in bytes.chunks(CONSOLE_CHUNK) {
        check(
            Syscall::ConsoleWrite,
            [h(console), chunk.as_ptr() as u64, chunk.len() as u64, 0, 0, 0, 0, 0],
        )?;
    }
    Ok(())
}

/// The shared shape of the IPC calls: message in x1-x5 (+ buffer), flags,
/// timeout in x6, second handle in x7; returns the received message and
/// the badge (x6).
fn ipc(number: Syscall, x0: u64, msg: Option<&Message>, timeout: Timeout, x7: u64) -> Result<(Message, u64), Error> {
    let mut m = Message::new(0);
    let badge = ipc_into(number, x0, msg, timeout, x7, &mut m)?;
    Ok((m, badge))
}

/// [`ipc`] receiving into `out` ([`ipc::decode_into`]; left as it was on
/// an error); returns the badge.
fn ipc_into(
    number: Syscall,
    x0: u64,
    msg: Option<&Message>,
    timeout: Timeout,
    x7: u64,
    out: &mut Message,
) -> Result<u64, Error> {
    let (flags, x6) = timeout.encode();
    let r = ipc::with_buffer(|buffer| {
        let (x1, w) = match msg {
            Some(m) => ipc::encode(m, buffer),
            None => (0, [0; REGISTER_WORDS]),
        };
        raw(number, [x0, x1 | flags, w[0], w[1], w[2], w[3], x6, x7])
    });
    Error::check(r[0])?;
    let regs = [r[2], r[3], r[4], r[5]];
    ipc::with_buffer(|b| ipc::decode_into(r[1], &regs, b.map(|b| &*b), out));
    Ok(r[6])
}

/// Sends `msg` on endpoint `ep` and waits for the reply; returns it and
/// the badge word (0 for replies).
pub fn call(ep: Handle, msg: &Message) -> Result<(Message, u64), Error> {
    call_timeout(ep, msg, Timeout::Forever)
}

/// [`call`] with a timeout covering the whole call.
pub fn call_timeout(ep: Handle, msg: &Message, timeout: Timeout) -> Result<(Message, u64), Error> {
    ipc(Syscall::Call, h(ep), Some(msg), timeout, 0)
}

/// Replies to the last caller this thread received from.
pub fn reply(msg: &Message) -> Result<(), Error> {
    ipc(Syscall::Reply, 0, Some(msg), Timeout::Forever, 0).map(drop)
}

/// Replies with `msg` (if there is a caller), then receives on `ep`:
/// returns the next message and its sender's badge.
pub fn reply_recv(ep: Handle, msg: &Message, timeout: Timeout) -> Result<(Message, u64), Error> {
    ipc(Syscall::ReplyRecv, 0, Some(msg), timeout, h(ep))
}

/// [`reply_recv`] receiving into `out` (no new [`Message`] made and
/// copied; `out` is left as it was on an error); returns the badge.
pub fn reply_recv_into(ep: Handle, msg: &Message, timeout: Timeout, out: &mut Message) -> Result<u64, Error> {
    ipc_into(Syscall::ReplyRecv, 0, Some(msg), timeout, h(ep), out)
}

/// [`recv`] receiving into `out` (as [`reply_recv_into`]).
pub fn recv_into(ep: Handle, timeout: Timeout, out: &mut Message) -> Result<u64, Error> {
    ipc_into(Syscall::Recv, h(ep), None, timeout, 0, out)
}

/// Sends `msg` on `ep` without waiting for a reply (it still waits for a
/// receiver unless `timeout` says otherwise).
pub fn send(ep: Handle, msg: &Message, timeout: Timeout) -> Result<(), Error> {
    ipc(Syscall::Send, h(ep), Some(msg), timeout, 0).map(drop)
}

/// Receives a message on `ep`; returns it and the sender's badge.
pub fn recv(ep: Handle, timeout: Timeout) -> Result<(Message, u64), Error> {
    ipc(Syscall::Recv, h(ep), None, timeout, 0)
}

/// Register-only call: no IPC buffer access, the fast path. `words` are
/// x2-x5; returns the reply's info and words.
#[inline(always)]
pub fn call_fast(ep: Handle, info: MessageInfo, words: [u64; 4]) -> Result<(MessageInfo, [u64; 4]), Error> {
    let r = raw(
        Syscall::Call,
        [h(ep), info.0, words[0], words[1], words[2], words[3], 0, 0],
    );
    Error::check(r[0]).map(|()| (MessageInfo(r[1]), [r[2], r[3], r[4], r[5]]))
}

/// [`call_fast`] with a timeout covering the whole call (the kernel's
/// fast path takes timed calls too).
#[inline(always)]
pub fn call_fast_timeout(
    ep: Handle,
    info: MessageInfo,
    words: [u64; 4],
    timeout: Timeout,
) -> Result<(MessageInfo, [u64; 4]), Error> {
    let (flags, x6) = timeout.encode();
    let r = raw(
        Syscall::Call,
        [h(ep), info.0 | flags, words[0], words[1], words[2], words[3], x6, 0],
    );
    Error::check(r[0]).map(|()| (MessageInfo(r[1]), [r[2], r[3], r[4], r[5]]))
}

/// A call of a register-only request (`label` and `words`, at most
/// [`REGISTER_WORDS`], no capabilities) whose reply carries words only (no
/// capability: the call accepts none), for hot paths: no [`Message`] is
/// built, zeroed or copied (one is about 600 bytes). The reply's words are
/// copied into `out` (from the registers, then the IPC buffer; cut at
/// `out`'s length); returns the reply's label and its length in words
/// (which may exceed `out`'s). Panics if `words` is too long (a bug).
pub fn call_words(ep: Handle, label: u16, words: &[u64], out: &mut [u64]) -> Result<(u16, usize), Error> {
    assert!(words.len() <= REGISTER_WORDS, "a register-only request");
    let mut w = [0u64; REGISTER_WORDS];
    w[..words.len()].copy_from_slice(words);
    let (info, regs) = call_fast(ep, MessageInfo::new(label, words.len(), 0), w)?;
    let (info, _) = abi::IpcFlags::split(info.0);
    let len = info.words().min(abi::BUFFER_WORDS);
    let r = len.min(out.len()).min(REGISTER_WORDS);
    out[..r].copy_from_slice(&regs[..r]);
    if len <= REGISTER_WORDS {
        return Ok((info.label(), len));
    }
    let len = ipc::with_buffer(|b| match b {
        Some(b) => {
            let n = len.min(out.len());
            if n > REGISTER_WORDS {
                out[REGISTER_WORDS..n].copy_from_slice(&b.words[REGISTER_WORDS..n]);
            }
            len
        }
        // No IPC buffer: the kernel had nowhere to put the rest (as
        // `ipc::decode`).
        None => REGISTER_WORDS,
    });
    Ok((info.label(), len))
}

/// Register-only reply-and-receive (the fast path of a server loop);
/// returns the next request's info, words and badge.
#[inline(always)]
pub fn reply_recv_fast(ep: Handle, info: MessageInfo, words: [u64; 4]) -> Result<(MessageInfo, [u64; 4], u64), Error> {
    let r = raw(
        Syscall::ReplyRecv,
        [0, info.0, words[0], words[1], words[2], words[3], 0, h(ep)],
    );
    Error::check(r[0]).map(|()| (MessageInfo(r[1]), [r[2], r[3], r[4], r[5]], r[6]))
}

/// Register-only receive.
#[inline(always)]
pub fn recv_fast(ep: Handle) -> Result<(MessageInfo, [u64; 4], u64), Error> {
    let r = raw(Syscall::Recv, [h(ep), 0, 0, 0, 0, 0, 0, 0]);
    Error::check(r[0]).map(|()| (MessageInfo(r[1]), [r[2], r[3], r[4], r[5]], r[6]))
}

/// ORs `bits` into notification `n` and wakes a waiter.
#[inline(always)]
pub fn signal(n: Handle, bits: u64) -> Result<(), Error> {
    check(Syscall::Signal, [h(n), bits, 0, 0, 0, 0, 0, 0]).map(drop)
}

/// Waits until some bits of notification `n` are set; returns and clears them.
#[inline(always)]
pub fn wait(n: Handle, timeout: Timeout) -> Result<u64, Error> {
    let (flags, x6) = timeout.encode();
    check(Syscall::Wait, [h(n), flags, 0, 0, 0, 0, x6, 0]).map(|r| r[1])
}

/// Copies capability `cap` with `rights` (masked by those held) into a new
/// slot of this task.
pub fn cap_copy(cap: Handle, rights: Rights) -> Result<Handle, Error> {
    check(Syscall::CapCopy, [h(cap), rights.bits() as u64, 0, 0, 0, 0, 0, 0]).and_then(|r| handle_out(r[1]))
}

/// Like [`cap_copy`], and sets `badge` (unbadged endpoints and
/// notifications only).
pub fn cap_mint(cap: Handle, rights: Rights, badge: u64) -> Result<Handle, Error> {
    check(Syscall::CapMint, [h(cap), rights.bits() as u64, badge, 0, 0, 0, 0, 0]).and_then(|r| handle_out(r[1]))
}

/// Deletes a capability (and the mappings made through it).
pub fn cap_delete(cap: Handle) -> Result<(), Error> {
    check(Syscall::CapDelete, [h(cap), 0, 0, 0, 0, 0, 0, 0]).map(drop)
}

/// Deletes every capability derived from `cap`, recursively, with their
/// mappings; `cap` itself stays.
pub fn cap_revoke(cap: Handle) -> Result<(), Error> {
    check(Syscall::CapRevoke, [h(cap), 0, 0, 0, 0, 0, 0, 0]).map(drop)
}

/// What [`cap_info`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapInfo {
    /// `None` for a type number this library does not know.
    pub object: Option<ObjectType>,
    pub rights: Rights,
    pub badge: u64,
    /// Pool: bytes left; memory: bytes.
    pub size: u64,
}

pub fn cap_info(cap: Handle) -> Result<CapInfo, Error> {
    check(Syscall::CapInfo, [h(cap), 0, 0, 0, 0, 0, 0, 0]).map(|r| CapInfo {
        object: ObjectType::from_word(r[1]),
        rights: Rights::from_bits_truncate(r[2] as u32),
        badge: r[3],
        size: r[4],
    })
}

/// Creates an object of type `ty` from `pool` (`size`: bytes for a pool,
/// pages for memory, else 0).
pub fn create(pool: Handle, ty: ObjectType, size: u64) -> Result<Handle, Error> {
    check(Syscall::Create, [h(pool), ty as u64, size, 0, 0, 0, 0, 0]).and_then(|r| handle_out(r[1]))
}

/// Creates a memory object of `pages` zeroed pages from `pool` with
/// `flags` ([`abi::MEMORY_CONTIGUOUS`] for memory a device reaches by
/// DMA, see [`memory_physical`]).
pub fn create_memory(pool: Handle, pages: u64, flags: u64) -> Result<Handle, Error> {
    check(
        Syscall::Create,
        [h(pool), ObjectType::Memory as u64, pages, flags, 0, 0, 0, 0],
    )
    .and_then(|r| handle_out(r[1]))
}

/// Maps `pages` pages of memory or device object `mem`, from page
/// `page_offset`, into `task` at `vaddr` with `rights`
/// (READ/WRITE/EXECUTE, never W+X).
pub fn map(task: Handle, mem: Handle, pages: u64, page_offset: u64, vaddr: u64, rights: Rights) -> Result<(), Error> {
    check(
        Syscall::Map,
        [h(task), h(mem), pages, page_offset, vaddr, rights.bits() as u64, 0, 0],
    )
    .map(drop)
}

/// Unmaps `pages` pages at `vaddr` from `task`.
pub fn unmap(task: Handle, vaddr: u64, pages: u64) -> Result<(), Error> {
    check(Syscall::Unmap, [h(task), vaddr, pages, 0, 0, 0, 0, 0]).map(drop)
}

/// Physical address and size of a memory object (for DMA): device
/// memory, or RAM made with [`abi::MEMORY_CONTIGUOUS`] (else
/// `InvalidState`).
pub fn memory_physical(mem: Handle) -> Result<(u64, u64), Error> {
    check(Syscall::MemoryPhysical, [h(mem), 0, 0, 0, 0, 0, 0, 0]).map(|r| (r[1], r[2]))
}

/// Copies `buf.len()` bytes of memory object `mem`, from its byte
/// `offset`, into `buf` ([`Syscall::MemoryRead`]): needs `READ` on `mem`,
/// no mapping of it. A server reads a client's memory this way: the kernel
/// checks the capability as it copies, so a client that deletes or revokes
/// it meanwhile gets the call failed (`BadHandle`, `InvalidState`), never
/// the server faulted. `InvalidArgument` for a range past the object,
/// `WrongType` for device memory. After an error, `buf` may hold part of
/// the bytes.
pub fn memory_read(mem: Handle, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
    let args = [h(mem), offset, buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0, 0, 0];
    check(Syscall::MemoryRead, args).map(drop)
}

/// Copies `data` into memory object `mem` at its byte `offset`
/// ([`Syscall::MemoryWrite`]): needs `WRITE` on `mem`, no mapping of it.
/// Errors as for [`memory_read`]; after one, part of `data` may be in the
/// object.
pub fn memory_write(mem: Handle, offset: u64, data: &[u8]) -> Result<(), Error> {
    let args = [h(mem), offset, data.as_ptr() as u64, data.len() as u64, 0, 0, 0, 0];
    check(Syscall::MemoryWrite, args).map(drop)
}

/// A rectangle of a memory object or of the caller's memory: `rows` rows
/// of `len` bytes, `stride` bytes apart (for
/// [`memory_read_rows`] and [`memory_write_rows`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rows {
    pub rows: usize,
    pub len: usize,
    /// The object's stride (from one row's start to the next one's).
    pub object_stride: u64,
    /// The caller's buffer's stride.
    pub buf_stride: usize,
}

impl Rows {
    /// Whether rows of `buf_stride` bytes apart from `buf`'s start stay
    /// inside a buffer of `buf_len` bytes.
    fn fits(&self, buf_len: usize) -> bool {
        if self.rows > u32::MAX as usize {
            return false;
        }
        self.rows == 0
            || self.len == 0
            || (self.rows - 1)
                .checked_mul(self.buf_stride)
                .and_then(|x| x.checked_add(self.len))
                .is_some_and(|end| end <= buf_len)
    }
}

/// Copies `shape.rows` rows of `shape.len` bytes of memory object
/// `mem`, from its byte `offset` on, `shape.object_stride` bytes apart,
/// into `buf` at rows `shape.buf_stride` bytes apart from its start, in
/// one call ([`Syscall::MemoryReadRows`]): a rectangle of a client's
/// buffer. Needs `READ` on `mem`, no mapping of it. Errors as
/// [`memory_read`]'s (`InvalidArgument` also for rows past `buf`, or
/// 2^32 rows or more, refused before the call); after one, `buf` may hold part of the rows.
pub fn memory_read_rows(mem: Handle, offset: u64, buf: &mut [u8], shape: Rows) -> Result<(), Error> {
    if !shape.fits(buf.len()) {
        return Err(Error::InvalidArgument);
    }
    let args = [
        h(mem),
        offset,
        buf.as_mut_ptr() as u64,
        shape.len as u64,
        shape.rows as u64,
        shape.object_stride,
        shape.buf_stride as u64,
        0,
    ];
    check(Syscall::MemoryReadRows, args).map(drop)
}

/// Copies the rows of `data` described by `shape` into memory object `mem`
/// from its byte `offset` on ([`Syscall::MemoryWriteRows`]): needs
/// `WRITE` on `mem`, no mapping of it. Errors as for [`memory_read_rows`];
/// after one, part of the rows may be in the object.
pub fn memory_write_rows(mem: Handle, offset: u64, data: &[u8], shape: Rows) -> Result<(), Error> {
    if !shape.fits(data.len()) {
        return Err(Error::InvalidArgument);
    }
    let args = [
        h(mem),
        offset,
        data.as_ptr() as u64,
        shape.len as u64,
        shape.rows as u64,
        shape.object_stride,
        shape.buf_stride as u64,
        0,
    ];
    check(Syscall::MemoryWriteRows, args).map(drop)
}

/// A device-region capability for `pages` pages of physical memory at
/// `physical` that the device tree does not describe (not RAM, not the
/// interrupt controller), charged to `pool`; `system` is the console
/// capability with MANAGE (init's).
pub fn device_memory(pool: Handle, system: Handle, physical: u64, pages: u64) -> Result<Handle, Error> {
    check(Syscall::DeviceMemory, [h(pool), h(system), physical, pages, 0, 0, 0, 0]).and_then(|r| handle_out(r[1]))
}

/// Creates a (stopped) thread in `task` from `pool`: it will start at
/// `entry` with `sp` and `x0 = arg`, at `priority`.
pub fn thread_create(pool: Handle, task: Handle, entry: u64, sp: u64, arg: u64, priority: u8) -> Result<Handle, Error> {
    check(
        Syscall::ThreadCreate,
        [h(pool), h(task), entry, sp, arg, priority as u64, 0, 0],
    )
    .and_then(|r| handle_out(r[1]))
}

/// Starts or resumes a thread.
pub fn thread_resume(thread: Handle) -> Result<(), Error> {
    check(Syscall::ThreadResume, [h(thread), 0, 0, 0, 0, 0, 0, 0]).map(drop)
}

/// Stops a thread (a blocked call is abandoned).
pub fn thread_suspend(thread: Handle) -> Result<(), Error> {
    check(Syscall::ThreadSuspend, [h(thread), 0, 0, 0, 0, 0, 0, 0]).map(drop)
}

/// Sets a thread's priority and CPU affinity (`None`: any CPU).
pub fn thread_configure(thread: Handle, priority: u8, cpu: Option<usize>) -> Result<(), Error> {
    let affinity = cpu.map_or(u64::MAX, |c| c as u64);
    check(
        Syscall::ThreadConfigure,
        [h(thread), priority as u64, affinity, 0, 0, 0, 0, 0],
    )
    .map(drop)
}

/// Sends `thread`'s faults to endpoint `ep` (whose badge names the thread).
pub fn thread_set_fault_handler(thread: Handle, ep: Handle) -> Result<(), Error> {
    check(Syscall::ThreadSetFaultHandler, [h(thread), h(ep), 0, 0, 0, 0, 0, 0]).map(drop)
}

/// Registers the calling thread's IPC buffer. The library does this at
/// thread start; use [`crate::ipc::buffer_address`] to find it.
pub fn thread_set_ipc_buffer(address: u64) -> Result<(), Error> {
    check(Syscall::ThreadSetIpcBuffer, [0, address, 0, 0, 0, 0, 0, 0]).map(drop)
}

/// A stopped thread's PC and SP.
pub fn thread_registers(thread: Handle) -> Result<(u64, u64), Error> {
    check(Syscall::ThreadRegisters, [h(thread), 0, 0, 0, 0, 0, 0, 0]).map(|r| (r[3], r[4]))
}

/// Sets a stopped thread's PC and SP (to restart it elsewhere).
pub fn thread_set_registers(thread: Handle, pc: u64, sp: u64) -> Result<(), Error> {
    check(Syscall::ThreadRegisters, [h(thread), 0, 1, pc, sp, 0, 0, 0]).map(drop)
}

/// What a thread is doing, as [`thread_info`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadState {
    Running,
    /// Waiting for its turn on its CPU.
    Ready,
    /// In IPC, waiting on a notification or sleeping.
    Blocked,
    /// Suspended, or not started yet.
    Suspended,
    /// Faulted: waiting for its fault handler.
    Faulted,
    Dead,
}

impl ThreadState {
    /// Decodes [`Syscall::ThreadInfo`]'s `x1`.
    pub fn from_word(word: u64) -> Option<ThreadState> {
        Some(match word {
            0 => ThreadState::Running,
            1 => ThreadState::Ready,
            2 => ThreadState::Blocked,
            3 => ThreadState::Suspended,
            4 => ThreadState::Faulted,
            5 => ThreadState::Dead,
            _ => return None,
        })
    }
}

/// What [`thread_info`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadInfo {
    /// `None` for a state number this library does not know.
    pub state: Option<ThreadState>,
    /// CPU time used, up to now.
    pub cpu_micros: u64,
    pub priority: u8,
    /// The CPU it runs on, or belongs to (where it last ran unless moved).
    pub cpu: usize,
}

/// A thread's state, CPU time, priority and CPU.
pub fn thread_info(thread: Handle) -> Result<ThreadInfo, Error> {
    check(Syscall::ThreadInfo, [h(thread), 0, 0, 0, 0, 0, 0, 0]).map(|r| ThreadInfo {
        state: ThreadState::from_word(r[1]),
        cpu_micros: r[2],
        priority: r[3] as u8,
        cpu: r[4] as usize,
    })
}

/// Copies this task's capability `cap` (needs GRANT) with `rights` into
/// `task`; returns its handle there.
pub fn task_install(task: Handle, cap: Handle, rights: Rights) -> Result<Handle, Error> {
    check(
        Syscall::TaskInstall,
        [h(task), h(cap), rights.bits() as u64, 0, 0, 0, 0, 0],
    )
    .and_then(|r| handle_out(r[1]))
}

/// Destroys a task: its threads, mappings and capabilities.
pub fn task_destroy(task: Handle) -> Result<(), Error> {
    check(Syscall::TaskDestroy, [h(task), 0, 0, 0, 0, 0, 0, 0]).map(drop)
}

/// What a task is doing, as [`task_info`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// A thread runs or is ready to.
    Running,
    /// No thread can run; some wait (IPC, notification, sleep).
    Blocked,
    /// Every thread is suspended, faulted or not started (or it has none).
    Stopped,
    /// Ended or destroyed.
    Dead,
}

impl TaskState {
    /// Decodes [`Syscall::TaskInfo`]'s `x3`.
    pub fn from_word(word: u64) -> Option<TaskState> {
        Some(match word {
            0 => TaskState::Running,
            1 => TaskState::Blocked,
            2 => TaskState::Stopped,
            3 => TaskState::Dead,
            _ => return None,
        })
    }
}

/// What [`task_info`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskInfo {
    /// CPU time of all its threads, exited ones included, up to now.
    pub cpu_micros: u64,
    /// Live threads.
    pub threads: u64,
    /// `None` for a state number this library does not know.
    pub state: Option<TaskState>,
}

/// A task's CPU time, thread count and state (needs MANAGE).
pub fn task_info(task: Handle) -> Result<TaskInfo, Error> {
    check(Syscall::TaskInfo, [h(task), 0, 0, 0, 0, 0, 0, 0]).map(|r| TaskInfo {
        cpu_micros: r[1],
        threads: r[2],
        state: TaskState::from_word(r[3]),
    })
}

/// Delivers interrupt `irq` as `bits` on notification `n`.
pub fn irq_bind(irq: Handle, n: Handle, bits: u64) -> Result<(), Error> {
    check(Syscall::IrqBind, [h(irq), h(n), bits, 0, 0, 0, 0, 0]).map(drop)
}

/// Makes an interrupt object for SPI `intid`, charged to `pool`, with
/// `system` (init's console capability, `MANAGE`) as the authority.
pub fn irq_create(pool: Handle, system: Handle, intid: u32) -> Result<Handle, Error> {
    check(Syscall::IrqCreate, [h(pool), h(system), intid as u64, 0, 0, 0, 0, 0]).and_then(|r| handle_out(r[1]))
}

/// Unmasks `irq` after handling it.
pub fn irq_ack(irq: Handle) -> Result<(), Error> {
    check(Syscall::IrqAck, [h(irq), 0, 0, 0, 0, 0, 0, 0]).map(drop)
}

/// Kernel counters (for leak tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelStats {
    pub objects: u64,
    pub free_bytes: u64,
    pub heap_used: u64,
}

/// Reads the kernel counters; `counters` is the counters capability with
/// `READ` ([`crate::Process::counters`]).
pub fn kernel_stats(counters: Handle) -> Result<KernelStats, Error> {
    check(Syscall::KernelStats, [h(counters), 0, 0, 0, 0, 0, 0, 0]).map(|r| KernelStats {
        objects: r[1],
        free_bytes: r[2],
        heap_used: r[3],
    })
}

/// What [`system_control`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum SystemOp {
    PowerOff = 0,
    Reboot = 1,
    /// Test image only: the kernel's self-check (see [`self_check`]).
    SelfCheck = 2,
    /// Test image only: the longest interrupts-masked stretch (see
    /// [`masked_max`]).
    MaskedMax = 3,
}

/// Test image only, under QEMU `-icount`: the longest stretch, in
/// instructions, that any CPU ran with interrupts masked since the last
/// call (which starts a new measurement). `NotSupported` where the kernel
/// cannot count instructions (no `-icount`) and in the production image.
pub fn masked_max() -> Result<u64, Error> {
    let r = raw(
        Syscall::SystemControl,
        [0, SystemOp::MaskedMax as u64, 0, 0, 0, 0, 0, 0],
    );
    Error::check(r[0]).map(|_| r[1])
}

/// Test image only: the kernel checks that its tables agree (pool charges
/// add up, mappings name live objects, the derivation tree's links agree,
/// no ready thread is off the run queues). `InvalidState` if they do not
/// (the kernel logs why); `NotSupported` in the production image.
pub fn self_check() -> Result<(), Error> {
    let r = raw(
        Syscall::SystemControl,
        [0, SystemOp::SelfCheck as u64, 0, 0, 0, 0, 0, 0],
    );
    Error::check(r[0]).map(drop)
}

/// Powers the machine off or reboots it; needs the console capability
/// with MANAGE (init's). Returns only if refused: `NoRights`,
/// `NotSupported` (no PSCI, e.g. on a Raspberry Pi 4), ...
pub fn system_control(console: Handle, op: SystemOp) -> Error {
    let r = raw(Syscall::SystemControl, [h(console), op as u64, 0, 0, 0, 0, 0, 0]);
    Error::check(r[0]).err().unwrap_or(Error::InvalidState)
}
