//! Which physical addresses user space may be given as device memory: all
//! but RAM (the kernel manages it, frames are handed out as memory objects)
//! and the kernel's own devices (the interrupt controller).
//!
//! Device regions from the device tree are made at boot; this is for
//! memory the tree does not describe, such as the framebuffer a GPU's
//! firmware allocates in its own carve-out (the Raspberry Pi's VideoCore).

use super::regions::Range;

/// Most ranges recorded (RAM ranges plus interrupt-controller regions).
pub const MAX_KERNEL_RANGES: usize = 48;

static KERNEL_RANGES: spin::Once<heapless::Vec<Range, MAX_KERNEL_RANGES>> = spin::Once::new();

/// Records, once at boot, the physical ranges the kernel owns.
pub fn init(ranges: impl Iterator<Item = Range>) {
    KERNEL_RANGES.call_once(|| {
        let mut v = heapless::Vec::new();
        for r in ranges {
            if v.push(r).is_err() {
                // Too many to record: refuse device memory everywhere
                // rather than risk handing out the kernel's.
                v.clear();
                let _ = v.push(Range {
                    start: 0,
                    end: u64::MAX,
                });
                break;
            }
        }
        v
    });
}

/// Whether `range` may become a device region: not empty, and clear of
/// every kernel range (nothing recorded yet: nothing may).
pub fn is_device_memory(range: Range) -> bool {
    match KERNEL_RANGES.get() {
        Some(kernel) => may_give(kernel, range),
        None => false,
    }
}

fn may_give(kernel: &[Range], range: Range) -> bool {
    range.start < range.end && !kernel.iter().any(|k| k.overlaps(&range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_memory_avoids_ram_and_the_gic() {
        let kernel = [
            Range::new(0, 0x3c00_0000),             // RAM
            Range::new(0xff84_1000, 0x1000),        // GICD
            Range::new(0x4_0000_0000, 0x1000_0000), // more RAM
        ];
        assert!(may_give(&kernel, Range::new(0x3c10_0000, 0x38_4000))); // the VideoCore's framebuffer
        assert!(!may_give(&kernel, Range::new(0x3bff_f000, 0x2000))); // straddles RAM's end
        assert!(!may_give(&kernel, Range::new(0xff84_1000, 0x1000)));
        assert!(!may_give(&kernel, Range::new(0x4_0fff_f000, 0x1000)));
        assert!(!may_give(&kernel, Range::new(0x5000_0000, 0)));
        assert!(may_give(&kernel, Range::new(0xff84_2000, 0x1000)));
    }
}
