//! A virtio network card that does not wait for its transmits.
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
//! The raw calls that do this are `unsafe` (a buffer stays lent to the
//! card until its request completes). [`Nic`] keeps them sound by owning
//! every buffer it lends: each receive and transmit slot is a fixed piece
//! of one [`Dma`] region (used in place, no bounce copy), lent to the card
//! at most once at a time and touched by the driver only when the card
//! has given it back.

use crate::dma::Dma;
use crate::virtio::{error, KitHal};
use userlib::Error;
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::Transport;

/// Descriptors per virtqueue: receive slots posted to the card, and
/// transmits in flight at most.
pub const QUEUE: usize = 16;
/// Bytes of one slot: the virtio-net header and a frame (virtio-drivers
/// asks for at least 1,526 per receive buffer).
const SLOT: usize = 2048;

/// One virtio-net card with [`QUEUE`] receive and [`QUEUE`] transmit slots.
pub struct Nic<T: Transport> {
    raw: VirtIONetRaw<KitHal, T, QUEUE>,
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
    /// Sets the card up and lends it every receive slot.
    pub fn new(transport: T) -> Result<Nic<T>, Error> {
        let raw = VirtIONetRaw::new(transport).map_err(error)?;
        let mut nic = Nic {
            raw,
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
        self.raw.mac_address()
    }

    pub fn enable_interrupts(&mut self) {
        self.raw.enable_interrupts();
    }

    pub fn ack_interrupt(&mut self) {
        self.raw.ack_interrupt();
    }

    /// Lends receive slot `i` (not lent now) to the card.
    fn post(&mut self, i: usize) -> Result<(), Error> {
        debug_assert!(self.rx_token[i].is_none());
        let buf = &mut self.rx.as_mut_slice()[i * SLOT..(i + 1) * SLOT];
        // SAFETY: slot `i` is a piece of `self.rx`, which lives as long as
        // the card is driven through `self.raw`; it is not lent now, and
        // nothing reads or writes it until `receive` has completed the
        // request with `receive_complete` (the only other use of slot `i`).
        let token = unsafe { self.raw.receive_begin(buf) }.map_err(error)?;
        self.rx_token[i] = Some(token);
        Ok(())
    }

    /// The next frame the card received, given to `f`, and its slot lent
    /// again; `None` if none waits.
    pub fn receive<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        self.reclaim();
        let token = self.raw.poll_receive()?;
        let i = self.rx_token.iter().position(|t| *t == Some(token))?;
        self.rx_token[i] = None;
        let buf = &mut self.rx.as_mut_slice()[i * SLOT..(i + 1) * SLOT];
        // SAFETY: `token` is the request that lent slot `i` (recorded by
        // `post`), the same buffer is passed back, and the card is done
        // with it (`poll_receive` returned its token).
        let got = unsafe { self.raw.receive_complete(token, buf) };
        let r = got
            .ok()
            .map(|(header, len)| f(&self.rx.as_slice()[i * SLOT..][header..header + len.min(SLOT - header)]));
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
        let header = self.raw.fill_buffer_header(slot).map_err(error)?;
        let len = header + frame.len();
        if len > SLOT {
            return Err(Error::InvalidArgument);
        }
        slot[header..len].copy_from_slice(frame);
        // SAFETY: slot `i` of `self.tx` (alive as long as `self.raw`) is
        // not lent now; it is not touched again until `reclaim` completes
        // the request with the same buffer.
        let token = unsafe { self.raw.transmit_begin(&self.tx.as_slice()[i * SLOT..i * SLOT + len]) }.map_err(error)?;
        self.tx_token[i] = Some((token, len));
        Ok(())
    }

    /// Takes back the transmit slots whose frames the card has sent.
    fn reclaim(&mut self) {
        while let Some(token) = self.raw.poll_transmit() {
            let Some(i) = self.tx_token.iter().position(|t| t.is_some_and(|(k, _)| k == token)) else {
                panic!("virtio-net: the card used transmit request {token}, which is not lent");
            };
            let len = self.tx_token[i].map_or(0, |(_, len)| len);
            // SAFETY: the same buffer `send` lent with `token`, which the
            // card has used (`poll_transmit`).
            if let Err(e) = unsafe {
                self.raw
                    .transmit_complete(token, &self.tx.as_slice()[i * SLOT..i * SLOT + len])
            } {
                panic!("virtio-net: completing transmit {token}: {e}");
            }
            self.tx_token[i] = None;
        }
    }
}
