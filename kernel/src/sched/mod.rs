//! Scheduling: fixed priorities, round robin within a priority, per-CPU run
//! queues, one-shot timer for time slices and timeouts (no tick when idle).

use crate::object::{Id, Kernel};
use crate::thread::{Thread, ThreadState};
use crate::{irq, percpu, time};
use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// Priority levels (abi::MAX_PRIORITY + 1).
pub const LEVELS: usize = abi::MAX_PRIORITY as usize + 1;
/// Time slice for round robin within a priority.
pub const SLICE_MICROS: u64 = 10_000;

/// One CPU's scheduler state.
pub struct CpuState {
    /// Run queues, one per priority (on the heap, made by [`CpuState::init`],
    /// so the CPU states themselves are small).
    ready: Vec<VecDeque<Id>>,
    /// Bit p set when `ready[p]` is not empty.
    bitmap: u32,
    pub current: Option<Id>,
    /// Thread whose FP/SIMD state is live in this CPU's registers.
    pub fp_owner: Option<Id>,
    /// Sleeping or timed IPC: (deadline in counter ticks, thread).
    timeouts: Vec<(u64, Id)>,
    slice_end: u64,
    /// A higher-priority thread became ready here.
    pub need_resched: bool,
    /// A dead thread whose TCB is freed once this CPU stops running it.
    pub reap: Option<Id>,
    /// Run queue or timeouts changed: the timer needs reprogramming.
    pub timer_dirty: bool,
    /// [`time::cpu_clock`] when `current` (or idle) got this CPU: the
    /// time since is charged to it at the next switch.
    pub run_start: u64,
}

impl CpuState {
    pub const fn new() -> Self {
        CpuState {
            ready: Vec::new(),
            bitmap: 0,
            current: None,
            fp_owner: None,
            timeouts: Vec::new(),
            slice_end: 0,
            need_resched: false,
            reap: None,
            timer_dirty: false,
            run_start: 0,
        }
    }

    /// Whether a thread of higher priority than `priority` is ready here.
    #[inline(always)]
    pub fn outranks(&self, priority: u8) -> bool {
        (self.bitmap as u64) >> (priority as u64 + 1) != 0
    }

    fn highest_ready(&self) -> Option<usize> {
        (self.bitmap != 0).then(|| 31 - self.bitmap.leading_zeros() as usize)
    }

    /// Make the run queues (at boot); false without memory.
    pub fn init(&mut self) -> bool {
        if self.ready.try_reserve_exact(LEVELS).is_err() {
            return false;
        }
        self.ready.resize_with(LEVELS, VecDeque::new);
        true
    }

    fn push(&mut self, id: Id, priority: u8) -> bool {
        let p = priority as usize % LEVELS;
        let Some(q) = self.ready.get_mut(p) else {
            return false;
        };
        if q.try_reserve(1).is_err() {
            return false;
        }
        q.push_back(id);
        self.bitmap |= 1 << p;
        true
    }

    fn pop(&mut self, priority: usize) -> Option<Id> {
        let q = self.ready.get_mut(priority)?;
        let id = q.pop_front();
        if q.is_empty() {
            self.bitmap &= !(1 << priority);
        }
        id
    }

    fn remove(&mut self, id: Id) {
        for (p, q) in self.ready.iter_mut().enumerate() {
            if self.bitmap & (1 << p) != 0 {
                q.retain(|t| *t != id);
                if q.is_empty() {
                    self.bitmap &= !(1 << p);
                }
            }
        }
        self.timeouts.retain(|(_, t)| *t != id);
    }

    /// Ready threads (for `ps`-like reporting and tests).
    pub fn ready_count(&self) -> usize {
        self.ready.iter().map(VecDeque::len).sum()
    }
}

impl Default for CpuState {
    fn default() -> Self {
        Self::new()
    }
}

/// Make a thread runnable on its CPU, waking or preempting that CPU.
pub fn make_ready(k: &mut Kernel, id: Id) {
    let Some(t) = k.threads.get_mut(id) else { return };
    if !t.is_alive() {
        return;
    }
    t.state = ThreadState::Ready;
    t.deadline = None;
    let (cpu, priority) = (t.cpu, t.priority);
    let c = &mut k.cpus[cpu];
    c.timer_dirty = true;
    if !c.timeouts.is_empty() {
        c.timeouts.retain(|(_, t)| *t != id);
    }
    if !c.push(id, priority) {
        // Out of memory for the queue: the thread stays Ready and is found
        // by the next full scan (never lost).
        crate::warn!("sched: run queue allocation failed");
    }
    let current_priority = c.current.and_then(|cur| k.threads.get(cur)).map(|t| t.priority);
    if cpu == percpu::current_running().index() {
        let current_blocked = c
            .current
            .and_then(|cur| k.threads.get(cur))
            .is_none_or(|t| !matches!(t.state, ThreadState::Running));
        if current_blocked || current_priority.is_none_or(|p| priority > p) {
            k.cpus[cpu].need_resched = true;
        }
    } else {
        irq::send_ipi(cpu, irq::SGI_WAKE);
    }
}

/// Take a thread out of run queues and timeouts (it blocks or dies).
pub fn remove(k: &mut Kernel, id: Id) {
    let Some(t) = k.threads.get(id) else { return };
    let (cpu, state, has_deadline) = (t.cpu, t.state, t.deadline.is_some());
    if matches!(state, ThreadState::Ready) {
        k.cpus[cpu].remove(id);
    } else if has_deadline {
        k.cpus[cpu].timeouts.retain(|(_, t)| *t != id);
    }
    k.cpus[cpu].timer_dirty = true;
}

