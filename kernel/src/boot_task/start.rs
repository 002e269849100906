//! Building init's task (kernel side).

use crate::cap;
use crate::mm::layout;
use crate::object::{self, Id, Kernel, Memory, MemoryKind, ObjectRef, Pool};
use crate::thread::{Thread, THREAD_COST};
use crate::{sched, syscall, task};
use abi::boot_info::{self as bi, BootInfo};
use abi::{Error, Rights};
use core::sync::atomic::{AtomicU64, Ordering};
use elf::endian::LittleEndian;
use elf::file::{Class, FileHeader};
use elf::parse::ParseAt;
use elf::segment::{ProgramHeader, SegmentTable};
use newc::Archive;

#[repr(C, align(4096))]
struct PageAligned<T: ?Sized>(T);

/// The boot archive built into the image.
#[link_section = ".archive"]
static ARCHIVE: PageAligned<[u8; include_bytes!(concat!(env!("OUT_DIR"), "/archive.cpio")).len()]> =
    PageAligned(*include_bytes!(concat!(env!("OUT_DIR"), "/archive.cpio")));

/// Memory the kernel keeps back from init's pool for its own needs
/// (translation tables of the kernel, heap fragmentation).
fn kernel_reserve(free: u64) -> u64 {
    (free / 16).clamp(128 << 10, 4 << 20)
}

/// Init's exit code; `u64::MAX` until it exits (it was killed if it never does).
static EXIT_CODE: AtomicU64 = AtomicU64::new(u64::MAX);

/// Init is leaving with `code`.
pub fn set_exit_code(code: u64) {
    EXIT_CODE.store(code, Ordering::Relaxed);
}

/// Init's task ended: the system is done.
pub fn init_ended(_k: &mut Kernel) {
    let code = match EXIT_CODE.load(Ordering::Relaxed) {
        u64::MAX => {
            crate::error!("kernel: init was killed; shutting down");
            1
        }
        code => {
            crate::info!("kernel: init exited with code {code}; shutting down");
            code
        }
    };
    #[cfg(feature = "ktest")]
    crate::power::test_exit(code as u32, false);
    #[cfg(not(feature = "ktest"))]
    {
        let _ = code; // the exit code only travels out of the test image
        crate::power::power_off();
    }
}

/// A boot-time error starting init, with what went wrong.
type StartResult<T> = Result<T, &'static str>;

fn err(e: Error) -> &'static str {
    e.as_str()
}

