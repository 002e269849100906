//! Generational slabs: kernel objects are named by index + generation, so a
//! stale reference to a freed and reused entry is detected, never followed.

use alloc::vec::Vec;

/// A slab entry's name. Aligned as one 64-bit word, so ids are compared,
/// loaded and stored whole.
#[derive(Clone, Copy, Debug, Eq, PartialOrd, Ord)]
#[repr(C, align(8))]
pub struct Id {
    pub index: u32,
    pub generation: u32,
}

impl Id {
    /// Both fields as one word (one compare instead of two).
    #[inline(always)]
    fn word(self) -> u64 {
        (self.generation as u64) << 32 | self.index as u64
    }
}

impl PartialEq for Id {
    #[inline(always)]
    fn eq(&self, other: &Id) -> bool {
        self.word() == other.word()
    }
}

impl core::hash::Hash for Id {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.word().hash(state);
    }
}

struct Entry<T> {
    generation: u32,
    value: Option<T>,
}

/// Storage for one kind of object.
pub struct Slab<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    live: usize,
}

/// Bytes one entry of a `Slab<T>` takes: the entry and its place in the
/// free list.
pub const fn entry_bytes<T>() -> usize {
    core::mem::size_of::<Entry<T>>() + core::mem::size_of::<u32>()
}

/// No memory to grow the slab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlabFull;

impl<T> Slab<T> {
    pub const fn new() -> Self {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
            live: 0,
        }
    }

    /// Store `value`; fails (without panicking) when memory runs out.
    pub fn insert(&mut self, value: T) -> Result<Id, SlabFull> {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.try_reserve(1).map_err(|_| SlabFull)?;
                self.free.try_reserve(self.entries.len() + 1).map_err(|_| SlabFull)?;
                let i = u32::try_from(self.entries.len()).map_err(|_| SlabFull)?;
                self.entries.push(Entry {
                    generation: 0,
                    value: None,
                });
                i
            }
        };
        let entry = &mut self.entries[index as usize];
        entry.value = Some(value);
        self.live += 1;
        Ok(Id {
            index,
            generation: entry.generation,
        })
    }

    #[inline]
    pub fn get(&self, id: Id) -> Option<&T> {
        self.get_inlined(id)
    }

    #[inline]
    pub fn get_mut(&mut self, id: Id) -> Option<&mut T> {
        let e = self.entries.get_mut(id.index as usize)?;
        if e.generation == id.generation {
            e.value.as_mut()
        } else {
            None
        }
    }

    /// [`Slab::get`] inlined: for the lookups on every exception entry and
    /// switch, where a call per lookup shows (`Slab::get` is out of line
    /// everywhere else: the kernel is built for size).
    #[inline(always)]
    pub fn get_inlined(&self, id: Id) -> Option<&T> {
        let e = self.entries.get(id.index as usize)?;
        if e.generation == id.generation {
            e.value.as_ref()
        } else {
            None
        }
    }

    /// Remove and return the value; the id (and every copy of it) goes stale.
    pub fn remove(&mut self, id: Id) -> Option<T> {
        let e = self.entries.get_mut(id.index as usize)?;
        if e.generation != id.generation {
            return None;
        }
        let value = e.value.take()?;
        // An entry whose generation would wrap is retired, never reused: an
        // old id must not name a new object.
        if e.generation < u32::MAX - 1 {
            e.generation += 1;
            // Capacity was reserved when the entry was created.
            self.free.push(id.index);
        } else {
            e.generation = u32::MAX;
        }
        self.live -= 1;
        Some(value)
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Every live entry.
    pub fn iter(&self) -> impl Iterator<Item = (Id, &T)> {
        self.entries.iter().enumerate().filter_map(|(i, e)| {
            e.value.as_ref().map(|v| {
                (
                    Id {
                        index: i as u32,
                        generation: e.generation,
                    },
                    v,
                )
            })
        })
    }

    /// Ids of every live entry (to iterate while mutating).
    pub fn ids(&self) -> Vec<Id> {
        self.iter().map(|(id, _)| id).collect()
    }
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_ids_are_rejected_after_reuse() {
        let mut s = Slab::new();
        let a = s.insert("a").unwrap();
        assert_eq!(s.remove(a), Some("a"));
        let b = s.insert("b").unwrap();
        assert_eq!(a.index, b.index);
        assert_ne!(a.generation, b.generation);
        assert_eq!(s.get(a), None);
        assert_eq!(s.remove(a), None);
        assert_eq!(s.get(b), Some(&"b"));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn an_entry_is_retired_before_its_generation_wraps() {
        let mut s = Slab::new();
        let a = s.insert(1).unwrap();
        s.entries[a.index as usize].generation = u32::MAX - 1;
        let old = Id {
            index: a.index,
            generation: u32::MAX - 1,
        };
        assert_eq!(s.remove(old), Some(1));
        let b = s.insert(2).unwrap();
        assert_ne!(b.index, a.index, "a retired entry is not reused");
        assert_eq!(s.get(old), None);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn inlined_lookup_agrees() {
        let mut s = Slab::new();
        let a = s.insert(1).unwrap();
        s.remove(a);
        let b = s.insert(2).unwrap();
        assert_eq!(s.get_inlined(a), None);
        assert_eq!(s.get_inlined(b), Some(&2));
        assert_eq!(
            s.get_inlined(Id {
                index: 9,
                generation: 0
            }),
            None
        );
    }

    #[test]
    fn iterates_live_entries() {
        let mut s = Slab::new();
        let ids: Vec<_> = (0..5).map(|i| s.insert(i).unwrap()).collect();
        s.remove(ids[2]);
        assert_eq!(s.iter().map(|(_, v)| *v).collect::<Vec<_>>(), vec![0, 1, 3, 4]);
    }
}
