//! Synchronous IPC on endpoints, notifications, and fault messages.
//!
//! A blocked sender's message stays in its saved registers (or in its
//! pending fault); the kernel copies it when a receiver arrives. Register
//! messages never touch memory; longer ones and capability transfers go
//! through the two threads' IPC buffers.

use crate::cap;
use crate::object::{Endpoint, Id, IdQueue, Kernel, Notification, ObjectPtr, ObjectRef, IPC_OBJECT_COST};
use crate::sched;
use crate::task::{copy_from_user, copy_to_user};
use crate::thread::{Caller, Fault, Thread, ThreadState, UserContext};
use abi::{Error, FaultKind, Handle, IpcBuffer, IpcFlags, MessageInfo, Rights, BUFFER_WORDS, REGISTER_WORDS};

const WORDS_OFFSET: u64 = core::mem::offset_of!(IpcBuffer, words) as u64;
const CAPS_OFFSET: u64 = core::mem::offset_of!(IpcBuffer, caps) as u64;
const CAP_RIGHTS_OFFSET: u64 = core::mem::offset_of!(IpcBuffer, cap_rights) as u64;

#[inline(always)]
fn thread_task(k: &Kernel, t: Id) -> Result<Id, Error> {
    Ok(k.threads.get(t).ok_or(Error::BadHandle)?.task)
}

/// The endpoint a handle names, with `rights`; returns it and the badge.
#[inline]
fn endpoint_arg(k: &Kernel, task: Id, handle: u64, rights: Rights) -> Result<(Id, u64), Error> {
    let (_, node) = cap::lookup_with(k, task, cap::handle_arg(handle)?, rights)?;
    match node.object {
        ObjectRef::Endpoint(ep) => Ok((ep, node.badge)),
        _ => Err(Error::WrongType),
    }
}

fn notification_arg(k: &Kernel, task: Id, handle: u64, rights: Rights) -> Result<Id, Error> {
    let (_, node) = cap::lookup_with(k, task, cap::handle_arg(handle)?, rights)?;
    match node.object {
        ObjectRef::Notification(n) => Ok(n),
        _ => Err(Error::WrongType),
    }
}

/// Check the message `sender` is about to send: sizes, IPC buffer, and that
/// each capability it names may be granted.
fn check_message(k: &mut Kernel, sender: Id, info: MessageInfo) -> Result<(), Error> {
    if !info.is_valid() {
        return Err(Error::InvalidArgument);
    }
    if info.words() <= REGISTER_WORDS && info.caps() == 0 {
        return Ok(());
    }
    let t = k.threads.get(sender).ok_or(Error::BadHandle)?;
    let (task, buffer) = (t.task, t.ipc_buffer.ok_or(Error::NoIpcBuffer)?);
    for i in 0..info.caps() {
        let mut raw = [0u8; 4];
        copy_from_user(k, task, buffer + CAPS_OFFSET + 4 * i as u64, &mut raw)?;
        cap::lookup_with(k, task, Handle(u32::from_le_bytes(raw)), Rights::GRANT)?;
    }
    Ok(())
}

/// Copy the message of `from` into `to` and set `to`'s receive registers.
fn transfer(k: &mut Kernel, from: Id, to: Id, badge: u64) {
    let Some(src) = k.threads.get(from) else { return };
    let (info, words, fault) = match src.fault {
        Some(f) => (MessageInfo::new(FaultKind::LABEL, 4, 0), f.words, true),
        None => {
            let info = MessageInfo(src.ctx.x[1] & 0xffff_ffff);
            (info, [src.ctx.x[2], src.ctx.x[3], src.ctx.x[4], src.ctx.x[5]], false)
        }
    };
    let (src_task, src_buffer) = (src.task, src.ipc_buffer);
    let mut delivered = MessageInfo::new(info.label(), info.words().min(REGISTER_WORDS), 0);
    if !fault && (info.words() > REGISTER_WORDS || info.caps() > 0) {
        delivered = transfer_buffer(k, from, to, src_task, src_buffer, info);
    }
    if let Some(dst) = k.threads.get_mut(to) {
        dst.ctx.x[0] = 0;
        dst.ctx.x[1] = delivered.0;
        dst.ctx.x[2..2 + REGISTER_WORDS].copy_from_slice(&words);
        dst.ctx.x[6] = badge;
    }
}

