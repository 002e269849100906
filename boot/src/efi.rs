//! UEFI boot: the image is also an EFI application (`BOOTAA64.EFI`).
//!
//! The PE/COFF header in `efi.S` makes firmware such as AAVMF load the whole
//! image (file, then zeroed `.bss` and boot stack) at a 4 KiB-aligned address
//! and call [`kestrel_efi_main`] with the EFI ABI: MMU on, identity-mapped,
//! at EL2 or EL1. It
//!
//! 1. takes the device tree from the configuration table (and says clearly
//!    why it stops when the firmware offers only ACPI),
//! 2. records the usable RAM from `GetMemoryMap` in [`EFI_MEMORY_MAP`] (in
//!    `.data`: the entry stub zeroes `.bss`, so it must not live there),
//! 3. exits boot services, and
//! 4. hands over to `efi_enter_kernel` (`efi.S`): clean the image and the
//!    tree to the point of coherency, MMU and caches off, then the normal
//!    entry `primary_entry` with x0 = DTB, as if a Linux boot loader had
//!    started the image.
//!
//! The image is linked at its upper-half virtual address but runs here at
//! whatever physical address the firmware chose. Code reaches its own code
//! and data PC-relatively (`adrp`), so plain code works; what does not is any
//! *absolute* address stored in the image: vtables (`dyn Trait`,
//! `core::fmt`), function pointers or references kept in statics. The code
//! below therefore formats numbers by hand and never panics (a panic would
//! run the kernel's handler, which uses `core::fmt`).

use core::cell::UnsafeCell;

/// How many separate RAM ranges [`EFI_MEMORY_MAP`] holds (after merging).
pub const EFI_MAP_CAPACITY: usize = 64;
/// [`EfiMemoryMap::magic`] once the UEFI entry has filled the map.
pub const EFI_MAP_MAGIC: u64 = u64::from_le_bytes(*b"KSTEFIMM");

/// One range of usable RAM: `[base, base + size)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RamRange {
    pub base: u64,
    pub size: u64,
}

impl RamRange {
    pub const fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }
}

/// Usable RAM as the UEFI memory map described it: sorted by address,
/// disjoint and not adjacent (touching ranges are merged).
#[repr(C)]
#[derive(Debug)]
pub struct EfiMemoryMap {
    /// [`EFI_MAP_MAGIC`] when filled in; 0 when the image was not started by UEFI.
    pub magic: u64,
    /// Valid entries in `ranges`.
    pub count: u64,
    /// Ranges left out for lack of room (always the smallest ones).
    pub dropped: u64,
    pub ranges: [RamRange; EFI_MAP_CAPACITY],
}

impl EfiMemoryMap {
    pub const fn new() -> EfiMemoryMap {
        EfiMemoryMap {
            magic: 0,
            count: 0,
            dropped: 0,
            ranges: [RamRange { base: 0, size: 0 }; EFI_MAP_CAPACITY],
        }
    }

    pub fn clear(&mut self) {
        self.magic = 0;
        self.count = 0;
        self.dropped = 0;
    }

    fn len(&self) -> usize {
        (self.count as usize).min(EFI_MAP_CAPACITY)
    }

    /// The ranges recorded so far.
    pub fn ranges(&self) -> &[RamRange] {
        &self.ranges[..self.len()]
    }

    /// Adds `[base, base + size)`, merging it with every range it overlaps
    /// or touches and keeping the list sorted. When the list is full, the
    /// smallest range (the new one or an old one) is dropped and counted.
    ///
    /// Written without indexing that could panic (see the module docs).
    pub fn add(&mut self, base: u64, size: u64) {
        if size == 0 {
            return;
        }
        let mut start = base;
        let mut end = base.saturating_add(size);
        // Take out every range that overlaps or touches [start, end),
        // widening [start, end) to cover it. The rest keeps its order.
        let mut kept = 0;
        for i in 0..self.len() {
            let Some(r) = self.ranges.get(i).copied() else {
                break;
            };
            if r.base <= end && start <= r.end() {
                start = start.min(r.base);
                end = end.max(r.end());
            } else if let Some(slot) = self.ranges.get_mut(kept) {
                *slot = r;
                kept += 1;
            }
        }
        self.count = kept as u64;
        let new = RamRange {
            base: start,
            size: end - start,
        };
        if kept == EFI_MAP_CAPACITY {
            // Full: make room by dropping the smallest, unless that is `new`.
            let mut smallest = 0;
            for (i, r) in self.ranges.iter().enumerate() {
                if r.size < self.ranges.get(smallest).map_or(u64::MAX, |s| s.size) {
                    smallest = i;
                }
            }
            self.dropped += 1;
            if self.ranges.get(smallest).is_none_or(|s| s.size >= new.size) {
                return;
            }
            self.remove(smallest);
        }
        // Insert in address order.
        let mut at = self.len();
        for (i, r) in self.ranges().iter().enumerate() {
            if r.base > new.base {
                at = i;
                break;
            }
        }
        for i in (at..self.len()).rev() {
            if let Some(r) = self.ranges.get(i).copied() {
                if let Some(slot) = self.ranges.get_mut(i + 1) {
                    *slot = r;
                }
            }
        }
        if let Some(slot) = self.ranges.get_mut(at) {
            *slot = new;
            self.count += 1;
        }
    }

