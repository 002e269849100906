//! Scheduling: fixed priorities, round robin within a priority, per-CPU run
//! queues, one-shot timer for time slices and timeouts (no tick when idle).

mod lists;

pub use lists::Links;

use crate::object::{Id, Kernel, ObjectPtr};
use crate::thread::{Thread, ThreadState};
use crate::{irq, percpu, time};
use lists::{RunQueue, TimeoutList};

/// Priority levels (abi::MAX_PRIORITY + 1).
pub const LEVELS: usize = abi::MAX_PRIORITY as usize + 1;
/// Time slice for round robin within a priority.
pub const SLICE_MICROS: u64 = 10_000;

/// All-zero bytes are a CPU's [`CpuState::new`]: checked when the kernel
/// is built.
pub const ZEROED_IS_NEW: () = assert!(CpuState::zeroed_is_new());

/// One CPU's scheduler state.
pub struct CpuState {
    /// Run queues, one per priority, linked through the threads (putting
    /// a thread on one cannot fail).
    ready: [RunQueue; LEVELS],
    /// Bit p set when `ready[p]` is not empty.
    bitmap: u32,
    pub current: Option<Id>,
    /// Thread whose FP/SIMD state is live in this CPU's registers.
    pub fp_owner: Option<Id>,
    /// Sleeping or timed IPC, soonest deadline first (linked through the
    /// threads, like the run queues).
    timeouts: TimeoutList,
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
            ready: [const { RunQueue::new() }; LEVELS],
            bitmap: 0,
            current: None,
            fp_owner: None,
            timeouts: TimeoutList::new(),
            slice_end: 0,
            need_resched: false,
            reap: None,
            timer_dirty: false,
            run_start: 0,
        }
    }

    /// Whether all-zero bytes are a valid `CpuState` equal to
    /// [`CpuState::new`] (the object tables rely on it: their static is
    /// zero-filled and `object::prepare` leaves the CPUs' states as they
    /// are). Evaluated at compile time ([`ZEROED_IS_NEW`]), where a value
    /// invalid for its type is an error.
    const fn zeroed_is_new() -> bool {
        // SAFETY: evaluated at compile time only (a constant), where
        // zero bytes invalid for a field's type fail the build. Every field
        // is an integer, a bool, a raw pointer or an `Option` of integers.
        let zeroed: CpuState = unsafe { core::mem::zeroed() };
        // Both are the one value `all_clear` allows for each field.
        zeroed.all_clear() && CpuState::new().all_clear()
    }

    /// Whether every field holds its one "nothing" value: queues and lists
    /// empty, no thread, numbers zero, flags false.
    const fn all_clear(&self) -> bool {
        // Every field named: a new one must be checked here too.
        let CpuState {
            ready,
            bitmap,
            current,
            fp_owner,
            timeouts,
            slice_end,
            need_resched,
            reap,
            timer_dirty,
            run_start,
        } = self;
        let mut p = 0;
        while p < LEVELS {
            if !ready[p].is_new() {
                return false;
            }
            p += 1;
        }
        *bitmap == 0
            && current.is_none()
            && fp_owner.is_none()
            && timeouts.is_new()
            && *slice_end == 0
            && !*need_resched
            && reap.is_none()
            && !*timer_dirty
            && *run_start == 0
    }

    /// Whether a thread of higher priority than `priority` is ready here.
    #[inline(always)]
    pub fn outranks(&self, priority: u8) -> bool {
        (self.bitmap as u64) >> (priority as u64 + 1) != 0
    }

    fn highest_ready(&self) -> Option<usize> {
        (self.bitmap != 0).then(|| 31 - self.bitmap.leading_zeros() as usize)
    }

    /// Put `t` at the back of its priority's queue here.
    ///
    /// # Safety
    /// `t` is a live TCB on no run queue, reached through nothing else now.
    #[inline(always)]
    unsafe fn push(&mut self, t: ObjectPtr<Thread>, cpu: usize, priority: u8) {
        let p = priority as usize % LEVELS;
        // SAFETY: the caller's promise.
        unsafe { self.ready[p].push_back(t, cpu * LEVELS + p) };
        self.bitmap |= 1 << p;
    }

    /// Take the first thread of priority `priority` off, to run next: it is
    /// marked running.
    #[inline(always)]
    fn pop_to_run(&mut self, priority: usize) -> Option<Id> {
        let q = self.ready.get_mut(priority)?;
        let t = q.pop_front()?;
        if q.is_empty() {
            self.bitmap &= !(1 << priority);
        }
        // SAFETY: it was on a run queue, so a live TCB (see `lists`), and
        // no reference to it is held here.
        let th = unsafe { &mut *t.as_ptr() };
        th.state = ThreadState::Running;
        Some(th.id)
    }

    /// Ready threads (for `ps`-like reporting and tests).
    pub fn ready_count(&self) -> usize {
        self.ready.iter().map(RunQueue::len).sum()
    }
}

