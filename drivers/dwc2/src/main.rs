//! dwc2: the DesignWare USB 2.0 OTG controller in host mode, with USB HID
//! keyboards behind it, served as `keyboard` with the protocol and events
//! virtio-input serves (`userlib::services::input`), so the compositor and
//! the shell cannot tell a USB keyboard from a virtio one.
//!
//! The controller is the Raspberry Pi 4's on-chip one (`usb@7e980000`,
//! "brcm,bcm2835-usb" in the upstream tree, "brcm,bcm2708-usb" in the
//! Raspberry Pi kernel's), which QEMU's `raspi4b` emulates as `dwc2-usb`
//! (`-device usb-kbd`). QEMU puts a hub of its own between the port and
//! the devices once the root port is taken, so a hub is enumerated too
//! (one level: a hub behind a hub is not).
//!
//! - Start: core soft reset, forced host mode, buffer DMA, root port
//!   powered. No device: it says so and looks again every half second.
//! - Enumeration on channel 0 (control transfers: SETUP, DATA, STATUS):
//!   GET_DESCRIPTOR (device: 8 bytes, then all), SET_ADDRESS,
//!   GET_DESCRIPTOR (configuration), SET_CONFIGURATION; a hub's ports are
//!   powered, reset and their devices enumerated the same way. A HID boot
//!   keyboard interface gets SET_PROTOCOL (boot) and SET_IDLE 0.
//! - Then every [`POLL_MS`] each keyboard's interrupt IN endpoint is read
//!   on channel 1; a report is diffed against the last into key presses
//!   and releases (`dwc2::hid::Keyboard`), queued for the readers.
//! - Every transfer has a time limit ([`XFER_US`]; a channel that did not
//!   halt by then is disabled), every descriptor and report is checked
//!   (`dwc2::usb`, `dwc2::hid`): a device that answers nonsense or nothing
//!   is logged and skipped; a port that goes quiet is enumerated again.
//! - The controller polls (no interrupt line is used): QEMU completes a
//!   transfer before the channel-enable write returns, and on the board a
//!   transfer takes a (micro)frame. The price: a round of reads of QEMU's
//!   keyboard and tablet (both answering NAK) measured 4,000 to 10,000
//!   instructions of this task's CPU under `-icount` (the counter is per
//!   CPU, so the spread holds whatever else ran there), 100 rounds a
//!   second, plus the sleep's wake-up, which was not measured.
//!
//! DMA: the controller sees RAM through the BCM2711's legacy bus window,
//! bus address 0xc0000000 + physical for the first GiB (the tree's
//! `dma-ranges`; QEMU's raspi4b aliases RAM at 0, 0x40000000, 0x80000000
//! and 0xc0000000 of the same bus). Profile arguments `dma-offset=0x...`
//! and `dma-limit=0x...` change them. A buffer beyond the limit is refused
//! with an error. Not done: cache maintenance (the Pi's DMA is not
//! coherent and the kit has none), so on the board reports may be read
//! stale; split transactions (a high-speed hub with full/low-speed devices
//! behind it); more than one hub level.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![cfg_attr(not(test), no_main)]

#[cfg(test)]
fn main() {}

/// Milliseconds between two reads of a keyboard's interrupt endpoint.
pub const POLL_MS: u64 = 10;
/// Microseconds a transfer may take before its channel is disabled.
pub const XFER_US: u64 = 200_000;

#[cfg(not(test))]
mod driver {
    use super::{POLL_MS, XFER_US};
    use alloc::string::String;
    use alloc::vec::Vec;
    use core::fmt;
    use driverkit::input::{self, Ring};
    use driverkit::tock_registers::register_structs;
    use driverkit::tock_registers::registers::ReadWrite;
    use driverkit::{log, Device, Dma, Handle, Mmio, Readable, Writeable};
    use dwc2::hid::Keyboard;
    use dwc2::tablet::{Layout, Tablet, MAX_DESCRIPTOR};
    use dwc2::usb::{self, Configuration, DescError, DeviceDescriptor, Endpoint, PortStatus, Setup};
    use userlib::abi::boot_info::StartInfo;
    use userlib::services::input::{Info, Kind};
    use userlib::sync::Mutex;
    use userlib::syscall;

    extern crate alloc;

    userlib::entry!(main, heap = 32 << 10);

