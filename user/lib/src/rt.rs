//! Start-up, exit and panic handling.
//!
//! `_start` (below) is the ELF entry point: the kernel or the parent starts
//! the first thread there with `sp` at the top of its stack and `x0` = the
//! address of its [`BootInfo`] (init) or [`StartInfo`] (every other task).
//! It clears the frame pointer and link register (so backtraces end there)
//! and calls `__kestrel_main`, which [`crate::entry!`] defines in the
//! program and which calls [`start`]. `.bss` is not cleared: loaders map
//! fresh, zero-filled memory for it.

use crate::console::FixedText;
use crate::ipc::{self, Message, Timeout};
use crate::{heap, proto, syscall};
use abi::boot_info::{self, nul_terminated, BootInfo, StartInfo};
use abi::Handle;
use core::fmt::Write;

/// What the library knows about the running task, from its start-up page.
#[derive(Clone, Copy, Debug)]
pub struct Process {
    name: [u8; 32],
    pub console: Handle,
    /// The task itself (`MANAGE`).
    pub task: Handle,
    /// The first thread.
    pub thread: Handle,
    pub pool: Handle,
    /// Badged endpoint to the supervisor, or `Handle::NULL`.
    pub parent: Handle,
    /// The boot archive (read-only memory), or `Handle::NULL`.
    pub archive: Handle,
    /// The counters (`READ`: [`crate::syscall::kernel_stats`] and
    /// [`crate::arch::cycles`]), or `Handle::NULL` (most programs).
    pub counters: Handle,
    pub cpus: u32,
    /// Priority of the first thread.
    pub priority: u8,
    /// The IPC buffer of the first thread.
    pub ipc_buffer: u64,
    pub boot_info: Option<&'static BootInfo>,
    pub start_info: Option<&'static StartInfo>,
}

impl Process {
    const fn unknown() -> Process {
        Process {
            name: *b"?\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
            console: Handle::NULL,
            task: Handle::NULL,
            thread: Handle::NULL,
            pool: Handle::NULL,
            parent: Handle::NULL,
            archive: Handle::NULL,
            counters: Handle::NULL,
            cpus: 1,
            priority: 0,
            ipc_buffer: 0,
            boot_info: None,
            start_info: None,
        }
    }

    /// The program's name (log prefix).
    pub fn name(&self) -> &str {
        nul_terminated(&self.name)
    }

    /// Arguments from the parent (init: the kernel command line).
    pub fn args(&self) -> &'static str {
        match (self.start_info, self.boot_info) {
            (Some(s), _) => s.args(),
            (None, Some(b)) => b.bootargs(),
            _ => "",
        }
    }
}

static PROCESS: spin::Once<Process> = spin::Once::new();
static UNKNOWN: Process = Process::unknown();

/// The running task's start-up information.
pub fn process() -> &'static Process {
    PROCESS.get().unwrap_or(&UNKNOWN)
}

/// The argument a program's `main` receives: [`BootInfo`] for init,
/// [`StartInfo`] for the others.
pub trait StartArg: Sized + 'static {
    /// Where the kernel (init) or the parent put the first IPC buffer.
    const IPC_BUFFER: u64;
    /// The address `x0` must hold.
    const ADDRESS: u64;
    fn valid(&self) -> bool;
    fn process(&'static self) -> Process;
}

impl StartArg for BootInfo {
    const IPC_BUFFER: u64 = boot_info::INIT_IPC_BUFFER;
    const ADDRESS: u64 = boot_info::BOOT_INFO_ADDRESS;

    fn valid(&self) -> bool {
        self.magic == boot_info::BOOT_INFO_MAGIC
    }

    fn process(&'static self) -> Process {
        let mut name = [0u8; 32];
        name[..4].copy_from_slice(b"init");
        Process {
            name,
            console: Handle(self.console),
            task: Handle(self.task),
            thread: Handle(self.thread),
            pool: Handle(self.pool),
            parent: Handle::NULL,
            archive: Handle(self.archive),
            counters: Handle(self.counters),
            cpus: self.cpus.max(1),
            priority: boot_info::INIT_PRIORITY,
            ipc_buffer: Self::IPC_BUFFER,
            boot_info: Some(self),
            start_info: None,
        }
    }
}

impl StartArg for StartInfo {
    const IPC_BUFFER: u64 = boot_info::CHILD_IPC_BUFFER;
    const ADDRESS: u64 = boot_info::START_INFO_ADDRESS;

    fn valid(&self) -> bool {
        self.magic == boot_info::START_INFO_MAGIC
    }

    fn process(&'static self) -> Process {
        Process {
            name: self.name,
            console: Handle(self.console),
            task: Handle(self.task),
            thread: Handle(self.thread),
            pool: Handle(self.pool),
            parent: Handle(self.parent),
            archive: Handle(self.archive),
            counters: Handle(self.counters),
            cpus: self.cpus.max(1),
            priority: self.priority.min(abi::MAX_PRIORITY as u32) as u8,
            ipc_buffer: Self::IPC_BUFFER,
            boot_info: None,
            start_info: Some(self),
        }
    }
}

