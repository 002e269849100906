//! System-call dispatch: decode `x8`, check capabilities, act, and leave
//! results in the caller's saved registers (see the `abi` crate).

//!
//! One file per object family: [`thread`], [`task`], [`memory`] (memory
//! objects and mappings), [`caps`] (capability operations), [`create`],
//! [`irq`] and [`system`] (console, power). IPC calls go to [`crate::ipc`].

mod caps;
mod create;
mod irq;
mod memory;
mod system;
mod task;
mod thread;

pub use memory::{create_memory, drop_creation, free_frames};

use crate::cap;
use crate::ipc;
use crate::object::{Id, Kernel, ObjectRef, WORK_BUDGET};
use crate::thread::ThreadState;
use crate::time;
use abi::{Error, FaultKind, Rights, Syscall};
use caps::{cap_copy, cap_delete, cap_info};
use create::create;
use irq::{irq_ack, irq_bind, irq_create};
use memory::{device_memory, map, map_in_pieces, memory_copy, memory_copy_rows, memory_physical, unmap};
use system::{console_write, kernel_stats, system_control};
use task::{task_destroy, task_info, task_install};
use thread::{
    sleep, thread_configure, thread_create, thread_exit, thread_info, thread_registers, thread_resume,
    thread_set_fault_handler, thread_set_ipc_buffer, thread_suspend, yield_now,
};

/// Handle the `svc` of thread `cur` (alive), system call `number` (its `x8`).
///
/// The calls that destroy (capability delete and revoke, unmap, task
/// destroy), `Create` (a memory object is zeroed in pieces) and the copies
/// of `MemoryRead`, `MemoryWrite` and their `Rows` forms (a page at a time) go through
/// [`long_call`], which may restart them; the others
/// pay one test for it: for deferred work ([`Kernel::work_pending`]).
pub fn dispatch(k: &mut Kernel, cur: Id, esr: u64, number: u64) {
    let Some(call) = Syscall::from_number(number) else {
        not_a_call(k, cur, esr, number);
        return;
    };
    let result = match call {
        Syscall::Null => Ok(()),
        Syscall::Yield => {
            yield_now(k);
            Ok(())
        }
        Syscall::Sleep => sleep(k, cur),
        Syscall::ThreadExit => {
            thread_exit(k, cur, esr);
            return;
        }
        Syscall::Clock => {
            let r = regs(k, cur);
            r[1] = time::uptime_micros();
            r[2] = time::frequency();
            Ok(())
        }
        Syscall::ConsoleWrite => console_write(k, cur),
        Syscall::Call => ipc::send(k, cur, true),
        Syscall::Send => ipc::send(k, cur, false),
        Syscall::Recv => ipc::recv(k, cur, 0),
        Syscall::Reply => ipc::reply(k, cur),
        Syscall::ReplyRecv => {
            // A failed reply (no caller, or a caller gone) must not stop
            // the server loop; without a caller it changes nothing.
            let _ = ipc::reply(k, cur);
            ipc::recv(k, cur, 7)
        }
        Syscall::Signal => ipc::signal(k, cur),
        Syscall::Wait => ipc::wait(k, cur),
        Syscall::CapCopy => cap_copy(k, cur, false),
        Syscall::CapMint => cap_copy(k, cur, true),
        Syscall::CapInfo => cap_info(k, cur),
        Syscall::CapDelete
        | Syscall::CapRevoke
        | Syscall::Unmap
        | Syscall::TaskDestroy
        | Syscall::Create
        | Syscall::MemoryRead
        | Syscall::MemoryWrite
        | Syscall::MemoryReadRows
        | Syscall::MemoryWriteRows => {
            long_call(k, cur, call);
            return;
        }
        Syscall::Map => match map(k, cur) {
            Some(result) => result,
            // Larger than a piece: made by `long_call`.
            None => return,
        },
        Syscall::MemoryPhysical => memory_physical(k, cur),
        Syscall::DeviceMemory => device_memory(k, cur),
        Syscall::ThreadCreate => thread_create(k, cur),
        Syscall::ThreadResume => thread_resume(k, cur),
        Syscall::ThreadSuspend => thread_suspend(k, cur),
        Syscall::ThreadConfigure => thread_configure(k, cur),
        Syscall::ThreadSetFaultHandler => thread_set_fault_handler(k, cur),
        Syscall::ThreadSetIpcBuffer => thread_set_ipc_buffer(k, cur),
        Syscall::ThreadRegisters => thread_registers(k, cur),
        Syscall::ThreadInfo => thread_info(k, cur),
        Syscall::TaskInstall => task_install(k, cur),
        Syscall::TaskInfo => task_info(k, cur),
        Syscall::IrqBind => irq_bind(k, cur),
        Syscall::IrqAck => irq_ack(k, cur),
        Syscall::IrqCreate => irq_create(k, cur),
        Syscall::KernelStats => kernel_stats(k, cur),
        Syscall::SystemControl => system_control(k, cur),
    };
    set_status(k, cur, result);
    if k.work_pending() {
        deferred_work(k);
    }
}