/// The IPC-buffer part of a message: extra words and capabilities.
fn transfer_buffer(
    k: &mut Kernel,
    _from: Id,
    to: Id,
    src_task: Id,
    src_buffer: Option<u64>,
    info: MessageInfo,
) -> MessageInfo {
    let Some(dst) = k.threads.get(to) else {
        return MessageInfo::default();
    };
    let (dst_task, dst_buffer) = (dst.task, dst.ipc_buffer);
    let (Some(sb), Some(db)) = (src_buffer, dst_buffer) else {
        return MessageInfo::new(info.label(), info.words().min(REGISTER_WORDS), 0);
    };
    let mut words = info.words().min(REGISTER_WORDS);
    let extra = info
        .words()
        .saturating_sub(REGISTER_WORDS)
        .min(BUFFER_WORDS - REGISTER_WORDS);
    if extra > 0 {
        let mut bytes = [0u8; (BUFFER_WORDS - REGISTER_WORDS) * 8];
        let range = WORDS_OFFSET + 8 * REGISTER_WORDS as u64;
        if copy_from_user(k, src_task, sb + range, &mut bytes[..extra * 8]).is_ok()
            && copy_to_user(k, dst_task, db + range, &bytes[..extra * 8]).is_ok()
        {
            words += extra;
        }
    }
    let mut moved = 0;
    for i in 0..info.caps() {
        let mut raw = [0u8; 8];
        let ok = copy_from_user(k, src_task, sb + CAPS_OFFSET + 4 * i as u64, &mut raw[..4]).is_ok()
            && copy_from_user(k, src_task, sb + CAP_RIGHTS_OFFSET + 4 * i as u64, &mut raw[4..]).is_ok();
        if !ok {
            break;
        }
        let handle = Handle(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]));
        let rights = Rights::from_bits_truncate(u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]));
        let Ok(source) = cap::lookup(k, src_task, handle) else {
            break;
        };
        let Ok(new) = cap::derive(k, source, dst_task, rights, None) else {
            break;
        };
        if copy_to_user(k, dst_task, db + CAPS_OFFSET + 4 * moved as u64, &new.0.to_le_bytes()).is_err() {
            if let Ok(id) = cap::lookup(k, dst_task, new) {
                cap::delete(k, id);
            }
            break;
        }
        moved += 1;
    }
    MessageInfo::new(info.label(), words, moved)
}

/// A server takes a new caller; an unanswered earlier caller is released
/// with `PeerDied` rather than left waiting forever.
fn set_caller(k: &mut Kernel, server: Id, caller: Id) {
    let Some(tcb) = k.threads.get_mut(caller).map(|c| ObjectPtr::new(&mut **c)) else {
        return;
    };
    let old = k
        .threads
        .get_mut(server)
        .and_then(|s| s.caller.replace(Caller { id: caller, tcb }))
        .map(|c| c.id);
    if let Some(old) = old {
        finish_waiting_caller(k, old, server, Err(Error::PeerDied));
    }
}

/// Wake a thread that waited for `server`'s reply, with `result`.
fn finish_waiting_caller(k: &mut Kernel, caller: Id, server: Id, result: Result<(), Error>) {
    let Some(c) = k.threads.get_mut(caller) else { return };
    if !matches!(c.state, ThreadState::AwaitingReply { server: s } if s == server) {
        return;
    }
    if c.fault.is_some() {
        // A faulted thread whose handler can no longer answer cannot go on.
        crate::thread::kill(k, caller);
        return;
    }
    c.set_status(result);
    sched::make_ready(k, caller);
}

fn block(k: &mut Kernel, t: Id, state: ThreadState, flags: IpcFlags, timeout_micros: u64) {
    if let Some(th) = k.threads.get_mut(t) {
        th.state = state;
    }
    if flags.contains(IpcFlags::TIMEOUT) {
        let deadline = hal::cpu::counter().saturating_add(crate::time::micros_to_ticks(timeout_micros));
        sched::add_timeout(k, t, deadline);
    }
}

