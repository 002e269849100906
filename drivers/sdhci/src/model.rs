//! A register model of an SDHCI controller with an SD memory card, for
//! the host tests: commands complete at once (as in QEMU), data moves by
//! PIO through the buffer port, time advances only when the driver waits.
//! Faults can be injected: no card, a card that never answers, a CRC
//! error on a given sector, a controller that never finishes a transfer.

use crate::host::Bus;
use crate::regs::*;
use std::cell::Cell;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// Card states, numbered as R1's CURRENT_STATE field (bits 12:9).
enum State {
    Idle = 0,
    Ready = 1,
    Ident = 2,
    Standby = 3,
    Transfer = 4,
}

pub struct Card {
    pub data: Vec<u8>,
    pub high_capacity: bool,
    pub read_only: bool,
    state: State,
    app: bool,
    /// ACMD41s still answered busy.
    busy_polls: u32,
    pub bus_width_4: bool,
    pub block_len: u32,
}

impl Card {
    pub fn new(bytes: usize, high_capacity: bool) -> Card {
        Card {
            data: (0..bytes).map(|i| (i * 7 % 251) as u8).collect(),
            high_capacity,
            read_only: false,
            state: State::Idle,
            app: false,
            busy_polls: 2,
            bus_width_4: false,
            block_len: 0,
        }
    }

    /// The CSD as a 128-bit register.
    fn csd(&self) -> u128 {
        let mut csd = 0u128;
        let mut set = |hi: u32, lo: u32, v: u128| csd |= (v & ((1 << (hi - lo + 1)) - 1)) << lo;
        if self.high_capacity {
            set(127, 126, 1);
            set(69, 48, (self.data.len() as u128 >> 19) - 1);
        } else {
            // READ_BL_LEN 9, C_SIZE_MULT 7 (x512): C_SIZE + 1 = bytes / 256 KiB,
            // or smaller cards with C_SIZE_MULT 0 (x4).
            set(83, 80, 9);
            if self.data.len() >= 256 << 10 {
                set(49, 47, 7);
                set(73, 62, (self.data.len() as u128 >> 18) - 1);
            } else {
                set(73, 62, (self.data.len() as u128 >> 11) - 1);
            }
        }
        csd
    }
}

#[derive(Default)]
pub struct Faults {
    /// The card answers no command at all.
    pub mute: bool,
    /// Reading this sector ends in a data CRC error.
    pub crc_at: Option<u64>,
    /// Data transfers start but never finish.
    pub stall: bool,
}

pub struct Model {
    pub card: Option<Card>,
    pub faults: Faults,
    pub caps: u32,
    pub version: u32,
    now: Cell<u64>,
    status: u32,
    enable: u32,
    pub signal: u32,
    host: u32,
    clock: u32,
    block: u32,
    arg: u32,
    mode: u32,
    resp: [u32; 4],
    /// The transfer under way: (next byte address, blocks left, read, buffer, position).
    xfer: Option<Xfer>,
    /// Every command index issued, in order.
    pub log: Vec<u8>,
    /// Times the driver slept waiting for an interrupt.
    pub waits: Cell<u32>,
}

struct Xfer {
    address: usize,
    blocks: u32,
    read: bool,
    buf: Vec<u8>,
    pos: usize,
}

impl Model {
    pub fn new(card: Option<Card>) -> Model {
        Model {
            card,
            faults: Faults::default(),
            // QEMU raspi4b's: 52 MHz base, high speed, 3.3 V and 1.8 V, no DMA.
            caps: 0x0521_34b4,
            version: 2 << 16,
            now: Cell::new(0),
            status: 0,
            enable: 0,
            signal: 0,
            host: 0,
            clock: 0,
            block: 0,
            arg: 0,
            mode: 0,
            resp: [0; 4],
            xfer: None,
            log: Vec::new(),
            waits: Cell::new(0),
        }
    }

    fn raise(&mut self, bits: u32) {
        self.status |= bits & self.enable;
    }

