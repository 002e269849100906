//! The BCM2711 GPIO controller's register layout and the pure arithmetic
//! of its fields (BCM2711 ARM Peripherals, chapter 5), tested on the host.
#![cfg_attr(not(test), no_std)]

use driverkit::tock_registers::register_structs;
use driverkit::tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_structs! {
    pub GpioRegisters {
        /// Function select: 3 bits per pin, 10 pins per register.
        (0x00 => pub gpfsel: [ReadWrite<u32>; 6]),
        (0x18 => _reserved0),
        /// Writing 1 drives an output pin high; 0 bits change nothing.
        (0x1c => pub gpset: [WriteOnly<u32>; 2]),
        (0x24 => _reserved1),
        /// Writing 1 drives an output pin low.
        (0x28 => pub gpclr: [WriteOnly<u32>; 2]),
        (0x30 => _reserved2),
        /// Pin levels.
        (0x34 => pub gplev: [ReadOnly<u32>; 2]),
        (0x3c => _reserved3),
        /// Pull resistors: 2 bits per pin, 16 pins per register (the
        /// BCM2711's replacement for the BCM2835's GPPUD sequence).
        (0xe4 => pub pup_pdn: [ReadWrite<u32>; 4]),
        (0xf4 => @END),
    }
}

/// Pins of the BCM2711.
pub const PINS: usize = 58;

/// A field of a register array: register index, bit shift, field mask
/// (unshifted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub index: usize,
    pub shift: u32,
    pub mask: u32,
}

impl Field {
    /// `old` with this field replaced by `value`.
    pub fn replace(self, old: u32, value: u32) -> u32 {
        (old & !(self.mask << self.shift)) | ((value & self.mask) << self.shift)
    }

    /// This field's value in `reg`.
    pub fn get(self, reg: u32) -> u32 {
        (reg >> self.shift) & self.mask
    }
}

/// Pin `pin`'s function-select field (`GPFSELn`).
pub fn function_field(pin: usize) -> Option<Field> {
    (pin < PINS).then_some(Field {
        index: pin / 10,
        shift: (pin % 10) as u32 * 3,
        mask: 0b111,
    })
}

/// Pin `pin`'s bit in the two-register banks (`GPSETn`, `GPCLRn`, `GPLEVn`).
pub fn bank_field(pin: usize) -> Option<Field> {
    (pin < PINS).then_some(Field {
        index: pin / 32,
        shift: (pin % 32) as u32,
        mask: 1,
    })
}

/// Pin `pin`'s pull field (`GPIO_PUP_PDN_CNTRL_REGn`).
pub fn pull_field(pin: usize) -> Option<Field> {
    (pin < PINS).then_some(Field {
        index: pin / 16,
        shift: (pin % 16) as u32 * 2,
        mask: 0b11,
    })
}

/// A pin number from a request word.
pub fn pin(word: u64) -> Option<usize> {
    (word < PINS as u64).then_some(word as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn layout() {
        assert_eq!(offset_of!(GpioRegisters, gpset), 0x1c);
        assert_eq!(offset_of!(GpioRegisters, gpclr), 0x28);
        assert_eq!(offset_of!(GpioRegisters, gplev), 0x34);
        assert_eq!(offset_of!(GpioRegisters, pup_pdn), 0xe4);
    }

    #[test]
    fn fields() {
        assert_eq!(
            function_field(0),
            Some(Field {
                index: 0,
                shift: 0,
                mask: 7
            })
        );
        assert_eq!(function_field(21).map(|f| (f.index, f.shift)), Some((2, 3)));
        assert_eq!(function_field(57).map(|f| (f.index, f.shift)), Some((5, 21)));
        assert_eq!(bank_field(31).map(|f| (f.index, f.shift)), Some((0, 31)));
        assert_eq!(bank_field(32).map(|f| (f.index, f.shift)), Some((1, 0)));
        assert_eq!(pull_field(17).map(|f| (f.index, f.shift)), Some((1, 2)));
        assert_eq!(pull_field(57).map(|f| (f.index, f.shift)), Some((3, 18)));
        for f in [function_field, bank_field, pull_field] {
            assert_eq!(f(58), None);
        }
        assert_eq!(pin(57), Some(57));
        assert_eq!(pin(58), None);
        assert_eq!(pin(u64::MAX), None);
    }

    #[test]
    fn replace_touches_only_the_field() {
        let f = function_field(14).unwrap();
        let old = 0xffff_ffff;
        let new = f.replace(old, 0b100);
        assert_eq!(f.get(new), 0b100);
        assert_eq!(new | (0b111 << f.shift), old);
        // Values wider than the field are cut.
        assert_eq!(f.get(f.replace(0, 0xff)), 0b111);
    }
}
