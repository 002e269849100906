//! Interrupts: the GIC the device tree describes, the timer tick and IPIs.

use crate::mm::kernel_space;
use crate::{percpu, time};
use core::sync::atomic::{AtomicU32, Ordering};
use hal::dt::{GicVersion, Machine};
use hal::gic::{Gic, GicV2, GicV3};
use hal::mmio::Mmio;

/// SGI that wakes a CPU (and is counted, for tests).
pub const SGI_WAKE: u32 = 0;
/// SGI that stops a CPU for good (fatal error elsewhere).
pub const SGI_STOP: u32 = 1;

static GIC: spin::Once<Gic> = spin::Once::new();
static TIMER_INTID: AtomicU32 = AtomicU32::new(u32::MAX);

fn map(region: hal::dt::Region) -> Result<Mmio, &'static str> {
    let va = kernel_space::map_device(region.base, region.size).map_err(|_| "cannot map GIC registers")?;
    // SAFETY: just mapped as device memory for this GIC region, never unmapped.
    Ok(unsafe { Mmio::new(va as usize, region.size as usize) })
}

/// Set up the GIC's distributor and this (boot) CPU's interface, and the timer interrupt.
pub fn init(machine: &Machine) -> Result<u32, &'static str> {
    let desc = machine.gic.as_ref().ok_or("no interrupt controller")?;
    let timer = machine.timer.as_ref().ok_or("no timer")?;
    let gic = match desc.version {
        GicVersion::V2 => {
            let cpu = desc.cpu_interface.ok_or("GICv2 without a CPU interface region")?;
            Gic::V2(GicV2::new(map(desc.distributor)?, map(cpu)?))
        }
        GicVersion::V3 => {
            let mut regions = heapless::Vec::new();
            for r in &desc.redistributors {
                regions
                    .push(map(*r)?)
                    .map_err(|_| "too many GICv3 redistributor regions")?;
            }
            if regions.is_empty() {
                return Err("GICv3 without redistributors");
            }
            Gic::V3(GicV3::new(map(desc.distributor)?, regions, desc.redistributor_stride))
        }
    };
    let version = gic.version();
    gic.init_distributor();
    GIC.call_once(|| gic);
    TIMER_INTID.store(timer.phys_irq, Ordering::Relaxed);
    if let Some(hz) = timer.frequency {
        time::set_frequency(hz as u64);
    }
    init_cpu()?;
    Ok(version)
}

fn gic() -> &'static Gic {
    GIC.get().expect("GIC initialised at boot")
}

/// Per-CPU: interface, IPIs, timer tick. Interrupts are unmasked afterwards.
pub fn init_cpu() -> Result<(), &'static str> {
    let gic = gic();
    let mpidr = hal::cpu::mpidr();
    gic.init_cpu(mpidr).map_err(|_| "no GIC redistributor for this CPU")?;
    percpu::current()
        .gic_cpu_interface
        .store(gic.current_cpu_interface(), Ordering::Relaxed);
    gic.enable(SGI_WAKE, mpidr);
    gic.enable(SGI_STOP, mpidr);
    gic.enable(TIMER_INTID.load(Ordering::Relaxed), mpidr);
    time::start_tick();
    hal::cpu::enable_irqs();
    Ok(())
}

/// Send an SGI to the CPU with logical index `cpu`.
pub fn send_ipi(cpu: usize, sgi: u32) {
    if let Some(gic) = GIC.get() {
        let target = &percpu::all()[cpu];
        gic.send_sgi(
            sgi,
            target.mpidr.load(Ordering::Relaxed),
            target.gic_cpu_interface.load(Ordering::Relaxed),
        );
    }
}

/// Device interrupts taken but not yet delivered to their notifications
/// (delivery needs the kernel lock, which the IRQ path may not take).
static PENDING: crate::sync::ColdMutex<heapless::Vec<u32, 64>> = crate::sync::ColdMutex::new(heapless::Vec::new());
/// Interrupt lines bound to user space (IRQ objects), as a bitmap of INTIDs.
static BOUND: crate::sync::ColdMutex<[u64; 16]> = crate::sync::ColdMutex::new([0; 16]);

fn is_bound(intid: u32) -> bool {
    let i = intid as usize;
    i < 1024 && BOUND.lock()[i / 64] & (1 << (i % 64)) != 0
}

/// Route `intid` to user space (its IRQ object) and unmask it.
pub fn bind(intid: u32, _irq: crate::object::Id) {
    let i = intid as usize;
    if i >= 1024 {
        return;
    }
    BOUND.lock()[i / 64] |= 1 << (i % 64);
    unmask(intid);
}

/// Stop delivering `intid`.
pub fn unbind(intid: u32) {
    let i = intid as usize;
    if i >= 1024 {
        return;
    }
    BOUND.lock()[i / 64] &= !(1 << (i % 64));
    if let Some(gic) = GIC.get() {
        gic.disable(intid);
    }
}

/// Let `intid` fire again (after its driver handled the last one).
pub fn unmask(intid: u32) {
    if let Some(gic) = GIC.get() {
        gic.enable(intid, hal::cpu::mpidr());
    }
}

/// Hand interrupts taken since the last call to their notifications.
pub fn deliver_pending(k: &mut crate::object::Kernel) {
    let pending: heapless::Vec<u32, 64> = {
        let mut p = PENDING.lock();
        // Usually none (this runs on every pass of the idle loop and every
        // interrupt): then no copy of the 260-byte list.
        if p.is_empty() {
            return;
        }
        core::mem::take(&mut *p)
    };
    for intid in pending {
        let target = k
            .irqs
            .iter()
            .find(|(_, irq)| irq.intid == intid)
            .and_then(|(_, irq)| irq.notification);
        if let Some((n, bits)) = target {
            crate::ipc::signal_bits(k, n, bits);
        }
    }
}

/// Handle the interrupt pending on this CPU, if any (the IRQ exception,
/// and the idle loop after its wait). One per call: another one still
/// pending is taken as soon as interrupts are unmasked again (or ends the
/// idle loop's next wait at once), so looking for it here would only cost
/// an acknowledge that finds none, each time.
pub fn handle() {
    let Some(gic) = GIC.get() else { return };
    let Some(ack) = gic.acknowledge() else { return };
    let intid = ack.intid;
    if intid == TIMER_INTID.load(Ordering::Relaxed) {
        time::on_tick();
    } else if intid == SGI_STOP {
        gic.end_of_interrupt(ack);
        hal::cpu::halt();
    } else if intid == SGI_WAKE {
        percpu::current_running().ipis.fetch_add(1, Ordering::Relaxed);
    } else if is_bound(intid) {
        // Masked until the driver acknowledges it (IrqAck).
        gic.disable(intid);
        if PENDING.lock().push(intid).is_err() {
            crate::warn!("irq: too many undelivered interrupts; {} dropped", u64::from(intid));
        }
    } else {
        crate::warn!("irq: unexpected interrupt {}", u64::from(intid));
    }
    gic.end_of_interrupt(ack);
}
