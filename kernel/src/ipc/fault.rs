//! Fault messages: a faulting thread calls its handler's endpoint.

use super::message::transfer;
use super::{enqueue, set_caller, tcb_word};
use crate::object::{Id, Kernel, ObjectRef};
use crate::sched;
use crate::thread::{Fault, ThreadState};
use abi::{FaultKind, Rights};

/// The endpoint and badge thread `t`'s faults go to: those of its fault
/// handler capability, while that capability exists.
pub fn fault_handler(k: &Kernel, t: Id) -> Option<(Id, u64)> {
    let node = k.caps.get(k.threads.get(t)?.fault_handler?)?;
    match node.object {
        ObjectRef::Endpoint(ep) if node.rights.contains(Rights::SEND) => Some((ep, node.badge)),
        _ => None,
    }
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
    let task = th.task;
    let usable = fault_handler(k, t).filter(|(ep, _)| k.endpoints.get(*ep).is_some_and(|e| e.receive_caps > 0));
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
    let word = k.threads.get_mut(t).map_or(0, |th| tcb_word(th));
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