    fn remove(&mut self, at: usize) {
        let n = self.len();
        for i in at..n.saturating_sub(1) {
            if let Some(next) = self.ranges.get(i + 1).copied() {
                if let Some(slot) = self.ranges.get_mut(i) {
                    *slot = next;
                }
            }
        }
        self.count = n.saturating_sub(1) as u64;
    }
}

impl Default for EfiMemoryMap {
    fn default() -> Self {
        EfiMemoryMap::new()
    }
}

/// The cell behind [`EFI_MEMORY_MAP`].
#[repr(transparent)]
pub struct EfiMapCell(UnsafeCell<EfiMemoryMap>);

// SAFETY: written only by the UEFI entry, on one CPU, before the kernel runs;
// read-only afterwards.
unsafe impl Sync for EfiMapCell {}

/// The usable RAM that UEFI reported, handed from the EFI entry to the
/// kernel inside the image. It lives in `.data` (forced by the section name:
/// its initial value is all zeroes, which would otherwise put it in `.bss`,
/// and the entry stub zeroes `.bss`). A boot that does not come through UEFI
/// finds the magic word 0 here, as loaded from the file.
#[no_mangle]
#[link_section = ".data.efi_memory_map"]
pub static EFI_MEMORY_MAP: EfiMapCell = EfiMapCell(UnsafeCell::new(EfiMemoryMap::new()));

/// The RAM ranges from the UEFI memory map, if this boot came through UEFI.
/// The kernel takes them instead of the device tree's `/memory` nodes: the
/// firmware keeps its runtime services and other reservations out of them.
pub fn efi_memory_map() -> Option<&'static [RamRange]> {
    // SAFETY: the map is written only before the kernel starts (see
    // `EfiMapCell`); from then on it is only read.
    let map = unsafe { &*EFI_MEMORY_MAP.0.get() };
    (map.magic == EFI_MAP_MAGIC).then(|| map.ranges())
}

/// Ranges of the UEFI memory map that were left out for lack of room.
pub fn efi_memory_map_dropped() -> u64 {
    // SAFETY: as in `efi_memory_map`.
    let map = unsafe { &*EFI_MEMORY_MAP.0.get() };
    if map.magic == EFI_MAP_MAGIC {
        map.dropped
    } else {
        0
    }
}

/// Memory types the kernel may use once boot services are gone. Runtime
/// services, ACPI, MMIO, reserved and persistent memory stay out.
pub fn is_usable(ty: uefi_raw::table::boot::MemoryType) -> bool {
    use uefi_raw::table::boot::MemoryType as T;
    matches!(
        ty,
        T::LOADER_CODE | T::LOADER_DATA | T::BOOT_SERVICES_CODE | T::BOOT_SERVICES_DATA | T::CONVENTIONAL
    )
}

/// `EFI_DTB_TABLE_GUID` (the Linux/EBBR device tree configuration table).
pub const DTB_TABLE_GUID: uefi_raw::Guid = uefi_raw::guid!("b1b621d5-f19c-41a5-830b-d9152c69aae0");
/// ACPI 2.0+ RSDP.
pub const ACPI2_TABLE_GUID: uefi_raw::Guid = uefi_raw::guid!("8868e871-e4f1-11d3-bc22-0080c73c8881");
/// ACPI 1.0 RSDP.
pub const ACPI1_TABLE_GUID: uefi_raw::Guid = uefi_raw::guid!("eb9d2d30-2d88-11d3-9a16-0090273fc14d");

#[cfg(target_arch = "aarch64")]
pub use entry::kestrel_efi_main;

#[cfg(target_arch = "aarch64")]
mod entry {
    use super::*;
    use uefi_raw::protocol::console::SimpleTextOutputProtocol;
    use uefi_raw::table::boot::{BootServices, MemoryAttribute, MemoryDescriptor, MemoryType};
    use uefi_raw::table::system::SystemTable;
    use uefi_raw::{Handle, Status};

