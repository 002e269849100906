//! Console output, kernel statistics and system control (power off, reboot).

use super::{arg, object, regs, task_of};
use crate::object::{Id, Kernel, ObjectRef};
use crate::task;
use abi::{Error, Rights};

/// Most bytes one ConsoleWrite prints.
const CONSOLE_WRITE_MAX: usize = 256;

pub(super) fn console_write(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    if object(k, cur, 0, Rights::WRITE)?.1 != ObjectRef::Console {
        return Err(Error::WrongType);
    }
    let (va, len) = (arg(k, cur, 1), arg(k, cur, 2) as usize);
    if len > CONSOLE_WRITE_MAX {
        return Err(Error::InvalidArgument);
    }
    let mut buf = [0u8; CONSOLE_WRITE_MAX];
    let task = task_of(k, cur)?;
    task::copy_from_user(k, task, va, &mut buf[..len])?;
    let text = core::str::from_utf8(&buf[..len]).unwrap_or("<invalid UTF-8>");
    crate::console::with_writer(crate::console::Source::Task(task), |w| {
        let _ = w.write_str(text);
    });
    Ok(())
}

/// [`Syscall::KernelStats`]: needs the counters with `READ`.
pub(super) fn kernel_stats(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    if object(k, cur, 0, Rights::READ)?.1 != ObjectRef::Counters {
        return Err(Error::WrongType);
    }
    let objects = k.objects_alive();
    let (_, heap_used) = crate::mm::heap::stats();
    let r = regs(k, cur);
    r[1] = objects;
    r[2] = crate::mm::available_bytes();
    r[3] = heap_used as u64;
    Ok(())
}

/// [`Syscall::SystemControl`] operations (`x1`).
const POWER_OFF: u64 = 0;
const REBOOT: u64 = 1;
/// Test image only: run the kernel's self-check ([`crate::object::check`]);
/// needs no capability (it changes nothing and tells only whether the
/// kernel's tables agree). `InvalidState` if they do not (the reason is
/// logged); `NotSupported` in the production image.
const SELF_CHECK: u64 = 2;
/// Test image only: the longest interrupts-masked stretch on any CPU since
/// the last such call, in instructions (`x1`; [`crate::masked`]), and a
/// fresh start. `NotSupported` where it is not measured (no `-icount`) and
/// in the production image.
const MASKED_MAX: u64 = 3;

fn self_check(k: &Kernel) -> Result<(), Error> {
    #[cfg(feature = "ktest")]
    {
        let result = crate::object::check::self_check(k).map_err(|e| {
            crate::error!("self-check: {e}");
            Error::InvalidState
        });
        // A test-only walk of every table: not a masked stretch to count.
        crate::masked::masking();
        result
    }
    #[cfg(not(feature = "ktest"))]
    {
        let _ = k;
        Err(Error::NotSupported)
    }
}

pub(super) fn system_control(k: &mut Kernel, cur: Id) -> Result<(), Error> {
    // The operation first: a program without the right can still learn
    // that it asked for something that does not exist.
    let reboot = match arg(k, cur, 1) {
        POWER_OFF => false,
        REBOOT => true,
        SELF_CHECK => return self_check(k),
        MASKED_MAX if cfg!(feature = "ktest") => {
            let max = crate::masked::take_max().ok_or(Error::NotSupported)?;
            regs(k, cur)[1] = max;
            return Ok(());
        }
        _ => return Err(Error::InvalidArgument),
    };
    if object(k, cur, 0, Rights::MANAGE)?.1 != ObjectRef::Console {
        return Err(Error::WrongType);
    }
    if !crate::power::can_power_off() {
        return Err(Error::NotSupported);
    }
    let task = task_of(k, cur)?;
    let name = k.tasks.get(task).map(|t| t.name).unwrap_or_default();
    crate::info!(
        "power: {} requested by task {}",
        if reboot { "reboot" } else { "power off" },
        abi::boot_info::nul_terminated(&name)
    );
    if reboot {
        crate::power::reboot()
    } else {
        crate::power::power_off()
    }
}
