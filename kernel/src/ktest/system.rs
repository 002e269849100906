//! Tests of the booted system: memory, mappings, interrupts, CPUs.

use crate::mm::{frames, heap, kernel_space, layout};
use crate::{irq, kassert, kassert_eq, ktest, percpu, time, MAX_CPUS};
use alloc::{boxed::Box, vec::Vec};
use core::sync::atomic::Ordering;
use spin::Once;

/// What the device tree promised, to compare the running system against.
struct Expected {
    cpus: usize,
    memory_total: u64,
}

/// The interrupt controller's and console's registers, from the device tree.
struct MachineRanges {
    gic: Option<GicRanges>,
    uart: Option<u64>,
}

struct GicRanges {
    distributor: u64,
}

static MACHINE: Once<MachineRanges> = Once::new();

static EXPECTED: Once<Expected> = Once::new();

pub fn set_machine(machine: &hal::dt::Machine) {
    MACHINE.call_once(|| MachineRanges {
        gic: machine.gic.as_ref().map(|g| GicRanges {
            distributor: g.distributor.base,
        }),
        uart: machine.console.as_ref().map(|c| c.regs.base),
    });
    EXPECTED.call_once(|| Expected {
        cpus: machine.cpus.len().clamp(1, MAX_CPUS),
        memory_total: machine.memory.iter().map(|m| m.size).sum(),
    });
}

fn expected() -> &'static Expected {
    EXPECTED.get().expect("set_machine runs before the tests")
}

ktest!(
    fn frames_take_exactly_the_pages_asked_for() {
        let (_, free_before) = frames::stats();
        let pa = frames::alloc_zeroed(5).ok_or("no frames")?;
        // Aligned like a power-of-two block, charged as five pages.
        kassert_eq!(pa % (8 * layout::PAGE_SIZE), 0);
        kassert_eq!(frames::stats().1, free_before - 5 * layout::PAGE_SIZE);
        frames::free(pa, 5);
        kassert_eq!(frames::stats().1, free_before);
        // The pieces merged again: the same 8-page block is whole.
        let again = frames::alloc(8).ok_or("no 8-page block after freeing 5 pages")?;
        frames::free(again, 8);
        kassert_eq!(frames::stats().1, free_before);
        Ok(())
    }
);

ktest!(
    fn device_memory_is_never_ram_or_the_gic() {
        use crate::mm::{physical::is_device_memory, regions::Range};
        let page = layout::PAGE_SIZE;
        let pa = frames::alloc(1).ok_or("no frames")?;
        let ram = is_device_memory(Range::new(pa, page));
        frames::free(pa, 1);
        kassert!(!ram, "a RAM page passed as device memory");
        let machine = MACHINE.get().ok_or("no machine")?;
        if let Some(gic) = &machine.gic {
            kassert!(
                !is_device_memory(Range::new(gic.distributor, page)),
                "the GIC distributor"
            );
        }
        if let Some(uart) = &machine.uart {
            kassert!(
                is_device_memory(Range::new(uart & !(page - 1), page)),
                "the console UART"
            );
        }
        kassert!(!is_device_memory(Range::new(0x1000_0000_0000, 0)), "an empty range");
        Ok(())
    }
);

ktest!(
    fn frames_allocate_write_and_free() {
        let (total, free_before) = frames::stats();
        kassert!(total > 0 && free_before <= total);
        let pa = frames::alloc_zeroed(4).ok_or("no frames")?;
        kassert!(kernel_space::translate(layout::phys_to_virt(pa)).is_some());
        kassert_eq!(pa % (4 * layout::PAGE_SIZE), 0);
        let va = layout::phys_to_virt(pa) as *mut u64;
        // SAFETY: the four pages are ours and linear-mapped read-write.
        unsafe {
            kassert_eq!(va.read_volatile(), 0);
            va.write_volatile(0x5eed);
            kassert_eq!(va.read_volatile(), 0x5eed);
        }
        kassert_eq!(frames::stats().1, free_before - 4 * layout::PAGE_SIZE);
        frames::free(pa, 4);
        kassert_eq!(frames::stats().1, free_before);
        Ok(())
    }
);

ktest!(
    fn frames_are_distinct_until_exhaustion_limit() {
        let mut taken = Vec::new();
        for _ in 0..64 {
            taken.push(frames::alloc(1).ok_or("no frames")?);
        }
        let mut sorted = taken.clone();
        sorted.sort_unstable();
        sorted.dedup();
        kassert_eq!(sorted.len(), taken.len());
        for pa in taken {
            frames::free(pa, 1);
        }
        Ok(())
    }
);

