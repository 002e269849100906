//! `MemoryRead` and `MemoryWrite`: copies between a memory object and the
//! caller's own memory, checked by the kernel as it copies (issue 11/12:
//! servers copy a client's memory with them instead of mapping it, so a
//! client that revokes it makes the call fail, never the server fault).
//!
//! 1. Round trips at odd offsets and lengths, seen through a mapping too.
//! 2. Every bad path: no handle, a deleted one, the wrong object type,
//!    missing rights, ranges past the object or overflowing, a caller
//!    buffer that is unmapped, read-only (for a read), in the kernel half;
//!    the boot archive is never written.
//! 3. A copy of 1 MiB, made in many pieces (the call goes on after each
//!    work budget), arrives whole.
//! 4. Another thread revokes the capability's parent in a tight loop while
//!    this one copies 1 MiB through it: each copy succeeds or fails with
//!    `BadHandle`/`InvalidState`; the kernel's self-check passes after.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use test_caps::check;
use userlib::abi::boot_info::StartInfo;
use userlib::abi::{Error, ObjectType, Syscall, PAGE_SIZE};
use userlib::test::expect_err;
use userlib::vspace::Mapping;
use userlib::{log, process, syscall, thread, Handle, Rights};

userlib::entry!(main, heap = 6 << 20);

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed) ^ (i >> 9) as u8)
        .collect()
}

fn main(_: &StartInfo) {
    check("round trips", round_trips);
    check("bad paths", bad_paths);
    check("a copy in many pieces", many_pieces);
    check("revoked while copying", revoked_while_copying);
    syscall::self_check().expect("the kernel's self-check");
}

fn memory(pages: u64) -> Handle {
    syscall::create(process().pool, ObjectType::Memory, pages).expect("memory")
}

fn round_trips() {
    let mem = memory(3);
    let map = Mapping::map(mem, 3, Rights::READ).expect("map");
    for (offset, len) in [
        (0usize, 1usize),
        (100, 5000),
        (4095, 2),
        (1, 3 * PAGE_SIZE - 1),
        (7, 0),
        (8190, 300),
    ] {
        let data = pattern(len, offset as u8);
        syscall::memory_write(mem, offset as u64, &data).expect("MemoryWrite");
        assert!(
            map.as_slice()[offset..offset + len] == data[..],
            "{offset}+{len} through the mapping"
        );
        // Into a buffer that starts at an odd address and crosses pages.
        let mut back = vec![0u8; len + 4099];
        syscall::memory_read(mem, offset as u64, &mut back[3..3 + len]).expect("MemoryRead");
        assert!(back[3..3 + len] == data[..], "{offset}+{len} read back");
        assert!(
            back[..3].iter().chain(&back[3 + len..]).all(|b| *b == 0),
            "{offset}+{len}: nothing else written"
        );
    }
    drop(map);
    syscall::cap_delete(mem).expect("delete");
}

/// A raw `MemoryRead`/`MemoryWrite` with any address: `x0` status, `x3`
/// bytes left.
fn raw(call: Syscall, mem: Handle, offset: u64, addr: u64, len: u64) -> (Result<(), Error>, u64) {
    // SAFETY: the kernel writes at most `len` bytes at `addr`; every call
    // here names memory that is unmapped, read-only or not this task's, so
    // the kernel refuses it (which is what is tested), or `addr` is a
    // buffer this function's caller owns.
    let r = unsafe { userlib::sys::call(call, &[mem.0 as u64, offset, addr, len, 0, 0, 0, 0]) };
    (Error::check(r[0]), r[3])
}

