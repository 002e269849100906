//! Powering off, and stopping the machine on a fatal error.

use crate::{irq, percpu};
use core::sync::atomic::Ordering;
use hal::dt::PsciConduit;

/// PSCI SYSTEM_RESET (PSCI 0.2 and later, like SYSTEM_OFF).
const PSCI_SYSTEM_RESET: u32 = 0x8400_0009;

struct PowerOff {
    conduit: PsciConduit,
    /// SYSTEM_OFF function ID.
    function: u32,
}

static PSCI_OFF: spin::Once<Option<PowerOff>> = spin::Once::new();

/// Remember how this machine powers off (PSCI from the device tree, if any).
pub fn init(psci: Option<&hal::dt::Psci>) {
    PSCI_OFF.call_once(|| {
        psci.and_then(|p| {
            p.system_off.map(|function| PowerOff {
                conduit: p.conduit,
                function,
            })
        })
    });
}

fn psci() -> Option<&'static PowerOff> {
    PSCI_OFF.get().and_then(Option::as_ref)
}

/// Whether [`power_off`] and [`reboot`] work here (PSCI 0.2 or later);
/// without, they only halt the CPUs.
pub fn can_power_off() -> bool {
    psci().is_some()
}

/// Power the machine off; without PSCI, halt every CPU.
pub fn power_off() -> ! {
    stop_other_cpus();
    if let Some(off) = psci() {
        let error = hal::psci::system_off(off.conduit, off.function);
        crate::error!("power: PSCI SYSTEM_OFF failed: {error}");
    } else {
        crate::info!("power: no PSCI on this machine; halting");
    }
    hal::cpu::halt()
}

/// Reset the machine (PSCI SYSTEM_RESET); without PSCI, or if the
/// firmware refuses, halt every CPU.
pub fn reboot() -> ! {
    stop_other_cpus();
    if let Some(off) = psci() {
        let error = hal::psci::system_reset(off.conduit, PSCI_SYSTEM_RESET);
        crate::error!("power: PSCI SYSTEM_RESET failed ({error}); halting");
    } else {
        crate::info!("power: no PSCI on this machine; halting");
    }
    hal::cpu::halt()
}

/// Why the kernel stopped; test images report it as the semihosting exit code.
#[derive(Clone, Copy, Debug)]
pub enum Fatal {
    Panic = 101,
    KernelFault = 102,
    BootError = 103,
}

fn stop_other_cpus() {
    let me = percpu::index();
    for cpu in percpu::all().iter() {
        let i = cpu.index();
        if i != me && cpu.online.load(Ordering::Relaxed) {
            irq::send_ipi(i, irq::SGI_STOP);
        }
    }
}

/// Set once a CPU is on its way down, so a fault while reporting (e.g. a
/// semihosting call without `-semihosting`) cannot recurse.
static GOING_DOWN: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Stop the system after a fatal error. The test image tells QEMU why.
pub fn fatal(why: Fatal) -> ! {
    if GOING_DOWN.swap(true, Ordering::SeqCst) {
        hal::cpu::halt();
    }
    stop_other_cpus();
    #[cfg(feature = "ktest")]
    hal::semihosting::exit(why as u32);
    #[cfg(not(feature = "ktest"))]
    {
        let _ = why;
        hal::cpu::halt()
    }
}

/// Leave the test image with `code` (0 = all passed).
#[cfg(feature = "ktest")]
pub fn test_exit(code: u32, use_psci: bool) -> ! {
    if use_psci {
        power_off();
    }
    stop_other_cpus();
    hal::semihosting::exit(code)
}
