//! virtio-blk: drives one virtio block device (virtio-mmio, legacy or 1.x)
//! and serves it as `blk` (protocol: `userlib::services::blk`; the server,
//! its naming and buffer handling: `driverkit::block`).
//!
//! One request is in flight at a time; the driver sleeps on the device's
//! interrupt while it runs (`driverkit::virtio::blk`). When the driver is
//! restarted, the supervisor resets the device first, so that no request
//! in flight completes into freed memory.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

extern crate alloc;

#[cfg(not(test))]
mod driver {
    use driverkit::block::{self, BlockDevice};
    use driverkit::virtio;
    use driverkit::virtio::blk::Blk;
    use driverkit::virtio::virtio_drivers::transport::mmio::MmioTransport;
    use driverkit::{Device, Dma, Interrupt};
    use userlib::abi::boot_info::StartInfo;
    use userlib::{log, Error, Timeout};

    userlib::entry!(main, heap = 32 << 10);

    /// A request the device has not completed by then means it is broken.
    const DEVICE_TIMEOUT: Timeout = Timeout::millis(10_000);

    struct Disk {
        blk: Blk<MmioTransport<'static>>,
        irq: Interrupt,
        sectors: u64,
        read_only: bool,
    }

    impl BlockDevice for Disk {
        fn sectors(&self) -> u64 {
            self.sectors
        }

        fn read_only(&self) -> bool {
            self.read_only
        }

        fn read(&mut self, sector: u64, dma: &mut Dma, bytes: usize) -> Result<(), Error> {
            let data = &mut dma.as_mut_slice()[..bytes];
            self.blk.read(&self.irq, sector, data, DEVICE_TIMEOUT)
        }

        fn write(&mut self, sector: u64, dma: &mut Dma, bytes: usize) -> Result<(), Error> {
            let data = &dma.as_slice()[..bytes];
            self.blk.write(&self.irq, sector, data, DEVICE_TIMEOUT)
        }

        /// The device's write cache (VIRTIO_BLK_F_FLUSH, negotiated when
        /// offered; without it writes are durable once done): a flush
        /// request, slept through like reads and writes.
        fn flush(&mut self) -> Result<(), Error> {
            self.blk.flush(&self.irq, DEVICE_TIMEOUT)
        }
    }

    fn main(_start: &StartInfo) {
        let device = Device::get().unwrap_or_else(|e| panic!("{e}"));
        let (transport, _regs) = virtio::transport(&device).unwrap_or_else(|e| panic!("transport: {e}"));
        let version = transport.version();
        let blk = Blk::new(transport).unwrap_or_else(|e| panic!("virtio-blk init: {e}"));
        let irq = device.interrupt(0).unwrap_or_else(|e| panic!("interrupt: {e}"));
        log::info!("{} (virtio-mmio {:?})", device.node(), version);
        let (sectors, read_only) = (blk.capacity(), blk.read_only());
        let e = block::serve(
            &device,
            Disk {
                blk,
                irq,
                sectors,
                read_only,
            },
        );
        panic!("serving blk: {e}");
    }
}
