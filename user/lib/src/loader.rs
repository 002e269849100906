//! Starting programs from the boot archive: ELF checks, the child's
//! address space, its capabilities, and its first thread.
//!
//! [`plan`] turns an ELF file into a list of segments to map and is pure
//! (tested on the host); [`spawn`] does the system calls. The child ends up
//! with the layout of the start protocol (see `abi::boot_info`).

extern crate alloc;

use crate::rt::process;
use crate::{syscall, vspace};
use abi::boot_info::{set_nul_padded, StartInfo, CHILD_IPC_BUFFER, CHILD_STACK_TOP, START_INFO_ADDRESS};
use abi::{Error, Handle, ObjectType, Rights, PAGE_SIZE, USER_LIMIT};
use alloc::vec::Vec;
use core::fmt;

const PAGE: u64 = PAGE_SIZE as u64;
/// Most loadable segments a program may have.
pub const MAX_SEGMENTS: usize = 8;
/// Lowest address a segment may use (page 0 stays unmapped).
pub const MIN_ADDRESS: u64 = 0x1_0000;

/// What is wrong with an ELF file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Not a well-formed ELF file (the `elf` crate's verdict).
    Malformed,
    /// Not a little-endian 64-bit AArch64 static executable.
    WrongKind,
    /// No loadable segment, or more than [`MAX_SEGMENTS`].
    SegmentCount,
    /// A segment's sizes or addresses are inconsistent or out of range.
    BadSegment,
    /// A segment is writable and executable.
    WriteExecute,
    /// Two segments share a page, or a segment covers a reserved address
    /// (stack, IPC buffer, start-up page).
    Overlap,
    /// The entry point is not in an executable segment.
    BadEntry,
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ElfError::Malformed => "malformed ELF file",
            ElfError::WrongKind => "not a little-endian AArch64 ELF64 executable",
            ElfError::SegmentCount => "no loadable segment, or too many",
            ElfError::BadSegment => "segment sizes or addresses out of range",
            ElfError::WriteExecute => "segment is writable and executable",
            ElfError::Overlap => "segments overlap each other or a reserved range",
            ElfError::BadEntry => "entry point is not in an executable segment",
        })
    }
}

/// One loadable segment, page-rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// First page's address.
    pub vaddr: u64,
    pub pages: u64,
    /// Where the file bytes go within the first page.
    pub offset_in_page: usize,
    /// The file bytes (`p_offset..p_offset+p_filesz`); the rest is zero.
    pub file_start: usize,
    pub file_len: usize,
    pub rights: Rights,
}

impl Segment {
    fn end(&self) -> u64 {
        self.vaddr + self.pages * PAGE
    }

    /// Pages that hold file bytes (the rest of the segment is zero).
    pub fn file_pages(&self) -> u64 {
        if self.file_len == 0 {
            0
        } else {
            ((self.offset_in_page + self.file_len) as u64).div_ceil(PAGE)
        }
    }
}

/// What [`plan`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub entry: u64,
    pub segments: [Option<Segment>; MAX_SEGMENTS],
}

impl Plan {
    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter().flatten()
    }
}

