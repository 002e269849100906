//! The plain kernel object types.

use super::Id;
use super::IdQueue;

use super::slab::box_cost;

/// Bytes charged for an endpoint: its heap block. (Its table entry is in a
/// chunk its pool pays for, as are those of notifications, interrupts and
/// device memory objects, which take nothing else: see [`super::Slab`].)
pub const ENDPOINT_COST: u64 = box_cost::<Endpoint>();

/// Kinds of object kept in a [`super::Slab`] of the kernel's (the object
/// tables: see `Kernel`'s `Stored`).
pub const TABLES: usize = 8;

/// A budget of kernel memory.
pub struct Pool {
    /// The budget it was made with: what is left plus what is charged
    /// (checked by the self-check).
    pub size: u64,
    pub bytes_left: u64,
    pub parent: Option<Id>,
    /// Capabilities and objects charged to it (it lives while any remain).
    pub refs: u32,
    /// Capabilities naming it: when the last goes, every task charged to
    /// it (or to a pool made from it) is killed, which frees what they hold
    /// even when tasks hold capabilities to each other.
    pub caps: u32,
    /// Its last capability went and its tasks are still to be killed (see
    /// [`super::Kernel::process_reclaims`]).
    pub reclaim: bool,
    /// Per object table, the head of its list of chunks with room
    /// ([`super::slab::Slab::insert`]).
    pub rooms: [u32; TABLES],
}

impl Pool {
    /// A pool of `size` bytes, made from `parent`, with no references yet.
    pub fn new(size: u64, parent: Option<Id>) -> Self {
        Pool {
            size,
            bytes_left: size,
            parent,
            refs: 0,
            caps: 0,
            reclaim: false,
            rooms: [super::slab::NO_ROOM; TABLES],
        }
    }
}

/// Synchronous IPC rendezvous: threads waiting to send (their message is in
/// their saved registers) or to receive.
pub struct Endpoint {
    /// Its own id (for the IPC fast path, which finds it by address).
    pub id: Id,
    pub senders: IdQueue,
    pub receivers: IdQueue,
    /// Capabilities with the RECEIVE right: with none left, senders get `PeerDied`.
    pub receive_caps: u32,
    pub refs: u32,
    pub pool: Id,
}

/// Asynchronous signal bits.
pub struct Notification {
    pub bits: u64,
    pub waiters: IdQueue,
    pub refs: u32,
    pub pool: Id,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryKind {
    /// RAM from the frame allocator, freed with the object.
    Ram,
    /// Device registers: mapped Device-nGnRE, never freed.
    Device,
    /// Found in place at boot (the boot archive, the device tree):
    /// read-only, never freed.
    Boot,
}

/// Pages of RAM, device registers or the boot archive.
pub struct Memory {
    /// Where its pages are, unless [`Memory::extents`] lists them.
    pub physical: u64,
    pub pages: usize,
    pub kind: MemoryKind,
    /// Made for DMA ([`abi::MEMORY_CONTIGUOUS`]; device and boot memory
    /// too): `MemoryPhysical` tells its address. Never has extents.
    pub contiguous: bool,
    /// Its runs of pages when RAM could not be had as one block
    /// (fragmented memory), in kernel memory charged to its pool; `None`:
    /// all its pages are at `physical` on.
    pub extents: Option<alloc::boxed::Box<[crate::mm::extents::Extent]>>,
    /// Pool charged, and how much beyond its entry (None for boot-time
    /// objects; 0 for device memory).
    pub pool: Option<Id>,
    pub charge: u64,
    pub refs: u32,
    /// How it is mapped now, in every task: W^X holds per object, across
    /// mappings (see `task::map`).
    pub mapped: MappedAs,
}

impl Memory {
    /// A [`MemoryKind::Boot`] object of `pages` pages at `physical`,
    /// charged to no pool.
    pub fn boot(physical: u64, pages: usize) -> Memory {
        Memory {
            physical,
            pages,
            kind: MemoryKind::Boot,
            contiguous: true,
            extents: None,
            pool: None,
            charge: 0,
            refs: 0,
            mapped: MappedAs::NONE,
        }
    }

    /// Physical address of page `page` (below `pages`), and how many
    /// pages from it on are physically contiguous.
    #[inline(always)]
    pub fn run(&self, page: usize) -> (u64, usize) {
        match &self.extents {
            None => (self.physical + (page * abi::PAGE_SIZE) as u64, self.pages - page),
            Some(list) => crate::mm::extents::find(list, page),
        }
    }
}

/// How many mappings of a memory object are writable and how many
/// executable. One of the two is always zero: memory writable at one
/// address is executable at none, and the other way round.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MappedAs {
    pub writable: u32,
    pub executable: u32,
}

impl MappedAs {
    pub const NONE: MappedAs = MappedAs {
        writable: 0,
        executable: 0,
    };

    /// Whether a new mapping with `rights` keeps W^X: nothing writable
    /// where it is executable, nothing executable where it is writable.
    pub fn allows(self, rights: abi::Rights) -> bool {
        !(rights.contains(abi::Rights::WRITE) && self.executable > 0
            || rights.contains(abi::Rights::EXECUTE) && self.writable > 0)
    }

    /// Count in (`add`) or out a mapping with `rights`.
    pub fn count(&mut self, rights: abi::Rights, add: bool) {
        let (w, x) = (
            rights.contains(abi::Rights::WRITE) as u32,
            rights.contains(abi::Rights::EXECUTE) as u32,
        );
        if add {
            self.writable += w;
            self.executable += x;
        } else {
            self.writable -= w;
            self.executable -= x;
        }
    }
}

/// An interrupt line.
pub struct Irq {
    pub intid: u32,
    /// Where its interrupts are delivered: notification and bits. A weak
    /// link: the binding does not keep the notification (and the memory of
    /// the task that made it) alive; when the notification goes, so does
    /// the binding.
    pub notification: Option<(Id, u64)>,
    pub refs: u32,
    /// The pool whose chunk holds it.
    pub pool: Id,
}

/// The address of a boxed kernel object, kept next to its [`super::Id`]
/// where the IPC fast path needs the object without a table lookup. Each
/// holder documents why the object outlives it there; it is only followed
/// under the kernel lock.
pub struct ObjectPtr<T>(*mut T);

impl<T> ObjectPtr<T> {
    pub const NULL: ObjectPtr<T> = ObjectPtr(core::ptr::null_mut());

    pub fn new(object: &mut T) -> Self {
        ObjectPtr(object)
    }

    #[inline(always)]
    pub const fn as_ptr(self) -> *mut T {
        self.0
    }
}

impl<T> Clone for ObjectPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for ObjectPtr<T> {}

// SAFETY: an ObjectPtr is only followed by the holder of the kernel lock,
// which makes every access to kernel objects exclusive to one CPU at a time.
unsafe impl<T> Send for ObjectPtr<T> {}
