//! Services are routed, not looked up (issue 11, finding 7). Init routes
//! this program to `console` only (`config::TEST_ROUTES`), so:
//!
//! - looking up any other service, registered (`blk`, `display`) or not,
//!   is refused with `NoRights` at once (not `WouldBlock`: an unrouted task
//!   learns nothing, and `connect` does not wait);
//! - a lookup for one of its clients (`names::lookup_client`) is routed
//!   the same: `blk` refused, `console` given;
//! - registering any name is refused with `NoRights`, `console` included;
//! - while `uart-pl011` (the provider of `console`) is stopped, `console`
//!   is free, and still no other task can take it; once the driver is
//!   started again, the routed lookup finds the driver's endpoint.
#![no_std]
#![no_main]

use userlib::abi::boot_info::StartInfo;
use userlib::abi::ObjectType;
use userlib::ipc::Timeout;
use userlib::names::{self, supervisor};
use userlib::test::expect_err;
use userlib::{println, process, syscall, Error};

userlib::entry!(main, heap = 64 * 1024);

/// The provider of `console` in the profiles.
const CONSOLE_DRIVER: &str = "uart-pl011";

fn main(_: &StartInfo) {
    let me = process();
    // Routed: the console, as soon as its driver has registered it.
    let console = names::connect("console", Timeout::millis(10_000)).expect("the routed console");
    syscall::cap_delete(console).expect("drop the console endpoint");

    for name in ["blk", "display", "rng", "keyboard", "no-such-service"] {
        let t = syscall::now_us();
        expect_err(
            "a lookup of an unrouted service",
            names::connect(name, Timeout::millis(2000)),
            Error::NoRights,
        );
        let took_ms = (syscall::now_us() - t) / 1000;
        assert!(took_ms < 1000, "{name}: refused only after {took_ms} ms");
        println!("test-routes: lookup {name}: NoRights");
    }

    // A lookup for one of this task's clients (`NS_LOOKUP_CLIENT`, as the
    // bus makes for each device) is routed the same; client 0 (this task's
    // own badge) is not one; the console's is badged apart.
    expect_err(
        "a client's lookup of blk",
        names::lookup_client("blk", 1),
        Error::NoRights,
    );
    expect_err(
        "client 0's lookup",
        names::lookup_client("console", 0),
        Error::InvalidArgument,
    );
    let client = names::lookup_client("console", 3).expect("the console for client 3");
    syscall::cap_delete(client).expect("drop the client's console endpoint");
    println!("test-routes: client lookups routed: blk NoRights, console for client 3");

    let ep = syscall::create(me.pool, ObjectType::Endpoint, 0).expect("an endpoint");
    for name in ["my-service", "console", "blk9"] {
        expect_err("registering a name", names::register(name, ep), Error::NoRights);
        println!("test-routes: register {name}: NoRights");
    }

    // The squatter: while the console's driver is down, its name is free.
    match supervisor::kill(CONSOLE_DRIVER) {
        Ok(()) => {
            expect_err(
                "taking `console` while its driver is down",
                names::register("console", ep),
                Error::NoRights,
            );
            expect_err(
                "looking up `console` while its driver is down",
                names::lookup("console"),
                Error::WouldBlock,
            );
            println!("test-routes: register console while {CONSOLE_DRIVER} is down: NoRights");
            supervisor::restart(CONSOLE_DRIVER).expect("start the console driver again");
            let console = names::connect("console", Timeout::millis(10_000)).expect("the console back");
            syscall::cap_delete(console).expect("drop the console endpoint");
            println!("test-routes: console is back, from {CONSOLE_DRIVER}");
        }
        Err(e) => println!("test-routes: no {CONSOLE_DRIVER} to stop ({e}): squatter case not run"),
    }
    syscall::cap_delete(ep).expect("delete the endpoint");
    println!("test-routes: all checks passed");
}
