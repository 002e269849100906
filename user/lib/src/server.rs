//! A server loop over `ReplyRecv`: one system call per request, replying to
//! the previous caller and receiving the next.

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
pub fn serve(ep: Handle, mut handler: impl FnMut(&Message, u64) -> Action) -> Result<(), Error> {
    let (mut msg, mut badge) = syscall::recv(ep, Timeout::Forever)?;
    loop {
        let next = match handler(&msg, badge) {
            Action::Reply(r) => syscall::reply_recv(ep, &r, Timeout::Forever),
            Action::NoReply => syscall::recv(ep, Timeout::Forever),
            Action::ReplyAndStop(r) => {
                let _ = syscall::reply(&r);
                return Ok(());
            }
            Action::Stop => return Ok(()),
        };
        (msg, badge) = next?;
    }
}
