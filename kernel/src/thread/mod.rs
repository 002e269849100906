//! Threads: saved user context, scheduling parameters and IPC state.

use crate::cap::CSpace;
use crate::object::{Id, Kernel, ObjectPtr, ObjectRef};
use abi::Error;

/// User registers, saved on kernel entry. Layout shared with `user_entry.S`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct UserContext {
    pub x: [u64; 31],
    pub sp: u64,
    pub elr: u64,
    pub spsr: u64,
    pub tpidr: u64,
}

/// FP/SIMD registers, saved lazily (only for threads that use them).
#[repr(C, align(16))]
#[derive(Clone, Copy, Default)]
pub struct FpState {
    pub q: [u128; 32],
    pub fpcr: u64,
    pub fpsr: u64,
}

/// What a thread is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadState {
    /// Created, not started yet.
    Inactive,
    Ready,
    Running,
    /// Blocked sending on an endpoint (its message is in its registers, or
    /// in `fault` for a fault message). `call`: waits for a reply after.
    Sending {
        endpoint: Id,
        badge: u64,
        call: bool,
    },
    Receiving {
        endpoint: Id,
    },
    /// Waiting for `server` to reply.
    AwaitingReply {
        server: Id,
    },
    Waiting {
        notification: Id,
    },
    Sleeping,
    Suspended,
    Dead,
}

/// A pending fault message: kind, ESR, FAR, PC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub words: [u64; 4],
}

/// A thread control block.
#[repr(C)]
pub struct Thread {
    /// First field: `user_entry.S` saves into it directly.
    pub ctx: UserContext,
    pub fp: FpState,
    pub task: Id,
    /// Its task's capability space: it lives as long as the task, which
    /// lives at least while the thread does (the thread holds a reference
    /// to it until it is killed), so it is valid while the thread is alive.
    pub cspace: ObjectPtr<CSpace>,
    /// Its task's TTBR0 value (root table and ASID never change).
    pub ttbr0: u64,
    pub state: ThreadState,
    pub priority: u8,
    /// CPU it runs on.
    pub cpu: usize,
    /// The capability (to an endpoint, with SEND) its faults go to, with
    /// that capability's badge; it lasts while the capability does.
    pub fault_handler: Option<Id>,
    pub ipc_buffer: Option<u64>,
    /// The thread whose call this thread received and has not yet answered.
    pub caller: Option<Caller>,
    /// Its own id (set by [`insert`]), for the IPC fast path, which finds
    /// the running thread by its context's address.
    pub id: Id,
    /// Wake-up time (counter ticks) for sleeps and IPC timeouts.
    pub deadline: Option<u64>,
    /// Its places on the scheduler's run queue and timeout list.
    pub links: crate::sched::Links,
    pub fault: Option<Fault>,
    /// Whether a reply should end it (it exited with a panic report).
    pub exiting: bool,
    pub refs: u32,
    pub pool: Id,
    /// Its memory was given back to the pool already (the TCB itself is
    /// freed later, once no CPU runs on it).
    pub refunded: bool,
    /// CPU time used, in counter ticks ([`crate::time::cpu_clock`]), up
    /// to the last switch on its CPU (see [`crate::sched::charge`]).
    pub cpu_ticks: u64,
    /// Its system call is done (status in its registers) but waits for the
    /// kernel's teardown work it caused: its `svc` is made again with `x8`
    /// = `syscall::DRAIN` until that is done, and then gets back `x8` as
    /// it was, kept here. (Its registers, read meanwhile, show `DRAIN`.)
    pub draining: Option<u64>,
    /// The memory object its `Create` is making, zeroed in pieces (the call
    /// is restarted between them). Nobody else names it: it gets its
    /// capability only once all its pages are zero; this holds its one
    /// reference meanwhile (dropped if the thread dies or makes another
    /// creation).
    pub creating: Option<Creating>,
    /// Its `Map` larger than a piece, going on in pieces (the call is
    /// restarted between them): the mapping is recorded, whole, and its
    /// pages are mapped from its start ([`crate::task::Mapping::filled`]).
    /// (Boxed: the thread's record stays as small as it was, and its hot
    /// paths as fast.)
    pub mapping: Option<alloc::boxed::Box<MapProgress>>,
}

/// A `Map` in pieces ([`Thread::mapping`]): the call's arguments, where its
/// mapping is (the task's list keeps the index right while the mapping
/// names this thread as its maker), and the error of a failed piece while
/// the mapping goes again (all or nothing).
#[derive(Clone, Copy)]
pub struct MapProgress {
    pub task: Id,
    pub index: u32,
    pub va: u64,
    pub pages: usize,
    pub offset: usize,
    pub failed: Option<abi::Error>,
}

/// A memory object being zeroed ([`Thread::creating`]): pages zeroed so far.
#[derive(Clone, Copy)]
pub struct Creating {
    pub memory: Id,
    pub zeroed: usize,
}

/// A server's caller: its id, and its TCB's address for the IPC fast path.
/// The address stays valid while it is the caller: a thread waiting for a
/// reply is alive, and one that stops waiting (cancelled, suspended, killed)
/// is forgotten by its server first (`ipc::forget_caller`, `ipc::abandon`).
#[derive(Clone, Copy)]
pub struct Caller {
    pub id: Id,
    pub tcb: ObjectPtr<Thread>,
}

/// Bytes charged per thread: its heap block and its entry in its task's
/// list of threads. (Its entry in the thread table is in a chunk its pool
/// pays for.)
pub const THREAD_COST: u64 = crate::object::slab::box_cost::<Thread>() + crate::object::slab::list_cost::<Id>();