/// Block `id` until `deadline` (counter ticks) unless woken before.
pub fn add_timeout(k: &mut Kernel, id: Id, deadline: u64) {
    let Some(t) = k.threads.get_mut(id) else { return };
    t.deadline = Some(deadline);
    let c = &mut k.cpus[t.cpu];
    c.timer_dirty = true;
    if c.timeouts.try_reserve(1).is_ok() {
        let at = c.timeouts.partition_point(|(d, _)| *d <= deadline);
        c.timeouts.insert(at, (deadline, id));
    }
}

/// Wake threads whose deadline passed (on this CPU).
pub fn expire_timeouts(k: &mut Kernel, cpu: usize) {
    let now = hal::cpu::counter();
    while let Some(&(deadline, id)) = k.cpus[cpu].timeouts.first() {
        if deadline > now {
            break;
        }
        k.cpus[cpu].timeouts.remove(0);
        let Some(t) = k.threads.get(id) else { continue };
        if t.deadline != Some(deadline) {
            continue;
        }
        match t.state {
            ThreadState::Sleeping => {
                k.threads.get_mut(id).expect("looked up").ctx.x[0] = 0;
                make_ready(k, id);
            }
            ThreadState::Sending { .. }
            | ThreadState::Receiving { .. }
            | ThreadState::Waiting { .. }
            | ThreadState::AwaitingReply { .. } => {
                crate::ipc::cancel(k, id, abi::Error::TimedOut);
            }
            _ => {}
        }
    }
}

/// Charge the CPU time since the last switch on a CPU (state `c`) to `t`,
/// the thread that had it, and start counting anew at `now`
/// ([`time::cpu_clock`]); returns the time charged. Every switch comes
/// through here: [`pick_next`], and the IPC fast path (where it is a
/// counter read, two loads, a subtraction, an addition and two stores).
#[inline(always)]
pub fn charge(t: &mut Thread, c: &mut CpuState, now: u64) -> u64 {
    let used = now.wrapping_sub(c.run_start);
    c.run_start = now;
    t.cpu_ticks = t.cpu_ticks.wrapping_add(used);
    used
}

/// CPU time of thread `id` in counter ticks, up to `now` if a CPU runs it.
pub fn thread_ticks(k: &Kernel, id: Id, now: u64) -> u64 {
    let Some(t) = k.threads.get(id) else { return 0 };
    let running = k.cpus.iter().find(|c| c.current == Some(id));
    t.cpu_ticks + running.map_or(0, |c| now.saturating_sub(c.run_start))
}

/// Choose what this CPU runs next: the current thread keeps the CPU unless a
/// higher-priority thread is ready, or its slice ended and an equal one is.
pub fn pick_next(k: &mut Kernel, cpu: usize) -> Option<Id> {
    let now = hal::cpu::counter();
    // Whoever had the CPU pays for it up to here (idle pays nothing).
    let clock = time::cpu_clock();
    match k.cpus[cpu].current.and_then(|id| k.threads.get_mut(id)) {
        Some(t) => {
            let used = charge(t, &mut k.cpus[cpu], clock);
            if !t.is_alive() {
                // It died while it ran here: its task took its time until
                // then (`thread::kill`); the rest goes there too.
                let task = t.task;
                if let Some(tk) = k.tasks.get_mut(task) {
                    tk.exited_ticks += used;
                }
            }
        }
        None => k.cpus[cpu].run_start = clock,
    }
    // A running thread whose affinity moved elsewhere is handed over.
    if let Some(cur) = k.cpus[cpu].current {
        if k.threads
            .get(cur)
            .is_some_and(|t| matches!(t.state, ThreadState::Running) && t.cpu != cpu)
        {
            make_ready(k, cur);
        }
    }
    let current = k.cpus[cpu].current.filter(|id| {
        k.threads
            .get(*id)
            .is_some_and(|t| matches!(t.state, ThreadState::Running) && t.cpu == cpu)
    });
    let best = k.cpus[cpu].highest_ready();
    let next = match (current, best) {
        (Some(cur), Some(b)) => {
            let p = k.threads.get(cur).map_or(0, |t| t.priority as usize);
            if b > p || (b == p && now >= k.cpus[cpu].slice_end) {
                let priority = p as u8;
                k.threads.get_mut(cur).expect("current").state = ThreadState::Ready;
                k.cpus[cpu].push(cur, priority);
                k.cpus[cpu].pop(b)
            } else {
                Some(cur)
            }
        }
        (Some(cur), None) => Some(cur),
        (None, Some(b)) => k.cpus[cpu].pop(b),
        (None, None) => None,
    };
    if let Some(n) = next {
        if let Some(t) = k.threads.get_mut(n) {
            t.state = ThreadState::Running;
        }
        if Some(n) != k.cpus[cpu].current {
            k.cpus[cpu].slice_end = now + time::micros_to_ticks(SLICE_MICROS);
        }
    }
    k.cpus[cpu].current = next;
    k.cpus[cpu].need_resched = false;
    next
}

/// End the current thread's time slice now (yield).
pub fn expire_slice(k: &mut Kernel, cpu: usize) {
    k.cpus[cpu].slice_end = 0;
    k.cpus[cpu].need_resched = true;
}

/// Program this CPU's timer for the next event it must act on.
pub fn program_timer(k: &Kernel, cpu: usize) {
    let c = &k.cpus[cpu];
    let mut next = c.timeouts.first().map(|(d, _)| *d);
    let current_priority = c.current.and_then(|id| k.threads.get(id)).map(|t| t.priority as usize);
    if let (Some(p), Some(b)) = (current_priority, c.highest_ready()) {
        if b >= p {
            next = Some(next.map_or(c.slice_end, |n| n.min(c.slice_end)));
        }
    }
    match next {
        Some(deadline) => time::arm_at(deadline),
        None => time::disarm(),
    }
}