impl Default for CpuState {
    fn default() -> Self {
        Self::new()
    }
}

/// Make a thread runnable on its CPU, waking or preempting that CPU.
pub fn make_ready(k: &mut Kernel, id: Id) {
    let Some(t) = k.threads.get_mut_inlined(id) else { return };
    if !t.is_alive() {
        return;
    }
    t.state = ThreadState::Ready;
    t.deadline = None;
    let (cpu, priority) = (t.cpu, t.priority);
    let ptr = ObjectPtr::new(&mut **t);
    // Off any list it is on (a queue elsewhere, a timeout), then queued
    // here: linking cannot fail, so the thread is never lost.
    unlink(k, ptr);
    let c = &mut k.cpus[cpu];
    c.timer_dirty = true;
    // SAFETY: a live TCB (looked up above), now on no run queue; the
    // reference it came from is gone.
    unsafe { c.push(ptr, cpu, priority) };
    if cpu == percpu::current_running().index() {
        // Switch here if what runs here is blocked, gone or outranked.
        let current = c.current.and_then(|cur| k.threads.get_inlined(cur));
        if current.is_none_or(|t| !matches!(t.state, ThreadState::Running) || priority > t.priority) {
            c.need_resched = true;
        }
    } else {
        irq::send_ipi(cpu, irq::SGI_WAKE);
    }
}

/// Take `t` off the run queue and the timeout list it is on, wherever.
fn unlink(k: &mut Kernel, t: ObjectPtr<Thread>) {
    // SAFETY: `t` is a live TCB (every caller just looked it up).
    let links = unsafe { &(*t.as_ptr()).links };
    let (queue, timeout_cpu) = (links.run_queue(), links.timeout_cpu());
    if let Some(q) = queue {
        let (cpu, p) = (q / LEVELS, q % LEVELS);
        if let Some(c) = k.cpus.get_mut(cpu) {
            // SAFETY: it is on that queue (its links say so), and no
            // reference to it is held here.
            unsafe { c.ready[p].unlink(t) };
            if c.ready[p].is_empty() {
                c.bitmap &= !(1 << p);
            }
            c.timer_dirty = true;
        }
    }
    if let Some(c) = timeout_cpu.and_then(|cpu| k.cpus.get_mut(cpu)) {
        // SAFETY: as above, for its timeout list.
        unsafe { c.timeouts.unlink(t) };
        c.timer_dirty = true;
    }
}

/// Take a thread out of run queues and timeouts (it blocks or dies).
pub fn remove(k: &mut Kernel, id: Id) {
    let Some(t) = k.threads.get_mut(id) else { return };
    let (ptr, cpu) = (ObjectPtr::new(&mut **t), t.cpu);
    unlink(k, ptr);
    k.cpus[cpu].timer_dirty = true;
}

