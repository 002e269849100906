//! Thread system calls: yield, sleep, exit, create, resume, suspend,
//! configure, fault handler, IPC buffer, registers and info.

use super::{arg, pool_arg, regs, task_arg, task_of, thread_arg};
use crate::object::{Id, Kernel, ObjectRef};
use crate::thread::{Thread, ThreadState, THREAD_COST};
use crate::{cap, ipc, sched, task, time};
use abi::{Error, FaultKind, Rights};

/// Round robin: end the slice on the CPU the caller runs on now;
/// `pick_next` rotates if an equal peer waits there (and hands the caller
/// over if its affinity moved).
pub(super) fn yield_now(k: &mut Kernel) {
    crate::sched::expire_slice(k, crate::percpu::current_running().index());
}

pub(super) fn sleep(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let micros = arg(k, cur, 1);
    if micros == 0 {
        yield_now(k);
        return Ok(());
    }
    let deadline = hal::cpu::counter().saturating_add(time::micros_to_ticks(micros));
    k.threads.get_mut(cur).ok_or(Error::BadHandle)?.state = ThreadState::Sleeping;
    sched::add_timeout(k, cur, deadline);
    Ok(())
}

pub(super) fn thread_exit(k: &mut Kernel, cur: Id, esr: u64) {
    let code = arg(k, cur, 1);
    let has_handler = ipc::fault_handler(k, cur).is_some();
    if code != 0 && has_handler {
        ipc::deliver_fault(k, cur, FaultKind::Panic, esr, code, true);
    } else {
        if let Some(task) = k.threads.get(cur).map(|t| t.task) {
            if k.init_task == Some(task) {
                crate::boot_task::set_exit_code(code);
            }
        }
        crate::thread::kill(k, cur);
    }
}

pub(super) fn thread_create(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let pool = pool_arg(k, cur, 0, Rights::WRITE)?;
    let target = task_arg(k, cur, 1, Rights::WRITE)?;
    let (entry, sp, argument, priority) = (arg(k, cur, 2), arg(k, cur, 3), arg(k, cur, 4), arg(k, cur, 5));
    let me = k.threads.get(cur).ok_or(Error::BadHandle)?;
    if priority > me.priority as u64 || entry >= abi::USER_LIMIT || sp >= abi::USER_LIMIT {
        return Err(Error::InvalidArgument);
    }
    if !k.tasks.get(target).is_some_and(|t| t.alive) {
        return Err(Error::InvalidState);
    }
    let cpu = next_cpu(k);
    k.charge(pool, THREAD_COST)?;
    let t = k.tasks.get_mut(target).expect("checked");
    let (ttbr0, cspace) = (t.ttbr0(), t.cspace_ptr());
    let thread = Thread::new(target, cspace, ttbr0, pool, entry, sp, argument, priority as u8, cpu);
    let Some(boxed) = crate::mm::heap::try_box(thread) else {
        k.refund(pool, THREAD_COST);
        return Err(Error::OutOfMemory);
    };
    if k.tasks
        .get_mut(target)
        .expect("checked")
        .threads
        .try_reserve(1)
        .is_err()
    {
        k.refund(pool, THREAD_COST);
        return Err(Error::OutOfMemory);
    }
    let Ok(id) = crate::thread::insert(k, boxed) else {
        k.refund(pool, THREAD_COST);
        return Err(Error::OutOfMemory);
    };
    k.add_ref(ObjectRef::Pool(pool));
    k.tasks.get_mut(target).expect("checked").threads.push(id);
    // The thread's own references: to itself (while alive) and its task.
    k.add_ref(ObjectRef::Thread(id));
    k.add_ref(ObjectRef::Task(target));
    let task = task_of(k, cur)?;
    match cap::insert(k, task, ObjectRef::Thread(id), Rights::FULL, 0, None) {
        Ok(h) => {
            regs(k, cur)[1] = h.0 as u64;
            Ok(())
        }
        Err(e) => {
            crate::thread::kill(k, id);
            Err(e)
        }
    }
}

