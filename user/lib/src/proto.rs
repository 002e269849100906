//! The parent protocol: messages a task sends on its `parent` endpoint
//! (`StartInfo::parent`, badged by the parent so that it knows who speaks).
//! The kernel's own fault messages (label [`abi::FaultKind::LABEL`]) arrive
//! on the same endpoint, because the library makes it the fault handler of
//! the task's threads.
//!
//! | label | how | words | meaning |
//! |---|---|---|---|
//! | [`EXIT`] | send | `[code]` | `main` returned 0; the task is done and may be destroyed |
//! | [`REASON`] | send | text ([`crate::ipc::pack_text`]) | why the task is about to fail (panic message); a `Panic` fault follows |
//! | [`EXPECT_FAULT`] | call | `[kind, far]` | (tests) the next fault of this task is expected: kind [`abi::FaultKind`], `far` or [`ANY_ADDRESS`]; the parent replies before the test goes on |
//!
//! A task that exits with a nonzero code reports no `EXIT`: the kernel
//! turns the exit into a `Panic` fault with the code in word 2.

/// `main` returned success.
pub const EXIT: u16 = 0x7e00;
/// Text explaining a failure that follows.
pub const REASON: u16 = 0x7e01;
/// A test announces the fault it is about to cause.
pub const EXPECT_FAULT: u16 = 0x7e02;
/// `far` value of [`EXPECT_FAULT`] that matches any fault address.
pub const ANY_ADDRESS: u64 = u64::MAX;

/// Exit code of a panicking thread.
pub const PANIC_EXIT_CODE: u64 = 101;
/// Exit code when the start-up information is missing or malformed.
pub const BAD_START_EXIT_CODE: u64 = 102;

/// Reply label of a request that succeeded (name service, supervisor
/// control, and the driver protocols built on [`reply_error`]).
pub const OK: u16 = 0;
/// Reply label of a request that failed; word 0 is the [`abi::Error`] code.
pub const FAILED: u16 = 0x7eff;

/// A failure reply carrying `error`.
pub fn reply_error(error: abi::Error) -> crate::Message {
    crate::Message::with_words(FAILED, &[error as u64])
}

/// The result a reply stands for: `Ok(reply)` unless it is a [`FAILED`] reply.
pub fn check_reply(reply: crate::Message) -> Result<crate::Message, abi::Error> {
    check_label(reply.label, reply.word(0)).map(|()| reply)
}

/// [`check_reply`] of a reply taken apart (a register-only call's label and
/// word 0): the error a [`FAILED`] reply carries (`InvalidState` if its
/// word is no error code), else `Ok`.
pub fn check_label(label: u16, word0: u64) -> Result<(), abi::Error> {
    if label == FAILED {
        Err(abi::Error::check(word0).err().unwrap_or(abi::Error::InvalidState))
    } else {
        Ok(())
    }
}