/// The word an IPC wait queue keeps with thread `t`: its TCB's address
/// (see [`fast_path`]). Threads are boxed, so it does not change; a thread
/// leaves every wait queue before it dies ([`abandon`]).
fn tcb_word(k: &mut Kernel, t: Id) -> usize {
    k.threads.get_mut(t).map_or(0, |th| &mut **th as *mut Thread as usize)
}

fn enqueue(queue: &mut IdQueue, t: Id, word: usize) -> Result<(), Error> {
    queue.push_back_with_word(t, word).map_err(|_| Error::OutOfMemory)
}

/// `send` (call = false) and `call` (call = true) from thread `cur`.
pub fn send(k: &mut Kernel, cur: Id, call: bool) -> Result<(), Error> {
    let task = thread_task(k, cur)?;
    let t = k.threads.get(cur).ok_or(Error::BadHandle)?;
    let (x0, x1, x6) = (t.ctx.x[0], t.ctx.x[1], t.ctx.x[6]);
    let (ep, badge) = endpoint_arg(k, task, x0, Rights::SEND)?;
    let (info, flags) = IpcFlags::split(x1);
    check_message(k, cur, info)?;
    let e = k.endpoints.get_mut(ep).ok_or(Error::BadHandle)?;
    if e.receive_caps == 0 {
        return Err(Error::PeerDied);
    }
    if let Some(r) = e.receivers.pop_front() {
        sched::remove(k, r);
        transfer(k, cur, r, badge);
        if call {
            set_caller(k, r, cur);
            // The timeout covers the whole call, the reply included.
            block(k, cur, ThreadState::AwaitingReply { server: r }, flags, x6);
        } else {
            k.threads.get_mut(cur).expect("current").ctx.x[0] = 0;
        }
        sched::make_ready(k, r);
        return Ok(());
    }
    if flags.contains(IpcFlags::NONBLOCK) {
        return Err(Error::WouldBlock);
    }
    let word = tcb_word(k, cur);
    enqueue(&mut k.endpoints.get_mut(ep).expect("checked").senders, cur, word)?;
    block(
        k,
        cur,
        ThreadState::Sending {
            endpoint: ep,
            badge,
            call,
        },
        flags,
        x6,
    );
    Ok(())
}

/// Receive on the endpoint in register `handle_reg` of thread `cur`.
pub fn recv(k: &mut Kernel, cur: Id, handle_reg: usize) -> Result<(), Error> {
    let task = thread_task(k, cur)?;
    let t = k.threads.get(cur).ok_or(Error::BadHandle)?;
    let (handle, x1, x6) = (t.ctx.x[handle_reg], t.ctx.x[1], t.ctx.x[6]);
    let (ep, _) = endpoint_arg(k, task, handle, Rights::RECEIVE)?;
    let (_, flags) = IpcFlags::split(x1);
    let e = k.endpoints.get_mut(ep).ok_or(Error::BadHandle)?;
    if let Some(s) = e.senders.pop_front() {
        let Some(ThreadState::Sending { badge, call, .. }) = k.threads.get(s).map(|t| t.state) else {
            return Err(Error::InvalidState);
        };
        transfer(k, s, cur, badge);
        if call {
            set_caller(k, cur, s);
            // Its timeout (if any) keeps running: it covers the reply too.
            if let Some(st) = k.threads.get_mut(s) {
                st.state = ThreadState::AwaitingReply { server: cur };
            }
        } else {
            sched::remove(k, s);
            k.threads.get_mut(s).expect("sender").ctx.x[0] = 0;
            sched::make_ready(k, s);
        }
        return Ok(());
    }
    if flags.contains(IpcFlags::NONBLOCK) {
        return Err(Error::WouldBlock);
    }
    let word = tcb_word(k, cur);
    enqueue(&mut k.endpoints.get_mut(ep).expect("checked").receivers, cur, word)?;
    block(k, cur, ThreadState::Receiving { endpoint: ep }, flags, x6);
    Ok(())
}

