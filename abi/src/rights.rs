//! Rights carried by a capability.

bitflags::bitflags! {
    /// What a capability allows. Derived capabilities only ever lose rights.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Rights: u32 {
        /// Map memory readable; read state (a task's information); on the
        /// counters: kernel statistics and the cycle counter.
        const READ = 1 << 0;
        /// Map memory writable; change state: allocate objects from a pool,
        /// start threads in a task.
        const WRITE = 1 << 1;
        /// Map memory executable.
        const EXECUTE = 1 << 2;
        /// Map the object into an address space at all; on a task: map
        /// memory into (and unmap from) its address space.
        const MAP = 1 << 3;
        /// Copy, mint or transfer this capability.
        const GRANT = 1 << 4;
        /// Send on an endpoint / signal a notification.
        const SEND = 1 << 5;
        /// Receive on an endpoint / wait on a notification.
        const RECEIVE = 1 << 6;
        /// Manage the object: start/stop and configure threads, install
        /// capabilities into a task or destroy it, split a pool off a pool,
        /// bind an IRQ, create device memory and control the system (the
        /// console). A task gets no MANAGE on its own task, and on its own
        /// pool only when it starts other programs (`userlib::loader`).
        const MANAGE = 1 << 7;
    }
}

impl Rights {
    /// Rights to a newly created object.
    pub const FULL: Rights = Rights::all();

    /// Rights `self` may pass on with `requested`: never more than held.
    pub fn derive(self, requested: Rights) -> Rights {
        self & requested
    }
}