    extern "C" {
        /// `efi.S`: clean the image and the tree to PoC, MMU and caches off,
        /// continue at `primary_entry` with x0 = `dtb`.
        fn efi_enter_kernel(dtb: u64, dtb_size: u64) -> !;
        static __image_start: u8;
    }

    /// Extra descriptors of room in the memory map buffer: allocating the
    /// buffer itself can split a free range.
    const MAP_SLACK: usize = 8;
    /// `ExitBootServices` attempts (the map key changes when an event fires
    /// between `GetMemoryMap` and `ExitBootServices`).
    const EXIT_TRIES: usize = 8;

    /// ConOut, writing ASCII with hand-made number formatting.
    struct Console(*mut SimpleTextOutputProtocol);

    impl Console {
        fn print(&self, s: &[u8]) {
            let mut buf = [0u16; 81];
            let mut n = 0;
            for &b in s {
                if b == b'\n' {
                    self.put(&mut buf, &mut n, u16::from(b'\r'));
                }
                self.put(&mut buf, &mut n, u16::from(b));
            }
            self.flush(&mut buf, &mut n);
        }

        fn put(&self, buf: &mut [u16; 81], n: &mut usize, c: u16) {
            if *n >= buf.len() - 1 {
                self.flush(buf, n);
            }
            if let Some(slot) = buf.get_mut(*n) {
                *slot = c;
                *n += 1;
            }
        }

        fn flush(&self, buf: &mut [u16; 81], n: &mut usize) {
            if let Some(end) = buf.get_mut(*n) {
                *end = 0;
            }
            if *n > 0 && !self.0.is_null() {
                // SAFETY: ConOut from the system table, called before
                // ExitBootServices; `buf` is NUL-terminated UCS-2.
                let _ = unsafe { ((*self.0).output_string)(self.0, buf.as_ptr()) };
            }
            *n = 0;
        }

        fn hex(&self, v: u64) {
            let mut s = [b'0'; 18];
            s[1] = b'x';
            for (i, c) in s.iter_mut().skip(2).enumerate() {
                let d = ((v >> (60 - 4 * i)) & 0xf) as u8;
                *c = if d < 10 { b'0' + d } else { b'a' + d - 10 };
            }
            self.print(&s);
        }

        fn dec(&self, mut v: u64) {
            let mut s = [0u8; 20];
            let mut i = s.len();
            loop {
                i -= 1;
                if let Some(c) = s.get_mut(i) {
                    *c = b'0' + (v % 10) as u8;
                }
                v /= 10;
                if v == 0 || i == 0 {
                    break;
                }
            }
            self.print(s.get(i..).unwrap_or(&[]));
        }
    }

    /// What the configuration table offers.
    fn find_tables(st: &SystemTable) -> (Option<u64>, bool) {
        let mut dtb = None;
        let mut acpi = false;
        for i in 0..st.number_of_configuration_table_entries {
            // SAFETY: the firmware's table has that many entries.
            let t = unsafe { &*st.configuration_table.add(i) };
            if t.vendor_guid == DTB_TABLE_GUID {
                dtb = Some(t.vendor_table as u64);
            } else if t.vendor_guid == ACPI2_TABLE_GUID || t.vendor_guid == ACPI1_TABLE_GUID {
                acpi = true;
            }
        }
        (dtb, acpi)
    }

    /// Why leaving boot services failed, and whether the console may still
    /// be used (not after a failed `ExitBootServices`).
    struct ExitError {
        status: Status,
        what: &'static [u8],
        console_ok: bool,
    }

    /// Records the usable RAM from the memory map in [`EFI_MEMORY_MAP`].
    fn record(map: &mut EfiMemoryMap, buf: *const u8, size: usize, desc_size: usize) {
        map.clear();
        let mut off = 0;
        while desc_size >= core::mem::size_of::<MemoryDescriptor>() && off + desc_size <= size {
            // SAFETY: `off + desc_size <= size` bytes of `buf` were written by
            // GetMemoryMap; descriptors may be unaligned if desc_size is odd.
            let d = unsafe { core::ptr::read_unaligned(buf.add(off).cast::<MemoryDescriptor>()) };
            if is_usable(d.ty) && d.att.contains(MemoryAttribute::WRITE_BACK) {
                map.add(d.phys_start, d.page_count.saturating_mul(4096));
            }
            off += desc_size;
        }
        map.magic = EFI_MAP_MAGIC;
    }

