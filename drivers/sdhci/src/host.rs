//! The host controller and its card: reset, power, clock, card
//! identification and single/multi-block transfers by PIO, every wait
//! bounded. It reaches the device only through [`Bus`], so the whole
//! sequence runs on the host against a register model (the tests).

use crate::card::{self, Command};
use crate::regs::*;
use core::fmt;

/// Register access, interrupts and time, as the driver (or a model) has them.
pub trait Bus {
    /// The 32-bit register at `offset`.
    fn read(&mut self, offset: usize) -> u32;
    fn write(&mut self, offset: usize, value: u32);
    /// Sleeps until the controller raises its interrupt line (for the
    /// status bits enabled in [`INT_SIGNAL`]) or `us` microseconds pass,
    /// whichever is first; it may return early. Without an interrupt line
    /// it just sleeps (the caller polls).
    fn wait(&mut self, us: u64);
    /// Sleeps `us` microseconds.
    fn delay(&mut self, us: u64);
    /// A monotonic clock in microseconds.
    fn now_us(&self) -> u64;
}

/// What went wrong, as precisely as the controller says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdError {
    /// No card answered (nothing in the slot, or not an SD memory card).
    NoCard,
    /// The card or the controller did not finish in time.
    Timeout,
    /// A command or data CRC, end-bit or index error.
    Crc,
    /// The card reported an error in its status (R1 error bits).
    Card(u32),
    /// The controller failed (reset or clock never done, ADMA error).
    Controller(&'static str),
    /// The card or controller lacks something this driver needs.
    Unsupported(&'static str),
}

impl fmt::Display for SdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SdError::NoCard => f.write_str("no SD memory card answers"),
            SdError::Timeout => f.write_str("timed out"),
            SdError::Crc => f.write_str("CRC error"),
            SdError::Card(status) => write!(f, "card status error {status:#010x}"),
            SdError::Controller(what) => write!(f, "controller: {what}"),
            SdError::Unsupported(what) => write!(f, "unsupported: {what}"),
        }
    }
}

/// Longest wait for a command's response, a reset or a clock to settle.
const COMMAND_US: u64 = 1_000_000;
/// Longest wait for one block of data, and for a whole transfer to end
/// (a card may be busy programming for up to 250 ms per block on writes).
const DATA_US: u64 = 2_000_000;
/// How long a card may take to power up (ACMD41 busy).
const POWER_UP_US: u64 = 1_000_000;
/// Identification clock; data clock (default speed).
const IDENTIFY_HZ: u32 = 400_000;
const DATA_HZ: u32 = 25_000_000;
/// Assumed base clock when neither the capabilities nor the profile give
/// one: the highest plausible, so that the clocks derived from it are
/// never too fast (only slower than they could be).
const UNKNOWN_BASE_HZ: u32 = 250_000_000;
pub const BLOCK_BYTES: usize = 512;

/// What the card is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CardInfo {
    pub sectors: u64,
    /// Block addressed (SDHC/SDXC) rather than byte addressed (SDSC).
    pub high_capacity: bool,
    pub read_only: bool,
    pub rca: u16,
    pub name: [u8; 5],
    pub manufacturer: u8,
    /// The data clock in Hz.
    pub clock_hz: u32,
}

/// A host controller with (after [`Sdhci::init`]) an initialized card.
pub struct Sdhci<B: Bus> {
    pub bus: B,
    /// Base clock in Hz.
    base_hz: u32,
    /// Specification version 3.00 or later (10-bit clock divider).
    v3: bool,
    /// The clock control bits in force (kept across line resets).
    clock: u32,
    card: Option<CardInfo>,
}

impl<B: Bus> Sdhci<B> {
    /// A controller on `bus`; `base_hz` overrides the base clock the
    /// capabilities report (some controllers report 0).
    pub fn new(mut bus: B, base_hz: Option<u32>) -> Sdhci<B> {
        let caps = bus.read(CAPABILITIES);
        let version = (bus.read(VERSION) >> 16) as u8;
        let v3 = version >= 2;
        let caps_mhz = if v3 {
            (caps >> CAP_BASE_CLOCK_SHIFT) & 0xff
        } else {
            (caps >> CAP_BASE_CLOCK_SHIFT) & 0x3f
        };
        let base_hz = base_hz.unwrap_or(if caps_mhz == 0 {
            UNKNOWN_BASE_HZ
        } else {
            caps_mhz * 1_000_000
        });
        Sdhci {
            bus,
            base_hz,
            v3,
            clock: 0,
            card: None,
        }
    }

    pub fn card(&self) -> Option<CardInfo> {
        self.card
    }

