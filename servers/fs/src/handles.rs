//! Open handles: what each badge the server minted stands for. A badge
//! holds a generation as well as the slot, so a stale badge (its handle
//! closed, the slot reused) names nothing.

use alloc::vec::Vec;

/// Set in every handle badge; task-id badges (the name service's) never
/// have it.
pub const HANDLE_BIT: u64 = 1 << 62;
const SLOT_BITS: u32 = 20;

struct Slot<T> {
    generation: u64,
    value: Option<T>,
}

pub struct Table<T> {
    slots: Vec<Slot<T>>,
    free: Vec<usize>,
    limit: usize,
}

impl<T> Table<T> {
    /// A table of at most `limit` open handles.
    pub fn new(limit: usize) -> Table<T> {
        Table {
            slots: Vec::new(),
            free: Vec::new(),
            limit: limit.min(1 << SLOT_BITS),
        }
    }

    /// Stores `value`; its badge, or `None` when full.
    pub fn insert(&mut self, value: T) -> Option<u64> {
        let i = match self.free.pop() {
            Some(i) => i,
            None if self.slots.len() < self.limit => {
                self.slots.push(Slot {
                    generation: 0,
                    value: None,
                });
                self.slots.len() - 1
            }
            None => return None,
        };
        let s = &mut self.slots[i];
        s.generation = (s.generation + 1) & ((1 << (62 - SLOT_BITS)) - 1);
        s.value = Some(value);
        Some(HANDLE_BIT | s.generation << SLOT_BITS | i as u64)
    }

    fn index(&self, badge: u64) -> Option<usize> {
        if badge & HANDLE_BIT == 0 {
            return None;
        }
        let i = (badge & ((1 << SLOT_BITS) - 1)) as usize;
        let g = (badge & !HANDLE_BIT) >> SLOT_BITS;
        let s = self.slots.get(i)?;
        (s.generation == g && s.value.is_some()).then_some(i)
    }

    pub fn get_mut(&mut self, badge: u64) -> Option<&mut T> {
        let i = self.index(badge)?;
        self.slots[i].value.as_mut()
    }

    pub fn remove(&mut self, badge: u64) -> Option<T> {
        let i = self.index(badge)?;
        self.free.push(i);
        self.slots[i].value.take()
    }

    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every handle for which `f` is true (a mount that went away).
    pub fn remove_where(&mut self, mut f: impl FnMut(&T) -> bool) -> Vec<T> {
        let mut out = Vec::new();
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.value.as_ref().is_some_and(&mut f) {
                out.extend(s.value.take());
                self.free.push(i);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badges_are_checked() {
        let mut t = Table::new(2);
        let a = t.insert("a").unwrap();
        let b = t.insert("b").unwrap();
        assert_eq!(t.insert("c"), None, "full");
        assert_eq!(t.get_mut(a), Some(&mut "a"));
        assert_eq!(t.remove(a), Some("a"));
        assert_eq!(t.get_mut(a), None, "closed");
        let c = t.insert("c").unwrap();
        assert_ne!(a, c, "a reused slot gets a new badge");
        assert_eq!(t.get_mut(a), None, "a stale badge names nothing");
        assert_eq!(t.get_mut(c), Some(&mut "c"));
        for forged in [0, 7, HANDLE_BIT, HANDLE_BIT | 5, b ^ (1 << SLOT_BITS), u64::MAX] {
            assert_eq!(t.get_mut(forged), None, "{forged:#x}");
        }
        assert_eq!(t.remove_where(|v| *v == "b"), ["b"]);
        assert_eq!(t.len(), 1);
    }
}
