//! The object tables and the kernel lock.

use super::slab::{Id, Slab, NO_ROOM};
use super::types::*;

use crate::cap::CapNode;
use crate::sched::CpuState;
use crate::thread::Thread;
use crate::MAX_CPUS;
use abi::{Error, ObjectType};
use alloc::boxed::Box;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// A kernel object a capability can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectRef {
    Pool(Id),
    Task(Id),
    Thread(Id),
    Endpoint(Id),
    Notification(Id),
    Memory(Id),
    Irq(Id),
    Console,
    /// The counters (kernel statistics, the cycle counter at EL0): one,
    /// like the console, never freed.
    Counters,
}

impl ObjectRef {
    pub fn object_type(self, k: &Kernel) -> ObjectType {
        match self {
            ObjectRef::Pool(_) => ObjectType::Pool,
            ObjectRef::Task(_) => ObjectType::Task,
            ObjectRef::Thread(_) => ObjectType::Thread,
            ObjectRef::Endpoint(_) => ObjectType::Endpoint,
            ObjectRef::Notification(_) => ObjectType::Notification,
            ObjectRef::Memory(id) => match k.memories.get(id).map(|m| m.kind) {
                Some(MemoryKind::Device) => ObjectType::DeviceRegion,
                _ => ObjectType::Memory,
            },
            ObjectRef::Irq(_) => ObjectType::Irq,
            ObjectRef::Console => ObjectType::Console,
            ObjectRef::Counters => ObjectType::Counters,
        }
    }
}

/// Every kernel object.
pub struct Kernel {
    pub pools: Slab<Pool>,
    pub tasks: Slab<crate::task::Task>,
    pub threads: Slab<Box<Thread>>,
    /// Boxed: capability slots keep their address (see [`crate::cap::CSpace::endpoint`]).
    pub endpoints: Slab<Box<Endpoint>>,
    pub notifications: Slab<Notification>,
    pub memories: Slab<Memory>,
    pub irqs: Slab<Irq>,
    pub caps: Slab<CapNode>,
    /// One per CPU (an array: the IPC fast path indexes it by
    /// `cpu % MAX_CPUS`, without a bounds check).
    pub cpus: [CpuState; MAX_CPUS],
    pub asids: crate::task::AsidAllocator,
    /// Bytes charged per task: its object and root table, and its share of
    /// the ASIDs (the root pool's size over their number, so that a pool
    /// can hold at most its share of them and no pool can take them all).
    pub task_cost: u64,
    /// The first user task; its end ends the system.
    pub init_task: Option<Id>,
    /// How many pools are marked for reclaim ([`Pool::reclaim`]): their
    /// last capability went and their tasks are to be killed (worked off
    /// iteratively, so deep pool trees cannot exhaust the stack; a mark
    /// needs no memory, so none is missed).
    pub reclaim_pending: u32,
    /// Tasks being torn down ([`crate::task::work_off`]). Both counts
    /// change only together with their sum, `deferred` (see there).
    pub teardown_pending: u32,
    /// `reclaim_pending + teardown_pending`: work deferred to the way out
    /// of system calls, which test this one word for both
    /// ([`Kernel::work_pending`]). Changed only with them, by
    /// [`Kernel::defer_reclaim`], [`Kernel::defer_teardown`],
    /// [`Kernel::teardown_done`] and [`Kernel::process_reclaims`].
    deferred: u32,
    /// Work units (about instructions) this kernel entry may still spend
    /// on teardown, revoke and large unmaps before it lets interrupts and
    /// other CPUs in ([`Kernel::spend`]). Each path that starts such work
    /// (the destroying system calls, the deferred work after a call, the
    /// timer interrupt, the idle loop) sets it to [`WORK_BUDGET`] first:
    /// the other calls do not pay for it.
    pub work_left: u32,
    /// The system call ran out of work budget with work left: it is to be
    /// made again (the thread goes back to its `svc`), and goes on where it
    /// stopped.
    pub restart: bool,
    /// A long call was restarted: if its thread goes on (no switch), a CPU
    /// waiting for the lock gets in once it is released, before this one
    /// takes it again ([`let_waiters_in`]). (After a switch the flag stays
    /// for the next same-thread exit through the scheduler, on any CPU: at
    /// worst one more bounded wait, and none if nobody waits.)
    pub polite: bool,
    /// TLB maintenance of the unmapping in progress
    /// ([`crate::task::PendingFlush`]).
    pub tlb: crate::task::PendingFlush,
    /// The kernel's lists of chunks with room, one per table (the chunks
    /// of objects charged to no pool: the root pool, the boot memory).
    pub(super) kernel_rooms: [u32; TABLES],
}

