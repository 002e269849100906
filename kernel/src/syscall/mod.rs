//! System-call dispatch: decode `x8`, check capabilities, act, and leave
//! results in the caller's saved registers (see the `abi` crate).

use crate::cap;
use crate::object::{Id, Kernel, MemoryKind, ObjectRef, Pool, POOL_COST};
use crate::thread::{Thread, ThreadState, THREAD_COST};
use crate::{ipc, sched, task, time};
use abi::{Error, FaultKind, ObjectType, Rights, Syscall};

/// Most bytes one ConsoleWrite prints.
const CONSOLE_WRITE_MAX: usize = 256;

/// Handle the `svc` of thread `cur`.
pub fn dispatch(k: &mut Kernel, cur: Id, esr: u64) {
    let Some(t) = k.threads.get(cur) else { return };
    let number = t.ctx.x[8];
    let Some(call) = Syscall::from_number(number) else {
        ipc::deliver_fault(k, cur, FaultKind::BadSyscall, esr, number, false);
        return;
    };
    let result = match call {
        Syscall::Null => Ok(()),
        Syscall::Yield => {
            yield_now(k, cur);
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
        Syscall::KernelStats => {
            let objects = k.objects_alive();
            let (_, heap_used) = crate::mm::heap::stats();
            let r = regs(k, cur);
            r[1] = objects;
            r[2] = crate::mm::available_bytes();
            r[3] = heap_used as u64;
            Ok(())
        }
        Syscall::SystemControl => system_control(k, cur),
    };
    if let Some(t) = k.threads.get_mut(cur) {
        // A thread that blocked gets its status when it is woken.
        if matches!(t.state, ThreadState::Running) || result.is_err() {
            t.set_status(result);
        }
    }
    k.process_reclaims();
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

fn pool_arg(k: &Kernel, t: Id, i: usize) -> Result<Id, Error> {
    match object(k, t, i, Rights::MANAGE)?.1 {
        ObjectRef::Pool(p) => Ok(p),
        _ => Err(Error::WrongType),
    }
}

fn task_arg(k: &Kernel, t: Id, i: usize) -> Result<Id, Error> {
    match object(k, t, i, Rights::MANAGE)?.1 {
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

fn yield_now(k: &mut Kernel, cur: Id) {
    let Some(t) = k.threads.get(cur) else { return };
    let cpu = t.cpu;
    // Round robin: end the slice now; pick_next rotates if an equal peer waits.
    k.cpus[cpu].need_resched = true;
    crate::sched::expire_slice(k, cpu);
}

fn sleep(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let micros = arg(k, cur, 1);
    if micros == 0 {
        yield_now(k, cur);
        return Ok(());
    }
    let deadline = hal::cpu::counter().saturating_add(time::micros_to_ticks(micros));
    k.threads.get_mut(cur).ok_or(Error::BadHandle)?.state = ThreadState::Sleeping;
    sched::add_timeout(k, cur, deadline);
    Ok(())
}

fn thread_exit(k: &mut Kernel, cur: Id, esr: u64) {
    let code = arg(k, cur, 1);
    let has_handler = k.threads.get(cur).is_some_and(|t| t.fault_handler.is_some());
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

fn console_write(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    if object(k, cur, 0, Rights::WRITE)?.1 != ObjectRef::Console {
        return Err(Error::WrongType);
    }
    let (va, len) = (arg(k, cur, 1), arg(k, cur, 2) as usize);
    if len > CONSOLE_WRITE_MAX {
        return Err(Error::InvalidArgument);
    }
    let mut buf = [0u8; CONSOLE_WRITE_MAX];
    task::copy_from_user(k, task_of(k, cur)?, va, &mut buf[..len])?;
    let text = core::str::from_utf8(&buf[..len]).unwrap_or("<invalid UTF-8>");
    crate::console::with_writer(|w| {
        let _ = w.write_str(text);
    });
    Ok(())
}

fn cap_copy(k: &mut Kernel, cur: Id, mint: bool) -> Result<(), Error> {
    let task = task_of(k, cur)?;
    let source = cap::lookup(k, task, cap::handle_arg(arg(k, cur, 0))?)?;
    let rights = Rights::from_bits_truncate(arg(k, cur, 1) as u32);
    let badge = mint.then(|| arg(k, cur, 2));
    let h = cap::derive(k, source, task, rights, badge)?;
    regs(k, cur)[1] = h.0 as u64;
    Ok(())
}

fn cap_delete(k: &mut Kernel, cur: Id, revoke: bool) -> Result<(), Error> {
    let task = task_of(k, cur)?;
    let id = cap::lookup(k, task, cap::handle_arg(arg(k, cur, 0))?)?;
    if revoke {
        cap::revoke(k, id);
    } else {
        cap::delete(k, id);
    }
    Ok(())
}

fn cap_info(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let task = task_of(k, cur)?;
    let id = cap::lookup(k, task, cap::handle_arg(arg(k, cur, 0))?)?;
    let node = k.caps.get(id).ok_or(Error::BadHandle)?;
    let (object, rights, badge) = (node.object, node.rights, node.badge);
    let size = match object {
        ObjectRef::Pool(p) => k.pools.get(p).map_or(0, |p| p.bytes_left),
        ObjectRef::Memory(m) => k.memories.get(m).map_or(0, |m| (m.pages * abi::PAGE_SIZE) as u64),
        _ => 0,
    };
    let ty = object.object_type(k) as u64;
    let r = regs(k, cur);
    r[1] = ty;
    r[2] = rights.bits() as u64;
    r[3] = badge;
    r[4] = size;
    Ok(())
}

fn create(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let pool = pool_arg(k, cur, 0)?;
    let task = task_of(k, cur)?;
    let size = arg(k, cur, 2);
    let object = match ObjectType::from_word(arg(k, cur, 1)) {
        Some(ObjectType::Pool) => {
            k.charge(pool, size.checked_add(POOL_COST).ok_or(Error::InvalidArgument)?)?;
            let p = Pool {
                bytes_left: size,
                parent: Some(pool),
                refs: 0,
                caps: 0,
            };
            match k.pools.insert(p) {
                Ok(id) => {
                    k.add_ref(ObjectRef::Pool(pool));
                    ObjectRef::Pool(id)
                }
                Err(_) => {
                    k.refund(pool, size + POOL_COST);
                    return Err(Error::OutOfMemory);
                }
            }
        }
        Some(ObjectType::Task) => ObjectRef::Task(task::create(k, pool, "task")?),
        Some(ObjectType::Endpoint) => ObjectRef::Endpoint(ipc::create_endpoint(k, pool)?),
        Some(ObjectType::Notification) => ObjectRef::Notification(ipc::create_notification(k, pool)?),
        Some(ObjectType::Memory) => ObjectRef::Memory(create_memory(k, pool, size)?),
        _ => return Err(Error::InvalidArgument),
    };
    match cap::insert(k, task, object, Rights::FULL, 0, None) {
        Ok(h) => {
            regs(k, cur)[1] = h.0 as u64;
            Ok(())
        }
        Err(e) => {
            // Nobody holds it: destroy it again (refunds the pool).
            k.add_ref(object);
            k.release(object);
            Err(e)
        }
    }
}

/// A RAM memory object of `pages` zeroed, physically contiguous pages.
pub fn create_memory(k: &mut Kernel, pool: Id, pages: u64) -> Result<Id, Error> {
    const MAX_PAGES: u64 = 1 << 18; // 1 GiB
    if pages == 0 || pages > MAX_PAGES {
        return Err(Error::InvalidArgument);
    }
    let pages = pages as usize;
    let charge = crate::mm::frames::charge(pages);
    k.charge(pool, charge)?;
    let Some(physical) = crate::mm::frames::alloc_zeroed(pages) else {
        k.refund(pool, charge);
        return Err(Error::OutOfMemory);
    };
    let m = crate::object::Memory {
        physical,
        pages,
        kind: MemoryKind::Ram,
        pool: Some(pool),
        charge,
        refs: 0,
    };
    match k.memories.insert(m) {
        Ok(id) => {
            k.add_ref(ObjectRef::Pool(pool));
            Ok(id)
        }
        Err(_) => {
            crate::mm::frames::free(physical, pages);
            k.refund(pool, charge);
            Err(Error::OutOfMemory)
        }
    }
}

fn map(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let target = task_arg(k, cur, 0)?;
    let rights = Rights::from_bits_truncate(arg(k, cur, 5) as u32) & (Rights::READ | Rights::WRITE | Rights::EXECUTE);
    let (cap_id, object) = object(k, cur, 1, Rights::MAP | rights)?;
    let ObjectRef::Memory(memory) = object else {
        return Err(Error::WrongType);
    };
    let (pages, offset, va) = (arg(k, cur, 2) as usize, arg(k, cur, 3) as usize, arg(k, cur, 4));
    task::map(k, target, cap_id, memory, offset, pages, va, rights)
}

fn unmap(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let target = task_arg(k, cur, 0)?;
    task::unmap(k, target, arg(k, cur, 1), arg(k, cur, 2) as usize)
}

fn memory_physical(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let ObjectRef::Memory(m) = object(k, cur, 0, Rights::MANAGE)?.1 else {
        return Err(Error::WrongType);
    };
    let mem = k.memories.get(m).ok_or(Error::BadHandle)?;
    let (pa, size) = (mem.physical, (mem.pages * abi::PAGE_SIZE) as u64);
    let r = regs(k, cur);
    r[1] = pa;
    r[2] = size;
    Ok(())
}

fn device_memory(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    const MAX_PAGES: u64 = 1 << 20; // 4 GiB
    let pool = pool_arg(k, cur, 0)?;
    if object(k, cur, 1, Rights::MANAGE)?.1 != ObjectRef::Console {
        return Err(Error::WrongType);
    }
    let (physical, pages) = (arg(k, cur, 2), arg(k, cur, 3));
    let bytes = pages.checked_mul(abi::PAGE_SIZE as u64).ok_or(Error::InvalidArgument)?;
    let range = crate::mm::regions::Range::new(physical, bytes);
    if !physical.is_multiple_of(abi::PAGE_SIZE as u64)
        || pages == 0
        || pages > MAX_PAGES
        || range.end == u64::MAX
        || !crate::mm::physical::is_device_memory(range)
    {
        return Err(Error::InvalidArgument);
    }
    k.charge(pool, crate::object::IPC_OBJECT_COST)?;
    let m = crate::object::Memory {
        physical,
        pages: pages as usize,
        kind: MemoryKind::Device,
        pool: Some(pool),
        charge: crate::object::IPC_OBJECT_COST,
        refs: 0,
    };
    let Ok(id) = k.memories.insert(m) else {
        k.refund(pool, crate::object::IPC_OBJECT_COST);
        return Err(Error::OutOfMemory);
    };
    k.add_ref(ObjectRef::Pool(pool));
    let object = ObjectRef::Memory(id);
    let task = task_of(k, cur)?;
    let rights = Rights::READ | Rights::WRITE | Rights::MAP | Rights::GRANT | Rights::MANAGE;
    match cap::insert(k, task, object, rights, 0, None) {
        Ok(h) => {
            regs(k, cur)[1] = h.0 as u64;
            Ok(())
        }
        Err(e) => {
            // Nobody holds it: destroy it again (refunds the pool).
            k.add_ref(object);
            k.release(object);
            Err(e)
        }
    }
}

fn thread_create(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let pool = pool_arg(k, cur, 0)?;
    let target = task_arg(k, cur, 1)?;
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

fn thread_resume(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let t = thread_arg(k, cur, 0)?;
    match k.threads.get(t).map(|t| t.state) {
        Some(ThreadState::Inactive) | Some(ThreadState::Suspended) => {
            sched::make_ready(k, t);
            Ok(())
        }
        Some(_) => Err(Error::InvalidState),
        None => Err(Error::BadHandle),
    }
}

fn thread_suspend(k: &mut Kernel, cur: Id) -> Result<(), Error> {
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
    if th.cpu != crate::percpu::index() {
        crate::irq::send_ipi(th.cpu, crate::irq::SGI_WAKE);
    }
    Ok(())
}

fn thread_configure(k: &mut Kernel, cur: Id) -> Result<(), Error> {
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
    if was_ready {
        sched::make_ready(k, t);
    } else if matches!(state, ThreadState::Running) && th.cpu != crate::percpu::index() {
        // Running here but moved away, or running elsewhere: reschedule there.
        let c = th.cpu;
        k.cpus[crate::percpu::index()].need_resched = true;
        crate::irq::send_ipi(c, crate::irq::SGI_WAKE);
    }
    Ok(())
}

fn thread_set_fault_handler(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let t = thread_arg(k, cur, 0)?;
    let task = task_of(k, cur)?;
    let (_, node) = cap::lookup_with(k, task, cap::handle_arg(arg(k, cur, 1))?, Rights::SEND)?;
    let ObjectRef::Endpoint(ep) = node.object else {
        return Err(Error::WrongType);
    };
    let badge = node.badge;
    k.threads.get_mut(t).ok_or(Error::BadHandle)?.fault_handler = Some((ep, badge));
    Ok(())
}

fn thread_set_ipc_buffer(k: &mut Kernel, cur: Id) -> Result<(), Error> {
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

fn thread_registers(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let t = thread_arg(k, cur, 0)?;
    let write = arg(k, cur, 2) == 1;
    let (pc, sp) = (arg(k, cur, 3), arg(k, cur, 4));
    let th = k.threads.get_mut(t).ok_or(Error::BadHandle)?;
    let stopped = matches!(th.state, ThreadState::Suspended | ThreadState::Inactive) || th.fault.is_some();
    if !stopped {
        return Err(Error::InvalidState);
    }
    if write {
        if pc >= abi::USER_LIMIT || sp >= abi::USER_LIMIT {
            return Err(Error::InvalidArgument);
        }
        th.ctx.elr = pc;
        th.ctx.sp = sp;
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
mod thread_state {
    pub const RUNNING: u64 = 0;
    pub const READY: u64 = 1;
    pub const BLOCKED: u64 = 2;
    pub const SUSPENDED: u64 = 3;
    pub const FAULTED: u64 = 4;
    pub const DEAD: u64 = 5;
}

/// [`Syscall::TaskInfo`] states (`x3`).
mod task_state {
    pub const RUNNING: u64 = 0;
    pub const BLOCKED: u64 = 1;
    pub const STOPPED: u64 = 2;
    pub const DEAD: u64 = 3;
}

/// What a thread is doing, as [`Syscall::ThreadInfo`] reports it.
fn thread_state_word(t: &Thread) -> u64 {
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

fn thread_info(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let t = thread_arg(k, cur, 0)?;
    let th = k.threads.get(t).ok_or(Error::BadHandle)?;
    let ticks = sched::thread_ticks(k, t, time::cpu_clock());
    // Running: where it runs (it may be moving elsewhere); else the CPU
    // it belongs to, where it last ran unless it was moved since.
    let running_on = k.cpus.iter().position(|c| c.current == Some(t));
    let cpu = running_on.unwrap_or(th.cpu) as u64;
    let (state, priority) = (thread_state_word(th), th.priority as u64);
    let r = regs(k, cur);
    r[1] = state;
    r[2] = time::ticks_to_micros(ticks);
    r[3] = priority;
    r[4] = cpu;
    Ok(())
}

fn task_info(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let target = task_arg(k, cur, 0)?;
    let tk = k.tasks.get(target).ok_or(Error::BadHandle)?;
    let now = time::cpu_clock();
    let mut ticks = tk.exited_ticks;
    let mut state = if tk.alive {
        task_state::STOPPED
    } else {
        task_state::DEAD
    };
    for &id in &tk.threads {
        ticks += sched::thread_ticks(k, id, now);
        let word = k.threads.get(id).map_or(thread_state::DEAD, |t| thread_state_word(t));
        state = match word {
            thread_state::RUNNING | thread_state::READY => task_state::RUNNING,
            thread_state::BLOCKED if state != task_state::RUNNING => task_state::BLOCKED,
            _ => state,
        };
    }
    let threads = tk.threads.len() as u64;
    let r = regs(k, cur);
    r[1] = time::ticks_to_micros(ticks);
    r[2] = threads;
    r[3] = state;
    Ok(())
}

/// [`Syscall::SystemControl`] operations (`x1`).
const POWER_OFF: u64 = 0;
const REBOOT: u64 = 1;

fn system_control(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    // The operation first: a program without the right can still learn
    // that it asked for something that does not exist.
    let reboot = match arg(k, cur, 1) {
        POWER_OFF => false,
        REBOOT => true,
        _ => return Err(Error::InvalidArgument),
    };
    if object(k, cur, 0, Rights::MANAGE)?.1 != ObjectRef::Console {
        return Err(Error::WrongType);
    }
    if !crate::power::can_power_off() {
        return Err(Error::NotSupported);
    }
    let task = task_of(k, cur)?;
    let name = k.tasks.get(task).map(|t| t.name).unwrap_or_default();
    crate::info!(
        "power: {} requested by task {}",
        if reboot { "reboot" } else { "power off" },
        abi::boot_info::nul_terminated(&name)
    );
    if reboot {
        crate::power::reboot()
    } else {
        crate::power::power_off()
    }
}

fn task_install(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let target = task_arg(k, cur, 0)?;
    let task = task_of(k, cur)?;
    let source = cap::lookup(k, task, cap::handle_arg(arg(k, cur, 1))?)?;
    let rights = Rights::from_bits_truncate(arg(k, cur, 2) as u32);
    if !k.tasks.get(target).is_some_and(|t| t.alive) {
        return Err(Error::InvalidState);
    }
    let h = cap::derive(k, source, target, rights, None)?;
    regs(k, cur)[1] = h.0 as u64;
    Ok(())
}

fn task_destroy(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let target = task_arg(k, cur, 0)?;
    task::kill(k, target);
    Ok(())
}

fn irq_bind(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let ObjectRef::Irq(irq) = object(k, cur, 0, Rights::MANAGE)?.1 else {
        return Err(Error::WrongType);
    };
    let ObjectRef::Notification(n) = object(k, cur, 1, Rights::SEND)?.1 else {
        return Err(Error::WrongType);
    };
    let bits = arg(k, cur, 2);
    if bits == 0 {
        return Err(Error::InvalidArgument);
    }
    // A weak link: the binding does not keep the notification alive.
    k.irqs.get_mut(irq).ok_or(Error::BadHandle)?.notification = Some((n, bits));
    let intid = k.irqs.get(irq).map_or(0, |i| i.intid);
    crate::irq::bind(intid, irq);
    Ok(())
}

fn irq_ack(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let ObjectRef::Irq(irq) = object(k, cur, 0, Rights::MANAGE)?.1 else {
        return Err(Error::WrongType);
    };
    let intid = k.irqs.get(irq).ok_or(Error::BadHandle)?.intid;
    crate::irq::unmask(intid);
    Ok(())
}
