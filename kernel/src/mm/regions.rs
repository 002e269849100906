//! Sets of physical address ranges: RAM minus everything that is not free.

use super::layout::{align_down, align_up, PAGE_SIZE};

/// A half-open range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

impl Range {
    pub fn new(start: u64, size: u64) -> Range {
        Range {
            start,
            end: start.saturating_add(size),
        }
    }

    pub fn size(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the two ranges share a byte.
    pub fn overlaps(&self, other: &Range) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// Sorted, disjoint, non-empty ranges, at most `N`.
#[derive(Clone, Debug, Default)]
pub struct RangeSet<const N: usize> {
    ranges: heapless::Vec<Range, N>,
}

/// More ranges than the set can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooManyRanges;

impl<const N: usize> RangeSet<N> {
    pub const fn new() -> Self {
        RangeSet {
            ranges: heapless::Vec::new(),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Range> + Clone {
        self.ranges.iter()
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn total(&self) -> u64 {
        self.ranges.iter().map(Range::size).sum()
    }

    /// Add a range, merging with neighbours it touches or overlaps.
    pub fn add(&mut self, range: Range) -> Result<(), TooManyRanges> {
        if range.start >= range.end {
            return Ok(());
        }
        let mut merged = range;
        let mut out: heapless::Vec<Range, N> = heapless::Vec::new();
        let mut placed = false;
        for r in &self.ranges {
            if r.end < merged.start {
                out.push(*r).map_err(|_| TooManyRanges)?;
            } else if r.start > merged.end {
                if !placed {
                    out.push(merged).map_err(|_| TooManyRanges)?;
                    placed = true;
                }
                out.push(*r).map_err(|_| TooManyRanges)?;
            } else {
                merged = Range {
                    start: merged.start.min(r.start),
                    end: merged.end.max(r.end),
                };
            }
        }
        if !placed {
            out.push(merged).map_err(|_| TooManyRanges)?;
        }
        self.ranges = out;
        Ok(())
    }

    /// Remove a range, splitting ranges it falls inside.
    pub fn remove(&mut self, hole: Range) -> Result<(), TooManyRanges> {
        if hole.start >= hole.end {
            return Ok(());
        }
        let mut out: heapless::Vec<Range, N> = heapless::Vec::new();
        for r in &self.ranges {
            if r.end <= hole.start || r.start >= hole.end {
                out.push(*r).map_err(|_| TooManyRanges)?;
                continue;
            }
            if r.start < hole.start {
                out.push(Range {
                    start: r.start,
                    end: hole.start,
                })
                .map_err(|_| TooManyRanges)?;
            }
            if r.end > hole.end {
                out.push(Range {
                    start: hole.end,
                    end: r.end,
                })
                .map_err(|_| TooManyRanges)?;
            }
        }
        self.ranges = out;
        Ok(())
    }

    /// Shrink every range to whole pages, dropping those that vanish.
    pub fn shrink_to_pages(&mut self) {
        let mut out: heapless::Vec<Range, N> = heapless::Vec::new();
        for r in &self.ranges {
            let (start, end) = (align_up(r.start, PAGE_SIZE), align_down(r.end, PAGE_SIZE));
            if start < end {
                // Cannot overflow: never more ranges than before.
                let _ = out.push(Range { start, end });
            }
        }
        self.ranges = out;
    }

    /// Take `size` bytes (page multiple) from the lowest range that has them.
    pub fn take(&mut self, size: u64) -> Option<Range> {
        let i = self.ranges.iter().position(|r| r.size() >= size)?;
        let r = &mut self.ranges[i];
        let taken = Range {
            start: r.start,
            end: r.start + size,
        };
        r.start += size;
        if r.start == r.end {
            self.ranges.remove(i);
        }
        Some(taken)
    }
}

/// Free RAM: `memory` minus `holes`, in whole pages.
pub fn free_memory<const N: usize>(
    memory: impl IntoIterator<Item = Range>,
    holes: impl IntoIterator<Item = Range>,
) -> Result<RangeSet<N>, TooManyRanges> {
    let mut set = RangeSet::new();
    for m in memory {
        set.add(m)?;
    }
    for h in holes {
        // Holes are widened to whole pages so no partial page is handed out.
        set.remove(Range {
            start: align_down(h.start, PAGE_SIZE),
            end: align_up(h.end, PAGE_SIZE),
        })?;
    }
    set.shrink_to_pages();
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> Range {
        Range { start, end }
    }

    #[test]
    fn add_merges_overlapping_and_touching() {
        let mut s = RangeSet::<8>::new();
        s.add(r(0x3000, 0x4000)).unwrap();
        s.add(r(0x1000, 0x2000)).unwrap();
        s.add(r(0x2000, 0x3000)).unwrap();
        s.add(r(0x8000, 0x9000)).unwrap();
        s.add(r(0x1800, 0x1900)).unwrap();
        assert_eq!(
            s.iter().copied().collect::<Vec<_>>(),
            vec![r(0x1000, 0x4000), r(0x8000, 0x9000)]
        );
        assert_eq!(s.total(), 0x4000);
    }

    #[test]
    fn remove_splits_and_trims() {
        let mut s = RangeSet::<8>::new();
        s.add(r(0x0, 0x10000)).unwrap();
        s.remove(r(0x2000, 0x3000)).unwrap();
        s.remove(r(0x0, 0x1000)).unwrap();
        s.remove(r(0xf000, 0x20000)).unwrap();
        assert_eq!(
            s.iter().copied().collect::<Vec<_>>(),
            vec![r(0x1000, 0x2000), r(0x3000, 0xf000)]
        );
    }

    #[test]
    fn free_memory_of_a_virt_machine() {
        // 128 MiB at 1 GiB; DTB at the start, kernel at +512 KiB, a reserved
        // region with unaligned ends.
        let ram = [Range::new(0x4000_0000, 128 << 20)];
        let holes = [
            Range::new(0x4000_0000, 0x1_0000 - 7), // DTB (its partial last page is excluded too)
            Range::new(0x4008_0000, 0x4_0000),     // kernel
            Range::new(0x4400_0123, 0x1000),       // reserved, straddles two pages
        ];
        let free: RangeSet<16> = free_memory(ram, holes).unwrap();
        let v: Vec<_> = free.iter().copied().collect();
        assert_eq!(
            v,
            vec![
                r(0x4001_0000, 0x4008_0000),
                r(0x400c_0000, 0x4400_0000),
                r(0x4400_2000, 0x4800_0000)
            ]
        );
    }

    #[test]
    fn unaligned_memory_is_shrunk_to_pages() {
        let free: RangeSet<4> = free_memory([r(0x1001, 0x5fff)], []).unwrap();
        assert_eq!(free.iter().copied().collect::<Vec<_>>(), vec![r(0x2000, 0x5000)]);
    }

    #[test]
    fn take_splits_lowest_fitting_range() {
        let mut s = RangeSet::<4>::new();
        s.add(r(0x1000, 0x2000)).unwrap();
        s.add(r(0x10000, 0x20000)).unwrap();
        assert_eq!(s.take(0x2000), Some(r(0x10000, 0x12000)));
        assert_eq!(s.take(0x1000), Some(r(0x1000, 0x2000)));
        assert_eq!(s.len(), 1);
        assert_eq!(s.take(0x100000), None);
    }

    #[test]
    fn too_many_ranges_is_an_error_not_a_panic() {
        let mut s = RangeSet::<2>::new();
        s.add(r(0, 0x10000)).unwrap();
        s.remove(r(0x1000, 0x2000)).unwrap();
        assert_eq!(s.remove(r(0x3000, 0x4000)), Err(TooManyRanges));
    }
}