    /// GetMemoryMap, record, ExitBootServices (again if the map changed).
    ///
    /// # Safety
    /// `bs` is the firmware's boot services table and `image` our handle.
    unsafe fn exit_boot_services(bs: &BootServices, image: Handle) -> Result<(), ExitError> {
        let (mut size, mut key, mut desc_size, mut version) = (0usize, 0usize, 0usize, 0u32);
        // SAFETY: a size query: null buffer, size 0.
        let st =
            unsafe { (bs.get_memory_map)(&mut size, core::ptr::null_mut(), &mut key, &mut desc_size, &mut version) };
        if st != Status::BUFFER_TOO_SMALL && st != Status::SUCCESS {
            return Err(ExitError {
                status: st,
                what: b"GetMemoryMap (size)",
                console_ok: true,
            });
        }
        let capacity = size + MAP_SLACK * desc_size.max(core::mem::size_of::<MemoryDescriptor>());
        let mut buf: *mut u8 = core::ptr::null_mut();
        // SAFETY: plain pool allocation; the pool is given up with boot services.
        let st = unsafe { (bs.allocate_pool)(MemoryType::LOADER_DATA, capacity, &mut buf) };
        if st != Status::SUCCESS || buf.is_null() {
            return Err(ExitError {
                status: st,
                what: b"AllocatePool",
                console_ok: true,
            });
        }
        // SAFETY: written only here, before the kernel starts.
        let map = unsafe { &mut *EFI_MEMORY_MAP.0.get() };
        let mut tried = false;
        for _ in 0..EXIT_TRIES {
            size = capacity;
            // SAFETY: `buf` holds `capacity` bytes.
            let st = unsafe { (bs.get_memory_map)(&mut size, buf.cast(), &mut key, &mut desc_size, &mut version) };
            if st != Status::SUCCESS {
                return Err(ExitError {
                    status: st,
                    what: b"GetMemoryMap",
                    console_ok: !tried,
                });
            }
            record(map, buf, size, desc_size);
            // SAFETY: our image handle and the key of the map just read.
            let st = unsafe { (bs.exit_boot_services)(image, key) };
            if st == Status::SUCCESS {
                return Ok(());
            }
            if st != Status::INVALID_PARAMETER {
                map.clear();
                return Err(ExitError {
                    status: st,
                    what: b"ExitBootServices",
                    console_ok: !tried,
                });
            }
            tried = true;
        }
        map.clear();
        Err(ExitError {
            status: Status::ABORTED,
            what: b"ExitBootServices (the memory map kept changing)",
            console_ok: false,
        })
    }

