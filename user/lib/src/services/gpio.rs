//! `gpio`: general-purpose I/O pins (the Raspberry Pi's BCM2711 driver
//! serves it).
//!
//! | label | words in | reply |
//! |---|---|---|
//! | [`SET_FUNCTION`] | `[pin, function]` ([`Function`]) | [`crate::proto::OK`] |
//! | [`GET_FUNCTION`] | `[pin]` | `[function]` |
//! | [`WRITE`] | `[pin, level 0/1]` | [`crate::proto::OK`] |
//! | [`READ`] | `[pin]` | `[level 0/1]` |
//! | [`PULL`] | `[pin, mode]` ([`Pull`]) | [`crate::proto::OK`] |
//! | [`GET_PULL`] | `[pin]` | `[mode]` |
//!
//! Pins are numbered as the SoC numbers them, `0..`[`PINS`]; a pin out of
//! range, an unknown function or mode, or a level other than 0 or 1 gets a
//! failure reply with `InvalidArgument`. `WRITE` drives a pin only while it
//! is an output; `READ` gives the pin's level whatever its function.

use crate::ipc::{Message, Timeout};
use crate::names::Connection;
use crate::Error;

pub const NAME: &str = "gpio";
pub const SET_FUNCTION: u16 = 1;
pub const WRITE: u16 = 2;
pub const READ: u16 = 3;
pub const PULL: u16 = 4;
pub const GET_FUNCTION: u16 = 5;
pub const GET_PULL: u16 = 6;

/// Pins of the BCM2711 (GPIO 0-57).
pub const PINS: u64 = 58;

/// A pin's function, with the BCM283x/BCM2711 `GPFSEL` encoding as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Function {
    Input = 0,
    Output = 1,
    Alt0 = 4,
    Alt1 = 5,
    Alt2 = 6,
    Alt3 = 7,
    Alt4 = 3,
    Alt5 = 2,
}

impl Function {
    pub fn from_word(w: u64) -> Option<Function> {
        Some(match w {
            0 => Function::Input,
            1 => Function::Output,
            4 => Function::Alt0,
            5 => Function::Alt1,
            6 => Function::Alt2,
            7 => Function::Alt3,
            3 => Function::Alt4,
            2 => Function::Alt5,
            _ => return None,
        })
    }
}

/// A pin's pull resistor, with the BCM2711 `GPIO_PUP_PDN_CNTRL` encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Pull {
    None = 0,
    Up = 1,
    Down = 2,
}

impl Pull {
    pub fn from_word(w: u64) -> Option<Pull> {
        Some(match w {
            0 => Pull::None,
            1 => Pull::Up,
            2 => Pull::Down,
            _ => return None,
        })
    }
}

const TIMEOUT: Timeout = Timeout::millis(1000);

/// A GPIO client (reconnects after the driver restarts).
pub struct Gpio {
    conn: Connection,
}

impl Gpio {
    pub const fn new() -> Gpio {
        Gpio {
            conn: Connection::new(NAME),
        }
    }

    fn call(&mut self, label: u16, words: &[u64]) -> Result<Message, Error> {
        self.conn.call(&Message::with_words(label, words), TIMEOUT)
    }

    pub fn set_function(&mut self, pin: u64, function: Function) -> Result<(), Error> {
        self.call(SET_FUNCTION, &[pin, function as u64]).map(drop)
    }

    pub fn function(&mut self, pin: u64) -> Result<Function, Error> {
        Function::from_word(self.call(GET_FUNCTION, &[pin])?.word(0)).ok_or(Error::InvalidState)
    }

    pub fn write(&mut self, pin: u64, high: bool) -> Result<(), Error> {
        self.call(WRITE, &[pin, high as u64]).map(drop)
    }

    /// Whether the pin is high.
    pub fn read(&mut self, pin: u64) -> Result<bool, Error> {
        Ok(self.call(READ, &[pin])?.word(0) != 0)
    }

    pub fn pull(&mut self, pin: u64, pull: Pull) -> Result<(), Error> {
        self.call(PULL, &[pin, pull as u64]).map(drop)
    }

    pub fn pull_of(&mut self, pin: u64) -> Result<Pull, Error> {
        Pull::from_word(self.call(GET_PULL, &[pin])?.word(0)).ok_or(Error::InvalidState)
    }
}

impl Default for Gpio {
    fn default() -> Self {
        Gpio::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_round_trip() {
        for w in 0..8 {
            assert_eq!(Function::from_word(w).map(|f| f as u64), Some(w));
        }
        assert_eq!(Function::from_word(8), None);
        for w in 0..3 {
            assert_eq!(Pull::from_word(w).map(|p| p as u64), Some(w));
        }
        assert_eq!(Pull::from_word(3), None);
    }
}
