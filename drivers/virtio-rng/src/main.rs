//! virtio-rng: drives one virtio entropy device (virtio-mmio, legacy or
//! 1.x) and serves it as `rng` (protocol: `userlib::services::rng`), or
//! under the profile's `name=` argument.
//!
//! virtio-drivers 0.13 has no non-blocking entropy request, so each read
//! spins until the device fills the buffer (microseconds: QEMU answers
//! from the host's entropy source); the device's interrupt is left unused
//! and its notifications suppressed.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

/// The bytes a `READ [n]` asks for, if `n` is acceptable.
pub fn requested(n: u64) -> Option<usize> {
    (1..=userlib::services::rng::MAX_READ as u64)
        .contains(&n)
        .then_some(n as usize)
}

#[cfg(not(test))]
mod driver {
    use driverkit::virtio::virtio_drivers::device::rng::VirtIORng;
    use driverkit::virtio::{self, KitHal};
    use driverkit::{names, serve, Action, Device, Dma};
    use userlib::abi::boot_info::StartInfo;
    use userlib::abi::ObjectType;
    use userlib::proto::{reply_error, OK};
    use userlib::services::{pack_bytes, rng};
    use userlib::{log, process, syscall, Error};

    userlib::entry!(main, heap = 32 << 10);

    fn main(_start: &StartInfo) {
        let device = Device::get().unwrap_or_else(|e| panic!("{e}"));
        let (transport, _regs) = virtio::transport(&device).unwrap_or_else(|e| panic!("transport: {e}"));
        let mut dev = VirtIORng::<KitHal, _>::new(transport).unwrap_or_else(|e| panic!("virtio-rng init: {e}"));
        dev.disable_interrupts();
        // DMA memory, so that requests use it in place (no bounce buffer).
        let mut buf = Dma::new(rng::MAX_READ).expect("DMA buffer");
        let ep = syscall::create(process().pool, ObjectType::Endpoint, 0).expect("endpoint");
        let name = device.arg("name").unwrap_or(rng::NAME);
        names::register(name, ep).unwrap_or_else(|e| panic!("register {name}: {e}"));
        log::info!("{name}: entropy from {}", device.node());
        let result = serve(ep, |msg, _badge| {
            let reply = match (msg.label, crate::requested(msg.word(0))) {
                (rng::READ, Some(n)) => fill(&mut dev, &mut buf.as_mut_slice()[..n]).map(|b| pack_bytes(OK, b)),
                _ => Err(Error::InvalidArgument),
            };
            // Capabilities are not part of this protocol: `serve` deletes
            // any sent.
            Action::Reply(reply.unwrap_or_else(reply_error))
        });
        if let Err(e) = result {
            panic!("receive on the service endpoint: {e}");
        }
    }

    /// Fills all of `out` (the device may return fewer bytes per request).
    fn fill<'a>(
        dev: &mut VirtIORng<KitHal, virtio::virtio_drivers::transport::mmio::MmioTransport<'static>>,
        out: &'a mut [u8],
    ) -> Result<&'a [u8], Error> {
        let mut done = 0;
        let mut empty = 0;
        while done < out.len() {
            let n = dev.request_entropy(&mut out[done..]).map_err(|_| Error::InvalidState)?;
            done += n.min(out.len() - done);
            empty = if n == 0 { empty + 1 } else { 0 };
            if empty > 100 {
                return Err(Error::InvalidState);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_sizes() {
        assert_eq!(super::requested(0), None);
        assert_eq!(super::requested(1), Some(1));
        assert_eq!(super::requested(256), Some(256));
        assert_eq!(super::requested(257), None);
        assert_eq!(super::requested(u64::MAX), None);
    }
}
