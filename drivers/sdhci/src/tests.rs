//! The controller sequence against the register model (`model`).

use crate::host::{Bus, SdError, Sdhci};
use crate::model::{Card, Model};
use crate::regs::*;

const MIB: usize = 1 << 20;

fn host(card: Option<Card>) -> Sdhci<Model> {
    Sdhci::new(Model::new(card), None)
}

#[test]
fn identifies_a_standard_capacity_card() {
    let mut h = host(Some(Card::new(MIB, false)));
    let info = h.init().expect("init");
    assert_eq!(info.sectors, 2048);
    assert!(!info.high_capacity && !info.read_only);
    assert_eq!((info.rca, &info.name, info.manufacturer), (0x1234, b"MODEL", 0xaa));
    // 52 MHz base (QEMU's capabilities), divided by 2N = 4 to stay <= 25 MHz.
    assert_eq!(info.clock_hz, 13_000_000);
    let card = h.bus.card.as_ref().unwrap();
    assert!(card.bus_width_4, "ACMD6 asked for 4 bits");
    assert_eq!(card.block_len, 512, "CMD16 set 512-byte blocks");
    assert_ne!(h.bus.read(HOST_CONTROL) & HC_DATA_4BIT, 0);
    assert_ne!(h.bus.read(HOST_CONTROL) & PWR_ON, 0);
    // CMD0, CMD8, ACMD41 until ready (the card is busy twice), CID, RCA,
    // CSD, select, bus width, block length.
    assert_eq!(h.bus.log, [0, 8, 55, 41, 55, 41, 55, 41, 2, 3, 9, 7, 55, 6, 16]);
}

#[test]
fn identifies_a_high_capacity_card() {
    let mut h = host(Some(Card::new(2 * MIB, true)));
    let info = h.init().expect("init");
    assert!(info.high_capacity);
    assert_eq!(info.sectors, 4096);
    assert!(!h.bus.log.contains(&16), "no CMD16 for block-addressed cards");
}

#[test]
fn reads_and_writes_single_and_multiple_blocks() {
    for hc in [false, true] {
        let mut h = host(Some(Card::new(MIB, hc)));
        h.init().unwrap();
        let mut buf = vec![0u8; 512];
        h.read(5, &mut buf).unwrap();
        assert_eq!(buf, h.bus.card.as_ref().unwrap().data[5 * 512..6 * 512]);
        let mut big = vec![0u8; 128 * 512];
        h.read(2048 - 128, &mut big).unwrap();
        assert_eq!(big, h.bus.card.as_ref().unwrap().data[(2048 - 128) * 512..]);
        let pattern: Vec<u8> = (0..16 * 512).map(|i| (i / 512 + i * 13) as u8).collect();
        h.write(100, &pattern).unwrap();
        h.write(2047, &pattern[..512]).unwrap();
        let data = &h.bus.card.as_ref().unwrap().data;
        assert_eq!(data[100 * 512..116 * 512], pattern[..]);
        assert_eq!(data[2047 * 512..], pattern[..512]);
        let mut back = vec![0u8; 16 * 512];
        h.read(100, &mut back).unwrap();
        assert_eq!(back, pattern);
        let n = h.bus.log.len();
        assert_eq!(h.bus.log[n - 5..], [17, 18, 25, 24, 18], "hc {hc}");
    }
}

#[test]
fn multi_block_transfers_stop_with_auto_cmd12() {
    let mut h = host(Some(Card::new(MIB, true)));
    h.init().unwrap();
    let mut buf = vec![0u8; 4 * 512];
    h.read(0, &mut buf).unwrap();
    assert_eq!(h.bus.read(BLOCK), 4 << 16 | 512);
}

#[test]
fn an_empty_slot_is_no_card() {
    let mut h = host(None);
    assert_eq!(h.init(), Err(SdError::NoCard));
    assert!(!h.card_detected());
    // Requests without a card fail at once.
    assert_eq!(h.read(0, &mut [0; 512]), Err(SdError::NoCard));
    // A card that answers nothing is no card either, found within the
    // command timeouts (a few seconds of model time), not a hang.
    let mut m = Model::new(Some(Card::new(MIB, false)));
    m.faults.mute = true;
    let mut h = Sdhci::new(m, None);
    assert_eq!(h.init(), Err(SdError::NoCard));
    assert!(h.bus.now_us() < 10_000_000, "{} us", h.bus.now_us());
}

