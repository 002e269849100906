//! sdhci: an SD Host Controller with an SD memory card, served as `blk`
//! (protocol: `userlib::services::blk`; the server: `driverkit::block`),
//! so that whatever uses a virtio disk uses the card the same way.
//!
//! It drives generic SDHCI 2.00/3.00 controllers: on the Raspberry Pi 4
//! the card slot is on EMMC2 (`brcm,bcm2711-emmc2`); QEMU's `raspi4b`
//! puts `-drive if=sd` on the other SDHCI, the Arasan controller
//! (`brcm,bcm2835-sdhci`, the Pi's Wi-Fi SDIO slot), so the rpi4 profile
//! matches both, and a controller without a memory card behind it waits.
//!
//! - The card is identified at start (`host::Sdhci::init`): SDSC (byte
//!   addressed) or SDHC/SDXC (block addressed), 4-bit bus, 25 MHz or less.
//! - Transfers are single- or multi-block (auto CMD12) by PIO, each block
//!   and the end of the transfer awaited on the controller's interrupt.
//!   Not by DMA: QEMU's raspi4b controllers advertise neither SDMA nor
//!   ADMA2 (capabilities 0x052134b4) and QEMU then ignores the transfer
//!   mode's DMA bit; on the Pi, EMMC2 sees RAM at the bus's `dma-ranges`
//!   offset (0xc0000000 for physical 0, first 1 GiB only) and is not
//!   cache-coherent (no `dma-coherent` in the tree), and the driver kit
//!   offers neither the translation nor cache maintenance.
//!   Both Pi 4 controllers share one interrupt line, which the kernel
//!   hands to the first node only: a driver without an interrupt polls
//!   (every wait then sleeps up to 100 us at a time).
//! - No card: the driver logs it and waits for a card-insert interrupt (or
//!   polls card detect once a second without an interrupt), registering
//!   `blk` only once a card works. A failed request (timeout, CRC error,
//!   card pulled) is an error to the client, and the next request first
//!   identifies the card again.
//!
//! Profile arguments: `clock-hz=N`, the controller's base clock when its
//! capabilities do not say (or say wrongly); `name=` as for every disk.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![cfg_attr(not(test), no_main)]

#[cfg(not(test))]
mod driver {
    use driverkit::block::{self, BlockDevice};
    use driverkit::{Device, Dma, Interrupt, Mmio, Readable, Writeable};
    use sdhci::regs::{SdhciRegisters, INT_CARD_INSERT, INT_SIGNAL, INT_STATUS};
    use sdhci::{Bus, CardInfo, SdError, Sdhci};
    use userlib::abi::boot_info::StartInfo;
    use userlib::{log, syscall, Error, Timeout};

    userlib::entry!(main, heap = 32 << 10);

    /// The controller's registers and interrupt, as the host logic sees them.
    struct KitBus {
        regs: Mmio<SdhciRegisters>,
        irq: Option<Interrupt>,
        /// The kernel masked the line after the last delivery.
        masked: bool,
    }

    impl Bus for KitBus {
        fn read(&mut self, offset: usize) -> u32 {
            self.regs.words[offset / 4].get()
        }

        fn write(&mut self, offset: usize, value: u32) {
            self.regs.words[offset / 4].set(value)
        }

        fn wait(&mut self, us: u64) {
            match &self.irq {
                Some(irq) => {
                    // The status bits that raised the line have been
                    // handled (cleared) by now: unmask it again.
                    if self.masked {
                        let _ = irq.ack();
                        self.masked = false;
                    }
                    if irq.wait(Timeout::Micros(us.max(1))).is_ok() {
                        self.masked = true;
                    }
                }
                None => syscall::sleep(us.clamp(1, 100)),
            }
        }

        fn delay(&mut self, us: u64) {
            syscall::sleep(us.max(1));
        }

        fn now_us(&self) -> u64 {
            syscall::now_us()
        }
    }

    struct Card {
        host: Sdhci<KitBus>,
        info: CardInfo,
        /// A request failed in a way that may mean a new card: identify
        /// it again before the next one.
        stale: bool,
        node: &'static str,
    }

    impl Card {
        fn check(&mut self, r: Result<(), SdError>, what: &str, sector: u64) -> Result<(), Error> {
            let Err(e) = r else { return Ok(()) };
            log::warn!("{}: {what} at sector {sector}: {e}", self.node);
            if matches!(e, SdError::NoCard | SdError::Timeout) {
                self.stale = true;
            }
            Err(client_error(e))
        }

