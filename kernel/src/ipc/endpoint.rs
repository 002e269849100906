//! Endpoints: `send`, `call`, `recv` and `reply`, creation and destruction.

use super::message::{check_message, transfer};
use super::{block, enqueue, fail_queue, finish_waiting_caller, set_caller, set_caller_tcb, tcb_word};
use crate::object::{Endpoint, Id, IdQueue, Kernel, ObjectPtr, ObjectRef, ENDPOINT_COST};
use crate::sched;
use crate::thread::ThreadState;
use abi::{Error, IpcFlags, MessageInfo, Rights};

/// The endpoint a handle names, with `rights`; returns it and the badge.
#[inline]
/// The endpoint and badge of the capability in register value `handle`
/// of `task`'s space, with `rights` (from the slot alone: no
/// capability-node lookup).
fn endpoint_arg(k: &Kernel, task: Id, handle: u64, rights: Rights) -> Result<(Id, u64), Error> {
    match crate::cap::object_in(k, task, handle, rights)? {
        (ObjectRef::Endpoint(ep), badge) => Ok((ep, badge)),
        _ => Err(Error::WrongType),
    }
}

/// `send` (call = false) and `call` (call = true) from thread `cur`.
pub fn send(k: &mut Kernel, cur: Id, call: bool) -> Result<(), Error> {
    let t = k.threads.get_mut(cur).ok_or(Error::BadHandle)?;
    let (task, x0, x1, x6, word) = (t.task, t.ctx.x[0], t.ctx.x[1], t.ctx.x[6], tcb_word(t));
    let tcb = ObjectPtr::new(&mut **t);
    let (ep, badge) = endpoint_arg(k, task, x0, Rights::SEND)?;
    let (info, flags) = IpcFlags::split(x1);
    check_message(k, cur, info)?;
    let e = k.endpoints.get_mut(ep).ok_or(Error::BadHandle)?;
    if e.receive_caps == 0 {
        return Err(Error::PeerDied);
    }
    if let Some(r) = e.receivers.pop_front() {
        // A waiting receiver is alive (a thread leaves every wait queue
        // before it dies): `make_ready` below takes it off its timeout list.
        transfer(k, cur, r, badge);
        if call {
            set_caller_tcb(k, r, cur, tcb);
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
    enqueue(&mut e.senders, cur, word)?;
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
    let t = k.threads.get_mut(cur).ok_or(Error::BadHandle)?;
    let (task, handle, x1, x6, word) = (t.task, t.ctx.x[handle_reg], t.ctx.x[1], t.ctx.x[6], tcb_word(t));
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
    enqueue(&mut e.receivers, cur, word)?;
    block(k, cur, ThreadState::Receiving { endpoint: ep }, flags, x6);
    Ok(())
}

/// Answer the caller `cur` last received from.
pub fn reply(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    // The reply's message info (`x1`) comes with the caller: one lookup.
    let (caller, x1) = k
        .threads
        .get_mut(cur)
        .and_then(|t| Some((t.caller.take()?.id, t.ctx.x[1])))
        .ok_or(Error::NoCaller)?;
    let Some(c) = k.threads.get(caller) else {
        return Err(Error::NoCaller);
    };
    if !matches!(c.state, ThreadState::AwaitingReply { server: s } if s == cur) {
        return Err(Error::NoCaller);
    }
    // What its call accepts in the reply: `x1` stays the call's while it
    // waits (checked by `check_message` when it called).
    let accepted = MessageInfo(c.ctx.x[1] & 0xffff_ffff).reply_caps();
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
    let info = MessageInfo(x1 & 0xffff_ffff);
    if let Err(e) = check_message(k, cur, info) {
        // The reply cannot go as sent (a capability it may not grant, a
        // bad size): the caller learns why instead of waiting for a reply
        // that will never come.
        finish_waiting_caller(k, caller, cur, Err(e));
        return Err(e);
    }
    if info.caps() > accepted {
        // Capabilities the caller did not ask for (a hostile server
        // filling its space): refused whole, nothing moves.
        finish_waiting_caller(k, caller, cur, Err(Error::CapsRefused));
        return Err(Error::CapsRefused);
    }
    transfer(k, cur, caller, 0);
    sched::make_ready(k, caller);
    Ok(())
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
    k.charge(pool, ENDPOINT_COST)?;
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
        k.refund(pool, ENDPOINT_COST);
        return Err(Error::OutOfMemory);
    };
    let id = k.store(Some(pool), e).inspect_err(|_| k.refund(pool, ENDPOINT_COST))?;
    k.endpoints.get_mut(id).expect("just inserted").id = id;
    k.add_ref(ObjectRef::Pool(pool));
    Ok(id)
}

pub fn destroy_endpoint(k: &mut Kernel, ep: Id) {
    let Some(e) = k.unstore::<alloc::boxed::Box<Endpoint>>(ep) else {
        return;
    };
    fail_queue(k, e.senders);
    fail_queue(k, e.receivers);
    k.refund(e.pool, ENDPOINT_COST);
    k.release(ObjectRef::Pool(e.pool));
}
