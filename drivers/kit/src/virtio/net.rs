//! A virtio network card that does not wait for its transmits, and that
//! receives only the frames meant for it.
//!
//! `VirtIONet::send` (virtio-drivers) waits, spinning on the used ring,
//! until the card has taken each frame. QEMU takes a frame in its main
//! loop, not in the guest's write to the queue register, so the spin lasts
//! as long as the host takes to get there: under `-icount` 60,000 to
//! 150,000 guest instructions a frame, more the busier the host
//! (`cargo xtask bench --only bus`, temporary counters in the driver).
//! [`Nic`] hands a frame to the card and returns; the buffers of frames
//! sent are taken back when the card has used them, before the next send
//! and on every receive.
//!
//! A card starts promiscuous (QEMU's virtio-net hands the guest every
//! frame on its network, virtio 1.2, 5.1.6.5.1). On a `--link` (QEMU's
//! multicast socket netdev, which loops each frame back to its sender)
//! that includes every frame the card itself sent, each an interrupt and
//! a wake of the stack for nothing. When the card offers the control
//! queue and its receive-mode commands (`VIRTIO_NET_F_CTRL_VQ`,
//! `VIRTIO_NET_F_CTRL_RX`), [`Nic::new`] turns all-multicast on and then
//! promiscuous mode off ([`Filter::Own`]): the card then takes unicast
//! frames to its own MAC, broadcast and every multicast frame. Without
//! them the card stays promiscuous ([`Filter::Promiscuous`]).
//!
//! virtio-drivers' `VirtIONetRaw` negotiates a fixed feature set without
//! the control queue, so [`Nic`] drives the queues itself, on the crate's
//! transport and [`VirtQueue`]. The queue calls that lend buffers are
//! `unsafe` (a buffer stays lent to the card until its request
//! completes). [`Nic`] keeps them sound by owning every buffer it lends:
//! each receive and transmit slot is a fixed piece of one [`Dma`] region
//! (used in place, no bounce copy), lent to the card at most once at a
//! time and touched by the driver only when the card has given it back.

use crate::dma::Dma;
use crate::virtio::{error, KitHal};
use bitflags::bitflags;
use userlib::{log, Error};
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::Transport;

/// Descriptors per virtqueue: receive slots posted to the card, and
/// transmits in flight at most.
pub const QUEUE: usize = 16;
/// Bytes of one slot: the virtio-net header and a frame.
const SLOT: usize = 2048;
/// Descriptors of the control queue: one command (header, data, ack).
const CONTROL_QUEUE: usize = 4;

const RECEIVE: u16 = 0;
const TRANSMIT: u16 = 1;
/// The control queue's index on a card without multiqueue (virtio 1.2,
/// 5.1.2).
const CONTROL: u16 = 2;

bitflags! {
    /// The feature bits [`Nic`] knows (virtio 1.2, 5.1.3 and 6).
    #[derive(Copy, Clone, Debug, Eq, PartialEq)]
    struct Features: u64 {
        const MAC = 1 << 5;
        const MRG_RXBUF = 1 << 15;
        const STATUS = 1 << 16;
        const CTRL_VQ = 1 << 17;
        const CTRL_RX = 1 << 18;
        const RING_INDIRECT_DESC = 1 << 28;
        const RING_EVENT_IDX = 1 << 29;
        const VERSION_1 = 1 << 32;
    }
}

/// What [`Nic::new`] asks the card for. Not `RING_EVENT_IDX`: with it the
/// card ignores the transmit queue's "no interrupt" flag, and virtio-drivers
/// re-arms `used_event` at each completion, so the card would interrupt
/// for sent frames (see [`Nic::enable_interrupts`]).
const WANTED: Features = Features::MAC
    .union(Features::STATUS)
    .union(Features::CTRL_VQ)
    .union(Features::CTRL_RX)
    .union(Features::RING_INDIRECT_DESC)
    .union(Features::VERSION_1);

