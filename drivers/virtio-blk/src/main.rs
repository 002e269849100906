//! virtio-blk: drives one virtio block device (virtio-mmio, legacy or 1.x)
//! and serves it as `blk` (protocol: `userlib::services::blk`).
//!
//! The service name is the profile's `name=` argument, else the first
//! free of `blk`, `blk1`, ... `blk7` (drivers start in device-tree order,
//! and a restarted driver finds only its own name free again).
//!
//! Data goes through each client's attached buffer: the device reads and
//! writes this driver's own DMA buffer and the driver copies to or from
//! the client's. (Pointing the device straight at client memory would
//! save the copy, but a client could free that memory while the device
//! writes to it.) One request is in flight at a time; the driver sleeps
//! on the device's interrupt while it runs (`driverkit::virtio::blk`).
//!
//! Client buffers are mapped in fixed windows, one per attachment slot
//! (`services::blk::MAX_BUFFERS`, least recently used pushed out), so that
//! clients attaching again and again cost no new translation tables.
//!
//! A client can still make this driver fault: by revoking its buffer's
//! memory between the driver's check and its copy. The supervisor then
//! restarts the driver (resetting the device first, so that no request in
//! flight completes into freed memory) and every client reconnects.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

extern crate alloc;

mod clients;

#[cfg(not(test))]
mod driver {
    use crate::clients::Clients;
    use alloc::string::String;
    use alloc::vec::Vec;
    use driverkit::virtio::virtio_drivers::device::blk::VirtIOBlk;
    use driverkit::virtio::{self, KitHal};
    use driverkit::{names, serve, Action, Device, Dma, Interrupt};
    use userlib::abi::boot_info::StartInfo;
    use userlib::abi::{ObjectType, PAGE_SIZE};
    use userlib::proto::{reply_error, OK};
    use userlib::services::blk::{self, check_request, MAX_BUFFERS, MAX_BUFFER_BYTES, MAX_SECTORS, SECTOR_SIZE};
    use userlib::vspace::{self, Mapping};
    use userlib::{log, process, syscall, Error, Handle, Message, Rights, Timeout};

    userlib::entry!(main, heap = 32 << 10);

    /// A request the device has not completed by then means it is broken.
    const DEVICE_TIMEOUT: Timeout = Timeout::millis(10_000);

    /// A client's buffer, mapped here in window `window`.
    struct Attached {
        mem: Handle,
        map: Option<Mapping>,
        window: usize,
    }

    impl Drop for Attached {
        fn drop(&mut self) {
            self.map.take();
            let _ = syscall::cap_delete(self.mem);
        }
    }

    struct Driver {
        blk: VirtIOBlk<KitHal, virtio::virtio_drivers::transport::mmio::MmioTransport<'static>>,
        irq: Interrupt,
        /// Where the device reads and writes (one request's worth).
        data: Dma,
        clients: Clients<Attached>,
        /// Where client buffers are mapped: one fixed window per entry of
        /// `clients`, so that attaching again and again reuses the same
        /// translation tables instead of making new ones.
        windows: Vec<u64>,
        sectors: u64,
        read_only: bool,
    }

    fn main(_start: &StartInfo) {
        let device = Device::get().unwrap_or_else(|e| panic!("{e}"));
        let (transport, _regs) = virtio::transport(&device).unwrap_or_else(|e| panic!("transport: {e}"));
        let version = transport.version();
        let mut blk = VirtIOBlk::<KitHal, _>::new(transport).unwrap_or_else(|e| panic!("virtio-blk init: {e}"));
        let irq = device.interrupt(0).unwrap_or_else(|e| panic!("interrupt: {e}"));
        blk.enable_interrupts();
        let data = Dma::new(MAX_SECTORS as usize * SECTOR_SIZE).expect("DMA buffer");
        let ep = syscall::create(process().pool, ObjectType::Endpoint, 0).expect("endpoint");
        let name = register(&device, ep);
        let (sectors, read_only) = (blk.capacity(), blk.readonly());
        log::info!(
            "{name}: {} sectors ({} KiB{}) on {} (virtio-mmio {:?})",
            sectors,
            sectors / 2,
            if read_only { ", read-only" } else { "" },
            device.node(),
            version
        );
        let mut d = Driver {
            blk,
            irq,
            data,
            clients: Clients::new(MAX_BUFFERS),
            windows: (0..MAX_BUFFERS)
                .map(|_| vspace::reserve((MAX_BUFFER_BYTES / PAGE_SIZE) as u64))
                .collect(),
            sectors,
            read_only,
        };
        if let Err(e) = serve(ep, |msg, badge| Action::Reply(d.handle(msg, badge))) {
            panic!("receive on the service endpoint: {e}");
        }
    }

