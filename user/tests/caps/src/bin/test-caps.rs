//! Capabilities: forged and stale handles fail with `BadHandle`; rights
//! are checked by every operation; copies never gain rights; a minted
//! badge reaches the receiver; revoke removes derived capabilities,
//! recursively, and the mappings made through them.
#![no_std]
#![no_main]

extern crate alloc;

use test_caps::check;
use userlib::abi::boot_info::StartInfo;
use userlib::abi::{Error, ObjectType, PAGE_SIZE};
use userlib::test::{expect_err, Rng};
use userlib::vspace::{self, Mapping};
use userlib::{log, process, syscall, thread, Handle, Message, Rights, Timeout};

userlib::entry!(main);

fn main(_: &StartInfo) {
    check("forged handles", forged_handles);
    check("stale handles", stale_handles);
    check("rights: endpoints", rights_endpoints);
    check("rights: notifications", rights_notifications);
    check("rights: memory", rights_memory);
    check("rights: pool, task, thread", rights_pool_task_thread);
    check("rights: grant", rights_grant);
    check("copies never gain rights", no_amplification);
    check("wrong object types", wrong_types);
    check("mint: badge seen by the receiver", mint_badge);
    check("revoke: derived capabilities", revoke_caps);
    check("revoke: mappings through derived capabilities", revoke_mappings);
    check("delete", delete);
}

fn pool() -> Handle {
    process().pool
}

fn new(ty: ObjectType, size: u64) -> Handle {
    syscall::create(pool(), ty, size).unwrap_or_else(|e| panic!("create {ty:?}: {e}"))
}

/// Handles this task really holds (from start-up), which a random handle
/// may hit by chance.
fn known(h: Handle) -> bool {
    let me = process();
    [me.console, me.task, me.thread, me.pool, me.parent, me.archive].contains(&h)
}

fn forged_handles() {
    expect_err("null handle", syscall::cap_info(Handle::NULL), Error::BadHandle);
    let mut rng = Rng::new(0xca95);
    let mut tried = 0;
    while tried < 2000 {
        // Random index and generation, and small indices with random
        // generations (the likely forgery).
        let raw = match tried % 2 {
            0 => rng.next_u64() as u32,
            _ => Handle::new(rng.below(64) as u32, rng.below(4096) as u32).0,
        };
        let h = Handle(raw);
        if known(h) {
            continue;
        }
        tried += 1;
        expect_err("random handle", syscall::cap_info(h), Error::BadHandle);
        expect_err("random handle", syscall::signal(h, 1), Error::BadHandle);
        expect_err("random handle", syscall::cap_delete(h), Error::BadHandle);
    }
    // A real handle with bits above 32 set is invalid, not truncated.
    let wide = (1u64 << 32) | process().console.0 as u64;
    // SAFETY: CapInfo changes no memory.
    let r = unsafe { userlib::sys::call(userlib::abi::Syscall::CapInfo, &[wide, 0, 0, 0, 0, 0, 0, 0]) };
    assert_eq!(r[0], Error::BadHandle as u64, "handle with high bits");
}

fn stale_handles() {
    let ep = new(ObjectType::Endpoint, 0);
    syscall::cap_delete(ep).unwrap();
    expect_err("deleted handle", syscall::cap_info(ep), Error::BadHandle);
    expect_err(
        "deleted handle, send",
        syscall::send(ep, &Message::new(1), Timeout::NonBlocking),
        Error::BadHandle,
    );
    // The slot is reused with a new generation; the old handle stays dead.
    let fresh: alloc::vec::Vec<Handle> = (0..8).map(|_| new(ObjectType::Notification, 0)).collect();
    expect_err("stale handle after slot reuse", syscall::cap_info(ep), Error::BadHandle);
    assert!(!fresh.contains(&ep), "a new capability got the old handle");
    for h in fresh {
        syscall::cap_delete(h).unwrap();
        expect_err("deleted notification", syscall::signal(h, 1), Error::BadHandle);
    }
}

