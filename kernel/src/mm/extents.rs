//! A RAM memory object's pages as runs of physically contiguous pages
//! ("extents"), for objects the frame allocator could not give as one
//! block (fragmented memory). Pure logic: the kernel supplies the
//! allocator.

/// One run of a memory object: physical start `pa`, and `end`, the
/// object's page number just past the run (runs are in page order, so the
/// run holds pages `previous end..end`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub pa: u64,
    pub end: u64,
}

const PAGE: u64 = super::layout::PAGE_SIZE;

/// Physical address of page `page` of the object made of `list`, and how
/// many pages from it on are contiguous (to the end of its run). `page`
/// must be below the last run's end. O(log n).
pub fn find(list: &[Extent], page: usize) -> (u64, usize) {
    let page = page as u64;
    let i = list.partition_point(|e| e.end <= page);
    let start = if i == 0 { 0 } else { list[i - 1].end };
    let e = list[i];
    (e.pa + (page - start) * PAGE, (e.end - page) as usize)
}

/// Most blocks one object is gathered from. It bounds the work of one
/// `Create` under the kernel lock (a task that fragments free memory on
/// purpose cannot make the kernel take thousands of single pages in one
/// call): at most this many allocations and as many frees, plus one failed
/// try per halving.
pub const MAX_BLOCKS: usize = 64;

/// Take `pages` pages as power-of-two blocks, largest first: `take(n)`
/// allocates `n` (a power of two) contiguous pages; each block is handed
/// to `got(pa, n)` in order. A size that fails is not tried again, so it
/// takes at most one failed try per halving. False when even one page
/// cannot be had, or when [`MAX_BLOCKS`] blocks do not make `pages` (the
/// blocks already handed to `got` are the caller's to give back).
pub fn gather(mut pages: usize, mut take: impl FnMut(usize) -> Option<u64>, mut got: impl FnMut(u64, usize)) -> bool {
    let mut size = usize::MAX;
    let mut blocks = 0;
    while pages > 0 {
        if blocks == MAX_BLOCKS {
            return false;
        }
        size = size.min(1 << pages.ilog2());
        match take(size) {
            Some(pa) => {
                got(pa, size);
                pages -= size;
                blocks += 1;
            }
            None if size > 1 => size /= 2,
            None => return false,
        }
    }
    true
}

/// Add block `pa`, `pages` pages, at the end of the object `list`
/// describes: merged into the last run when it continues it physically.
/// Whether it made a new run (the caller reserves room for those first,
/// see [`runs`]).
pub fn push(list: &mut alloc::vec::Vec<Extent>, pa: u64, pages: usize) -> bool {
    let n = list.len();
    let start = if n >= 2 { list[n - 2].end } else { 0 };
    if let Some(last) = list.last_mut() {
        if last.pa + (last.end - start) * PAGE == pa {
            last.end += pages as u64;
            return false;
        }
    }
    let end = list.last().map_or(0, |l| l.end) + pages as u64;
    list.push(Extent { pa, end });
    true
}

/// How many runs [`push`] makes of `blocks` (in order).
pub fn runs(blocks: impl Iterator<Item = (u64, usize)>) -> usize {
    let (mut n, mut next) = (0, u64::MAX);
    for (pa, pages) in blocks {
        if pa != next {
            n += 1;
        }
        next = pa + pages as u64 * PAGE;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn find_walks_the_runs() {
        let list = [
            Extent { pa: 0x10_0000, end: 4 },
            Extent { pa: 0x40_0000, end: 5 },
            Extent { pa: 0x8000, end: 7 },
        ];
        assert_eq!(find(&list, 0), (0x10_0000, 4));
        assert_eq!(find(&list, 3), (0x10_3000, 1));
        assert_eq!(find(&list, 4), (0x40_0000, 1));
        assert_eq!(find(&list, 5), (0x8000, 2));
        assert_eq!(find(&list, 6), (0x9000, 1));
        // One run: the whole object.
        assert_eq!(find(&[Extent { pa: 0x1000, end: 3 }], 1), (0x2000, 2));
    }

    #[test]
    fn gather_takes_largest_blocks_first_and_halves_on_failure() {
        // Only blocks of at most 4 pages are free.
        let mut next = 0u64;
        let mut tries = Vec::new();
        let mut blocks = Vec::new();
        let ok = gather(
            11,
            |n| {
                tries.push(n);
                (n <= 4).then(|| {
                    next += 0x10_0000;
                    next
                })
            },
            |pa, n| blocks.push((pa, n)),
        );
        assert!(ok);
        assert_eq!(tries, [8, 4, 4, 2, 1]);
        assert_eq!(blocks.iter().map(|b| b.1).collect::<Vec<_>>(), [4, 4, 2, 1]);
        assert_eq!(blocks.iter().map(|b| b.1).sum::<usize>(), 11);
    }

    #[test]
    fn push_merges_blocks_that_continue_the_last_run() {
        let blocks = [
            (0x10_0000, 4),
            (0x10_4000, 2),
            (0x8000, 1),
            (0x20_0000, 1),
            (0x20_1000, 1),
        ];
        let mut list = Vec::new();
        let made = blocks.iter().filter(|&&(pa, n)| push(&mut list, pa, n)).count();
        assert_eq!(made, 3);
        assert_eq!(runs(blocks.iter().copied()), 3);
        assert_eq!(
            list,
            [
                Extent { pa: 0x10_0000, end: 6 },
                Extent { pa: 0x8000, end: 7 },
                Extent { pa: 0x20_0000, end: 9 },
            ]
        );
        assert_eq!(find(&list, 5), (0x10_5000, 1));
        assert_eq!(find(&list, 8), (0x20_1000, 1));
    }

    #[test]
    fn gather_stops_after_max_blocks() {
        // Only single pages are free: an object of MAX_BLOCKS pages is
        // made, one more page is refused after MAX_BLOCKS takes.
        for (pages, whole) in [(MAX_BLOCKS, true), (MAX_BLOCKS + 1, false)] {
            let (mut taken, mut got) = (0, 0);
            let mut next = 0u64;
            let ok = gather(
                pages,
                |n| {
                    (n == 1).then(|| {
                        taken += 1;
                        next += 0x2000;
                        next
                    })
                },
                |_, _| got += 1,
            );
            assert_eq!(ok, whole);
            assert_eq!((taken, got), (MAX_BLOCKS, MAX_BLOCKS));
        }
    }

    #[test]
    fn gather_fails_when_no_page_is_left() {
        let mut left = 3;
        let mut got = 0;
        let ok = gather(
            5,
            |n| {
                (n == 1 && left > 0).then(|| {
                    left -= 1;
                    0x1000
                })
            },
            |_, n| got += n,
        );
        assert!(!ok);
        assert_eq!(got, 3);
    }
}
