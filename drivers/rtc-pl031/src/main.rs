//! rtc-pl031: the ARM PrimeCell PL031 real-time clock as the `rtc` service
//! (see `userlib::services::rtc`): seconds since the epoch, as the counter
//! holds them (QEMU starts it at the host's UTC time; on hardware whoever
//! sets the clock decides).
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code))]

use driverkit::tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use driverkit::tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use driverkit::tock_registers::{register_bitfields, register_structs};
use driverkit::{names, serve, Action, Device, DeviceError};
use userlib::abi::boot_info::StartInfo;
use userlib::abi::ObjectType;
use userlib::proto::{reply_error, OK};
use userlib::services::rtc::{civil_from_unix, GET, NAME};
use userlib::{log, process, syscall, Error, Message};

#[cfg(not(test))]
userlib::entry!(main, heap = 16 * 1024);

register_bitfields![u32,
    CR [
        /// The counter runs (set once; it cannot be stopped again).
        START OFFSET(0) NUMBITS(1) []
    ],
    INT [
        ALARM OFFSET(0) NUMBITS(1) []
    ]
];

register_structs! {
    /// ARM DDI 0224C, 3.2.
    Pl031Registers {
        /// Data: the current count, seconds.
        (0x00 => dr: ReadOnly<u32>),
        /// Match: the alarm.
        (0x04 => mr: ReadWrite<u32>),
        /// Load: sets the count.
        (0x08 => lr: ReadWrite<u32>),
        (0x0c => cr: ReadWrite<u32, CR::Register>),
        (0x10 => imsc: ReadWrite<u32, INT::Register>),
        (0x14 => ris: ReadOnly<u32, INT::Register>),
        (0x18 => mis: ReadOnly<u32, INT::Register>),
        (0x1c => icr: WriteOnly<u32, INT::Register>),
        (0x20 => @END),
    }
}

fn main(_start: &StartInfo) -> Result<(), DeviceError> {
    let device = Device::get()?;
    let regs = device.map::<Pl031Registers>(0)?;
    // The alarm is not part of the service: keep its interrupt off.
    regs.imsc.write(INT::ALARM::CLEAR);
    regs.icr.write(INT::ALARM::SET);
    if !regs.cr.is_set(CR::START) {
        regs.cr.modify(CR::START::SET);
    }
    let now = regs.dr.get();
    let (y, mo, d, h, mi, s) = civil_from_unix(now.into());
    log::info!("{}: {y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC", device.node());
    let ep = syscall::create(process().pool, ObjectType::Endpoint, 0)?;
    names::register(device.arg("name").unwrap_or(NAME), ep)?;
    serve(ep, |msg, _badge| match msg.label {
        // The counter is 32 bits of seconds: good until 2106.
        GET => Action::Reply(Message::with_words(OK, &[regs.dr.get().into()])),
        _ => Action::Reply(reply_error(Error::InvalidArgument)),
    })?;
    Ok(())
}