/// An object kept in one of the [`Kernel`]'s tables.
pub trait Stored: Sized {
    /// Its table's number (its list of chunks with room in
    /// [`Pool::rooms`]).
    const TABLE: usize;
    fn table(k: &mut Kernel) -> &mut Slab<Self>;
}

macro_rules! stored {
    ($($t:ty => $field:ident, $n:expr;)*) => {$(
        impl Stored for $t {
            const TABLE: usize = $n;
            #[inline(always)]
            fn table(k: &mut Kernel) -> &mut Slab<Self> {
                &mut k.$field
            }
        }
    )*};
}

stored! {
    Pool => pools, 0;
    crate::task::Task => tasks, 1;
    Box<Thread> => threads, 2;
    Box<Endpoint> => endpoints, 3;
    Notification => notifications, 4;
    Memory => memories, 5;
    Irq => irqs, 6;
    CapNode => caps, 7;
}

/// Work units ([`Kernel::work_left`]) per kernel entry: with the entry's
/// own work and the piece that crosses the line, well under the 50,000
/// instructions a masked stretch may take.
pub const WORK_BUDGET: u32 = 12_000;

/// [`Kernel`]'s fields but `cpus`, with their first values, listed once:
/// for [`Kernel::new`] and for [`prepare`], which writes them in place.
macro_rules! first_values {
    ($($field:ident: $value:expr,)*) => {
        impl Kernel {
            // (Tables of their own, for ktests; built everywhere: its
            // literal is what checks that the list names every field.)
            #[cfg_attr(not(feature = "ktest"), allow(dead_code))]
            pub(crate) const fn new() -> Self {
                Kernel {
                    cpus: [const { CpuState::new() }; MAX_CPUS],
                    $($field: $value,)*
                }
            }

            /// Write every field of the tables at `k` but `cpus` (left as
            /// they are) with its first value, in place (not a whole
            /// `Kernel` built and copied: over 5 KiB).
            ///
            /// # Safety
            /// `k` is valid for writes and aligned, and nothing refers to
            /// it (what it held is not dropped).
            unsafe fn write_all_but_cpus(k: *mut Kernel) {
                // SAFETY: the caller's promise; each write is to one field.
                $(unsafe { core::ptr::addr_of_mut!((*k).$field).write($value) };)*
            }
        }
    };
}

first_values! {
    pools: Slab::new(),
    tasks: Slab::new(),
    threads: Slab::new(),
    endpoints: Slab::new(),
    notifications: Slab::new(),
    memories: Slab::new(),
    irqs: Slab::new(),
    caps: Slab::new(),
    asids: crate::task::AsidAllocator::new(),
    task_cost: crate::task::TASK_COST + abi::PAGE_SIZE as u64,
    init_task: None,
    reclaim_pending: 0,
    teardown_pending: 0,
    deferred: 0,
    work_left: WORK_BUDGET,
    restart: false,
    polite: false,
    tlb: crate::task::PendingFlush::new(),
    kernel_rooms: [NO_ROOM; TABLES],
}

impl Kernel {
    /// `owner`'s lists of chunks with room, one per table (`None`: the
    /// owner pool is gone).
    fn rooms(&mut self, owner: Option<Id>) -> Option<&mut [u32; TABLES]> {
        match owner {
            Some(pool) => self.pools.get_mut(pool).map(|p| &mut p.rooms),
            None => Some(&mut self.kernel_rooms),
        }
    }

    /// Store `value` in its table, charged to `pool` (`None`: to no pool):
    /// in a chunk of `pool`'s, a new one if none has room, which `pool`
    /// pays for ([`Slab::CHUNK_COST`]) and which holds a reference to it
    /// while it lasts. Without the budget or the memory for a chunk,
    /// `OutOfMemory` (`value` is dropped).
    pub fn store<T: Stored>(&mut self, pool: Option<Id>, value: T) -> Result<Id, Error> {
        let mut room = self.room_for(pool, T::TABLE, Slab::<T>::CHUNK_COST)?;
        let new = room == NO_ROOM;
        let stored = T::table(self).insert(pool, &mut room, value);
        self.stored(pool, T::TABLE, room, new, stored.is_ok(), Slab::<T>::CHUNK_COST)?;
        stored.map_err(|_| Error::OutOfMemory)
    }

