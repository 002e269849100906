//! The fast paths of IPC and notifications: `call` and `reply_recv` with a
//! register-only message straight to a partner waiting on this CPU, and
//! `signal` straight to a higher-priority waiter on this CPU.

use crate::object::{Id, Kernel, ObjectPtr, ObjectRef};
use crate::sched;
use crate::thread::{Caller, Thread, ThreadState, UserContext};
use abi::{IpcFlags, Rights, REGISTER_WORDS};

/// What a fast path (IPC, `Signal`, and `Yield` in `arch::aarch64::user`)
/// hands to the architecture's switch.
pub struct Handoff {
    /// The next thread's saved registers.
    pub ctx: *const UserContext,
    /// Its task's TTBR0 value.
    pub ttbr0: u64,
    /// The outgoing thread's FP/SIMD state is live in the registers and
    /// must be saved (this CPU no longer has an FP owner).
    pub save_fp: bool,
}

impl Handoff {
    /// The switch from `cur`, the thread current on CPU `c` until now, to
    /// `next`: `cur`'s FP/SIMD state is to be saved if it owns the
    /// registers, and the CPU then has no FP owner.
    #[inline(always)]
    pub fn to(c: &mut sched::CpuState, cur: Id, next: &Thread) -> Self {
        let save_fp = c.fp_owner == Some(cur);
        if save_fp {
            c.fp_owner = None;
        }
        Handoff {
            ctx: &next.ctx,
            ttbr0: next.ttbr0,
            save_fp,
        }
    }
}

/// Why the fast path did not take a call.
pub enum Slow {
    /// The general path must handle it.
    General,
    /// A timeout is set or taken off: the fast path's timed copy can.
    Timed,
}

/// Whether the fast path may wake `partner` (waiting on `cpu`) as far as
/// its timeout goes: always without one; with one, only in the timed copy
/// (`timed`, which takes it off), and only from this CPU's list.
#[inline(always)]
fn partner_timeout(partner: &Thread, cpu: usize, timed: bool) -> Result<(), Slow> {
    match (partner.deadline.is_some(), timed) {
        (false, _) => Ok(()),
        (true, false) => Err(Slow::Timed),
        (true, true) if partner.links.timeout_cpu().is_none_or(|t| t == cpu) => Ok(()),
        (true, true) => Err(Slow::General),
    }
}

/// Whether `info` (x1) is a register-only message without flags: the
/// kind the fast path takes (with `TIMEOUT`, see [`timed_message`]).
#[inline(always)]
pub fn fast_message(info: u64) -> bool {
    // Flags (bits 32-63), capability count (bits 8-10), the capabilities
    // a call accepts in its reply (bits 11-13) and the unused bits 14-15
    // zero, and at most REGISTER_WORDS words: one mask and one compare (the
    // label, bits 16-31, is left out of the mask). Then `info` is
    // delivered as it is (see `deliver_registers`); a message with bits
    // 11-15 set takes the general path, which clears them. (A call taken
    // here accepts no capability in its reply: a reply carrying one goes
    // the general path, which refuses it.)
    info & 0xffff_ffff_0000_ffff <= REGISTER_WORDS as u64
}

/// Whether `info` is a [`fast_message`] but for the `TIMEOUT` flag, which
/// it has (and no other): the fast path's timed copy takes it.
#[inline(always)]
pub fn timed_message(info: u64) -> bool {
    fast_message(info ^ IpcFlags::TIMEOUT.bits())
}

/// Copy a register message into `to`'s receive registers. `from.x[1]`
/// passed [`fast_message`] or [`timed_message`], so its low half is the
/// info to deliver: label and word count, no capabilities.
#[inline(always)]
fn deliver_registers(to: &mut Thread, from: &UserContext, badge: u64) {
    to.ctx.x[0] = 0;
    to.ctx.x[1] = from.x[1] & 0xffff_ffff;
    to.ctx.x[2..6].copy_from_slice(&from.x[2..6]);
    to.ctx.x[6] = badge;
}

