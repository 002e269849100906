//! Notifications: `signal` and `wait`, creation and destruction.

use super::{block, enqueue, fail_queue};
use crate::object::{Id, IdQueue, Kernel, Notification, ObjectRef};
use crate::sched;
use crate::thread::ThreadState;
use abi::{Error, IpcFlags, Rights};

/// The notification named by register value `handle` in `task`'s space,
/// with `rights` (from the slot alone: no capability-node lookup).
fn notification_arg(k: &Kernel, task: Id, handle: u64, rights: Rights) -> Result<Id, Error> {
    match crate::cap::object_in(k, task, handle, rights)?.0 {
        ObjectRef::Notification(n) => Ok(n),
        _ => Err(Error::WrongType),
    }
}

/// `signal`: OR bits into a notification, waking one waiter.
pub fn signal(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let t = k.threads.get_inlined(cur).ok_or(Error::BadHandle)?;
    let (task, x0, bits) = (t.task, t.ctx.x[0], t.ctx.x[1]);
    let n = notification_arg(k, task, x0, Rights::SEND)?;
    signal_bits(k, n, bits);
    Ok(())
}

/// Set `bits` on notification `n` (also used for interrupts).
pub fn signal_bits(k: &mut Kernel, n: Id, bits: u64) {
    let Some(no) = k.notifications.get_mut_inlined(n) else {
        return;
    };
    no.bits |= bits;
    if let Some(w) = no.waiters.pop_front() {
        let delivered = core::mem::take(&mut no.bits);
        if let Some(wt) = k.threads.get_mut_inlined(w) {
            wt.ctx.x[0] = 0;
            wt.ctx.x[1] = delivered;
        }
        // Off its timeout list too, and queued to run (a waiter is alive:
        // a dying thread leaves every wait queue first).
        sched::make_ready(k, w);
    }
}

/// `wait`: take the notification's bits, blocking until there are some.
pub fn wait(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let t = k.threads.get_mut_inlined(cur).ok_or(Error::BadHandle)?;
    let (task, x0, x1, x6) = (t.task, t.ctx.x[0], t.ctx.x[1], t.ctx.x[6]);
    // The word its wait-queue entry carries (see `tcb_word`).
    let word = &mut **t as *mut crate::thread::Thread as usize;
    let n = notification_arg(k, task, x0, Rights::RECEIVE)?;
    let (_, flags) = IpcFlags::split(x1);
    let no = k.notifications.get_mut_inlined(n).ok_or(Error::BadHandle)?;
    if no.bits != 0 {
        let bits = core::mem::take(&mut no.bits);
        let ct = k.threads.get_mut_inlined(cur).ok_or(Error::BadHandle)?;
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

/// A new notification of `pool`'s (its entry is all it takes: in a chunk
/// `pool` pays for).
pub fn create_notification(k: &mut Kernel, pool: Id) -> Result<Id, Error> {
    let n = Notification {
        bits: 0,
        waiters: IdQueue::new(),
        refs: 0,
        pool,
    };
    k.store(Some(pool), n).inspect(|_| k.add_ref(ObjectRef::Pool(pool)))
}

pub fn destroy_notification(k: &mut Kernel, n: Id) {
    let Some(no) = k.unstore::<Notification>(n) else { return };
    // Interrupt lines bound to it stop (masked) until bound again.
    for id in k.irqs.ids() {
        let irq = k.irqs.get_mut(id).expect("listed");
        if irq.notification.is_some_and(|(bound, _)| bound == n) {
            irq.notification = None;
            crate::irq::unbind(irq.intid);
        }
    }
    fail_queue(k, no.waiters);
    k.release(ObjectRef::Pool(no.pool));
}