/// Answer the caller `cur` last received from.
pub fn reply(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let caller = k
        .threads
        .get_mut(cur)
        .and_then(|t| t.caller.take())
        .ok_or(Error::NoCaller)?
        .id;
    let Some(c) = k.threads.get(caller) else {
        return Err(Error::NoCaller);
    };
    if !matches!(c.state, ThreadState::AwaitingReply { server: s } if s == cur) {
        return Err(Error::NoCaller);
    }
    if c.fault.is_some() {
        let exiting = c.exiting;
        let ct = k.threads.get_mut(caller).expect("caller");
        ct.fault = None;
        if exiting {
            crate::thread::kill(k, caller);
        } else {
            sched::make_ready(k, caller);
        }
        return Ok(());
    }
    let info = MessageInfo(k.threads.get(cur).map_or(0, |t| t.ctx.x[1]) & 0xffff_ffff);
    if let Err(e) = check_message(k, cur, info) {
        // The reply cannot go as sent (a capability it may not grant, a
        // bad size): the caller learns why instead of waiting for a reply
        // that will never come.
        finish_waiting_caller(k, caller, cur, Err(e));
        return Err(e);
    }
    transfer(k, cur, caller, 0);
    sched::make_ready(k, caller);
    Ok(())
}

/// `signal`: OR bits into a notification, waking one waiter.
pub fn signal(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let task = thread_task(k, cur)?;
    let t = k.threads.get(cur).ok_or(Error::BadHandle)?;
    let (x0, bits) = (t.ctx.x[0], t.ctx.x[1]);
    let n = notification_arg(k, task, x0, Rights::SEND)?;
    signal_bits(k, n, bits);
    Ok(())
}

/// Set `bits` on notification `n` (also used for interrupts).
pub fn signal_bits(k: &mut Kernel, n: Id, bits: u64) {
    let Some(no) = k.notifications.get_mut(n) else { return };
    no.bits |= bits;
    if let Some(w) = no.waiters.pop_front() {
        let delivered = core::mem::take(&mut no.bits);
        if let Some(wt) = k.threads.get_mut(w) {
            wt.ctx.x[0] = 0;
            wt.ctx.x[1] = delivered;
        }
        sched::remove(k, w);
        sched::make_ready(k, w);
    }
}

/// `wait`: take the notification's bits, blocking until there are some.
pub fn wait(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let task = thread_task(k, cur)?;
    let t = k.threads.get(cur).ok_or(Error::BadHandle)?;
    let (x0, x1, x6) = (t.ctx.x[0], t.ctx.x[1], t.ctx.x[6]);
    let n = notification_arg(k, task, x0, Rights::RECEIVE)?;
    let (_, flags) = IpcFlags::split(x1);
    let word = tcb_word(k, cur);
    let no = k.notifications.get_mut(n).ok_or(Error::BadHandle)?;
    if no.bits != 0 {
        let bits = core::mem::take(&mut no.bits);
        let ct = k.threads.get_mut(cur).expect("current");
        ct.ctx.x[0] = 0;
        ct.ctx.x[1] = bits;
        return Ok(());
    }
    if flags.contains(IpcFlags::NONBLOCK) {
        return Err(Error::WouldBlock);
    }
    enqueue(&mut no.waiters, cur, word)?;
    block(k, cur, ThreadState::Waiting { notification: n }, flags, x6);
    Ok(())
}

/// Take `t` off the endpoint or notification queue its `state` says it
/// waits in; false if it waits in none.
fn leave_wait_queue(k: &mut Kernel, t: Id, state: ThreadState) -> bool {
    match state {
        ThreadState::Sending { endpoint, .. } => {
            if let Some(e) = k.endpoints.get_mut(endpoint) {
                e.senders.retain(|x| *x != t);
            }
        }
        ThreadState::Receiving { endpoint } => {
            if let Some(e) = k.endpoints.get_mut(endpoint) {
                e.receivers.retain(|x| *x != t);
            }
        }
        ThreadState::Waiting { notification } => {
            if let Some(n) = k.notifications.get_mut(notification) {
                n.waiters.retain(|x| *x != t);
            }
        }
        _ => return false,
    }
    true
}