/// The control queue's receive-mode class and its commands (virtio 1.2,
/// 5.1.6.5.1), and the device's answer for success.
const CLASS_RX: u8 = 0;
const RX_PROMISC: u8 = 0;
const RX_ALLMULTI: u8 = 1;
const CONTROL_OK: u8 = 0;

/// A receive-mode command as the control queue carries it: the header
/// (`class`, `command`), then the command's one byte (on or off). The
/// device writes its answer into a third, device-writable byte.
const fn rx_mode(command: u8, on: bool) -> ([u8; 2], [u8; 1]) {
    ([CLASS_RX, command], [on as u8])
}

/// The receive-mode commands that turn promiscuous mode off while keeping
/// every multicast and broadcast frame, in the order they are sent
/// (all-multicast first, so no multicast frame is ever dropped); none if
/// the card lacks the control queue or its receive-mode commands.
fn filter_commands(negotiated: Features) -> &'static [([u8; 2], [u8; 1])] {
    const COMMANDS: [([u8; 2], [u8; 1]); 2] = [rx_mode(RX_ALLMULTI, true), rx_mode(RX_PROMISC, false)];
    if negotiated.contains(Features::CTRL_VQ | Features::CTRL_RX) {
        &COMMANDS
    } else {
        &[]
    }
}

/// Bytes of the virtio-net header before each frame: `num_buffers` is
/// part of it with `VERSION_1` or `MRG_RXBUF` (virtio 1.2, 5.1.6).
fn header_len(negotiated: Features) -> usize {
    if negotiated.intersects(Features::VERSION_1 | Features::MRG_RXBUF) {
        12
    } else {
        10
    }
}

/// Which frames the card hands the driver.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Filter {
    /// Every frame on the network (the card has no receive-mode
    /// commands, or refused them).
    Promiscuous,
    /// Unicast frames to the card's MAC, broadcast, and every multicast.
    Own,
}

/// One virtio-net card with [`QUEUE`] receive and [`QUEUE`] transmit slots.
pub struct Nic<T: Transport> {
    transport: T,
    mac: [u8; 6],
    /// Bytes of the virtio-net header before each frame.
    header: usize,
    filter: Filter,
    receive: VirtQueue<KitHal, QUEUE>,
    transmit: VirtQueue<KitHal, QUEUE>,
    /// Set up when the card has one; used once, by [`Nic::new`].
    _control: Option<VirtQueue<KitHal, CONTROL_QUEUE>>,
    rx: Dma,
    /// The receive request of each receive slot (every slot is always
    /// lent to the card, but while [`Nic::receive`] copies it out).
    rx_token: [Option<u16>; QUEUE],
    tx: Dma,
    /// Per transmit slot: the request lending it and its length, while the
    /// card holds it.
    tx_token: [Option<(u16, usize)>; QUEUE],
}

impl<T: Transport> Nic<T> {
    /// Sets the card up, turns its promiscuous mode off if it can, and
    /// lends it every receive slot.
    pub fn new(mut transport: T) -> Result<Nic<T>, Error> {
        let negotiated = transport.begin_init(WANTED);
        let mac = transport
            .read_consistent(|| {
                let mut mac = [0u8; 6];
                for (i, b) in mac.iter_mut().enumerate() {
                    *b = transport.read_config_space::<u8>(i)?;
                }
                Ok(mac)
            })
            .map_err(error)?;
        let indirect = negotiated.contains(Features::RING_INDIRECT_DESC);
        let event_idx = negotiated.contains(Features::RING_EVENT_IDX);
        let transmit = VirtQueue::new(&mut transport, TRANSMIT, indirect, event_idx).map_err(error)?;
        let receive = VirtQueue::new(&mut transport, RECEIVE, indirect, event_idx).map_err(error)?;
        let mut control = if negotiated.contains(Features::CTRL_VQ) {
            Some(VirtQueue::new(&mut transport, CONTROL, false, false).map_err(error)?)
        } else {
            None
        };
        transport.finish_init();
        let mut filter = Filter::Promiscuous;
        if let Some(queue) = control.as_mut() {
            // Completions are awaited by polling the used ring.
            queue.set_dev_notify(false);
            let commands = filter_commands(negotiated);
            let mut done = 0;
            for (header, data) in commands {
                let mut ack = [0xffu8];
                let r = queue.add_notify_wait_pop(&[&header[..], &data[..]], &mut [&mut ack[..]], &mut transport);
                if r.is_err() || ack[0] != CONTROL_OK {
                    log::warn!(
                        "virtio-net: receive-mode command {} refused ({r:?}, answer {}): the card stays promiscuous",
                        header[1],
                        ack[0]
                    );
                    break;
                }
                done += 1;
            }
            if !commands.is_empty() && done == commands.len() {
                filter = Filter::Own;
            }
        }
        let mut nic = Nic {
            transport,
            mac,
            header: header_len(negotiated),
            filter,
            receive,
            transmit,
            _control: control,
            rx: Dma::new(QUEUE * SLOT)?,
            rx_token: [None; QUEUE],
            tx: Dma::new(QUEUE * SLOT)?,
            tx_token: [None; QUEUE],
        };
        for i in 0..QUEUE {
            nic.post(i)?;
        }
        Ok(nic)
    }

