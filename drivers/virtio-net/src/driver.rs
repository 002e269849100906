//! The driver's request loop (see the crate docs).
#![forbid(unsafe_code)]

use driverkit::virtio;
use driverkit::virtio::net::{Filter, Nic};
use driverkit::virtio::virtio_drivers::transport::mmio::MmioTransport;
use driverkit::{names, serve, Action, Device, Interrupt};
use userlib::abi::boot_info::StartInfo;
use userlib::abi::ObjectType;
use userlib::proto::{reply_error, OK};
use userlib::services::netdev::{self, RX_SLOTS, SHARED_BYTES, TX_SLOTS};
use userlib::vspace::Mapping;
use userlib::{log, process, syscall, Error, Handle, Message, Rights};

type Net = Nic<MmioTransport<'static>>;

struct Driver {
    net: Net,
    irq: Interrupt,
    frames: Mapping,
    mac: [u8; 6],
    /// The attached client's badge and its notification.
    client: Option<(u64, Handle)>,
}

pub fn main(_start: &StartInfo) {
    let device = Device::get().unwrap_or_else(|e| panic!("{e}"));
    let (transport, _regs) = virtio::transport(&device).unwrap_or_else(|e| panic!("transport: {e}"));
    let version = transport.version();
    let mut net = Net::new(transport).unwrap_or_else(|e| panic!("virtio-net init: {e}"));
    let irq = device.interrupt(0).unwrap_or_else(|e| panic!("interrupt: {e}"));
    net.enable_interrupts();
    let frames = Mapping::new(
        (SHARED_BYTES / userlib::abi::PAGE_SIZE) as u64,
        Rights::READ | Rights::WRITE,
    )
    .expect("frame memory");
    let mac = net.mac_address();
    let ep = syscall::create(process().pool, ObjectType::Endpoint, 0).expect("endpoint");
    let name = device.arg("name").unwrap_or(netdev::NAME);
    names::register(name, ep).unwrap_or_else(|e| panic!("register {name}: {e}"));
    log::info!(
        "{name}: MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} on {} (virtio-mmio {:?}), receives {}",
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5],
        device.node(),
        version,
        match net.filter() {
            Filter::Own => "its own, broadcast and multicast frames",
            Filter::Promiscuous => "every frame (promiscuous)",
        }
    );
    let mut d = Driver {
        net,
        irq,
        frames,
        mac,
        client: None,
    };
    if let Err(e) = serve(ep, |msg, badge| Action::Reply(d.handle(msg, badge))) {
        panic!("receive on the service endpoint: {e}");
    }
}

impl Driver {
    /// One request. Capabilities it carries that `attach` does not take
    /// are deleted by `serve` (they must not fill the cspace).
    fn handle(&mut self, msg: &mut Message, badge: u64) -> Message {
        let attached = self.client.is_some_and(|(b, _)| b == badge);
        let r = match msg.label {
            netdev::INFO => Ok(Message::with_words(
                OK,
                &[netdev::mac_to_word(self.mac), netdev::MAX_FRAME as u64 - 14],
            )),
            netdev::ATTACH if msg.caps().len() == 1 => match msg.take_cap(0) {
                Some(notification) => self.attach(badge, notification),
                None => Err(Error::InvalidArgument),
            },
            netdev::RECV if attached => Ok(self.receive()),
            netdev::SEND if attached => self.send(msg),
            netdev::RECV | netdev::SEND => Err(Error::InvalidState),
            _ => Err(Error::InvalidArgument),
        };
        r.unwrap_or_else(reply_error)
    }

    /// Makes `badge` the client: its notification gets the interrupts
    /// from now on, and it gets the frame memory.
    fn attach(&mut self, badge: u64, notification: Handle) -> Result<Message, Error> {
        let info = syscall::cap_info(notification)?;
        if info.object != Some(ObjectType::Notification) {
            let _ = syscall::cap_delete(notification);
            return Err(Error::WrongType);
        }
        if let Err(e) = self.irq.deliver_to(notification, netdev::RX_BIT) {
            let _ = syscall::cap_delete(notification);
            return Err(e);
        }
        if let Some((_, old)) = self.client.replace((badge, notification)) {
            let _ = syscall::cap_delete(old);
        }
        // Whatever arrived before: the client fetches it now.
        let _ = syscall::signal(notification, netdev::RX_BIT);
        let mut reply = Message::new(OK);
        reply.push_cap(self.frames.handle(), Rights::READ | Rights::WRITE | Rights::MAP);
        Ok(reply)
    }

    /// Acknowledges the card's interrupt, copies up to [`RX_SLOTS`]
    /// waiting frames into the receive slots, and unmasks the line.
    fn receive(&mut self) -> Message {
        self.net.ack_interrupt();
        let mut words = [0u64; RX_SLOTS + 1];
        let mut n = 0;
        while n < RX_SLOTS {
            let frames = &mut self.frames;
            let Some(len) = self.net.receive(|packet| {
                let len = packet.len().min(netdev::MAX_FRAME);
                let at = netdev::rx_slot(n);
                frames.as_mut_slice()[at..at + len].copy_from_slice(&packet[..len]);
                len
            }) else {
                break;
            };
            if len > 0 {
                n += 1;
                words[n] = len as u64;
            }
        }
        words[0] = n as u64;
        let _ = self.irq.ack();
        Message::with_words(OK, &words[..=n])
    }

    fn send(&mut self, msg: &Message) -> Result<Message, Error> {
        let lens = netdev::lengths(msg.words(), TX_SLOTS).ok_or(Error::InvalidArgument)?;
        for (i, len) in lens.enumerate() {
            let at = netdev::tx_slot(i);
            self.net
                .send(&self.frames.as_slice()[at..at + len])
                .inspect_err(|e| log::warn!("transmit: {e}"))?;
        }
        Ok(Message::new(OK))
    }
}
