//! Message copying: checking what a sender may send, and moving words
//! and capabilities from one thread to another (registers, then IPC buffers).

use crate::cap;
use crate::object::{Id, Kernel};
use crate::task::user_page;
use abi::{Error, FaultKind, Handle, IpcBuffer, MessageInfo, Rights, BUFFER_WORDS, PAGE_SIZE, REGISTER_WORDS};

const WORDS_OFFSET: usize = core::mem::offset_of!(IpcBuffer, words);
const CAPS_OFFSET: usize = core::mem::offset_of!(IpcBuffer, caps);
const CAP_RIGHTS_OFFSET: usize = core::mem::offset_of!(IpcBuffer, cap_rights);

// An IPC buffer is page-aligned (`thread_set_ipc_buffer`), so all of it
// lies in one page: one table walk reaches every field.
const _: () = assert!(core::mem::size_of::<IpcBuffer>() <= PAGE_SIZE);

/// Word `i` (u32) of the capability handles (`CAPS_OFFSET`) or rights
/// (`CAP_RIGHTS_OFFSET`) of the IPC buffer whose page starts at `page`.
///
/// # Safety
/// `page` comes from [`user_page`] for an IPC buffer's address, under the
/// kernel lock with nothing unmapped since; `i < BUFFER_CAPS`.
unsafe fn read_u32(page: *const u8, offset: usize, i: usize) -> u32 {
    // SAFETY: inside the buffer's page (see above), 4-byte aligned (the
    // buffer is page-aligned and the offsets are of u32 arrays). The task's
    // other threads may write it meanwhile: a volatile read of plain data,
    // whatever value it finds is checked as a handle or rights.
    unsafe { core::ptr::read_volatile(page.add(offset + 4 * i) as *const u32) }
}

/// Check the message `sender` is about to send: sizes, IPC buffer, and that
/// each capability it names may be granted.
pub(super) fn check_message(k: &mut Kernel, sender: Id, info: MessageInfo) -> Result<(), Error> {
    if !info.is_valid() {
        return Err(Error::InvalidArgument);
    }
    if info.words() <= REGISTER_WORDS && info.caps() == 0 {
        return Ok(());
    }
    let t = k.threads.get(sender).ok_or(Error::BadHandle)?;
    let (task, buffer) = (t.task, t.ipc_buffer.ok_or(Error::NoIpcBuffer)?);
    if info.caps() == 0 {
        return Ok(());
    }
    let page = user_page(k, task, buffer, false)?;
    for i in 0..info.caps() {
        // SAFETY: `page` was just walked to under the lock; `i` is below
        // the checked message's capability count (at most BUFFER_CAPS).
        let raw = unsafe { read_u32(page, CAPS_OFFSET, i) };
        cap::lookup_with(k, task, Handle(raw), Rights::GRANT)?;
    }
    Ok(())
}

/// Copy the message of `from` into `to` and set `to`'s receive registers.
pub(super) fn transfer(k: &mut Kernel, from: Id, to: Id, badge: u64) {
    let Some(src) = k.threads.get(from) else { return };
    let (info, words, fault) = match src.fault {
        Some(f) => (MessageInfo::new(FaultKind::LABEL, 4, 0), f.words, true),
        None => {
            let info = MessageInfo(src.ctx.x[1] & 0xffff_ffff);
            (info, [src.ctx.x[2], src.ctx.x[3], src.ctx.x[4], src.ctx.x[5]], false)
        }
    };
    let (src_task, src_buffer) = (src.task, src.ipc_buffer);
    let mut delivered = MessageInfo::new(info.label(), info.words().min(REGISTER_WORDS), 0);
    if !fault && (info.words() > REGISTER_WORDS || info.caps() > 0) {
        delivered = transfer_buffer(k, from, to, src_task, src_buffer, info);
    }
    if let Some(dst) = k.threads.get_mut(to) {
        dst.ctx.x[0] = 0;
        dst.ctx.x[1] = delivered.0;
        dst.ctx.x[2..2 + REGISTER_WORDS].copy_from_slice(&words);
        dst.ctx.x[6] = badge;
    }
}

/// The IPC-buffer part of a message: extra words and capabilities.
fn transfer_buffer(
    k: &mut Kernel,
    _from: Id,
    to: Id,
    src_task: Id,
    src_buffer: Option<u64>,
    info: MessageInfo,
) -> MessageInfo {
    let Some(dst) = k.threads.get(to) else {
        return MessageInfo::default();
    };
    let (dst_task, dst_buffer) = (dst.task, dst.ipc_buffer);
    let registers_only = MessageInfo::new(info.label(), info.words().min(REGISTER_WORDS), 0);
    let (Some(sb), Some(db)) = (src_buffer, dst_buffer) else {
        return registers_only;
    };
    // Each buffer's page is walked to once (the sender's readable, the
    // receiver's writable); a buffer that is not mapped so moves nothing
    // beyond the registers. Nothing below unmaps a page.
    let (Ok(src), Ok(dst)) = (user_page(k, src_task, sb, false), user_page(k, dst_task, db, true)) else {
        return registers_only;
    };
    let mut words = info.words().min(REGISTER_WORDS);
    let extra = info
        .words()
        .saturating_sub(REGISTER_WORDS)
        .min(BUFFER_WORDS - REGISTER_WORDS);
    if extra > 0 {
        let at = WORDS_OFFSET + 8 * REGISTER_WORDS;
        // SAFETY: both ranges lie inside their buffers (at most
        // BUFFER_WORDS words from the words' offset), so inside pages just
        // walked to under the lock. `copy` allows overlap: two threads may
        // name the same page as their buffers.
        unsafe { core::ptr::copy(src.add(at), dst.add(at), extra * 8) };
        words += extra;
    }
    let mut moved = 0;
    for i in 0..info.caps() {
        // SAFETY: `i` is below the checked message's capability count (at
        // most BUFFER_CAPS); `src` as above.
        let (raw, raw_rights) = unsafe { (read_u32(src, CAPS_OFFSET, i), read_u32(src, CAP_RIGHTS_OFFSET, i)) };
        let handle = Handle(raw);
        let rights = Rights::from_bits_truncate(raw_rights);
        let Ok(source) = cap::lookup(k, src_task, handle) else {
            break;
        };
        let Ok(new) = cap::derive(k, source, dst_task, rights, None) else {
            break;
        };
        // SAFETY: `moved <= i` is below BUFFER_CAPS: inside the receiver's
        // buffer, in the writable page walked to above (deriving a
        // capability maps and unmaps nothing). Aligned as in `read_u32`.
        unsafe { core::ptr::write_volatile(dst.add(CAPS_OFFSET + 4 * moved) as *mut u32, new.0) };
        moved += 1;
    }
    MessageInfo::new(info.label(), words, moved)
}
