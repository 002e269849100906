//! The boot sector (BIOS parameter block): where the FATs, the root
//! directory and the clusters are. Every field is checked against the
//! others and the volume's size before anything is read through it.

use crate::{le16, le32, Error, SECTOR};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatType {
    Fat16,
    Fat32,
}

/// A volume's layout, in sectors of the volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub fat_type: FatType,
    pub sectors_per_cluster: u32,
    /// First sector of FAT #0.
    pub fat_start: u64,
    /// Sectors of one FAT.
    pub fat_sectors: u64,
    pub fats: u32,
    /// FAT16: the fixed root directory's first sector and sector count.
    pub root_start: u64,
    pub root_sectors: u64,
    /// FAT32: the root directory's first cluster.
    pub root_cluster: u32,
    /// Sector of cluster 2.
    pub data_start: u64,
    /// Clusters 2 .. 2 + clusters exist.
    pub clusters: u32,
    /// FAT32's FSInfo sector (free count and next free hint), if any.
    pub fsinfo: Option<u64>,
    pub volume_id: u32,
    pub label: [u8; 11],
}

impl Geometry {
    pub fn cluster_bytes(&self) -> u64 {
        self.sectors_per_cluster as u64 * SECTOR as u64
    }

    /// The first sector of `cluster` (2 ..).
    pub fn cluster_sector(&self, cluster: u32) -> u64 {
        self.data_start + (cluster as u64 - 2) * self.sectors_per_cluster as u64
    }

    /// Whether `c` names a data cluster.
    pub fn valid_cluster(&self, c: u32) -> bool {
        c >= 2 && c < self.clusters + 2
    }
}

/// Whether a sector looks like a FAT boot sector (jump, 512-byte
/// sectors, sane cluster size and FAT count): used to tell a whole-disk
/// volume from a partition table.
pub fn looks_like_fat(s: &[u8; SECTOR]) -> bool {
    (s[0] == 0xeb || s[0] == 0xe9)
        && le16(s, 11) == SECTOR as u16
        && s[13].is_power_of_two()
        && le16(s, 14) >= 1
        && (1..=4).contains(&s[16])
}

/// Parses the boot sector of a volume of `volume_sectors`.
pub fn parse(s: &[u8; SECTOR], volume_sectors: u64) -> Result<Geometry, Error> {
    if !looks_like_fat(s) || s[510] != 0x55 || s[511] != 0xaa {
        return Err(Error::Unsupported);
    }
    let spc = s[13] as u32;
    let reserved = le16(s, 14) as u64;
    let fats = s[16] as u32;
    let root_entries = le16(s, 17) as u64;
    let total = match le16(s, 19) {
        0 => le32(s, 32) as u64,
        n => n as u64,
    };
    let fat_sectors = match le16(s, 22) {
        0 => le32(s, 36) as u64,
        n => n as u64,
    };
    if total == 0 || total > volume_sectors || fat_sectors == 0 {
        return Err(Error::Corrupt);
    }
    let root_sectors = (root_entries * 32).div_ceil(SECTOR as u64);
    let data_start = reserved + fats as u64 * fat_sectors + root_sectors;
    if data_start >= total {
        return Err(Error::Corrupt);
    }
    let clusters = (total - data_start) / spc as u64;
    let fat_type = if clusters < 4085 {
        return Err(Error::Unsupported); // FAT12
    } else if clusters < 65525 {
        FatType::Fat16
    } else {
        FatType::Fat32
    };
    let entry_bytes = if fat_type == FatType::Fat16 { 2 } else { 4 };
    // Clusters past what the FAT can describe do not exist.
    let clusters = clusters
        .min(fat_sectors * SECTOR as u64 / entry_bytes - 2)
        .min(0x0fff_fff5) as u32;
    let mut g = Geometry {
        fat_type,
        sectors_per_cluster: spc,
        fat_start: reserved,
        fat_sectors,
        fats,
        root_start: reserved + fats as u64 * fat_sectors,
        root_sectors,
        root_cluster: 0,
        data_start,
        clusters,
        fsinfo: None,
        volume_id: 0,
        label: [b' '; 11],
    };
    match fat_type {
        FatType::Fat16 => {
            if root_sectors == 0 {
                return Err(Error::Corrupt);
            }
            g.volume_id = le32(s, 39);
            g.label.copy_from_slice(&s[43..54]);
        }
        FatType::Fat32 => {
            if root_sectors != 0 || le16(s, 42) != 0 {
                return Err(Error::Unsupported);
            }
            g.root_cluster = le32(s, 44) & 0x0fff_ffff;
            if !g.valid_cluster(g.root_cluster) {
                return Err(Error::Corrupt);
            }
            let fsinfo = le16(s, 48) as u64;
            if fsinfo != 0 && fsinfo != 0xffff && fsinfo < reserved {
                g.fsinfo = Some(fsinfo);
            }
            g.volume_id = le32(s, 67);
            g.label.copy_from_slice(&s[71..82]);
        }
    }
    Ok(g)
}