    /// The EFI application entry point (`AddressOfEntryPoint` in `efi.S`).
    ///
    /// # Safety
    /// Called only by UEFI firmware, with our image handle and its system table.
    #[no_mangle]
    pub unsafe extern "efiapi" fn kestrel_efi_main(image: Handle, system_table: *mut SystemTable) -> Status {
        if system_table.is_null() {
            return Status::INVALID_PARAMETER;
        }
        // SAFETY: the firmware passes a valid system table.
        let st = unsafe { &*system_table };
        let con = Console(st.stdout);
        con.print(b"Kestrel: started by UEFI\n");
        // Where the firmware put us (PC-relative, so the physical address).
        let base = core::ptr::addr_of!(__image_start) as u64;
        if !base.is_multiple_of(4096) {
            con.print(b"Kestrel: loaded at ");
            con.hex(base);
            con.print(b", which is not 4 KiB aligned; the entry stub needs that\n");
            return Status::LOAD_ERROR;
        }
        let (dtb, acpi) = find_tables(st);
        let Some(dtb) = dtb else {
            if acpi {
                con.print(
                    b"Kestrel needs a device tree; this firmware offers only ACPI. On QEMU use -M virt,acpi=off\n",
                );
            } else {
                con.print(b"Kestrel needs a device tree, and this firmware's configuration table has none.\n");
            }
            return Status::UNSUPPORTED;
        };
        // SAFETY: the configuration table entry points at a flattened tree;
        // its 8-byte header (magic, totalsize) is read first.
        let (magic, total) = unsafe {
            let p = dtb as *const u32;
            (
                u32::from_be(p.read_unaligned()),
                u32::from_be(p.add(1).read_unaligned()),
            )
        };
        if magic != 0xd00d_feed {
            con.print(b"Kestrel: the firmware's device tree at ");
            con.hex(dtb);
            con.print(b" has a bad magic number\n");
            return Status::LOAD_ERROR;
        }
        con.print(b"Kestrel: device tree at ");
        con.hex(dtb);
        con.print(b" (");
        con.dec(u64::from(total));
        con.print(b" bytes); exiting boot services\n");
        if st.boot_services.is_null() {
            return Status::UNSUPPORTED;
        }
        // SAFETY: the boot services table of a live firmware, our handle.
        match unsafe { exit_boot_services(&*st.boot_services, image) } {
            // SAFETY: boot services are gone; the image and the tree stay
            // where they are, and nothing of the firmware is used again.
            Ok(()) => unsafe { efi_enter_kernel(dtb, u64::from(total)) },
            Err(e) => {
                if e.console_ok {
                    con.print(b"Kestrel: ");
                    con.print(e.what);
                    con.print(b" failed with status ");
                    con.hex(e.status.0 as u64);
                    con.print(b"\n");
                }
                e.status
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(m: &EfiMemoryMap) -> Vec<(u64, u64)> {
        m.ranges().iter().map(|r| (r.base, r.end())).collect()
    }

    #[test]
    fn sorted_and_merged() {
        let mut m = EfiMemoryMap::new();
        m.add(0x5000, 0x1000);
        m.add(0x1000, 0x1000);
        m.add(0x9000, 0x1000);
        assert_eq!(ranges(&m), [(0x1000, 0x2000), (0x5000, 0x6000), (0x9000, 0xa000)]);
        m.add(0x2000, 0x3000); // touches both neighbours
        assert_eq!(ranges(&m), [(0x1000, 0x6000), (0x9000, 0xa000)]);
        m.add(0x0, 0x20000); // swallows everything
        assert_eq!(ranges(&m), [(0, 0x20000)]);
        m.add(0x40000, 0);
        assert_eq!(ranges(&m), [(0, 0x20000)]);
        m.add(0x10000, 0x8000); // inside
        assert_eq!(ranges(&m), [(0, 0x20000)]);
        assert_eq!(m.dropped, 0);
    }

    #[test]
    fn overlapping_and_unsorted_like_a_firmware_map() {
        // The shape of AAVMF's map: many small boot-services pieces between
        // runtime-services holes, in no particular order.
        let mut m = EfiMemoryMap::new();
        let pieces = [
            (0x4000_0000u64, 0x10_0000u64),
            (0x4010_0000, 0x3f00_0000),
            (0xbf00_0000, 0x1000),
            (0x7f10_0000, 0x3ff0_0000),
            (0xbf10_0000, 0xf0_0000),
        ];
        for (b, s) in pieces.iter().rev() {
            m.add(*b, *s);
        }
        assert_eq!(ranges(&m), [(0x4000_0000, 0xbf00_1000), (0xbf10_0000, 0xc000_0000)]);
    }

    #[test]
    fn full_map_drops_the_smallest() {
        let mut m = EfiMemoryMap::new();
        for i in 0..EFI_MAP_CAPACITY as u64 {
            m.add(i * 0x10000, 0x1000 + i * 0x10); // growing sizes, never touching
        }
        assert_eq!(m.ranges().len(), EFI_MAP_CAPACITY);
        // smaller than all: dropped
        m.add(0x1000_0000, 0x100);
        assert_eq!(m.dropped, 1);
        assert!(m.ranges().iter().all(|r| r.base != 0x1000_0000));
        // larger: replaces the smallest (the first one)
        m.add(0x2000_0000, 0x10_0000);
        assert_eq!(m.dropped, 2);
        assert_eq!(m.ranges().len(), EFI_MAP_CAPACITY);
        assert_eq!(m.ranges()[0].base, 0x10000);
        assert_eq!(m.ranges().last().unwrap().base, 0x2000_0000);
        let r = m.ranges();
        assert!(r.windows(2).all(|w| w[0].end() < w[1].base));
        // merging into an existing range needs no room
        m.add(0x10000 + 0x1010, 0x10);
        assert_eq!(m.dropped, 2);
    }

    #[test]
    fn usable_types() {
        use uefi_raw::table::boot::MemoryType as T;
        for t in [
            T::CONVENTIONAL,
            T::LOADER_CODE,
            T::LOADER_DATA,
            T::BOOT_SERVICES_CODE,
            T::BOOT_SERVICES_DATA,
        ] {
            assert!(is_usable(t));
        }
        for t in [
            T::RUNTIME_SERVICES_CODE,
            T::RUNTIME_SERVICES_DATA,
            T::ACPI_RECLAIM,
            T::ACPI_NON_VOLATILE,
            T::MMIO,
            T::RESERVED,
            T::UNUSABLE,
            T::PERSISTENT_MEMORY,
        ] {
            assert!(!is_usable(t));
        }
    }

    #[test]
    fn not_from_uefi_by_default() {
        // The image as loaded from the file: magic 0.
        assert!(efi_memory_map().is_none());
        assert_eq!(efi_memory_map_dropped(), 0);
    }
}
