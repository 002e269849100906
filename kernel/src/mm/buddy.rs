//! A buddy system's mechanics, shared by the frame allocator's two:
//! [`super::pages`] (blocks of 2^j pages) and [`super::small`] (the kernel
//! heap's blocks of 16 to 2,048 bytes, inside pages).
//!
//! Blocks are powers of two aligned to their size. The free ones are in a
//! list per order, linked through the blocks themselves, doubly, so a block
//! leaves its list in a constant number of steps wherever it sits. A bit
//! map with a bit per smallest block says where a free block starts, and
//! that block's link word says its order (the page frames' map is not
//! cleared at boot: there a bit inside a free block means nothing, and
//! nothing reads it; see [`super::pages::Pages`]). Freeing a block looks at its
//! buddy: when free at the same order, the buddy leaves its list and the
//! two merge, one order up. Allocating takes the first block of the lowest
//! order that has one (a mask of the non-empty lists) and splits it. So
//! both take a number of steps bounded by the orders, under the frame lock,
//! however long a task made the lists (before, with
//! `buddy_system_allocator`, a free searched the whole list of its order
//! for the buddy).
//!
//! The memory behind the lists and maps is the allocator's own: free
//! blocks (never mapped for user space: a frame goes back only once no
//! mapping or grant of it is left) and maps set aside at boot or at the end
//! of a page of small blocks. A block's link words are read only once its
//! bit says it is free, so they are always the allocator's: what a task
//! writes in its own pages is never taken for a link or an order.

/// Orders at most (block sizes from the smallest to 2^20 times it).
pub const ORDERS: usize = 21;

/// A free block's first two words (every block is at least 16 bytes).
/// `prev` carries the block's order in its low bits (below the area's
/// smallest block, which every address here is aligned to).
#[repr(C)]
struct Node {
    next: usize,
    prev: usize,
}

/// Heads kept: a power of two above [`ORDERS`], so that an order masked
/// with `HEADS - 1` is an index the compiler knows is in bounds (no
/// bounds check, nor its panic, in each of the inlined list steps).
const HEADS: usize = 32;

/// A free list per order, linked through the blocks; 0 ends a list (no
/// block lives at address 0).
pub struct Lists {
    heads: [usize; HEADS],
    /// Bit `j` set: list `j` is not empty.
    nonempty: u32,
}

impl Default for Lists {
    fn default() -> Self {
        Self::new()
    }
}

impl Lists {
    pub const fn new() -> Self {
        Lists {
            heads: [0; HEADS],
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
        Some((j, self.heads[j & (HEADS - 1)]))
    }

    /// # Safety
    /// `block` is a free block of at least 16 bytes, aligned to `low + 1`
    /// (a power of two above `order`), writable, owned by the allocator and
    /// in no list; `order` is below [`ORDERS`]; the list's blocks are
    /// aligned alike.
    #[inline(always)]
    unsafe fn push(&mut self, order: usize, block: usize, low: usize) {
        let head = self.heads[order & (HEADS - 1)];
        // SAFETY: `block` is ours and large enough for a node (caller); the
        // head, when there is one, is a free block in this list.
        unsafe {
            (block as *mut Node).write(Node {
                next: head,
                prev: order,
            });
            if head != 0 {
                let h = &mut *(head as *mut Node);
                h.prev = block | (h.prev & low);
            }
        }
        self.heads[order & (HEADS - 1)] = block;
        self.nonempty |= 1 << order;
    }

    /// # Safety
    /// `block` is in list `order`, whose blocks are aligned to `low + 1`.
    #[inline(always)]
    unsafe fn unlink(&mut self, order: usize, block: usize, low: usize) {
        // SAFETY: `block` and its neighbours are free blocks in this list
        // (caller), whose nodes the list wrote.
        unsafe {
            let Node { next, prev } = (block as *const Node).read();
            let prev = prev & !low;
            if prev == 0 {
                self.heads[order & (HEADS - 1)] = next;
            } else {
                (*(prev as *mut Node)).next = next;
            }
            if next != 0 {
                let n = &mut *(next as *mut Node);
                n.prev = prev | (n.prev & low);
            }
        }
        if self.heads[order & (HEADS - 1)] == 0 {
            self.nonempty &= !(1 << order);
        }
    }
}

/// Where blocks may lie, and their bit map: blocks of `1 << (shift + j)`
/// bytes for orders `j` below `orders`, within `start..end`, and a bit per
/// `1 << shift` bytes from `start` at `maps`.
#[derive(Clone, Copy)]
pub struct Area {
    pub start: usize,
    pub end: usize,
    pub maps: *mut u64,
    pub shift: u8,
    pub orders: u8,
}

impl Area {
    /// Address bits below the smallest block (where a link word keeps the
    /// order).
    #[inline(always)]
    fn low(&self) -> usize {
        (1 << self.shift) - 1
    }

