//! What the kernel hands the first user task (init), and where.
//!
//! Init starts with these capabilities in its capability space, named by
//! the handles in [`BootInfo`], and with the boot-info page, the boot
//! archive, the device tree, its IPC buffer and its stack already mapped.
//!
//! The kernel describes no devices: init reads the device tree itself and
//! makes a device region (`Syscall::DeviceMemory`) for each register range
//! and an interrupt object (`Syscall::IrqCreate`) for each interrupt line
//! it hands to a driver, with its console capability (`MANAGE`) as the
//! authority.

/// The boot-info pages (read-only) in init's address space.
pub const BOOT_INFO_ADDRESS: u64 = 0x1000_0000;
/// Pages [`BootInfo`] spans.
pub const BOOT_INFO_PAGES: usize = 2;
/// The boot archive (cpio newc, read-only) in init's address space.
pub const ARCHIVE_ADDRESS: u64 = 0x2000_0000;
/// The pages holding the device tree (read-only) in init's address space;
/// the tree starts [`BootInfo::dtb_offset`] bytes in.
pub const DTB_ADDRESS: u64 = 0x1001_0000;
/// Init's IPC buffer (one page, read-write).
pub const INIT_IPC_BUFFER: u64 = 0x0fff_f000;
/// Top of init's stack; [`INIT_STACK_SIZE`] bytes below it are mapped.
pub const INIT_STACK_TOP: u64 = 0x8000_0000;
pub const INIT_STACK_SIZE: u64 = 64 * 1024;
/// Priority of init's first thread (the highest, so that supervision and
/// fault handling are never starved by the tasks init starts).
pub const INIT_PRIORITY: u8 = crate::MAX_PRIORITY;
/// Magic value at the start of [`BootInfo`].
pub const BOOT_INFO_MAGIC: u64 = 0x4b45_5354_5245_4c31; // "KESTREL1"

/// The boot-info page, at [`BOOT_INFO_ADDRESS`] in init.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BootInfo {
    pub magic: u64,
    /// Init's own task, thread and IPC-buffer memory.
    pub task: u32,
    pub thread: u32,
    /// Pool holding all free memory (minus what init itself uses).
    pub pool: u32,
    /// The kernel console (log output).
    pub console: u32,
    /// The boot archive as a memory object (read-only).
    pub archive: u32,
    pub _reserved: u32,
    pub archive_size: u64,
    /// Bytes in `pool` at boot.
    pub pool_bytes: u64,
    pub cpus: u32,
    /// The device tree as a memory object, mapped read-only at
    /// [`DTB_ADDRESS`]: the pages that hold it where the boot loader put it
    /// (`READ | MAP | GRANT`; the bytes around the tree in its first and
    /// last page are not part of it), or, for a tree outside RAM, a copy in
    /// memory from init's pool.
    pub dtb: u32,
    /// Byte offset of the tree in its first page.
    pub dtb_offset: u32,
    /// The counters (`READ | GRANT`): kernel statistics and the cycle
    /// counter.
    pub counters: u32,
    /// Kernel command line (`/chosen/bootargs`), NUL-padded.
    pub bootargs: [u8; 256],
    /// Bytes of the device tree (its header and blocks; the free space a
    /// boot loader leaves after them is left out).
    pub dtb_size: u64,
}

impl BootInfo {
    /// The command line as text (up to the first NUL).
    pub fn bootargs(&self) -> &str {
        nul_terminated(&self.bootargs)
    }

    /// Where the device tree lies in init's address space (valid when
    /// [`BootInfo::dtb`] is not 0).
    pub fn dtb_address(&self) -> u64 {
        DTB_ADDRESS + u64::from(self.dtb_offset)
    }
}

/// Text of a NUL-padded field.
pub fn nul_terminated(bytes: &[u8]) -> &str {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    core::str::from_utf8(&bytes[..end]).unwrap_or("")
}

