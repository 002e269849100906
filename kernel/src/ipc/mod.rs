//! Synchronous IPC on endpoints, notifications, and fault messages.
//!
//! A blocked sender's message stays in its saved registers (or in its
//! pending fault); the kernel copies it when a receiver arrives. Register
//! messages never touch memory; longer ones and capability transfers go
//! through the two threads' IPC buffers.

//!
//! One file per object family: [`endpoint`], [`notification`], [`fault`]
//! messages and the [`fast`] path; [`message`] copies what is sent.

mod endpoint;
mod fast;
mod fault;
mod message;
mod notification;

pub use endpoint::{create_endpoint, destroy_endpoint, receive_cap_gone, recv, reply, send};
pub use fast::{fast_message, fast_path, signal_fast, timed_message, Handoff, Slow};
pub use fault::{deliver_fault, fault_handler};
pub use notification::{create_notification, destroy_notification, signal, signal_bits, wait};

use crate::object::{Id, IdQueue, Kernel, ObjectPtr};
use crate::sched;
use crate::thread::{Caller, Thread, ThreadState};
use abi::{Error, IpcFlags};

/// A server takes a new caller; an unanswered earlier caller is released
/// with `PeerDied` rather than left waiting forever.
fn set_caller(k: &mut Kernel, server: Id, caller: Id) {
    let Some(tcb) = k.threads.get_mut(caller).map(|c| ObjectPtr::new(&mut **c)) else {
        return;
    };
    set_caller_tcb(k, server, caller, tcb);
}

/// [`set_caller`] for a caller whose TCB (`tcb`, live) the caller of this
/// has at hand.
fn set_caller_tcb(k: &mut Kernel, server: Id, caller: Id, tcb: ObjectPtr<Thread>) {
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
#[inline(always)]
fn tcb_word(t: &mut Thread) -> usize {
    t as *mut Thread as usize
}

fn enqueue(queue: &mut IdQueue, t: Id, word: usize) -> Result<(), Error> {
    queue.push_back_with_word(t, word).map_err(|_| Error::OutOfMemory)
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