/// Checks an ELF executable and lays out its segments; `reserved` ranges
/// (`start..end`) must stay free.
pub fn plan(bytes: &[u8], reserved: &[(u64, u64)]) -> Result<Plan, ElfError> {
    use elf::abi::{EM_AARCH64, ET_EXEC, PF_R, PF_W, PF_X, PT_LOAD};
    use elf::endian::AnyEndian;

    let file = elf::ElfBytes::<AnyEndian>::minimal_parse(bytes).map_err(|_| ElfError::Malformed)?;
    let h = &file.ehdr;
    if h.class != elf::file::Class::ELF64
        || h.e_machine != EM_AARCH64
        || h.e_type != ET_EXEC
        || !matches!(h.endianness, AnyEndian::Little)
    {
        return Err(ElfError::WrongKind);
    }
    let table = file.segments().ok_or(ElfError::SegmentCount)?;
    let mut segments = [None; MAX_SEGMENTS];
    let mut n = 0;
    for ph in table.iter().filter(|p| p.p_type == PT_LOAD && p.p_memsz > 0) {
        if n == MAX_SEGMENTS {
            return Err(ElfError::SegmentCount);
        }
        let end = ph.p_vaddr.checked_add(ph.p_memsz).ok_or(ElfError::BadSegment)?;
        let file_end = ph.p_offset.checked_add(ph.p_filesz).ok_or(ElfError::BadSegment)?;
        if ph.p_filesz > ph.p_memsz || file_end > bytes.len() as u64 || ph.p_vaddr < MIN_ADDRESS || end > USER_LIMIT {
            return Err(ElfError::BadSegment);
        }
        let (w, x) = (ph.p_flags & PF_W != 0, ph.p_flags & PF_X != 0);
        if w && x {
            return Err(ElfError::WriteExecute);
        }
        let mut rights = Rights::empty();
        for (flag, r) in [(PF_R, Rights::READ), (PF_W, Rights::WRITE), (PF_X, Rights::EXECUTE)] {
            if ph.p_flags & flag != 0 {
                rights |= r;
            }
        }
        let vaddr = ph.p_vaddr & !(PAGE - 1);
        segments[n] = Some(Segment {
            vaddr,
            pages: (end - vaddr).div_ceil(PAGE),
            offset_in_page: (ph.p_vaddr - vaddr) as usize,
            file_start: ph.p_offset as usize,
            file_len: ph.p_filesz as usize,
            rights,
        });
        n += 1;
    }
    if n == 0 {
        return Err(ElfError::SegmentCount);
    }
    segments[..n].sort_unstable_by_key(|s| s.map_or(u64::MAX, |s| s.vaddr));
    let list: Vec<Segment> = segments[..n].iter().flatten().copied().collect();
    for pair in list.windows(2) {
        if pair[0].end() > pair[1].vaddr {
            return Err(ElfError::Overlap);
        }
    }
    for s in &list {
        if reserved.iter().any(|&(a, b)| s.vaddr < b && a < s.end()) {
            return Err(ElfError::Overlap);
        }
    }
    let entry = h.e_entry;
    if !list
        .iter()
        .any(|s| s.rights.contains(Rights::EXECUTE) && (s.vaddr..s.end()).contains(&entry))
    {
        return Err(ElfError::BadEntry);
    }
    Ok(Plan { entry, segments })
}

/// Why [`spawn`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// The program is not in the archive (or there is no archive).
    NotFound,
    Elf(ElfError),
    /// A system call failed at this step.
    Kernel(&'static str, Error),
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::NotFound => f.write_str("no such program in the archive"),
            SpawnError::Elf(e) => write!(f, "bad ELF file: {e}"),
            SpawnError::Kernel(step, e) => write!(f, "{step}: {e}"),
        }
    }
}

/// Pages of a child's first stack unless [`Spawn::stack_pages`] says otherwise.
pub const DEFAULT_STACK_PAGES: u64 = 16;

/// The rights a task gets to its own task (`StartInfo::task`).
pub const OWN_TASK_RIGHTS: Rights = Rights::READ.union(Rights::WRITE).union(Rights::MAP);
/// The rights a task gets to its own pool (`StartInfo::pool`); a task given
/// the archive (it may start programs) also gets `MANAGE`.
pub const OWN_POOL_RIGHTS: Rights = Rights::READ.union(Rights::WRITE);