    fn command(&mut self, cmd: u32) {
        if self.clock & CLK_CARD_ON == 0 {
            return; // As in QEMU: no command goes out without the card clock.
        }
        let index = (cmd >> CMD_INDEX_SHIFT) as u8 & 0x3f;
        self.log.push(index);
        self.resp = [0; 4];
        let arg = self.arg;
        let answer = match (&mut self.card, self.faults.mute) {
            (Some(card), false) => Self::card_command(card, index, arg),
            _ => None,
        };
        let Some(answer) = answer else {
            // As in QEMU: a command that expects no response completes
            // whoever listens.
            if cmd & CMD_RESP_48_BUSY == CMD_RESP_NONE {
                self.raise(INT_CMD_COMPLETE);
            } else {
                self.raise(ERR_CMD_TIMEOUT);
            }
            return;
        };
        match answer {
            Answer::R48(r) => self.resp[0] = r,
            Answer::R136(reg) => {
                let v = reg >> 8;
                self.resp = [v as u32, (v >> 32) as u32, (v >> 64) as u32, (v >> 96) as u32];
            }
        }
        self.raise(INT_CMD_COMPLETE);
        let kind = cmd & CMD_RESP_48_BUSY;
        if kind == CMD_RESP_48_BUSY && cmd & CMD_DATA == 0 {
            self.raise(INT_TRANSFER_COMPLETE);
        }
        if cmd & CMD_DATA != 0 {
            let card = self.card.as_ref().unwrap();
            let unit = if card.high_capacity { 512 } else { 1 };
            let blocks = if self.mode & TM_MULTI != 0 { self.block >> 16 } else { 1 };
            self.xfer = Some(Xfer {
                address: arg as usize * unit,
                blocks,
                read: self.mode & TM_READ != 0,
                buf: Vec::new(),
                pos: 0,
            });
            self.next_block();
        }
    }

    fn next_block(&mut self) {
        if self.faults.stall {
            return;
        }
        let x = self.xfer.as_mut().unwrap();
        if x.blocks == 0 {
            self.xfer = None;
            self.raise(INT_TRANSFER_COMPLETE);
            return;
        }
        x.pos = 0;
        if x.read {
            if self.faults.crc_at == Some(x.address as u64 / 512) {
                self.xfer = None;
                self.raise(ERR_DATA_CRC);
                return;
            }
            let data = &self.card.as_ref().unwrap().data;
            x.buf = data[x.address..x.address + 512].to_vec();
            self.raise(INT_READ_READY);
        } else {
            x.buf = vec![0; 512];
            self.raise(INT_WRITE_READY);
        }
    }

    fn card_command(card: &mut Card, index: u8, arg: u32) -> Option<Answer> {
        let app = std::mem::take(&mut card.app);
        let r1 = |state: State| Answer::R48((state as u32) << 9);
        match (app, index, card.state) {
            (_, 0, _) => {
                card.state = State::Idle;
                Some(Answer::R48(0))
            }
            (false, 8, State::Idle) => Some(Answer::R48(arg & 0xfff)),
            (_, 55, _) => {
                card.app = true;
                Some(r1(card.state))
            }
            (true, 41, State::Idle) => {
                if card.busy_polls > 0 {
                    card.busy_polls -= 1;
                    return Some(Answer::R48(0x00ff_8000));
                }
                card.state = State::Ready;
                let hcs = if card.high_capacity && arg & (1 << 30) != 0 {
                    1 << 30
                } else {
                    0
                };
                Some(Answer::R48(1 << 31 | hcs | 0x00ff_8000))
            }
            (false, 2, State::Ready) => {
                card.state = State::Ident;
                let mut cid = 0xaa_u128 << 120;
                for (i, c) in b"MODEL".iter().enumerate() {
                    cid |= (*c as u128) << (96 - 8 * i);
                }
                Some(Answer::R136(cid))
            }
            (false, 3, State::Ident) => {
                card.state = State::Standby;
                Some(Answer::R48(0x1234 << 16))
            }
            (false, 9, State::Standby) if arg >> 16 == 0x1234 => Some(Answer::R136(card.csd())),
            (false, 7, State::Standby) if arg >> 16 == 0x1234 => {
                card.state = State::Transfer;
                Some(r1(State::Standby))
            }
            (true, 6, State::Transfer) => {
                card.bus_width_4 = arg == 2;
                Some(r1(State::Transfer))
            }
            (false, 16, State::Transfer) if !card.high_capacity => {
                card.block_len = arg;
                Some(r1(State::Transfer))
            }
            (false, 12 | 13, State::Transfer) => Some(r1(State::Transfer)),
            (false, 17 | 18 | 24 | 25, State::Transfer) => {
                let unit = if card.high_capacity { 512 } else { 1 };
                let end = arg as usize * unit + 512;
                if end > card.data.len() || (unit == 1 && !arg.is_multiple_of(512)) {
                    Some(Answer::R48(1 << 31 | 9 << 9)) // OUT_OF_RANGE
                } else if (index == 24 || index == 25) && card.read_only {
                    Some(Answer::R48(1 << 26 | 9 << 9)) // WP_VIOLATION
                } else {
                    Some(r1(State::Transfer))
                }
            }
            _ => None,
        }
    }
}