fn rights_endpoints() {
    let ep = new(ObjectType::Endpoint, 0);
    let recv_only = syscall::cap_copy(ep, Rights::RECEIVE).unwrap();
    let send_only = syscall::cap_copy(ep, Rights::SEND).unwrap();
    expect_err(
        "send without SEND",
        syscall::send(recv_only, &Message::new(1), Timeout::NonBlocking),
        Error::NoRights,
    );
    expect_err(
        "call without SEND",
        syscall::call_timeout(recv_only, &Message::new(1), Timeout::NonBlocking),
        Error::NoRights,
    );
    expect_err(
        "recv without RECEIVE",
        syscall::recv(send_only, Timeout::NonBlocking),
        Error::NoRights,
    );
    expect_err(
        "reply_recv without RECEIVE",
        syscall::reply_recv(send_only, &Message::new(0), Timeout::NonBlocking),
        Error::NoRights,
    );
    // With the rights, the same calls get past the rights check.
    expect_err(
        "send with SEND",
        syscall::send(send_only, &Message::new(1), Timeout::NonBlocking),
        Error::WouldBlock,
    );
    expect_err(
        "recv with RECEIVE",
        syscall::recv(recv_only, Timeout::NonBlocking),
        Error::WouldBlock,
    );
    for h in [recv_only, send_only, ep] {
        syscall::cap_delete(h).unwrap();
    }
}

fn rights_notifications() {
    let n = new(ObjectType::Notification, 0);
    let wait_only = syscall::cap_copy(n, Rights::RECEIVE).unwrap();
    let signal_only = syscall::cap_copy(n, Rights::SEND).unwrap();
    expect_err("signal without SEND", syscall::signal(wait_only, 1), Error::NoRights);
    expect_err(
        "wait without RECEIVE",
        syscall::wait(signal_only, Timeout::NonBlocking),
        Error::NoRights,
    );
    syscall::signal(signal_only, 0b101).unwrap();
    assert_eq!(syscall::wait(wait_only, Timeout::NonBlocking), Ok(0b101));
    for h in [wait_only, signal_only, n] {
        syscall::cap_delete(h).unwrap();
    }
}

fn rights_memory() {
    let me = process();
    let mem = new(ObjectType::Memory, 1);
    let addr = vspace::reserve(1);
    let no_map = syscall::cap_copy(mem, Rights::READ | Rights::WRITE | Rights::GRANT).unwrap();
    expect_err(
        "map without MAP",
        syscall::map(me.task, no_map, 1, 0, addr, Rights::READ),
        Error::NoRights,
    );
    let read_only = syscall::cap_copy(mem, Rights::READ | Rights::MAP).unwrap();
    expect_err(
        "map writable through a read-only cap",
        syscall::map(me.task, read_only, 1, 0, addr, Rights::READ | Rights::WRITE),
        Error::NoRights,
    );
    expect_err(
        "map executable without EXECUTE",
        syscall::map(me.task, read_only, 1, 0, addr, Rights::READ | Rights::EXECUTE),
        Error::NoRights,
    );
    expect_err(
        "W+X mapping",
        syscall::map(me.task, mem, 1, 0, addr, Rights::READ | Rights::WRITE | Rights::EXECUTE),
        Error::InvalidArgument,
    );
    expect_err(
        "physical address without MANAGE",
        syscall::memory_physical(read_only),
        Error::NoRights,
    );
    // Only RAM made for DMA has a physical address; unknown flags are refused.
    expect_err(
        "physical address of RAM not made for DMA",
        syscall::memory_physical(mem),
        Error::InvalidState,
    );
    let dma = syscall::create_memory(pool(), 1, userlib::abi::MEMORY_CONTIGUOUS).expect("create DMA memory");
    let (physical, size) = syscall::memory_physical(dma).expect("physical address of DMA memory");
    assert!(
        physical % 4096 == 0 && size == 4096,
        "DMA memory at {physical:#x}, {size} bytes"
    );
    syscall::cap_delete(dma).unwrap();
    expect_err(
        "memory with unknown flags",
        syscall::create_memory(pool(), 1, 2),
        Error::InvalidArgument,
    );
    syscall::map(me.task, read_only, 1, 0, addr, Rights::READ).expect("read-only map through read-only cap");
    expect_err(
        "map twice",
        syscall::map(me.task, mem, 1, 0, addr, Rights::READ),
        Error::AlreadyMapped,
    );
    expect_err(
        "unaligned map",
        syscall::map(me.task, mem, 1, 0, addr + 8, Rights::READ),
        Error::InvalidArgument,
    );
    expect_err(
        "map past the object",
        syscall::map(me.task, mem, 2, 0, vspace::reserve(2), Rights::READ),
        Error::InvalidArgument,
    );
    expect_err(
        "map into the kernel half",
        syscall::map(me.task, mem, 1, 0, 0xffff_0000_0000_0000, Rights::READ),
        Error::InvalidArgument,
    );
    syscall::unmap(me.task, addr, 1).unwrap();
    expect_err("unmap twice", syscall::unmap(me.task, addr, 1), Error::NotMapped);
    for h in [no_map, read_only, mem] {
        syscall::cap_delete(h).unwrap();
    }
}