    register_structs! {
        /// The core's registers (global, host, channels, power), word by word.
        Regs {
            (0x000 => words: [ReadWrite<u32>; 1024]),
            (0x1000 => @END),
        }
    }

    const GAHBCFG: usize = 0x008;
    const GUSBCFG: usize = 0x00c;
    const GRSTCTL: usize = 0x010;
    const GINTSTS: usize = 0x014;
    const GRXFSIZ: usize = 0x024;
    const GNPTXFSIZ: usize = 0x028;
    const GSNPSID: usize = 0x040;
    const HPTXFSIZ: usize = 0x100;
    const HFNUM: usize = 0x408;
    const HPRT0: usize = 0x440;
    const PCGCCTL: usize = 0xe00;
    const fn hc(ch: usize, reg: usize) -> usize {
        0x500 + ch * 0x20 + reg
    }
    const HCCHAR: usize = 0x00;
    const HCSPLT: usize = 0x04;
    const HCINT: usize = 0x08;
    const HCINTMSK: usize = 0x0c;
    const HCTSIZ: usize = 0x10;
    const HCDMA: usize = 0x14;

    const GRSTCTL_CSFTRST: u32 = 1;
    const GRSTCTL_AHBIDLE: u32 = 1 << 31;
    const GUSBCFG_FORCEHOST: u32 = 1 << 29;
    const GUSBCFG_FORCEDEV: u32 = 1 << 30;
    const GAHBCFG_DMA: u32 = 1 << 5;
    const HPRT0_CONNSTS: u32 = 1 << 0;
    const HPRT0_ENA: u32 = 1 << 2;
    const HPRT0_RST: u32 = 1 << 8;
    const HPRT0_PWR: u32 = 1 << 12;
    /// Write-1-to-clear bits a read-modify-write must leave 0 (ConnDet,
    /// Ena, EnChng, OvrCurrChng).
    const HPRT0_W1C: u32 = 1 << 1 | 1 << 2 | 1 << 3 | 1 << 5;
    const HCCHAR_CHENA: u32 = 1 << 31;
    const HCCHAR_CHDIS: u32 = 1 << 30;
    const HCINT_XFERCOMPL: u32 = 1 << 0;
    const HCINT_CHHLTD: u32 = 1 << 1;
    const HCINT_STALL: u32 = 1 << 3;
    const HCINT_NAK: u32 = 1 << 4;
    const HCINT_BBLERR: u32 = 1 << 8;

    const EP_CONTROL: u32 = 0;
    const EP_INTERRUPT: u32 = 3;
    const PID_DATA0: u32 = 0;
    const PID_DATA1: u32 = 2;
    const PID_SETUP: u32 = 3;

    /// DMA page layout: setup bytes, control data, then one slot per
    /// interrupt endpoint.
    const SETUP_AT: usize = 0;
    const DATA_AT: usize = 64;
    /// Most bytes a control read takes (a configuration longer than this
    /// is read cut short).
    const DATA_MAX: usize = 1024;
    const SLOTS_AT: usize = DATA_AT + DATA_MAX;
    const SLOT_BYTES: usize = 64;
    /// Interrupt endpoints polled (keyboards).
    const MAX_HIDS: usize = 8;
    const CONTROL_CH: usize = 0;
    const INTERRUPT_CH: usize = 1;

    /// What went wrong with a transfer or a device.
    #[derive(Debug)]
    enum UsbError {
        /// The channel did not halt in time (no device answered).
        Timeout,
        Stall,
        Nak,
        /// The device sent more than asked.
        Babble,
        /// Any other halt: the channel's interrupt bits.
        Halted(u32),
        Descriptor(DescError),
        Report(dwc2::tablet::LayoutError),
        /// A DMA buffer the controller cannot reach.
        Unreachable(u64),
    }