/// How to start a program. `Spawn::new` gives the defaults.
#[derive(Clone, Copy, Debug)]
pub struct Spawn<'a> {
    pub name: &'a str,
    pub elf: &'a [u8],
    pub args: &'a str,
    /// Bytes moved from this task's pool into the child's.
    pub pool_bytes: u64,
    pub priority: u8,
    /// Pin the first thread to a CPU.
    pub cpu: Option<usize>,
    pub stack_pages: u64,
    /// Give the child this task's console.
    pub console: bool,
    /// Give the child this task's archive capability: it may start
    /// programs of its own, so it also gets `MANAGE` on its pool (to split
    /// pools off it for them).
    pub archive: bool,
    /// Give the child this task's counters capability (`READ`: kernel
    /// statistics and the cycle counter), if it has one. Only programs that
    /// measure get it (the benchmarks, some tests).
    pub counters: bool,
    /// The child's parent endpoint: `(endpoint, badge)`. A copy with the
    /// badge becomes `StartInfo::parent` and the first thread's fault
    /// handler. The endpoint capability needs `SEND | GRANT`.
    pub supervisor: Option<(Handle, u64)>,
    /// Further capabilities, installed with these rights, named in
    /// `StartInfo::extra` in this order (at most 8).
    pub extra: &'a [(Handle, Rights)],
    /// Map the read-only segments (code, constants) from the boot
    /// archive's pages, shared by every task that runs the program, when
    /// `elf` lies in this task's archive page-aligned (see
    /// [`shared_page`]); `false` copies them into new memory from the
    /// child's pool, as writable segments always are.
    pub share: bool,
}

impl<'a> Spawn<'a> {
    pub fn new(name: &'a str, elf: &'a [u8]) -> Spawn<'a> {
        Spawn {
            name,
            elf,
            args: "",
            pool_bytes: 4 << 20,
            priority: process().priority,
            cpu: None,
            stack_pages: DEFAULT_STACK_PAGES,
            console: true,
            archive: false,
            counters: false,
            supervisor: None,
            extra: &[],
            share: true,
        }
    }
}

/// A started program, as its parent holds it.
#[derive(Debug)]
pub struct Child {
    pub task: Handle,
    pub thread: Handle,
    /// The child's pool (a part of the parent's).
    pub pool: Handle,
    /// The badge its messages and faults carry (0 without a supervisor).
    pub badge: u64,
    /// Handles of `Spawn::extra` in the child's space.
    pub extra: [Handle; 8],
    /// Other objects the parent holds for it (memory, minted endpoint).
    objects: Vec<Handle>,
}

impl Child {
    /// Destroys the task and deletes everything made for it; the memory
    /// goes back to the parent's pool. Returns the first error.
    pub fn destroy(self) -> Result<(), Error> {
        let mut first = Ok(());
        let mut note = |r: Result<(), Error>| {
            if first.is_ok() {
                first = r;
            }
        };
        if self.task != Handle::NULL {
            note(syscall::task_destroy(self.task));
        }
        for h in self.objects.iter().rev().chain([&self.thread, &self.task, &self.pool]) {
            if *h != Handle::NULL {
                note(syscall::cap_delete(*h));
            }
        }
        first
    }
}

/// Starts a program: its own pool, task, segments, stack, IPC buffer,
/// start-up page and first thread (running when this returns).
pub fn spawn(s: &Spawn) -> Result<Child, SpawnError> {
    let stack_bottom = CHILD_STACK_TOP - s.stack_pages * PAGE;
    let reserved = [
        (stack_bottom - PAGE, CHILD_STACK_TOP),
        (CHILD_IPC_BUFFER, START_INFO_ADDRESS + PAGE),
    ];
    let plan = plan(s.elf, &reserved).map_err(SpawnError::Elf)?;
    let me = process();
    let k = |step: &'static str| move |e: Error| SpawnError::Kernel(step, e);

    let pool = syscall::create(me.pool, ObjectType::Pool, s.pool_bytes).map_err(k("create pool"))?;
    let mut child = Child {
        task: Handle::NULL,
        thread: Handle::NULL,
        pool,
        badge: s.supervisor.map_or(0, |(_, b)| b),
        extra: [Handle::NULL; 8],
        objects: Vec::new(),
    };
    match build(s, &plan, &mut child, stack_bottom) {
        Ok(()) => Ok(child),
        Err(e) => {
            let _ = child.destroy();
            Err(e)
        }
    }
}