    /// [`Kernel::store`]'s first half: `pool`'s list of chunks with room in
    /// table `table`, and when it is empty, `pool` charged `cost` for a new
    /// chunk.
    #[inline(never)]
    fn room_for(&mut self, pool: Option<Id>, table: usize, cost: u64) -> Result<u32, Error> {
        let room = self.rooms(pool).ok_or(Error::BadHandle)?[table];
        if let (NO_ROOM, Some(pool)) = (room, pool) {
            self.charge(pool, cost)?;
        }
        Ok(room)
    }

    /// [`Kernel::store`]'s second half: the list's new head; a new chunk
    /// (`new`) holds a reference to its pool, or the pool is refunded when
    /// the object was not stored (`ok` false: `OutOfMemory`).
    #[inline(never)]
    fn stored(
        &mut self,
        pool: Option<Id>,
        table: usize,
        room: u32,
        new: bool,
        ok: bool,
        cost: u64,
    ) -> Result<(), Error> {
        if let Some(rooms) = self.rooms(pool) {
            rooms[table] = room;
        }
        match (new, pool) {
            (true, Some(pool)) if ok => self.add_ref(ObjectRef::Pool(pool)),
            (true, Some(pool)) => self.refund(pool, cost),
            _ => {}
        }
        if ok {
            Ok(())
        } else {
            Err(Error::OutOfMemory)
        }
    }

    /// Remove an object from its table: the object. A chunk it leaves
    /// empty is freed, its owner refunded and the chunk's reference to it
    /// dropped.
    pub fn unstore<T: Stored>(&mut self, id: Id) -> Option<T> {
        let owner = T::table(self).owner(id)?;
        // (Its owner lives: the chunk holds a reference to it.)
        let mut room = self.rooms(owner)?[T::TABLE];
        let (value, freed) = T::table(self).remove(id, &mut room)?;
        self.unstored(owner, T::TABLE, room, freed, Slab::<T>::CHUNK_COST);
        Some(value)
    }

    /// An object gone as far as its pool is concerned (refunded, its
    /// reference to the pool dropped) stays in its table until a CPU
    /// leaves it ([`Slab::linger`]: a dead thread's TCB, a task's tables):
    /// it no longer keeps its chunk charged to the pool. A chunk left with
    /// such objects alone is refunded and drops its reference, so the pool
    /// is whole, and can go, at once. `pool` is the object's pool, whose
    /// chunks alone hold its objects ([`Kernel::store`]): it lives, as its
    /// chunk holds a reference to it.
    pub fn linger<T: Stored>(&mut self, id: Id, pool: Id) {
        let Some(mut room) = self.rooms(Some(pool)).map(|r| r[T::TABLE]) else {
            return;
        };
        let orphaned = T::table(self).linger(id, &mut room);
        self.unstored(Some(pool), T::TABLE, room, orphaned, Slab::<T>::CHUNK_COST);
    }

    /// [`Kernel::unstore`]'s end (and [`Kernel::linger`]'s): the owner's
    /// list's new head; a chunk freed or orphaned: its cost refunded and
    /// its reference dropped.
    #[inline(never)]
    fn unstored(&mut self, owner: Option<Id>, table: usize, room: u32, freed: bool, cost: u64) {
        if let Some(rooms) = self.rooms(owner) {
            rooms[table] = room;
        }
        if let (true, Some(pool)) = (freed, owner) {
            self.refund(pool, cost);
            self.release(ObjectRef::Pool(pool));
        }
    }

    /// Spend `units` of this entry's work budget; whether any is left.
    #[inline]
    pub fn spend(&mut self, units: u32) -> bool {
        self.work_left = self.work_left.saturating_sub(units);
        self.work_left > 0
    }

    /// Whether work is deferred to the end of system calls: pools to
    /// reclaim, tasks to tear down (one test on every call's way out).
    #[inline(always)]
    pub fn work_pending(&self) -> bool {
        self.deferred != 0
    }

    /// The sum [`Kernel::work_pending`] tests (for the self-check).
    pub fn deferred(&self) -> u32 {
        self.deferred
    }

    /// A pool was marked for reclaim.
    pub fn defer_reclaim(&mut self) {
        self.reclaim_pending += 1;
        self.deferred += 1;
    }

