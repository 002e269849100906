//! `Create`: new pools, tasks, endpoints, notifications and memory.

use super::memory::create_memory_call;
use super::{arg, give, pool_arg};
use crate::object::{Id, Kernel, ObjectRef, Pool};
use crate::{ipc, task};
use abi::{Error, ObjectType, Rights};

pub(super) fn create(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    let kind = ObjectType::from_word(arg(k, cur, 1));
    // Allocating needs WRITE on the pool; splitting a pool off it, MANAGE.
    let need = if kind == Some(ObjectType::Pool) {
        Rights::MANAGE
    } else {
        Rights::WRITE
    };
    let pool = pool_arg(k, cur, 0, need)?;
    let size = arg(k, cur, 2);
    let object = match kind {
        Some(ObjectType::Pool) => {
            k.charge(pool, size)?;
            match k.store(Some(pool), Pool::new(size, Some(pool))) {
                Ok(id) => {
                    k.add_ref(ObjectRef::Pool(pool));
                    ObjectRef::Pool(id)
                }
                Err(_) => {
                    k.refund(pool, size);
                    return Err(Error::OutOfMemory);
                }
            }
        }
        Some(ObjectType::Task) => ObjectRef::Task(task::create(k, pool, "task")?),
        Some(ObjectType::Endpoint) => ObjectRef::Endpoint(ipc::create_endpoint(k, pool)?),
        Some(ObjectType::Notification) => ObjectRef::Notification(ipc::create_notification(k, pool)?),
        Some(ObjectType::Memory) => match create_memory_call(k, cur, pool, size, arg(k, cur, 3))? {
            Some(id) => ObjectRef::Memory(id),
            // Zeroed in part: the call is made again (`Kernel::restart`).
            None => return Ok(()),
        },
        _ => return Err(Error::InvalidArgument),
    };
    give(k, cur, object, Rights::FULL)
}
