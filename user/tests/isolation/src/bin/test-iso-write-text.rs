//! A program's code and constants are mapped from the boot archive's pages,
//! shared and read-only: a child started with `Spawn::share` (the default)
//! is not charged for its read-only segments, one started with copies is;
//! the archive cannot be mapped writable; and writing to a code page
//! faults.
#![no_std]
#![no_main]

use test_isolation::not_faulted;
use userlib::abi::boot_info::StartInfo;
use userlib::abi::{Error, FaultKind, PAGE_SIZE};
use userlib::loader::{self, Spawn};
use userlib::syscall::{self, TaskState};
use userlib::test::expect_err;
use userlib::{println, process, vspace, Rights};

userlib::entry!(main);

fn main(start: &StartInfo) {
    if start.args() == "sleep" {
        loop {
            syscall::sleep_ms(10_000);
        }
    }
    let me = process();
    let elf = loader::find_program(me.name()).expect("find myself in the archive");
    let plan = loader::plan(elf, &[]).expect("my own ELF file");
    let shared: u64 = plan
        .segments()
        .filter(|s| loader::shared_page(elf, s).is_some())
        .map(|s| s.pages * PAGE_SIZE as u64)
        .sum();
    let text = plan
        .segments()
        .find(|s| s.rights.contains(Rights::EXECUTE))
        .expect("a code segment");
    assert!(
        loader::shared_page(elf, text).is_some(),
        "the code segment does not lie page-aligned in the archive"
    );

    let copied = charged(elf, false);
    let mapped = charged(elf, true);
    println!(
        "test-iso-write-text: a child's pool pays {} KiB with its code shared, {} KiB with it copied ({} KiB of read-only segments)",
        mapped >> 10,
        copied >> 10,
        shared >> 10
    );
    assert!(
        copied >= mapped + shared,
        "sharing saved {} bytes of the {shared} bytes of read-only segments",
        copied.saturating_sub(mapped)
    );

    // The archive is never writable, whatever the capability.
    let va = vspace::reserve(1);
    expect_err(
        "the archive mapped writable",
        syscall::map(me.task, me.archive, 1, 0, va, Rights::READ | Rights::WRITE),
        Error::NoRights,
    );

    // Writing to this very code faults.
    let addr = main as *const () as u64;
    userlib::test::expect_fault(FaultKind::DataAbort, Some(addr));
    // SAFETY: none: the code page is mapped read-only and executable; this
    // write must fault, which is the test.
    unsafe { core::ptr::write_volatile(addr as *mut u32, 0) };
    not_faulted(format_args!("wrote the code page at {addr:#x}"))
}

/// Bytes a child running this program (asleep) takes from its pool, with
/// its read-only segments shared from the archive or copied.
fn charged(elf: &'static [u8], share: bool) -> u64 {
    let me = process();
    const POOL: u64 = 2 << 20;
    let child = loader::spawn(&Spawn {
        args: "sleep",
        pool_bytes: POOL,
        console: false,
        share,
        ..Spawn::new(me.name(), elf)
    })
    .expect("start a child");
    let t0 = syscall::now_us();
    while syscall::task_info(child.task).expect("task_info(child)").state != Some(TaskState::Blocked) {
        assert!(syscall::now_us() - t0 < 5_000_000, "the child never sleeps");
        syscall::sleep_ms(1);
    }
    let left = syscall::cap_info(child.pool).expect("cap_info(child pool)").size;
    child.destroy().expect("destroy the child");
    POOL - left
}