/// Block `id` until `deadline` (counter ticks) unless woken before. Linking
/// cannot fail: the timeout is never dropped.
pub fn add_timeout(k: &mut Kernel, id: Id, deadline: u64) {
    let Some(t) = k.threads.get_mut(id) else { return };
    t.deadline = Some(deadline);
    let (ptr, cpu) = (ObjectPtr::new(&mut **t), t.cpu);
    if let Some(c) = t.links.timeout_cpu() {
        // SAFETY: a live TCB on that CPU's timeout list (its links say so).
        unsafe { k.cpus[c].timeouts.unlink(ptr) };
    }
    let c = &mut k.cpus[cpu];
    c.timer_dirty = true;
    // SAFETY: a live TCB, now on no timeout list; no reference to it is held.
    unsafe { c.timeouts.insert(ptr, cpu) };
}

/// The IPC fast path's timeouts on CPU `cpu` (state `c`): `woken`, the
/// partner it switches to, leaves the timeout list (as [`make_ready`] takes
/// it off), and `blocked`, which now waits, gets a deadline `micros` from
/// now if `micros` is given (as [`add_timeout`]). The timer is armed for
/// the new deadline only if it was set to fire later: an event left
/// programmed earlier (a timeout just removed, the slice) fires as before.
/// `woken` is on no timeout list but this CPU's; `blocked` (it was
/// running) is on none.
#[inline(always)]
pub fn fast_timeouts(c: &mut CpuState, cpu: usize, woken: &mut Thread, blocked: &mut Thread, micros: Option<u64>) {
    woken.deadline = None;
    if woken.links.timeout_cpu().is_some() {
        // SAFETY: on this CPU's list (the caller's promise), a live TCB
        // reached through nothing else now.
        unsafe { c.timeouts.unlink(ObjectPtr::new(woken)) };
        c.timer_dirty = true;
    }
    if let Some(micros) = micros {
        let deadline = hal::cpu::counter().saturating_add(time::micros_to_ticks(micros));
        blocked.deadline = Some(deadline);
        let ptr = ObjectPtr::new(blocked);
        // SAFETY: a live TCB on no timeout list, reached through nothing
        // else now.
        unsafe { c.timeouts.insert(ptr, cpu) };
        if c.timeouts
            .first()
            .is_some_and(|(_, first)| first.as_ptr() == ptr.as_ptr())
        {
            time::arm_by(deadline);
        }
    }
}

