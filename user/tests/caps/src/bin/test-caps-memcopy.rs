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
//!
//! The same for `MemoryReadRows` and `MemoryWriteRows` (a rectangle of
//! rows in one call): round trips checked byte by byte (the bytes between
//! rows untouched), rows in many pieces (restarted mid-row and between
//! rows), every bad path (overflows of either side's last row, a last row
//! past the object, a row of the caller's that is unmapped or read-only,
//! progress past the row), under -icount the longest masked stretch of
//! 1-byte rows, and copies through a capability revoked meanwhile.
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
use userlib::syscall::Rows;
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
    check("rows round trips", rows_round_trips);
    check("rows bad paths", rows_bad_paths);
    check("rows in many pieces", rows_many_pieces);
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

/// What `rows` rows of `len` bytes, `from_stride` apart in `from` from
/// `at` on, leave in `into` (as it was) at rows `into_stride` apart from
/// `to` on: the copy's expected result.
fn rows_expected(from: &[u8], at: usize, into: &[u8], to: usize, shape: Rows) -> Vec<u8> {
    let mut out = into.to_vec();
    for k in 0..shape.rows {
        let (s, d) = (at + k * shape.object_stride as usize, to + k * shape.buf_stride);
        out[d..d + shape.len].copy_from_slice(&from[s..s + shape.len]);
    }
    out
}

fn shape(rows: usize, len: usize, object_stride: u64, buf_stride: usize) -> Rows {
    Rows {
        rows,
        len,
        object_stride,
        buf_stride,
    }
}

fn rows_round_trips() {
    const PAGES: usize = 8;
    let size = PAGES * PAGE_SIZE;
    let mem = memory(PAGES as u64);
    let map = Mapping::map(mem, PAGES as u64, Rights::READ).expect("map");
    for (offset, s) in [
        (5usize, shape(7, 100, 300, 130)),
        (4000, shape(20, 200, 409, 4097)),
        (1, shape(1, 3 * PAGE_SIZE + 5, 0, 0)),
        (
            PAGE_SIZE - 3,
            shape(3, 2 * PAGE_SIZE + 7, 2 * PAGE_SIZE as u64 + 9, 2 * PAGE_SIZE + 11),
        ),
        (64, shape(20, 256, 1280, 256)),
        (0, shape(5, 64, 0, 64)),
        (9, shape(0, 64, 1 << 40, 64)),
        (size - 10, shape(1, 10, 0, 0)),
    ] {
        // The bytes the object holds: a pattern written whole, then rows
        // of another written over it.
        let base = pattern(size, offset as u8);
        syscall::memory_write(mem, 0, &base).expect("MemoryWrite");
        let span = if s.rows == 0 {
            0
        } else {
            (s.rows - 1) * s.buf_stride + s.len
        };
        let rows = pattern(span + 5, 77);
        if s.object_stride != 0 || s.rows <= 1 {
            syscall::memory_write_rows(mem, offset as u64, &rows[3..], s).expect("MemoryWriteRows");
            // The object's side: object stride and buffer stride swap.
            let back = shape(s.rows, s.len, s.buf_stride as u64, s.object_stride as usize);
            let want = rows_expected(&rows, 3, &base, offset, back);
            assert!(
                map.as_slice() == &want[..],
                "{offset} {s:?} written, the rest untouched"
            );
        }
        let now = map.as_slice().to_vec();
        // Into a buffer at an odd address, crossing pages, bytes around.
        let mut buf = vec![0u8; span + 4099];
        syscall::memory_read_rows(mem, offset as u64, &mut buf[3..], s).expect("MemoryReadRows");
        let zero = vec![0u8; span + 4099];
        assert!(
            buf == rows_expected(&now, offset, &zero, 3, s),
            "{offset} {s:?} read back, nothing else written"
        );
    }
    drop(map);
    syscall::cap_delete(mem).expect("delete");
}

