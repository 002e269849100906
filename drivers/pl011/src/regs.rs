//! The PL011's registers as a tock-registers block (ARM DDI 0183G, 3.2),
//! for drivers that map the UART as a typed register block.

use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_bitfields![u32,
    /// Data: a received byte with its error flags, or a byte to send.
    pub DR [
        DATA OFFSET(0) NUMBITS(8) [],
        FE OFFSET(8) NUMBITS(1) [],
        PE OFFSET(9) NUMBITS(1) [],
        BE OFFSET(10) NUMBITS(1) [],
        OE OFFSET(11) NUMBITS(1) []
    ],
    /// Flags.
    pub FR [
        CTS OFFSET(0) NUMBITS(1) [],
        BUSY OFFSET(3) NUMBITS(1) [],
        RXFE OFFSET(4) NUMBITS(1) [],
        TXFF OFFSET(5) NUMBITS(1) [],
        RXFF OFFSET(6) NUMBITS(1) [],
        TXFE OFFSET(7) NUMBITS(1) []
    ],
    /// Line control.
    pub LCR_H [
        BRK OFFSET(0) NUMBITS(1) [],
        PEN OFFSET(1) NUMBITS(1) [],
        EPS OFFSET(2) NUMBITS(1) [],
        STP2 OFFSET(3) NUMBITS(1) [],
        FEN OFFSET(4) NUMBITS(1) [],
        WLEN OFFSET(5) NUMBITS(2) [Five = 0, Six = 1, Seven = 2, Eight = 3],
        SPS OFFSET(7) NUMBITS(1) []
    ],
    /// Control.
    pub CR [
        UARTEN OFFSET(0) NUMBITS(1) [],
        LBE OFFSET(7) NUMBITS(1) [],
        TXE OFFSET(8) NUMBITS(1) [],
        RXE OFFSET(9) NUMBITS(1) [],
        RTS OFFSET(11) NUMBITS(1) [],
        RTSEN OFFSET(14) NUMBITS(1) [],
        CTSEN OFFSET(15) NUMBITS(1) []
    ],
    /// FIFO interrupt levels.
    pub IFLS [
        TXIFLSEL OFFSET(0) NUMBITS(3) [],
        RXIFLSEL OFFSET(3) NUMBITS(3) [
            OneEighth = 0,
            OneQuarter = 1,
            OneHalf = 2,
            ThreeQuarters = 3,
            SevenEighths = 4
        ]
    ],
    /// Interrupt bits, as in IMSC, RIS, MIS and ICR.
    pub INT [
        RX OFFSET(4) NUMBITS(1) [],
        TX OFFSET(5) NUMBITS(1) [],
        /// Receive timeout: bytes wait in the FIFO below the RX level.
        RT OFFSET(6) NUMBITS(1) [],
        FE OFFSET(7) NUMBITS(1) [],
        PE OFFSET(8) NUMBITS(1) [],
        BE OFFSET(9) NUMBITS(1) [],
        OE OFFSET(10) NUMBITS(1) [],
        ALL OFFSET(0) NUMBITS(11) []
    ]
];

register_structs! {
    pub Pl011Registers {
        (0x000 => pub dr: ReadWrite<u32, DR::Register>),
        (0x004 => pub rsr_ecr: ReadWrite<u32>),
        (0x008 => _reserved0),
        (0x018 => pub fr: ReadOnly<u32, FR::Register>),
        (0x01c => _reserved1),
        (0x020 => pub ilpr: ReadWrite<u32>),
        (0x024 => pub ibrd: ReadWrite<u32>),
        (0x028 => pub fbrd: ReadWrite<u32>),
        (0x02c => pub lcr_h: ReadWrite<u32, LCR_H::Register>),
        (0x030 => pub cr: ReadWrite<u32, CR::Register>),
        (0x034 => pub ifls: ReadWrite<u32, IFLS::Register>),
        (0x038 => pub imsc: ReadWrite<u32, INT::Register>),
        (0x03c => pub ris: ReadOnly<u32, INT::Register>),
        (0x040 => pub mis: ReadOnly<u32, INT::Register>),
        (0x044 => pub icr: WriteOnly<u32, INT::Register>),
        (0x048 => pub dmacr: ReadWrite<u32>),
        (0x04c => @END),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    /// The typed block and the kernel's offsets describe the same device.
    #[test]
    fn layout_matches_the_raw_offsets() {
        use crate::*;
        assert_eq!(offset_of!(Pl011Registers, dr), DR);
        assert_eq!(offset_of!(Pl011Registers, fr), FR);
        assert_eq!(offset_of!(Pl011Registers, ibrd), IBRD);
        assert_eq!(offset_of!(Pl011Registers, fbrd), FBRD);
        assert_eq!(offset_of!(Pl011Registers, lcr_h), LCR_H);
        assert_eq!(offset_of!(Pl011Registers, cr), CR);
        assert_eq!(offset_of!(Pl011Registers, imsc), IMSC);
        assert_eq!(offset_of!(Pl011Registers, icr), ICR);
        assert_eq!(FR::RXFE.mask << FR::RXFE.shift, FR_RXFE);
        assert_eq!(FR::TXFF.mask << FR::TXFF.shift, FR_TXFF);
        assert_eq!(FR::BUSY.mask << FR::BUSY.shift, FR_BUSY);
        assert_eq!(CR::UARTEN.mask << CR::UARTEN.shift, CR_UARTEN);
        assert_eq!(CR::RXE.mask << CR::RXE.shift, CR_RXE);
        assert_eq!(CR::TXE.mask << CR::TXE.shift, CR_TXE);
        assert_eq!(LCR_H::FEN.mask << LCR_H::FEN.shift, LCR_FEN);
        assert_eq!(LCR_H::WLEN::Eight.value, LCR_WLEN_8);
    }
}
