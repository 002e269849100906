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

pub use memory::create_memory;

use crate::cap;
use crate::ipc;
use crate::object::{Id, Kernel, ObjectRef};
use crate::thread::ThreadState;
use crate::time;
use abi::{Error, FaultKind, Rights, Syscall};
use caps::{cap_copy, cap_delete, cap_info};
use create::create;
use irq::{irq_ack, irq_bind};
use memory::{device_memory, map, memory_physical, unmap};
use system::{console_write, kernel_stats, system_control};
use task::{task_destroy, task_info, task_install};
use thread::{
    sleep, thread_configure, thread_create, thread_exit, thread_info, thread_registers, thread_resume,
    thread_set_fault_handler, thread_set_ipc_buffer, thread_suspend, yield_now,
};

/// Handle the `svc` of thread `cur` (alive), system call `number` (its `x8`).
pub fn dispatch(k: &mut Kernel, cur: Id, esr: u64, number: u64) {
    let Some(call) = Syscall::from_number(number) else {
        ipc::deliver_fault(k, cur, FaultKind::BadSyscall, esr, number, false);
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
            r[2] = hal::cpu::counter_frequency();
            Ok(())
        }
        Syscall::ConsoleWrite => console_write(k, cur),
        Syscall::Call => ipc::send(k, cur, true),
        Syscall::Send => ipc::send(k, cur, false),
        Syscall::Recv => ipc::recv(k, cur, 0),
        Syscall::Reply => ipc::reply(k, cur),
        Syscall::ReplyRecv => {
            if k.threads.get(cur).is_some_and(|t| t.caller.is_some()) {
                // A failed reply (caller gone) must not stop the server loop.
                let _ = ipc::reply(k, cur);
            }
            ipc::recv(k, cur, 7)
        }
        Syscall::Signal => ipc::signal(k, cur),
        Syscall::Wait => ipc::wait(k, cur),
        Syscall::CapCopy => cap_copy(k, cur, false),
        Syscall::CapMint => cap_copy(k, cur, true),
        Syscall::CapDelete => cap_delete(k, cur, false),
        Syscall::CapRevoke => cap_delete(k, cur, true),
        Syscall::CapInfo => cap_info(k, cur),
        Syscall::Create => create(k, cur),
        Syscall::Map => map(k, cur),
        Syscall::Unmap => unmap(k, cur),
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
        Syscall::TaskDestroy => task_destroy(k, cur),
        Syscall::TaskInfo => task_info(k, cur),
        Syscall::IrqBind => irq_bind(k, cur),
        Syscall::IrqAck => irq_ack(k, cur),
        Syscall::KernelStats => kernel_stats(k, cur),
        Syscall::SystemControl => system_control(k, cur),
    };
    if let Some(t) = k.threads.get_mut_inlined(cur) {
        // A thread that blocked gets its status when it is woken. Any other
        // gets it now, also one that another CPU suspended while it came
        // in (it returns from this call when it is resumed).
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
    if k.reclaim_pending > 0 {
        k.process_reclaims();
    }
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
