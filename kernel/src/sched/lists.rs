//! The scheduler's intrusive lists: run queues and timeout lists linked
//! through the threads themselves ([`Links`] in each TCB). A thread is on at
//! most one run queue and at most one timeout list, so putting it on one
//! never allocates and cannot fail: no thread and no timeout is ever lost
//! for want of memory.

use crate::object::ObjectPtr;
use crate::thread::Thread;

/// Not on any list.
const NOWHERE: u16 = u16::MAX;

/// A thread's places on the scheduler's lists.
pub struct Links {
    run_next: ObjectPtr<Thread>,
    run_prev: ObjectPtr<Thread>,
    /// The run queue it is on: `cpu * LEVELS + priority`, or [`NOWHERE`].
    run_on: u16,
    timeout_next: ObjectPtr<Thread>,
    timeout_prev: ObjectPtr<Thread>,
    /// The CPU whose timeout list it is on, or [`NOWHERE`].
    timeout_on: u16,
}

impl Links {
    pub const fn new() -> Self {
        Links {
            run_next: ObjectPtr::NULL,
            run_prev: ObjectPtr::NULL,
            run_on: NOWHERE,
            timeout_next: ObjectPtr::NULL,
            timeout_prev: ObjectPtr::NULL,
            timeout_on: NOWHERE,
        }
    }

    /// The run queue it is on (`cpu * LEVELS + priority`).
    pub fn run_queue(&self) -> Option<usize> {
        (self.run_on != NOWHERE).then_some(self.run_on as usize)
    }

    /// The CPU whose timeout list it is on.
    pub fn timeout_cpu(&self) -> Option<usize> {
        (self.timeout_on != NOWHERE).then_some(self.timeout_on as usize)
    }
}

impl Default for Links {
    fn default() -> Self {
        Self::new()
    }
}

/// The TCB behind a list pointer.
///
/// SAFETY (for every caller): list pointers are taken from live boxed TCBs
/// and a thread leaves every list before it dies (`sched::remove`, from
/// `thread::kill`, before the TCB can be freed), so each pointer on a list
/// is a live TCB; lists are only used under the kernel lock, by code that
/// holds no other reference to the threads it links.
#[inline(always)]
unsafe fn tcb<'a>(p: ObjectPtr<Thread>) -> &'a mut Thread {
    // SAFETY: see above.
    unsafe { &mut *p.as_ptr() }
}

/// A FIFO of threads (one run queue).
pub struct RunQueue {
    head: ObjectPtr<Thread>,
    tail: ObjectPtr<Thread>,
}

impl RunQueue {
    pub const fn new() -> Self {
        RunQueue {
            head: ObjectPtr::NULL,
            tail: ObjectPtr::NULL,
        }
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.head.as_ptr().is_null()
    }

    /// Whether it is [`RunQueue::new`]'s.
    pub const fn is_new(&self) -> bool {
        self.head.as_ptr().is_null() && self.tail.as_ptr().is_null()
    }

    /// Add `t` (on no run queue) at the back; `me` names this queue.
    ///
    /// # Safety
    /// `t` is a live TCB on no run queue, reached through nothing else now.
    #[inline(always)]
    pub unsafe fn push_back(&mut self, t: ObjectPtr<Thread>, me: usize) {
        // SAFETY: the caller's promise, and the module's list invariant.
        let th = unsafe { tcb(t) };
        th.links.run_on = me as u16;
        th.links.run_next = ObjectPtr::NULL;
        th.links.run_prev = self.tail;
        if self.tail.as_ptr().is_null() {
            self.head = t;
        } else {
            // SAFETY: the tail is on this list, so a live TCB (not `t`).
            unsafe { tcb(self.tail) }.links.run_next = t;
        }
        self.tail = t;
    }

    /// Take the first thread off.
    #[inline(always)]
    pub fn pop_front(&mut self) -> Option<ObjectPtr<Thread>> {
        let head = self.head;
        if head.as_ptr().is_null() {
            return None;
        }
        // SAFETY: on this list, so a live TCB.
        unsafe { self.unlink(head) };
        Some(head)
    }

