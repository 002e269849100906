//! The SD memory card side (SD Physical Layer Simplified Specification
//! 6.00): commands with their response kinds, and the pure decoding of
//! what the card answers (OCR, CSD, CID) and of the clock divider.

use crate::regs::*;

/// One SD command: its index and how the controller checks the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    pub index: u8,
    /// Response and check bits of the command register (already shifted).
    pub flags: u32,
}

const R1: u32 = CMD_RESP_48 | CMD_CRC_CHECK | CMD_INDEX_CHECK;
const R1B: u32 = CMD_RESP_48_BUSY | CMD_CRC_CHECK | CMD_INDEX_CHECK;
const R2: u32 = CMD_RESP_136 | CMD_CRC_CHECK;
const R3: u32 = CMD_RESP_48;
const R6: u32 = R1;
const R7: u32 = R1;

pub const GO_IDLE: Command = Command {
    index: 0,
    flags: CMD_RESP_NONE,
};
pub const ALL_SEND_CID: Command = Command { index: 2, flags: R2 };
pub const SEND_RELATIVE_ADDR: Command = Command { index: 3, flags: R6 };
pub const SELECT_CARD: Command = Command { index: 7, flags: R1B };
pub const SEND_IF_COND: Command = Command { index: 8, flags: R7 };
pub const SEND_CSD: Command = Command { index: 9, flags: R2 };
pub const STOP_TRANSMISSION: Command = Command { index: 12, flags: R1B };
pub const SEND_STATUS: Command = Command { index: 13, flags: R1 };
pub const SET_BLOCKLEN: Command = Command { index: 16, flags: R1 };
pub const READ_SINGLE: Command = Command {
    index: 17,
    flags: R1 | CMD_DATA,
};
pub const READ_MULTIPLE: Command = Command {
    index: 18,
    flags: R1 | CMD_DATA,
};
pub const WRITE_SINGLE: Command = Command {
    index: 24,
    flags: R1 | CMD_DATA,
};
pub const WRITE_MULTIPLE: Command = Command {
    index: 25,
    flags: R1 | CMD_DATA,
};
pub const APP_CMD: Command = Command { index: 55, flags: R1 };
/// ACMD6: bus width (after APP_CMD).
pub const SET_BUS_WIDTH: Command = Command { index: 6, flags: R1 };
/// ACMD41: operating conditions (after APP_CMD).
pub const SD_SEND_OP_COND: Command = Command { index: 41, flags: R3 };

impl Command {
    /// The upper half of the command register for it.
    pub fn register(self) -> u32 {
        ((self.index as u32) << CMD_INDEX_SHIFT) | self.flags
    }
}

/// CMD8's argument: 2.7-3.6 V and the check pattern 0xaa.
pub const IF_COND_ARG: u32 = 0x1aa;
/// ACMD41: the card is ready (the busy bit is clear).
pub const OCR_READY: u32 = 1 << 31;
/// ACMD41: host supports / card is high capacity (block addressed).
pub const OCR_HCS: u32 = 1 << 30;
/// ACMD41: the voltage window, 2.7-3.6 V.
pub const OCR_VOLTAGES: u32 = 0x00ff_8000;
/// R1 card status: any error bit (31:19, and 13 ERASE_RESET excluded).
pub const R1_ERRORS: u32 = 0xfff9_0000;

/// The card's capacity in 512-byte sectors from its CSD, as the host
/// controller stores a 136-bit response: CRC stripped, `resp[0]` holding
/// CSD bits 39:8 ... `resp[3]` bits 127:104 in its low 24 bits.
/// `None` for a CSD structure this driver does not know (SDUC).
pub fn csd_sectors(resp: [u32; 4]) -> Option<u64> {
    // CSD bit n is bit n - 8 of the 120-bit value resp[3]:resp[2]:resp[1]:resp[0].
    let bits = |hi: u32, lo: u32| -> u64 {
        let value = (resp[3] as u128) << 96 | (resp[2] as u128) << 64 | (resp[1] as u128) << 32 | resp[0] as u128;
        let width = hi - lo + 1;
        ((value >> (lo - 8)) & ((1u128 << width) - 1)) as u64
    };
    match bits(127, 126) {
        // Standard capacity: (C_SIZE + 1) << (C_SIZE_MULT + 2 + READ_BL_LEN) bytes.
        0 => {
            let c_size = bits(73, 62);
            let mult = bits(49, 47);
            let read_bl_len = bits(83, 80);
            if !(9..=11).contains(&read_bl_len) {
                return None;
            }
            Some(((c_size + 1) << (mult + 2 + read_bl_len)) / 512)
        }
        // High / extended capacity: (C_SIZE + 1) * 512 KiB.
        1 => Some((bits(69, 48) + 1) * 1024),
        _ => None,
    }
}

/// The product name (5 ASCII characters) and manufacturer ID from a CID
/// in the host controller's 136-bit response layout (see [`csd_sectors`]).
pub fn cid_name(resp: [u32; 4]) -> ([u8; 5], u8) {
    let value = (resp[3] as u128) << 96 | (resp[2] as u128) << 64 | (resp[1] as u128) << 32 | resp[0] as u128;
    // PNM is CID bits 103:64, MID bits 127:120.
    let mut name = [0u8; 5];
    for (i, b) in name.iter_mut().enumerate() {
        let c = (value >> (103 - 8 - 7 - 8 * i as u32)) as u8;
        *b = if c.is_ascii_graphic() || c == b' ' { c } else { b'?' };
    }
    (name, (value >> (127 - 8 - 7)) as u8)
}

