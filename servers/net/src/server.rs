//! The two threads (see the crate docs).
#![forbid(unsafe_code)]

use crate::link::Link;
use crate::stack::Stack;
use alloc::boxed::Box;
use userlib::abi::boot_info::StartInfo;
use userlib::abi::ObjectType;
use userlib::proto::reply_error;
use userlib::server::{serve, Action};
use userlib::services::net as proto;
use userlib::sync::Mutex;
use userlib::{names, process, syscall, thread, Error, Handle, Message, Timeout};

pub fn main(_start: &StartInfo) {
    // The card's driver may start after us, or never (no card): the poll
    // thread attaches when it shows; until then `INFO` says the link is down.
    let link = Link::new().expect("notification");
    let ep = syscall::create(process().pool, ObjectType::Endpoint, 0).expect("endpoint");
    let notification = link.notification;
    let stack: &'static Mutex<Stack> = Box::leak(Box::new(Mutex::new(Stack::new(link, ep))));
    // (Dropping a JoinHandle ends its thread: both are kept.)
    let _poller = thread::Builder::default()
        .stack_pages(STACK_PAGES)
        .spawn(move || poll_loop(stack, notification))
        .expect("poll thread");
    names::register(proto::NAME, ep).unwrap_or_else(|e| panic!("register {}: {e}", proto::NAME));
    // smoltcp's poll needs more stack than a task's first thread has.
    let requests = thread::Builder::default()
        .stack_pages(STACK_PAGES)
        .spawn(move || serve_loop(stack, ep))
        .expect("request thread");
    let _ = requests.join();
    panic!("the request thread ended");
}

/// Stack of each of the two threads (smoltcp's poll is deep).
const STACK_PAGES: u64 = 32;

fn serve_loop(stack: &'static Mutex<Stack>, ep: Handle) {
    let r = serve(ep, |msg, badge| {
        let reply = {
            let mut s = stack.lock();
            let poll = s.polls_after(badge, msg.label);
            let r = handle(&mut s, msg, badge);
            if poll {
                s.poll();
            }
            r
        };
        Action::Reply(reply.unwrap_or_else(reply_error))
    });
    if let Err(e) = r {
        panic!("receive on the service endpoint: {e}");
    }
}

fn poll_loop(stack: &'static Mutex<Stack>, notification: Handle) {
    loop {
        let delay = {
            let mut s = stack.lock();
            s.poll();
            s.delay_us()
        };
        if let Ok(bits) = syscall::wait(notification, Timeout::Micros(delay)) {
            if bits & userlib::services::netdev::RX_BIT != 0 {
                stack.lock().link.pending = true;
            }
        }
    }
}

/// One request. Capabilities it carries that are not taken here are
/// deleted by `serve` (they must not fill the cspace).
fn handle(s: &mut Stack, msg: &mut Message, badge: u64) -> Result<Message, Error> {
    if badge & proto::SOCKET_BADGE != 0 {
        return s.socket_request(badge, msg);
    }
    match msg.label {
        proto::INFO => Ok(s.info()),
        proto::OPEN if msg.caps().len() == 1 => {
            // `open` takes the notification (and deletes it on failure).
            let notification = msg.take_cap(0).ok_or(Error::InvalidArgument)?;
            s.open(badge, msg.word(0), notification)
        }
        _ => Err(Error::InvalidArgument),
    }
}
