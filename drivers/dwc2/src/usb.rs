//! USB 2.0 chapter 9 (and the hub class, chapter 11): the setup packets
//! the driver sends and the descriptors it reads, checked byte by byte.

use alloc::vec::Vec;
use core::fmt;

/// A descriptor or status a device sent that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescError {
    /// Fewer bytes than the descriptor needs.
    Short {
        what: &'static str,
        got: usize,
        need: usize,
    },
    /// A field with an impossible value.
    Bad { what: &'static str, value: u32 },
}

impl fmt::Display for DescError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DescError::Short { what, got, need } => write!(f, "{what}: {got} bytes, needs {need}"),
            DescError::Bad { what, value } => write!(f, "{what}: impossible value {value:#x}"),
        }
    }
}

pub const DESC_DEVICE: u8 = 1;
pub const DESC_CONFIG: u8 = 2;
pub const DESC_INTERFACE: u8 = 4;
pub const DESC_ENDPOINT: u8 = 5;
pub const DESC_HID: u8 = 0x21;
pub const DESC_REPORT: u8 = 0x22;
pub const DESC_HUB: u8 = 0x29;

pub const CLASS_HID: u8 = 3;
pub const CLASS_HUB: u8 = 9;

/// A control request's 8 setup bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    pub request_type: u8,
    pub request: u8,
    pub value: u16,
    pub index: u16,
    pub length: u16,
}

impl Setup {
    pub fn bytes(&self) -> [u8; 8] {
        let [v0, v1] = self.value.to_le_bytes();
        let [i0, i1] = self.index.to_le_bytes();
        let [l0, l1] = self.length.to_le_bytes();
        [self.request_type, self.request, v0, v1, i0, i1, l0, l1]
    }

    /// Whether the data stage (if any) goes to the host.
    pub fn is_in(&self) -> bool {
        self.request_type & 0x80 != 0
    }

    pub fn get_descriptor(kind: u8, index: u8, length: u16) -> Setup {
        Setup {
            request_type: 0x80,
            request: 6,
            value: (kind as u16) << 8 | index as u16,
            index: 0,
            length,
        }
    }

    pub fn set_address(address: u8) -> Setup {
        Setup {
            request_type: 0,
            request: 5,
            value: address as u16,
            index: 0,
            length: 0,
        }
    }

    pub fn set_configuration(value: u8) -> Setup {
        Setup {
            request_type: 0,
            request: 9,
            value: value as u16,
            index: 0,
            length: 0,
        }
    }

    /// HID SET_PROTOCOL: 0 boot, 1 report.
    pub fn set_protocol(interface: u8, protocol: u16) -> Setup {
        Setup {
            request_type: 0x21,
            request: 0x0b,
            value: protocol,
            index: interface as u16,
            length: 0,
        }
    }

    /// HID SET_IDLE 0: a report only when something changed.
    pub fn set_idle(interface: u8) -> Setup {
        Setup {
            request_type: 0x21,
            request: 0x0a,
            value: 0,
            index: interface as u16,
            length: 0,
        }
    }

    /// The HID report descriptor of `interface`.
    pub fn get_report_descriptor(interface: u8, length: u16) -> Setup {
        Setup {
            request_type: 0x81,
            request: 6,
            value: (DESC_REPORT as u16) << 8,
            index: interface as u16,
            length,
        }
    }

    pub fn get_hub_descriptor(length: u16) -> Setup {
        Setup {
            request_type: 0xa0,
            request: 6,
            value: (DESC_HUB as u16) << 8,
            index: 0,
            length,
        }
    }

    /// Hub class SET_FEATURE / CLEAR_FEATURE on a port (from 1).
    pub fn port_feature(set: bool, port: u8, feature: u16) -> Setup {
        Setup {
            request_type: 0x23,
            request: if set { 3 } else { 1 },
            value: feature,
            index: port as u16,
            length: 0,
        }
    }

    pub fn get_port_status(port: u8) -> Setup {
        Setup {
            request_type: 0xa3,
            request: 0,
            value: 0,
            index: port as u16,
            length: 4,
        }
    }
}

/// Hub port features (USB 2.0 table 11-17).
pub const PORT_RESET: u16 = 4;
pub const PORT_POWER: u16 = 8;
pub const C_PORT_CONNECTION: u16 = 16;
pub const C_PORT_RESET: u16 = 20;

