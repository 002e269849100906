//! A server loop over `ReplyRecv`: one system call per request, replying to
//! the previous caller and receiving the next.
//!
//! # Capabilities that come with requests
//!
//! Any client can send capabilities with any request: the kernel installs
//! each one in the receiver's capability space and charges it to the
//! receiver's pool (its memory limit), whether or not the protocol has a
//! use for it. A server that kept them would fill its pool with a hostile
//! client's capabilities (issue 11: a client could make a server hold as
//! much as the server's memory limit, init included, whose pool is all free
//! memory). So [`serve`] deletes, after each request, every capability of
//! the request that the handler did not take with [`Message::take_cap`];
//! a server with a receive loop of its own calls [`drop_caps`] after each
//! request to the same end.

use crate::ipc::{Message, Timeout};
use crate::syscall;
use abi::{Error, Handle};

/// What a handler wants done with a request.
pub enum Action {
    /// Reply with this message and go on.
    Reply(Message),
    /// Do not reply (the caller stays blocked until someone replies or
    /// gives up; a sender that did not call needs no reply) and go on.
    NoReply,
    /// Reply, then return from [`serve`] with `Ok(())`.
    ReplyAndStop(Message),
    /// Return from [`serve`] without replying.
    Stop,
}

/// Serves requests on `ep` until the handler says stop. The handler gets
/// each message and its sender's badge. Errors of the receive end the loop.
///
/// The capabilities a request carries are the server's for the time of the
/// handler only: a handler that keeps one (stores it, maps through it,
/// hands it on) takes it out of the message with [`Message::take_cap`];
/// once the handler returns, `serve` deletes every capability still in the
/// message (before the reply is sent), whatever the request and whatever
/// the handler answered. A handler must not delete a capability it did not
/// take (the handle would be deleted twice, and by then it may name
/// another capability).
pub fn serve(ep: Handle, mut handler: impl FnMut(&mut Message, u64) -> Action) -> Result<(), Error> {
    // Every request is received into this one message (no new one made,
    // zeroed and copied per request: `syscall::recv_into`).
    let mut msg = Message::new(0);
    let mut badge = syscall::recv_into(ep, Timeout::Forever, &mut msg)?;
    loop {
        let action = handler(&mut msg, badge);
        drop_caps(&mut msg);
        badge = match action {
            Action::Reply(r) => syscall::reply_recv_into(ep, &r, Timeout::Forever, &mut msg),
            Action::NoReply => syscall::recv_into(ep, Timeout::Forever, &mut msg),
            Action::ReplyAndStop(r) => {
                let _ = syscall::reply(&r);
                return Ok(());
            }
            Action::Stop => return Ok(()),
        }?;
    }
}

/// Deletes every capability still in a received message (those no one
/// took with [`Message::take_cap`]): what a receive loop of its own does
/// after each request, as [`serve`] does. Returns how many it deleted.
pub fn drop_caps(msg: &mut Message) -> usize {
    let mut n = 0;
    for i in 0..msg.caps().len() {
        if let Some(c) = msg.take_cap(i) {
            let _ = syscall::cap_delete(c);
            n += 1;
        }
    }
    n
}
