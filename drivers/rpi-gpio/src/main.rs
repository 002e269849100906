//! rpi-gpio: the BCM2711 GPIO controller as the `gpio` service (see
//! `userlib::services::gpio`).
//!
//! Profile arguments: `name=` (default `gpio`), `reserved=14,15` (pins
//! whose function, level and pull clients may not change, e.g. the
//! console's UART pins).
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code))]

extern crate alloc;

use alloc::vec::Vec;
use driverkit::tock_registers::interfaces::{Readable, Writeable};
use driverkit::{names, serve, Action, Device, DeviceError, Mmio};
use rpi_gpio::{bank_field, function_field, pin, pull_field, GpioRegisters, PINS};
use userlib::abi::boot_info::StartInfo;
use userlib::abi::ObjectType;
use userlib::proto::{reply_error, OK};
use userlib::services::gpio::{Function, Pull, GET_FUNCTION, GET_PULL, NAME, PULL, READ, SET_FUNCTION, WRITE};
use userlib::{log, process, syscall, Error, Message};

#[cfg(not(test))]
userlib::entry!(main, heap = 16 * 1024);

fn main(_start: &StartInfo) -> Result<(), DeviceError> {
    let device = Device::get()?;
    let regs = device.map::<GpioRegisters>(0)?;
    let reserved: Vec<usize> = device
        .arg("reserved")
        .unwrap_or("")
        .split(',')
        .filter_map(|p| p.parse().ok())
        .collect();
    let ep = syscall::create(process().pool, ObjectType::Endpoint, 0)?;
    names::register(device.arg("name").unwrap_or(NAME), ep)?;
    log::info!("{}: {PINS} pins, reserved {reserved:?}", device.node());
    serve(ep, |msg, _badge| {
        Action::Reply(match handle(&regs, &reserved, msg) {
            Ok(Some(word)) => Message::with_words(OK, &[word]),
            Ok(None) => Message::new(OK),
            Err(e) => reply_error(e),
        })
    })?;
    Ok(())
}

fn handle(regs: &Mmio<GpioRegisters>, reserved: &[usize], msg: &Message) -> Result<Option<u64>, Error> {
    let p = pin(msg.word(0)).ok_or(Error::InvalidArgument)?;
    let changes = matches!(msg.label, SET_FUNCTION | WRITE | PULL);
    if changes && reserved.contains(&p) {
        return Err(Error::NoRights);
    }
    // `pin` checked the range, so every field exists.
    let (fsel, bank, pull) = (
        function_field(p).ok_or(Error::InvalidArgument)?,
        bank_field(p).ok_or(Error::InvalidArgument)?,
        pull_field(p).ok_or(Error::InvalidArgument)?,
    );
    match msg.label {
        SET_FUNCTION => {
            let f = Function::from_word(msg.word(1)).ok_or(Error::InvalidArgument)?;
            let reg = &regs.gpfsel[fsel.index];
            reg.set(fsel.replace(reg.get(), f as u32));
            Ok(None)
        }
        GET_FUNCTION => Ok(Some(fsel.get(regs.gpfsel[fsel.index].get()).into())),
        WRITE => {
            let bit = 1 << bank.shift;
            match msg.word(1) {
                0 => regs.gpclr[bank.index].set(bit),
                1 => regs.gpset[bank.index].set(bit),
                _ => return Err(Error::InvalidArgument),
            }
            Ok(None)
        }
        READ => Ok(Some(bank.get(regs.gplev[bank.index].get()).into())),
        PULL => {
            let mode = Pull::from_word(msg.word(1)).ok_or(Error::InvalidArgument)?;
            let reg = &regs.pup_pdn[pull.index];
            reg.set(pull.replace(reg.get(), mode as u32));
            Ok(None)
        }
        GET_PULL => Ok(Some(pull.get(regs.pup_pdn[pull.index].get()).into())),
        _ => Err(Error::InvalidArgument),
    }
}