/// What `main` may return: `()`, an exit code, or a `Result` whose error is
/// reported to the supervisor.
pub trait Termination {
    fn report(self) -> i32;
}

impl Termination for () {
    fn report(self) -> i32 {
        0
    }
}

impl Termination for i32 {
    fn report(self) -> i32 {
        self
    }
}

impl<E: core::fmt::Debug> Termination for Result<(), E> {
    fn report(self) -> i32 {
        match self {
            Ok(()) => 0,
            Err(e) => {
                let mut t = FixedText::<480>::new();
                let _ = write!(t, "main returned Err({e:?})");
                fail(1, t.as_str())
            }
        }
    }
}

/// Registers `address` as the calling thread's IPC buffer (with the kernel
/// and in `TPIDR_EL0`, where the IPC wrappers find it).
pub(crate) fn set_ipc_buffer(address: u64) {
    match syscall::thread_set_ipc_buffer(address) {
        Ok(()) => crate::arch::set_thread_pointer(address),
        Err(_) => crate::arch::set_thread_pointer(0),
    }
}

/// Runs a program: called by the `__kestrel_main` that [`crate::entry!`]
/// defines, with `x0` of the first thread.
pub fn start<A: StartArg, R: Termination>(arg: u64, heap_area: (*mut u8, usize), main: fn(&'static A) -> R) -> ! {
    if arg != A::ADDRESS {
        syscall::thread_exit(proto::BAD_START_EXIT_CODE);
    }
    // SAFETY: by the start protocol (abi::boot_info) the kernel or parent
    // mapped a read-only page holding an `A` at this address for the life
    // of the task; it is never written while the task runs.
    let info: &'static A = unsafe { &*(arg as *const A) };
    if !info.valid() {
        syscall::thread_exit(proto::BAD_START_EXIT_CODE);
    }
    let p = PROCESS.call_once(|| info.process());
    set_ipc_buffer(p.ipc_buffer);
    heap::init(heap_area);
    if log::set_logger(&crate::console::LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    let code = main(info).report();
    exit(code)
}

/// Ends the program: on success tells the parent ([`proto::EXIT`]), then
/// ends the calling thread with `code` (nonzero becomes a `Panic` fault
/// report). Other threads run on until the parent destroys the task.
pub fn exit(code: i32) -> ! {
    let parent = process().parent;
    if code == 0 && parent != Handle::NULL {
        // Bounded wait: a parent that does not listen must not keep us.
        let _ = syscall::send(parent, &Message::with_words(proto::EXIT, &[0]), Timeout::millis(5000));
    }
    syscall::thread_exit(code as u32 as u64)
}

/// Sends `reason` to the parent (if any), then exits with `code`.
pub fn fail(code: i32, reason: &str) -> ! {
    send_reason(reason);
    exit(if code == 0 { 1 } else { code })
}

fn send_reason(reason: &str) {
    let parent = process().parent;
    if parent != Handle::NULL {
        let _ = syscall::send(parent, &ipc::pack_text(proto::REASON, reason), Timeout::millis(1000));
    }
}

/// Defines the program's entry: `entry!(main)` for a task started by a
/// parent (`fn main(&'static StartInfo) -> R`), `entry!(main, heap = N)`
/// to choose the heap size in bytes; init uses the same macro with
/// `fn main(&'static BootInfo) -> R`. `R` is `()`, `i32` or `Result<(), E>`.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        $crate::entry!($main, heap = $crate::heap::DEFAULT_HEAP_SIZE);
    };
    ($main:path, heap = $size:expr) => {
        #[no_mangle]
        extern "C" fn __kestrel_main(arg: u64) -> ! {
            static HEAP: $crate::heap::HeapArea<{ $size }> = $crate::heap::HeapArea::new();
            $crate::rt::start(arg, HEAP.region(), $main)
        }
    };
}

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
core::arch::global_asm!(
    ".section .text._start, \"ax\"",
    ".global _start",
    ".type _start, %function",
    "_start:",
    "    mov x29, #0",
    "    mov x30, #0",
    "    bl __kestrel_main",
    "    brk #0x7e",
    ".size _start, . - _start",
);

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    use core::sync::atomic::{AtomicBool, Ordering};
    // A panic while panicking (or in a second thread at once) just ends
    // the thread: the first report is the useful one.
    static PANICKING: AtomicBool = AtomicBool::new(false);
    if PANICKING.swap(true, Ordering::SeqCst) {
        syscall::thread_exit(proto::PANIC_EXIT_CODE);
    }
    let mut t = FixedText::<480>::new();
    match info.location() {
        Some(l) => {
            let _ = write!(t, "panicked at {}:{}: {}", l.file(), l.line(), info.message());
        }
        None => {
            let _ = write!(t, "panicked: {}", info.message());
        }
    }
    let mut w = crate::console::Writer::new();
    let _ = writeln!(w, "{}: {}", process().name(), t.as_str());
    w.flush();
    send_reason(t.as_str());
    syscall::thread_exit(proto::PANIC_EXIT_CODE)
}
