//! System-call numbers (`x8`) and what each one takes and returns.
//!
//! Notation: `x0 = h: T [R]` means `x0` holds a handle to an object of type
//! `T` whose capability must carry rights `R`. Every call may fail with
//! `BadHandle`, `WrongType` or `NoRights` for its handles; other errors are
//! listed per call.

/// Kernel object types, as reported by [`Syscall::CapInfo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum ObjectType {
    /// A budget of kernel memory objects are created from.
    Pool = 1,
    /// An address space plus a capability space: what a program runs in.
    Task = 2,
    Thread = 3,
    /// Synchronous IPC rendezvous.
    Endpoint = 4,
    /// Asynchronous signal bits (IRQs, timers, events).
    Notification = 5,
    /// Physical pages that can be mapped, shared or granted.
    Memory = 6,
    /// An MMIO range from the device tree, mapped uncached.
    DeviceRegion = 7,
    /// One interrupt line, bound to a notification.
    Irq = 8,
    /// The kernel's debug console (log output).
    Console = 9,
    /// The counters: with `READ`, the kernel's statistics
    /// ([`Syscall::KernelStats`]) and the CPU's cycle counter at EL0. Init
    /// holds it and hands it only to the programs that measure (the
    /// benchmarks, some tests).
    ///
    /// The cycle counter (`mrs xN, pmccntr_el0`; under QEMU `-icount` it
    /// counts executed instructions): EL0 has no access of its own to the
    /// PMU (`PMUSERENR_EL0` is 0), so every PMU register access traps. The
    /// kernel carries out this read, and one of event counter 0 (`mrs xN,
    /// pmevcntr0_el0`, 32 bits, counting instructions retired: PMU event
    /// 0x08, EL0 and EL1), into `x0`-`x18` or `x30`, for a
    /// task that holds a capability to the counters with `READ` at the time
    /// of the read; any other PMU access (a write, another register,
    /// another destination register, a task without it) is an
    /// undefined-instruction fault. A read costs a trap: measure
    /// differences and subtract the cost of two reads back to back.
    Counters = 10,
}

impl ObjectType {
    pub fn from_word(word: u64) -> Option<ObjectType> {
        Some(match word {
            1 => ObjectType::Pool,
            2 => ObjectType::Task,
            3 => ObjectType::Thread,
            4 => ObjectType::Endpoint,
            5 => ObjectType::Notification,
            6 => ObjectType::Memory,
            7 => ObjectType::DeviceRegion,
            8 => ObjectType::Irq,
            9 => ObjectType::Console,
            10 => ObjectType::Counters,
            _ => return None,
        })
    }
}