    /// Whether the controller sees a card in the slot (card detect; some
    /// boards do not wire it, so a card may work without it).
    pub fn card_detected(&mut self) -> bool {
        self.bus.read(PRESENT_STATE) & PS_CARD_INSERTED != 0
    }

    /// Resets the controller and identifies the card: CMD0, CMD8, ACMD41
    /// (high capacity if the card says so), CMD2, CMD3, CMD9 (capacity),
    /// CMD7, ACMD6 (4-bit bus), CMD16 (standard capacity), then the data clock.
    pub fn init(&mut self) -> Result<CardInfo, SdError> {
        self.card = None;
        self.reset()?;
        if self.bus.read(CAPABILITIES) & CAP_3V3 == 0 {
            return Err(SdError::Unsupported("the controller cannot supply 3.3 V"));
        }
        self.set(
            HOST_CONTROL,
            PWR_3V3 | PWR_ON,
            PWR_3V3 | PWR_ON | HC_DATA_4BIT | HC_DMA_MASK,
        );
        self.set_clock(IDENTIFY_HZ)?;
        // The card needs 74 clocks after power-up (185 us at 400 kHz).
        self.bus.delay(1000);
        match self.command(card::GO_IDLE, 0, 0) {
            Err(SdError::Timeout) => return Err(SdError::NoCard),
            r => r?,
        };
        let v2 = match self.command(card::SEND_IF_COND, card::IF_COND_ARG, 0) {
            Ok(r) if r[0] & 0xfff == card::IF_COND_ARG => true,
            Ok(_) => return Err(SdError::Unsupported("the card refuses 3.3 V (CMD8)")),
            // Version 1 cards do not know CMD8 (and neither does an empty slot).
            Err(SdError::Timeout) => false,
            Err(e) => return Err(e),
        };
        let hcs = if v2 { card::OCR_HCS } else { 0 };
        let start = self.bus.now_us();
        let ocr = loop {
            match self.command(card::APP_CMD, 0, 0) {
                Err(SdError::Timeout) => return Err(SdError::NoCard),
                r => r?,
            };
            let ocr = match self.command(card::SD_SEND_OP_COND, card::OCR_VOLTAGES | hcs, 0) {
                Err(SdError::Timeout) => return Err(SdError::NoCard),
                r => r?[0],
            };
            if ocr & card::OCR_READY != 0 {
                break ocr;
            }
            if self.bus.now_us().saturating_sub(start) > POWER_UP_US {
                return Err(SdError::Timeout);
            }
            self.bus.delay(10_000);
        };
        let high_capacity = ocr & card::OCR_HCS != 0;
        let cid = self.command(card::ALL_SEND_CID, 0, 0)?;
        let rca = (self.command(card::SEND_RELATIVE_ADDR, 0, 0)?[0] >> 16) as u16;
        let csd = self.command(card::SEND_CSD, (rca as u32) << 16, 0)?;
        let sectors = card::csd_sectors(csd).ok_or(SdError::Unsupported("the card's CSD structure"))?;
        self.r1(card::SELECT_CARD, (rca as u32) << 16)?;
        self.r1(card::APP_CMD, (rca as u32) << 16)?;
        self.r1(card::SET_BUS_WIDTH, 2)?;
        self.set(HOST_CONTROL, HC_DATA_4BIT, HC_DATA_4BIT);
        if !high_capacity {
            self.r1(card::SET_BLOCKLEN, BLOCK_BYTES as u32)?;
        }
        let clock_hz = self.set_clock(DATA_HZ)?;
        let (name, manufacturer) = card::cid_name(cid);
        let info = CardInfo {
            sectors,
            high_capacity,
            read_only: self.bus.read(PRESENT_STATE) & PS_WRITE_ENABLED == 0,
            rca,
            name,
            manufacturer,
            clock_hz,
        };
        self.card = Some(info);
        Ok(info)
    }