    impl fmt::Display for UsbError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                UsbError::Timeout => write!(f, "no answer within {} ms", XFER_US / 1000),
                UsbError::Stall => write!(f, "STALL"),
                UsbError::Nak => write!(f, "NAK"),
                UsbError::Babble => write!(f, "babble (more data than asked)"),
                UsbError::Halted(i) => write!(f, "channel halted with HCINT {i:#x}"),
                UsbError::Descriptor(e) => write!(f, "{e}"),
                UsbError::Report(e) => write!(f, "{e}"),
                UsbError::Unreachable(p) => write!(f, "DMA buffer at {p:#x} is beyond what the controller reaches"),
            }
        }
    }

    impl From<DescError> for UsbError {
        fn from(e: DescError) -> UsbError {
            UsbError::Descriptor(e)
        }
    }

    /// A device on the bus.
    #[derive(Debug, Clone, Copy)]
    struct Target {
        address: u8,
        max_packet0: u16,
        low_speed: bool,
    }

    /// What a HID device's reports are.
    enum Decoder {
        Keyboard(Keyboard),
        Tablet(Tablet),
    }

    impl Decoder {
        fn kind(&self) -> Kind {
            match self {
                Decoder::Keyboard(_) => Kind::Keyboard,
                Decoder::Tablet(_) => Kind::Touch,
            }
        }

        /// The queue (and service) of its kind.
        fn ring(&self) -> usize {
            match self {
                Decoder::Keyboard(_) => 0,
                Decoder::Tablet(_) => 1,
            }
        }
    }

    /// A HID device's interrupt endpoint being polled.
    struct Hid {
        target: Target,
        endpoint: Endpoint,
        pid: u32,
        slot: usize,
        decoder: Decoder,
        name: String,
        errors: u32,
    }

    struct Host {
        regs: Mmio<Regs>,
        dma: Dma,
        dma_offset: u64,
        dma_limit: u64,
        next_address: u8,
    }

    impl Host {
        fn read(&self, off: usize) -> u32 {
            self.regs.words[off / 4].get()
        }

        fn write(&self, off: usize, v: u32) {
            self.regs.words[off / 4].set(v)
        }

        /// Waits until `f` holds, up to `us`; whether it did.
        fn until(&self, us: u64, f: impl Fn(&Host) -> bool) -> bool {
            // Already so (QEMU completes a transfer within the write that
            // starts it): no clock read.
            if f(self) {
                return true;
            }
            let deadline = syscall::now_us() + us;
            loop {
                if f(self) {
                    return true;
                }
                if syscall::now_us() >= deadline {
                    return f(self);
                }
                syscall::sleep(100);
            }
        }

        /// The bus address of DMA byte `at`.
        fn bus(&self, at: usize) -> Result<u32, UsbError> {
            let physical = self.dma.physical() + at as u64;
            if physical >= self.dma_limit {
                return Err(UsbError::Unreachable(physical));
            }
            Ok((self.dma_offset + physical) as u32)
        }

        fn reset_core(&self) -> Result<(), &'static str> {
            let id = self.read(GSNPSID);
            if id >> 16 != 0x4f54 {
                return Err("GSNPSID is not a DWC2 core's (0x4f54xxxx)");
            }
            if !self.until(100_000, |h| h.read(GRSTCTL) & GRSTCTL_AHBIDLE != 0) {
                return Err("AHB master not idle");
            }
            self.write(GRSTCTL, GRSTCTL_CSFTRST);
            if !self.until(100_000, |h| h.read(GRSTCTL) & GRSTCTL_CSFTRST == 0) {
                return Err("core soft reset did not finish");
            }
            self.until(100_000, |h| h.read(GRSTCTL) & GRSTCTL_AHBIDLE != 0);
            let cfg = self.read(GUSBCFG) & !GUSBCFG_FORCEDEV;
            self.write(GUSBCFG, cfg | GUSBCFG_FORCEHOST);
            // The core takes up to 25 ms to change mode.
            syscall::sleep_ms(50);
            if self.read(GINTSTS) & 1 == 0 {
                return Err("core did not enter host mode (GINTSTS.CurMod 0)");
            }
            self.write(PCGCCTL, 0);
            // FIFOs (words): receive 512, non-periodic transmit 256 after
            // it, periodic transmit 256 after that.
            self.write(GRXFSIZ, 512);
            self.write(GNPTXFSIZ, 256 << 16 | 512);
            self.write(HPTXFSIZ, 256 << 16 | 768);
            self.write(GAHBCFG, GAHBCFG_DMA);
            let port = self.read(HPRT0) & !HPRT0_W1C;
            self.write(HPRT0, port | HPRT0_PWR);
            Ok(())
        }

        fn connected(&self) -> bool {
            self.read(HPRT0) & HPRT0_CONNSTS != 0
        }

        /// Resets the root port; whether the device on it is low speed.
        fn reset_port(&self) -> Result<bool, &'static str> {
            let port = self.read(HPRT0) & !HPRT0_W1C;
            self.write(HPRT0, port | HPRT0_RST);
            syscall::sleep_ms(60);
            self.write(HPRT0, port & !HPRT0_RST);
            if !self.until(200_000, |h| h.read(HPRT0) & HPRT0_ENA != 0) {
                return Err("root port not enabled after its reset");
            }
            syscall::sleep_ms(20);
            Ok((self.read(HPRT0) >> 17) & 3 == 2)
        }

        /// One transfer on channel `ch`; the bytes moved.
        #[allow(clippy::too_many_arguments)]
        fn transfer(
            &self,
            ch: usize,
            t: &Target,
            endpoint: u8,
            kind: u32,
            max_packet: u16,
            is_in: bool,
            pid: u32,
            at: usize,
            len: usize,
        ) -> Result<usize, UsbError> {
            let bus = self.bus(at)?;
            if self.read(hc(ch, HCCHAR)) & HCCHAR_CHENA != 0 {
                self.halt(ch);
            }
            self.write(hc(ch, HCINT), u32::MAX);
            self.write(hc(ch, HCINTMSK), 0x7ff);
            self.write(hc(ch, HCSPLT), 0);
            let mps = (max_packet as usize).clamp(1, 1023);
            let packets = len.div_ceil(mps).max(1) as u32;
            self.write(hc(ch, HCTSIZ), len as u32 | packets << 19 | pid << 29);
            self.write(hc(ch, HCDMA), bus);
            // A periodic transfer goes out in the next frame: odd if this
            // one is even.
            let odd = kind == EP_INTERRUPT && self.read(HFNUM) & 1 == 0;
            let chr = mps as u32
                | (endpoint as u32 & 0xf) << 11
                | (is_in as u32) << 15
                | (t.low_speed as u32) << 17
                | kind << 18
                | 1 << 20
                | (t.address as u32 & 0x7f) << 22
                | (odd as u32) << 29;
            self.write(hc(ch, HCCHAR), chr | HCCHAR_CHENA);
            if !self.until(XFER_US, |h| h.read(hc(ch, HCINT)) & HCINT_CHHLTD != 0) {
                self.halt(ch);
                return Err(UsbError::Timeout);
            }
            let int = self.read(hc(ch, HCINT));
            if int & HCINT_XFERCOMPL != 0 {
                let left = (self.read(hc(ch, HCTSIZ)) & 0x7ffff) as usize;
                return Ok(len.saturating_sub(left));
            }
            Err(if int & HCINT_STALL != 0 {
                UsbError::Stall
            } else if int & HCINT_NAK != 0 {
                UsbError::Nak
            } else if int & HCINT_BBLERR != 0 {
                UsbError::Babble
            } else {
                UsbError::Halted(int)
            })
        }

        /// Disables channel `ch` and waits (bounded) for it to halt.
        fn halt(&self, ch: usize) {
            let c = self.read(hc(ch, HCCHAR));
            self.write(hc(ch, HCCHAR), c | HCCHAR_CHDIS | HCCHAR_CHENA);
            self.until(10_000, |h| h.read(hc(ch, HCINT)) & HCINT_CHHLTD != 0);
            self.write(hc(ch, HCINT), u32::MAX);
        }

        /// A control transfer; for a read, the bytes that came.
        fn control(&mut self, t: &Target, setup: Setup) -> Result<Vec<u8>, UsbError> {
            let len = (setup.length as usize).min(DATA_MAX);
            self.dma.as_mut_slice()[SETUP_AT..SETUP_AT + 8].copy_from_slice(&setup.bytes());
            let mps = t.max_packet0;
            self.transfer(CONTROL_CH, t, 0, EP_CONTROL, mps, false, PID_SETUP, SETUP_AT, 8)?;
            let mut data = Vec::new();
            if len > 0 && setup.is_in() {
                let n = self.transfer(CONTROL_CH, t, 0, EP_CONTROL, mps, true, PID_DATA1, DATA_AT, len)?;
                data.extend_from_slice(&self.dma.as_slice()[DATA_AT..DATA_AT + n.min(len)]);
            }
            // Status: the other direction, no data.
            let status_in = !(len > 0 && setup.is_in());
            self.transfer(CONTROL_CH, t, 0, EP_CONTROL, mps, status_in, PID_DATA1, DATA_AT, 0)?;
            Ok(data)
        }

        /// Addresses and configures the device at address 0.
        fn setup_device(&mut self, low_speed: bool) -> Result<(Target, DeviceDescriptor, Configuration), UsbError> {
            let mut t = Target {
                address: 0,
                max_packet0: 8,
                low_speed,
            };
            let head = self.control(&t, Setup::get_descriptor(usb::DESC_DEVICE, 0, 8))?;
            t.max_packet0 = usb::max_packet0(&head)? as u16;
            let address = self.next_address;
            if address > 127 {
                return Err(UsbError::Descriptor(DescError::Bad {
                    what: "addresses left",
                    value: 0,
                }));
            }
            self.control(&t, Setup::set_address(address))?;
            self.next_address += 1;
            syscall::sleep_ms(10);
            t.address = address;
            let d = DeviceDescriptor::parse(&self.control(&t, Setup::get_descriptor(usb::DESC_DEVICE, 0, 18))?)?;
            let head = self.control(&t, Setup::get_descriptor(usb::DESC_CONFIG, 0, 9))?;
            let (_, total) = usb::config_header(&head)?;
            // A longer configuration is read cut short (what is cut is unused).
            let total = total.min(DATA_MAX as u16);
            let all = self.control(&t, Setup::get_descriptor(usb::DESC_CONFIG, 0, total))?;
            let c = Configuration::parse(&all)?;
            self.control(&t, Setup::set_configuration(c.value))?;
            Ok((t, d, c))
        }

        /// The device at address 0 (behind the root port or a hub port)
        /// and, for a hub, the devices on its ports: their keyboards.
        fn enumerate(&mut self, low_speed: bool, depth: u32, hids: &mut Vec<Hid>) -> Result<(), UsbError> {
            let (t, d, c) = self.setup_device(low_speed)?;
            log::info!(
                "device {:04x}:{:04x} at address {} (class {}, {} interfaces)",
                d.vendor,
                d.product,
                t.address,
                d.class,
                c.interfaces.len()
            );
            if d.class == usb::CLASS_HUB {
                if depth > 0 {
                    log::warn!("a hub behind a hub: not supported, skipped");
                    return Ok(());
                }
                return self.hub(&t, hids);
            }
            for i in &c.interfaces {
                let Some(endpoint) = i.interrupt_in else { continue };
                if i.class != usb::CLASS_HID {
                    continue;
                }
                if hids.len() >= MAX_HIDS {
                    log::warn!("more than {MAX_HIDS} HID devices: the rest ignored");
                    break;
                }
                let id = alloc::format!("{:04x}:{:04x}", d.vendor, d.product);
                let (decoder, name) = if i.subclass == 1 && i.protocol == 1 {
                    if let Err(e) = self.control(&t, Setup::set_protocol(i.number, 0)) {
                        log::warn!("keyboard {id}: SET_PROTOCOL boot: {e}");
                    }
                    (Decoder::Keyboard(Keyboard::new()), alloc::format!("USB keyboard {id}"))
                } else {
                    // Anything else is driven only if its report descriptor
                    // shows an absolute pointer.
                    let len = (i.report_length as usize).clamp(1, MAX_DESCRIPTOR) as u16;
                    let layout = self
                        .control(&t, Setup::get_report_descriptor(i.number, len))
                        .and_then(|desc| Layout::parse(&desc).map_err(UsbError::Report));
                    match layout {
                        Ok(l) => (Decoder::Tablet(Tablet::new(l)), alloc::format!("USB tablet {id}")),
                        Err(e) => {
                            log::info!(
                                "{id} interface {}: HID protocol {}: {e}: not driven",
                                i.number,
                                i.protocol
                            );
                            continue;
                        }
                    }
                };
                // Optional: a STALL only means "not supported".
                let _ = self.control(&t, Setup::set_idle(i.number));
                let slot = SLOTS_AT + hids.len() * SLOT_BYTES;
                hids.push(Hid {
                    target: t,
                    endpoint,
                    pid: PID_DATA0,
                    slot,
                    decoder,
                    name,
                    errors: 0,
                });
            }
            Ok(())
        }

        /// A hub: its ports powered, each connected one reset and its
        /// device enumerated.
        fn hub(&mut self, t: &Target, hids: &mut Vec<Hid>) -> Result<(), UsbError> {
            let (ports, power_ms) = usb::hub_ports(&self.control(t, Setup::get_hub_descriptor(9))?)?;
            log::info!("hub at address {}: {ports} ports", t.address);
            for p in 1..=ports {
                self.control(t, Setup::port_feature(true, p, usb::PORT_POWER))?;
            }
            syscall::sleep_ms(power_ms.clamp(20, 500) as u64 + 20);
            for p in 1..=ports {
                let s = PortStatus::parse(&self.control(t, Setup::get_port_status(p))?)?;
                if !s.connected() {
                    continue;
                }
                if let Err(e) = self.hub_port(t, p, hids) {
                    log::warn!("hub port {p}: {e}: skipped");
                }
            }
            Ok(())
        }

        fn hub_port(&mut self, t: &Target, p: u8, hids: &mut Vec<Hid>) -> Result<(), UsbError> {
            self.control(t, Setup::port_feature(true, p, usb::PORT_RESET))?;
            let deadline = syscall::now_us() + 500_000;
            let s = loop {
                syscall::sleep_ms(10);
                let s = PortStatus::parse(&self.control(t, Setup::get_port_status(p))?)?;
                if !s.resetting() && s.enabled() {
                    break s;
                }
                if syscall::now_us() > deadline {
                    return Err(UsbError::Timeout);
                }
            };
            let _ = self.control(t, Setup::port_feature(false, p, usb::C_PORT_RESET));
            let _ = self.control(t, Setup::port_feature(false, p, usb::C_PORT_CONNECTION));
            syscall::sleep_ms(10);
            self.enumerate(s.low_speed(), 1, hids)
        }

        /// Reads a keyboard's interrupt endpoint once: its report, if it
        /// sent one.
        fn poll(&mut self, h: &mut Hid) -> Result<Option<Vec<u8>>, UsbError> {
            let len = (h.endpoint.max_packet as usize).min(SLOT_BYTES);
            let mps = h.endpoint.max_packet.min(SLOT_BYTES as u16);
            let r = self.transfer(
                INTERRUPT_CH,
                &h.target,
                h.endpoint.number,
                EP_INTERRUPT,
                mps,
                true,
                h.pid,
                h.slot,
                len,
            );
            match r {
                Ok(n) => {
                    h.pid = if h.pid == PID_DATA0 { PID_DATA1 } else { PID_DATA0 };
                    Ok(Some(self.dma.as_slice()[h.slot..h.slot + n.min(len)].to_vec()))
                }
                Err(UsbError::Nak) => Ok(None),
                Err(e) => Err(e),
            }
        }
    }

    /// Events between the polling thread and the readers: `keyboard`'s,
    /// `touch`'s.
    static RINGS: [Mutex<Ring>; 2] = [Mutex::new(Ring::new()), Mutex::new(Ring::new())];
    /// Server threads: each can sit in one blocking `READ`.
    const READERS: usize = 2;
    /// Consecutive failed reads after which the port is enumerated again.
    const MAX_ERRORS: u32 = 20;

    fn main(_: &StartInfo) {
        let device = Device::get().unwrap_or_else(|e| panic!("{e}"));
        let node = String::from(device.node());
        let regs: Mmio<Regs> = device.map(0).unwrap_or_else(|e| panic!("{node}: registers: {e}"));
        let hex = |key: &str, default: u64| match device.arg(key) {
            None => default,
            Some(v) => v
                .strip_prefix("0x")
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .unwrap_or_else(|| panic!("{node}: {key}={v}: not a 0x... number")),
        };
        let dma = Dma::new(4096).unwrap_or_else(|e| panic!("{node}: DMA buffer: {e}"));
        let mut host = Host {
            regs,
            dma,
            dma_offset: hex("dma-offset", 0xc000_0000),
            dma_limit: hex("dma-limit", 0x4000_0000),
            next_address: 1,
        };
        if let Err(e) = host.bus(0) {
            panic!("{node}: {e}");
        }
        if let Err(e) = host.reset_core() {
            panic!("{node}: {e}");
        }
        log::info!(
            "{node}: DWC2 core {:#x} in host mode, root port powered",
            host.read(GSNPSID)
        );

        // Per queue: the readers' wake-ups, once its service is registered.
        let mut wakes: [Option<Vec<Handle>>; 2] = [None, None];
        loop {
            // Wait for a device on the root port.
            if !host.until(1_000_000, |h| h.connected()) {
                log::info!("{node}: no USB device on the port: waiting for one");
                while !host.connected() {
                    syscall::sleep_ms(500);
                }
            }
            let mut hids = Vec::new();
            host.next_address = 1;
            let r = host
                .reset_port()
                .map_err(|e| log::warn!("{node}: {e}"))
                .ok()
                .map(|low| host.enumerate(low, 0, &mut hids));
            match r {
                // Retried once a second while the device stays (a device
                // that never enumerates costs one attempt a second).
                None => syscall::sleep_ms(1000),
                Some(Err(e)) => {
                    log::warn!("{node}: enumeration: {e}");
                    syscall::sleep_ms(1000);
                }
                Some(Ok(())) if hids.is_empty() => {
                    log::info!("{node}: no keyboard or tablet on the bus");
                    // Nothing to drive: look again once the device goes.
                    while host.connected() {
                        syscall::sleep_ms(500);
                    }
                    log::info!("{node}: device removed");
                }
                Some(Ok(())) => {
                    for h in &hids {
                        log::info!(
                            "{node}: {} on endpoint {} (address {})",
                            h.name,
                            h.endpoint.number,
                            h.target.address
                        );
                    }
                    for h in &hids {
                        let (kind, ring) = (h.decoder.kind(), h.decoder.ring());
                        if wakes[ring].is_some() {
                            continue;
                        }
                        let (x, y) = match &h.decoder {
                            Decoder::Tablet(t) => {
                                let l = t.layout();
                                let r = |f: &dwc2::tablet::Field| (f.min.max(0) as u32, f.max.max(0) as u32);
                                (r(&l.x), r(&l.y))
                            }
                            Decoder::Keyboard(_) => ((0, 0), (0, 0)),
                        };
                        let info = Info {
                            kind,
                            x,
                            y,
                            dropped: 0,
                            name: h.name.clone(),
                        };
                        // `keyboard`, `touch`, or the first free `keyboardN`...
                        match input::serve(&info, &RINGS[ring], READERS) {
                            Ok((name, w)) => {
                                log::info!("{node}: serving `{name}`");
                                wakes[ring] = Some(w);
                            }
                            Err(e) => panic!("{node}: {} service: {e}", kind.base_name()),
                        }
                    }
                    // Back when the device went or stopped answering.
                    run(&mut host, &mut hids, &wakes, &node);
                }
            }
        }
    }

    /// Polls the keyboards until they stop answering.
    fn run(host: &mut Host, hids: &mut [Hid], wakes: &[Option<Vec<Handle>>; 2], node: &str) {
        loop {
            if !host.connected() {
                log::info!("{node}: device removed");
                return;
            }
            let mut moved = [0; 2];
            for h in hids.iter_mut() {
                match host.poll(h) {
                    Ok(None) => h.errors = 0,
                    Ok(Some(report)) => {
                        h.errors = 0;
                        let ring = h.decoder.ring();
                        let mut q = RINGS[ring].lock();
                        let r = match &mut h.decoder {
                            Decoder::Keyboard(k) => k.report(&report, |e| q.push(e)).map_err(|e| alloc::format!("{e}")),
                            Decoder::Tablet(t) => t
                                .report(&report, |e| q.push(e))
                                .map_err(|n| alloc::format!("report of {n} bytes without X and Y")),
                        };
                        match r {
                            Ok(n) => moved[ring] += n,
                            Err(e) => log::warn!("{node}: {}: {e}: ignored", h.name),
                        }
                    }
                    Err(e) => {
                        h.errors += 1;
                        if h.errors == 1 || h.errors == MAX_ERRORS {
                            log::warn!("{node}: {}: interrupt read: {e}", h.name);
                        }
                    }
                }
            }
            for (ring, w) in wakes.iter().enumerate() {
                if moved[ring] > 0 {
                    for w in w.iter().flatten() {
                        let _ = syscall::signal(*w, 1);
                    }
                }
            }
            if hids.iter().all(|h| h.errors >= MAX_ERRORS) {
                log::warn!("{node}: the devices stopped answering: enumerating again");
                return;
            }
            syscall::sleep_ms(POLL_MS);
        }
    }
}