    /// Whether a free block of order `j` starts at `block` (in the area).
    #[inline(always)]
    pub fn is_free(&self, j: usize, block: usize) -> bool {
        let i = (block - self.start) >> self.shift;
        // SAFETY: the map is the area's (set up zeroed before any block was
        // free), a bit for each smallest block in it. A set bit means a
        // free block starts there, whose node the lists wrote.
        unsafe { *self.maps.add(i / 64) & (1 << (i % 64)) != 0 && (*(block as *const Node)).prev & self.low() == j }
    }

    #[inline(always)]
    fn mark(&self, block: usize, free: bool) {
        let i = (block - self.start) >> self.shift;
        // SAFETY: as in `is_free`; only the allocator writes the map.
        let word = unsafe { &mut *self.maps.add(i / 64) };
        if free {
            *word |= 1 << (i % 64);
        } else {
            *word &= !(1 << (i % 64));
        }
    }

    /// Clear the bits of the `n` smallest blocks from `block` (in the
    /// area): a word at a time, with a mask at either end.
    pub fn clear(&self, block: usize, n: usize) {
        let mut i = (block - self.start) >> self.shift;
        let end = i + n;
        while i < end {
            let bits = (end - i).min(64 - i % 64);
            let mask = (u64::MAX >> (64 - bits)) << (i % 64);
            // SAFETY: as in `is_free`; only the allocator writes the map.
            unsafe { *self.maps.add(i / 64) &= !mask };
            i += bits;
        }
    }

    /// Make `block` (unused, of order `j`, in the area, in no list) free,
    /// merged with its free buddies: the free block it ends in, and its
    /// order.
    ///
    /// # Safety
    /// As said: nobody uses the block, and it is the allocator's.
    pub unsafe fn give(&self, lists: &mut Lists, mut block: usize, mut j: usize) -> (usize, usize) {
        while j + 1 < self.orders as usize {
            let buddy = block ^ (1 << (self.shift as usize + j));
            if buddy < self.start || buddy >= self.end || !self.is_free(j, buddy) {
                break;
            }
            // SAFETY: free at order `j`: in list `j`.
            unsafe { lists.unlink(j, buddy, self.low()) };
            self.mark(buddy, false);
            block = block.min(buddy);
            j += 1;
        }
        // SAFETY: a free block of ours (caller), merged, in no list.
        unsafe { self.put(lists, block, j) };
        (block, j)
    }

    /// Take the free block of order `j` at `block`, split down to `want`:
    /// the upper halves stay free, and do not merge (their buddies are the
    /// part taken).
    ///
    /// # Safety
    /// The block is free (in list `j`), and `want` at most `j`.
    pub unsafe fn take(&self, lists: &mut Lists, block: usize, mut j: usize, want: usize) {
        // SAFETY: in list `j` (caller).
        unsafe { lists.unlink(j, block, self.low()) };
        self.mark(block, false);
        while j > want {
            j -= 1;
            // SAFETY: the upper half of a free block we own, in no list.
            unsafe { self.put(lists, block + (1 << (self.shift as usize + j)), j) };
        }
    }

    /// Make `block`, of order `j` and in no list, free without merging.
    ///
    /// # Safety
    /// As for [`Area::give`], and its buddy is not free at order `j`.
    // Out of line: one copy for its callers (the boot's set-up, a split,
    // the end of a merge, a page of small blocks, a shrink) saves 236 bytes
    // of text; the list and map steps inside it stay inlined.
    #[inline(never)]
    pub unsafe fn put(&self, lists: &mut Lists, block: usize, j: usize) {
        // SAFETY: the caller's promise.
        unsafe { self.put_inlined(lists, block, j) };
    }

    /// [`Area::put`] inlined: for the boot's set-up, which puts every
    /// free block (a call each cost about 5 instructions of the boot's).
    ///
    /// # Safety
    /// As for [`Area::put`].
    #[inline(always)]
    pub unsafe fn put_inlined(&self, lists: &mut Lists, block: usize, j: usize) {
        self.mark(block, true);
        // SAFETY: unused, ours, in no list (caller).
        unsafe { lists.push(j, block, self.low()) };
    }
}
