//! Revoke takes every descendant, however the tree was reshaped (issue 11,
//! finding 1): deep chains, wide fans, and children handed up to their
//! grandparent when a middle capability is deleted. The fault-handler link
//! is a capability like any other: revoking the endpoint it was made from
//! ends it, so the thread's next fault is not delivered there.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use test_caps::check;
use userlib::abi::boot_info::StartInfo;
use userlib::abi::{Error, ObjectType};
use userlib::test::expect_err;
use userlib::{process, syscall, thread, Handle, Rights, Timeout};

userlib::entry!(main);

fn main(_: &StartInfo) {
    check("revoke: deep chain", deep_chain);
    check("revoke: wide fan with re-parented grandchildren", reparented);
    check(
        "revoke: the fault-handler link goes with its capability",
        fault_handler_link,
    );
}

fn new(ty: ObjectType) -> Handle {
    syscall::create(process().pool, ty, 0).expect("create")
}

fn all_gone(what: &str, handles: &[Handle]) {
    for h in handles {
        expect_err(what, syscall::cap_info(*h), Error::BadHandle);
    }
}

fn deep_chain() {
    let root = new(ObjectType::Endpoint);
    let mut chain = Vec::new();
    let mut at = root;
    for _ in 0..300 {
        at = syscall::cap_copy(at, Rights::FULL).expect("copy");
        chain.push(at);
    }
    syscall::cap_revoke(root).expect("revoke");
    all_gone("chain member after revoke", &chain);
    syscall::cap_info(root).expect("the revoked capability itself stays");
    syscall::cap_delete(root).expect("delete");
}

fn reparented() {
    let root = new(ObjectType::Notification);
    let mut all = Vec::new();
    let mut middles = Vec::new();
    for _ in 0..20 {
        let middle = syscall::cap_copy(root, Rights::FULL).expect("copy");
        for _ in 0..5 {
            let child = syscall::cap_copy(middle, Rights::FULL).expect("copy");
            all.push(child);
            all.push(syscall::cap_copy(child, Rights::FULL).expect("copy"));
        }
        middles.push(middle);
    }
    // Every other middle goes: its children become the root's.
    for (i, m) in middles.iter().enumerate() {
        if i % 2 == 0 {
            syscall::cap_delete(*m).expect("delete middle");
        } else {
            all.push(*m);
        }
    }
    syscall::cap_revoke(root).expect("revoke");
    all_gone("descendant after revoke", &all);
    syscall::cap_delete(root).expect("delete");
}

fn fault_handler_link() {
    let ep = new(ObjectType::Endpoint);
    let go = new(ObjectType::Notification);
    let derived = syscall::cap_copy(ep, Rights::SEND | Rights::GRANT).expect("copy");
    let worker = thread::spawn(move || {
        let _ = syscall::wait(go, Timeout::Forever);
        // SAFETY: none: this read of an unmapped address must fault, with
        // no handler left to report to (the kernel ends the thread).
        unsafe { core::ptr::read_volatile(0x100 as *const u64) };
    })
    .expect("spawn");
    syscall::thread_set_fault_handler(worker.thread(), derived).expect("set fault handler");
    syscall::cap_revoke(ep).expect("revoke");
    expect_err(
        "derived capability after revoke",
        syscall::cap_info(derived),
        Error::BadHandle,
    );
    syscall::signal(go, 1).expect("signal");
    match syscall::recv(ep, Timeout::Micros(200_000)) {
        Err(Error::TimedOut) => {}
        Ok(_) => userlib::fail(1, "a fault reached the handler through a revoked capability"),
        Err(e) => panic!("recv: {e}"),
    }
    drop(worker);
    syscall::cap_delete(go).expect("delete");
    syscall::cap_delete(ep).expect("delete");
}