/// Name service and supervisor control: calls on the `parent` endpoint,
/// served by init. Names are text ([`crate::ipc::pack_text`]); records in
/// replies are [`pack_record`]s.
///
/// | label | words in | capability in | reply |
/// |---|---|---|---|
/// | [`NS_REGISTER`] | name | endpoint (`SEND`\|`GRANT`) | [`OK`]; `NoRights` unless the profile says the caller `provides` it; `InvalidState` if taken |
/// | [`NS_LOOKUP`] | name | — | [`OK`] + endpoint (`SEND`, badge = caller's task id); `NoRights` unless routed to the caller (`uses`); `WouldBlock` while not registered |
/// | [`NS_LOOKUP_CLIENT`] | record `[client]` + name | — | as [`NS_LOOKUP`], the badge naming the caller's client `client` (1 to `u32::MAX`; [`client_badge`]): `InvalidArgument` for 0 or more |
/// | [`NS_LIST`] | `[index]` | — | record `[provider id, clients, registered]` + `name provider users`: the registered services, then the declared ones not registered now (`registered` 0; `users` = the programs routed to it, comma-separated, or `-`) |
/// | [`SV_TASK`] | `[index]` | — | record [`TaskRecord`] |
/// | [`SV_TASK_BY_ID`] | `[task id]` (or a badge from [`NS_LOOKUP`] or [`NS_LOOKUP_CLIENT`]: its task, [`task_of`]) | — | record [`TaskRecord`] of that task; `InvalidArgument` if no task has the id |
/// | [`SV_TASK_NAME`] | `[task id]` | — | [`OK`] + `[name]`: the task's program name in four words (little-endian bytes, zero-padded); `InvalidArgument` if no task has the id, `NotSupported` if the name is longer than [`TASK_NAME_BYTES`] (ask [`SV_TASK_BY_ID`]) |
/// | [`SV_DEVICE`] | `[index]` | — | record `[physical, size, irq]` + `node compatible driver` |
/// | [`SV_MEMORY`] | — | — | `[pool total, pool free, kernel objects, free RAM, kernel heap]` |
/// | [`SV_KILL`] / [`SV_RESTART`] | name or id | — | [`OK`] (needs `control`) |
/// | [`SV_POWER`] | `[0 off, 1 reboot]` | — | only on failure (needs `control`) |
/// | [`SV_DEVICE_MEMORY`] | `[physical, bytes]` | — | [`OK`] + device region (`READ`\|`WRITE`\|`MAP`\|`MANAGE`\|`GRANT`) (drivers only) |
///
/// An index past the end gets a [`FAILED`] reply with `InvalidArgument`.
pub const NS_REGISTER: u16 = 0x7e10;
pub const NS_LOOKUP: u16 = 0x7e11;
pub const NS_LIST: u16 = 0x7e12;
/// A lookup for one of the caller's clients: a task that serves several
/// clients of its own through one service (the soft bus: each remote
/// device) gives each a connection of its own, so that the service tells
/// them apart, and ends it with [`BYE`].
pub const NS_LOOKUP_CLIENT: u16 = 0x7e13;
pub const SV_TASK: u16 = 0x7e20;
pub const SV_DEVICE: u16 = 0x7e21;
pub const SV_MEMORY: u16 = 0x7e22;
pub const SV_KILL: u16 = 0x7e23;
pub const SV_RESTART: u16 = 0x7e24;
pub const SV_POWER: u16 = 0x7e25;
/// A driver asks for device memory the device tree does not describe (a
/// framebuffer its device's firmware allocated).
pub const SV_DEVICE_MEMORY: u16 = 0x7e26;
/// One task's record by its id: a server that knows a client by the badge
/// of its connection learns which program it is in one call, instead of
/// listing every task ([`SV_TASK`]).
pub const SV_TASK_BY_ID: u16 = 0x7e27;
/// A task's program name by its id, in the four register words (call and
/// reply take the kernel's fast path): what [`SV_TASK_BY_ID`] tells a
/// server that checks which program a client is, for about a quarter of
/// its instructions.
pub const SV_TASK_NAME: u16 = 0x7e28;
/// Longest program name [`SV_TASK_NAME`] carries.
pub const TASK_NAME_BYTES: usize = 32;

/// `name` in the four words of an [`SV_TASK_NAME`] reply; `None` if it is
/// longer than [`TASK_NAME_BYTES`] (or contains a zero byte).
pub fn task_name_words(name: &str) -> Option<[u64; 4]> {
    let b = name.as_bytes();
    if b.len() > TASK_NAME_BYTES || b.contains(&0) {
        return None;
    }
    let mut w = [0u64; 4];
    for (i, chunk) in b.chunks(8).enumerate() {
        let mut x = [0u8; 8];
        x[..chunk.len()].copy_from_slice(chunk);
        w[i] = u64::from_le_bytes(x);
    }
    Some(w)
}

