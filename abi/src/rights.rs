//! Rights carried by a capability.

bitflags::bitflags! {
    /// What a capability allows. Derived capabilities only ever lose rights.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Rights: u32 {
        /// Map memory readable; read state.
        const READ = 1 << 0;
        /// Map memory writable; change state.
        const WRITE = 1 << 1;
        /// Map memory executable.
        const EXECUTE = 1 << 2;
        /// Map the object into an address space at all.
        const MAP = 1 << 3;
        /// Copy, mint or transfer this capability.
        const GRANT = 1 << 4;
        /// Send on an endpoint / signal a notification.
        const SEND = 1 << 5;
        /// Receive on an endpoint / wait on a notification.
        const RECEIVE = 1 << 6;
        /// Manage the object: start/stop threads, install capabilities into
        /// a task, create objects from a pool, bind an IRQ.
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