macro_rules! syscalls {
    ($($(#[$doc:meta])* $name:ident = $num:literal,)*) => {
        /// A system-call number.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u64)]
        pub enum Syscall {
            $($(#[$doc])* $name = $num,)*
        }

        impl Syscall {
            /// Every call, for tests and fuzzing.
            pub const ALL: &'static [Syscall] = &[$(Syscall::$name,)*];

            /// Decode `x8`; `None` is a [`crate::FaultKind::BadSyscall`].
            pub fn from_number(n: u64) -> Option<Syscall> {
                match n {
                    $($num => Some(Syscall::$name),)*
                    _ => None,
                }
            }
        }
    };
}

syscalls! {
    /// Does nothing; returns 0. Measures the cost of entering the kernel.
    Null = 0,
    /// Give the CPU to the next ready thread of the same priority.
    Yield = 1,
    /// Sleep `x1` microseconds.
    Sleep = 2,
    /// End the calling thread with code `x1`. If it was its task's last
    /// thread, the task ends. A thread with a fault handler that exits with
    /// a nonzero code is reported to it as a [`crate::FaultKind::Panic`]
    /// fault instead (the user library's panic handler does this).
    ThreadExit = 3,
    /// `x1` = microseconds since boot, `x2` = counter ticks per second
    /// (the frequency the kernel scales by: `CNTFRQ_EL0`, or the device
    /// tree's `clock-frequency` where that overrides it). EL0 may read the
    /// counter itself (`CNTPCT_EL0`; the kernel sets `CNTKCTL_EL1.EL0PCTEN`
    /// on every CPU): `x1` is [`crate::ratio::scale`]`(CNTPCT_EL0,
    /// 1_000_000, x2)`, which the user library's `now_us` computes without
    /// a system call.
    Clock = 4,

    /// Write bytes `x1..x1+x2` (at most 256) of the caller's memory to the
    /// kernel console. `x0 = h: Console [WRITE]`. Errors: `InvalidArgument`
    /// (length), `NotMapped` (bad buffer).
    ///
    /// A line holds one writer's text: if another task (or the kernel's log)
    /// left the current line unfinished, the kernel starts a new line before
    /// this task's bytes. A task may finish its own line over several calls.
    ConsoleWrite = 5,

    /// Send a message and wait for the reply. `x0 = h: Endpoint [SEND]`.
    /// The server sees the capability's badge. A timeout or `NONBLOCK`
    /// covers the whole call (both the send and the wait for the reply).
    /// Returns the reply like `Recv` (badge `x6` = 0). The reply may carry
    /// at most [`crate::MessageInfo::reply_caps`] capabilities (bits 11–13
    /// of `x1`, 0 unless set): one with more is refused, and the call
    /// fails with `CapsRefused`. Errors: `PeerDied`, `TimedOut`,
    /// `WouldBlock`, `InvalidArgument` (message info), `NoIpcBuffer`,
    /// `CapsRefused`.
    Call = 10,
    /// Reply to the thread whose call this thread received last (one-shot)
    /// with the message in `x1`–`x5` (and the IPC buffer); `x0` is ignored.
    /// Never blocks. Errors: `NoCaller` (none, or it died or gave up),
    /// `CapsRefused` (more capabilities than the call accepts: the caller
    /// gets the same error, no capability moves, and the call is over).
    Reply = 11,
    /// Reply (if there is a caller), then receive on `x7 = h: Endpoint
    /// [RECEIVE]`. The server loop's one call per request. `x0` is ignored;
    /// flags in `x1` apply to the receive; a failed reply (no caller, or
    /// refused like `Reply`'s: the caller still learns why) is not an
    /// error. Returns like `Recv`.
    ReplyRecv = 12,
    /// Send without waiting for a reply. `x0 = h: Endpoint [SEND]`.
    Send = 13,
    /// Wait for a message on `x0 = h: Endpoint [RECEIVE]` (`x1`: only
    /// [`crate::IpcFlags`]); returns it with the sender's badge in `x6`.
    /// If the sender used `Call`, this thread becomes its replier.
    Recv = 14,

    /// OR `x1` into the notification's bits and wake a waiter.
    /// `x0 = h: Notification [SEND]`.
    Signal = 20,
    /// Wait until some bits are set; returns them in `x1` and clears them.
    /// `x0 = h: Notification [RECEIVE]`; `x1` holds only
    /// [`crate::IpcFlags`], `x6` the timeout, as for IPC.
    Wait = 21,

    /// Copy a capability with rights `x1 & held` into a new slot; returns the
    /// new handle in `x1`. Needs `GRANT`. Errors: `NoSlots`.
    CapCopy = 30,
    /// Like `CapCopy` and also set badge `x2` (only on an unbadged endpoint
    /// or notification capability). Errors: `InvalidState` (already badged).
    CapMint = 31,
    /// Delete the capability (and the mappings made through it). When the
    /// last capability to an object goes, the object is destroyed and its
    /// memory returns to its pool.
    CapDelete = 32,
    /// Delete every capability derived from this one, in any task,
    /// recursively, with their mappings. The capability itself stays.
    CapRevoke = 33,
    /// `x1` = object type, `x2` = rights, `x3` = badge, `x4` = object size
    /// (pool: bytes left; memory: bytes).
    CapInfo = 34,

    /// Create an object from `x0 = h: Pool [MANAGE]`: `x1` = [`ObjectType`]
    /// (Pool, Task, Endpoint, Notification, Memory), `x2` = size argument
    /// (Pool: bytes moved into the new pool; Memory: pages), `x3` = flags
    /// (Memory: [`crate::MEMORY_CONTIGUOUS`] for DMA; else 0). Returns the
    /// handle in `x1`. Memory objects are zero-filled; a new task has an
    /// empty address space and capability space. Errors: `OutOfMemory`,
    /// `InvalidArgument`.
    Create = 40,

    /// Map `x2` pages of memory/device object `x1` (at page offset `x3`)
    /// into task `x0 = h: Task [MANAGE]` at virtual address `x4`, with
    /// rights `x5` (READ/WRITE/EXECUTE, never more than the memory
    /// capability holds, never writable and executable). `x1` needs `MAP`.
    /// W^X holds per memory object, across mappings: memory mapped
    /// writable anywhere (at any address, in any task, through any
    /// capability to it) cannot also be mapped executable, nor the other
    /// way round, until those mappings are gone.
    /// Errors: `AlreadyMapped`, `InvalidArgument` (range, alignment,
    /// W+X), `InvalidState` (executable while mapped writable elsewhere,
    /// or writable while mapped executable), `OutOfMemory` (page tables).
    Map = 50,
    /// Unmap `x2` pages at `x1` from task `x0 = h: Task [MANAGE]`.
    /// Errors: `NotMapped`.
    Unmap = 51,
    /// Physical address (`x1`) and size (`x2`) of a memory object, for DMA.
    /// `x0 = h: Memory [MANAGE]`. Errors: `InvalidState` for RAM not made
    /// with [`crate::MEMORY_CONTIGUOUS`] (its pages need not be contiguous).
    MemoryPhysical = 52,
    /// Make a device-region capability for `x3` pages of physical memory at
    /// `x2` (page aligned): a device's registers, read from the device tree
    /// by init, or memory a device's firmware allocated in its own memory
    /// (a framebuffer); returns the handle in `x1`. `x0 = h: Pool [WRITE]`
    /// is charged for the object; `x1 = h: Console [MANAGE]` is the
    /// authority (init's). The range must not touch RAM (whatever the
    /// device tree calls memory or reserves) or the interrupt controller.
    /// Errors: `WrongType` (`x1` is not the console), `NoRights`,
    /// `InvalidArgument` (alignment, size, a forbidden range),
    /// `OutOfMemory`.
    DeviceMemory = 53,
    /// Copy `x3` bytes of memory object `x0 = h: Memory [READ]`, from its
    /// byte offset `x1`, to the caller's own memory at `x2` (mapped
    /// writable, RAM). The caller needs no mapping of the object: a server
    /// copies out of a client's memory with this instead of mapping it, so
    /// a client that deletes or revokes its capability meanwhile makes the
    /// call fail, never the server fault.
    ///
    /// The capability is looked up when the copy is made (and again each
    /// time the call goes on after a pause, see below); while the kernel
    /// copies, nothing can free the object (one lock). The copy goes in
    /// pieces of at most a page of the caller's memory; after a piece it
    /// advances `x1` and `x2` and lowers `x3` by the bytes copied, and when
    /// the entry's work budget is spent the call is made again from
    /// there, so other CPUs and interrupts get in between pieces (a
    /// capability deleted meanwhile fails the rest: `BadHandle`, or
    /// `InvalidState` while it is being deleted). On return `x3` is the
    /// number of bytes not copied: 0 on success; after an error the bytes
    /// before `x1` (and `x2`) were copied. Overlapping ranges (the
    /// caller's memory mapping the same object) leave the overlap
    /// unspecified.
    ///
    /// Errors: `InvalidArgument` (`x1 + x3` past the object's size, or
    /// overflowing; `x3` = 0 copies nothing), `NotMapped` (a page of the
    /// caller's range not mapped writable to it, not RAM, or above the user
    /// half), `WrongType` (not a memory object, or device memory: its
    /// registers are not copied), plus each handle error.
    MemoryRead = 54,
    /// Copy `x3` bytes of the caller's own memory at `x2` (mapped readable,
    /// RAM) into memory object `x0 = h: Memory [WRITE]` at its byte offset
    /// `x1`. Otherwise as [`Syscall::MemoryRead`] (the same registers move
    /// on, the same errors; `NotMapped` for a page not mapped readable).
    /// The boot archive's object is never written: `NoRights`.
    MemoryWrite = 55,
    /// [`Syscall::MemoryRead`] of a rectangle: `n` rows of `x3` bytes
    /// each, from memory object `x0 = h: Memory [READ]` at byte offsets
    /// `x1`, `x1 + x5`, `x1 + 2*x5`, ... (`x5`: the object's row stride),
    /// to the caller's memory at `x2`, `x2 + x6`, ... (`x6`: the caller's
    /// row stride), in one call: a server copies a damaged rectangle of a
    /// client's buffer with one kernel entry instead of one per row.
    /// `x4` holds `n` in its low 32 bits and in its high 32 bits the
    /// number of bytes of the first row already copied (0 when the call
    /// is made: it is the call's progress, see below; `x7` is preserved,
    /// as by every call). Strides are any values (rows may overlap on
    /// either side: the overlap is then unspecified, as for overlapping
    /// ranges).
    ///
    /// The whole range is checked before anything is copied: the last row
    /// (`x1 + (n - 1) * x5 + x3`) must end inside the object, and neither
    /// it nor `x2 + (n - 1) * x6 + x3` may overflow. Then the copy goes
    /// in pieces of at most a page of the caller's memory, as
    /// [`Syscall::MemoryRead`]'s; after each piece `x4`'s high half grows
    /// by the bytes copied; a row done moves `x1` on by `x5` and `x2` by
    /// `x6`, lowers `n` by one and clears the high half. When the work
    /// budget is spent the call is made again from those registers
    /// (mid-row too), its capability looked up again. On return `x4`'s low
    /// half is the number of rows not wholly copied and its high half the
    /// bytes of the first of them that were (on success `x4` is 0, `x1`
    /// and `x2` the last row's start); after an error the rows before
    /// `x1` (and `x2`) and that many bytes of the one at `x1` were copied.
    /// `n` = 0 or `x3` = 0 copies nothing.
    ///
    /// Errors: `InvalidArgument` (the last row past the object's size, an
    /// overflow of either side's last address, or more bytes done than
    /// `x3`), `NotMapped` (a page of a caller's row not mapped writable to
    /// it, not RAM, or above the user half; the gaps between rows need no
    /// mapping), `WrongType` (not a memory object, or device memory), plus
    /// each handle error (`BadHandle`, or `InvalidState` while the
    /// capability is being deleted: a revoke between pieces fails the
    /// rest).
    MemoryReadRows = 56,
    /// [`Syscall::MemoryWrite`] of a rectangle: `x4` rows of `x3` bytes
    /// from the caller's memory at `x2`, `x2 + x6`, ... (mapped readable,
    /// RAM) into memory object `x0 = h: Memory [WRITE]` at byte offsets
    /// `x1`, `x1 + x5`, .... Otherwise as [`Syscall::MemoryReadRows`]
    /// (the same registers move on, the same checks and errors;
    /// `NotMapped` for a page not mapped readable). The boot archive's
    /// object is never written: `NoRights`.
    MemoryWriteRows = 57,

    /// Create a thread in task `x1 = h: Task [MANAGE]` from
    /// `x0 = h: Pool [MANAGE]`: entry `x2`, stack pointer `x3`, argument
    /// `x4` (its `x0`), priority `x5` (at most the caller's). Not started.
    /// Returns the handle in `x1`.
    ThreadCreate = 60,
    /// Start (or resume) `x0 = h: Thread [MANAGE]`.
    ThreadResume = 61,
    /// Stop `x0 = h: Thread [MANAGE]`; a blocked call is abandoned.
    ThreadSuspend = 62,
    /// Set `x0 = h: Thread [MANAGE]`'s priority to `x1` (at most the
    /// caller's) and CPU affinity to `x2` (a CPU index, or `u64::MAX` for any).
    ThreadConfigure = 63,
    /// Send `x0 = h: Thread [MANAGE]`'s faults to endpoint `x1 = h:
    /// Endpoint [SEND]` (badge identifies the thread to its handler).
    ThreadSetFaultHandler = 64,
    /// Register the caller's IPC buffer at user address `x1` (page aligned,
    /// mapped read-write in its task); `x0` is ignored. Each thread registers
    /// its own (the user library does it at thread start).
    ThreadSetIpcBuffer = 65,
    /// Read (`x2 = 0`) or write (`x2 = 1`) a suspended or faulted thread's
    /// PC (`x3`) and SP (`x4`). `x0 = h: Thread [MANAGE]`.
    ThreadRegisters = 66,
    /// State and accounting of `x0 = h: Thread [MANAGE]`: `x1` = state
    /// (0 running, 1 ready, 2 blocked in IPC, a wait or a sleep, 3
    /// suspended or not started, 4 faulted: waiting for its fault handler,
    /// 5 dead), `x2` = CPU time in microseconds (up to now if it is
    /// running), `x3` = priority, `x4` = the CPU it runs on, or else the
    /// one whose run queue it belongs to: where it last ran, unless
    /// `ThreadConfigure` moved it since (or where it will start).
    ThreadInfo = 67,

    /// Copy the caller's capability `x1` (needs `GRANT`) with rights `x2`
    /// into task `x0 = h: Task [MANAGE]`; returns the handle there in `x1`.
    TaskInstall = 70,
    /// Destroy task `x0 = h: Task [MANAGE]`: every thread, mapping and
    /// capability in it. Threads blocked on it get `PeerDied`.
    TaskDestroy = 71,
    /// Accounting of `x0 = h: Task [MANAGE]`: `x1` = CPU time in
    /// microseconds (every thread it ever had, exited ones included, up to
    /// now), `x2` = live threads, `x3` = state: 0 running (a thread runs or
    /// is ready to), 1 blocked (none can run; some wait in IPC, on a
    /// notification or in a sleep), 2 stopped (every thread suspended,
    /// faulted or not started yet, or it has none), 3 dead (ended or
    /// destroyed; the CPU time stays readable).
    TaskInfo = 72,

    /// Deliver interrupt `x0 = h: Irq [MANAGE]` as bits `x2` on notification
    /// `x1 = h: Notification [SEND]`. The line is masked after each
    /// delivery until `IrqAck`.
    IrqBind = 80,
    /// Unmask the interrupt after handling it.
    IrqAck = 81,
    /// Make an interrupt object for shared peripheral interrupt `x2` (GIC
    /// INTID 32 to 1019) that no interrupt object names yet; returns the
    /// handle (`MANAGE | GRANT`) in `x1`. `x0 = h: Pool [WRITE]` is charged
    /// for the object; `x1 = h: Console [MANAGE]` is the authority (init's:
    /// it reads the device tree and hands each driver its lines). Errors:
    /// `WrongType` (`x1` is not the console), `NoRights`, `InvalidArgument`
    /// (not an SPI), `InvalidState` (the line already has an object),
    /// `OutOfMemory`.
    IrqCreate = 82,

    /// Kernel counters for leak tests: `x1` objects alive, `x2` free bytes
    /// of RAM, `x3` kernel heap bytes in use. `x0 = h: Counters [READ]`.
    KernelStats = 90,
    /// Power the machine off (`x1 = 0`) or reboot it (`x1 = 1`), after
    /// stopping the other CPUs; returns only on error. `x0 = h: Console
    /// [MANAGE]` (init's console has MANAGE; the copies the user library
    /// hands to programs do not). `x1` is checked first. Errors:
    /// `InvalidArgument` (`x1`), `NotSupported` (the machine has no
    /// firmware interface for it: no PSCI 0.2 or later, e.g. a Raspberry
    /// Pi 4). Should the firmware refuse, the CPUs halt.
    SystemControl = 91,
}