/// The name [`task_name_words`] packed, into `out`; `None` if it is not UTF-8.
pub fn task_name_from_words<'a>(w: &[u64; 4], out: &'a mut [u8; TASK_NAME_BYTES]) -> Option<&'a str> {
    for (i, x) in w.iter().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&x.to_le_bytes());
    }
    let len = out.iter().position(|&b| b == 0).unwrap_or(TASK_NAME_BYTES);
    core::str::from_utf8(&out[..len]).ok()
}

/// Longest service name.
pub const MAX_NAME: usize = 32;

/// Sent on a connection (not to init) by a client that is done with it:
/// the server forgets whatever it holds for the connection's badge (its
/// client is gone), as it would for a task that died. Only the holder of
/// the connection can say it: the badge is the kernel's. The compositor
/// honours it; a server that keeps nothing per client refuses it as any
/// label it does not serve, and the sender need not care.
pub const BYE: u16 = 0x7e30;

/// The badge of task `task`'s client `client` ([`NS_LOOKUP_CLIENT`]): the
/// task's id in the low 32 bits, the client above (0: the task itself,
/// the badge of [`NS_LOOKUP`]).
pub const fn client_badge(task: u64, client: u32) -> u64 {
    (task & 0xffff_ffff) | ((client as u64) << 32)
}

/// The task a badge names (its own connection or one of its clients').
pub const fn task_of(badge: u64) -> u64 {
    badge & 0xffff_ffff
}

/// The client of its task a badge names (0: the task itself).
pub const fn client_of(badge: u64) -> u32 {
    (badge >> 32) as u32
}

/// A message holding `values` (word 0 is their count) followed by `text`
/// packed as [`crate::ipc::pack_text`] does.
pub fn pack_record(label: u16, values: &[u64], text: &str) -> crate::Message {
    let mut m = crate::Message::new(label);
    m.push(values.len() as u64);
    for v in values {
        m.push(*v);
    }
    let t = crate::ipc::pack_text(label, text);
    for w in t.words() {
        m.push(*w);
    }
    m
}

/// The values and text of a [`pack_record`] message (text into `out`).
pub fn unpack_record<'a>(msg: &crate::Message, out: &'a mut [u8; TEXT_BYTES]) -> (alloc::vec::Vec<u64>, &'a str) {
    let n = (msg.word(0) as usize).min(msg.len().saturating_sub(1));
    let values = msg.words()[1..1 + n].to_vec();
    let mut rest = crate::Message::new(msg.label);
    for w in msg.words().iter().skip(1 + n) {
        rest.push(*w);
    }
    (values, crate::ipc::unpack_text(&rest, out))
}

/// The arguments the device manager starts a driver with: its device-tree
/// node, the `compatible` it matched, how many of `StartInfo::extra` are
/// MMIO regions (first) and interrupt lines (next), the regions' exact
/// physical ranges (`reg=ADDR+SIZE,...`: a capability covers whole pages,
/// a region may be smaller), then the profile's arguments for the driver
/// (the driver kit parses them).
pub fn driver_args(
    node: &str,
    compatible: &str,
    regions: &[(u64, u64)],
    irqs: usize,
    rest: &str,
) -> alloc::string::String {
    let mut s = alloc::format!(
        "node={node} compatible={compatible} regions={} irqs={irqs}",
        regions.len()
    );
    for (i, (address, size)) in regions.iter().enumerate() {
        s.push_str(if i == 0 { " reg=" } else { "," });
        s.push_str(&alloc::format!("{address:#x}+{size:#x}"));
    }
    if !rest.is_empty() {
        s.push(' ');
        s.push_str(rest);
    }
    s
}

/// Room for text in one message.
pub const TEXT_BYTES: usize = (abi::BUFFER_WORDS - 1) * 8;

/// Task states in a [`TaskRecord`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum TaskState {
    Running = 0,
    /// Faulted; waiting out its back-off before a restart.
    Restarting = 1,
    /// Exited, killed, or given up on after too many faults.
    Stopped = 2,
}

