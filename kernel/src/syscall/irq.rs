//! Interrupt system calls: make an interrupt object (init), bind a line to
//! a notification, acknowledge.

use super::{arg, give, object, pool_arg};
use crate::object::{Id, Irq, Kernel, ObjectRef};
use abi::{Error, Rights};

/// An interrupt object for SPI `x2`, charged to pool `x0`, with the
/// console (`MANAGE`) in `x1` as the authority (see `abi::Syscall::IrqCreate`).
pub(super) fn irq_create(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let pool = pool_arg(k, cur, 0, Rights::WRITE)?;
    if object(k, cur, 1, Rights::MANAGE)?.1 != ObjectRef::Console {
        return Err(Error::WrongType);
    }
    let intid = u32::try_from(arg(k, cur, 2)).map_err(|_| Error::InvalidArgument)?;
    if !(hal::gic::FIRST_SPI..hal::gic::SPECIAL_INTIDS).contains(&intid) {
        return Err(Error::InvalidArgument);
    }
    // One object per line: interrupts are delivered to the first one found.
    if k.irqs.iter().any(|(_, i)| i.intid == intid) {
        return Err(Error::InvalidState);
    }
    // (Its entry is all it takes: in a chunk its pool pays for.)
    let irq = Irq {
        intid,
        notification: None,
        refs: 0,
        pool,
    };
    let id = k.store(Some(pool), irq)?;
    k.add_ref(ObjectRef::Pool(pool));
    let object = ObjectRef::Irq(id);
    give(k, cur, object, Rights::MANAGE | Rights::GRANT)
}

pub(super) fn irq_bind(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let ObjectRef::Irq(irq) = object(k, cur, 0, Rights::MANAGE)?.1 else {
        return Err(Error::WrongType);
    };
    let ObjectRef::Notification(n) = object(k, cur, 1, Rights::SEND)?.1 else {
        return Err(Error::WrongType);
    };
    let bits = arg(k, cur, 2);
    if bits == 0 {
        return Err(Error::InvalidArgument);
    }
    // A weak link: the binding does not keep the notification alive.
    k.irqs.get_mut(irq).ok_or(Error::BadHandle)?.notification = Some((n, bits));
    let intid = k.irqs.get(irq).map_or(0, |i| i.intid);
    crate::irq::bind(intid, irq);
    Ok(())
}

pub(super) fn irq_ack(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let ObjectRef::Irq(irq) = object(k, cur, 0, Rights::MANAGE)?.1 else {
        return Err(Error::WrongType);
    };
    let intid = k.irqs.get(irq).ok_or(Error::BadHandle)?.intid;
    crate::irq::unmask(intid);
    Ok(())
}