fn rights_pool_task_thread() {
    let me = process();
    // Our own pool capability carries no GRANT: use a sub-pool of it.
    let sub = new(ObjectType::Pool, 64 * 1024);
    let pool_no_manage = syscall::cap_copy(sub, Rights::READ | Rights::GRANT).unwrap();
    expect_err(
        "create without MANAGE",
        syscall::create(pool_no_manage, ObjectType::Endpoint, 0),
        Error::NoRights,
    );
    let task = new(ObjectType::Task, 0);
    let task_ro = syscall::cap_copy(task, Rights::READ).unwrap();
    let mem = new(ObjectType::Memory, 1);
    expect_err(
        "map into a task without MANAGE",
        syscall::map(task_ro, mem, 1, 0, 0x50_0000, Rights::READ),
        Error::NoRights,
    );
    expect_err(
        "install into a task without MANAGE",
        syscall::task_install(task_ro, mem, Rights::READ),
        Error::NoRights,
    );
    expect_err(
        "destroy a task without MANAGE",
        syscall::task_destroy(task_ro),
        Error::NoRights,
    );
    expect_err(
        "thread in a task without MANAGE",
        syscall::thread_create(me.pool, task_ro, 0x40_0000, 0x8000_0000, 0, 1),
        Error::NoRights,
    );
    let t = syscall::thread_create(me.pool, task, 0x40_0000, 0x8000_0000, 0, 1).expect("thread (never started)");
    let t_ro = syscall::cap_copy(t, Rights::READ).unwrap();
    expect_err("resume without MANAGE", syscall::thread_resume(t_ro), Error::NoRights);
    expect_err(
        "configure without MANAGE",
        syscall::thread_configure(t_ro, 1, None),
        Error::NoRights,
    );
    expect_err(
        "registers without MANAGE",
        syscall::thread_registers(t_ro),
        Error::NoRights,
    );
    assert_eq!(
        syscall::thread_registers(t),
        Ok((0x40_0000, 0x8000_0000)),
        "a new thread's registers"
    );
    expect_err(
        "priority above the caller's",
        syscall::thread_configure(t, userlib::abi::MAX_PRIORITY, None),
        Error::InvalidArgument,
    );
    for h in [t_ro, t, mem, task_ro, task, pool_no_manage, sub] {
        syscall::cap_delete(h).unwrap();
    }
}

fn rights_grant() {
    let ep = new(ObjectType::Endpoint, 0);
    let no_grant = syscall::cap_copy(ep, Rights::SEND | Rights::RECEIVE).unwrap();
    expect_err(
        "copy without GRANT",
        syscall::cap_copy(no_grant, Rights::SEND),
        Error::NoRights,
    );
    expect_err(
        "mint without GRANT",
        syscall::cap_mint(no_grant, Rights::SEND, 5),
        Error::NoRights,
    );
    let task = new(ObjectType::Task, 0);
    expect_err(
        "install without GRANT",
        syscall::task_install(task, no_grant, Rights::SEND),
        Error::NoRights,
    );
    // Transfer in a message needs GRANT too: the send fails before blocking.
    let mut m = Message::new(1);
    m.push_cap(no_grant, Rights::SEND);
    expect_err(
        "transfer without GRANT",
        syscall::send(ep, &m, Timeout::NonBlocking),
        Error::NoRights,
    );
    for h in [task, no_grant, ep] {
        syscall::cap_delete(h).unwrap();
    }
}