/// Copy `text` into a NUL-padded field, truncating.
pub fn set_nul_padded(field: &mut [u8], text: &str) {
    field.fill(0);
    let n = text.len().min(field.len().saturating_sub(1));
    field[..n].copy_from_slice(&text.as_bytes()[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_info_fits_its_pages() {
        assert!(core::mem::size_of::<BootInfo>() <= BOOT_INFO_PAGES * crate::PAGE_SIZE);
    }

    #[test]
    fn nul_padded_round_trip() {
        let mut f = [0xffu8; 8];
        set_nul_padded(&mut f, "console-too-long");
        assert_eq!(nul_terminated(&f), "console");
    }
}

/// Where a parent puts a child's [`StartInfo`] page (read-only); the child's
/// first thread starts with `x0` = this address.
///
/// The start protocol (a convention between user-space parents and
/// children; the kernel only runs the thread): the parent maps the child's
/// ELF segments, a stack ending at [`CHILD_STACK_TOP`], an IPC-buffer page at
/// [`CHILD_IPC_BUFFER`] (read-write) and this page, installs the
/// capabilities named here, and starts the first thread at the ELF entry
/// with `sp` = [`CHILD_STACK_TOP`] and `x0` = [`START_INFO_ADDRESS`]. The
/// child registers its own IPC buffer (`ThreadSetIpcBuffer`).
pub const START_INFO_ADDRESS: u64 = 0x0fff_e000;
/// A child's IPC buffer page, mapped by its parent.
pub const CHILD_IPC_BUFFER: u64 = 0x0fff_d000;
/// Top of a child's first stack (the parent picks the size; the page below
/// the stack stays unmapped as a guard).
pub const CHILD_STACK_TOP: u64 = 0x8000_0000;
/// Magic value at the start of [`StartInfo`].
pub const START_INFO_MAGIC: u64 = 0x4b45_5354_5354_5254; // "KESTSTRT"

/// What a parent tells a task it starts (handles are in the child's space;
/// 0 = not given).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StartInfo {
    pub magic: u64,
    /// The kernel console (`WRITE`), for log output.
    pub console: u32,
    /// The task itself (`MANAGE`: map memory, start threads in it).
    pub task: u32,
    /// The first thread itself (`MANAGE`: priority, affinity).
    pub thread: u32,
    /// A pool the task may create objects from.
    pub pool: u32,
    /// Endpoint to its parent / supervisor (badged, `SEND`). The user
    /// library's exit and test protocol messages go there, and it is the
    /// fault handler of the threads the library starts.
    pub parent: u32,
    /// The boot archive as read-only memory (`READ | MAP`), for tasks that
    /// start programs themselves; its size is the memory object's size.
    pub archive: u32,
    /// Number of CPUs online (for affinity).
    pub cpus: u32,
    /// The first thread's priority.
    pub priority: u32,
    /// The counters (`READ`), for programs that measure: kernel statistics
    /// and the cycle counter (see `syscall::ObjectType::Counters`).
    pub counters: u32,
    /// Further capabilities, meaning fixed by the program.
    pub extra: [u32; 8],
    /// The program's name (its archive file name), NUL-padded.
    pub name: [u8; 32],
    /// Arguments, NUL-padded.
    pub args: [u8; 256],
}

impl StartInfo {
    /// An empty start info (magic set, no capabilities, no arguments).
    pub const fn new() -> StartInfo {
        StartInfo {
            magic: START_INFO_MAGIC,
            console: 0,
            task: 0,
            thread: 0,
            pool: 0,
            parent: 0,
            archive: 0,
            cpus: 1,
            priority: 0,
            counters: 0,
            extra: [0; 8],
            name: [0; 32],
            args: [0; 256],
        }
    }

    pub fn args(&self) -> &str {
        nul_terminated(&self.args)
    }

    pub fn name(&self) -> &str {
        nul_terminated(&self.name)
    }
}

impl Default for StartInfo {
    fn default() -> Self {
        StartInfo::new()
    }
}

#[cfg(test)]
mod start_info_tests {
    use super::*;

    #[test]
    fn start_info_fits_one_page_and_keeps_layout() {
        assert!(core::mem::size_of::<StartInfo>() <= crate::PAGE_SIZE);
        assert_eq!(
            core::mem::size_of::<StartInfo>(),
            (8 + 9 * 4 + 8 * 4 + 32 + 256 + 7) / 8 * 8
        );
        let mut s = StartInfo::new();
        set_nul_padded(&mut s.name, "test-ipc");
        assert_eq!(s.name(), "test-ipc");
        assert_eq!(s.args(), "");
    }
}
