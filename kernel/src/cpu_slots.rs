//! The CPU slots `smp` hands out while it starts the other CPUs (pure
//! logic, tested on the host): which logical index and kernel stack the
//! next CPU gets, after the starts before it worked or failed.

/// A CPU slot: a logical index, and whether its stack (slot `index` of the
/// kernel's stack area) is mapped already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub index: usize,
    pub stack_mapped: bool,
}

/// Why a start failed, for what becomes of its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failed {
    /// Before its stack was mapped: nothing of the slot was used.
    NoStack,
    /// The CPU never ran on the slot (it was not released, or never took
    /// the offer and cannot any more): the next CPU gets it, stack and all.
    NeverRan,
    /// The CPU took the slot and did not come online: the slot is its
    /// (it runs on that stack, with that index), so no later CPU may have
    /// it, and starting stops (the online CPUs' indices stay contiguous).
    Stuck,
}

/// The slots handed to the CPUs being started, in order: CPU `i` (the boot
/// CPU is 0) runs with index `i` on the stack of slot `i`. A start that
/// failed leaves its slot to the next CPU unless its CPU took it.
pub struct Slots {
    max: usize,
    next: usize,
    stack_mapped: bool,
    /// The slot a stuck CPU holds.
    pub stuck: Option<usize>,
}

impl Slots {
    pub fn new(max: usize) -> Self {
        Slots {
            max,
            next: 1,
            stack_mapped: false,
            stuck: None,
        }
    }

    /// The slot for the next CPU, if one is left.
    pub fn next(&self) -> Option<Slot> {
        (self.stuck.is_none() && self.next < self.max).then_some(Slot {
            index: self.next,
            stack_mapped: self.stack_mapped,
        })
    }

    /// What became of the start that had [`Slots::next`].
    pub fn record(&mut self, outcome: Result<(), Failed>) {
        match outcome {
            Ok(()) => {
                self.next += 1;
                self.stack_mapped = false;
            }
            Err(Failed::NoStack) => {}
            Err(Failed::NeverRan) => self.stack_mapped = true,
            Err(Failed::Stuck) => self.stuck = Some(self.next),
        }
    }

    /// CPUs online: the boot CPU and one per slot handed out for good.
    pub fn online(&self) -> usize {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(index: usize, stack_mapped: bool) -> Option<Slot> {
        Some(Slot { index, stack_mapped })
    }

    #[test]
    fn cpus_that_start_take_the_slots_in_order() {
        let mut s = Slots::new(4);
        for i in 1..4 {
            assert_eq!(s.next(), slot(i, false));
            s.record(Ok(()));
        }
        assert_eq!(s.next(), None);
        assert_eq!(s.online(), 4);
    }

    /// The bug: a CPU that timed out (or whose start failed once its stack
    /// was mapped) left its index to the next CPU, which then mapped a
    /// stack over the mapped one and failed "cannot map its stack"; so did
    /// every CPU after it.
    #[test]
    fn a_cpu_that_never_ran_leaves_its_slot_and_stack_to_the_next() {
        let mut s = Slots::new(8);
        assert_eq!(s.next(), slot(1, false));
        s.record(Err(Failed::NeverRan));
        assert_eq!(s.next(), slot(1, true));
        s.record(Err(Failed::NeverRan));
        assert_eq!(s.next(), slot(1, true));
        s.record(Ok(()));
        assert_eq!(s.next(), slot(2, false));
        s.record(Ok(()));
        assert_eq!(s.online(), 3);
    }

    #[test]
    fn a_start_that_mapped_nothing_leaves_the_slot_as_it_was() {
        let mut s = Slots::new(8);
        s.record(Err(Failed::NeverRan));
        s.record(Err(Failed::NoStack));
        assert_eq!(s.next(), slot(1, true));
        let mut s = Slots::new(8);
        s.record(Err(Failed::NoStack));
        assert_eq!(s.next(), slot(1, false));
    }

    #[test]
    fn a_stuck_cpu_keeps_its_slot_and_no_cpu_starts_after_it() {
        let mut s = Slots::new(8);
        s.record(Ok(()));
        s.record(Err(Failed::Stuck));
        assert_eq!(s.next(), None);
        assert_eq!(s.stuck, Some(2));
        assert_eq!(s.online(), 2);
    }
}