    /// Reads `buf.len() / 512` blocks from `sector` (PIO).
    pub fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), SdError> {
        let blocks = self.start_transfer(sector, buf.len(), false)?;
        let r = (|| {
            for block in buf.chunks_exact_mut(BLOCK_BYTES).take(blocks) {
                self.wait_int(INT_READ_READY, DATA_US)?;
                for word in block.chunks_exact_mut(4) {
                    word.copy_from_slice(&self.bus.read(BUFFER).to_le_bytes());
                }
            }
            self.wait_int(INT_TRANSFER_COMPLETE, DATA_US).map(drop)
        })();
        self.end_transfer(r)
    }

    /// Writes `buf` (whole blocks) to the card from `sector` on (PIO).
    pub fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), SdError> {
        let blocks = self.start_transfer(sector, buf.len(), true)?;
        let r = (|| {
            for block in buf.chunks_exact(BLOCK_BYTES).take(blocks) {
                self.wait_int(INT_WRITE_READY, DATA_US)?;
                for word in block.chunks_exact(4) {
                    self.bus
                        .write(BUFFER, u32::from_le_bytes([word[0], word[1], word[2], word[3]]));
                }
            }
            // The card is done programming when the transfer completes.
            self.wait_int(INT_TRANSFER_COMPLETE, DATA_US).map(drop)
        })();
        self.end_transfer(r)
    }

    /// Checks the request, sets block size and count, and issues the read
    /// or write command. Returns the number of blocks.
    fn start_transfer(&mut self, sector: u64, bytes: usize, write: bool) -> Result<usize, SdError> {
        let card = self.card.ok_or(SdError::NoCard)?;
        let blocks = bytes / BLOCK_BYTES;
        if blocks == 0
            || !bytes.is_multiple_of(BLOCK_BYTES)
            || blocks > 0xffff
            || sector.checked_add(blocks as u64).is_none_or(|end| end > card.sectors)
        {
            return Err(SdError::Unsupported("a transfer outside the card"));
        }
        let address = if card.high_capacity {
            sector
        } else {
            sector * BLOCK_BYTES as u64
        };
        let address = u32::try_from(address).map_err(|_| SdError::Unsupported("an address past 32 bits"))?;
        self.bus.write(BLOCK, (blocks as u32) << 16 | BLOCK_BYTES as u32);
        let multi = blocks > 1;
        let mode = TM_BLOCK_COUNT | if write { 0 } else { TM_READ } | if multi { TM_MULTI | TM_AUTO_CMD12 } else { 0 };
        let cmd = match (write, multi) {
            (false, false) => card::READ_SINGLE,
            (false, true) => card::READ_MULTIPLE,
            (true, false) => card::WRITE_SINGLE,
            (true, true) => card::WRITE_MULTIPLE,
        };
        match self.command(cmd, address, mode) {
            Ok(r) if r[0] & card::R1_ERRORS != 0 => {
                self.recover(true);
                Err(SdError::Card(r[0]))
            }
            Ok(_) => Ok(blocks),
            Err(e) => {
                self.recover(true);
                Err(e)
            }
        }
    }

    fn end_transfer(&mut self, r: Result<(), SdError>) -> Result<(), SdError> {
        if r.is_err() {
            self.recover(true);
        }
        r
    }

    /// After a failed command or transfer: resets the command and data
    /// lines and, for a transfer, stops the card sending or receiving so
    /// the next request starts clean.
    fn recover(&mut self, transfer: bool) {
        let _ = self.reset_lines(RESET_CMD | RESET_DATA);
        self.bus.write(INT_STATUS, 0xffff_ffff);
        if transfer {
            let _ = self.command(card::STOP_TRANSMISSION, 0, 0);
            let _ = self.reset_lines(RESET_CMD | RESET_DATA);
            self.bus.write(INT_STATUS, 0xffff_ffff);
        }
    }

    /// A command whose R1 status must show no error.
    fn r1(&mut self, cmd: Command, arg: u32) -> Result<u32, SdError> {
        let status = self.command(cmd, arg, 0)?[0];
        if status & card::R1_ERRORS != 0 {
            return Err(SdError::Card(status));
        }
        Ok(status)
    }

    /// Issues `cmd` with `arg` (and transfer mode `mode` for a data
    /// command) and returns the response registers once it completes (and,
    /// for a busy response, once the card is no longer busy).
    fn command(&mut self, cmd: Command, arg: u32, mode: u32) -> Result<[u32; 4], SdError> {
        let inhibit = if cmd.flags & CMD_DATA != 0 || cmd.flags & CMD_RESP_48_BUSY == CMD_RESP_48_BUSY {
            PS_CMD_INHIBIT | PS_DATA_INHIBIT
        } else {
            PS_CMD_INHIBIT
        };
        // A card pulled since the last command: no use asking it (the
        // controller may have stopped the clock, so nothing would answer).
        if self.bus.read(INT_STATUS) & INT_CARD_REMOVE != 0 {
            self.bus.write(INT_STATUS, INT_CARD_REMOVE);
            return Err(SdError::NoCard);
        }
        let start = self.bus.now_us();
        while self.bus.read(PRESENT_STATE) & inhibit != 0 {
            if self.bus.now_us().saturating_sub(start) > COMMAND_US {
                self.recover(false);
                return Err(SdError::Timeout);
            }
            self.bus.delay(100);
        }
        self.bus.write(INT_STATUS, 0xffff_ffff);
        self.bus.write(ARGUMENT, arg);
        self.bus.write(COMMAND, cmd.register() | mode);
        if let Err(e) = self.wait_int(INT_CMD_COMPLETE, COMMAND_US) {
            self.recover(false);
            return Err(e);
        }
        let resp = [
            self.bus.read(RESPONSE),
            self.bus.read(RESPONSE + 4),
            self.bus.read(RESPONSE + 8),
            self.bus.read(RESPONSE + 12),
        ];
        if cmd.flags & CMD_RESP_48_BUSY == CMD_RESP_48_BUSY && cmd.flags & CMD_DATA == 0 {
            if let Err(e) = self.wait_int(INT_TRANSFER_COMPLETE, DATA_US) {
                self.recover(false);
                return Err(e);
            }
        }
        Ok(resp)
    }

    /// Waits until any status bit of `mask` is set (and clears it), an
    /// error shows (cleared, and returned), or `timeout_us` passes.
    fn wait_int(&mut self, mask: u32, timeout_us: u64) -> Result<u32, SdError> {
        let start = self.bus.now_us();
        loop {
            let status = self.bus.read(INT_STATUS);
            if status & (ERR_ALL | INT_ERROR) != 0 {
                self.bus.write(INT_STATUS, status & (ERR_ALL | INT_ERROR));
                return Err(classify(status));
            }
            if status & mask != 0 {
                self.bus.write(INT_STATUS, status & mask);
                return Ok(status);
            }
            if status & INT_CARD_REMOVE != 0 {
                self.bus.write(INT_STATUS, INT_CARD_REMOVE);
                return Err(SdError::NoCard);
            }
            let waited = self.bus.now_us().saturating_sub(start);
            if waited >= timeout_us {
                return Err(SdError::Timeout);
            }
            self.bus.write(INT_SIGNAL, mask | ERR_ALL);
            self.bus.wait(timeout_us - waited);
            self.bus.write(INT_SIGNAL, 0);
        }
    }

    /// Software reset of the whole controller; then every interrupt is
    /// enabled in the status register and none raises the line.
    fn reset(&mut self) -> Result<(), SdError> {
        self.bus.write(CLOCK, RESET_ALL);
        self.until(|b| b.read(CLOCK) & RESET_ALL == 0, "reset never completes")?;
        self.clock = 0;
        self.bus.write(INT_ENABLE, INT_ALL);
        self.bus.write(INT_SIGNAL, 0);
        self.bus.write(INT_STATUS, 0xffff_ffff);
        Ok(())
    }

    fn reset_lines(&mut self, lines: u32) -> Result<(), SdError> {
        self.bus.write(CLOCK, self.clock | TIMEOUT_MAX | lines);
        self.until(|b| b.read(CLOCK) & lines == 0, "line reset never completes")
    }

    /// Sets the SD clock to at most `hz`; returns the clock it gives.
    fn set_clock(&mut self, hz: u32) -> Result<u32, SdError> {
        let (bits, actual) = card::clock_divider(self.base_hz, hz, self.v3);
        // The card clock is stopped while the divider changes.
        self.bus.write(CLOCK, (self.clock & !CLK_CARD_ON) | TIMEOUT_MAX);
        self.bus.write(CLOCK, bits | TIMEOUT_MAX);
        self.until(|b| b.read(CLOCK) & CLK_INTERNAL_STABLE != 0, "the clock never settles")?;
        self.clock = bits | CLK_CARD_ON;
        self.bus.write(CLOCK, self.clock | TIMEOUT_MAX);
        self.bus.delay(100);
        Ok(actual)
    }

    /// Read-modify-write of the bits `mask` of `offset`.
    fn set(&mut self, offset: usize, value: u32, mask: u32) {
        let old = self.bus.read(offset);
        self.bus.write(offset, (old & !mask) | (value & mask));
    }

    /// Polls `done` for up to [`COMMAND_US`].
    fn until(&mut self, done: impl Fn(&mut B) -> bool, what: &'static str) -> Result<(), SdError> {
        let start = self.bus.now_us();
        while !done(&mut self.bus) {
            if self.bus.now_us().saturating_sub(start) > COMMAND_US {
                return Err(SdError::Controller(what));
            }
            self.bus.delay(100);
        }
        Ok(())
    }
}

/// The error an interrupt status with error bits stands for.
fn classify(status: u32) -> SdError {
    if status & (ERR_CMD_TIMEOUT | ERR_DATA_TIMEOUT) != 0 {
        SdError::Timeout
    } else if status & (ERR_CMD_CRC | ERR_CMD_END_BIT | ERR_CMD_INDEX | ERR_DATA_CRC | ERR_DATA_END_BIT) != 0 {
        SdError::Crc
    } else if status & ERR_AUTO_CMD12 != 0 {
        SdError::Controller("auto CMD12 failed")
    } else if status & ERR_ADMA != 0 {
        SdError::Controller("ADMA error")
    } else {
        SdError::Controller("error interrupt")
    }
}