/// Wake threads whose deadline passed (on this CPU).
pub fn expire_timeouts(k: &mut Kernel, cpu: usize) {
    // Usually there are none (this runs on every pass of the idle loop):
    // then no counter read and no frame.
    if k.cpus[cpu].timeouts.first().is_none() {
        return;
    }
    let now = hal::cpu::counter();
    while let Some((deadline, ptr)) = k.cpus[cpu].timeouts.first() {
        if deadline > now {
            break;
        }
        // SAFETY: the first entry of this list, a live TCB.
        unsafe { k.cpus[cpu].timeouts.unlink(ptr) };
        let id = lists::id_of(ptr);
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
///
/// On every switch, so lean by design: the current thread is looked up
/// once (inlined), the thread taken off a run queue is reached through its
/// queue link, and the slice length is a stored figure.
pub fn pick_next(k: &mut Kernel, cpu: usize) -> Option<Id> {
    let now = hal::cpu::counter();
    // Whoever had the CPU pays for it up to here (idle pays nothing).
    let clock = time::cpu_clock();
    // The current thread if it goes on running here: its id, priority and TCB.
    let mut keep = None;
    let mut moved = None;
    let c = &mut k.cpus[cpu];
    match c.current.and_then(|id| k.threads.get_mut_inlined(id)) {
        Some(t) => {
            let used = charge(t, c, clock);
            match t.state {
                ThreadState::Running if t.cpu == cpu => keep = Some((t.id, t.priority, ObjectPtr::new(&mut **t))),
                // A running thread whose affinity moved elsewhere is handed over.
                ThreadState::Running => moved = Some(t.id),
                // It died while it ran here: its task took its time until
                // then (`thread::kill`); the rest goes there too.
                ThreadState::Dead => {
                    if let Some(tk) = k.tasks.get_mut(t.task) {
                        tk.exited_ticks += used;
                    }
                }
                _ => {}
            }
        }
        None => c.run_start = clock,
    }
    if let Some(id) = moved {
        make_ready(k, id);
    }
    let c = &mut k.cpus[cpu];
    let best = c.highest_ready();
    let next = match (keep, best) {
        (Some((_, p, ptr)), Some(b)) if b > p as usize || (b == p as usize && now >= c.slice_end) => {
            // SAFETY: the running thread, a live TCB (looked up above, and
            // nothing since freed a thread), on no run queue; the reference
            // it came from is gone.
            unsafe {
                (*ptr.as_ptr()).state = ThreadState::Ready;
                c.push(ptr, cpu, p);
            }
            c.pop_to_run(b)
        }
        (Some((cur, ..)), _) => Some(cur),
        (None, Some(b)) => c.pop_to_run(b),
        (None, None) => None,
    };
    if next.is_some() && next != c.current {
        c.slice_end = now + time::slice_ticks();
    }
    c.current = next;
    c.need_resched = false;
    next
}

/// Whether a fast path may switch this CPU (state `c`) to a thread of
/// priority `next` without the general path: no reschedule pending, no
/// timer to reprogram, no TCB to reap and nothing ready above `next`.
#[inline(always)]
pub fn fast_switch_allowed(c: &CpuState, next: u8) -> bool {
    !c.need_resched && !c.timer_dirty && c.reap.is_none() && !c.outranks(next)
}

/// A fast path's switch on CPU `cpu` (state `c`, allowed by
/// [`fast_switch_allowed`]) from `me`, running here, to `next`, which is on
/// no queue (taken off its run queue, or a waiter taken off its
/// notification, with no deadline): `me` is charged its CPU time and goes
/// to the back of its priority's run queue; `next` runs, with a new slice.
/// The timer stays as it is. It was armed for the earliest timeout and, if
/// a thread of `me`'s priority was ready, no later than `me`'s slice end
/// ([`program_timer`]); neither deadline moved earlier, so at worst it
/// fires early and the interrupt's general path arms it again.
#[inline(always)]
pub fn fast_switch(c: &mut CpuState, cpu: usize, me: &mut Thread, next: &mut Thread) {
    me.state = ThreadState::Ready;
    charge(me, c, time::cpu_clock());
    let p = me.priority;
    // SAFETY: `me` is running, so on no run queue; it is reached through
    // nothing else here.
    unsafe { c.push(ObjectPtr::new(me), cpu, p) };
    next.state = ThreadState::Running;
    c.current = Some(next.id);
    c.slice_end = hal::cpu::counter() + time::slice_ticks();
}

/// `Yield` on the fast path (`arch::aarch64::user`): when a thread of
/// `me`'s priority is ready on this CPU and [`fast_switch_allowed`], `me`
/// (running here, `c`'s current thread) goes to the back of its queue and
/// the first of that queue runs ([`fast_switch`]). `None`, with nothing
/// changed, otherwise.
#[inline(always)]
pub fn yield_fast<'a>(c: &mut CpuState, cpu: usize, me: &mut Thread) -> Option<&'a mut Thread> {
    let p = me.priority;
    if !fast_switch_allowed(c, p) {
        return None;
    }
    let q = c.ready.get_mut(p as usize)?;
    let t = q.pop_front()?;
    // SAFETY: it was on a run queue, so a live TCB (see `lists`), not `me`
    // (which was running), and no reference to it is held. Its queue keeps
    // its bit in the bitmap: `me` joins it.
    let next = unsafe { &mut *t.as_ptr() };
    fast_switch(c, cpu, me, next);
    Some(next)
}

/// End the current thread's time slice now (yield).
pub fn expire_slice(k: &mut Kernel, cpu: usize) {
    k.cpus[cpu].slice_end = 0;
    k.cpus[cpu].need_resched = true;
}

/// Program this CPU's timer for the next event it must act on.
pub fn program_timer(k: &mut Kernel, cpu: usize) {
    let current_priority = k.cpus[cpu]
        .current
        .and_then(|id| k.threads.get_inlined(id))
        .map(|t| t.priority);
    program_timer_for(&mut k.cpus[cpu], current_priority);
}

/// [`program_timer`] for a CPU (state `c`) whose current thread's priority
/// the caller has at hand (`None`: no current thread): the switch path,
/// which has just looked that thread up.
#[inline(never)]
pub fn program_timer_for(c: &mut CpuState, current_priority: Option<u8>) {
    c.timer_dirty = false;
    let mut next = c.timeouts.first().map(|(d, _)| d);
    if let (Some(p), Some(b)) = (current_priority.map(usize::from), c.highest_ready()) {
        if b >= p {
            next = Some(next.map_or(c.slice_end, |n| n.min(c.slice_end)));
        }
    }
    match next {
        Some(deadline) => time::arm_at(deadline),
        None => time::disarm(),
    }
}

/// The CPU whose current thread `id` is, if any. A thread stays current on
/// its CPU until that CPU switches away from it, even when another CPU
/// changed its state meanwhile (suspended it, say): until then its
/// registers are live there, and no other CPU may run it.
pub fn running_on(k: &Kernel, id: Id) -> Option<usize> {
    k.cpus.iter().position(|c| c.current == Some(id))
}

crate::ktest!(
    fn queues_and_timeouts_need_no_memory() {
        // A CPU state of its own and threads that never run, queued and
        // taken off again while every frame and the whole heap are taken.
        let mut c = CpuState::new();
        let dummy = Id {
            index: 0,
            generation: 0,
        };
        let mut threads = alloc::vec::Vec::new();
        for i in 0..32u32 {
            let mut t = Thread::new(dummy, ObjectPtr::NULL, 0, dummy, 0, 0, 0, (i % 4) as u8, 0);
            t.id = Id {
                index: i,
                generation: 1,
            };
            t.deadline = Some(1000 - i as u64);
            threads.push(crate::mm::heap::try_box(t).ok_or("no memory for a thread")?);
        }
        let ptrs: alloc::vec::Vec<_> = threads.iter_mut().map(|t| ObjectPtr::new(&mut **t)).collect();
        let mut order = alloc::vec::Vec::with_capacity(32);
        let exhausted = crate::ktest::exhaust::Exhausted::all();
        let full = exhausted.heap_full();
        for (i, p) in ptrs.iter().enumerate() {
            // SAFETY: live boxed TCBs on no list, reached through nothing else.
            unsafe {
                c.push(*p, 0, (i % 4) as u8);
                c.timeouts.insert(*p, 0);
            }
        }
        let ready = c.ready_count();
        while let Some((deadline, p)) = c.timeouts.first() {
            // SAFETY: the first entry, a live TCB.
            unsafe { c.timeouts.unlink(p) };
            order.push(deadline); // within the capacity reserved above
        }
        let mut popped = 0;
        while let Some(p) = c.highest_ready() {
            c.pop_to_run(p);
            popped += 1;
        }
        drop(exhausted);
        crate::kassert!(full, "the heap could not be filled");
        crate::kassert_eq!(ready, 32);
        crate::kassert_eq!(popped, 32);
        crate::kassert_eq!(order.len(), 32);
        crate::kassert!(
            order.windows(2).all(|w| w[0] <= w[1]),
            "timeouts out of order: {order:?}"
        );
        crate::kassert!(c.bitmap == 0);
        Ok(())
    }
);