/// The status of `cur`'s call: a thread that blocked gets it when it is
/// woken. Any other gets it now, also one that another CPU suspended while
/// it came in (it returns from this call when it is resumed).
#[inline(always)]
fn set_status(k: &mut Kernel, cur: Id, result: Result<(), Error>) {
    if let Some(t) = k.threads.get_mut_inlined(cur) {
        let blocked = matches!(
            t.state,
            ThreadState::Sending { .. }
                | ThreadState::Receiving { .. }
                | ThreadState::AwaitingReply { .. }
                | ThreadState::Waiting { .. }
                | ThreadState::Sleeping
        );
        if !blocked || result.is_err() {
            t.set_status(result);
        }
    }
}

/// Work left over by earlier calls: pools to reclaim, and a piece of the
/// teardown nobody waits for (a task whose last thread ended), bounded by
/// a fresh work budget.
#[cold]
#[inline(never)]
fn deferred_work(k: &mut Kernel) {
    if k.reclaim_pending > 0 {
        k.process_reclaims();
    }
    if k.teardown_pending > 0 {
        k.work_left = WORK_BUDGET;
        crate::task::work_off(k);
    }
}

/// The calls that destroy, `Create` and the memory copies, in pieces of a
/// work budget (a memory object's pages are zeroed in pieces, a copy goes
/// a page at a time): out of budget with
/// work left, the call is made again ([`again`]) and goes on where it
/// stopped (a capability being deleted is `dying` meanwhile). Delete,
/// revoke and task destroy return only once all the teardown they caused is
/// done, so that what they destroyed is gone (and its memory back) when
/// they return: the thread waits in its `svc` ([`drain`]).
#[cold]
#[inline(never)]
pub(super) fn long_call(k: &mut Kernel, cur: Id, call: Syscall) {
    k.work_left = WORK_BUDGET;
    let result = match call {
        Syscall::CapDelete => cap_delete(k, cur, false),
        Syscall::CapRevoke => cap_delete(k, cur, true),
        Syscall::Unmap => unmap(k, cur),
        Syscall::Create => create(k, cur),
        Syscall::Map => map_in_pieces(k, cur),
        Syscall::MemoryRead => memory_copy(k, cur, false),
        Syscall::MemoryWrite => memory_copy(k, cur, true),
        Syscall::MemoryReadRows => memory_copy_rows(k, cur, false),
        Syscall::MemoryWriteRows => memory_copy_rows(k, cur, true),
        _ => task_destroy(k, cur),
    };
    if core::mem::take(&mut k.restart) && result.is_ok() {
        // Out of work budget: the call goes on when made again.
        again(k, cur);
        return;
    }
    if result.is_err() && call == Syscall::Create {
        // A memory creation left unfinished by an earlier call (made again
        // with other arguments, or not at all) goes with a failed one.
        drop_creation(k, cur);
    }
    set_status(k, cur, result);
    if k.reclaim_pending > 0 {
        k.process_reclaims();
    }
    if k.teardown_pending > 0
        && !crate::task::work_off(k)
        && !matches!(
            call,
            Syscall::Unmap
                | Syscall::Create
                | Syscall::Map
                | Syscall::MemoryRead
                | Syscall::MemoryWrite
                | Syscall::MemoryReadRows
                | Syscall::MemoryWriteRows
        )
    {
        if let Some(t) = k
            .threads
            .get_mut(cur)
            .filter(|t| matches!(t.state, ThreadState::Running))
        {
            // Done (its status is in its registers); it waits for the
            // teardown: its `svc` is made again as [`DRAIN`].
            t.draining = Some(t.ctx.x[8]);
            t.ctx.x[8] = DRAIN;
            again(k, cur);
        }
    }
}

/// The call number (`x8`) of a thread that waits for teardown in its
/// `svc` ([`crate::thread::Thread::draining`]): no system call has it.
pub const DRAIN: u64 = u64::MAX;

