//! Task system calls: install a capability, destroy, info.

use super::thread::{thread_state, thread_state_word};
use super::{arg, regs, task_arg, task_of};
use crate::object::{Id, Kernel};
use crate::{cap, sched, task, time};
use abi::{Error, Rights};

/// [`Syscall::TaskInfo`] states (`x3`).
mod task_state {
    pub const RUNNING: u64 = 0;
    pub const BLOCKED: u64 = 1;
    pub const STOPPED: u64 = 2;
    pub const DEAD: u64 = 3;
}

pub(super) fn task_info(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let target = task_arg(k, cur, 0, Rights::READ)?;
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

pub(super) fn task_install(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let target = task_arg(k, cur, 0, Rights::MANAGE)?;
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

pub(super) fn task_destroy(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let target = task_arg(k, cur, 0, Rights::MANAGE)?;
    task::kill(k, target);
    Ok(())
}