    pub fn mac_address(&self) -> [u8; 6] {
        self.mac
    }

    /// Which frames the card hands the driver.
    pub fn filter(&self) -> Filter {
        self.filter
    }

    /// Asks the card to interrupt when it has received frames. Not for
    /// frames it sent: their slots are taken back by polling, at each
    /// send and receive, so such an interrupt would only wake the stack
    /// to find nothing.
    pub fn enable_interrupts(&mut self) {
        self.transmit.set_dev_notify(false);
        self.receive.set_dev_notify(true);
    }

    pub fn ack_interrupt(&mut self) {
        self.transport.ack_interrupt();
    }

    /// Lends receive slot `i` (not lent now) to the card.
    fn post(&mut self, i: usize) -> Result<(), Error> {
        debug_assert!(self.rx_token[i].is_none());
        let buf = &mut self.rx.as_mut_slice()[i * SLOT..(i + 1) * SLOT];
        // SAFETY: slot `i` is a piece of `self.rx`, which lives as long as
        // the card is driven through `self.receive`; it is not lent now,
        // and nothing reads or writes it until `receive` has completed the
        // request with `pop_used` (the only other use of slot `i`).
        let token = unsafe { self.receive.add(&[], &mut [buf]) }.map_err(error)?;
        if self.receive.should_notify() {
            self.transport.notify(RECEIVE);
        }
        self.rx_token[i] = Some(token);
        Ok(())
    }

