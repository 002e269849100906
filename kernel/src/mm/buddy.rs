//! A buddy system's mechanics, shared by the frame allocator's two:
//! [`super::pages`] (blocks of 2^j pages) and [`super::small`] (the kernel
//! heap's blocks of 16 to 1,024 bytes, inside pages).
//!
//! Blocks are powers of two aligned to their size. The free ones are in a
//! list per order, linked through the blocks themselves, doubly, so a block
//! leaves its list in a constant number of steps wherever it sits; a bit
//! map per order says which blocks are free. Freeing a block looks at its
//! buddy's bit: when set, the buddy leaves its list and the two merge, one
//! order up. Allocating takes the first block of the lowest order that has
//! one (a mask of the non-empty lists) and splits it. So both take a number
//! of steps bounded by the orders, under the frame lock, however long a
//! task made the lists (before, with `buddy_system_allocator`, a free
//! searched the whole list of its order for the buddy).
//!
//! The memory behind the lists and maps is the allocator's own: free
//! blocks (never mapped for user space: a frame goes back only once no
//! mapping or grant of it is left) and maps set aside at boot or at the end
//! of a page of small blocks. So no task can forge a link or a bit.

/// Orders at most (block sizes from the smallest to 2^20 times it).
pub const ORDERS: usize = 21;

/// A free block's first two words (every block is at least 16 bytes).
#[repr(C)]
struct Node {
    next: usize,
    prev: usize,
}

/// A free list per order, linked through the blocks; 0 ends a list (no
/// block lives at address 0).
pub struct Lists {
    heads: [usize; ORDERS],
    /// Bit `j` set: list `j` is not empty.
    nonempty: u32,
}

impl Lists {
    pub const fn new() -> Self {
        Lists {
            heads: [0; ORDERS],
            nonempty: 0,
        }
    }

    /// The lowest order at or above `order` that has a free block, and that
    /// list's first block.
    pub fn first_from(&self, order: usize) -> Option<(usize, usize)> {
        let above = self.nonempty.checked_shr(order as u32).unwrap_or(0);
        if above == 0 {
            return None;
        }
        let j = order + above.trailing_zeros() as usize;
        Some((j, self.heads[j]))
    }

    /// # Safety
    /// `block` is a free block of at least 16 bytes, 8-byte aligned,
    /// writable, owned by the allocator and in no list; `order` is below
    /// [`ORDERS`].
    unsafe fn push(&mut self, order: usize, block: usize) {
        let head = self.heads[order];
        // SAFETY: `block` is ours and large enough for a node (caller); the
        // head, when there is one, is a free block in this list.
        unsafe {
            (block as *mut Node).write(Node { next: head, prev: 0 });
            if head != 0 {
                (*(head as *mut Node)).prev = block;
            }
        }
        self.heads[order] = block;
        self.nonempty |= 1 << order;
    }

    /// # Safety
    /// `block` is in list `order`.
    unsafe fn unlink(&mut self, order: usize, block: usize) {
        // SAFETY: `block` and its neighbours are free blocks in this list
        // (caller), whose nodes the list wrote.
        unsafe {
            let Node { next, prev } = (block as *const Node).read();
            if prev == 0 {
                self.heads[order] = next;
            } else {
                (*(prev as *mut Node)).next = next;
            }
            if next != 0 {
                (*(next as *mut Node)).prev = prev;
            }
        }
        if self.heads[order] == 0 {
            self.nonempty &= !(1 << order);
        }
    }
}

/// Where blocks may lie, and their bit maps: blocks of `1 << (shift + j)`
/// bytes for orders `j` below `orders`, within `start..end`.
#[derive(Clone, Copy)]
pub struct Area {
    pub start: usize,
    pub end: usize,
    pub shift: u8,
    pub orders: u8,
    /// The maps: order `j`'s at bit [`Area::first_bit`]`(j)`.
    pub maps: *mut u64,
    /// A power of two, at least the area's smallest blocks.
    pub units: usize,
    /// Bits each order has beyond `units >> j`: 2 where the area may
    /// start or end in the middle of a block (its first and last blocks
    /// stick out; their bits are never set), 0 where it is aligned to the
    /// largest.
    pub slack: u8,
}

impl Area {
    /// Order `j`'s first bit: the orders below take `(units >> i) + slack`
    /// bits each, which this bounds (`units` is a power of two).
    pub const fn first_bit(units: usize, slack: u8, j: usize) -> usize {
        2 * units - (2 * units >> j) + slack as usize * j
    }

    fn bit(&self, j: usize, block: usize) -> usize {
        let s = self.shift as usize + j;
        Area::first_bit(self.units, self.slack, j) + (block >> s) - (self.start >> s)
    }

    /// Whether the block of order `j` at `block` is free.
    pub fn is_free(&self, j: usize, block: usize) -> bool {
        let i = self.bit(j, block);
        // SAFETY: the maps are the area's (set up zeroed before any block
        // was free), and hold a bit for every block of every order that
        // touches the area.
        unsafe { *self.maps.add(i / 64) & (1 << (i % 64)) != 0 }
    }

    fn mark(&self, j: usize, block: usize, free: bool) {
        let i = self.bit(j, block);
        // SAFETY: as in `is_free`; only the allocator writes the maps.
        let word = unsafe { &mut *self.maps.add(i / 64) };
        if free {
            *word |= 1 << (i % 64);
        } else {
            *word &= !(1 << (i % 64));
        }
    }

    /// Make `block` (unused, of order `j`, in the area, in no list) free,
    /// merged with its free buddies; returns the order it ended at.
    ///
    /// # Safety
    /// As said: nobody uses the block, and it is the allocator's.
    pub unsafe fn give(&self, lists: &mut Lists, mut block: usize, mut j: usize) -> usize {
        while j + 1 < self.orders as usize {
            let buddy = block ^ (1 << (self.shift as usize + j));
            if buddy < self.start || buddy >= self.end || !self.is_free(j, buddy) {
                break;
            }
            // SAFETY: its bit says the buddy is free: in list `j`.
            unsafe { lists.unlink(j, buddy) };
            self.mark(j, buddy, false);
            block = block.min(buddy);
            j += 1;
        }
        self.mark(j, block, true);
        // SAFETY: a free block of ours (caller), merged, in no list.
        unsafe { lists.push(j, block) };
        j
    }

    /// Take the free block of order `j` at `block`, split down to `want`:
    /// the upper halves stay free, and do not merge (their buddies are the
    /// part taken).
    ///
    /// # Safety
    /// The block is free (in list `j`), and `want` at most `j`.
    pub unsafe fn take(&self, lists: &mut Lists, block: usize, mut j: usize, want: usize) {
        // SAFETY: in list `j` (caller).
        unsafe { lists.unlink(j, block) };
        self.mark(j, block, false);
        while j > want {
            j -= 1;
            let half = block + (1 << (self.shift as usize + j));
            self.mark(j, half, true);
            // SAFETY: the upper half of a free block we own, in no list.
            unsafe { lists.push(j, half) };
        }
    }

    /// Make `block`, of order `j` and in no list, free without merging.
    ///
    /// # Safety
    /// As for [`Area::give`], and its buddy is in use.
    pub unsafe fn put(&self, lists: &mut Lists, block: usize, j: usize) {
        self.mark(j, block, true);
        // SAFETY: unused, ours, in no list (caller).
        unsafe { lists.push(j, block) };
    }
}