/// Create init from the archive and make it ready to run, or say why it
/// could not be started. `dtb`: the bytes of the device tree it needs, at
/// physical address `dtb_pa`.
#[inline(never)]
pub fn start_init(machine: &hal::dt::Machine, dtb: &[u8], dtb_pa: u64, image_pa: u64) -> StartResult<()> {
    let (archive, archive_pa) = choose_archive(machine, image_pa);
    let init = match Archive::new(archive).find("init") {
        Ok(Some(entry)) => entry,
        Ok(None) => return Err("the boot archive has no init"),
        Err(_) => return Err("the boot archive is corrupt"),
    };
    if !object::init() {
        return Err("no memory for the kernel object tables");
    }
    let mut k = object::lock();
    if asid_bits() == 16 {
        k.asids.set_limit(1 << 16);
    }
    let free = crate::mm::available_bytes();
    let root_size = free.saturating_sub(kernel_reserve(free));
    k.task_cost = task::TASK_COST + abi::PAGE_SIZE as u64 + root_size.div_ceil(k.asids.count());
    let root = k
        .store(None, Pool::new(root_size, None))
        .map_err(|_| "no memory for the root pool")?;
    k.add_ref(ObjectRef::Pool(root));
    let t = task::create(&mut k, root, "init").map_err(err)?;
    k.init_task = Some(t);
    // Keep the task while it has no capability naming it.
    k.add_ref(ObjectRef::Task(t));
    // The archive, read-only, where it already is (image or initrd).
    let archive_pages = archive.len().div_ceil(abi::PAGE_SIZE);
    let archive_mem = k
        .store(None, Memory::boot(archive_pa, archive_pages))
        .map_err(|_| "no memory for the archive object")?;
    let archive_cap = map_new(&mut k, t, archive_mem, archive_pages, bi::ARCHIVE_ADDRESS, Rights::READ)?;
    let shared = Shared {
        memory: archive_mem,
        cap: cap::lookup(&k, t, abi::Handle(archive_cap)).map_err(err)?,
        file_offset: init.data.as_ptr() as usize - archive.as_ptr() as usize,
    };
    let entry = load_elf(&mut k, root, t, init.data, &shared)?;

    let boot_info_mem = syscall::create_memory(&mut k, root, bi::BOOT_INFO_PAGES as u64).map_err(err)?;
    let boot_cap = map_new(
        &mut k,
        t,
        boot_info_mem,
        bi::BOOT_INFO_PAGES,
        bi::BOOT_INFO_ADDRESS,
        Rights::READ,
    )?;
    let stack_pages = (bi::INIT_STACK_SIZE / abi::PAGE_SIZE as u64) as usize;
    let stack = syscall::create_memory(&mut k, root, stack_pages as u64).map_err(err)?;
    map_new(
        &mut k,
        t,
        stack,
        stack_pages,
        bi::INIT_STACK_TOP - bi::INIT_STACK_SIZE,
        Rights::READ | Rights::WRITE,
    )?;
    let ipc = syscall::create_memory(&mut k, root, 1).map_err(err)?;
    map_new(&mut k, t, ipc, 1, bi::INIT_IPC_BUFFER, Rights::READ | Rights::WRITE)?;

    // The thread.
    k.charge(root, THREAD_COST).map_err(err)?;
    let task = k.tasks.get_mut(t).ok_or("no init task")?;
    let (ttbr0, cspace) = (task.ttbr0(), task.cspace_ptr());
    let mut thread = Thread::new(
        t,
        cspace,
        ttbr0,
        root,
        entry,
        bi::INIT_STACK_TOP,
        bi::BOOT_INFO_ADDRESS,
        abi::MAX_PRIORITY,
        0,
    );
    thread.ipc_buffer = Some(bi::INIT_IPC_BUFFER);
    let boxed = crate::mm::heap::try_box(thread).ok_or("no memory for init's thread")?;
    let th = crate::thread::insert(&mut k, boxed).map_err(|_| "no memory for init's thread")?;
    k.add_ref(ObjectRef::Pool(root));
    k.tasks.get_mut(t).expect("init task").threads.push(th);
    k.add_ref(ObjectRef::Thread(th));
    k.add_ref(ObjectRef::Task(t));

    let task_h = cap::insert(&mut k, t, ObjectRef::Task(t), Rights::FULL, 0, None)
        .map_err(err)?
        .0;
    let thread_h = cap::insert(&mut k, t, ObjectRef::Thread(th), Rights::FULL, 0, None)
        .map_err(err)?
        .0;
    let pool_h = cap::insert(&mut k, t, ObjectRef::Pool(root), Rights::FULL, 0, None)
        .map_err(err)?
        .0;
    // Every right, MANAGE included: SystemControl (power off, reboot)
    // needs it. The copies init hands to programs have WRITE | GRANT only
    // (userlib's loader), and derived copies can never gain it back.
    let console_h = cap::insert(&mut k, t, ObjectRef::Console, Rights::FULL, 0, None)
        .map_err(err)?
        .0;
    // READ (statistics, the cycle counter) and GRANT (to hand on).
    let counters_h = cap::insert(&mut k, t, ObjectRef::Counters, Rights::READ | Rights::GRANT, 0, None)
        .map_err(err)?
        .0;
    // The boot-info page is RAM, zeroed, linear-mapped; it is mapped
    // read-only in init, so only the kernel writes it, now.
    let pa = k.memories.get(boot_info_mem).expect("created").physical;
    // SAFETY: see above; BootInfo is plain data valid when zeroed.
    let info = unsafe { &mut *(layout::phys_to_virt(pa) as *mut BootInfo) };
    info.magic = bi::BOOT_INFO_MAGIC;
    info.task = task_h;
    info.thread = thread_h;
    info.pool = pool_h;
    info.console = console_h;
    info.counters = counters_h;
    info.archive = archive_cap;
    info._reserved = boot_cap;
    info.archive_size = archive.len() as u64;
    info.cpus = crate::percpu::all()
        .iter()
        .filter(|c| c.online.load(Ordering::Relaxed))
        .count() as u32;
    bi::set_nul_padded(&mut info.bootargs, machine.bootargs);
    // The device tree, where the boot loader put it, read-only: init reads
    // the devices from it. Its pages are never free memory (`init_memory`
    // leaves them out, widened to whole pages). Only from RAM (the linear
    // map), as `MemoryRead` copies through it; a tree elsewhere (firmware
    // memory) is copied into new memory from init's pool.
    let (pa, size) = (dtb_pa, dtb.len() as u64);
    let first = layout::align_down(pa, layout::PAGE_SIZE);
    let pages = (layout::align_up(pa + size, layout::PAGE_SIZE) - first) / layout::PAGE_SIZE;
    let in_ram =
        (0..pages).all(|i| crate::mm::kernel_space::is_mapped(layout::phys_to_virt(first + i * layout::PAGE_SIZE)));
    let (dtb_mem, pages) = if in_ram {
        let m = k
            .store(None, Memory::boot(first, pages as usize))
            .map_err(|_| "no memory for the device tree object")?;
        info.dtb_offset = (pa - first) as u32;
        (m, pages)
    } else {
        let pages = size.div_ceil(layout::PAGE_SIZE);
        let m = syscall::create_memory(&mut k, root, pages).map_err(err)?;
        let to = layout::phys_to_virt(k.memories.get(m).expect("created").physical);
        // SAFETY: `pages` new (zeroed) frames hold the tree's `size` bytes.
        unsafe { core::ptr::copy_nonoverlapping(dtb.as_ptr(), to as *mut u8, dtb.len()) };
        (m, pages)
    };
    info.dtb = map_new(&mut k, t, dtb_mem, pages as usize, bi::DTB_ADDRESS, Rights::READ)?;
    info.dtb_size = size;
    info.pool_bytes = k.pools.get(root).map_or(0, |p| p.bytes_left);

    sched::make_ready(&mut k, th);
    crate::info!("kernel: starting init ({} KiB pool)", info.pool_bytes >> 10);
    drop(k);
    crate::time::hand_timer_to_scheduler();
    Ok(())
}

