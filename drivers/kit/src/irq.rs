//! An interrupt line delivered to this task as a notification.

use userlib::abi::ObjectType;
use userlib::{process, syscall, Error, Handle, Timeout};

/// Bit of the notification the interrupt sets.
const IRQ_BIT: u64 = 1;

/// An interrupt, bound to a notification of this task. The kernel masks
/// the line after each delivery until [`Interrupt::ack`].
pub struct Interrupt {
    irq: Handle,
    notification: Handle,
}

impl Interrupt {
    /// Binds `irq` to a new notification from this task's pool.
    pub fn new(irq: Handle) -> Result<Interrupt, Error> {
        let notification = syscall::create(process().pool, ObjectType::Notification, 0)?;
        if let Err(e) = syscall::irq_bind(irq, notification, IRQ_BIT) {
            let _ = syscall::cap_delete(notification);
            return Err(e);
        }
        Ok(Interrupt { irq, notification })
    }

    /// Waits for the interrupt (`TimedOut` after `timeout`).
    pub fn wait(&self, timeout: Timeout) -> Result<(), Error> {
        syscall::wait(self.notification, timeout).map(drop)
    }

    /// Unmasks the line once the device's interrupt is cleared.
    pub fn ack(&self) -> Result<(), Error> {
        syscall::irq_ack(self.irq)
    }

    /// Delivers the interrupt as `bits` on another task's notification
    /// (`SEND`) from now on, instead of this one's: a client that waits
    /// for the device's events itself (the network stack) then needs no
    /// thread here to pass them on. The line stays masked after each
    /// delivery until [`Interrupt::ack`], as before; the kernel holds the
    /// binding weakly, so when that notification goes, interrupts are
    /// dropped until the next `deliver_to`.
    pub fn deliver_to(&self, notification: Handle, bits: u64) -> Result<(), Error> {
        syscall::irq_bind(self.irq, notification, bits)
    }

    /// The notification, for a thread that waits on several sources.
    pub fn notification(&self) -> Handle {
        self.notification
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        let _ = syscall::cap_delete(self.notification);
    }
}