/// New memory of `pages` pages from the child's pool, its first
/// `fill_pages` filled by `fill` through a temporary mapping here, then
/// mapped into the child. New memory is zero, so the rest (`.bss`, the
/// stack) is never mapped here: a program with a large `.bss` (a 4 MiB
/// heap) does not make the loader's scratch window, and with it the
/// supervisor's translation tables, grow.
fn load_memory(
    child: &mut Child,
    pages: u64,
    fill_pages: u64,
    vaddr: u64,
    rights: Rights,
    fill: impl FnOnce(&mut [u8]),
) -> Result<(), SpawnError> {
    let k = |step: &'static str| move |e: Error| SpawnError::Kernel(step, e);
    let mem = syscall::create(child.pool, ObjectType::Memory, pages).map_err(k("create memory"))?;
    child.objects.push(mem);
    let fill_pages = fill_pages.min(pages);
    if fill_pages > 0 {
        vspace::with_scratch(mem, fill_pages, Rights::READ | Rights::WRITE, fill).map_err(k("map into loader"))?;
    }
    syscall::map(child.task, mem, pages, 0, vaddr, rights).map_err(k("map into child"))
}

/// The page of the archive where `seg` of the program `elf` can be mapped
/// from, if it can: read-only, wholly file bytes (nothing to zero), and
/// `elf` lies in this task's boot archive with the segment's first page
/// starting a page of the archive (the build tool aligns each file's data
/// to a page, and the link script each segment's file offset).
pub fn shared_page(elf: &[u8], seg: &Segment) -> Option<u64> {
    if seg.rights.contains(Rights::WRITE) || seg.file_pages() != seg.pages || process().archive == Handle::NULL {
        return None;
    }
    let archive = archive()?;
    let start = (elf.as_ptr() as usize).checked_sub(archive.as_ptr() as usize)?;
    if start + elf.len() > archive.len() {
        return None;
    }
    let offset = (start + seg.file_start).checked_sub(seg.offset_in_page)? as u64;
    offset.is_multiple_of(PAGE).then_some(offset / PAGE)
}

