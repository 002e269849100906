//! The kernel's half of the address space (TTBR1): the image the boot stub
//! mapped, the linear map of RAM, device registers and kernel stacks.

use super::frames;
use super::layout::*;
use super::regions::Range;
use crate::sync::ColdMutex as Mutex;
use hal::mmu::{Attributes, Granularity, MapError, Mapper, TableMemory};

/// Tables used before the frame allocator exists (device-tree and console
/// mappings, the linear map). They stay part of the kernel tables forever.
const EARLY_TABLES: usize = 16;

#[repr(C, align(4096))]
struct EarlyTables([[u64; 512]; EARLY_TABLES]);

static mut EARLY_TABLE_POOL: EarlyTables = EarlyTables([[0; 512]; EARLY_TABLES]);

struct KernelTables {
    image_va: u64,
    image_pa: u64,
    /// Bytes of the image reached at its own addresses: up to the end of
    /// .bss, which holds the boot stub's tables and the early pool. The
    /// frames above it (the boot stack's padding and guard, unmapped there)
    /// are free memory: tables made from them go through the linear map.
    image_size: u64,
    early_used: usize,
    linear_ready: bool,
    /// Translation tables taken from the frame allocator (never returned).
    frame_tables: u64,
}

impl KernelTables {
    #[inline(always)]
    fn pa_to_va(&self, pa: u64) -> u64 {
        if pa >= self.image_pa && pa < self.image_pa + self.image_size {
            pa - self.image_pa + self.image_va
        } else {
            phys_to_virt(pa)
        }
    }
}

impl TableMemory for KernelTables {
    fn allocate_table(&mut self) -> Option<u64> {
        if self.linear_ready {
            let pa = frames::alloc_zeroed(1)?;
            self.frame_tables += 1;
            return Some(pa);
        }
        if self.early_used == EARLY_TABLES {
            return None;
        }
        let va = core::ptr::addr_of!(EARLY_TABLE_POOL) as u64 + self.early_used as u64 * PAGE_SIZE;
        self.early_used += 1;
        // Pool pages are zero (in .bss) and inside the image.
        Some(va - self.image_va + self.image_pa)
    }

    #[inline(always)]
    fn table(&mut self, pa: u64) -> &mut [u64; 512] {
        let va = self.pa_to_va(pa);
        // SAFETY: `pa` is a translation table of the kernel tree (boot stub
        // tables and early pool inside the image, later frames reached
        // through the linear map). The tree is only edited under the
        // KERNEL_SPACE lock, so this is the only reference.
        unsafe { &mut *(va as *mut [u64; 512]) }
    }
}

struct KernelSpace {
    tables: KernelTables,
    /// Physical address of the root table; 0 until [`init`].
    root: u64,
    early_next: u64,
    device_next: u64,
    devices: heapless::Vec<(u64, u64, u64), 32>, // (pa, size, va)
}

/// All zero until [`init`] (an `Option` would put it in `.data`).
static KERNEL_SPACE: Mutex<KernelSpace> = Mutex::new(KernelSpace {
    tables: KernelTables {
        image_va: 0,
        image_pa: 0,
        image_size: 0,
        early_used: 0,
        linear_ready: false,
        frame_tables: 0,
    },
    root: 0,
    early_next: 0,
    device_next: 0,
    devices: heapless::Vec::new(),
});

fn with<R>(f: impl FnOnce(&mut KernelSpace) -> R) -> R {
    let mut space = KERNEL_SPACE.lock();
    assert!(space.root != 0, "kernel address space initialised at boot");
    f(&mut space)
}

/// Take over the tables the boot stub built.
pub fn init(image_pa: u64) {
    let layout = boot::image_layout();
    let tables = KernelTables {
        image_va: layout.start,
        image_pa,
        image_size: layout.bss_end - layout.start,
        early_used: 0,
        linear_ready: false,
        frame_tables: 0,
    };
    let root = layout.kernel_root_table - layout.start + image_pa;
    *KERNEL_SPACE.lock() = KernelSpace {
        tables,
        root,
        early_next: EARLY_BASE,
        device_next: DEVICE_BASE,
        devices: heapless::Vec::new(),
    };
}

fn map(
    space: &mut KernelSpace,
    va: u64,
    pa: u64,
    size: u64,
    attrs: Attributes,
    g: Granularity,
) -> Result<(), MapError> {
    let result = Mapper::new(space.root, &mut space.tables).map(va, pa, size, attrs, g);
    hal::cpu::table_write_barrier();
    result
}

/// Map `[pa, pa + size)` read-only in the early window (before the linear map
/// exists); returns the virtual address of `pa`.
pub fn map_early(pa: u64, size: u64) -> Result<u64, MapError> {
    with(|s| {
        let (start, end) = (align_down(pa, PAGE_SIZE), align_up(pa + size, PAGE_SIZE));
        if s.early_next + (end - start) > EARLY_BASE + EARLY_SIZE {
            return Err(MapError::OutOfTables);
        }
        let va = s.early_next;
        map(s, va, start, end - start, Attributes::KERNEL_RODATA, Granularity::Pages)?;
        s.early_next += end - start;
        Ok(va + (pa - start))
    })
}

