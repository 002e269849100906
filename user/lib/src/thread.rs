//! Threads in this task: each gets its own stack and IPC buffer (memory
//! from this task's pool) and, if the task has a supervisor, the same
//! fault handler as the first thread.

extern crate alloc;

use crate::rt::process;
use crate::vspace::Mapping;
use crate::{ipc::Timeout, syscall};
use abi::{Error, Handle, ObjectType, Rights, PAGE_SIZE};
use alloc::boxed::Box;

/// Options for a new thread.
#[derive(Clone, Copy, Debug)]
pub struct Builder {
    /// At most this task's priority (the kernel refuses more).
    pub priority: u8,
    pub cpu: Option<usize>,
    pub stack_pages: u64,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            priority: process().priority,
            cpu: None,
            stack_pages: 16,
        }
    }
}

impl Builder {
    pub fn priority(mut self, p: u8) -> Self {
        self.priority = p;
        self
    }

    pub fn cpu(mut self, cpu: usize) -> Self {
        self.cpu = Some(cpu);
        self
    }

    pub fn stack_pages(mut self, pages: u64) -> Self {
        self.stack_pages = pages;
        self
    }

    /// Starts `f` on a new thread.
    pub fn spawn<F: FnOnce() + Send + 'static>(self, f: F) -> Result<JoinHandle, Error> {
        let me = process();
        let stack = Mapping::new(self.stack_pages, Rights::READ | Rights::WRITE)?;
        let ipc = Mapping::new(1, Rights::READ | Rights::WRITE)?;
        let done = syscall::create(me.pool, ObjectType::Notification, 0)?;
        let start = Box::new(Start {
            f: Box::new(f),
            ipc_buffer: ipc.addr(),
            done,
        });
        let arg = Box::into_raw(start);
        let sp = stack.addr() + stack.len() as u64;
        let created = syscall::thread_create(
            me.pool,
            me.task,
            thread_entry as *const () as u64,
            sp,
            arg as u64,
            self.priority,
        );
        let thread = match created {
            Ok(t) => t,
            Err(e) => {
                // SAFETY: the thread was not created, so `arg` was never
                // handed out; reclaim it.
                drop(unsafe { Box::from_raw(arg) });
                let _ = syscall::cap_delete(done);
                return Err(e);
            }
        };
        let handle = JoinHandle {
            thread,
            done,
            _stack: stack,
            _ipc: ipc,
        };
        if me.parent != Handle::NULL {
            syscall::thread_set_fault_handler(thread, me.parent)?;
        }
        if self.cpu.is_some() {
            syscall::thread_configure(thread, self.priority, self.cpu)?;
        }
        syscall::thread_resume(thread)?;
        Ok(handle)
    }
}

/// Starts `f` on a new thread with default options.
pub fn spawn<F: FnOnce() + Send + 'static>(f: F) -> Result<JoinHandle, Error> {
    Builder::default().spawn(f)
}

struct Start {
    f: Box<dyn FnOnce() + Send>,
    ipc_buffer: u64,
    done: Handle,
}

extern "C" fn thread_entry(arg: u64) -> ! {
    // SAFETY: `arg` is the pointer `Builder::spawn` got from Box::into_raw
    // and passed as this thread's x0; only this thread takes it back, once.
    let start = unsafe { Box::from_raw(arg as *mut Start) };
    crate::rt::set_ipc_buffer(start.ipc_buffer);
    let Start { f, done, .. } = *start;
    f();
    let _ = syscall::signal(done, 1);
    syscall::thread_exit(0)
}

/// A running thread. Dropping the handle (after `join`, or instead of it)
/// destroys the thread if it still runs, then frees its stack and IPC
/// buffer.
#[derive(Debug)]
pub struct JoinHandle {
    thread: Handle,
    done: Handle,
    _stack: Mapping,
    _ipc: Mapping,
}

impl JoinHandle {
    /// The thread's capability (to configure or suspend it).
    pub fn thread(&self) -> Handle {
        self.thread
    }

    /// Waits for the closure to return, then frees the thread's objects.
    pub fn join(self) -> Result<(), Error> {
        self.join_timeout(Timeout::Forever).map_err(|(_, e)| e)
    }

    /// [`JoinHandle::join`] with a timeout; gives the handle back if it
    /// expires.
    pub fn join_timeout(self, timeout: Timeout) -> Result<(), (JoinHandle, Error)> {
        match syscall::wait(self.done, timeout) {
            Ok(_) => Ok(()),
            Err(e) => Err((self, e)),
        }
    }
}

impl Drop for JoinHandle {
    fn drop(&mut self) {
        // A thread that still runs keeps itself when its last capability
        // goes (the kernel ends only one that cannot run again). Suspended
        // first, it is ended by the delete, and its kernel memory is back
        // in the pool when this returns: also one on its way out, which
        // has signalled `done` but not yet made its `thread_exit` (its
        // joiner may run before it, here or on another CPU). Its stack goes
        // after that. (A dead thread refuses the suspend.)
        let _ = syscall::thread_suspend(self.thread);
        let _ = syscall::cap_delete(self.thread);
        let _ = syscall::cap_delete(self.done);
    }
}

/// Bytes of a thread's default stack.
pub const DEFAULT_STACK: usize = 16 * PAGE_SIZE;