/// `x8` named no system call: a thread waiting for teardown ([`DRAIN`])
/// does a piece of it, and returns once it is all done (with its status
/// and call number as they were); anything else is a bad system call.
#[cold]
#[inline(never)]
fn not_a_call(k: &mut Kernel, cur: Id, esr: u64, number: u64) {
    let draining = k.threads.get(cur).and_then(|t| t.draining);
    match draining {
        Some(x8) if number == DRAIN => {
            k.work_left = WORK_BUDGET;
            if crate::task::work_off(k) {
                if let Some(t) = k.threads.get_mut(cur) {
                    t.draining = None;
                    t.ctx.x[8] = x8;
                }
            } else {
                again(k, cur);
            }
        }
        _ => ipc::deliver_fault(k, cur, FaultKind::BadSyscall, esr, number, false),
    }
}

/// Make the running thread `cur` execute its `svc` again, with the same
/// registers (a restarted call, [`Kernel::restart`]), or as [`DRAIN`].
/// Interrupts, other CPUs and (on its CPU) a thread due to run get in
/// between: the exit takes the scheduler's path ([`Kernel::polite`]).
fn again(k: &mut Kernel, cur: Id) {
    let Some(t) = k.threads.get_mut(cur) else { return };
    if !matches!(t.state, ThreadState::Running) {
        return;
    }
    // The entry saved ELR_EL1 in the context; the exit path restores it
    // from there on a switch, and from ELR_EL1 otherwise: both change.
    t.ctx.elr -= 4;
    crate::arch::set_return_address(t.ctx.elr);
    k.polite = true;
    k.cpus[crate::percpu::current_running().index()].need_resched = true;
}

#[inline(always)]
fn regs(k: &mut Kernel, t: Id) -> &mut [u64; 31] {
    &mut k.threads.get_mut(t).expect("current thread exists").ctx.x
}

fn arg(k: &Kernel, t: Id, i: usize) -> u64 {
    k.threads.get(t).map_or(0, |t| t.ctx.x[i])
}

fn task_of(k: &Kernel, t: Id) -> Result<Id, Error> {
    Ok(k.threads.get(t).ok_or(Error::BadHandle)?.task)
}

/// Gives the caller's task a capability with `rights` to the new `object`
/// (its handle in `x1`); if that fails, destroys the object again (which
/// refunds its pool).
fn give(k: &mut Kernel, cur: Id, object: ObjectRef, rights: Rights) -> Result<(), Error> {
    match task_of(k, cur).and_then(|task| cap::insert(k, task, object, rights, 0, None)) {
        Ok(h) => {
            regs(k, cur)[1] = h.0 as u64;
            Ok(())
        }
        Err(e) => {
            // Nobody holds it: destroy it again.
            k.add_ref(object);
            k.release(object);
            Err(e)
        }
    }
}

/// The object of the capability in register `i`, with `rights`.
fn object(k: &Kernel, t: Id, i: usize, rights: Rights) -> Result<(Id, ObjectRef), Error> {
    let task = task_of(k, t)?;
    let (id, node) = cap::lookup_with(k, task, cap::handle_arg(arg(k, t, i))?, rights)?;
    Ok((id, node.object))
}

/// The pool in register `i`, with `rights`: `WRITE` to allocate objects
/// from it, `MANAGE` also to split a pool off it (see `abi::Rights`).
fn pool_arg(k: &Kernel, t: Id, i: usize, rights: Rights) -> Result<Id, Error> {
    match object(k, t, i, rights)?.1 {
        ObjectRef::Pool(p) => Ok(p),
        _ => Err(Error::WrongType),
    }
}

/// The task in register `i`, with `rights`: `MAP` to map into its address
/// space, `WRITE` to start threads in it, `READ` for its information,
/// `MANAGE` to install capabilities or destroy it (see `abi::Rights`).
fn task_arg(k: &Kernel, t: Id, i: usize, rights: Rights) -> Result<Id, Error> {
    match object(k, t, i, rights)?.1 {
        ObjectRef::Task(p) => Ok(p),
        _ => Err(Error::WrongType),
    }
}

fn thread_arg(k: &Kernel, t: Id, i: usize) -> Result<Id, Error> {
    match object(k, t, i, Rights::MANAGE)?.1 {
        ObjectRef::Thread(p) => Ok(p),
        _ => Err(Error::WrongType),
    }
}
