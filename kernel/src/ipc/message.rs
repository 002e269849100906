//! Message copying: checking what a sender may send, and moving words
//! and capabilities from one thread to another (registers, then IPC buffers).

use crate::cap;
use crate::object::{Id, Kernel};
use crate::task::{copy_from_user, copy_to_user};
use abi::{Error, FaultKind, Handle, IpcBuffer, MessageInfo, Rights, BUFFER_WORDS, REGISTER_WORDS};

const WORDS_OFFSET: u64 = core::mem::offset_of!(IpcBuffer, words) as u64;
const CAPS_OFFSET: u64 = core::mem::offset_of!(IpcBuffer, caps) as u64;
const CAP_RIGHTS_OFFSET: u64 = core::mem::offset_of!(IpcBuffer, cap_rights) as u64;

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
    for i in 0..info.caps() {
        let mut raw = [0u8; 4];
        copy_from_user(k, task, buffer + CAPS_OFFSET + 4 * i as u64, &mut raw)?;
        cap::lookup_with(k, task, Handle(u32::from_le_bytes(raw)), Rights::GRANT)?;
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
    let (Some(sb), Some(db)) = (src_buffer, dst_buffer) else {
        return MessageInfo::new(info.label(), info.words().min(REGISTER_WORDS), 0);
    };
    let mut words = info.words().min(REGISTER_WORDS);
    let extra = info
        .words()
        .saturating_sub(REGISTER_WORDS)
        .min(BUFFER_WORDS - REGISTER_WORDS);
    if extra > 0 {
        let mut bytes = [0u8; (BUFFER_WORDS - REGISTER_WORDS) * 8];
        let range = WORDS_OFFSET + 8 * REGISTER_WORDS as u64;
        if copy_from_user(k, src_task, sb + range, &mut bytes[..extra * 8]).is_ok()
            && copy_to_user(k, dst_task, db + range, &bytes[..extra * 8]).is_ok()
        {
            words += extra;
        }
    }
    let mut moved = 0;
    for i in 0..info.caps() {
        let mut raw = [0u8; 8];
        let ok = copy_from_user(k, src_task, sb + CAPS_OFFSET + 4 * i as u64, &mut raw[..4]).is_ok()
            && copy_from_user(k, src_task, sb + CAP_RIGHTS_OFFSET + 4 * i as u64, &mut raw[4..]).is_ok();
        if !ok {
            break;
        }
        let handle = Handle(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]));
        let rights = Rights::from_bits_truncate(u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]));
        let Ok(source) = cap::lookup(k, src_task, handle) else {
            break;
        };
        let Ok(new) = cap::derive(k, source, dst_task, rights, None) else {
            break;
        };
        if copy_to_user(k, dst_task, db + CAPS_OFFSET + 4 * moved as u64, &new.0.to_le_bytes()).is_err() {
            if let Ok(id) = cap::lookup(k, dst_task, new) {
                cap::delete(k, id);
            }
            break;
        }
        moved += 1;
    }
    MessageInfo::new(info.label(), words, moved)
}