fn bad_paths() {
    let mem = memory(2);
    let size = 2 * PAGE_SIZE as u64;
    let mut buf = vec![0u8; 64];
    expect_err(
        "no handle",
        syscall::memory_read(Handle::NULL, 0, &mut buf),
        Error::BadHandle,
    );
    let gone = syscall::cap_copy(mem, Rights::FULL).expect("copy");
    syscall::cap_delete(gone).expect("delete");
    expect_err(
        "a deleted handle",
        syscall::memory_read(gone, 0, &mut buf),
        Error::BadHandle,
    );
    expect_err(
        "a deleted handle",
        syscall::memory_write(gone, 0, &buf),
        Error::BadHandle,
    );
    let ep = syscall::create(process().pool, ObjectType::Endpoint, 0).expect("endpoint");
    expect_err("an endpoint", syscall::memory_read(ep, 0, &mut buf), Error::WrongType);
    expect_err("an endpoint", syscall::memory_write(ep, 0, &buf), Error::WrongType);
    expect_err(
        "a pool",
        syscall::memory_read(process().pool, 0, &mut buf),
        Error::WrongType,
    );
    syscall::cap_delete(ep).expect("delete");
    let read_only = syscall::cap_copy(mem, Rights::READ).expect("read-only copy");
    let write_only = syscall::cap_copy(mem, Rights::WRITE).expect("write-only copy");
    syscall::memory_read(read_only, 0, &mut buf).expect("READ is enough to read (no MAP)");
    syscall::memory_write(write_only, 0, &buf).expect("WRITE is enough to write (no MAP)");
    expect_err(
        "write without WRITE",
        syscall::memory_write(read_only, 0, &buf),
        Error::NoRights,
    );
    expect_err(
        "read without READ",
        syscall::memory_read(write_only, 0, &mut buf),
        Error::NoRights,
    );
    for h in [read_only, write_only] {
        syscall::cap_delete(h).expect("delete");
    }
    // Ranges.
    for (what, offset, len) in [
        ("past the end", size, 1),
        ("over the end", size - 1, 2),
        ("offset past the end, nothing to copy", size + 1, 0),
        ("offset + length overflows", u64::MAX, 2),
        ("length overflows", 8, u64::MAX - 4),
    ] {
        let addr = buf.as_mut_ptr() as u64;
        for call in [Syscall::MemoryRead, Syscall::MemoryWrite] {
            let (r, left) = raw(call, mem, offset, addr, len);
            assert_eq!(r, Err(Error::InvalidArgument), "{what} ({call:?})");
            assert_eq!(left, len, "{what}: nothing copied");
        }
    }
    syscall::memory_read(mem, size, &mut []).expect("nothing at the end");
    // The caller's memory: unmapped, read-only, the kernel's.
    let ro = Mapping::new(1, Rights::READ).expect("read-only page");
    for (what, addr) in [
        ("an unmapped address", 0x10),
        ("a read-only page", ro.as_ptr() as u64),
        ("the kernel half", 0xffff_0000_0000_0000),
        ("past the user half", 1 << 48),
    ] {
        let (r, _) = raw(Syscall::MemoryRead, mem, 0, addr, 16);
        assert_eq!(r, Err(Error::NotMapped), "MemoryRead into {what}");
        if addr != ro.as_ptr() as u64 {
            let (r, _) = raw(Syscall::MemoryWrite, mem, 0, addr, 16);
            assert_eq!(r, Err(Error::NotMapped), "MemoryWrite from {what}");
        }
    }
    // A buffer whose second page is unmapped: the first page's bytes are
    // copied, the call says how many are left.
    let window = userlib::vspace::reserve(2);
    let page = memory(1);
    let me = process();
    syscall::map(me.task, page, 1, 0, window, Rights::READ | Rights::WRITE).expect("map the first page");
    let (r, left) = raw(Syscall::MemoryRead, mem, 0, window + PAGE_SIZE as u64 - 100, 300);
    assert_eq!(
        (r, left),
        (Err(Error::NotMapped), 200),
        "a buffer that runs off its mapping"
    );
    syscall::unmap(me.task, window, 1).expect("unmap");
    syscall::cap_delete(page).expect("delete");
    drop(ro);
    // The boot archive: read, never written.
    let archive = process().archive;
    if archive != Handle::NULL {
        let mut magic = [0u8; 6];
        syscall::memory_read(archive, 0, &mut magic).expect("read the archive");
        assert_eq!(&magic, b"070701", "the archive starts with a newc header");
        expect_err(
            "write the archive",
            syscall::memory_write(archive, 0, &magic),
            Error::NoRights,
        );
    }
    syscall::cap_delete(mem).expect("delete");
}

fn many_pieces() {
    const BYTES: usize = 1 << 20;
    let mem = memory((BYTES / PAGE_SIZE) as u64);
    let data = pattern(BYTES, 5);
    let mut back = vec![0u8; BYTES];
    // Under -icount: the longest interrupts-masked stretch of the copies.
    let _ = syscall::masked_max();
    let t0 = syscall::now_us();
    syscall::memory_write(mem, 0, &data).expect("1 MiB in");
    syscall::memory_read(mem, 0, &mut back).expect("1 MiB out");
    let us = syscall::now_us() - t0;
    let masked = syscall::masked_max();
    assert!(back == data, "1 MiB round trip");
    match masked {
        Ok(n) => log::info!("1 MiB in and out in {us} us; longest masked stretch {n} instructions"),
        Err(_) => log::info!("1 MiB in and out in {us} us"),
    }
    syscall::cap_delete(mem).expect("delete");
}

fn revoked_while_copying() {
    const BYTES: usize = 1 << 20;
    let parent = memory((BYTES / PAGE_SIZE) as u64);
    let stop = Arc::new(AtomicBool::new(false));
    let revokes = Arc::new(AtomicU64::new(0));
    let revoker = {
        let (stop, revokes) = (stop.clone(), revokes.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = syscall::cap_revoke(parent);
                revokes.fetch_add(1, Ordering::Relaxed);
            }
        })
        .expect("spawn the revoker")
    };
    let mut buf = vec![0u8; BYTES];
    let (mut ok, mut failed) = (0, 0);
    let t0 = syscall::now_us();
    while syscall::now_us() - t0 < 1_000_000 {
        let Ok(child) = syscall::cap_copy(parent, Rights::READ | Rights::WRITE) else {
            continue;
        };
        for write in [false, true] {
            let r = if write {
                syscall::memory_write(child, 0, &buf)
            } else {
                syscall::memory_read(child, 0, &mut buf)
            };
            match r {
                Ok(()) => ok += 1,
                Err(Error::BadHandle | Error::InvalidState) => failed += 1,
                Err(e) => panic!("a copy through a capability being revoked: {e:?}"),
            }
        }
        let _ = syscall::cap_delete(child);
    }
    stop.store(true, Ordering::Relaxed);
    revoker.join().expect("revoker");
    syscall::self_check().expect("the kernel's self-check after the race");
    syscall::cap_delete(parent).expect("delete");
    log::info!(
        "{ok} copies of 1 MiB done, {failed} failed as their capability went ({} revokes)",
        revokes.load(Ordering::Relaxed)
    );
}