    /// Registers the service under its name (see the crate docs).
    fn register(device: &Device, ep: Handle) -> String {
        let names: Vec<String> = match device.arg("name") {
            Some(n) => alloc::vec![n.into()],
            None => (0..8)
                .map(|i| match i {
                    0 => blk::NAME.into(),
                    i => alloc::format!("{}{i}", blk::NAME),
                })
                .collect(),
        };
        for name in names {
            match names::register(&name, ep) {
                Ok(()) => return name,
                Err(Error::InvalidState) => continue, // taken
                Err(e) => panic!("register {name}: {e}"),
            }
        }
        panic!("no free service name");
    }

    impl Driver {
        fn handle(&mut self, msg: &Message, badge: u64) -> Message {
            let mut caps: Vec<Handle> = msg.caps().iter().map(|c| c.handle).collect();
            let r = match msg.label {
                blk::INFO => Ok(Message::with_words(
                    OK,
                    &[self.sectors, self.read_only as u64, MAX_SECTORS],
                )),
                blk::ATTACH if caps.len() == 1 => self.attach(badge, msg.word(0), &mut caps),
                blk::READ | blk::WRITE => self.transfer(msg, badge),
                blk::DETACH => self
                    .clients
                    .remove(badge, msg.word(0))
                    .map(|_| Message::new(OK))
                    .ok_or(Error::InvalidState),
                _ => Err(Error::InvalidArgument),
            };
            // Capabilities nobody asked for must not fill the cspace.
            for c in caps {
                let _ = syscall::cap_delete(c);
            }
            r.unwrap_or_else(reply_error)
        }

        /// Maps the client's buffer; takes the capability from `caps` on success.
        fn attach(&mut self, badge: u64, id: u64, caps: &mut Vec<Handle>) -> Result<Message, Error> {
            let mem = caps[0];
            let info = syscall::cap_info(mem)?;
            if info.object != Some(ObjectType::Memory) || info.size == 0 || info.size > MAX_BUFFER_BYTES as u64 {
                return Err(Error::InvalidArgument);
            }
            if !info.rights.contains(Rights::READ | Rights::WRITE | Rights::MAP) {
                return Err(Error::NoRights);
            }
            let pages = info.size / PAGE_SIZE as u64;
            // The buffer this replaces, or else the least recently used
            // one if all are taken, is unmapped and its capability deleted.
            if self.clients.remove(badge, id).is_none() && self.clients.is_full() {
                self.clients.evict_lru();
            }
            let window = (0..self.windows.len())
                .find(|w| self.clients.values().all(|a| a.window != *w))
                .ok_or(Error::InvalidState)?;
            let map = Mapping::map_at(mem, pages, Rights::READ | Rights::WRITE, self.windows[window])?;
            let bytes = map.len() as u64;
            caps.clear();
            let attached = Attached {
                mem,
                map: Some(map),
                window,
            };
            if self.clients.insert(badge, id, attached).is_err() {
                return Err(Error::InvalidState); // (made room above)
            }
            Ok(Message::with_words(OK, &[bytes]))
        }

        fn transfer(&mut self, msg: &Message, badge: u64) -> Result<Message, Error> {
            let (sector, count, offset, id) = (msg.word(0), msg.word(1), msg.word(2), msg.word(3));
            let write = msg.label == blk::WRITE;
            // Malformed whatever the buffer: checked first.
            check_request(self.sectors, sector, count, 0, usize::MAX)?;
            if write && self.read_only {
                return Err(Error::NoRights);
            }
            let a = self.clients.get_mut(badge, id).ok_or(Error::InvalidState)?;
            let map = a.map.as_mut().ok_or(Error::InvalidState)?;
            let range = check_request(self.sectors, sector, count, offset, map.len())?;
            let n = range.len();
            // A buffer the client revoked is gone from here too: touching
            // it would fault. (The client could still revoke it after
            // this check; see the crate docs.)
            if syscall::cap_info(a.mem).is_err() {
                self.clients.remove(badge, id);
                return Err(Error::InvalidState);
            }
            let data = &mut self.data.as_mut_slice()[..n];
            if write {
                data.copy_from_slice(&map.as_slice()[range]);
                virtio::blk::write(&mut self.blk, &self.irq, sector, data, DEVICE_TIMEOUT)?;
            } else {
                virtio::blk::read(&mut self.blk, &self.irq, sector, data, DEVICE_TIMEOUT)?;
                map.as_mut_slice()[range].copy_from_slice(data);
            }
            Ok(Message::new(OK))
        }
    }
}
