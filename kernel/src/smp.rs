//! Starting the other CPUs the device tree lists.

use crate::mm::{frames, kernel_space, layout};
use crate::{arch, irq, percpu, time, MAX_CPUS};
use core::sync::atomic::Ordering;
use hal::dt::{EnableMethod, Machine};

/// How long a CPU may take to report in.
const START_TIMEOUT_MICROS: u64 = 1_000_000;

/// Start every CPU in the device tree; returns how many are online
/// (including this one) out of how many the tree lists.
pub fn start_secondaries(machine: &Machine, image_pa: u64) -> (usize, usize) {
    let me = hal::cpu::mpidr_affinity(hal::cpu::mpidr());
    let entry = image_pa + boot::secondary_entry_offset();
    let mut next_index = 1;
    for cpu in machine.cpus.iter() {
        if hal::cpu::mpidr_affinity(cpu.mpidr) == me {
            continue;
        }
        if next_index >= MAX_CPUS {
            crate::warn!(
                "smp: CPU {:#x} not started: the kernel runs at most {MAX_CPUS} CPUs",
                cpu.mpidr
            );
            continue;
        }
        let index = next_index;
        match start_one(machine, cpu, index, entry) {
            Ok(()) => next_index += 1,
            Err(why) => crate::warn!("smp: CPU {:#x} did not start: {why}", cpu.mpidr),
        }
    }
    (next_index, machine.cpus.len().max(1))
}

fn start_one(machine: &Machine, cpu: &hal::dt::Cpu, index: usize, entry: u64) -> Result<(), &'static str> {
    let pages = (layout::STACK_SIZE / layout::PAGE_SIZE) as usize;
    let stack_pa = frames::alloc_zeroed(pages).ok_or("no memory for its stack")?;
    let stack_top = kernel_space::map_stack(index, stack_pa).map_err(|_| "cannot map its stack")?;
    let mailbox = &boot::SECONDARY_MAILBOX;
    mailbox.stack_top.store(stack_top, Ordering::SeqCst);
    mailbox.cpu_index.store(index as u64, Ordering::SeqCst);
    // The CPU reads the mailbox with its MMU off, straight from memory.
    hal::cpu::clean_dcache_to_poc(mailbox as *const _ as usize, core::mem::size_of_val(mailbox));

    match cpu.enable {
        EnableMethod::Psci => {
            let psci = machine.psci.as_ref().ok_or("enable-method psci but no /psci node")?;
            hal::psci::cpu_on(psci.conduit, psci.cpu_on, cpu.mpidr, entry, 0).map_err(|_| "PSCI CPU_ON failed")?;
        }
        EnableMethod::SpinTable { release_addr } => release_spin_table(release_addr, entry)?,
        _ => return Err("no usable enable-method"),
    }
    let target = &percpu::all()[index];
    if time::wait_until(START_TIMEOUT_MICROS, || target.online.load(Ordering::Acquire)) {
        Ok(())
    } else {
        Err("timed out waiting for it to come online")
    }
}

/// Write the entry point where the parked CPU polls, then wake it.
fn release_spin_table(release_addr: u64, entry: u64) -> Result<(), &'static str> {
    let linear = layout::phys_to_virt(release_addr);
    let va = if kernel_space::is_mapped(linear) {
        linear
    } else {
        kernel_space::map_device(release_addr, 8).map_err(|_| "cannot map cpu-release-addr")?
    };
    if va % 8 != 0 {
        return Err("cpu-release-addr is not 8-byte aligned");
    }
    // SAFETY: cpu-release-addr is the 8-byte, aligned word the firmware's
    // spin loop polls (device tree contract); it is mapped at `va`.
    unsafe { core::ptr::write_volatile(va as *mut u64, entry) };
    hal::cpu::clean_dcache_to_poc(va as usize, 8);
    hal::cpu::send_event();
    Ok(())
}

/// Rust entry of a secondary CPU, from `boot`'s `entry.S`, on its own stack.
#[no_mangle]
extern "C" fn kernel_secondary_main(index: u64) -> ! {
    arch::aarch64::exceptions::install();
    let stack_top = boot::SECONDARY_MAILBOX.stack_top.load(Ordering::Acquire);
    percpu::init_this_cpu(index as usize, stack_top);
    arch::aarch64::user::init_cpu();
    hal::cpu::set_lower_half(kernel_space::empty_table_pa());
    if let Err(why) = irq::init_cpu() {
        crate::error!("smp: CPU {index}: {why}");
        hal::cpu::halt();
    }
    percpu::current().online.store(true, Ordering::Release);
    crate::info!("smp: CPU {index} online (MPIDR {:#x})", hal::cpu::mpidr());
    arch::aarch64::user::cpu_loop()
}