/// `t` no longer waits for `server`'s reply: the reply will find no caller.
fn forget_caller(k: &mut Kernel, server: Id, t: Id) {
    if let Some(s) = k.threads.get_mut(server) {
        if s.caller.is_some_and(|c| c.id == t) {
            s.caller = None;
        }
    }
}

/// Take a blocked thread out of its IPC wait and fail its call with `error`.
pub fn cancel(k: &mut Kernel, t: Id, error: Error) {
    let Some(state) = k.threads.get(t).map(|t| t.state) else {
        return;
    };
    match state {
        ThreadState::AwaitingReply { server } => forget_caller(k, server, t),
        other if leave_wait_queue(k, t, other) => {}
        _ => return,
    }
    if k.threads.get(t).is_some_and(|th| th.fault.is_some()) {
        crate::thread::kill(k, t);
        return;
    }
    if let Some(th) = k.threads.get_mut(t) {
        th.set_status(Err(error));
    }
    sched::make_ready(k, t);
}

/// A thread is going away: leave every queue, release its caller, and let
/// the server it waits on forget it.
pub fn abandon(k: &mut Kernel, t: Id) {
    let Some(th) = k.threads.get(t) else { return };
    let (state, caller) = (th.state, th.caller.map(|c| c.id));
    match state {
        ThreadState::AwaitingReply { server } => forget_caller(k, server, t),
        other => {
            leave_wait_queue(k, t, other);
        }
    }
    if let Some(c) = caller {
        if let Some(th) = k.threads.get_mut(t) {
            th.caller = None;
        }
        finish_waiting_caller(k, c, t, Err(Error::PeerDied));
    }
}

/// Fail every thread queued on an endpoint with `PeerDied`.
fn fail_queue(k: &mut Kernel, mut queue: IdQueue) {
    while let Some(t) = queue.pop_front() {
        if k.threads.get(t).is_some_and(|th| th.fault.is_some()) {
            crate::thread::kill(k, t);
            continue;
        }
        if let Some(th) = k.threads.get_mut(t) {
            th.set_status(Err(Error::PeerDied));
        }
        sched::make_ready(k, t);
    }
}

/// A capability with RECEIVE on `ep` went away; with none left, nobody can
/// ever receive, so waiting senders fail now.
pub fn receive_cap_gone(k: &mut Kernel, ep: Id) {
    let Some(e) = k.endpoints.get_mut(ep) else { return };
    e.receive_caps = e.receive_caps.saturating_sub(1);
    if e.receive_caps == 0 {
        let senders = core::mem::take(&mut e.senders);
        fail_queue(k, senders);
    }
}

pub fn create_endpoint(k: &mut Kernel, pool: Id) -> Result<Id, Error> {
    k.charge(pool, IPC_OBJECT_COST)?;
    let e = Endpoint {
        id: Id {
            index: u32::MAX,
            generation: u32::MAX,
        },
        senders: IdQueue::new(),
        receivers: IdQueue::new(),
        receive_caps: 0,
        refs: 0,
        pool,
    };
    let Some(e) = crate::mm::heap::try_box(e) else {
        k.refund(pool, IPC_OBJECT_COST);
        return Err(Error::OutOfMemory);
    };
    let id = k.endpoints.insert(e).map_err(|_| {
        k.refund(pool, IPC_OBJECT_COST);
        Error::OutOfMemory
    })?;
    k.endpoints.get_mut(id).expect("just inserted").id = id;
    k.add_ref(ObjectRef::Pool(pool));
    Ok(id)
}

pub fn create_notification(k: &mut Kernel, pool: Id) -> Result<Id, Error> {
    k.charge(pool, IPC_OBJECT_COST)?;
    let n = Notification {
        bits: 0,
        waiters: IdQueue::new(),
        refs: 0,
        pool,
    };
    k.notifications
        .insert(n)
        .map_err(|_| {
            k.refund(pool, IPC_OBJECT_COST);
            Error::OutOfMemory
        })
        .inspect(|_| k.add_ref(ObjectRef::Pool(pool)))
}

pub fn destroy_endpoint(k: &mut Kernel, ep: Id) {
    let Some(e) = k.endpoints.remove(ep) else { return };
    fail_queue(k, e.senders);
    fail_queue(k, e.receivers);
    k.refund(e.pool, IPC_OBJECT_COST);
    k.release(ObjectRef::Pool(e.pool));
}

