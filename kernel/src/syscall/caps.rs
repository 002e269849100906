//! Capability system calls: copy, mint, delete, revoke, info.

use super::{arg, regs, task_of};
use crate::cap;
use crate::object::{Id, Kernel, ObjectRef};
use abi::{Error, Rights};

pub(super) fn cap_copy(k: &mut Kernel, cur: Id, mint: bool) -> Result<(), Error> {
    let task = task_of(k, cur)?;
    let source = cap::lookup(k, task, cap::handle_arg(arg(k, cur, 0))?)?;
    let rights = Rights::from_bits_truncate(arg(k, cur, 1) as u32);
    let badge = mint.then(|| arg(k, cur, 2));
    let h = cap::derive(k, source, task, rights, badge)?;
    regs(k, cur)[1] = h.0 as u64;
    Ok(())
}

pub(super) fn cap_delete(k: &mut Kernel, cur: Id, revoke: bool) -> Result<(), Error> {
    let task = task_of(k, cur)?;
    let id = cap::lookup(k, task, cap::handle_arg(arg(k, cur, 0))?)?;
    // Both go in pieces: out of work budget, the call is made again and
    // goes on (a capability being deleted is `dying` meanwhile).
    let done = if revoke {
        if k.caps.get(id).is_some_and(|n| n.dying) {
            return Err(Error::InvalidState);
        }
        cap::revoke(k, id)
    } else {
        cap::delete_piece(k, id)
    };
    k.restart = !done;
    Ok(())
}

pub(super) fn cap_info(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let task = task_of(k, cur)?;
    let id = cap::lookup(k, task, cap::handle_arg(arg(k, cur, 0))?)?;
    let node = k.caps.get(id).ok_or(Error::BadHandle)?;
    let (object, rights, badge) = (node.object, node.rights, node.badge);
    let size = match object {
        ObjectRef::Pool(p) => k.pools.get(p).map_or(0, |p| p.bytes_left),
        ObjectRef::Memory(m) => k.memories.get(m).map_or(0, |m| (m.pages * abi::PAGE_SIZE) as u64),
        _ => 0,
    };
    let ty = object.object_type(k) as u64;
    let r = regs(k, cur);
    r[1] = ty;
    r[2] = rights.bits() as u64;
    r[3] = badge;
    r[4] = size;
    Ok(())
}
