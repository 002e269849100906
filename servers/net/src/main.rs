//! net: the network stack. smoltcp (Ethernet, ARP, IPv4, ICMP, UDP, TCP,
//! a DHCPv4 client and a DNS resolver) over the card's driver (`netdev`),
//! served as `net`: the protocol, in which a socket is a capability, is
//! `userlib::services::net`; the client, shaped like `std::net`, is
//! `userlib::net`.
//!
//! Two threads share the stack under one lock:
//! - the request thread serves the `net` endpoint and every socket
//!   endpoint (they are one endpoint; badges tell sockets from clients).
//!   No request waits: one that cannot progress yet fails with
//!   `WouldBlock`, and the client waits on its own notification, which the
//!   stack signals. A client that stops calling, or calls with nonsense,
//!   holds nobody up.
//! - the poll thread waits for the driver's interrupt (delivered to the
//!   stack's notification) or the next smoltcp timer, fetches frames, runs
//!   the interface, copies UDP datagrams into the receive rings of the
//!   sockets that have one, and signals the sockets' clients.
//!
//! When the driver dies, the link is down until the supervisor has
//! restarted it; the poll thread then attaches again. Sockets survive
//! (TCP retransmits what was lost meanwhile).
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

extern crate alloc;

#[cfg(not(test))]
mod link;
#[cfg(not(test))]
mod server;
#[cfg(not(test))]
mod stack;

#[cfg(not(test))]
userlib::entry!(server::main, heap = 2 << 20);
