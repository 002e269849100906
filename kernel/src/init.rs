//! `kernel_main`: from the boot stub to a running system.

use crate::mm::regions::{free_memory, Range, RangeSet};
use crate::mm::{frames, heap, kernel_space};
use crate::{arch, console, irq, logger, percpu, power, smp};
use core::fmt::Write;
use hal::dt::Machine;
use hal::mmio::Mmio;

/// Largest device tree the kernel maps.
const MAX_DTB_SIZE: u64 = 2 << 20;

/// Report a machine the kernel cannot run on, then stop.
fn boot_error(args: core::fmt::Arguments) -> ! {
    let mut out = console::EmergencyWriter::new();
    let _ = writeln!(out, "BOOT ERROR: {args}");
    power::fatal(power::Fatal::BootError)
}

/// Map the device tree at `dtb_pa` and parse it.
fn read_device_tree(dtb_pa: u64) -> (Machine<'static>, &'static [u8]) {
    if dtb_pa == 0 || !dtb_pa.is_multiple_of(8) {
        boot_error(format_args!(
            "no device tree: x0 = {dtb_pa:#x} at entry is not a DTB address"
        ));
    }
    let header_va = kernel_space::map_early(dtb_pa, 64)
        .unwrap_or_else(|e| boot_error(format_args!("cannot map the device tree header: {e}")));
    // SAFETY: 64 bytes at header_va were just mapped read-only and stay mapped.
    let header = unsafe { core::slice::from_raw_parts(header_va as *const u8, 64) };
    let size = hal::dt::header_total_size(header).unwrap_or_else(|e| boot_error(format_args!("x0 = {dtb_pa:#x}: {e}")));
    if size as u64 > MAX_DTB_SIZE {
        boot_error(format_args!(
            "device tree of {size} bytes is larger than {MAX_DTB_SIZE}"
        ));
    }
    let va = kernel_space::map_early(dtb_pa, size as u64)
        .unwrap_or_else(|e| boot_error(format_args!("cannot map the device tree: {e}")));
    // SAFETY: `size` bytes at `va` are mapped read-only for the kernel's lifetime.
    let blob: &'static [u8] = unsafe { core::slice::from_raw_parts(va as *const u8, size) };
    let machine = Machine::parse(blob).unwrap_or_else(|e| boot_error(format_args!("{e}")));
    // Keep what the tree needs; its free space (QEMU pads its trees to
    // 1 MiB) becomes free memory, which matters on a 4 MiB watch.
    let used = blob.get(..machine.used_size).unwrap_or(blob);
    (machine, used)
}

fn init_console(machine: &Machine) {
    let Some(uart) = machine.console.as_ref() else { return };
    match kernel_space::map_device(uart.regs.base, uart.regs.size) {
        // SAFETY: the UART's registers were just mapped as device memory.
        Ok(va) => console::init(
            unsafe { Mmio::new(va as usize, uart.regs.size as usize) },
            uart.clock_hz,
            uart.baud,
        ),
        Err(e) => boot_error(format_args!("cannot map the console UART: {e}")),
    }
}