impl TaskState {
    pub fn from_word(w: u64) -> TaskState {
        match w {
            0 => TaskState::Running,
            1 => TaskState::Restarting,
            _ => TaskState::Stopped,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Running => "running",
            TaskState::Restarting => "restarting",
            TaskState::Stopped => "stopped",
        }
    }
}

/// One task as [`SV_TASK`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRecord {
    pub id: u64,
    pub state: TaskState,
    /// Memory limit (its pool) and what it uses of it, in bytes.
    pub memory_limit: u64,
    pub memory_used: u64,
    /// CPU time used, microseconds (all incarnations).
    pub cpu_us: u64,
    pub restarts: u64,
    pub priority: u64,
    /// Program name, then the device node it drives, if any.
    pub name: alloc::string::String,
    pub device: alloc::string::String,
}

impl TaskRecord {
    pub fn to_message(&self) -> crate::Message {
        let text = alloc::format!("{} {}", self.name, self.device);
        pack_record(
            OK,
            &[
                self.id,
                self.state as u64,
                self.memory_limit,
                self.memory_used,
                self.cpu_us,
                self.restarts,
                self.priority,
            ],
            text.trim_end(),
        )
    }

    pub fn from_message(msg: &crate::Message) -> Option<TaskRecord> {
        let mut buf = [0u8; TEXT_BYTES];
        let (v, text) = unpack_record(msg, &mut buf);
        if v.len() < 7 {
            return None;
        }
        let (name, device) = text.split_once(' ').unwrap_or((text, ""));
        Some(TaskRecord {
            id: v[0],
            state: TaskState::from_word(v[1]),
            memory_limit: v[2],
            memory_used: v[3],
            cpu_us: v[4],
            restarts: v[5],
            priority: v[6],
            name: name.into(),
            device: device.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_badge_names_its_task_and_client() {
        let b = client_badge(7, 3);
        assert_eq!((task_of(b), client_of(b)), (7, 3));
        assert_ne!(b, 7, "a client is not its task");
        assert_ne!(b, client_badge(7, 4));
        assert_eq!(client_badge(7, 0), 7, "client 0: the task's own badge");
        assert_eq!(
            (task_of(client_badge(9, u32::MAX)), client_of(client_badge(9, u32::MAX))),
            (9, u32::MAX)
        );
    }

    #[test]
    fn task_names_round_trip() {
        let mut buf = [0u8; TASK_NAME_BYTES];
        for name in ["", "fs", "bench-fs", "abcdefgh", "a-program-name-of-32-bytes-long!"] {
            let w = task_name_words(name).expect(name);
            assert_eq!(task_name_from_words(&w, &mut buf), Some(name));
        }
        assert_eq!(task_name_words("a-program-name-of-33-bytes-long!!"), None);
        assert_eq!(task_name_words("a\0b"), None);
    }

    #[test]
    fn records_round_trip() {
        let r = TaskRecord {
            id: 7,
            state: TaskState::Restarting,
            memory_limit: 1 << 20,
            memory_used: 12345,
            cpu_us: 999,
            restarts: 2,
            priority: 20,
            name: "virtio-blk".into(),
            device: "virtio_mmio@a003e00".into(),
        };
        assert_eq!(TaskRecord::from_message(&r.to_message()), Some(r));
        let m = pack_record(OK, &[], "hello world");
        let mut buf = [0u8; TEXT_BYTES];
        assert_eq!(unpack_record(&m, &mut buf), (alloc::vec![], "hello world"));
        // A short or hostile message yields nothing, not a panic.
        assert_eq!(
            TaskRecord::from_message(&crate::Message::with_words(OK, &[200, 1])),
            None
        );
    }

    #[test]
    fn errors_travel_in_replies() {
        assert_eq!(
            check_reply(reply_error(abi::Error::PeerDied)).map(|m| m.label),
            Err(abi::Error::PeerDied)
        );
        assert_eq!(check_reply(crate::Message::new(OK)).map(|m| m.label), Ok(OK));
    }
}
