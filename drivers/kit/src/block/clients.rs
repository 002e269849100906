//! The attached buffers, keyed by client badge and buffer id, at most a
//! fixed number: to attach one more, the driver forgets the least recently
//! used ([`Clients::evict_lru`]; a client that died never detaches, a live
//! one just attaches again).

use alloc::vec::Vec;

struct Entry<T> {
    badge: u64,
    id: u64,
    last_used: u64,
    value: T,
}

pub struct Clients<T> {
    entries: Vec<Entry<T>>,
    max: usize,
    clock: u64,
}

impl<T> Clients<T> {
    pub fn new(max: usize) -> Clients<T> {
        Clients {
            entries: Vec::new(),
            max: max.max(1),
            clock: 0,
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Adds `(badge, id)`, which must not be there, in a table that is
    /// not full (see [`Clients::remove`], [`Clients::evict_lru`]); gives
    /// the value back otherwise.
    pub fn insert(&mut self, badge: u64, id: u64, value: T) -> Result<(), T> {
        if self.is_full() || self.position(badge, id).is_some() {
            return Err(value);
        }
        let last_used = self.tick();
        self.entries.push(Entry {
            badge,
            id,
            last_used,
            value,
        });
        Ok(())
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max
    }

    /// Removes the least recently used entry.
    pub fn evict_lru(&mut self) -> Option<T> {
        let lru = (0..self.entries.len()).min_by_key(|&i| self.entries[i].last_used)?;
        Some(self.entries.swap_remove(lru).value)
    }

    #[cfg(test)]
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().map(|e| &e.value)
    }

    /// The value under `(badge, id)`, marked as just used.
    pub fn get_mut(&mut self, badge: u64, id: u64) -> Option<&mut T> {
        let i = self.position(badge, id)?;
        let now = self.tick();
        let e = &mut self.entries[i];
        e.last_used = now;
        Some(&mut e.value)
    }

    pub fn remove(&mut self, badge: u64, id: u64) -> Option<T> {
        let i = self.position(badge, id)?;
        Some(self.entries.swap_remove(i).value)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn position(&self, badge: u64, id: u64) -> Option<usize> {
        self.entries.iter().position(|e| e.badge == badge && e.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_by_badge_and_id() {
        let mut c = Clients::new(4);
        assert_eq!(c.insert(1, 7, "a"), Ok(()));
        assert_eq!(c.insert(2, 7, "b"), Ok(()));
        assert_eq!(c.insert(1, 8, "c"), Ok(()));
        assert_eq!(c.get_mut(1, 7).map(|v| *v), Some("a"));
        assert_eq!(c.get_mut(2, 7).map(|v| *v), Some("b"));
        assert_eq!(c.get_mut(2, 8), None, "another client's id is not this one's");
        assert_eq!(c.insert(1, 7, "a2"), Err("a2"), "a key is there once");
        assert_eq!(c.remove(1, 7), Some("a"));
        assert_eq!(c.remove(1, 7), None);
        assert_eq!(c.len(), 2);
        let mut v: Vec<&str> = c.values().copied().collect();
        v.sort();
        assert_eq!(v, ["b", "c"]);
    }

    #[test]
    fn full_table_forgets_the_least_recently_used() {
        let mut c = Clients::new(3);
        for id in 0..3 {
            assert_eq!(c.insert(9, id, id), Ok(()));
        }
        assert!(c.is_full());
        assert_eq!(c.insert(9, 3, 3), Err(3));
        c.get_mut(9, 0); // 1 is now the oldest
        assert_eq!(c.evict_lru(), Some(1));
        assert_eq!(c.insert(9, 3, 3), Ok(()));
        assert_eq!(c.len(), 3);
        assert!(c.get_mut(9, 1).is_none());
        assert!(c.get_mut(9, 0).is_some() && c.get_mut(9, 2).is_some() && c.get_mut(9, 3).is_some());
        assert_eq!(Clients::<u8>::new(0).evict_lru(), None);
    }
}
