//! W^X holds per memory object, across mappings (issue 11, finding 4).
//! Before, W^X held per mapping only: the same memory could be mapped
//! writable at one address and executable at another (in this task or in
//! another), so a task could write code through one view and run it
//! through the other. Now such a map fails with `InvalidState` and maps
//! nothing, whichever capability to the memory is used and whichever task
//! it maps into. One after the other (write, unmap, then map executable)
//! stays possible: that is how the loader starts programs.
#![no_std]
#![no_main]

use userlib::abi::boot_info::StartInfo;
use userlib::abi::{Error, ObjectType, PAGE_SIZE};
use userlib::test::expect_err;
use userlib::vspace::Mapping;
use userlib::{println, process, syscall, Rights};

userlib::entry!(main);

/// `ret`
const RET: u32 = 0xd65f_03c0;

const RW: Rights = Rights::READ.union(Rights::WRITE);
const RX: Rights = Rights::READ.union(Rights::EXECUTE);

/// Where this test maps into the other task (its address space is empty).
const OTHER_VA: u64 = 0x40_0000;

fn main(_: &StartInfo) {
    let me = process();
    let mem = syscall::create(me.pool, ObjectType::Memory, 2).expect("memory");
    // A second capability to the same memory: the rule is the object's.
    let copy = syscall::cap_copy(mem, Rights::FULL).expect("copy the capability");
    // Another task to map into (created, never started).
    let other = syscall::create(me.pool, ObjectType::Task, 0).expect("another task");

    // Writable here: executable nowhere.
    let mut w = Mapping::map(mem, 1, RW).expect("writable mapping");
    w.as_mut_slice()[..4].copy_from_slice(&RET.to_le_bytes());
    expect_err(
        "an executable alias of writable memory",
        Mapping::map(mem, 1, RX).map(drop),
        Error::InvalidState,
    );
    expect_err(
        "an executable alias through another capability",
        Mapping::map(copy, 1, RX).map(drop),
        Error::InvalidState,
    );
    expect_err(
        "an executable alias in another task",
        syscall::map(other, copy, 1, 0, OTHER_VA, RX),
        Error::InvalidState,
    );
    // The rule is per object: its other page cannot be code either.
    expect_err(
        "another page of the same object executable",
        syscall::map(other, mem, 1, 1, OTHER_VA, RX),
        Error::InvalidState,
    );
    // The refused maps mapped nothing: the other task's address is free.
    syscall::map(other, mem, 1, 0, OTHER_VA, Rights::READ).expect("read-only alias in the other task");
    syscall::unmap(other, OTHER_VA, 1).expect("unmap the read-only alias");
    // More writable and read-only views are fine.
    let w2 = Mapping::map(copy, 2, RW).expect("a second writable view");
    drop(Mapping::map(copy, 1, Rights::READ).expect("read-only alias"));
    drop(w2);
    expect_err(
        "executable while one writable view is left",
        Mapping::map(mem, 1, RX).map(drop),
        Error::InvalidState,
    );
    drop(w);

    // Not writable anywhere any more: it may become code, and it runs.
    let x = Mapping::map(mem, 1, RX).expect("executable mapping once not writable");
    // SAFETY: the page holds a `ret` (written above) and is mapped executable.
    let f: extern "C" fn() = unsafe { core::mem::transmute(x.addr() as usize) };
    f();
    // Executable here: writable nowhere.
    expect_err(
        "a writable alias of executable memory",
        Mapping::map(copy, 1, RW).map(drop),
        Error::InvalidState,
    );
    expect_err(
        "a writable alias in another task",
        syscall::map(other, mem, 2, 0, OTHER_VA, RW),
        Error::InvalidState,
    );
    // A second executable view, in the other task, is fine.
    syscall::map(other, copy, 1, 0, OTHER_VA, RX).expect("executable in the other task too");
    drop(x);
    expect_err(
        "writable while the other task still has it executable",
        Mapping::map(copy, 1, RW).map(drop),
        Error::InvalidState,
    );
    // Deleting the capability a mapping was made through unmaps it, and
    // the count goes with it.
    syscall::cap_delete(copy).expect("delete the copy");
    let w = Mapping::map(mem, 2, RW).expect("writable again once executable nowhere");
    assert_eq!(w.as_slice()[..4], RET.to_le_bytes(), "the memory kept its contents");
    drop(w);

    syscall::cap_delete(other).expect("delete the other task");
    syscall::cap_delete(mem).expect("delete the memory");
    println!(
        "test-caps-wx: no memory is writable at one address and executable at another ({} byte pages)",
        PAGE_SIZE
    );
}