pub fn destroy_notification(k: &mut Kernel, n: Id) {
    let Some(no) = k.notifications.remove(n) else { return };
    // Interrupt lines bound to it stop (masked) until bound again.
    for id in k.irqs.ids() {
        let irq = k.irqs.get_mut(id).expect("listed");
        if irq.notification.is_some_and(|(bound, _)| bound == n) {
            irq.notification = None;
            crate::irq::unbind(irq.intid);
        }
    }
    fail_queue(k, no.waiters);
    k.refund(no.pool, IPC_OBJECT_COST);
    k.release(ObjectRef::Pool(no.pool));
}

/// Report a fault of thread `t` to its handler as if it called the handler's
/// endpoint; without a (live) handler the thread is killed.
pub fn deliver_fault(k: &mut Kernel, t: Id, kind: FaultKind, esr: u64, far: u64, exiting: bool) {
    let Some(th) = k.threads.get_mut(t) else { return };
    let pc = th.ctx.elr;
    th.fault = Some(Fault {
        words: [kind as u64, esr, far, pc],
    });
    th.exiting = exiting;
    let handler = th.fault_handler;
    let task = th.task;
    let usable = handler.filter(|(ep, _)| k.endpoints.get(*ep).is_some_and(|e| e.receive_caps > 0));
    let Some((ep, badge)) = usable else {
        let name = k.tasks.get(task).map(|tk| tk.name).unwrap_or_default();
        if !exiting || kind != FaultKind::Panic {
            crate::warn!(
                "task {}: {:?} at pc {pc:#x} (ESR {esr:#x}, FAR {far:#x}) and no fault handler: thread killed",
                abi::boot_info::nul_terminated(&name),
                kind
            );
        }
        crate::thread::kill(k, t);
        return;
    };
    sched::remove(k, t);
    let word = tcb_word(k, t);
    let e = k.endpoints.get_mut(ep).expect("checked");
    if let Some(r) = e.receivers.pop_front() {
        sched::remove(k, r);
        transfer(k, t, r, badge);
        set_caller(k, r, t);
        k.threads.get_mut(t).expect("faulting").state = ThreadState::AwaitingReply { server: r };
        sched::make_ready(k, r);
    } else if enqueue(&mut e.senders, t, word).is_ok() {
        k.threads.get_mut(t).expect("faulting").state = ThreadState::Sending {
            endpoint: ep,
            badge,
            call: true,
        };
    } else {
        crate::thread::kill(k, t);
    }
}

/// What the IPC fast path hands to the architecture's switch.
pub struct Handoff {
    /// The next thread's saved registers.
    pub ctx: *const UserContext,
    /// Its task's TTBR0 value.
    pub ttbr0: u64,
    /// The outgoing thread's FP/SIMD state is live in the registers and
    /// must be saved (this CPU no longer has an FP owner).
    pub save_fp: bool,
}

/// Whether `info` (x1) is a register-only message without flags: the only
/// kind the fast path takes.
#[inline(always)]
pub fn fast_message(info: u64) -> bool {
    // Flags (bits 32-63), capability count (bits 8-10) and the unused bits
    // 11-15 zero, and at most REGISTER_WORDS words: one mask and one
    // compare (the label, bits 16-31, is left out of the mask). Then `info`
    // is delivered as it is (see `deliver_registers`); a message with
    // stray bits 11-15 takes the general path, which clears them.
    info & 0xffff_ffff_0000_ffff <= REGISTER_WORDS as u64
}

/// Copy a register message into `to`'s receive registers. `from.x[1]`
/// passed [`fast_message`], so it is already the info to deliver: label and
/// word count, no capabilities, no flags.
#[inline(always)]
fn deliver_registers(to: &mut Thread, from: &UserContext, badge: u64) {
    to.ctx.x[0] = 0;
    to.ctx.x[1] = from.x[1];
    to.ctx.x[2..6].copy_from_slice(&from.x[2..6]);
    to.ctx.x[6] = badge;
}

