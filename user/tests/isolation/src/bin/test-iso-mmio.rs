//! A device's registers are out of reach without a capability: no handle
//! maps them, and the address where a careless kernel might have left them
//! (QEMU virt's PL011 UART, identity-mapped) faults.
#![no_std]
#![no_main]

use test_isolation::not_faulted;
use userlib::abi::{boot_info::StartInfo, Error, FaultKind};
use userlib::{process, syscall, Handle, Rights};

userlib::entry!(main);

const UART: u64 = 0x0900_0000;

fn main(_: &StartInfo) {
    // A forged handle maps nothing: small indices (where real handles live)
    // with generations no slot has reached, and random words.
    let me = process();
    let held = [me.console, me.task, me.thread, me.pool, me.parent, me.archive];
    let forged = (0..64)
        .map(|i| Handle::new(i, 0xabc))
        .chain([0xdead_beef, 0x7fff_ffff].map(Handle));
    for h in forged.filter(|h| !held.contains(h)) {
        let r = syscall::map(me.task, h, 1, 0, UART, Rights::READ | Rights::WRITE);
        assert_eq!(r, Err(Error::BadHandle), "map with forged handle {h:?}");
    }
    userlib::test::expect_fault(FaultKind::DataAbort, Some(UART));
    // SAFETY: none: nothing is mapped there; the read must fault, which is
    // the test.
    let v = unsafe { core::ptr::read_volatile(UART as *const u32) };
    not_faulted(format_args!("read {v:#x} from the UART's registers at {UART:#x}"))
}
