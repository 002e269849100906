//! The SD Host Controller's registers (SD Host Controller Simplified
//! Specification 3.00, chapter 2), as 32-bit words: the BCM2835/BCM2711
//! controllers need 32-bit accesses, so 8- and 16-bit registers are
//! written through the word that holds them.

use driverkit::tock_registers::register_structs;
use driverkit::tock_registers::registers::ReadWrite;

register_structs! {
    /// The register block, 0x100 bytes, word by word (offset / 4).
    pub SdhciRegisters {
        (0x000 => pub words: [ReadWrite<u32>; 64]),
        (0x100 => @END),
    }
}

/// SDMA system address (and argument 2).
pub const SDMA_ADDRESS: usize = 0x00;
/// Block size (bits 11:0), SDMA buffer boundary (14:12); block count (31:16).
pub const BLOCK: usize = 0x04;
pub const ARGUMENT: usize = 0x08;
/// Transfer mode (15:0) and command (31:16); writing the command's upper
/// byte issues it.
pub const COMMAND: usize = 0x0c;
pub const RESPONSE: usize = 0x10;
/// The data port (PIO).
pub const BUFFER: usize = 0x20;
pub const PRESENT_STATE: usize = 0x24;
/// Host control 1 (7:0), power control (15:8), block gap (23:16), wake-up (31:24).
pub const HOST_CONTROL: usize = 0x28;
/// Clock control (15:0), timeout control (23:16), software reset (31:24).
pub const CLOCK: usize = 0x2c;
/// Normal (15:0) and error (31:16) interrupt status: write 1 to clear.
pub const INT_STATUS: usize = 0x30;
/// Which interrupts show in the status register.
pub const INT_ENABLE: usize = 0x34;
/// Which status bits raise the interrupt line.
pub const INT_SIGNAL: usize = 0x38;
pub const CAPABILITIES: usize = 0x40;
/// ADMA error status.
pub const ADMA_ERROR: usize = 0x54;
/// ADMA descriptor table address (low word).
pub const ADMA_ADDRESS: usize = 0x58;
/// Slot interrupt status (15:0), host controller version (31:16).
pub const VERSION: usize = 0xfc;

// Transfer mode (COMMAND bits 15:0).
pub const TM_DMA: u32 = 1 << 0;
pub const TM_BLOCK_COUNT: u32 = 1 << 1;
pub const TM_AUTO_CMD12: u32 = 1 << 2;
pub const TM_READ: u32 = 1 << 4;
pub const TM_MULTI: u32 = 1 << 5;

// Command (COMMAND bits 31:16, here already shifted).
pub const CMD_RESP_NONE: u32 = 0 << 16;
pub const CMD_RESP_136: u32 = 1 << 16;
pub const CMD_RESP_48: u32 = 2 << 16;
pub const CMD_RESP_48_BUSY: u32 = 3 << 16;
pub const CMD_CRC_CHECK: u32 = 1 << 19;
pub const CMD_INDEX_CHECK: u32 = 1 << 20;
pub const CMD_DATA: u32 = 1 << 21;
pub const CMD_INDEX_SHIFT: u32 = 24;

// Present state.
pub const PS_CMD_INHIBIT: u32 = 1 << 0;
pub const PS_DATA_INHIBIT: u32 = 1 << 1;
pub const PS_CARD_INSERTED: u32 = 1 << 16;
/// Write-protect switch: 1 = writable.
pub const PS_WRITE_ENABLED: u32 = 1 << 19;

// Host control 1 (HOST_CONTROL bits 7:0).
pub const HC_DATA_4BIT: u32 = 1 << 1;
/// DMA select (bits 4:3): 0 SDMA, 2 ADMA2 (32-bit).
pub const HC_DMA_MASK: u32 = 3 << 3;
pub const HC_DMA_ADMA2: u32 = 2 << 3;
// Power control (HOST_CONTROL bits 15:8).
pub const PWR_ON: u32 = 1 << 8;
pub const PWR_3V3: u32 = 7 << 9;

// Clock control (CLOCK bits 15:0).
pub const CLK_INTERNAL_ON: u32 = 1 << 0;
pub const CLK_INTERNAL_STABLE: u32 = 1 << 1;
pub const CLK_CARD_ON: u32 = 1 << 2;
/// Timeout control (CLOCK bits 19:16): the longest data timeout.
pub const TIMEOUT_MAX: u32 = 0xe << 16;
// Software reset (CLOCK bits 31:24).
pub const RESET_ALL: u32 = 1 << 24;
pub const RESET_CMD: u32 = 1 << 25;
pub const RESET_DATA: u32 = 1 << 26;

// Interrupt status / enable / signal.
pub const INT_CMD_COMPLETE: u32 = 1 << 0;
pub const INT_TRANSFER_COMPLETE: u32 = 1 << 1;
pub const INT_DMA: u32 = 1 << 3;
pub const INT_WRITE_READY: u32 = 1 << 4;
pub const INT_READ_READY: u32 = 1 << 5;
pub const INT_CARD_INSERT: u32 = 1 << 6;
pub const INT_CARD_REMOVE: u32 = 1 << 7;
/// Any error (the error bits are in 31:16).
pub const INT_ERROR: u32 = 1 << 15;
pub const ERR_CMD_TIMEOUT: u32 = 1 << 16;
pub const ERR_CMD_CRC: u32 = 1 << 17;
pub const ERR_CMD_END_BIT: u32 = 1 << 18;
pub const ERR_CMD_INDEX: u32 = 1 << 19;
pub const ERR_DATA_TIMEOUT: u32 = 1 << 20;
pub const ERR_DATA_CRC: u32 = 1 << 21;
pub const ERR_DATA_END_BIT: u32 = 1 << 22;
pub const ERR_AUTO_CMD12: u32 = 1 << 24;
pub const ERR_ADMA: u32 = 1 << 25;
pub const ERR_ALL: u32 = 0xffff << 16;
/// Everything the driver enables in the status register.
pub const INT_ALL: u32 = INT_CMD_COMPLETE
    | INT_TRANSFER_COMPLETE
    | INT_DMA
    | INT_WRITE_READY
    | INT_READ_READY
    | INT_CARD_INSERT
    | INT_CARD_REMOVE
    | ERR_ALL;

// Capabilities.
pub const CAP_BASE_CLOCK_SHIFT: u32 = 8;
pub const CAP_ADMA2: u32 = 1 << 19;
pub const CAP_SDMA: u32 = 1 << 22;
pub const CAP_3V3: u32 = 1 << 24;

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn block_is_the_spec_layout() {
        assert_eq!(size_of::<SdhciRegisters>(), 0x100);
        assert_eq!(offset_of!(SdhciRegisters, words), 0);
        // Every register the driver names is a word inside the block.
        for off in [
            SDMA_ADDRESS,
            BLOCK,
            ARGUMENT,
            COMMAND,
            RESPONSE,
            BUFFER,
            PRESENT_STATE,
            HOST_CONTROL,
            CLOCK,
            INT_STATUS,
            INT_ENABLE,
            INT_SIGNAL,
            CAPABILITIES,
            ADMA_ERROR,
            ADMA_ADDRESS,
            VERSION,
        ] {
            assert!(off % 4 == 0 && off < 0x100, "{off:#x}");
        }
    }
}
