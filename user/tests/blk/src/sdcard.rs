//! test-sdcard: the Raspberry Pi 4 SD card image (`cargo xtask image
//! --board rpi4`) as the sdhci driver serves it: read through `blk`, the
//! card holds the MBR with the FAT32 boot partition and the FAT32 data
//! partition the build tool wrote, each volume's boot sector where the
//! partition table says. Only reads: the card is the boot medium.
#![no_std]
#![no_main]

use userlib::abi::boot_info::StartInfo;
use userlib::ipc::Timeout;
use userlib::names::{self, supervisor};
use userlib::services::blk::{self, Blk, SECTOR_SIZE};
use userlib::{log, syscall};

userlib::entry!(main);

/// The card image's MBR disk signature ("KEST").
const DISK_ID: u32 = 0x4b45_5354;

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn main(_start: &StartInfo) {
    if !supervisor::tasks()
        .expect("supervisor::tasks")
        .iter()
        .any(|t| t.name == "sdhci")
    {
        log::info!("no sdhci driver on this machine: nothing to test");
        return;
    }
    match names::connect(blk::NAME, Timeout::millis(10_000)) {
        Ok(ep) => syscall::cap_delete(ep).expect("cap_delete"),
        Err(e) => {
            log::info!("no task registered {} ({e}): no card to test", blk::NAME);
            return;
        }
    }
    let mut card = Blk::new(blk::NAME, 4096).expect("Blk::new");
    let info = card.info().expect("INFO");
    card.read(0, 1, 0).expect("read the MBR");
    let mbr: [u8; SECTOR_SIZE] = card.buffer()[..SECTOR_SIZE].try_into().unwrap();
    assert_eq!(mbr[510..512], [0x55, 0xaa], "no MBR signature in sector 0");
    if le32(&mbr, 440) != DISK_ID {
        log::info!(
            "not a Kestrel SD card image (disk signature {:#x}): nothing to check",
            le32(&mbr, 440)
        );
        return;
    }
    // (type, first sector, sectors) of the four entries.
    let parts: [(u8, u32, u32); 4] = core::array::from_fn(|i| {
        let e = &mbr[446 + 16 * i..462 + 16 * i];
        (e[4], le32(e, 8), le32(e, 12))
    });
    log::info!("card: {} sectors; partitions {:?}", info.sectors, parts);
    let fat32 = 0x0c;
    let (boot, data) = (parts[0], parts[1]);
    assert!(boot.0 == fat32 && data.0 == fat32, "two FAT32 partitions: {parts:?}");
    assert_eq!(parts[2..], [(0, 0, 0), (0, 0, 0)]);
    assert_eq!(data.1, boot.1 + boot.2, "the data partition follows the boot partition");
    assert!(
        u64::from(data.1 + data.2) <= info.sectors,
        "the partitions fit the card"
    );
    for ((_, first, sectors), label) in [(boot, b"KESTREL    "), (data, b"KESTRELDATA")] {
        card.read(u64::from(first), 1, 0).expect("read a volume's boot sector");
        let b = &card.buffer()[..SECTOR_SIZE];
        assert_eq!(b[510..512], [0x55, 0xaa], "boot sector signature at sector {first}");
        assert_eq!(&b[82..90], b"FAT32   ", "FAT32 at sector {first}");
        assert_eq!(&b[71..82], label, "volume label at sector {first}");
        assert_eq!(le32(b, 28), first, "hidden sectors = the partition's start");
        assert_eq!(le32(b, 32), sectors, "the volume fills its partition");
    }
    log::info!(
        "card layout: boot FAT32 at {} ({} MiB), data FAT32 at {} ({} MiB), read through sdhci",
        boot.1,
        boot.2 >> 11,
        data.1,
        data.2 >> 11
    );
}