impl Thread {
    #[allow(clippy::too_many_arguments)] // the ThreadCreate arguments plus where the thread lives
    pub fn new(
        task: Id,
        cspace: ObjectPtr<CSpace>,
        ttbr0: u64,
        pool: Id,
        entry: u64,
        sp: u64,
        arg: u64,
        priority: u8,
        cpu: usize,
    ) -> Self {
        let mut ctx = UserContext {
            elr: entry,
            sp,
            ..Default::default()
        };
        ctx.x[0] = arg;
        // EL0t with interrupts unmasked.
        ctx.spsr = 0;
        Thread {
            ctx,
            fp: FpState::default(),
            task,
            cspace,
            ttbr0,
            state: ThreadState::Inactive,
            priority,
            cpu,
            fault_handler: None,
            ipc_buffer: None,
            caller: None,
            id: Id {
                index: u32::MAX,
                generation: u32::MAX,
            },
            deadline: None,
            links: crate::sched::Links::new(),
            fault: None,
            exiting: false,
            refs: 0,
            pool,
            refunded: false,
            cpu_ticks: 0,
            draining: None,
            creating: None,
            mapping: None,
        }
    }

    /// Set the status register (x0) a blocked system call returns.
    pub fn set_status(&mut self, result: Result<(), Error>) {
        self.ctx.x[0] = match result {
            Ok(()) => 0,
            Err(e) => e as u64,
        };
    }

    #[inline(always)]
    pub fn is_alive(&self) -> bool {
        !matches!(self.state, ThreadState::Dead)
    }
}

/// Add a new thread to the table (in a chunk of its pool's); it learns its
/// id.
pub fn insert(k: &mut Kernel, t: alloc::boxed::Box<Thread>) -> Result<Id, Error> {
    let pool = t.pool;
    let id = k.store(Some(pool), t)?;
    k.threads.get_mut(id).expect("just inserted").id = id;
    Ok(id)
}

/// Stop a thread for good: out of every queue, callers told, task reference
/// dropped. The TCB stays while capabilities name it.
pub fn kill(k: &mut Kernel, id: Id) {
    let Some(t) = k.threads.get(id) else { return };
    if !t.is_alive() {
        return;
    }
    let task = t.task;
    // Where it runs, if anywhere: not necessarily its own CPU (`t.cpu`),
    // when it was moved (`thread_configure`) and that CPU has not switched
    // away from it yet.
    let running_on = crate::sched::running_on(k, id);
    crate::sched::remove(k, id);
    crate::ipc::abandon(k, id);
    if let Some(t) = k.threads.get_mut(id) {
        t.state = ThreadState::Dead;
        t.fault = None;
    }
    crate::syscall::drop_creation(k, id);
    // No CPU keeps it as its FP owner (its state is not saved any more:
    // see `switch`), wherever it ran.
    for c in k.cpus.iter_mut().filter(|c| c.fp_owner == Some(id)) {
        c.fp_owner = None;
    }
    let ticks = k.threads.get(id).map_or(0, |t| t.cpu_ticks);
    if let Some(tk) = k.tasks.get_mut(task) {
        // Its CPU time stays with the task (any still to come, while a CPU
        // finishes running it, is added when that CPU switches away).
        tk.exited_ticks += ticks;
        // (From the end: a task's teardown kills its last thread first.)
        if let Some(i) = tk.threads.iter().rposition(|t| *t == id) {
            tk.threads.swap_remove(i);
        }
        crate::object::slab::give_back(&mut tk.threads, crate::object::slab::FIRST_BLOCK);
        let last = tk.threads.is_empty() && tk.alive;
        if last {
            crate::task::task_finished(k, task);
        }
    }
    if let Some(on) = running_on.filter(|on| *on != crate::percpu::index()) {
        // Make the CPU it runs on enter the kernel and switch away.
        crate::irq::send_ipi(on, crate::irq::SGI_WAKE);
    }
    // The thread's own reference (taken when created).
    k.release(ObjectRef::Thread(id));
    k.release(ObjectRef::Task(task));
}

/// Only the thread's own reference is left: no capability names it. One
/// that cannot run again without one (never started, or suspended) is
/// ended, so its memory goes back (before, it was kept for good).
pub fn unreachable(k: &mut Kernel, id: Id) {
    let stuck = k
        .threads
        .get(id)
        .is_some_and(|t| matches!(t.state, ThreadState::Inactive | ThreadState::Suspended));
    if stuck {
        kill(k, id);
    }
}

/// The last reference went: free the TCB.
pub fn destroy_object(k: &mut Kernel, id: Id) {
    let alive = k.threads.get(id).is_some_and(|t| t.is_alive());
    if alive {
        // Capabilities are gone but the thread runs on: it keeps itself.
        if let Some(t) = k.threads.get_mut(id) {
            t.refs = 1;
        }
        return;
    }
    // Account for it now, so its pool is whole as soon as it is gone...
    let pool = match k.threads.get_mut(id) {
        Some(t) if !t.refunded => {
            t.refunded = true;
            Some(t.pool)
        }
        _ => None,
    };
    if let Some(pool) = pool {
        k.refund(pool, THREAD_COST);
        k.release(ObjectRef::Pool(pool));
    }
    // ...but keep the TCB while a CPU still runs on it (until it switches
    // away): it lingers, so its chunk does not keep the pool either.
    if let Some(cpu) = k.cpus.iter().position(|c| c.current == Some(id)) {
        k.cpus[cpu].reap = Some(id);
        // (Refunded just now: a thread current on a CPU dies there, and
        // its last reference goes once.)
        if let Some(pool) = pool {
            k.linger::<alloc::boxed::Box<Thread>>(id, pool);
        }
        return;
    }
    k.unstore::<alloc::boxed::Box<Thread>>(id);
}