/// The device descriptor's fields the driver uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceDescriptor {
    pub class: u8,
    pub max_packet0: u8,
    pub vendor: u16,
    pub product: u16,
    pub configurations: u8,
}

/// Endpoint 0's packet size from the first 8 bytes of the device
/// descriptor (all that may be asked before the size is known).
pub fn max_packet0(b: &[u8]) -> Result<u8, DescError> {
    check_header(b, 8, DESC_DEVICE, "device descriptor")?;
    match b[7] {
        8 | 16 | 32 | 64 => Ok(b[7]),
        v => Err(DescError::Bad {
            what: "device descriptor bMaxPacketSize0",
            value: v as u32,
        }),
    }
}

fn check_header(b: &[u8], need: usize, kind: u8, what: &'static str) -> Result<(), DescError> {
    if b.len() < need {
        return Err(DescError::Short {
            what,
            got: b.len(),
            need,
        });
    }
    if (b[0] as usize) < need {
        return Err(DescError::Bad {
            what,
            value: b[0] as u32,
        });
    }
    if b[1] != kind {
        return Err(DescError::Bad {
            what,
            value: b[1] as u32,
        });
    }
    Ok(())
}

impl DeviceDescriptor {
    pub fn parse(b: &[u8]) -> Result<DeviceDescriptor, DescError> {
        check_header(b, 18, DESC_DEVICE, "device descriptor")?;
        let max_packet0 = max_packet0(b)?;
        Ok(DeviceDescriptor {
            class: b[4],
            max_packet0,
            vendor: u16::from_le_bytes([b[8], b[9]]),
            product: u16::from_le_bytes([b[10], b[11]]),
            configurations: b[17],
        })
    }
}

/// An interrupt IN endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// 1..=15.
    pub number: u8,
    /// 1..=1024 (the driver's buffers take at most 64 of it).
    pub max_packet: u16,
    /// bInterval as sent.
    pub interval: u8,
}

/// An interface of the configuration, with its first interrupt IN
/// endpoint if it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interface {
    pub number: u8,
    pub class: u8,
    pub subclass: u8,
    pub protocol: u8,
    /// The HID descriptor's report descriptor length (HID interfaces).
    pub report_length: u16,
    pub interrupt_in: Option<Endpoint>,
}

/// A configuration descriptor with its interfaces (alternate setting 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configuration {
    pub value: u8,
    pub total_length: u16,
    pub interfaces: Vec<Interface>,
}

/// Interfaces kept from one configuration; more are ignored.
pub const MAX_INTERFACES: usize = 8;

/// The first 9 bytes: the configuration's value and its total length.
pub fn config_header(b: &[u8]) -> Result<(u8, u16), DescError> {
    check_header(b, 9, DESC_CONFIG, "configuration descriptor")?;
    let total = u16::from_le_bytes([b[2], b[3]]);
    if total < 9 {
        return Err(DescError::Bad {
            what: "configuration wTotalLength",
            value: total as u32,
        });
    }
    Ok((b[5], total))
}

impl Configuration {
    /// The whole configuration (`b` as read: at most wTotalLength bytes;
    /// fewer if the device sent fewer, and what is missing is not used).
    pub fn parse(b: &[u8]) -> Result<Configuration, DescError> {
        let (value, total_length) = config_header(b)?;
        let b = &b[..b.len().min(total_length as usize)];
        let mut interfaces: Vec<Interface> = Vec::new();
        // Alternate settings other than 0 (and their endpoints) are skipped.
        let mut in_alternate = false;
        let mut at = b[0] as usize;
        while at + 2 <= b.len() {
            let len = b[at] as usize;
            if len < 2 {
                return Err(DescError::Bad {
                    what: "descriptor bLength in the configuration",
                    value: len as u32,
                });
            }
            let d = &b[at..b.len().min(at + len)];
            if d.len() < len {
                // Cut off by wTotalLength or by the transfer: the rest is unusable.
                break;
            }
            match d[1] {
                DESC_INTERFACE if len >= 9 => {
                    in_alternate = d[3] != 0;
                    if !in_alternate && interfaces.len() < MAX_INTERFACES {
                        interfaces.push(Interface {
                            number: d[2],
                            class: d[5],
                            subclass: d[6],
                            protocol: d[7],
                            report_length: 0,
                            interrupt_in: None,
                        });
                    }
                }
                DESC_HID if len >= 9 && !in_alternate => {
                    if let Some(i) = interfaces.last_mut() {
                        // The first class descriptor listed (bDescriptorType, wLength).
                        if d[6] == DESC_REPORT {
                            i.report_length = u16::from_le_bytes([d[7], d[8]]);
                        }
                    }
                }
                DESC_ENDPOINT if len >= 7 && !in_alternate => {
                    let (address, attributes) = (d[2], d[3]);
                    let max_packet = u16::from_le_bytes([d[4], d[5]]) & 0x7ff;
                    let number = address & 0x0f;
                    let interrupt_in = address & 0x80 != 0 && attributes & 3 == 3;
                    if let Some(i) = interfaces.last_mut() {
                        if interrupt_in && i.interrupt_in.is_none() && number != 0 && max_packet != 0 {
                            i.interrupt_in = Some(Endpoint {
                                number,
                                max_packet,
                                interval: d[6],
                            });
                        }
                    }
                }
                _ => {}
            }
            at += len;
        }
        Ok(Configuration {
            value,
            total_length,
            interfaces,
        })
    }
}