/// Everything in RAM that is not free, besides the reserved regions.
fn init_memory(machine: &Machine, image_pa: u64, dtb_pa: u64, dtb_size: u64) -> u64 {
    let layout = boot::image_layout();
    // The image up to the end of .bss, and the boot stack (the image's
    // last STACK_SIZE bytes). Between them, the stack's alignment padding
    // and its guard are unmapped at the image's addresses (`boot/link.ld`):
    // free memory, up to 96 KiB of it.
    let offset = |va: u64| image_pa + (va - layout.start);
    let stack = layout.end - crate::mm::layout::STACK_SIZE;
    let mut holes: heapless::Vec<Range, 40> = heapless::Vec::new();
    let _ = holes.push(Range::new(image_pa, layout.bss_end - layout.start));
    let _ = holes.push(Range::new(offset(stack), crate::mm::layout::STACK_SIZE));
    let _ = holes.push(Range::new(dtb_pa, dtb_size));
    if let Some(initrd) = machine.initrd {
        let _ = holes.push(Range::new(initrd.base, initrd.size));
    }
    for r in machine.reserved.iter() {
        if holes.push(Range::new(r.region.base, r.region.size)).is_err() {
            boot_error(format_args!(
                "more than {} reserved memory regions",
                holes.capacity() - 4
            ));
        }
    }
    // Started through UEFI: RAM is what the firmware's memory map calls
    // usable (runtime services and firmware reservations left out), not
    // the device tree's /memory nodes.
    // (Collected once, so each consumer below is one simple loop.)
    let mut ram: heapless::Vec<Range, { boot::EFI_MAP_CAPACITY }> = heapless::Vec::new();
    match boot::efi_memory_map() {
        Some(map) => {
            crate::info!("mm: RAM from the UEFI memory map ({} ranges)", map.len());
            ram.extend(map.iter().map(|r| Range::new(r.base, r.size)));
        }
        None => ram.extend(machine.memory.iter().map(|m| Range::new(m.base, m.size))),
    }
    let free: RangeSet<64> = free_memory(ram.iter().copied(), holes.iter().copied())
        .unwrap_or_else(|_| boot_error(format_args!("memory map too fragmented (over 64 free ranges)")));
    // RAM, whatever the tree describes as memory, and the interrupt
    // controller are never device memory for user space (see `mm::physical`).
    let described = machine.memory.iter().chain(machine.reserved.iter().map(|r| &r.region));
    let gic = machine.gic.iter().flat_map(|g| {
        core::iter::once(&g.distributor)
            .chain(g.cpu_interface.as_ref())
            .chain(g.redistributors.iter())
    });
    crate::mm::physical::init(
        ram.iter()
            .copied()
            .chain(described.chain(gic).map(|r| Range::new(r.base, r.size))),
    );
    if let Err(e) = kernel_space::map_linear(&ram) {
        boot_error(format_args!("cannot build the linear map of RAM: {e}"));
    }
    for r in free.iter() {
        frames::add(*r);
    }
    kernel_space::use_frame_allocator();
    // The kernel heap takes its blocks from the frames from now on.
    free.total()
}

/// Rust entry of the boot CPU, from `boot`'s `entry.S`, with the MMU on.
#[no_mangle]
extern "C" fn kernel_main(dtb_pa: u64, image_pa: u64, entry_el: u64) -> ! {
    crate::object::prepare();
    arch::aarch64::exceptions::install();
    percpu::init_this_cpu(0, boot::image_layout().end);
    arch::aarch64::user::init_cpu();
    kernel_space::init(image_pa);
    let (machine, dtb) = read_device_tree(dtb_pa);
    init_console(&machine);
    logger::init();
    if let Err(e) = machine.check_bootable() {
        boot_error(format_args!("{e}"));
    }
    power::init(machine.psci.as_ref());
    crate::info!("boot: entered at EL{entry_el}, image at {image_pa:#x}, device tree at {dtb_pa:#x}");
    let usable = init_memory(&machine, image_pa, dtb_pa, dtb.len() as u64);
    hal::cpu::set_lower_half(kernel_space::empty_table_pa());
    let gic_version = irq::init(&machine).unwrap_or_else(|e| boot_error(format_args!("interrupts: {e}")));
    percpu::current()
        .online
        .store(true, core::sync::atomic::Ordering::Release);
    let (online, listed) = smp::start_secondaries(&machine, image_pa);
    let mut banner: heapless::String<256> = heapless::String::new();
    let _ = write!(
        banner,
        "Kestrel v{} booted on {}: {} MiB RAM usable, {online}/{listed} CPUs online, GICv{}",
        crate::VERSION,
        machine.model,
        usable >> 20,
        // Every integer the kernel prints goes through `u64`'s formatter:
        // `u32`'s would add 332 bytes of code.
        u64::from(gic_version),
    );
    if hal::cpu::has_pmu() {
        let _ = write!(banner, ", boot took {} cycles", hal::cpu::cycle_counter());
    }
    crate::info!("{banner}");
    let (heap_size, _) = heap::stats();
    let (_, frames_free) = frames::stats();
    crate::info!(
        "mm: {} KiB heap, {} KiB of frames free; {} of {} early page tables used",
        heap_size >> 10,
        frames_free >> 10,
        kernel_space::early_tables_used().0,
        kernel_space::early_tables_used().1
    );
    if !machine.bootargs.is_empty() {
        crate::info!("boot: bootargs \"{}\"", machine.bootargs);
    }
    #[cfg(feature = "ktest")]
    crate::ktest::run(&machine);
    match crate::boot_task::start_init(&machine, dtb, dtb_pa, image_pa) {
        Ok(()) => arch::aarch64::user::cpu_loop(),
        Err(why) => {
            crate::warn!("kernel: no user space ({why}); idling (QEMU: Ctrl-A X to quit)");
            idle()
        }
    }
}

/// Wait for interrupts forever.
pub fn idle() -> ! {
    loop {
        hal::cpu::idle_until_interrupt();
    }
}