fn no_amplification() {
    let ep = new(ObjectType::Endpoint, 0);
    let weak = syscall::cap_copy(ep, Rights::SEND | Rights::GRANT).unwrap();
    let again = syscall::cap_copy(weak, Rights::FULL).unwrap();
    assert_eq!(syscall::cap_info(again).unwrap().rights, Rights::SEND | Rights::GRANT);
    let task = new(ObjectType::Task, 0);
    let installed = syscall::task_install(task, weak, Rights::FULL);
    assert!(installed.is_ok(), "install: {installed:?}");
    for h in [task, again, weak, ep] {
        syscall::cap_delete(h).unwrap();
    }
}

fn wrong_types() {
    let ep = new(ObjectType::Endpoint, 0);
    let n = new(ObjectType::Notification, 0);
    let mem = new(ObjectType::Memory, 1);
    expect_err("signal an endpoint", syscall::signal(ep, 1), Error::WrongType);
    expect_err(
        "receive on a notification",
        syscall::recv(n, Timeout::NonBlocking),
        Error::WrongType,
    );
    expect_err(
        "create from an endpoint",
        syscall::create(ep, ObjectType::Endpoint, 0),
        Error::WrongType,
    );
    expect_err(
        "map an endpoint",
        syscall::map(process().task, ep, 1, 0, vspace::reserve(1), Rights::READ),
        Error::WrongType,
    );
    expect_err(
        "map into memory",
        syscall::map(mem, mem, 1, 0, vspace::reserve(1), Rights::READ),
        Error::WrongType,
    );
    expect_err("resume an endpoint", syscall::thread_resume(ep), Error::WrongType);
    expect_err(
        "console write to an endpoint",
        syscall::console_write(ep, b"x"),
        Error::WrongType,
    );
    expect_err(
        "create a thread with Create",
        syscall::create(process().pool, ObjectType::Thread, 0),
        Error::InvalidArgument,
    );
    for h in [mem, n, ep] {
        syscall::cap_delete(h).unwrap();
    }
}

fn mint_badge() {
    let ep = new(ObjectType::Endpoint, 0);
    let badged = syscall::cap_mint(ep, Rights::SEND | Rights::GRANT, 0xb00c).unwrap();
    assert_eq!(syscall::cap_info(badged).unwrap().badge, 0xb00c);
    expect_err(
        "mint an already badged cap",
        syscall::cap_mint(badged, Rights::SEND, 1),
        Error::InvalidState,
    );
    let copied = syscall::cap_copy(badged, Rights::SEND).unwrap();
    assert_eq!(
        syscall::cap_info(copied).unwrap().badge,
        0xb00c,
        "copies keep the badge"
    );
    let sender = thread::spawn(move || {
        syscall::send(badged, &Message::with_words(7, &[1]), Timeout::Forever).expect("send badged");
        syscall::send(copied, &Message::with_words(8, &[2]), Timeout::Forever).expect("send copy");
        syscall::send(ep, &Message::with_words(9, &[3]), Timeout::Forever).expect("send unbadged");
    })
    .expect("thread");
    for (label, badge) in [(7, 0xb00c), (8, 0xb00c), (9, 0)] {
        let (m, b) = syscall::recv(ep, Timeout::millis(5000)).expect("receive");
        assert_eq!((m.label, b), (label, badge), "message {label}");
    }
    sender.join().unwrap();
    for h in [copied, badged, ep] {
        syscall::cap_delete(h).unwrap();
    }
}