/// Map every RAM range into the linear map; afterwards translation tables
/// come from the frame allocator.
///
/// The kernel image is in RAM too. Its `.text` and `.rodata` (with the boot
/// archive) are read-only here, so that they have no writable alias (issue
/// 11, finding 4); the rest of the image (`.data`, `.bss`, the boot stack)
/// is read-write as it is at its own address. Nothing in the linear map is
/// executable.
pub fn map_linear(memory: &[Range]) -> Result<(), MapError> {
    let layout = boot::image_layout();
    with(|s| {
        // The physical range that must not be writable: the image up to the
        // end of its read-only data (page aligned by the linker script).
        let ro_start = s.tables.image_pa;
        let ro_end = ro_start + (layout.rodata_end - layout.start);
        for r in memory {
            let (start, end) = (
                align_down(r.start, PAGE_SIZE),
                align_up(r.end, PAGE_SIZE).min(LINEAR_LIMIT),
            );
            // Below the read-only part of the image, that part, above it.
            let pieces = [
                (start, end.min(ro_start), Attributes::KERNEL_DATA),
                (start.max(ro_start), end.min(ro_end), Attributes::KERNEL_RODATA),
                (start.max(ro_end), end, Attributes::KERNEL_DATA),
            ];
            for (a, b, attributes) in pieces {
                if a < b {
                    map(s, phys_to_virt(a), a, b - a, attributes, Granularity::Blocks)?;
                }
            }
        }
        Ok(())
    })
}

/// Translation tables may now come from the frame allocator.
pub fn use_frame_allocator() {
    with(|s| s.tables.linear_ready = true);
}

/// Map a device's registers (Device-nGnRE, never executable); the same
/// region mapped twice gets the same address.
pub fn map_device(pa: u64, size: u64) -> Result<u64, MapError> {
    with(|s| {
        let (start, end) = (align_down(pa, PAGE_SIZE), align_up(pa + size.max(1), PAGE_SIZE));
        if let Some((p, _, va)) = s.devices.iter().find(|(p, sz, _)| *p <= start && end <= *p + *sz) {
            return Ok(va + (pa - p));
        }
        let va = s.device_next;
        if va + (end - start) > DEVICE_BASE + DEVICE_SIZE {
            return Err(MapError::OutOfTables);
        }
        map(s, va, start, end - start, Attributes::KERNEL_DEVICE, Granularity::Pages)?;
        // Leave an unmapped page between devices: overruns fault.
        s.device_next = va + (end - start) + PAGE_SIZE;
        let _ = s.devices.push((start, end - start, va));
        Ok(va + (pa - start))
    })
}

/// Map a kernel stack (STACK_SIZE) at `pa` into stack slot `slot`, with the lower
/// half of the slot left unmapped as a guard; returns the stack top.
pub fn map_stack(slot: usize, pa: u64) -> Result<u64, MapError> {
    with(|s| {
        let bottom = stack_top(slot) - STACK_SIZE;
        map(s, bottom, pa, STACK_SIZE, Attributes::KERNEL_DATA, Granularity::Pages)?;
        Ok(bottom + STACK_SIZE)
    })
}

/// The top of the stack in stack slot `slot` (see [`map_stack`]).
pub const fn stack_top(slot: usize) -> u64 {
    STACK_BASE + (slot as u64 + 1) * STACK_SLOT
}

/// Translate a kernel virtual address (for tests and diagnostics).
pub fn translate(va: u64) -> Option<(u64, Attributes)> {
    with(|s| Mapper::new(s.root, &mut s.tables).translate(va))
}

/// Bytes of frames holding kernel translation tables.
pub fn table_bytes() -> u64 {
    with(|s| s.tables.frame_tables * PAGE_SIZE)
}

/// Early translation tables used, of the pool's size.
pub fn early_tables_used() -> (usize, usize) {
    with(|s| (s.tables.early_used, EARLY_TABLES))
}

/// Whether a kernel virtual address is mapped (used to walk frame pointers
/// safely in the fault report). Does not take the lock if it is contended.
pub fn is_mapped(va: u64) -> bool {
    match KERNEL_SPACE.try_lock() {
        Some(mut s) if s.root != 0 => {
            let s = &mut *s;
            Mapper::new(s.root, &mut s.tables).translate(va).is_some()
        }
        _ => false,
    }
}

/// An all-invalid translation table for TTBR0 when no task runs (a zeroed
/// frame, taken once the frame allocator exists).
static EMPTY_TABLE: spin::Once<u64> = spin::Once::new();

/// Physical address of the empty lower-half table.
pub fn empty_table_pa() -> u64 {
    *EMPTY_TABLE.call_once(|| frames::alloc_zeroed(1).expect("one free page at boot"))
}