enum Answer {
    R48(u32),
    R136(u128),
}

impl Bus for Model {
    fn read(&mut self, offset: usize) -> u32 {
        match offset {
            RESPONSE => self.resp[0],
            o if o == RESPONSE + 4 => self.resp[1],
            o if o == RESPONSE + 8 => self.resp[2],
            o if o == RESPONSE + 12 => self.resp[3],
            BUFFER => self.read_buffer(),
            PRESENT_STATE => {
                let mut s = 0;
                if let Some(card) = &self.card {
                    s |= PS_CARD_INSERTED;
                    if !card.read_only {
                        s |= PS_WRITE_ENABLED;
                    }
                }
                if self.xfer.is_some() {
                    s |= PS_DATA_INHIBIT;
                }
                s
            }
            HOST_CONTROL => self.host,
            CLOCK => self.clock,
            INT_STATUS => {
                let mut s = self.status;
                if s & ERR_ALL != 0 {
                    s |= INT_ERROR;
                }
                s
            }
            INT_ENABLE => self.enable,
            INT_SIGNAL => self.signal,
            CAPABILITIES => self.caps,
            VERSION => self.version,
            BLOCK => self.block,
            _ => 0,
        }
    }

    fn write(&mut self, offset: usize, value: u32) {
        match offset {
            BLOCK => self.block = value,
            ARGUMENT => self.arg = value,
            COMMAND => {
                self.mode = value & 0xffff;
                self.command(value);
            }
            BUFFER => {
                let Some(x) = self.xfer.as_mut() else { return };
                if x.read || x.pos >= 512 {
                    return;
                }
                x.buf[x.pos..x.pos + 4].copy_from_slice(&value.to_le_bytes());
                x.pos += 4;
                if x.pos == 512 {
                    let (address, buf) = (x.address, std::mem::take(&mut x.buf));
                    self.card.as_mut().unwrap().data[address..address + 512].copy_from_slice(&buf);
                    let x = self.xfer.as_mut().unwrap();
                    x.address += 512;
                    x.blocks -= 1;
                    self.next_block();
                }
            }
            HOST_CONTROL => self.host = value,
            CLOCK => {
                if value & RESET_ALL != 0 {
                    let (caps, version) = (self.caps, self.version);
                    let card = self.card.take();
                    let faults = std::mem::take(&mut self.faults);
                    let log = std::mem::take(&mut self.log);
                    let now = self.now.get();
                    *self = Model::new(card);
                    (self.caps, self.version, self.faults, self.log) = (caps, version, faults, log);
                    self.now.set(now);
                    return;
                }
                if value & (RESET_CMD | RESET_DATA) != 0 {
                    self.xfer = None;
                }
                self.clock = value & 0xffff & !CLK_INTERNAL_STABLE;
                if self.clock & CLK_INTERNAL_ON != 0 {
                    self.clock |= CLK_INTERNAL_STABLE;
                }
            }
            INT_STATUS => self.status &= !value,
            INT_ENABLE => {
                self.enable = value;
                self.status &= value;
            }
            INT_SIGNAL => self.signal = value,
            _ => {}
        }
    }

    fn wait(&mut self, us: u64) {
        self.waits.set(self.waits.get() + 1);
        // Nothing happens by itself in the model: a wait lasts its timeout
        // unless a signalled bit is already set.
        if self.status & self.signal == 0 {
            self.now.set(self.now.get() + us);
        }
    }

    fn delay(&mut self, us: u64) {
        self.now.set(self.now.get() + us);
    }

    fn now_us(&self) -> u64 {
        self.now.get()
    }
}

impl Model {
    /// Takes the card out of the slot (as QEMU does: the card clock stops,
    /// and the removal shows in the interrupt status).
    pub fn pull_card(&mut self) {
        self.card = None;
        self.xfer = None;
        self.clock &= !CLK_CARD_ON;
        self.raise(INT_CARD_REMOVE);
    }

    /// The buffer port: each read takes the next word of the block.
    fn read_buffer(&mut self) -> u32 {
        let Some(x) = self.xfer.as_mut() else { return 0 };
        if !x.read || x.pos >= 512 {
            return 0;
        }
        let w = u32::from_le_bytes(x.buf[x.pos..x.pos + 4].try_into().unwrap());
        x.pos += 4;
        if x.pos == 512 {
            x.address += 512;
            x.blocks -= 1;
            self.next_block();
        }
        w
    }
}
