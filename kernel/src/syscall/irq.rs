//! Interrupt system calls: bind a line to a notification, acknowledge.

use super::{arg, object};
use crate::object::{Id, Kernel, ObjectRef};
use abi::{Error, Rights};

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