/// The boot archive: an initrd from the bootloader (`/chosen
/// linux,initrd-*`) if it holds a readable archive, else the one built into
/// the image. Returns it and its physical address.
fn choose_archive(machine: &hal::dt::Machine, image_pa: u64) -> (&'static [u8], u64) {
    if let Some(initrd) = machine.initrd {
        let in_ram = machine
            .memory
            .iter()
            .any(|m| initrd.base >= m.base && initrd.base + initrd.size <= m.base + m.size);
        let va = layout::phys_to_virt(initrd.base);
        if in_ram && initrd.base % abi::PAGE_SIZE as u64 == 0 && crate::mm::kernel_space::is_mapped(va) {
            // SAFETY: the initrd lies in RAM (linear-mapped), excluded from the
            // frame allocator at boot, and nothing writes it.
            let data = unsafe { core::slice::from_raw_parts(va as *const u8, initrd.size as usize) };
            if Archive::new(data).next().is_some_and(|e| e.is_ok()) {
                crate::info!(
                    "boot: using the initrd at {:#x} ({} KiB) as the boot archive",
                    initrd.base,
                    initrd.size >> 10
                );
                return (data, initrd.base);
            }
            crate::warn!("boot: the initrd is not a cpio newc archive; using the built-in one");
        } else {
            crate::warn!("boot: the initrd is not page-aligned RAM; using the built-in one");
        }
    }
    let archive: &'static [u8] = &ARCHIVE.0;
    let pa = archive.as_ptr() as u64 - boot::image_layout().start + image_pa;
    (archive, pa)
}

fn asid_bits() -> u32 {
    let mmfr0: u64;
    // SAFETY: reading an ID register has no side effects.
    unsafe { core::arch::asm!("mrs {}, id_aa64mmfr0_el1", out(reg) mmfr0, options(nomem, nostack)) };
    if (mmfr0 >> 4) & 0xf == 2 {
        16
    } else {
        8
    }
}

/// Give init a capability to `memory` and map it through that capability.
fn map_new(k: &mut Kernel, t: Id, memory: Id, pages: usize, va: u64, rights: Rights) -> StartResult<u32> {
    // The archive and the device tree: never writable. The archive also
    // EXECUTE, as programs' code runs from its pages (the loader maps
    // read-only segments from it).
    let cap_rights = match k.memories.get(memory).map(|m| m.kind) {
        Some(MemoryKind::Boot) if va == bi::ARCHIVE_ADDRESS => {
            Rights::READ | Rights::EXECUTE | Rights::MAP | Rights::GRANT
        }
        Some(MemoryKind::Boot) => Rights::READ | Rights::MAP | Rights::GRANT,
        _ => Rights::FULL,
    };
    let h = cap::insert(k, t, ObjectRef::Memory(memory), cap_rights, 0, None).map_err(err)?;
    let id = cap::lookup(k, t, h).map_err(err)?;
    task::map(k, t, id, memory, 0, pages, va, rights).map_err(err)?;
    Ok(h.0)
}

/// Where init's file lies in the boot archive, to map its read-only
/// segments from there.
struct Shared {
    /// The archive's memory object, and init's capability to it.
    memory: Id,
    cap: Id,
    /// Byte offset of init's file in the archive.
    file_offset: usize,
}