        fn ready(&mut self) -> Result<(), Error> {
            if !self.stale {
                return Ok(());
            }
            match self.host.init() {
                Ok(info) => {
                    log::info!("{}: card identified again", self.node);
                    self.info = info;
                    self.stale = false;
                    Ok(())
                }
                Err(e) => {
                    log::warn!("{}: card: {e}", self.node);
                    Err(client_error(e))
                }
            }
        }
    }

    /// What a client is told: `TimedOut` when the card did not answer in
    /// time, `InvalidState` when there is none or it failed the request.
    fn client_error(e: SdError) -> Error {
        match e {
            SdError::Timeout => Error::TimedOut,
            SdError::Unsupported(_) => Error::InvalidArgument,
            _ => Error::InvalidState,
        }
    }

    impl BlockDevice for Card {
        fn sectors(&self) -> u64 {
            self.info.sectors
        }

        fn read_only(&self) -> bool {
            self.info.read_only
        }

        fn read(&mut self, sector: u64, dma: &mut Dma, bytes: usize) -> Result<(), Error> {
            self.ready()?;
            let r = self.host.read(sector, &mut dma.as_mut_slice()[..bytes]);
            self.check(r, "read", sector)
        }

        fn write(&mut self, sector: u64, dma: &mut Dma, bytes: usize) -> Result<(), Error> {
            self.ready()?;
            let r = self.host.write(sector, &dma.as_slice()[..bytes]);
            self.check(r, "write", sector)
        }

        /// A write is durable once it completes: the transfer ends when the
        /// card has programmed the data (the driver never turns on an SD
        /// card's cache, CMD48). Nothing to do, but a card that a failed
        /// request left in doubt is identified again first.
        fn flush(&mut self) -> Result<(), Error> {
            self.ready()
        }
    }

    fn main(_start: &StartInfo) {
        let device = Device::get().unwrap_or_else(|e| panic!("{e}"));
        let node: &'static str = alloc_node(device.node());
        let regs: Mmio<SdhciRegisters> = device.map(0).unwrap_or_else(|e| panic!("registers: {e}"));
        let irq = match device.interrupt(0) {
            Ok(irq) => Some(irq),
            Err(e) => {
                log::info!("{node}: no interrupt line ({e}): polling");
                None
            }
        };
        let clock = device.arg("clock-hz").map(|v| {
            v.parse::<u32>()
                .unwrap_or_else(|_| panic!("clock-hz={v}: not a number of Hz"))
        });
        let mut host = Sdhci::new(
            KitBus {
                regs,
                irq,
                masked: false,
            },
            clock,
        );
        let info = loop {
            match host.init() {
                Ok(info) => break info,
                Err(SdError::NoCard) => {
                    log::info!("{node}: no card: waiting for one");
                    wait_for_card(&mut host);
                }
                Err(e) => panic!("{node}: card: {e}"),
            }
        };
        log::info!(
            "{node}: card {:02x} {} ({}, {} MiB, 4-bit at {} kHz{})",
            info.manufacturer,
            core::str::from_utf8(&info.name).unwrap_or("?"),
            if info.high_capacity { "SDHC/SDXC" } else { "SDSC" },
            info.sectors >> 11,
            info.clock_hz / 1000,
            if info.read_only { ", write-protected" } else { "" },
        );
        let e = block::serve(
            &device,
            Card {
                host,
                info,
                stale: false,
                node,
            },
        );
        panic!("serving blk: {e}");
    }

    /// Sleeps until the controller sees a card (insert interrupt, or card
    /// detect polled once a second without an interrupt line).
    fn wait_for_card(host: &mut Sdhci<KitBus>) {
        loop {
            host.bus.write(INT_STATUS, INT_CARD_INSERT);
            if host.card_detected() {
                return;
            }
            host.bus.write(INT_SIGNAL, INT_CARD_INSERT);
            host.bus.wait(if host.bus.irq.is_some() { 3_600_000_000 } else { 1000 });
            host.bus.write(INT_SIGNAL, 0);
            if host.bus.irq.is_none() {
                syscall::sleep(1_000_000);
            }
        }
    }

    /// The node name for log lines, kept for the task's life.
    fn alloc_node(name: &str) -> &'static str {
        alloc::boxed::Box::leak(alloc::string::String::from(name).into_boxed_str())
    }

    extern crate alloc;
}