/// The clock control bits (divider and internal clock on) for an SD
/// clock of at most `target_hz` from a base clock of `base_hz`, and the
/// clock that gives. Version 3 controllers (`v3`) divide by 2N (N of 10
/// bits, 0 = undivided); older ones by a power of two up to 256.
pub fn clock_divider(base_hz: u32, target_hz: u32, v3: bool) -> (u32, u32) {
    let target = target_hz.max(1);
    if v3 {
        let n = if base_hz <= target {
            0
        } else {
            base_hz.div_ceil(2 * target).min(0x3ff)
        };
        let hz = if n == 0 { base_hz } else { base_hz / (2 * n) };
        (((n & 0xff) << 8) | ((n >> 8) << 6) | CLK_INTERNAL_ON, hz)
    } else {
        let mut d = 1u32;
        while d < 256 && base_hz / d > target {
            d *= 2;
        }
        // The register holds the divisor / 2 (0 = undivided).
        ((d / 2) << 8 | CLK_INTERNAL_ON, base_hz / d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 128-bit register (bit 127 first) as the host controller stores
    /// it: shifted right by 8 (CRC dropped), in four words.
    pub fn as_response(reg: u128) -> [u32; 4] {
        let v = reg >> 8;
        [v as u32, (v >> 32) as u32, (v >> 64) as u32, (v >> 96) as u32]
    }

    fn set(reg: &mut u128, hi: u32, lo: u32, value: u128) {
        let width = hi - lo + 1;
        *reg &= !(((1u128 << width) - 1) << lo);
        *reg |= (value & ((1u128 << width) - 1)) << lo;
    }

    #[test]
    fn csd_version_1_capacity() {
        // 1 MiB: READ_BL_LEN 9, C_SIZE_MULT 0 (x4), C_SIZE 511.
        let mut csd = 0u128;
        set(&mut csd, 83, 80, 9);
        set(&mut csd, 49, 47, 0);
        set(&mut csd, 73, 62, 511);
        assert_eq!(csd_sectors(as_response(csd)), Some(2048));
        // 2 GiB: READ_BL_LEN 10, C_SIZE_MULT 7, C_SIZE 4095.
        set(&mut csd, 83, 80, 10);
        set(&mut csd, 49, 47, 7);
        set(&mut csd, 73, 62, 4095);
        assert_eq!(csd_sectors(as_response(csd)), Some(4 << 20));
        set(&mut csd, 83, 80, 4);
        assert_eq!(csd_sectors(as_response(csd)), None, "block length 16 is not SD");
    }

    #[test]
    fn csd_version_2_capacity() {
        let mut csd = 0u128;
        set(&mut csd, 127, 126, 1);
        // 4 GiB = 8192 units of 512 KiB.
        set(&mut csd, 69, 48, 8191);
        assert_eq!(csd_sectors(as_response(csd)), Some(8 << 20));
        set(&mut csd, 127, 126, 2);
        assert_eq!(csd_sectors(as_response(csd)), None, "SDUC is not supported");
    }

    #[test]
    fn cid_product_name() {
        let mut cid = 0u128;
        set(&mut cid, 127, 120, 0xaa);
        for (i, c) in b"QEMU!".iter().enumerate() {
            let hi = 103 - 8 * i as u32;
            set(&mut cid, hi, hi - 7, *c as u128);
        }
        assert_eq!(cid_name(as_response(cid)), (*b"QEMU!", 0xaa));
        set(&mut cid, 103, 96, 0x07);
        assert_eq!(cid_name(as_response(cid)).0, *b"?EMU!");
    }

    #[test]
    fn dividers_never_exceed_the_target() {
        for base in [
            25_000_000,
            41_666_666,
            52_000_000,
            100_000_000,
            200_000_000,
            250_000_000,
        ] {
            for target in [400_000, 25_000_000, 50_000_000] {
                for v3 in [false, true] {
                    let (bits, hz) = clock_divider(base, target, v3);
                    assert!(hz <= target || (!v3 && hz == base / 256), "{base} {target} {v3}: {hz}");
                    assert_ne!(bits & CLK_INTERNAL_ON, 0);
                    assert_eq!(bits & CLK_CARD_ON, 0, "the card clock is turned on separately");
                }
            }
        }
        // v3: 10-bit N, upper bits in 7:6.
        assert_eq!(clock_divider(100_000_000, 400_000, true), ((125 << 8) | 1, 400_000));
        assert_eq!(
            clock_divider(250_000_000, 400_000, true).0,
            (0x39 << 8) | (1 << 6) | 1,
            "N = 0x139"
        );
        assert_eq!(clock_divider(52_000_000, 52_000_000, true), (1, 52_000_000));
        // v2: a power of two.
        assert_eq!(clock_divider(52_000_000, 400_000, false), (128 << 8 | 1, 203_125));
    }
}