/// The IPC fast path: `call` and `reply_recv` with a register-only message
/// (see [`fast_message`]), when the partner is already waiting on this CPU
/// and may run at once. `me` is the thread `cur`, running on `cpu` (not
/// reached through `k`). The message is copied register to register, the
/// CPU goes straight to the partner (no run-queue traffic) and `me` is
/// charged its CPU time. `Err` when any condition fails, with nothing
/// changed: the general path then handles the call, or for a timeout
/// (`Slow::Timed`) the timed copy.
///
/// `timed`: the copy that sets and clears timeouts (`me`'s `x1` has
/// `TIMEOUT`, or the partner has a deadline), as the general path would
/// ([`sched::fast_timeouts`]); the others, the hottest, leave both alone.
///
/// Each object is looked up once, capabilities through the copy of their
/// object, rights and badge in the capability space's slot (the endpoint
/// by its address there, its id in it), the partner thread through the TCB
/// address kept in its queue entry or in [`Caller`]: no table lookups.
#[inline(always)]
pub fn fast_path(
    k: &mut Kernel,
    cpu: usize,
    cur: Id,
    me: &mut Thread,
    number: u64,
    timed: bool,
) -> Result<Handoff, Slow> {
    let c = &mut k.cpus[cpu % crate::MAX_CPUS];
    // SAFETY: `me` is alive (running), so its task's capability space is
    // (see `Thread::cspace`); the fast path reaches no task through `k`.
    let cspace = unsafe { &*me.cspace.as_ptr() };
    let next = if number == abi::Syscall::Call as u64 {
        let (badge, e) = cspace.endpoint(me.ctx.x[0], Rights::SEND).ok_or(Slow::General)?;
        // SAFETY: the capability just looked up keeps the endpoint alive,
        // and the fast path reaches no endpoint through `k`.
        let e = unsafe { &mut *e };
        let ep = e.id;
        let (r, word) = e.receivers.front_with_word().ok_or(Slow::General)?;
        if e.receive_caps == 0 || r == cur || word == 0 {
            return Err(Slow::General);
        }
        // SAFETY: a receiver's queue entry carries its TCB's address (see
        // `tcb_word`), valid while it is queued: a thread leaves every wait
        // queue before it dies (`abandon`), and TCBs are boxed. It is not
        // `me` (`r != cur`) and is reached through nothing else here.
        let rt: &mut Thread = unsafe { &mut *(word as *mut Thread) };
        if !matches!(rt.state, ThreadState::Receiving { endpoint } if endpoint == ep)
            || rt.cpu != cpu
            || rt.caller.is_some()
            || c.outranks(rt.priority)
        {
            return Err(Slow::General);
        }
        partner_timeout(rt, cpu, timed)?;
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
        let caller = me.caller.ok_or(Slow::General)?;
        let (_, e) = cspace.endpoint(me.ctx.x[7], Rights::RECEIVE).ok_or(Slow::General)?;
        // SAFETY: as for `call` above.
        let e = unsafe { &mut *e };
        let ep = e.id;
        // Queue space without allocating.
        if !e.senders.is_empty() || !e.receivers.has_room() || caller.id == cur {
            return Err(Slow::General);
        }
        // SAFETY: a caller's TCB lives while it is someone's caller (see
        // `Caller`); it is not `me` (`caller.id != cur`) and is reached
        // through nothing else here.
        let ct: &mut Thread = unsafe { &mut *caller.tcb.as_ptr() };
        let caller = caller.id;
        if !matches!(ct.state, ThreadState::AwaitingReply { server } if server == cur)
            || ct.fault.is_some()
            || ct.cpu != cpu
            || c.outranks(ct.priority)
        {
            return Err(Slow::General);
        }
        partner_timeout(ct, cpu, timed)?;
        if !e
            .receivers
            .push_within_capacity_with_word(cur, me as *mut Thread as usize)
        {
            return Err(Slow::General);
        }
        me.caller = None;
        me.state = ThreadState::Receiving { endpoint: ep };
        deliver_registers(ct, &me.ctx, 0);
        ct.state = ThreadState::Running;
        c.current = Some(caller);
        ct
    };
    if timed {
        // The partner's timeout ends (it was woken), and `me`'s starts (it
        // now waits: for the reply, or for the next message).
        let micros = (me.ctx.x[1] & IpcFlags::TIMEOUT.bits() != 0).then_some(me.ctx.x[6]);
        sched::fast_timeouts(c, cpu, next, me, micros);
    }
    sched::charge(me, c, crate::time::cpu_clock());
    Ok(Handoff::to(c, cur, next))
}

/// `signal` on the fast path: the notification's first waiter is waiting
/// on this CPU with no deadline, has a higher priority than `me` (so it
/// runs at once) and may run without the general path
/// ([`sched::fast_switch_allowed`]): it gets the bits, `me` goes to the
/// back of its run queue and the CPU goes to the waiter
/// ([`sched::fast_switch`]). `None` when any condition fails, with nothing
/// changed: the general path then handles the call (errors included).
#[inline(always)]
pub fn signal_fast(k: &mut Kernel, cpu: usize, me: &mut Thread) -> Option<Handoff> {
    // SAFETY: as in `fast_path`: `me` is alive, so its capability space is.
    let cspace = unsafe { &*me.cspace.as_ptr() };
    let ObjectRef::Notification(n) = cspace.object_with(me.ctx.x[0], Rights::SEND).ok()?.0 else {
        return None;
    };
    let no = k.notifications.get_mut_inlined(n)?;
    // The waiter is never `me`: `me` is running (the state test below).
    let (_, word) = no.waiters.front_with_word()?;
    if word == 0 {
        return None;
    }
    // SAFETY: a waiter's queue entry carries its TCB's address (see
    // `tcb_word`), valid while it is queued (as for `fast_path`'s
    // receivers); it is not `me` and is reached through nothing else here.
    let wt: &mut Thread = unsafe { &mut *(word as *mut Thread) };
    let c = &mut k.cpus[cpu % crate::MAX_CPUS];
    if !matches!(wt.state, ThreadState::Waiting { notification } if notification == n)
        || wt.cpu != cpu
        || wt.deadline.is_some()
        || wt.priority <= me.priority
        || !sched::fast_switch_allowed(c, wt.priority)
    {
        return None;
    }
    no.waiters.pop_front();
    wt.ctx.x[0] = 0;
    wt.ctx.x[1] = core::mem::take(&mut no.bits) | me.ctx.x[1];
    sched::fast_switch(c, cpu, me, wt);
    Some(Handoff::to(c, me.id, wt))
}