fn build(s: &Spawn, plan: &Plan, child: &mut Child, stack_bottom: u64) -> Result<(), SpawnError> {
    let me = process();
    let k = |step: &'static str| move |e: Error| SpawnError::Kernel(step, e);
    child.task = syscall::create(child.pool, ObjectType::Task, 0).map_err(k("create task"))?;

    for seg in plan.segments() {
        // Shared: the archive's pages, read-only (the kernel never maps
        // them writable). The child's pool pays only for the mapping. A
        // refused map (an archive capability without EXECUTE) copies.
        if let Some(page) = shared_page(s.elf, seg).filter(|_| s.share) {
            if syscall::map(child.task, me.archive, seg.pages, page, seg.vaddr, seg.rights).is_ok() {
                continue;
            }
        }
        let bytes = &s.elf[seg.file_start..seg.file_start + seg.file_len];
        load_memory(child, seg.pages, seg.file_pages(), seg.vaddr, seg.rights, |m| {
            m[seg.offset_in_page..seg.offset_in_page + bytes.len()].copy_from_slice(bytes)
        })?;
    }
    let rw = Rights::READ | Rights::WRITE;
    load_memory(child, s.stack_pages, 0, stack_bottom, rw, |_| ())?;
    load_memory(child, 1, 0, CHILD_IPC_BUFFER, rw, |_| ())?;

    let mut info = StartInfo::new();
    let install = |cap: Handle, rights: Rights, step: &'static str| {
        syscall::task_install(child.task, cap, rights)
            .map(|h| h.0)
            .map_err(k(step))
    };
    if s.console && me.console != Handle::NULL {
        // GRANT: the child may hand the console on to tasks it starts.
        info.console = install(me.console, Rights::WRITE | Rights::GRANT, "install console")?;
    }
    // Least privilege: its own task to map memory into (MAP), start
    // threads in (WRITE) and read (READ), never to install capabilities
    // into or destroy (MANAGE); its own pool to allocate from (WRITE), and
    // to split pools off (MANAGE) only if it starts programs itself.
    info.task = install(child.task, OWN_TASK_RIGHTS, "install task")?;
    let pool_rights = if s.archive {
        OWN_POOL_RIGHTS | Rights::MANAGE
    } else {
        OWN_POOL_RIGHTS
    };
    info.pool = install(child.pool, pool_rights, "install pool")?;
    if s.counters && me.counters != Handle::NULL {
        // GRANT: a benchmark hands it on to the server it starts.
        info.counters = install(me.counters, Rights::READ | Rights::GRANT, "install counters")?;
    }
    if s.archive && me.archive != Handle::NULL {
        // EXECUTE: it maps programs' code from the archive when it starts
        // them (it could run the same code copied into its own memory).
        info.archive = install(
            me.archive,
            Rights::READ | Rights::EXECUTE | Rights::MAP,
            "install archive",
        )?;
    }
    let mut fault_ep = None;
    if let Some((ep, badge)) = s.supervisor {
        let minted = syscall::cap_mint(ep, Rights::SEND | Rights::GRANT, badge).map_err(k("mint parent endpoint"))?;
        child.objects.push(minted);
        info.parent = install(minted, Rights::SEND, "install parent endpoint")?;
        fault_ep = Some(minted);
    }
    for (i, &(cap, rights)) in s.extra.iter().take(info.extra.len()).enumerate() {
        info.extra[i] = install(cap, rights, "install extra capability")?;
        child.extra[i] = Handle(info.extra[i]);
    }
    child.thread = syscall::thread_create(
        child.pool,
        child.task,
        plan.entry,
        CHILD_STACK_TOP,
        START_INFO_ADDRESS,
        s.priority,
    )
    .map_err(k("create thread"))?;
    info.thread = install(child.thread, Rights::MANAGE, "install thread")?;
    info.cpus = me.cpus;
    info.priority = s.priority as u32;
    set_nul_padded(&mut info.name, s.name);
    set_nul_padded(&mut info.args, s.args);
    load_memory(child, 1, 1, START_INFO_ADDRESS, Rights::READ, |m| {
        // SAFETY: `m` is a whole page, page-aligned, and StartInfo (plain
        // integers, repr(C)) fits in it (checked by an abi test).
        unsafe { core::ptr::write(m.as_mut_ptr().cast::<StartInfo>(), info) }
    })?;

    if let Some(ep) = fault_ep {
        syscall::thread_set_fault_handler(child.thread, ep).map_err(k("set fault handler"))?;
    }
    if let Some(cpu) = s.cpu {
        syscall::thread_configure(child.thread, s.priority, Some(cpu)).map_err(k("set affinity"))?;
    }
    syscall::thread_resume(child.thread).map_err(k("start thread"))
}

static ARCHIVE: spin::Once<Option<&'static [u8]>> = spin::Once::new();

/// The boot archive's bytes: init's is mapped by the kernel; another task
/// maps its `StartInfo::archive` capability on first use.
pub fn archive() -> Option<&'static [u8]> {
    *ARCHIVE.call_once(|| {
        let me = process();
        let size = match me.boot_info {
            Some(b) => b.archive_size,
            None => {
                if me.archive == Handle::NULL {
                    return None;
                }
                let size = syscall::cap_info(me.archive).ok()?.size;
                let pages = size.div_ceil(PAGE);
                syscall::map(
                    me.task,
                    me.archive,
                    pages,
                    0,
                    abi::boot_info::ARCHIVE_ADDRESS,
                    Rights::READ,
                )
                .ok()?;
                size
            }
        };
        // SAFETY: the archive is mapped read-only at ARCHIVE_ADDRESS for
        // `size` bytes (by the kernel for init, just above otherwise) and
        // never unmapped.
        Some(unsafe { core::slice::from_raw_parts(abi::boot_info::ARCHIVE_ADDRESS as *const u8, size as usize) })
    })
}