/// Load a static ELF into task `t`; returns its entry point. Read-only
/// segments whose file bytes lie page for page in the archive (the build
/// tool aligns each file's data to a page) are mapped from the archive's
/// pages; the others get new memory with the file bytes copied in.
fn load_elf(k: &mut Kernel, pool: Id, t: Id, image: &[u8], shared: &Shared) -> StartResult<u64> {
    let (ehdr, segments) = program_headers(image)?;
    for ph in segments.iter().filter(|p| p.p_type == elf::abi::PT_LOAD) {
        let page = abi::PAGE_SIZE as u64;
        let start = ph.p_vaddr & !(page - 1);
        let end = ph
            .p_vaddr
            .checked_add(ph.p_memsz)
            .ok_or("bad segment size")?
            .next_multiple_of(page);
        if end > abi::USER_LIMIT || ph.p_filesz > ph.p_memsz {
            return Err("init segment outside user space");
        }
        let pages = ((end - start) / page) as usize;
        let rights = segment_rights(ph.p_flags);
        if rights.contains(Rights::WRITE | Rights::EXECUTE) {
            return Err("init has a writable and executable segment");
        }
        // In the archive: the segment's first page starts a page of it,
        // and the file bytes cover the segment (nothing to zero).
        let in_archive = (shared.file_offset as u64 + ph.p_offset)
            .checked_sub(ph.p_vaddr - start)
            .filter(|o| o % page == 0 && ph.p_offset + ph.p_filesz <= image.len() as u64);
        if let Some(offset) = in_archive.filter(|_| !rights.contains(Rights::WRITE) && ph.p_filesz == ph.p_memsz) {
            task::map(
                k,
                t,
                shared.cap,
                shared.memory,
                (offset / page) as usize,
                pages,
                start,
                rights,
            )
            .map_err(err)?;
            continue;
        }
        let memory = syscall::create_memory(k, pool, pages as u64).map_err(err)?;
        let pa = k.memories.get(memory).expect("created").physical;
        let data = image
            .get(ph.p_offset as usize..(ph.p_offset + ph.p_filesz) as usize)
            .ok_or("init segment past the end of the file")?;
        let dst = layout::phys_to_virt(pa + (ph.p_vaddr - start));
        // SAFETY: the frames were just allocated (zeroed) for this segment;
        // `data` fits since filesz <= memsz <= the pages allocated.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), dst as *mut u8, data.len()) };
        map_new(k, t, memory, pages, start, rights)?;
    }
    Ok(ehdr.e_entry)
}

fn segment_rights(flags: u32) -> Rights {
    let mut rights = Rights::empty();
    for (flag, r) in [
        (elf::abi::PF_R, Rights::READ),
        (elf::abi::PF_W, Rights::WRITE),
        (elf::abi::PF_X, Rights::EXECUTE),
    ] {
        if flags & flag != 0 {
            rights |= r;
        }
    }
    rights
}

/// The file header and program headers of a 64-bit little-endian AArch64
/// ELF file. (Only these: the section headers, which a loader does not
/// need, are never parsed.)
fn program_headers(image: &[u8]) -> StartResult<(FileHeader<LittleEndian>, SegmentTable<'_, LittleEndian>)> {
    const INVALID: &str = "init is not a valid ELF file";
    let ident = image.get(..elf::abi::EI_NIDENT).ok_or(INVALID)?;
    let ident = elf::file::parse_ident::<LittleEndian>(ident).map_err(|_| "init is not a little-endian ELF file")?;
    if ident.1 != Class::ELF64 {
        return Err("init is not a 64-bit ELF file");
    }
    let tail = image
        .get(elf::abi::EI_NIDENT..elf::file::ELF64_EHDR_TAILSIZE + elf::abi::EI_NIDENT)
        .ok_or(INVALID)?;
    let ehdr = FileHeader::parse_tail(ident, tail).map_err(|_| INVALID)?;
    if ehdr.e_machine != elf::abi::EM_AARCH64 {
        return Err("init is not an AArch64 program");
    }
    let entry_size = ProgramHeader::validate_entsize(Class::ELF64, ehdr.e_phentsize as usize).map_err(|_| INVALID)?;
    let table = usize::try_from(ehdr.e_phoff)
        .ok()
        .and_then(|start| image.get(start..start.checked_add(ehdr.e_phnum as usize * entry_size)?))
        .ok_or("init's program headers lie outside the file")?;
    Ok((ehdr, SegmentTable::new(LittleEndian, Class::ELF64, table)))
}