/// A raw `MemoryReadRows`/`MemoryWriteRows` (`done` bytes of the first
/// row done: `x4`'s high half): `x0` status and the registers after
/// (`x1`, `x2`, `x4`'s low half: rows, its high half: bytes done).
#[allow(clippy::too_many_arguments)]
fn raw_rows(
    call: Syscall,
    mem: Handle,
    offset: u64,
    addr: u64,
    len: u64,
    rows: u64,
    strides: (u64, u64),
    done: u64,
) -> (Result<(), Error>, [u64; 4]) {
    let x4 = rows | done << 32;
    // SAFETY: as for `raw`: the rows name memory the kernel refuses, or
    // memory the caller owns.
    let r = unsafe { userlib::sys::call(call, &[mem.0 as u64, offset, addr, len, x4, strides.0, strides.1, 0]) };
    (Error::check(r[0]), [r[1], r[2], r[4] & u64::from(u32::MAX), r[4] >> 32])
}

fn rows_bad_paths() {
    let mem = memory(2);
    let size = 2 * PAGE_SIZE as u64;
    let mut buf = vec![0u8; 4096];
    let addr = buf.as_mut_ptr() as u64;
    let s = shape(2, 16, 32, 32);
    expect_err(
        "no handle",
        syscall::memory_read_rows(Handle::NULL, 0, &mut buf, s),
        Error::BadHandle,
    );
    let gone = syscall::cap_copy(mem, Rights::FULL).expect("copy");
    syscall::cap_delete(gone).expect("delete");
    expect_err(
        "a deleted handle",
        syscall::memory_read_rows(gone, 0, &mut buf, s),
        Error::BadHandle,
    );
    expect_err(
        "a deleted handle",
        syscall::memory_write_rows(gone, 0, &buf, s),
        Error::BadHandle,
    );
    let ep = syscall::create(process().pool, ObjectType::Endpoint, 0).expect("endpoint");
    expect_err(
        "an endpoint",
        syscall::memory_read_rows(ep, 0, &mut buf, s),
        Error::WrongType,
    );
    expect_err(
        "an endpoint",
        syscall::memory_write_rows(ep, 0, &buf, s),
        Error::WrongType,
    );
    syscall::cap_delete(ep).expect("delete");
    let read_only = syscall::cap_copy(mem, Rights::READ).expect("read-only copy");
    let write_only = syscall::cap_copy(mem, Rights::WRITE).expect("write-only copy");
    syscall::memory_read_rows(read_only, 0, &mut buf, s).expect("READ is enough to read");
    syscall::memory_write_rows(write_only, 0, &buf, s).expect("WRITE is enough to write");
    expect_err(
        "write without WRITE",
        syscall::memory_write_rows(read_only, 0, &buf, s),
        Error::NoRights,
    );
    expect_err(
        "read without READ",
        syscall::memory_read_rows(write_only, 0, &mut buf, s),
        Error::NoRights,
    );
    for h in [read_only, write_only] {
        syscall::cap_delete(h).expect("delete");
    }
    let archive = process().archive;
    if archive != Handle::NULL {
        expect_err(
            "write the archive",
            syscall::memory_write_rows(archive, 0, &buf, s),
            Error::NoRights,
        );
    }
    // The user library refuses rows past the caller's buffer.
    expect_err(
        "rows past the buffer",
        syscall::memory_read_rows(mem, 0, &mut buf[..47], s),
        Error::InvalidArgument,
    );
    // Ranges: each refused whole, the registers as they were.
    for (what, offset, len, rows, strides, done) in [
        ("the last row past the end", 0, 16, 3, (size / 2, 16), 0),
        ("the last row over the end", size - 40, 16, 2, (32, 16), 0),
        ("the first row past the end", size, 1, 1, (0, 0), 0),
        (
            "rows * object stride overflows",
            0,
            16,
            u64::from(u32::MAX),
            (1 << 40, 0),
            0,
        ),
        ("rows * object stride overflows at once", 0, 16, 3, (1 << 63, 0), 0),
        ("offset + last row overflows", u64::MAX - 8, 16, 2, (4, 0), 0),
        ("length overflows", 8, u64::MAX - 4, 1, (0, 0), 0),
        ("rows * caller stride overflows", 0, 16, 3, (16, 1 << 63), 0),
        (
            "caller address + last row overflows",
            0,
            16,
            2,
            (16, u64::MAX - addr),
            0,
        ),
        ("progress past the row", 0, 16, 2, (16, 16), 17),
    ] {
        for call in [Syscall::MemoryReadRows, Syscall::MemoryWriteRows] {
            let (r, regs) = raw_rows(call, mem, offset, addr, len, rows, strides, done);
            assert_eq!(r, Err(Error::InvalidArgument), "{what} ({call:?})");
            assert_eq!(regs, [offset, addr, rows, done], "{what}: nothing copied");
        }
    }
    // Nothing to copy.
    let (r, _) = raw_rows(
        Syscall::MemoryReadRows,
        mem,
        1 << 60,
        0x10,
        16,
        0,
        (1 << 62, 1 << 62),
        0,
    );
    assert_eq!(r, Ok(()), "no rows");
    let (r, _) = raw_rows(Syscall::MemoryReadRows, mem, size, 0x10, 0, 5, (0, 0), 0);
    assert_eq!(r, Ok(()), "empty rows at the end");
    // The last row ending at the object's end.
    let (r, regs) = raw_rows(
        Syscall::MemoryReadRows,
        mem,
        size / 4 - 16,
        addr,
        16,
        4,
        (size / 4, 32),
        0,
    );
    assert_eq!((r, regs), (Ok(()), [size - 16, addr + 96, 0, 0]), "up to the end");
    // The caller's rows: unmapped, read-only, the kernel's.
    let ro = Mapping::new(1, Rights::READ).expect("read-only page");
    for (what, at) in [
        ("an unmapped address", 0x10),
        ("a read-only page", ro.as_ptr() as u64),
        ("the kernel half", 0xffff_0000_0000_0000),
        ("past the user half", 1 << 48),
    ] {
        let (r, regs) = raw_rows(Syscall::MemoryReadRows, mem, 0, at, 16, 2, (16, 16), 0);
        assert_eq!(
            (r, regs),
            (Err(Error::NotMapped), [0, at, 2, 0]),
            "MemoryReadRows into {what}"
        );
        if at != ro.as_ptr() as u64 {
            let (r, _) = raw_rows(Syscall::MemoryWriteRows, mem, 0, at, 16, 2, (16, 16), 0);
            assert_eq!(r, Err(Error::NotMapped), "MemoryWriteRows from {what}");
        }
    }
    // Three pages reserved, the first and the last mapped: rows in both
    // with the gap between them unmapped are copied; a row reaching into
    // the gap stops there, the registers saying where.
    let window = userlib::vspace::reserve(3);
    let page = memory(1);
    let page2 = memory(1);
    let me = process();
    let p = PAGE_SIZE as u64;
    syscall::map(me.task, page, 1, 0, window, Rights::READ | Rights::WRITE).expect("map the first page");
    syscall::map(me.task, page2, 1, 0, window + 2 * p, Rights::READ | Rights::WRITE).expect("map the third");
    let data = pattern(size as usize, 9);
    syscall::memory_write(mem, 0, &data).expect("fill");
    let (r, regs) = raw_rows(Syscall::MemoryReadRows, mem, 100, window + 8, 300, 2, (1000, 2 * p), 0);
    assert_eq!((r, regs), (Ok(()), [1100, window + 8 + 2 * p, 0, 0]), "over the gap");
    let mut got = [0u8; 300];
    syscall::memory_read(page2, 8, &mut got).expect("read the third page");
    assert!(got[..] == data[1100..1400], "the second row, byte by byte");
    // Row 0 in the first page, row 1 runs off its end into the gap.
    let (r, regs) = raw_rows(Syscall::MemoryReadRows, mem, 0, window + 100, 300, 3, (500, p - 300), 0);
    assert_eq!(
        (r, regs),
        (Err(Error::NotMapped), [500, window + p - 200, 2, 200]),
        "a row running off its mapping: 200 of its bytes copied"
    );
    syscall::memory_read(page, p - 200, &mut got[..200]).expect("read the first page");
    assert!(got[..200] == data[500..700], "the part of the row copied");
    // Going on from there (x7 = 200) fails the same, copying nothing more.
    let (r, regs) = raw_rows(
        Syscall::MemoryReadRows,
        mem,
        500,
        window + p - 200,
        300,
        2,
        (500, p - 300),
        200,
    );
    assert_eq!((r, regs), (Err(Error::NotMapped), [500, window + p - 200, 2, 200]));
    // A whole row unmapped.
    let (r, regs) = raw_rows(Syscall::MemoryWriteRows, mem, 0, window, 16, 3, (16, p), 0);
    assert_eq!(
        (r, regs),
        (Err(Error::NotMapped), [16, window + p, 2, 0]),
        "an unmapped row"
    );
    syscall::unmap(me.task, window, 1).expect("unmap");
    syscall::unmap(me.task, window + 2 * p, 1).expect("unmap");
    syscall::cap_delete(page).expect("delete");
    syscall::cap_delete(page2).expect("delete");
    drop(ro);
    syscall::cap_delete(mem).expect("delete");
}