    /// Take `t` (on this queue) off.
    ///
    /// # Safety
    /// `t` is on this queue, reached through nothing else now.
    #[inline(always)]
    pub unsafe fn unlink(&mut self, t: ObjectPtr<Thread>) {
        // SAFETY: on this list, so a live TCB; its neighbours too.
        let th = unsafe { tcb(t) };
        let (prev, next) = (th.links.run_prev, th.links.run_next);
        th.links.run_on = NOWHERE;
        th.links.run_next = ObjectPtr::NULL;
        th.links.run_prev = ObjectPtr::NULL;
        match prev.as_ptr().is_null() {
            true => self.head = next,
            // SAFETY: as above.
            false => unsafe { tcb(prev) }.links.run_next = next,
        }
        match next.as_ptr().is_null() {
            true => self.tail = prev,
            // SAFETY: as above.
            false => unsafe { tcb(next) }.links.run_prev = prev,
        }
    }

    pub fn len(&self) -> usize {
        let mut n = 0;
        let mut at = self.head;
        while !at.as_ptr().is_null() {
            n += 1;
            // SAFETY: on this list, so a live TCB.
            at = unsafe { tcb(at) }.links.run_next;
        }
        n
    }
}

/// Threads waiting for a deadline, soonest first.
pub struct TimeoutList {
    head: ObjectPtr<Thread>,
}

impl TimeoutList {
    pub const fn new() -> Self {
        TimeoutList { head: ObjectPtr::NULL }
    }

    /// Whether it is [`TimeoutList::new`]'s.
    pub const fn is_new(&self) -> bool {
        self.head.as_ptr().is_null()
    }

    /// The soonest deadline and its thread.
    pub fn first(&self) -> Option<(u64, ObjectPtr<Thread>)> {
        if self.head.as_ptr().is_null() {
            return None;
        }
        // SAFETY: on this list, so a live TCB.
        let th = unsafe { tcb(self.head) };
        Some((th.deadline.unwrap_or(0), self.head))
    }

    /// Insert `t` (on no timeout list) by its deadline, after those due at
    /// the same time; `cpu` names this list.
    ///
    /// # Safety
    /// `t` is a live TCB on no timeout list, reached through nothing else now.
    pub unsafe fn insert(&mut self, t: ObjectPtr<Thread>, cpu: usize) {
        // SAFETY: the caller's promise.
        let deadline = unsafe { tcb(t) }.deadline.unwrap_or(0);
        let mut prev = ObjectPtr::NULL;
        let mut at = self.head;
        // SAFETY: entries are live TCBs (the list invariant).
        while !at.as_ptr().is_null() && unsafe { tcb(at) }.deadline.unwrap_or(0) <= deadline {
            prev = at;
            // SAFETY: as above.
            at = unsafe { tcb(at) }.links.timeout_next;
        }
        // SAFETY: the caller's promise.
        let th = unsafe { tcb(t) };
        th.links.timeout_on = cpu as u16;
        th.links.timeout_prev = prev;
        th.links.timeout_next = at;
        match prev.as_ptr().is_null() {
            true => self.head = t,
            // SAFETY: on this list.
            false => unsafe { tcb(prev) }.links.timeout_next = t,
        }
        if !at.as_ptr().is_null() {
            // SAFETY: on this list.
            unsafe { tcb(at) }.links.timeout_prev = t;
        }
    }

    /// Take `t` (on this list) off.
    ///
    /// # Safety
    /// `t` is on this list, reached through nothing else now.
    pub unsafe fn unlink(&mut self, t: ObjectPtr<Thread>) {
        // SAFETY: on this list, so a live TCB; its neighbours too.
        let th = unsafe { tcb(t) };
        let (prev, next) = (th.links.timeout_prev, th.links.timeout_next);
        th.links.timeout_on = NOWHERE;
        th.links.timeout_next = ObjectPtr::NULL;
        th.links.timeout_prev = ObjectPtr::NULL;
        match prev.as_ptr().is_null() {
            true => self.head = next,
            // SAFETY: as above.
            false => unsafe { tcb(prev) }.links.timeout_next = next,
        }
        if !next.as_ptr().is_null() {
            // SAFETY: as above.
            unsafe { tcb(next) }.links.timeout_prev = prev;
        }
    }
}

/// The id of the thread behind a list pointer.
#[inline(always)]
pub fn id_of(t: ObjectPtr<Thread>) -> crate::object::Id {
    // SAFETY: list pointers are live TCBs (see `tcb`).
    unsafe { (*t.as_ptr()).id }
}