/// Ports of a hub from its hub descriptor (bNbrPorts, and
/// bPwrOn2PwrGood in milliseconds).
pub fn hub_ports(b: &[u8]) -> Result<(u8, u32), DescError> {
    check_header(b, 7, DESC_HUB, "hub descriptor")?;
    let ports = b[2];
    if ports == 0 || ports > 15 {
        return Err(DescError::Bad {
            what: "hub bNbrPorts",
            value: ports as u32,
        });
    }
    Ok((ports, b[5] as u32 * 2))
}

/// A hub port's wPortStatus and wPortChange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortStatus {
    pub status: u16,
    pub change: u16,
}

impl PortStatus {
    pub fn parse(b: &[u8]) -> Result<PortStatus, DescError> {
        if b.len() < 4 {
            return Err(DescError::Short {
                what: "port status",
                got: b.len(),
                need: 4,
            });
        }
        Ok(PortStatus {
            status: u16::from_le_bytes([b[0], b[1]]),
            change: u16::from_le_bytes([b[2], b[3]]),
        })
    }

    pub fn connected(&self) -> bool {
        self.status & 1 != 0
    }

    pub fn enabled(&self) -> bool {
        self.status & 2 != 0
    }

    pub fn resetting(&self) -> bool {
        self.status & 0x10 != 0
    }