ktest!(
    fn usable_memory_is_within_device_tree_memory() {
        let (frames_total, _) = frames::stats();
        kassert!(
            frames_total > 0 && frames_total <= expected().memory_total,
            "usable {frames_total} of {}",
            expected().memory_total
        );
        Ok(())
    }
);

ktest!(
    fn heap_allocates_and_frees() {
        let (_, used_before) = heap::stats();
        {
            let v: Vec<u64> = (0..1000).collect();
            let b = Box::new([7u8; 3000]);
            kassert_eq!(v.iter().sum::<u64>(), 499_500);
            kassert_eq!(b[2999], 7);
            kassert!(heap::stats().1 > used_before);
        }
        kassert_eq!(heap::stats().1, used_before);
        Ok(())
    }
);

ktest!(
    fn heap_memory_goes_back_to_frames() {
        let (_, free_before) = frames::stats();
        // Many small objects and a big one, then all of them freed: the
        // frames are whole again (the heap keeps nothing).
        let small: Vec<Box<[u8; 48]>> = (0..2000).map(|_| Box::new([3u8; 48])).collect();
        let big: Vec<u8> = alloc::vec![0xa5; 1 << 20];
        kassert!(frames::stats().1 < free_before - (1 << 20));
        kassert_eq!(big[big.len() - 1], 0xa5);
        kassert_eq!(small[1999][47], 3);
        drop(big);
        drop(small);
        kassert_eq!(frames::stats().1, free_before);
        Ok(())
    }
);

ktest!(
    fn image_sections_are_w_xor_x() {
        let l = boot::image_layout();
        let mut page = l.start;
        let (mut text, mut ro, mut rw) = (0, 0, 0);
        while page < l.end {
            if let Some((_, a)) = kernel_space::translate(page) {
                kassert!(
                    !(a.writable && a.executable),
                    "page {page:#x} is writable and executable"
                );
                kassert!(!a.user, "kernel page {page:#x} is reachable from EL0");
                if page < l.text_end {
                    kassert!(a.executable && !a.writable, "text page {page:#x}: {a:?}");
                    text += 1;
                } else if page < l.rodata_end {
                    kassert!(!a.executable && !a.writable, "rodata page {page:#x}: {a:?}");
                    ro += 1;
                } else {
                    kassert!(!a.executable && a.writable, "data page {page:#x}: {a:?}");
                    rw += 1;
                }
            }
            page += layout::PAGE_SIZE;
        }
        kassert!(text > 0 && ro > 0 && rw > 0);
        Ok(())
    }
);

ktest!(
    fn boot_stack_has_an_unmapped_guard() {
        let l = boot::image_layout();
        // The boot stack is the image's last STACK_SIZE bytes; the guard below.
        let stack_bottom = l.end - layout::STACK_SIZE;
        kassert!(kernel_space::translate(stack_bottom).is_some());
        kassert!(kernel_space::translate(stack_bottom - layout::PAGE_SIZE).is_none());
        kassert!(kernel_space::translate(stack_bottom - layout::STACK_SIZE).is_none());
        // The whole gap from .bss's end is unmapped here (its frames are
        // free memory, reached through the linear map only).
        let mut page = l.bss_end;
        while page < stack_bottom {
            kassert!(kernel_space::translate(page).is_none(), "gap page {page:#x} is mapped");
            page += layout::PAGE_SIZE;
        }
        Ok(())
    }
);

ktest!(
    fn secondary_stacks_have_guards() {
        for cpu in percpu::all()
            .iter()
            .skip(1)
            .filter(|c| c.online.load(Ordering::Relaxed))
        {
            let slot = layout::STACK_BASE + cpu.index() as u64 * layout::STACK_SLOT;
            kassert!(
                kernel_space::translate(slot).is_none(),
                "guard of CPU {} is mapped",
                cpu.index()
            );
            kassert!(kernel_space::translate(slot + layout::STACK_SLOT - 8).is_some());
        }
        Ok(())
    }
);

ktest!(
    fn linear_map_is_not_executable_and_devices_are_device_memory() {
        let pa = frames::alloc(1).ok_or("no frames")?;
        let (mapped_pa, a) = kernel_space::translate(layout::phys_to_virt(pa)).ok_or("frame not in the linear map")?;
        frames::free(pa, 1);
        kassert_eq!(mapped_pa, pa);
        kassert!(a.writable && !a.executable && !a.user);
        let (_, dev) = kernel_space::translate(layout::DEVICE_BASE).ok_or("no device mapped")?;
        kassert_eq!(dev.memory, hal::mmu::MemoryType::Device);
        kassert!(!dev.executable);
        Ok(())
    }
);