fn revoke_caps() {
    let n = new(ObjectType::Notification, 0);
    let child = syscall::cap_copy(n, Rights::FULL).unwrap();
    let grandchild = syscall::cap_copy(child, Rights::SEND | Rights::GRANT).unwrap();
    let sibling = syscall::cap_mint(n, Rights::SEND, 3).unwrap();
    // A copy in another task is derived too.
    let task = new(ObjectType::Task, 0);
    let remote = syscall::task_install(task, child, Rights::SEND).unwrap();
    let _ = remote;
    syscall::cap_revoke(n).unwrap();
    for (what, h) in [("copy", child), ("copy of copy", grandchild), ("minted", sibling)] {
        expect_err(what, syscall::cap_info(h), Error::BadHandle);
    }
    syscall::signal(n, 1).expect("the revoked cap itself stays");
    assert_eq!(syscall::wait(n, Timeout::NonBlocking), Ok(1));
    // Revoking a derived cap spares its parent and siblings.
    let a = syscall::cap_copy(n, Rights::FULL).unwrap();
    let b = syscall::cap_copy(n, Rights::FULL).unwrap();
    let a1 = syscall::cap_copy(a, Rights::FULL).unwrap();
    syscall::cap_revoke(a).unwrap();
    expect_err("child of revoked", syscall::cap_info(a1), Error::BadHandle);
    assert!(syscall::cap_info(a).is_ok() && syscall::cap_info(b).is_ok());
    for h in [a, b, task, n] {
        syscall::cap_delete(h).unwrap();
    }
}

fn revoke_mappings() {
    let me = process();
    let mem = new(ObjectType::Memory, 2);
    let derived = syscall::cap_copy(mem, Rights::FULL).unwrap();
    let derived2 = syscall::cap_copy(derived, Rights::READ | Rights::WRITE | Rights::MAP).unwrap();
    let (a, b) = (vspace::reserve(1), vspace::reserve(1));
    syscall::map(me.task, derived, 1, 0, a, Rights::READ | Rights::WRITE).unwrap();
    syscall::map(me.task, derived2, 1, 1, b, Rights::READ).unwrap();
    // The mappings work ...
    // SAFETY: `a` is mapped read-write just above; nothing else uses it.
    unsafe { core::ptr::write_volatile(a as *mut u64, 42) };
    // ... and another task's mapping through a derived cap goes too.
    let task = new(ObjectType::Task, 0);
    let installed = syscall::task_install(task, derived, Rights::READ | Rights::MAP).unwrap();
    let _ = installed;
    syscall::map(task, derived, 1, 0, 0x50_0000, Rights::READ).unwrap();
    syscall::cap_revoke(mem).unwrap();
    expect_err(
        "unmap after revoke (own)",
        syscall::unmap(me.task, a, 1),
        Error::NotMapped,
    );
    expect_err(
        "unmap after revoke (own, copy of copy)",
        syscall::unmap(me.task, b, 1),
        Error::NotMapped,
    );
    expect_err(
        "unmap after revoke (other task)",
        syscall::unmap(task, 0x50_0000, 1),
        Error::NotMapped,
    );
    // The memory itself survives, with its contents.
    let m = Mapping::map(mem, 1, Rights::READ).unwrap();
    assert_eq!(m.as_slice()[..8], 42u64.to_le_bytes());
    drop(m);
    syscall::cap_delete(task).unwrap();
    syscall::cap_delete(mem).unwrap();
    log::info!("{} bytes mapped and unmapped by revoke", 2 * PAGE_SIZE);
}

fn delete() {
    let me = process();
    let before = syscall::cap_info(me.pool).unwrap().size;
    let mem = new(ObjectType::Memory, 4);
    let copy = syscall::cap_copy(mem, Rights::FULL).unwrap();
    let addr = vspace::reserve(4);
    syscall::map(me.task, copy, 4, 0, addr, Rights::READ).unwrap();
    assert!(
        syscall::cap_info(me.pool).unwrap().size < before,
        "memory is charged to the pool"
    );
    syscall::cap_delete(copy).unwrap();
    expect_err(
        "mapping made through a deleted cap",
        syscall::unmap(me.task, addr, 4),
        Error::NotMapped,
    );
    assert!(syscall::cap_info(mem).is_ok(), "deleting a copy keeps the original");
    syscall::cap_delete(mem).unwrap();
    assert_eq!(
        syscall::cap_info(me.pool).unwrap().size,
        before,
        "the last delete refunds the pool"
    );
}