    pub fn low_speed(&self) -> bool {
        self.status & 0x200 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU's usb-kbd: device, configuration with one HID boot keyboard
    /// interface (HID descriptor, interrupt IN endpoint 1).
    pub const KBD_DEVICE: [u8; 18] = [
        18, 1, 0x00, 0x02, 0, 0, 0, 64, 0x27, 0x06, 0x01, 0x00, 0, 0, 1, 4, 11, 1,
    ];
    pub const KBD_CONFIG: [u8; 34] = [
        9, 2, 34, 0, 1, 1, 6, 0xa0, 50, // configuration
        9, 4, 0, 0, 1, 3, 1, 1, 0, // interface 0: HID, boot, keyboard
        9, 0x21, 0x11, 0x01, 0, 1, 0x22, 63, 0, // HID: report descriptor of 63 bytes
        7, 5, 0x81, 3, 8, 0, 7, // endpoint 1 IN, interrupt, 8 bytes, interval 7
    ];

    #[test]
    fn setup_bytes() {
        assert_eq!(
            Setup::get_descriptor(DESC_DEVICE, 0, 18).bytes(),
            [0x80, 6, 0, 1, 0, 0, 18, 0]
        );
        assert_eq!(Setup::set_address(5).bytes(), [0, 5, 5, 0, 0, 0, 0, 0]);
        assert!(Setup::get_port_status(1).is_in());
        assert!(!Setup::set_protocol(0, 0).is_in());
        assert_eq!(
            Setup::port_feature(true, 2, PORT_RESET).bytes(),
            [0x23, 3, 4, 0, 2, 0, 0, 0]
        );
    }

    #[test]
    fn device_descriptor() {
        let d = DeviceDescriptor::parse(&KBD_DEVICE).unwrap();
        assert_eq!((d.vendor, d.product, d.max_packet0, d.class), (0x0627, 1, 64, 0));
        assert_eq!(max_packet0(&KBD_DEVICE[..8]), Ok(64));
    }

    #[test]
    fn malformed_device_descriptors() {
        assert!(matches!(
            DeviceDescriptor::parse(&KBD_DEVICE[..17]),
            Err(DescError::Short { .. })
        ));
        assert!(matches!(max_packet0(&[]), Err(DescError::Short { .. })));
        let mut bad = KBD_DEVICE;
        bad[1] = 2;
        assert!(DeviceDescriptor::parse(&bad).is_err(), "wrong type");
        bad = KBD_DEVICE;
        bad[7] = 0;
        assert!(DeviceDescriptor::parse(&bad).is_err(), "packet size 0");
        bad = KBD_DEVICE;
        bad[7] = 65;
        assert!(max_packet0(&bad).is_err(), "packet size 65");
        bad = KBD_DEVICE;
        bad[0] = 3;
        assert!(DeviceDescriptor::parse(&bad).is_err(), "bLength too small");
    }

    #[test]
    fn configuration() {
        let c = Configuration::parse(&KBD_CONFIG).unwrap();
        assert_eq!(c.value, 1);
        assert_eq!(c.total_length, 34);
        assert_eq!(
            c.interfaces,
            [Interface {
                number: 0,
                class: CLASS_HID,
                subclass: 1,
                protocol: 1,
                report_length: 63,
                interrupt_in: Some(Endpoint {
                    number: 1,
                    max_packet: 8,
                    interval: 7
                }),
            }]
        );
    }

    #[test]
    fn malformed_configurations() {
        // Only the header arrived: no interfaces, no error.
        let c = Configuration::parse(&KBD_CONFIG[..9]).unwrap();
        assert!(c.interfaces.is_empty());
        // Cut inside the endpoint: the interface stays, without it.
        let c = Configuration::parse(&KBD_CONFIG[..30]).unwrap();
        assert_eq!(c.interfaces.len(), 1);
        assert_eq!(c.interfaces[0].interrupt_in, None);
        // A zero bLength would loop forever: an error.
        let mut bad = KBD_CONFIG;
        bad[9] = 0;
        assert!(Configuration::parse(&bad).is_err());
        // wTotalLength below the header.
        bad = KBD_CONFIG;
        bad[2] = 4;
        assert!(Configuration::parse(&bad).is_err());
        // wTotalLength shorter than what came: the rest is ignored.
        bad = KBD_CONFIG;
        bad[2] = 18;
        assert_eq!(Configuration::parse(&bad).unwrap().interfaces[0].interrupt_in, None);
        // A huge bLength runs past the end: stops there.
        bad = KBD_CONFIG;
        bad[27] = 255;
        assert_eq!(Configuration::parse(&bad).unwrap().interfaces[0].interrupt_in, None);
        // Endpoint 0, or of packet size 0: not an interrupt endpoint to poll.
        bad = KBD_CONFIG;
        bad[29] = 0x80;
        assert_eq!(Configuration::parse(&bad).unwrap().interfaces[0].interrupt_in, None);
        bad = KBD_CONFIG;
        bad[31] = 0;
        assert_eq!(Configuration::parse(&bad).unwrap().interfaces[0].interrupt_in, None);
        // Not a configuration at all.
        assert!(Configuration::parse(&KBD_DEVICE).is_err());
        assert!(Configuration::parse(&[]).is_err());
        // Many interfaces: bounded.
        let mut many = alloc::vec![9, 2, 0, 0, 1, 1, 0, 0x80, 50];
        for i in 0..100u8 {
            many.extend_from_slice(&[9, 4, i, 0, 0, 3, 0, 0, 0]);
        }
        let total = many.len().min(0xffff) as u16;
        many[2..4].copy_from_slice(&total.to_le_bytes());
        assert_eq!(Configuration::parse(&many).unwrap().interfaces.len(), MAX_INTERFACES);
    }

    #[test]
    fn hubs() {
        assert_eq!(hub_ports(&[9, 0x29, 8, 0, 0, 50, 0, 0, 0xff]), Ok((8, 100)));
        assert!(hub_ports(&[9, 0x29, 0, 0, 0, 50, 0]).is_err(), "no ports");
        assert!(hub_ports(&[9, 0x29, 200, 0, 0, 50, 0]).is_err(), "200 ports");
        assert!(hub_ports(&[9, 0x29, 4]).is_err(), "short");
        let s = PortStatus::parse(&[0x03, 0x02, 0x01, 0]).unwrap();
        assert!(s.connected() && s.enabled() && s.low_speed() && !s.resetting());
        assert_eq!(s.change, 1);
        assert!(PortStatus::parse(&[1, 0]).is_err());
    }
}