ktest!(
    fn linear_map_has_no_writable_alias_of_text_or_rodata() {
        // Issue 11, finding 4: the linear map aliased the whole image
        // read-write, so .text and .rodata could be written there. Every
        // page of the image, by its physical address (the boot stack's
        // guard is not mapped at the image's own address, but it has a
        // physical page): its linear-map alias is never executable, and
        // for .text and .rodata never writable, by the tables and by the
        // MMU (a write translation fails).
        let l = boot::image_layout();
        let image_pa = kernel_space::translate(l.start).ok_or("image not mapped")?.0;
        let (mut ro, mut rw) = (0, 0);
        let mut offset = 0;
        while l.start + offset < l.end {
            let (va, pa) = (l.start + offset, image_pa + offset);
            let alias = layout::phys_to_virt(pa);
            // Under UEFI the firmware's map may leave the image out of RAM:
            // then there is no alias at all, which is as good.
            if let Some((alias_pa, a)) = kernel_space::translate(alias) {
                kassert_eq!(alias_pa, pa);
                kassert!(
                    !a.executable,
                    "linear alias {alias:#x} of image page {va:#x} is executable"
                );
                if va < l.rodata_end {
                    kassert!(
                        !a.writable,
                        "linear alias {alias:#x} of read-only image page {va:#x} is writable"
                    );
                    kassert!(!hal::cpu::kernel_can_write(alias), "the MMU lets {alias:#x} be written");
                    kassert!(hal::cpu::kernel_can_read(alias), "{alias:#x} cannot be read");
                    ro += 1;
                } else {
                    rw += 1;
                }
            }
            offset += layout::PAGE_SIZE;
        }
        crate::info!("ktest: linear aliases of the image: {ro} read-only pages, {rw} read-write");
        // A .text address in particular (this function), through the linear map.
        let text = linear_map_has_no_writable_alias_of_text_or_rodata as *const () as u64;
        if let Some((pa, a)) = kernel_space::translate(layout::phys_to_virt(image_pa + (text - l.start))) {
            kassert_eq!(pa, image_pa + (text - l.start));
            kassert!(!a.writable && !a.executable);
        }
        // RAM outside the image stays writable there.
        let pa = frames::alloc(1).ok_or("no frames")?;
        let writable = hal::cpu::kernel_can_write(layout::phys_to_virt(pa));
        frames::free(pa, 1);
        kassert!(writable, "a free frame is not writable through the linear map");
        Ok(())
    }
);

ktest!(
    fn boot_identity_map_is_gone() {
        // The image's physical address was identity-mapped during boot only.
        let image_pa = kernel_space::translate(boot::image_layout().start)
            .ok_or("image not mapped")?
            .0;
        kassert!(
            !hal::cpu::kernel_can_read(image_pa),
            "physical {image_pa:#x} still readable through TTBR0"
        );
        kassert!(hal::cpu::kernel_can_read(boot::image_layout().start));
        Ok(())
    }
);

ktest!(
    fn timer_ticks_on_this_cpu() {
        let cpu = percpu::current();
        let before = cpu.ticks.load(Ordering::Relaxed);
        let ok = time::wait_until(5_000_000, || cpu.ticks.load(Ordering::Relaxed) >= before + 3);
        kassert!(ok, "no timer interrupts in 0.5 s (ticks {before})");
        Ok(())
    }
);

ktest!(
    fn all_cpus_online() {
        let online = percpu::all()
            .iter()
            .filter(|c| c.online.load(Ordering::Relaxed))
            .count();
        kassert_eq!(online, expected().cpus);
        Ok(())
    }
);

ktest!(
    fn every_cpu_ticks() {
        for cpu in percpu::all().iter().filter(|c| c.online.load(Ordering::Relaxed)) {
            let before = cpu.ticks.load(Ordering::Relaxed);
            let ok = time::wait_until(5_000_000, || cpu.ticks.load(Ordering::Relaxed) > before + 1);
            kassert!(ok, "CPU {} timer not ticking", cpu.index());
        }
        Ok(())
    }
);