    /// The next frame the card received, given to `f`, and its slot lent
    /// again; `None` if none waits.
    pub fn receive<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        self.reclaim();
        let token = self.receive.peek_used()?;
        let i = self.rx_token.iter().position(|t| *t == Some(token))?;
        self.rx_token[i] = None;
        let buf = &mut self.rx.as_mut_slice()[i * SLOT..(i + 1) * SLOT];
        // SAFETY: `token` is the request that lent slot `i` (recorded by
        // `post`), the same buffer is passed back, and the card is done
        // with it (`peek_used` returned its token).
        let got = unsafe { self.receive.pop_used(token, &[], &mut [buf]) };
        let header = self.header;
        let r = got
            .ok()
            .and_then(|len| (len as usize).checked_sub(header))
            .map(|len| f(&self.rx.as_slice()[i * SLOT..][header..header + len.min(SLOT - header)]));
        if let Err(e) = self.post(i) {
            panic!("lending a receive buffer again: {e}");
        }
        r
    }

    /// Hands `frame` to the card without waiting for it to be sent.
    /// `InvalidArgument` if it does not fit a slot. When every transmit
    /// slot is lent, waits for the card to give one back.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), Error> {
        self.reclaim();
        let header = self.header;
        let len = header + frame.len();
        if len > SLOT {
            return Err(Error::InvalidArgument);
        }
        let i = loop {
            match self.tx_token.iter().position(|t| t.is_none()) {
                Some(i) => break i,
                None => {
                    core::hint::spin_loop();
                    self.reclaim();
                }
            }
        };
        let slot = &mut self.tx.as_mut_slice()[i * SLOT..(i + 1) * SLOT];
        // No offloads: an all-zero header.
        slot[..header].fill(0);
        slot[header..len].copy_from_slice(frame);
        // SAFETY: slot `i` of `self.tx` (alive as long as `self.transmit`)
        // is not lent now; it is not touched again until `reclaim`
        // completes the request with the same buffer.
        let token = unsafe {
            self.transmit
                .add(&[&self.tx.as_slice()[i * SLOT..i * SLOT + len]], &mut [])
        }
        .map_err(error)?;
        if self.transmit.should_notify() {
            self.transport.notify(TRANSMIT);
        }
        self.tx_token[i] = Some((token, len));
        Ok(())
    }

    /// Takes back the transmit slots whose frames the card has sent.
    fn reclaim(&mut self) {
        while let Some(token) = self.transmit.peek_used() {
            let Some(i) = self.tx_token.iter().position(|t| t.is_some_and(|(k, _)| k == token)) else {
                panic!("virtio-net: the card used transmit request {token}, which is not lent");
            };
            let len = self.tx_token[i].map_or(0, |(_, len)| len);
            // SAFETY: the same buffer `send` lent with `token`, which the
            // card has used (`peek_used`).
            if let Err(e) = unsafe {
                self.transmit
                    .pop_used(token, &[&self.tx.as_slice()[i * SLOT..i * SLOT + len]], &mut [])
            } {
                panic!("virtio-net: completing transmit {token}: {e}");
            }
            self.tx_token[i] = None;
        }
    }
}

impl<T: Transport> Drop for Nic<T> {
    fn drop(&mut self) {
        // The card must not use the queues' memory once it is freed.
        self.transport.queue_unset(RECEIVE);
        self.transport.queue_unset(TRANSMIT);
        if self._control.is_some() {
            self.transport.queue_unset(CONTROL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_mode_commands_match_the_specification_layout() {
        // virtio 1.2, 5.1.6.5: `struct virtio_net_ctrl { u8 class; u8
        // command; u8 command-specific-data[]; u8 ack; }`; class
        // VIRTIO_NET_CTRL_RX is 0, its commands PROMISC 0 and ALLMULTI 1,
        // each with one byte, 0 off and 1 on.
        assert_eq!(rx_mode(RX_PROMISC, false), ([0, 0], [0]));
        assert_eq!(rx_mode(RX_ALLMULTI, true), ([0, 1], [1]));
        assert_eq!(CONTROL_OK, 0, "VIRTIO_NET_OK");
        assert_eq!(CONTROL, 2, "controlq is queue 2 without VIRTIO_NET_F_MQ");
    }

    #[test]
    fn promiscuous_mode_goes_off_only_with_the_receive_mode_commands() {
        let all = Features::all();
        assert_eq!(
            filter_commands(all),
            &[rx_mode(RX_ALLMULTI, true), rx_mode(RX_PROMISC, false)],
            "all-multicast on before promiscuous off"
        );
        assert!(filter_commands(all - Features::CTRL_RX).is_empty());
        assert!(filter_commands(all - Features::CTRL_VQ).is_empty());
        assert!(WANTED.contains(Features::CTRL_VQ | Features::CTRL_RX));
        assert!(
            !WANTED.contains(Features::RING_EVENT_IDX),
            "transmits must not interrupt"
        );
        assert_eq!(Features::CTRL_VQ.bits(), 1 << 17, "VIRTIO_NET_F_CTRL_VQ");
        assert_eq!(Features::CTRL_RX.bits(), 1 << 18, "VIRTIO_NET_F_CTRL_RX");
    }

    #[test]
    fn the_header_has_num_buffers_with_version_1() {
        assert_eq!(header_len(Features::VERSION_1), 12);
        assert_eq!(header_len(Features::MRG_RXBUF), 12);
        assert_eq!(header_len(Features::MAC), 10);
    }
}
