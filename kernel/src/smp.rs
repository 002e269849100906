//! Starting the other CPUs the device tree lists.

use crate::cpu_slots::{Failed, Slot, Slots};
use crate::mm::{frames, kernel_space, layout};
use crate::{arch, irq, percpu, time, MAX_CPUS};
use boot::SECONDARY_MAILBOX;
use core::sync::atomic::Ordering;
use hal::dt::{EnableMethod, Machine};

/// How long a CPU may take to report in.
const START_TIMEOUT_MICROS: u64 = 1_000_000;

/// Start every CPU in the device tree; returns how many are online
/// (including this one) out of how many the tree lists.
pub fn start_secondaries(machine: &Machine, image_pa: u64) -> (usize, usize) {
    let me = hal::cpu::mpidr_affinity(hal::cpu::mpidr());
    let entry = image_pa + boot::secondary_entry_offset();
    let mut slots = Slots::new(MAX_CPUS);
    for cpu in machine.cpus.iter() {
        if hal::cpu::mpidr_affinity(cpu.mpidr) == me {
            continue;
        }
        let Some(slot) = slots.next() else {
            match slots.stuck {
                Some(index) => crate::warn!(
                    "smp: CPU {:#x} not started: a CPU took slot {index} and never came online",
                    cpu.mpidr
                ),
                None => crate::warn!(
                    "smp: CPU {:#x} not started: the kernel runs at most {MAX_CPUS} CPUs",
                    cpu.mpidr
                ),
            }
            continue;
        };
        let outcome = start_one(machine, cpu, slot, entry);
        if let Err((_, why)) = outcome {
            crate::warn!("smp: CPU {:#x} did not start: {why}", cpu.mpidr);
        }
        slots.record(outcome.map_err(|(o, _)| o));
    }
    (slots.online(), machine.cpus.len().max(1))
}

fn start_one(machine: &Machine, cpu: &hal::dt::Cpu, slot: Slot, entry: u64) -> Result<(), (Failed, &'static str)> {
    let index = slot.index;
    let stack_top = if slot.stack_mapped {
        // Mapped by a start that failed before its CPU ran: unused.
        kernel_space::stack_top(index)
    } else {
        let pages = (layout::STACK_SIZE / layout::PAGE_SIZE) as usize;
        let stack_pa = frames::alloc_zeroed(pages).ok_or((Failed::NoStack, "no memory for its stack"))?;
        kernel_space::map_stack(index, stack_pa).map_err(|_| {
            frames::free(stack_pa, pages);
            (Failed::NoStack, "cannot map its stack")
        })?
    };
    let never_ran = |why| (Failed::NeverRan, why);
    let affinity = hal::cpu::mpidr_affinity(cpu.mpidr);
    let mailbox = &SECONDARY_MAILBOX;
    mailbox.stack_top.store(stack_top, Ordering::SeqCst);
    mailbox.cpu_index.store(index as u64, Ordering::SeqCst);
    mailbox.offer.store(boot::offered(affinity), Ordering::SeqCst);
    // The CPU reads the mailbox before its caches are coherent with ours.
    hal::cpu::clean_dcache_to_poc(mailbox as *const _ as usize, core::mem::size_of_val(mailbox));

    let released = match cpu.enable {
        EnableMethod::Psci => match machine.psci.as_ref() {
            Some(psci) => {
                hal::psci::cpu_on(psci.conduit, psci.cpu_on, cpu.mpidr, entry, 0).map_err(|_| "PSCI CPU_ON failed")
            }
            None => Err("enable-method psci but no /psci node"),
        },
        EnableMethod::SpinTable { release_addr } => release_spin_table(release_addr, entry),
        _ => Err("no usable enable-method"),
    };
    let target = &percpu::all()[index];
    let online = || target.online.load(Ordering::Acquire);
    let result = match released {
        Err(why) => Err(never_ran(why)),
        Ok(()) if time::wait_until(START_TIMEOUT_MICROS, online) => Ok(()),
        Ok(()) => {
            // Take the offer back, unless the CPU took it meanwhile: then it
            // runs on the slot, and gets the same time again to report.
            let taken_back = mailbox
                .offer
                .compare_exchange(boot::offered(affinity), 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
            if taken_back {
                Err(never_ran("timed out waiting for it to come online"))
            } else if time::wait_until(START_TIMEOUT_MICROS, online) {
                Ok(())
            } else {
                Err((Failed::Stuck, "it started and never came online"))
            }
        }
    };
    // A CPU that was not released, or comes up late, finds no offer and parks.
    mailbox.offer.store(0, Ordering::SeqCst);
    hal::cpu::clean_dcache_to_poc(mailbox as *const _ as usize, core::mem::size_of_val(mailbox));
    result
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

/// Rust entry of a secondary CPU, from `boot`'s `entry.S`, on its own stack
/// (`stack_top`), once it claimed the mailbox.
#[no_mangle]
extern "C" fn kernel_secondary_main(index: u64, stack_top: u64) -> ! {
    arch::aarch64::exceptions::install();
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