/// Rows in many pieces (the call restarted within rows and between
/// them), byte by byte; under -icount the longest masked stretch, with
/// 1-byte rows (a piece per row: the most pieces per byte).
fn rows_many_pieces() {
    const BYTES: usize = 1 << 20;
    let mem = memory((BYTES / PAGE_SIZE) as u64);
    let data = pattern(BYTES, 11);
    syscall::memory_write(mem, 0, &data).expect("fill");
    let _ = syscall::masked_max();
    let zero = vec![0u8; BYTES];
    for s in [
        // 1-byte rows: 131,072 pieces.
        shape(BYTES / 8, 1, 8, 8),
        // Rows of 3 pages and a bit: restarted mid-row.
        shape(80, 3 * PAGE_SIZE + 100, 12_345, 13_000),
        // Rows crossing pages, the caller's stride smaller.
        shape(250, 4097, 4100, 4097),
    ] {
        let mut buf = vec![0u8; BYTES];
        syscall::memory_read_rows(mem, 0, &mut buf, s).expect("MemoryReadRows");
        assert!(buf == rows_expected(&data, 0, &zero, 0, s), "{s:?} read, byte by byte");
        // And back, over the zeroes of another object.
        let other = memory((BYTES / PAGE_SIZE) as u64);
        syscall::memory_write_rows(other, 0, &buf, s).expect("MemoryWriteRows");
        let mut got = vec![0u8; BYTES];
        syscall::memory_read(other, 0, &mut got).expect("read it");
        let same = shape(s.rows, s.len, s.object_stride, s.object_stride as usize);
        assert!(
            got == rows_expected(&data, 0, &zero, 0, same),
            "{s:?} written, byte by byte"
        );
        syscall::cap_delete(other).expect("delete");
    }
    match syscall::masked_max() {
        Ok(n) => log::info!("rows in many pieces: longest masked stretch {n} instructions"),
        Err(_) => log::info!("rows in many pieces: done"),
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
        // Rows of 4000 bytes, a page apart: the rectangles' forms too.
        let s = shape(BYTES / PAGE_SIZE, 4000, PAGE_SIZE as u64, PAGE_SIZE);
        for form in 0..4 {
            let r = match form {
                0 => syscall::memory_read(child, 0, &mut buf),
                1 => syscall::memory_write(child, 0, &buf),
                2 => syscall::memory_read_rows(child, 0, &mut buf, s),
                _ => syscall::memory_write_rows(child, 0, &buf, s),
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