ktest!(
    fn ipis_reach_every_other_cpu() {
        let me = percpu::index();
        for cpu in percpu::all()
            .iter()
            .filter(|c| c.online.load(Ordering::Relaxed) && c.index() != me)
        {
            let before = cpu.ipis.load(Ordering::Relaxed);
            irq::send_ipi(cpu.index(), irq::SGI_WAKE);
            let ok = time::wait_until(5_000_000, || cpu.ipis.load(Ordering::Relaxed) > before);
            kassert!(ok, "CPU {} did not take the IPI", cpu.index());
        }
        Ok(())
    }
);

ktest!(
    fn an_ipi_to_this_cpu_is_taken() {
        // The exit path's idle wait relies on it (`switch` wakes its own
        // CPU for teardown left to do). On a GICv2 with one CPU interface
        // the target registers read as zero: the interface is still 0.
        let me = percpu::current();
        let before = me.ipis.load(Ordering::Relaxed);
        irq::send_ipi(me.index(), irq::SGI_WAKE);
        let ok = time::wait_until(1_000_000, || me.ipis.load(Ordering::Relaxed) > before);
        kassert!(ok, "CPU {} did not take the IPI it sent itself", me.index());
        Ok(())
    }
);

ktest!(
    fn counter_and_uptime_advance() {
        let a = time::uptime_micros();
        time::wait_until(2_000, || false);
        let b = time::uptime_micros();
        kassert!(b >= a + 2_000, "uptime {a} -> {b}");
        Ok(())
    }
);

ktest!(
    fn cpu_time_clock_counts_like_the_timer() {
        // The accounting clock (virtual counter) and the timer's (physical)
        // tick at one rate. Each virtual reading is bracketed by two
        // physical ones, so a host that preempts QEMU between the reads
        // widens the bracket instead of failing the test: over 2 ms the
        // virtual clock must advance by an amount inside the brackets.
        fn bracketed() -> (u64, u64, u64) {
            let mut best = (0, 0, u64::MAX);
            for _ in 0..64 {
                let (before, virt, after) = (hal::cpu::counter(), time::cpu_clock(), hal::cpu::counter());
                if after - before < best.2 - best.0 {
                    best = (before, virt, after);
                }
                if after - before <= time::micros_to_ticks(20) {
                    break;
                }
            }
            best
        }
        let (a0, v0, b0) = bracketed();
        time::wait_until(2_000, || false);
        let (a1, v1, b1) = bracketed();
        let virt = v1.wrapping_sub(v0);
        kassert!(
            (a1 - b0..=b1 - a0).contains(&virt),
            "over 2 ms: {virt} virtual ticks, physical between {} and {}",
            a1 - b0,
            b1 - a0
        );
        kassert!(time::ticks_to_micros(virt) >= 1_500, "{virt} ticks in 2 ms");
        for us in [0, 1, 999, 1_000_000, 3_600_000_000] {
            let back = time::ticks_to_micros(time::micros_to_ticks(us));
            kassert!(back <= us && us - back <= 1, "{us} us -> ticks -> {back} us");
        }
        Ok(())
    }
);

ktest!(
    fn pan_is_on_where_the_cpu_has_it() {
        let mmfr1: u64;
        // SAFETY: reading an ID register has no side effects.
        unsafe { core::arch::asm!("mrs {}, id_aa64mmfr1_el1", out(reg) mmfr1, options(nomem, nostack)) };
        let supported = (mmfr1 >> 20) & 0xf != 0;
        kassert_eq!(crate::arch::aarch64::user::pan_enabled(), supported);
        Ok(())
    }
);

ktest!(
    fn a_list_gives_back_memory_in_place() {
        let (_, free_before) = frames::stats();
        let (_, used_before) = heap::stats();
        let mut v: alloc::vec::Vec<u64> = alloc::vec::Vec::new();
        v.try_reserve_exact(1024).map_err(|_| "no memory for 8 KiB")?;
        v.push(7);
        let at = v.as_ptr() as usize;
        kassert_eq!(heap::stats().1, used_before + 8192);
        kassert_eq!(frames::stats().1, free_before - 8192);
        crate::object::slab::give_back(&mut v, 4);
        // In place (no new block, nothing copied): the block's end went back.
        kassert_eq!(v.as_ptr() as usize, at);
        kassert_eq!(v.capacity(), 4);
        kassert_eq!(v[0], 7);
        kassert_eq!(heap::stats().1, used_before + 32);
        kassert_eq!(frames::stats().1, free_before - 32);
        drop(v);
        kassert_eq!(heap::stats().1, used_before);
        kassert_eq!(frames::stats().1, free_before);
        Ok(())
    }
);