/// Spread new threads over the online CPUs.
fn next_cpu(k: &Kernel) -> usize {
    let online: usize = crate::percpu::all()
        .iter()
        .filter(|c| c.online.load(core::sync::atomic::Ordering::Relaxed))
        .count();
    (k.threads.len()) % online.max(1)
}

pub(super) fn thread_resume(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let t = thread_arg(k, cur, 0)?;
    match k.threads.get(t).map(|t| t.state) {
        Some(ThreadState::Inactive) | Some(ThreadState::Suspended) => {
            match sched::running_on(k, t) {
                // Suspended from another CPU that has not switched away
                // from it yet: its registers are live there, so it goes on
                // running there (that CPU hands it over at its next pick if
                // its affinity moved meanwhile). Queued, another CPU could
                // run it at the same time.
                Some(on) => {
                    k.threads.get_mut(t).expect("checked").state = ThreadState::Running;
                    reschedule(k, on);
                }
                None => sched::make_ready(k, t),
            }
            Ok(())
        }
        Some(_) => Err(Error::InvalidState),
        None => Err(Error::BadHandle),
    }
}

pub(super) fn thread_suspend(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let t = thread_arg(k, cur, 0)?;
    let state = k.threads.get(t).map(|t| t.state).ok_or(Error::BadHandle)?;
    if matches!(state, ThreadState::Dead) {
        return Err(Error::InvalidState);
    }
    ipc::abandon(k, t);
    sched::remove(k, t);
    let th = k.threads.get_mut(t).expect("checked");
    if matches!(
        state,
        ThreadState::Sending { .. }
            | ThreadState::Receiving { .. }
            | ThreadState::Waiting { .. }
            | ThreadState::Sleeping
            | ThreadState::AwaitingReply { .. }
    ) {
        // The abandoned call returns this when the thread is resumed.
        th.ctx.x[0] = Error::InvalidState as u64;
    }
    th.state = ThreadState::Suspended;
    th.fault = None;
    // Where it runs (not necessarily its own CPU, if its affinity changed):
    // that CPU switches away from it.
    if let Some(on) = sched::running_on(k, t) {
        reschedule(k, on);
    }
    Ok(())
}

/// Make CPU `cpu` pick again what it runs: this one at the end of the
/// system call, another through an interrupt.
fn reschedule(k: &mut Kernel, cpu: usize) {
    if cpu == crate::percpu::index() {
        k.cpus[cpu].need_resched = true;
    } else {
        crate::irq::send_ipi(cpu, crate::irq::SGI_WAKE);
    }
}

pub(super) fn thread_configure(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let t = thread_arg(k, cur, 0)?;
    let (priority, cpu) = (arg(k, cur, 1), arg(k, cur, 2));
    let my_priority = k.threads.get(cur).map_or(0, |t| t.priority as u64);
    if priority > my_priority {
        return Err(Error::InvalidArgument);
    }
    let online = |c: usize| {
        crate::percpu::all()
            .get(c)
            .is_some_and(|p| p.online.load(core::sync::atomic::Ordering::Relaxed))
    };
    let new_cpu = if cpu == u64::MAX {
        None
    } else if online(cpu as usize) {
        Some(cpu as usize)
    } else {
        return Err(Error::InvalidArgument);
    };
    let state = k.threads.get(t).map(|t| t.state).ok_or(Error::BadHandle)?;
    let was_ready = matches!(state, ThreadState::Ready);
    if was_ready {
        sched::remove(k, t);
    }
    let th = k.threads.get_mut(t).expect("checked");
    th.priority = priority as u8;
    if let Some(c) = new_cpu {
        th.cpu = c;
    }
    let belongs = th.cpu;
    if was_ready {
        sched::make_ready(k, t);
    } else if let Some(on) = sched::running_on(k, t).filter(|on| *on != belongs) {
        // Running on a CPU it no longer belongs to: that CPU hands it over.
        reschedule(k, on);
    }
    Ok(())
}

pub(super) fn thread_set_fault_handler(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let t = thread_arg(k, cur, 0)?;
    let task = task_of(k, cur)?;
    let (id, node) = cap::lookup_with(k, task, cap::handle_arg(arg(k, cur, 1))?, Rights::SEND)?;
    let ObjectRef::Endpoint(_) = node.object else {
        return Err(Error::WrongType);
    };
    // The thread keeps the capability's name, not the endpoint's: when the
    // capability is deleted or revoked, the link goes with it.
    k.threads.get_mut(t).ok_or(Error::BadHandle)?.fault_handler = Some(id);
    Ok(())
}

