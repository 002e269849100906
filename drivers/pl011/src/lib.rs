//! ARM PrimeCell PL011 UART.
//!
//! A driver library: the kernel uses it for its console, and a user-space
//! UART server can use it the same way. It touches the device only through
//! the [`Registers`] trait, so it is tested on the host against a model.
//! With the `typed` feature, [`regs`] describes the same registers as
//! tock-registers types for drivers that map them as a typed block.
#![cfg_attr(not(test), no_std)]

#[cfg(any(feature = "typed", test))]
pub mod regs;

/// Register offsets.
const DR: usize = 0x00;
const FR: usize = 0x18;
const IBRD: usize = 0x24;
const FBRD: usize = 0x28;
const LCR_H: usize = 0x2c;
const CR: usize = 0x30;
const IMSC: usize = 0x38;
const ICR: usize = 0x44;

const FR_BUSY: u32 = 1 << 3;
const FR_RXFE: u32 = 1 << 4;
const FR_TXFF: u32 = 1 << 5;
const CR_UARTEN: u32 = 1 << 0;
const CR_TXE: u32 = 1 << 8;
const CR_RXE: u32 = 1 << 9;
const LCR_FEN: u32 = 1 << 4;
const LCR_WLEN_8: u32 = 3 << 5;

/// 32-bit register access to the UART's MMIO block.
pub trait Registers {
    fn read(&self, offset: usize) -> u32;
    fn write(&self, offset: usize, value: u32);
}

/// A PL011 reached through `R`.
pub struct Pl011<R: Registers> {
    regs: R,
}

/// Baud-rate divisors: integer part and 1/64 fraction.
pub fn divisors(clock_hz: u32, baud: u32) -> Option<(u32, u32)> {
    if baud == 0 {
        return None;
    }
    // divisor = clock / (16 * baud), in 1/64 units, rounded.
    let x64 = (clock_hz as u64 * 4 + baud as u64 / 2) / baud as u64;
    let (int, frac) = ((x64 >> 6) as u32, (x64 & 63) as u32);
    (1..=0xffff).contains(&int).then_some((int, frac))
}

impl<R: Registers> Pl011<R> {
    pub fn new(regs: R) -> Self {
        Pl011 { regs }
    }

    /// Whether firmware already enabled the UART (then its settings are kept).
    pub fn is_enabled(&self) -> bool {
        self.regs.read(CR) & CR_UARTEN != 0
    }

    /// Program 8N1 with FIFOs at `baud`, if the input clock is known; otherwise
    /// only make sure transmit and receive are enabled.
    pub fn init(&self, clock_hz: Option<u32>, baud: u32) {
        let divisors = clock_hz.and_then(|c| divisors(c, baud));
        if let Some((int, frac)) = divisors {
            while self.regs.read(FR) & FR_BUSY != 0 {}
            self.regs.write(CR, 0);
            self.regs.write(IBRD, int);
            self.regs.write(FBRD, frac);
            self.regs.write(LCR_H, LCR_WLEN_8 | LCR_FEN);
        }
        self.regs.write(IMSC, 0);
        self.regs.write(ICR, 0x7ff);
        self.regs.write(CR, CR_UARTEN | CR_TXE | CR_RXE);
    }

    /// Send one byte, waiting for room in the FIFO.
    pub fn write_byte(&self, byte: u8) {
        while self.regs.read(FR) & FR_TXFF != 0 {
            core::hint::spin_loop();
        }
        self.regs.write(DR, byte as u32);
    }

    /// Send text, turning `\n` into `\r\n`.
    pub fn write_str(&self, text: &str) {
        for b in text.bytes() {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
    }

    /// A received byte, if one is waiting.
    pub fn read_byte(&self) -> Option<u8> {
        (self.regs.read(FR) & FR_RXFE == 0).then(|| self.regs.read(DR) as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A register model: records writes, TX FIFO never full, RX from a queue.
    #[derive(Default)]
    struct Model {
        regs: RefCell<[u32; 32]>,
        sent: RefCell<Vec<u8>>,
        rx: RefCell<Vec<u8>>,
    }

    impl Registers for &Model {
        fn read(&self, offset: usize) -> u32 {
            match offset {
                FR => {
                    if self.rx.borrow().is_empty() {
                        FR_RXFE
                    } else {
                        0
                    }
                }
                DR => self.rx.borrow_mut().remove(0) as u32,
                _ => self.regs.borrow()[offset / 4],
            }
        }
        fn write(&self, offset: usize, value: u32) {
            if offset == DR {
                self.sent.borrow_mut().push(value as u8);
            } else {
                self.regs.borrow_mut()[offset / 4] = value;
            }
        }
    }

    #[test]
    fn divisors_for_common_clocks() {
        // 48 MHz (Raspberry Pi 4 PL011) at 115200: 26 + 3/64.
        assert_eq!(divisors(48_000_000, 115_200), Some((26, 3)));
        // 24 MHz (QEMU virt's apb-pclk) at 115200: 13 + 1/64.
        assert_eq!(divisors(24_000_000, 115_200), Some((13, 1)));
        assert_eq!(divisors(48_000_000, 0), None);
        assert_eq!(divisors(1, 115_200), None);
    }

    #[test]
    fn init_programs_8n1_and_enables() {
        let m = Model::default();
        let uart = Pl011::new(&m);
        assert!(!uart.is_enabled());
        uart.init(Some(48_000_000), 115_200);
        let regs = m.regs.borrow();
        assert_eq!(regs[IBRD / 4], 26);
        assert_eq!(regs[FBRD / 4], 3);
        assert_eq!(regs[LCR_H / 4], LCR_WLEN_8 | LCR_FEN);
        assert_eq!(regs[CR / 4], CR_UARTEN | CR_TXE | CR_RXE);
    }

    #[test]
    fn unknown_clock_keeps_line_settings() {
        let m = Model::default();
        Pl011::new(&m).init(None, 115_200);
        assert_eq!(m.regs.borrow()[IBRD / 4], 0);
        assert_ne!(m.regs.borrow()[CR / 4] & CR_UARTEN, 0);
    }

    #[test]
    fn newline_becomes_crlf_and_input_is_read() {
        let m = Model::default();
        let uart = Pl011::new(&m);
        uart.write_str("a\nb");
        assert_eq!(&*m.sent.borrow(), b"a\r\nb");
        m.rx.borrow_mut().extend_from_slice(b"x");
        assert_eq!(uart.read_byte(), Some(b'x'));
        assert_eq!(uart.read_byte(), None);
    }
}
