//! The counters are behind a capability (issue 11, finding 5). EL0 has no
//! access of its own to the PMU: the kernel carries out a cycle-counter
//! read only for a task holding the counters capability with `READ`, and
//! `KernelStats` takes that capability. This test gets it from init
//! (`config::TEST_COUNTERS`); most programs do not (test-sysinfo checks).
//! - with it: `KernelStats` answers and the counter reads and advances
//!   (into a low register and into x30), and event counter 0
//!   (instructions retired) reads, advancing where QEMU counts the event
//!   (under `-icount`);
//! - `KernelStats` with another capability is `WrongType`, with a copy
//!   without `READ` `NoRights`;
//! - with it, every other PMU access still faults: writing `PMCR_EL0`
//!   (the old `PMUSERENR_EL0 = 0b101` let every task do that), reading
//!   `PMCR_EL0`, writing the cycle counter, writing event counter 0's
//!   event, reading event counter 1, a read into x20;
//! - a copy with `READ` keeps the access after the original goes; once the
//!   last capability with `READ` is gone the read is an undefined-
//!   instruction fault and `KernelStats` has nothing to name.
#![no_std]
#![no_main]

use core::arch::asm;
use userlib::abi::boot_info::StartInfo;
use userlib::abi::{Error, FaultKind, ObjectType};
use userlib::arch::{cycles, instructions};
use userlib::test::expect_err;
use userlib::{println, process, syscall, thread, Handle, Rights, Timeout};

userlib::entry!(main);

fn main(_: &StartInfo) {
    let me = process();
    assert!(me.counters != Handle::NULL, "init gives this test the counters");
    let info = syscall::cap_info(me.counters).expect("cap info");
    assert_eq!(info.object, Some(ObjectType::Counters));
    assert!(info.rights.contains(Rights::READ), "rights {:?}", info.rights);

    // With the capability.
    let stats = syscall::kernel_stats(me.counters).expect("KernelStats with the counters");
    assert!(stats.objects > 0 && stats.free_bytes > 0, "{stats:?}");
    let a = cycles();
    let b = cycles();
    assert!(b > a, "the counter advances: {a} then {b}");
    let lr: u64;
    // SAFETY: reads the counter into x30 (the link register; nothing
    // is called here), which the kernel restores from the context too.
    unsafe { asm!("mrs x30, pmccntr_el0", "mov {}, x30", out(reg) lr, out("x30") _, options(nostack)) };
    assert!(lr > b, "a read into x30: {lr} after {b}");
    println!("test-caps-counters: with the capability: KernelStats and the counter ({a}, {b}, {lr})");
    // Event counter 0, instructions retired (the file benchmarks' count):
    // the read is carried out, and the counter advances by at least the
    // instructions between two reads. QEMU counts this event only under
    // `-icount` (as the benchmarks run); elsewhere it stays 0.
    let i = instructions();
    for _ in 0..100 {
        core::hint::black_box(0);
    }
    let j = instructions();
    assert!(
        (i, j) == (0, 0) || j.wrapping_sub(i) >= 100,
        "instructions retired advance: {i} then {j}"
    );
    println!("test-caps-counters: instructions retired read ({i}, {j})");

    // KernelStats needs the counters, with READ.
    expect_err(
        "KernelStats with the pool",
        syscall::kernel_stats(me.pool),
        Error::WrongType,
    );
    expect_err(
        "KernelStats with the task",
        syscall::kernel_stats(me.task),
        Error::WrongType,
    );
    let no_read = syscall::cap_copy(me.counters, Rights::GRANT).expect("copy without READ");
    expect_err(
        "KernelStats without READ",
        syscall::kernel_stats(no_read),
        Error::NoRights,
    );
    expect_err(
        "KernelStats with no handle",
        syscall::kernel_stats(Handle::NULL),
        Error::BadHandle,
    );
    expect_err(
        "creating counters",
        syscall::create(me.pool, ObjectType::Counters, 0),
        Error::InvalidArgument,
    );

    // Even with it, only the counter's read is carried out.
    faults("writing PMCR_EL0 (reset and stop the counters)", || {
        // SAFETY: none needed: the write must trap (and does not happen).
        unsafe { asm!("msr pmcr_el0, xzr", options(nostack)) }
    });
    faults("reading PMCR_EL0", || {
        // SAFETY: as above.
        unsafe { asm!("mrs x0, pmcr_el0", out("x0") _, options(nostack)) }
    });
    faults("writing the cycle counter", || {
        // SAFETY: as above.
        unsafe { asm!("msr pmccntr_el0, xzr", options(nostack)) }
    });
    faults("writing event counter 0's event (PMEVTYPER0_EL0)", || {
        // SAFETY: as above.
        unsafe { asm!("msr pmevtyper0_el0, xzr", options(nostack)) }
    });
    faults("reading event counter 1", || {
        // SAFETY: as above.
        unsafe { asm!("mrs x0, pmevcntr1_el0", out("x0") _, options(nostack)) }
    });
    faults("reading the counter into x20", || {
        // SAFETY: as above.
        unsafe { asm!("mrs x20, pmccntr_el0", out("x20") _, options(nostack)) }
    });
    println!("test-caps-counters: PMU writes and other registers fault, with the capability too");

    // A copy with READ is as good; without any, the read faults.
    let copy = syscall::cap_copy(me.counters, Rights::READ).expect("copy with READ");
    syscall::cap_delete(me.counters).expect("delete the counters");
    let c = cycles();
    syscall::kernel_stats(copy).expect("KernelStats with the copy");
    syscall::cap_delete(copy).expect("delete the copy");
    faults("reading the counter without the capability", || {
        let _ = cycles();
    });
    faults("reading instructions retired without the capability", || {
        let _ = instructions();
    });
    expect_err(
        "KernelStats after the delete",
        syscall::kernel_stats(me.counters),
        Error::BadHandle,
    );
    syscall::cap_delete(no_read).expect("delete");
    println!("test-caps-counters: without the capability: read at {c} was the last; now a fault");
}

/// Run `f` in a thread of this task whose fault handler is an endpoint
/// here: it must fault with an undefined instruction.
fn faults(what: &str, f: fn()) {
    let me = process();
    let ep = syscall::create(me.pool, ObjectType::Endpoint, 0).expect("endpoint");
    let handler = syscall::cap_copy(ep, Rights::SEND | Rights::GRANT).expect("copy");
    let go = syscall::create(me.pool, ObjectType::Notification, 0).expect("notification");
    let worker = thread::spawn(move || {
        let _ = syscall::wait(go, Timeout::Forever);
        f();
    })
    .expect("spawn");
    syscall::thread_set_fault_handler(worker.thread(), handler).expect("set fault handler");
    syscall::signal(go, 1).expect("signal");
    match syscall::recv(ep, Timeout::Micros(5_000_000)) {
        Ok((m, _)) => {
            assert_eq!(m.label, FaultKind::LABEL, "{what}: not a fault message");
            assert_eq!(
                FaultKind::from_word(m.word(0)),
                FaultKind::UndefinedInstruction,
                "{what}: fault kind"
            );
        }
        Err(Error::TimedOut) => panic!("{what}: did not fault"),
        Err(e) => panic!("{what}: recv: {e}"),
    }
    // The worker waits for a reply that never comes: deleting it ends it.
    drop(worker);
    for h in [go, handler, ep] {
        syscall::cap_delete(h).expect("delete");
    }
}