pub(super) fn thread_set_ipc_buffer(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let va = arg(k, cur, 1);
    if !va.is_multiple_of(abi::PAGE_SIZE as u64) {
        return Err(Error::InvalidArgument);
    }
    let task = task_of(k, cur)?;
    // It must be writable user memory now; it is re-checked on every use.
    task::copy_to_user(k, task, va, &[])?;
    let mut probe = [0u8; 1];
    task::copy_from_user(k, task, va, &mut probe)?;
    task::copy_to_user(k, task, va, &probe)?;
    k.threads.get_mut(cur).ok_or(Error::BadHandle)?.ipc_buffer = Some(va);
    Ok(())
}

pub(super) fn thread_registers(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let t = thread_arg(k, cur, 0)?;
    let write = arg(k, cur, 2) == 1;
    let (pc, sp) = (arg(k, cur, 3), arg(k, cur, 4));
    // Suspended from another CPU that has not switched away from it yet:
    // its registers are still live there, not in its context.
    let switched_out = sched::running_on(k, t).is_none();
    let th = k.threads.get_mut(t).ok_or(Error::BadHandle)?;
    let stopped = matches!(th.state, ThreadState::Suspended | ThreadState::Inactive) || th.fault.is_some();
    if !stopped || !switched_out {
        return Err(Error::InvalidState);
    }
    if write {
        if pc >= abi::USER_LIMIT || sp >= abi::USER_LIMIT {
            return Err(Error::InvalidArgument);
        }
        th.ctx.elr = pc;
        th.ctx.sp = sp;
        if let Some(x8) = th.draining.take() {
            // It waited in its `svc` for teardown (`syscall::DRAIN`): it
            // goes elsewhere now, with its own `x8`.
            th.ctx.x[8] = x8;
        }
        Ok(())
    } else {
        let (pc, sp) = (th.ctx.elr, th.ctx.sp);
        let r = regs(k, cur);
        r[3] = pc;
        r[4] = sp;
        Ok(())
    }
}

/// [`Syscall::ThreadInfo`] states (`x1`).
pub(super) mod thread_state {
    pub const RUNNING: u64 = 0;
    pub const READY: u64 = 1;
    pub const BLOCKED: u64 = 2;
    pub const SUSPENDED: u64 = 3;
    pub const FAULTED: u64 = 4;
    pub const DEAD: u64 = 5;
}

/// What a thread is doing, as [`Syscall::ThreadInfo`] reports it.
pub(super) fn thread_state_word(t: &Thread) -> u64 {
    match t.state {
        ThreadState::Dead => thread_state::DEAD,
        // A fault message is waiting to be taken or answered.
        _ if t.fault.is_some() => thread_state::FAULTED,
        ThreadState::Running => thread_state::RUNNING,
        ThreadState::Ready => thread_state::READY,
        ThreadState::Inactive | ThreadState::Suspended => thread_state::SUSPENDED,
        ThreadState::Sending { .. }
        | ThreadState::Receiving { .. }
        | ThreadState::AwaitingReply { .. }
        | ThreadState::Waiting { .. }
        | ThreadState::Sleeping => thread_state::BLOCKED,
    }
}

pub(super) fn thread_info(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let t = thread_arg(k, cur, 0)?;
    let th = k.threads.get(t).ok_or(Error::BadHandle)?;
    let ticks = sched::thread_ticks(k, t, time::cpu_clock());
    // Running: where it runs (it may be moving elsewhere); else the CPU
    // it belongs to, where it last ran unless it was moved since.
    let running_on = sched::running_on(k, t);
    let cpu = running_on.unwrap_or(th.cpu) as u64;
    let (state, priority) = (thread_state_word(th), th.priority as u64);
    let r = regs(k, cur);
    r[1] = state;
    r[2] = time::ticks_to_micros(ticks);
    r[3] = priority;
    r[4] = cpu;
    Ok(())
}