#[test]
fn a_crc_error_fails_that_request_only() {
    let mut h = host(Some(Card::new(MIB, false)));
    h.init().unwrap();
    h.bus.faults.crc_at = Some(9);
    let mut buf = vec![0u8; 16 * 512];
    assert_eq!(h.read(0, &mut buf), Err(SdError::Crc));
    assert_eq!(h.read(9, &mut buf[..512]), Err(SdError::Crc));
    // The controller and card recover: other sectors read fine.
    h.read(10, &mut buf[..512]).unwrap();
    assert_eq!(buf[..512], h.bus.card.as_ref().unwrap().data[10 * 512..11 * 512]);
    h.bus.faults.crc_at = None;
    h.read(0, &mut buf).unwrap();
}

#[test]
fn a_stalled_transfer_times_out_and_the_next_one_works() {
    let mut h = host(Some(Card::new(MIB, false)));
    h.init().unwrap();
    h.bus.faults.stall = true;
    let start = h.bus.now_us();
    assert_eq!(h.read(0, &mut [0; 1024]), Err(SdError::Timeout));
    assert_eq!(h.write(0, &[0; 512]), Err(SdError::Timeout));
    let took = h.bus.now_us() - start;
    assert!(took < 10_000_000, "gave up after {took} us");
    assert!(h.bus.waits.get() > 0, "waited on the interrupt, not spinning");
    h.bus.faults.stall = false;
    h.write(0, &[0x5a; 512]).unwrap();
    let mut back = [0u8; 512];
    h.read(0, &mut back).unwrap();
    assert!(back.iter().all(|b| *b == 0x5a));
}

#[test]
fn bad_requests_and_read_only_cards_are_refused() {
    let mut card = Card::new(MIB, false);
    card.read_only = true;
    let mut h = host(Some(card));
    let info = h.init().unwrap();
    assert!(info.read_only);
    assert!(matches!(h.write(0, &[0; 512]), Err(SdError::Card(s)) if s & (1 << 26) != 0));
    assert!(matches!(h.read(2047, &mut [0; 1024]), Err(SdError::Unsupported(_))));
    assert!(matches!(h.read(0, &mut [0; 100]), Err(SdError::Unsupported(_))));
    assert!(matches!(h.read(u64::MAX, &mut [0; 512]), Err(SdError::Unsupported(_))));
    // Still working.
    h.read(0, &mut [0; 512]).unwrap();
}

#[test]
fn old_controllers_and_unknown_clocks() {
    // Version 2.00, no base clock in the capabilities: the assumed 250 MHz
    // base keeps every clock at or below its target.
    let mut m = Model::new(Some(Card::new(MIB, false)));
    m.version = 1 << 16;
    m.caps &= !(0xff << 8);
    let mut h = Sdhci::new(m, None);
    let info = h.init().unwrap();
    assert!(info.clock_hz <= 25_000_000);
    // The profile's base clock wins over the capabilities.
    let mut h = Sdhci::new(Model::new(Some(Card::new(MIB, false))), Some(100_000_000));
    assert_eq!(h.init().unwrap().clock_hz, 25_000_000);
    // No 3.3 V: refused, not tried.
    let mut m = Model::new(Some(Card::new(MIB, false)));
    m.caps &= !CAP_3V3;
    assert!(matches!(Sdhci::new(m, None).init(), Err(SdError::Unsupported(_))));
}

#[test]
fn interrupts_are_signalled_only_while_waiting() {
    let mut h = host(Some(Card::new(MIB, false)));
    h.init().unwrap();
    h.read(0, &mut [0; 512]).unwrap();
    assert_eq!(h.bus.signal, 0, "no status bit raises the line between requests");
    assert_eq!(h.bus.read(INT_ENABLE), INT_ALL);
}

#[test]
fn a_pulled_card_fails_at_once_and_a_new_one_is_found() {
    let mut h = host(Some(Card::new(MIB, false)));
    h.init().unwrap();
    h.bus.pull_card();
    let start = h.bus.now_us();
    assert_eq!(h.read(0, &mut [0; 512]), Err(SdError::NoCard));
    assert!(h.bus.now_us() - start < 1000, "no waiting on a card that is gone");
    // Without the removal interrupt (missed), the stopped clock means no
    // answer: a bounded timeout, not a hang.
    assert_eq!(h.read(0, &mut [0; 512]), Err(SdError::Timeout));
    assert!(h.bus.now_us() - start < 5_000_000);
    assert_eq!(h.init(), Err(SdError::NoCard));
    // A new card is identified by the next init.
    h.bus.card = Some(Card::new(2 * MIB, true));
    assert_eq!(h.init().unwrap().sectors, 4096);
    h.read(4095, &mut [0; 512]).unwrap();
}