/// The IPC fast path: `call` and `reply_recv` with a register-only message
/// (see [`fast_message`]), when the partner is already waiting on this CPU
/// and may run at once. `me` is the thread `cur`, running on `cpu` (not
/// reached through `k`). The message is copied register to register, the
/// CPU goes straight to the partner (no run-queue or timer traffic) and
/// `me` is charged its CPU time. `None` when any condition fails, with
/// nothing changed: the general path then handles the call.
///
/// Each object is looked up once, capabilities through the copy of their
/// object, rights and badge in the capability space's slot (the endpoint
/// by its address there, its id in it), the partner thread through the TCB
/// address kept in its queue entry or in [`Caller`]: no table lookups.
#[inline(always)]
pub fn fast_path(k: &mut Kernel, cpu: usize, cur: Id, me: &mut Thread, number: u64) -> Option<Handoff> {
    let c = &mut k.cpus[cpu % crate::MAX_CPUS];
    // SAFETY: `me` is alive (running), so its task's capability space is
    // (see `Thread::cspace`); the fast path reaches no task through `k`.
    let cspace = unsafe { &*me.cspace.as_ptr() };
    let next = if number == abi::Syscall::Call as u64 {
        let (badge, e) = cspace.endpoint(me.ctx.x[0], Rights::SEND)?;
        // SAFETY: the capability just looked up keeps the endpoint alive,
        // and the fast path reaches no endpoint through `k`.
        let e = unsafe { &mut *e };
        let ep = e.id;
        let (r, word) = e.receivers.front_with_word()?;
        if e.receive_caps == 0 || r == cur || word == 0 {
            return None;
        }
        // SAFETY: a receiver's queue entry carries its TCB's address (see
        // `tcb_word`), valid while it is queued: a thread leaves every wait
        // queue before it dies (`abandon`), and TCBs are boxed. It is not
        // `me` (`r != cur`) and is reached through nothing else here.
        let rt: &mut Thread = unsafe { &mut *(word as *mut Thread) };
        if !matches!(rt.state, ThreadState::Receiving { endpoint } if endpoint == ep)
            || rt.cpu != cpu
            || rt.deadline.is_some()
            || rt.caller.is_some()
            || c.outranks(rt.priority)
        {
            return None;
        }
        e.receivers.pop_front();
        deliver_registers(rt, &me.ctx, badge);
        rt.caller = Some(Caller {
            id: cur,
            tcb: ObjectPtr::new(me),
        });
        rt.state = ThreadState::Running;
        me.state = ThreadState::AwaitingReply { server: r };
        c.current = Some(r);
        rt
    } else {
        let caller = me.caller?;
        let (_, e) = cspace.endpoint(me.ctx.x[7], Rights::RECEIVE)?;
        // SAFETY: as for `call` above.
        let e = unsafe { &mut *e };
        let ep = e.id;
        // Queue space without allocating.
        if !e.senders.is_empty() || !e.receivers.has_room() || caller.id == cur {
            return None;
        }
        // SAFETY: a caller's TCB lives while it is someone's caller (see
        // `Caller`); it is not `me` (`caller.id != cur`) and is reached
        // through nothing else here.
        let ct: &mut Thread = unsafe { &mut *caller.tcb.as_ptr() };
        let caller = caller.id;
        if !matches!(ct.state, ThreadState::AwaitingReply { server } if server == cur)
            || ct.fault.is_some()
            || ct.cpu != cpu
            || ct.deadline.is_some()
            || c.outranks(ct.priority)
        {
            return None;
        }
        if !e
            .receivers
            .push_within_capacity_with_word(cur, me as *mut Thread as usize)
        {
            return None;
        }
        me.caller = None;
        me.state = ThreadState::Receiving { endpoint: ep };
        deliver_registers(ct, &me.ctx, 0);
        ct.state = ThreadState::Running;
        c.current = Some(caller);
        ct
    };
    sched::charge(me, c, crate::time::cpu_clock());
    let save_fp = c.fp_owner == Some(cur);
    if save_fp {
        c.fp_owner = None;
    }
    Some(Handoff {
        ctx: &next.ctx,
        ttbr0: next.ttbr0,
        save_fp,
    })
}
