//! A device driven from user space: init hands this program the PL031 RTC's
//! device region (`extra[0]`) and interrupt line (`extra[1]`). It maps the
//! registers, binds the interrupt to a notification, arms the RTC's alarm
//! and waits for the interrupt — twice, so `IrqAck` is shown to re-enable
//! the line. Device memory must refuse to be mapped executable, and init
//! must refuse this "driver" any physical range beyond its node's. Boards
//! without a PL031 (the Pi 4) get no handles and the test says so. Only
//! init (its console capability with `MANAGE`) may make device regions
//! and interrupt objects: this task's own capabilities are refused.
#![no_std]
#![no_main]

use userlib::abi::boot_info::StartInfo;
use userlib::abi::{Error, ObjectType};
use userlib::ipc::Timeout;
use userlib::{log, names, process, syscall, Handle, Rights};

userlib::entry!(main);

/// Where the registers are mapped.
const RTC_VA: u64 = 0x3000_0000;
const DR: u64 = 0x00; // current time, seconds
const MR: u64 = 0x04; // match (alarm)
const IMSC: u64 = 0x10; // interrupt mask set/clear
const MIS: u64 = 0x18; // masked interrupt status
const ICR: u64 = 0x1c; // interrupt clear

fn read(reg: u64) -> u32 {
    // SAFETY: the RTC's register page is mapped at RTC_VA (device memory).
    unsafe { core::ptr::read_volatile((RTC_VA + reg) as *const u32) }
}

fn write(reg: u64, value: u32) {
    // SAFETY: as in `read`.
    unsafe { core::ptr::write_volatile((RTC_VA + reg) as *mut u32, value) }
}

fn main(start: &StartInfo) {
    no_system_authority();
    let (region, irq) = (Handle(start.extra[0]), Handle(start.extra[1]));
    if region == Handle::NULL || irq == Handle::NULL {
        log::info!("no PL031 RTC on this board: nothing to drive");
        return;
    }
    let me = process();
    let info = syscall::cap_info(region).expect("cap_info(region)");
    assert_eq!(info.object, Some(ObjectType::DeviceRegion));
    let (physical, size) = syscall::memory_physical(region).expect("memory_physical");
    assert!(size >= 4096, "region of {size} bytes");
    // Device capabilities carry no EXECUTE right, and the kernel refuses
    // executable device mappings regardless.
    let exec = syscall::map(me.task, region, 1, 0, RTC_VA, Rights::READ | Rights::EXECUTE);
    assert!(
        matches!(exec, Err(Error::NoRights | Error::InvalidArgument)),
        "device memory must never be executable: {exec:?}"
    );
    syscall::map(me.task, region, 1, 0, RTC_VA, Rights::READ | Rights::WRITE).expect("map the RTC");
    let now = read(DR);
    log::info!("PL031 at {physical:#x}: time {now}");
    assert!(now > 1_600_000_000, "RTC reads {now}, not a plausible date");

    let notification = syscall::create(me.pool, ObjectType::Notification, 0).expect("notification");
    syscall::irq_bind(irq, notification, 1 << 3).expect("irq_bind");
    for round in 0..2 {
        write(MR, read(DR) + 1);
        write(IMSC, 1);
        let bits = syscall::wait(notification, Timeout::Micros(5_000_000))
            .unwrap_or_else(|e| panic!("round {round}: no interrupt within 5 s: {e}"));
        assert_eq!(bits, 1 << 3, "round {round}: notification bits");
        assert_eq!(read(MIS) & 1, 1, "round {round}: the RTC says it interrupted");
        write(ICR, 1);
        write(IMSC, 0);
        syscall::irq_ack(irq).expect("irq_ack");
    }
    syscall::unmap(me.task, RTC_VA, 1).expect("unmap");
    syscall::cap_delete(notification).expect("delete the notification");
    log::info!("two RTC alarms delivered through the IRQ capability");
    other_ranges_refused(physical);
}

/// A driver holds its node's pages and nothing more: init refuses it any
/// other physical range (issue 11, finding 8). This program drives the
/// PL031; its profile entry (none: it is a test) declares no extra ranges.
fn other_ranges_refused(rtc: u64) {
    let ranges = [
        ("the PL011 UART's registers (another device)", 0x0900_0000, 0x1000),
        ("the page next to its own registers", rtc + 0x1000, 0x1000),
        ("the PCIe ECAM", 0x40_1000_0000, 0x1000),
        ("the GICv3 ITS", 0x0808_0000, 0x1000),
        ("RAM (the kernel's image)", 0x4000_0000, 0x1000),
        ("its own registers a second time", rtc, 0x1000),
    ];
    for (what, physical, bytes) in ranges {
        let r = names::supervisor::device_memory(physical, bytes);
        assert!(
            matches!(r, Err(Error::NoRights)),
            "device memory at {physical:#x} ({what}): expected NoRights, got {r:?}"
        );
        log::info!("device memory at {physical:#x} ({what}): NoRights");
    }
}

/// Making device regions and interrupt objects takes init's authority (the
/// console with `MANAGE`): this task's console copy lacks `MANAGE`
/// (`NoRights`), and no other object stands in for it (`WrongType`).
fn no_system_authority() {
    let me = process();
    // An SPI no object names on virt (none of its devices uses INTID 100).
    let irq = syscall::irq_create(me.pool, me.console, 100);
    assert_eq!(irq, Err(Error::NoRights), "IrqCreate with a console copy");
    // An object of its own, with every right, that is not the console.
    let own = syscall::create(me.pool, ObjectType::Notification, 0).expect("a notification");
    let irq = syscall::irq_create(me.pool, own, 100);
    assert_eq!(irq, Err(Error::WrongType), "IrqCreate with a notification as authority");
    let region = syscall::device_memory(me.pool, me.console, 0x0900_0000, 1);
    assert_eq!(region, Err(Error::NoRights), "DeviceMemory with a console copy");
    let region = syscall::device_memory(me.pool, own, 0x0900_0000, 1);
    assert_eq!(
        region,
        Err(Error::WrongType),
        "DeviceMemory with a notification as authority"
    );
    syscall::cap_delete(own).expect("delete the notification");
    log::info!("no device regions or interrupt objects without init's authority");
}
