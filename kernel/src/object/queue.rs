//! FIFO queues of thread ids (endpoint senders and receivers, notification
//! waiters): a ring buffer whose size is a power of two, so that looking
//! at, taking and adding an entry are a few instructions each and inline
//! (the IPC fast path uses them).

use super::Id;
use alloc::vec::Vec;

/// Filler for unused ring entries.
const VACANT: (Id, usize) = (
    Id {
        index: u32::MAX,
        generation: u32::MAX,
    },
    0,
);

/// A queue of ids, each with a word its owner may attach (the endpoint
/// queues keep the thread's address there, for the IPC fast path; 0 when
/// pushed without one).
pub struct IdQueue {
    /// The ring: its length is zero or a power of two.
    ring: Vec<(Id, usize)>,
    /// Position of the first entry (below `ring.len()` unless it is empty).
    head: usize,
    len: usize,
}

/// No memory to grow the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

impl IdQueue {
    pub const fn new() -> Self {
        IdQueue {
            ring: Vec::new(),
            head: 0,
            len: 0,
        }
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether one more fits without allocating.
    #[inline(always)]
    pub fn has_room(&self) -> bool {
        self.len < self.ring.len()
    }

    #[inline(always)]
    pub fn front(&self) -> Option<Id> {
        self.front_with_word().map(|(id, _)| id)
    }

    /// The first entry and its word.
    #[inline(always)]
    pub fn front_with_word(&self) -> Option<(Id, usize)> {
        if self.len == 0 {
            return None;
        }
        self.ring.get(self.head).copied()
    }

    #[inline(always)]
    pub fn pop_front(&mut self) -> Option<Id> {
        let id = self.front()?;
        self.head = (self.head + 1) & (self.ring.len() - 1);
        self.len -= 1;
        Some(id)
    }

    /// Add at the back if there is room (see [`IdQueue::has_room`]);
    /// false (and nothing done) if not.
    #[inline(always)]
    pub fn push_within_capacity(&mut self, id: Id) -> bool {
        self.push_within_capacity_with_word(id, 0)
    }

    /// [`IdQueue::push_within_capacity`] with a word attached.
    #[inline(always)]
    pub fn push_within_capacity_with_word(&mut self, id: Id, word: usize) -> bool {
        let size = self.ring.len();
        if self.len >= size {
            return false;
        }
        match self.ring.get_mut((self.head + self.len) & (size - 1)) {
            Some(slot) => {
                *slot = (id, word);
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// Add at the back, growing the ring if needed.
    pub fn push_back(&mut self, id: Id) -> Result<(), QueueFull> {
        self.push_back_with_word(id, 0)
    }

    /// [`IdQueue::push_back`] with a word attached.
    pub fn push_back_with_word(&mut self, id: Id, word: usize) -> Result<(), QueueFull> {
        if !self.has_room() {
            self.grow()?;
        }
        if self.push_within_capacity_with_word(id, word) {
            Ok(())
        } else {
            Err(QueueFull)
        }
    }

    fn grow(&mut self) -> Result<(), QueueFull> {
        let size = (self.ring.len() * 2).max(4);
        let mut ring = Vec::new();
        ring.try_reserve_exact(size).map_err(|_| QueueFull)?;
        let mask = self.ring.len().wrapping_sub(1);
        ring.extend((0..self.len).map(|i| self.ring[(self.head + i) & mask]));
        ring.resize(size, VACANT);
        self.ring = ring;
        self.head = 0;
        Ok(())
    }

    /// The entries, front first.
    pub fn iter(&self) -> impl Iterator<Item = Id> + '_ {
        let mask = self.ring.len().wrapping_sub(1);
        (0..self.len).map(move |i| self.ring[(self.head + i) & mask].0)
    }

    /// Keep only the entries for which `keep` holds (in order).
    pub fn retain(&mut self, mut keep: impl FnMut(&Id) -> bool) {
        let mask = self.ring.len().wrapping_sub(1);
        let mut kept = 0;
        for i in 0..self.len {
            let entry = self.ring[(self.head + i) & mask];
            if keep(&entry.0) {
                self.ring[(self.head + kept) & mask] = entry;
                kept += 1;
            }
        }
        self.len = kept;
    }
}

impl Default for IdQueue {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u32) -> Id {
        Id {
            index: i,
            generation: 0,
        }
    }

    #[test]
    fn fifo_across_growth_and_wrap() {
        let mut q = IdQueue::new();
        assert_eq!(q.front(), None);
        assert!(!q.has_room() && !q.push_within_capacity(id(0)));
        let mut next_in = 0;
        let mut next_out = 0;
        for round in 0..50 {
            for _ in 0..(round % 7) + 1 {
                q.push_back(id(next_in)).unwrap();
                next_in += 1;
            }
            for _ in 0..(round % 5) {
                if let Some(x) = q.pop_front() {
                    assert_eq!(x, id(next_out));
                    next_out += 1;
                }
            }
            assert_eq!(q.len() as u32, next_in - next_out);
            assert_eq!(
                q.iter().collect::<Vec<_>>(),
                (next_out..next_in).map(id).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn words_stay_with_their_ids() {
        let mut q = IdQueue::new();
        for i in 0..9 {
            q.push_back_with_word(id(i), 100 + i as usize).unwrap();
        }
        q.retain(|x| x.index % 3 != 0);
        q.pop_front();
        assert!(q.push_within_capacity_with_word(id(9), 109));
        q.push_back(id(10)).unwrap();
        let mut seen = Vec::new();
        while let Some((x, w)) = q.front_with_word() {
            seen.push((x.index, w));
            q.pop_front();
        }
        assert_eq!(
            seen,
            vec![(2, 102), (4, 104), (5, 105), (7, 107), (8, 108), (9, 109), (10, 0)]
        );
    }

    #[test]
    fn retain_keeps_order_and_room() {
        let mut q = IdQueue::new();
        for i in 0..6 {
            q.push_back(id(i)).unwrap();
        }
        q.pop_front();
        q.pop_front();
        q.push_back(id(6)).unwrap();
        q.retain(|x| x.index % 2 == 0);
        assert_eq!(q.iter().collect::<Vec<_>>(), vec![id(2), id(4), id(6)]);
        assert!(q.has_room());
        assert!(q.push_within_capacity(id(7)));
        assert_eq!(q.pop_front(), Some(id(2)));
        assert_eq!(q.len(), 3);
    }
}