    /// A task is to be torn down.
    pub fn defer_teardown(&mut self) {
        self.teardown_pending += 1;
        self.deferred += 1;
    }

    /// A task's teardown ended.
    pub fn teardown_done(&mut self) {
        if self.teardown_pending > 0 {
            self.teardown_pending -= 1;
            self.deferred -= 1;
        }
    }

    /// Whether this entry's work budget lasts.
    #[inline]
    pub fn has_work_left(&self) -> bool {
        self.work_left > 0
    }

    /// Kill every task charged to the pools queued for reclaim, or to pools
    /// made from them.
    pub fn process_reclaims(&mut self) {
        while self.reclaim_pending > 0 {
            self.reclaim_pending -= 1;
            self.deferred -= 1;
            // (A marked pool that is gone already took its mark with it.)
            let Some(pool) = self.pools.iter().find(|(_, p)| p.reclaim).map(|(id, _)| id) else {
                continue;
            };
            if let Some(p) = self.pools.get_mut(pool) {
                p.reclaim = false;
            }
            // One task at a time (nothing here allocates); a killed task is
            // no longer alive, so each pass finds the next.
            loop {
                let doomed = self
                    .tasks
                    .iter()
                    .find(|(_, t)| t.alive && self.pool_within(t.pool, pool))
                    .map(|(id, _)| id);
                let Some(t) = doomed else { break };
                crate::task::kill(self, t);
            }
        }
    }

    /// Whether `pool` is `ancestor` or was made from it.
    fn pool_within(&self, mut pool: Id, ancestor: Id) -> bool {
        for _ in 0..64 {
            if pool == ancestor {
                return true;
            }
            match self.pools.get(pool).and_then(|p| p.parent) {
                Some(parent) => pool = parent,
                None => return false,
            }
        }
        false
    }

    /// Objects alive (for leak checks).
    pub fn objects_alive(&self) -> u64 {
        // Dead threads whose TCB waits for its CPU to switch away are gone
        // already as far as memory is concerned.
        let threads = self.threads.iter().filter(|(_, t)| !t.refunded).count();
        let tasks = self.tasks.iter().filter(|(_, t)| !t.free_pending).count();
        (self.pools.len()
            + tasks
            + threads
            + self.endpoints.len()
            + self.notifications.len()
            + self.memories.len()
            + self.irqs.len()
            + self.caps.len()) as u64
    }

    /// Take `bytes` from a pool's budget.
    pub fn charge(&mut self, pool: Id, bytes: u64) -> Result<(), Error> {
        let p = self.pools.get_mut(pool).ok_or(Error::BadHandle)?;
        if p.bytes_left < bytes {
            return Err(Error::OutOfMemory);
        }
        p.bytes_left -= bytes;
        Ok(())
    }

    /// Give `bytes` back to a pool (to its parent if it is gone).
    pub fn refund(&mut self, pool: Id, bytes: u64) {
        if let Some(p) = self.pools.get_mut(pool) {
            p.bytes_left += bytes;
        }
    }

    /// One more reference (capability or internal) to an object.
    pub fn add_ref(&mut self, object: ObjectRef) {
        if let Some(refs) = self.refs_mut(object) {
            *refs += 1;
        }
    }

    fn refs_mut(&mut self, object: ObjectRef) -> Option<&mut u32> {
        Some(match object {
            ObjectRef::Pool(id) => &mut self.pools.get_mut(id)?.refs,
            ObjectRef::Task(id) => &mut self.tasks.get_mut(id)?.refs,
            ObjectRef::Thread(id) => &mut self.threads.get_mut(id)?.refs,
            ObjectRef::Endpoint(id) => &mut self.endpoints.get_mut(id)?.refs,
            ObjectRef::Notification(id) => &mut self.notifications.get_mut(id)?.refs,
            ObjectRef::Memory(id) => &mut self.memories.get_mut(id)?.refs,
            ObjectRef::Irq(id) => &mut self.irqs.get_mut(id)?.refs,
            ObjectRef::Console | ObjectRef::Counters => return None,
        })
    }