/// Finds a program in the archive by name.
pub fn find_program(name: &str) -> Result<&'static [u8], SpawnError> {
    let a = archive().ok_or(SpawnError::NotFound)?;
    match newc::Archive::new(a).find(name) {
        Ok(Some(e)) => Ok(e.data),
        _ => Err(SpawnError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const PF_X: u32 = 1;
    const PF_W: u32 = 2;
    const PF_R: u32 = 4;

    /// A minimal ELF64 AArch64 executable: header, program headers, and
    /// `file_len` bytes of content.
    fn elf(entry: u64, phdrs: &[(u32, u64, u64, u64, u64, u32)], file_len: usize) -> Vec<u8> {
        let mut v = vec![0u8; 64 + 56 * phdrs.len()];
        v[..4].copy_from_slice(b"\x7fELF");
        v[4] = 2; // ELFCLASS64
        v[5] = 1; // little-endian
        v[6] = 1; // EV_CURRENT
        v[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        v[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
        v[20..24].copy_from_slice(&1u32.to_le_bytes());
        v[24..32].copy_from_slice(&entry.to_le_bytes());
        v[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        v[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        v[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        v[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for (i, &(ty, off, vaddr, filesz, memsz, flags)) in phdrs.iter().enumerate() {
            let p = 64 + 56 * i;
            v[p..p + 4].copy_from_slice(&ty.to_le_bytes());
            v[p + 4..p + 8].copy_from_slice(&flags.to_le_bytes());
            v[p + 8..p + 16].copy_from_slice(&off.to_le_bytes());
            v[p + 16..p + 24].copy_from_slice(&vaddr.to_le_bytes());
            v[p + 24..p + 32].copy_from_slice(&vaddr.to_le_bytes());
            v[p + 32..p + 40].copy_from_slice(&filesz.to_le_bytes());
            v[p + 40..p + 48].copy_from_slice(&memsz.to_le_bytes());
            v[p + 48..p + 56].copy_from_slice(&0x1000u64.to_le_bytes());
        }
        v.resize(v.len().max(file_len), 0);
        v
    }

    fn typical() -> Vec<u8> {
        elf(
            0x40_0010,
            &[
                (1, 0x1000, 0x40_0000, 0x1234, 0x1234, PF_R | PF_X),
                (1, 0x3000, 0x40_2000, 0x100, 0x100, PF_R),
                (6, 0, 0, 0, 0, PF_R), // PT_PHDR: ignored
                (1, 0x4000, 0x40_3008, 0x10, 0x5000, PF_R | PF_W),
            ],
            0x5000,
        )
    }

    #[test]
    fn plans_typical_program() {
        let p = plan(&typical(), &[]).unwrap();
        assert_eq!(p.entry, 0x40_0010);
        let s: Vec<&Segment> = p.segments().collect();
        assert_eq!(s.len(), 3);
        assert_eq!(
            (s[0].vaddr, s[0].pages, s[0].rights),
            (0x40_0000, 2, Rights::READ | Rights::EXECUTE)
        );
        assert_eq!((s[1].vaddr, s[1].pages, s[1].rights), (0x40_2000, 1, Rights::READ));
        assert_eq!(
            (
                s[2].vaddr,
                s[2].pages,
                s[2].offset_in_page,
                s[2].file_start,
                s[2].file_len
            ),
            (0x40_3000, 6, 8, 0x4000, 0x10)
        );
        assert_eq!(s[2].rights, Rights::READ | Rights::WRITE);
        // Only pages with file bytes are filled through the loader's
        // window; the `.bss` pages after them are left zero.
        assert_eq!([s[0].file_pages(), s[1].file_pages(), s[2].file_pages()], [2, 1, 1]);
        let straddles = Segment {
            offset_in_page: 0xff8,
            file_len: 0x10,
            ..*s[2]
        };
        assert_eq!(straddles.file_pages(), 2);
        let bss_only = Segment { file_len: 0, ..*s[2] };
        assert_eq!(bss_only.file_pages(), 0);
    }

    #[test]
    fn rejects_write_execute_and_overlaps() {
        let wx = elf(0x40_0000, &[(1, 0, 0x40_0000, 0x10, 0x10, PF_R | PF_W | PF_X)], 0x100);
        assert_eq!(plan(&wx, &[]), Err(ElfError::WriteExecute));
        let overlap = elf(
            0x40_0000,
            &[
                (1, 0, 0x40_0000, 0x10, 0x10, PF_R | PF_X),
                (1, 0, 0x40_0800, 0x10, 0x10, PF_R),
            ],
            0x100,
        );
        assert_eq!(plan(&overlap, &[]), Err(ElfError::Overlap));
        assert_eq!(plan(&typical(), &[(0x40_8000, 0x40_9000)]), Err(ElfError::Overlap));
        assert!(plan(&typical(), &[(0x40_9000, 0x40_a000)]).is_ok());
    }

    #[test]
    fn rejects_bad_sizes_and_entries() {
        let past_file = elf(0x40_0000, &[(1, 0x80, 0x40_0000, 0x1000, 0x1000, PF_R | PF_X)], 0x100);
        assert_eq!(plan(&past_file, &[]), Err(ElfError::BadSegment));
        let file_gt_mem = elf(0x40_0000, &[(1, 0, 0x40_0000, 0x20, 0x10, PF_R | PF_X)], 0x100);
        assert_eq!(plan(&file_gt_mem, &[]), Err(ElfError::BadSegment));
        let kernel_half = elf(
            0x40_0000,
            &[(1, 0, 0xffff_0000_0000_0000, 0x10, 0x10, PF_R | PF_X)],
            0x100,
        );
        assert_eq!(plan(&kernel_half, &[]), Err(ElfError::BadSegment));
        let null_page = elf(0x0, &[(1, 0, 0x0, 0x10, 0x10, PF_R | PF_X)], 0x100);
        assert_eq!(plan(&null_page, &[]), Err(ElfError::BadSegment));
        let wrap = elf(0x40_0000, &[(1, 0, 0x40_0000, 0x10, u64::MAX, PF_R | PF_X)], 0x100);
        assert_eq!(plan(&wrap, &[]), Err(ElfError::BadSegment));
        let entry_in_data = elf(
            0x40_2000,
            &[
                (1, 0, 0x40_0000, 0x10, 0x10, PF_R | PF_X),
                (1, 0, 0x40_2000, 0, 0x10, PF_R | PF_W),
            ],
            0x100,
        );
        assert_eq!(plan(&entry_in_data, &[]), Err(ElfError::BadEntry));
        assert_eq!(plan(&elf(0x40_0000, &[], 0x100), &[]), Err(ElfError::SegmentCount));
    }

    #[test]
    fn rejects_other_files() {
        assert_eq!(plan(b"not an elf", &[]), Err(ElfError::Malformed));
        let mut x86 = typical();
        x86[18] = 62; // EM_X86_64
        assert_eq!(plan(&x86, &[]), Err(ElfError::WrongKind));
        let mut dynamic = typical();
        dynamic[16] = 3; // ET_DYN
        assert_eq!(plan(&dynamic, &[]), Err(ElfError::WrongKind));
        let many: Vec<(u32, u64, u64, u64, u64, u32)> = (0..9)
            .map(|i| (1, 0, 0x40_0000 + i * 0x1000, 0, 0x10, PF_R | PF_X))
            .collect();
        assert_eq!(plan(&elf(0x40_0000, &many, 0x100), &[]), Err(ElfError::SegmentCount));
    }
}