    /// Drop a reference; the last one destroys the object.
    pub fn release(&mut self, object: ObjectRef) {
        let Some(refs) = self.refs_mut(object) else { return };
        *refs = refs.saturating_sub(1);
        let left = *refs;
        if left > 0 {
            if let (1, ObjectRef::Thread(id)) = (left, object) {
                crate::thread::unreachable(self, id);
            }
            return;
        }
        match object {
            ObjectRef::Pool(id) => {
                if let Some(p) = self.unstore::<Pool>(id) {
                    if let Some(parent) = p.parent {
                        self.refund(parent, p.bytes_left);
                        self.release(ObjectRef::Pool(parent));
                    }
                }
            }
            ObjectRef::Task(id) => crate::task::destroy_object(self, id),
            ObjectRef::Thread(id) => crate::thread::destroy_object(self, id),
            ObjectRef::Endpoint(id) => crate::ipc::destroy_endpoint(self, id),
            ObjectRef::Notification(id) => crate::ipc::destroy_notification(self, id),
            ObjectRef::Memory(id) => {
                if let Some(m) = self.unstore::<Memory>(id) {
                    if m.kind == MemoryKind::Ram {
                        crate::syscall::free_frames(m.physical, m.pages, m.extents.as_deref());
                    }
                    if let Some(pool) = m.pool {
                        self.refund(pool, m.charge);
                        self.release(ObjectRef::Pool(pool));
                    }
                }
            }
            ObjectRef::Irq(id) => {
                if let Some(irq) = self.unstore::<Irq>(id) {
                    crate::irq::unbind(irq.intid);
                    self.release(ObjectRef::Pool(irq.pool));
                }
            }
            ObjectRef::Console | ObjectRef::Counters => {}
        }
    }
}

/// The kernel lock: a spin lock at a fixed, named, page-aligned address,
/// because the exit path (`user_entry.S`) releases it when a CPU switches
/// threads: only after it has stored the outgoing thread's callee-saved
/// registers (see [`KernelGuard::release_at_exit`]). Page-aligned, its
/// address is one `adrp` (and it shares its cache line with nothing).
#[repr(C, align(4096))]
pub struct KernelLock(AtomicBool);

#[no_mangle]
static KERNEL_LOCK: KernelLock = KernelLock(AtomicBool::new(false));

/// [`KERNEL_LOCK`]'s word. Its address is one `adrp` (page-aligned: the low
/// 12 bits are zero), which the compiler cannot know: it would add them.
#[inline(always)]
fn lock_word() -> &'static AtomicBool {
    let p: *const KernelLock;
    // SAFETY: computes the (page-aligned) address of KERNEL_LOCK; no access.
    unsafe {
        core::arch::asm!(
            "adrp {}, KERNEL_LOCK",
            out(reg) p,
            options(pure, nomem, nostack, preserves_flags)
        )
    };
    // SAFETY: `p` is KERNEL_LOCK's address.
    unsafe { &(*p).0 }
}

/// The object tables (empty until [`init`]), in static memory at a fixed
/// address, reached only through a [`KernelGuard`]. Zero bytes until
/// [`prepare`] (first thing at boot) writes them: they take no room in
/// the kernel image (`.bss`, zero-filled at boot, not stored).
struct Tables(UnsafeCell<core::mem::MaybeUninit<Kernel>>);

// SAFETY: the tables are reached only through a `KernelGuard`, which exists
// only while this CPU holds `KERNEL_LOCK`.
unsafe impl Sync for Tables {}

static KERNEL: Tables = Tables(UnsafeCell::new(core::mem::MaybeUninit::zeroed()));

/// Write the (empty) object tables: the boot CPU's first step
/// (`kernel_main`), before any CPU can take the kernel lock. Each field in
/// place; the CPUs' states (most of the tables' bytes) are left as the
/// zero bytes they are, which are [`CpuState::new`]'s.
#[inline(never)]
pub fn prepare() {
    let () = crate::sched::ZEROED_IS_NEW;
    // SAFETY: nothing refers to the tables yet: no CPU but this one runs
    // and no guard exists (this is the boot CPU's first step), and the
    // static holds zero bytes (nothing to drop). With every other field
    // written they are `Kernel::new()`: zero bytes are each CPU's
    // `CpuState::new()` (`sched::ZEROED_IS_NEW`).
    unsafe { Kernel::write_all_but_cpus(KERNEL.0.get().cast()) };
}

/// Whether [`init`] ran.
static INITIALISED: AtomicBool = AtomicBool::new(false);

/// The kernel's objects, locked for this CPU until the guard drops.
pub struct KernelGuard(());

impl core::ops::Deref for KernelGuard {
    type Target = Kernel;
    #[inline(always)]
    fn deref(&self) -> &Kernel {
        // SAFETY: the guard holds the lock; `prepare` wrote the tables.
        unsafe { (*KERNEL.0.get()).assume_init_ref() }
    }
}

impl core::ops::DerefMut for KernelGuard {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut Kernel {
        // SAFETY: the guard holds the lock, and `&mut self` makes this the
        // only reference through it; `prepare` wrote the tables.
        unsafe { (*KERNEL.0.get()).assume_init_mut() }
    }
}

impl Drop for KernelGuard {
    #[inline(always)]
    fn drop(&mut self) {
        lock_word().store(false, Ordering::Release);
    }
}

impl KernelGuard {
    /// Keep the lock held past this function: the exit path
    /// (`user_entry.S`, `el0_exit`) releases it right after it has stored
    /// the callee-saved registers of the thread this CPU leaves. Until then
    /// no other CPU may see that thread runnable, or it could resume it
    /// from a context without those registers.
    #[inline(always)]
    pub fn release_at_exit(self) {
        core::mem::forget(self);
    }
}

/// CPUs waiting for the kernel lock, and how many waits have ended: a CPU
/// that restarts a long system call lets a waiter in first
/// ([`let_waiters_in`]). (The lock is not fair: a CPU that releases it and
/// takes it again at once could keep it from a CPU that waits.)
static WAITING: AtomicU32 = AtomicU32::new(0);
static SERVED: AtomicU32 = AtomicU32::new(0);

/// Take the kernel lock.
#[inline(always)]
pub fn lock() -> KernelGuard {
    if lock_word()
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        lock_contended();
    }
    KernelGuard(())
}

/// [`lock`] when the first try failed: as `spin::Mutex`, try, and while
/// taken, wait reading only; counted in [`WAITING`] and [`SERVED`].
#[cold]
#[inline(never)]
fn lock_contended() {
    WAITING.fetch_add(1, Ordering::Relaxed);
    let word = lock_word();
    while word
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        while word.load(Ordering::Relaxed) {
            core::hint::spin_loop();
        }
    }
    WAITING.fetch_sub(1, Ordering::Relaxed);
    SERVED.fetch_add(1, Ordering::Relaxed);
}

/// Called without the lock by a CPU that is about to take it again for
/// more of the same work (a restarted system call, the idle loop's
/// teardown): if another CPU waits for it, wait (a bounded time) until one
/// got it. `yield` hands the host CPU to another virtual CPU where QEMU
/// runs them in turn (as under `-icount`); elsewhere it is a hint.
pub fn let_waiters_in() {
    if WAITING.load(Ordering::Relaxed) == 0 {
        return;
    }
    let served = SERVED.load(Ordering::Relaxed);
    for _ in 0..100_000 {
        if SERVED.load(Ordering::Relaxed) != served || WAITING.load(Ordering::Relaxed) == 0 {
            return;
        }
        // SAFETY: a hint instruction.
        unsafe { core::arch::asm!("yield", options(nomem, nostack, preserves_flags)) };
    }
}

/// Take the kernel lock if it is free (one attempt): for the IPC fast
/// path, which leaves contention to the general path. A guard is made only
/// when the lock was taken: one made and dropped on failure would release
/// the lock another CPU holds (`bool::then_some` would do just that).
#[inline(always)]
pub fn try_lock() -> Option<KernelGuard> {
    if lock_word()
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
    {
        Some(KernelGuard(()))
    } else {
        None
    }
}

crate::ktest!(
    fn try_lock_leaves_a_held_lock_held() {
        // Whoever holds the lock keeps it while others try for it: a failed
        // attempt must not release it (two CPUs would then be inside).
        let guard = lock();
        let first = try_lock().is_none();
        let second = try_lock().is_none();
        let still_held = lock_word().load(Ordering::Relaxed);
        drop(guard);
        crate::kassert!(first, "try_lock took a held lock");
        crate::kassert!(second, "a failed try_lock released the lock");
        crate::kassert!(still_held, "the lock is free while its guard lives");
        crate::kassert!(
            !lock_word().load(Ordering::Relaxed),
            "dropping the guard left the lock taken"
        );
        let g = try_lock();
        crate::kassert!(g.is_some(), "try_lock failed on a free lock");
        Ok(())
    }
);

/// Make the object tables usable (they start empty).
pub fn init() -> bool {
    INITIALISED.store(true, Ordering::Release);
    true
}

/// Whether the object tables exist (user space has been started).
pub fn is_initialised() -> bool {
    INITIALISED.load(Ordering::Acquire)
}
