//! `cargo xtask image --board rpi4|uboot`: bootable disk images.
//!
//! The Raspberry Pi 4 SD card: MBR, a FAT32 boot partition (type 0x0c) with
//! the GPU firmware from Debian's `raspi-firmware` package (`start4.elf`,
//! `fixup4.dat`; pinned, cached and hash-checked like the kernel package in
//! `fetch`), the device tree, `config.txt`, the `disable-bt` overlay and the
//! kernel as `kernel8.img`; then a FAT32 data partition with a README. The
//! same inputs always give the same bytes.

use crate::build::{self, Options};
use crate::disk::{self, Files, Spec};
use crate::util::{self, check_hash, Result};
use crate::{bail, fetch, note, uboot};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The pinned firmware package (relative to `fetch::MIRROR`) and its SHA256.
pub const FW_DEB: &str = "pool/non-free-firmware/r/raspi-firmware/raspi-firmware_1.20220830+ds-1_all.deb";
pub const FW_DEB_SHA256: &str = "0094ced47a7fbb6a220ff83e7b43aa637a5d8f6802461e2e4e474597fb796f62";
/// (path in the package, name on the card, SHA256): the Pi 4 boot firmware
/// and its licence (Broadcom's terms require it to go along).
pub const FW_FILES: &[(&str, &str, &str)] = &[
    (
        "./usr/lib/raspi-firmware/start4.elf",
        "start4.elf",
        "36d12ae9eda1a508430e65d7877aada4d6c8dbe61a6dd3bbf20da1ed6ca58f70",
    ),
    (
        "./usr/lib/raspi-firmware/fixup4.dat",
        "fixup4.dat",
        "55aeb4d842356c655f230fdd0c08dfad8a0412abdf97e421d420ccd09861a233",
    ),
    (
        "./usr/share/doc/raspi-firmware/copyright",
        "LICENCE.raspi-firmware",
        "b42abc27eb1f944c7082a8358cec668fa680b3db8f9690f37e48b59ff8f4d795",
    ),
];

/// `config.txt` and the overlay source, kept as files in the repository.
pub const CONFIG_TXT: &str = include_str!("../../../boot/rpi4/config.txt");
pub const OVERLAY_SOURCE: &str = "boot/rpi4/disable-bt-overlay.dts";

/// The SD card: 64 MiB FAT32 boot partition at 1 MiB, then a 63 MiB FAT32
/// data partition, 128 MiB in all (QEMU takes SD card images only of a
/// power-of-two size). The boot partition is not marked bootable (the Pi's
/// boot ROM and firmware ignore the flag; Raspberry Pi OS images leave it
/// clear).
pub const RPI4_SPEC: Spec = Spec {
    part_size: 64 << 20,
    part_type: disk::TYPE_FAT32_LBA,
    bootable: false,
    label: "KESTREL",
    volume_id: 0x4b45_5354,
    disk_id: 0x4b45_5354,
    data: Some(disk::DataPartition {
        size: 63 << 20,
        label: "KESTRELDATA",
        volume_id: 0x4b45_5344,
    }),
};

/// The data partition's one file (`README.txt`).
pub const DATA_README: &str = "Kestrel's data partition (FAT32): the space on this card for files, apart from the\n\
boot partition's firmware, device tree, config.txt and kernel.\n";

/// The firmware files (name on the card, bytes), from the cache or the
/// pinned package; every one checked against its pinned hash.
///
/// Parallel cases (threads) take turns, so the package is fetched once;
/// each extraction has a scratch folder of its own, so that another xtask
/// process sharing the cache cannot interleave with it.
pub fn firmware() -> Result<Vec<(&'static str, Vec<u8>)>> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let cache = fetch::cache_dir().join("raspi-firmware");
    if let Some(files) = cached_firmware(&cache) {
        return Ok(files);
    }
    std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    let deb = firmware_deb()?;
    let scratch = util::scratch_beside(&cache.join("extract"), "tmp");
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    extract(&deb, &scratch, FW_FILES.iter().map(|f| f.0))?;
    for (inside, name, sha) in FW_FILES {
        let got = scratch.join(inside);
        check_hash(
            &format!("{inside} in {}", deb.display()),
            &util::sha256_file(&got)?,
            sha,
        )?;
        std::fs::rename(&got, cache.join(name)).map_err(|e| format!("{}: {e}", cache.join(name).display()))?;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    cached_firmware(&cache).ok_or_else(|| format!("{}: the extracted firmware does not check out", cache.display()))
}

fn cached_firmware(cache: &Path) -> Option<Vec<(&'static str, Vec<u8>)>> {
    FW_FILES
        .iter()
        .map(|(_, name, sha)| {
            let bytes = std::fs::read(cache.join(name)).ok()?;
            (util::sha256_hex(&bytes) == *sha).then_some((*name, bytes))
        })
        .collect()
}

/// The pinned `raspi-firmware` package, from the cache or the mirror.
fn firmware_deb() -> Result<PathBuf> {
    let name = FW_DEB.rsplit('/').next().unwrap();
    let deb = fetch::cache_dir().join(name);
    if deb.is_file() && util::sha256_file(&deb).is_ok_and(|h| h == FW_DEB_SHA256) {
        return Ok(deb);
    }
    let url = format!("{}{FW_DEB}", fetch::MIRROR);
    note!("downloading {url} (5 MB)");
    fetch::download(&url, &deb, Some(FW_DEB_SHA256)).map_err(|e| format!("{url}: {}", e.message()))?;
    Ok(deb)
}

/// `dpkg-deb --fsys-tarfile DEB | tar -x -C DIR PATHS...`
fn extract<'a>(deb: &Path, dir: &Path, paths: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run dpkg-deb: {e}"))?;
    let out = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dir)
        .args(paths)
        .stdin(dpkg.stdout.take().unwrap())
        .output()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    let status = dpkg.wait().map_err(|e| e.to_string())?;
    if !status.success() || !out.status.success() {
        bail!(
            "extracting from {} failed (dpkg-deb {status}, tar {}): {}",
            deb.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Compiles the `disable-bt` overlay (`dtc`, deterministic output).
pub fn overlay() -> Result<Vec<u8>> {
    let src = util::root().join(OVERLAY_SOURCE);
    let out = Command::new("dtc")
        .args(["-q", "-I", "dts", "-O", "dtb", "-o", "-"])
        .arg(&src)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run dtc (package device-tree-compiler): {e}"))?;
    if !out.status.success() || out.stdout.is_empty() {
        bail!("dtc {}: {}", src.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out.stdout)
}

/// Everything on the Pi 4 card, by name.
pub fn rpi4_files(kernel: Vec<u8>, dtb: Vec<u8>, overlay: Vec<u8>, firmware: Vec<(&str, Vec<u8>)>) -> Files {
    let mut f = Files::new();
    f.insert("kernel8.img".into(), kernel);
    f.insert(fetch::DTB_NAME.into(), dtb);
    f.insert("config.txt".into(), CONFIG_TXT.as_bytes().to_vec());
    f.insert("overlays/disable-bt.dtbo".into(), overlay);
    f.insert(
        format!("{}README.txt", disk::DATA_PREFIX),
        DATA_README.as_bytes().to_vec(),
    );
    for (name, bytes) in firmware {
        f.insert(name.into(), bytes);
    }
    f
}

/// The paths of every file on the Pi 4 card (`data/...` on the data partition).
pub fn rpi4_names() -> Vec<&'static str> {
    let mut v = vec![
        "kernel8.img",
        fetch::DTB_NAME,
        "config.txt",
        "overlays/disable-bt.dtbo",
        "data/README.txt",
    ];
    v.extend(FW_FILES.iter().map(|f| f.1));
    v
}

/// Which image `cargo xtask image` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Board {
    /// Raspberry Pi 4 SD card.
    Rpi4,
    /// U-Boot disk for QEMU virt (`cargo xtask run --uboot`).
    #[value(name = "uboot")]
    UBoot,
}

/// `target/kestrel/<board>[-test].img`
pub fn default_output(board: Board, test_image: bool) -> PathBuf {
    let stem = match board {
        Board::Rpi4 => "rpi4-sd",
        Board::UBoot => "uboot-disk",
    };
    build::out_dir().join(format!("{stem}{}.img", if test_image { "-test" } else { "" }))
}

/// Builds the kernel, then the disk image for `board`; returns its path.
pub fn make(board: Board, opts: &Options, output: Option<PathBuf>, append: Option<&str>) -> Result<PathBuf> {
    let built = build::build(opts)?;
    let kernel = std::fs::read(&built.img).map_err(|e| format!("{}: {e}", built.img.display()))?;
    let out = output.unwrap_or_else(|| default_output(board, opts.test_image));
    write_image(board, kernel, &out, append)?;
    Ok(out)
}

/// Writes the disk image for `board` with this kernel to `out`.
pub fn write_image(board: Board, kernel: Vec<u8>, out: &Path, append: Option<&str>) -> Result<()> {
    let bytes = match board {
        Board::Rpi4 => {
            if append.is_some() {
                bail!("--append is for --board uboot; on the Pi the firmware sets the bootargs");
            }
            let dtb_path = fetch::rpi4_dtb()?;
            let dtb = std::fs::read(&dtb_path).map_err(|e| format!("{}: {e}", dtb_path.display()))?;
            disk::build(&RPI4_SPEC, &rpi4_files(kernel, dtb, overlay()?, firmware()?))?
        }
        Board::UBoot => uboot::disk_image(kernel, append.unwrap_or(uboot::DEFAULT_APPEND))?,
    };
    util::write_atomic(out, &bytes)?;
    note!(
        "{}: {} MiB, SHA256 {}",
        util::relative(out),
        bytes.len() >> 20,
        util::sha256_hex(&bytes)
    );
    Ok(())
}

/// What [`rpi4_card`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardUpdate {
    /// A new card (there was none, or `fresh`).
    Made,
    /// The card's `kernel8.img` was replaced with the kernel.
    Kernel,
    /// The card already held this kernel.
    Unchanged,
    /// Kept as it is (not asked to update the kernel).
    Kept,
    /// The file is not a card of [`RPI4_SPEC`]'s layout: left as it is.
    NotACard,
}

/// The SD card `cargo xtask run` boots a `card = "rpi4"` profile with
/// (`[qemu]`, profiles/README.md): made at `path` with `kernel` as
/// `kernel8.img`, by the same code as `cargo xtask image --board rpi4`, if
/// it does not exist or `fresh`; otherwise kept, files and all (the data
/// partition is the user's). With `update_kernel`, a kept card gets
/// `kernel` as its `kernel8.img` (mtools) when that differs. A file that
/// is not a card of this layout (size and partition table) is not touched.
pub fn rpi4_card(path: &Path, kernel: &Path, fresh: bool, update_kernel: bool) -> Result<CardUpdate> {
    if fresh || !path.exists() {
        let bytes = std::fs::read(kernel).map_err(|e| format!("{}: {e}", kernel.display()))?;
        write_image(Board::Rpi4, bytes, path, None)?;
        return Ok(CardUpdate::Made);
    }
    if !update_kernel {
        return Ok(CardUpdate::Kept);
    }
    let bytes = std::fs::read(kernel).map_err(|e| format!("{}: {e}", kernel.display()))?;
    let len = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let mut first = [0u8; 512];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if f.read_exact(&mut first).is_err() || !RPI4_SPEC.matches(&first, len) {
            return Ok(CardUpdate::NotACard);
        }
    }
    let on_card = util::scratch_beside(path, "kernel8");
    let same =
        disk::mcopy_out(path, "kernel8.img", &on_card).is_ok() && std::fs::read(&on_card).is_ok_and(|b| b == bytes);
    let result = if same {
        Ok(CardUpdate::Unchanged)
    } else {
        disk::mcopy_in_at(path, disk::part_offset(), kernel, "kernel8.img").map(|()| CardUpdate::Kernel)
    };
    let _ = std::fs::remove_file(&on_card);
    result
}

/// `cargo xtask image --board rpi4|uboot [--profile NAME] [--test-image] [--debug] [--kernel IMAGE] [--output PATH] [--append ARGS]`
pub fn main(args: &crate::cli::ImageArgs) -> Result<()> {
    let board = args.board;
    // The Pi's card carries the rpi4 profile unless another is asked for.
    let opts = args.build.options(match board {
        Board::Rpi4 => "rpi4",
        Board::UBoot => crate::profile::DEFAULT,
    });
    let (output, append, kernel) = (args.output.clone(), args.append.clone(), args.kernel.clone());
    crate::setup::ensure(crate::setup::Need::Fetch)?;
    let out = match kernel {
        // A prebuilt image instead of this tree's kernel.
        Some(k) => {
            let bytes = std::fs::read(&k).map_err(|e| format!("{}: {e}", k.display()))?;
            build::check_image_header(&bytes).map_err(|e| format!("{}: {e}", k.display()))?;
            let out = output.unwrap_or_else(|| default_output(board, opts.test_image));
            write_image(board, bytes, &out, append.as_deref())?;
            out
        }
        None => make(board, &opts, output, append.as_deref())?,
    };
    let abs = std::fs::canonicalize(&out).unwrap_or(out);
    println!("{}", abs.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::tests::{sbin, scratch, tool};

    fn fake_firmware() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("start4.elf", vec![0x7f, b'E', b'L', b'F', 1, 2, 3]),
            ("fixup4.dat", b"fixup".to_vec()),
            ("LICENCE.raspi-firmware", b"licence".to_vec()),
        ]
    }

    /// `run`'s card: an existing card keeps its files and gets the new
    /// kernel; a file of another layout is not touched.
    #[test]
    fn run_keeps_the_card_and_updates_its_kernel() {
        let dir = scratch("runcard");
        let old_kernel: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let files = rpi4_files(old_kernel.clone(), b"tree".to_vec(), b"ov".to_vec(), fake_firmware());
        let card = dir.join("sd.img");
        util::write_atomic(&card, &disk::build(&RPI4_SPEC, &files).unwrap()).unwrap();
        // The user's file on the data partition.
        let data = u64::from(RPI4_SPEC.data_start_lba()) * disk::SECTOR;
        let note = dir.join("note.txt");
        std::fs::write(&note, b"mine\n").unwrap();
        disk::mcopy_in_at(&card, data, &note, "note.txt").unwrap();

        let kernel = dir.join("kernel.img");
        std::fs::write(&kernel, &old_kernel).unwrap();
        assert_eq!(rpi4_card(&card, &kernel, false, true).unwrap(), CardUpdate::Unchanged);
        let new_kernel: Vec<u8> = (0..70_000u32).map(|i| (i % 241) as u8).collect();
        std::fs::write(&kernel, &new_kernel).unwrap();
        let before = std::fs::read(&card).unwrap();
        assert_eq!(rpi4_card(&card, &kernel, false, false).unwrap(), CardUpdate::Kept);
        assert!(std::fs::read(&card).unwrap() == before, "--disk: left as it is");
        assert_eq!(rpi4_card(&card, &kernel, false, true).unwrap(), CardUpdate::Kernel);
        assert_eq!(rpi4_card(&card, &kernel, false, true).unwrap(), CardUpdate::Unchanged);

        let out = dir.join("out");
        disk::mcopy_out(&card, "kernel8.img", &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), new_kernel);
        disk::mcopy_out(&card, "config.txt", &out).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), CONFIG_TXT);
        disk::mcopy_out_at(&card, data, "note.txt", &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"mine\n", "the data partition is kept");
        let names = rpi4_names();
        disk::check_with_tools(&card, &RPI4_SPEC, &names).unwrap();
        let len = RPI4_SPEC.disk_size();
        assert!(len.is_power_of_two(), "QEMU wants a power-of-two SD card");
        assert_eq!(std::fs::metadata(&card).unwrap().len(), len);

        // A raw disk (what `run` made before the profile had a card) is
        // not a card: booted as it is, not written.
        let raw = dir.join("disk.img");
        std::fs::write(&raw, vec![0u8; 1 << 20]).unwrap();
        assert_eq!(rpi4_card(&raw, &kernel, false, true).unwrap(), CardUpdate::NotACard);
        assert_eq!(std::fs::read(&raw).unwrap(), vec![0u8; 1 << 20]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn config_txt_says_what_the_pi_needs() {
        let lines: Vec<&str> = CONFIG_TXT
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .collect();
        for want in [
            "arm_64bit=1",
            "enable_uart=1",
            "dtoverlay=disable-bt",
            "kernel=kernel8.img",
            "kernel_address=0x80000",
            "device_tree=bcm2711-rpi-4-b.dtb",
        ] {
            assert!(lines.contains(&want), "config.txt lacks {want}");
        }
    }

    #[test]
    fn overlay_applies_to_the_pi_tree() {
        // The real tree is fetched by `cargo xtask test`; without it (a bare
        // `cargo test` offline) only the overlay's compilation is checked.
        let ov = overlay().unwrap();
        assert_eq!(&ov[..4], &[0xd0, 0x0d, 0xfe, 0xed]);
        let dtb = fetch::dtb_path();
        if !dtb.is_file() {
            eprintln!("{} not fetched: skipping fdtoverlay", dtb.display());
            return;
        }
        let dir = scratch("overlay");
        std::fs::write(dir.join("ov.dtbo"), &ov).unwrap();
        tool(
            Command::new("fdtoverlay")
                .arg("-i")
                .arg(&dtb)
                .arg("-o")
                .arg(dir.join("out.dtb"))
                .arg(dir.join("ov.dtbo")),
        );
        let get = |node: &str, prop: &str| {
            tool(Command::new("fdtget").arg(dir.join("out.dtb")).arg(node).arg(prop))
                .trim()
                .to_string()
        };
        assert_eq!(get("/chosen", "stdout-path"), "serial0:115200n8");
        assert_eq!(get("/aliases", "serial0"), "/soc/serial@7e201000");
        assert_eq!(get("/soc/serial@7e201000/bluetooth", "status"), "disabled");
        assert_eq!(get("/soc/serial@7e215040", "status"), "disabled");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The card's partition table and filesystem, checked by sfdisk,
    /// fsck.fat and mtools; and built twice, byte-identical.
    #[test]
    fn sd_card_layout() {
        let dir = scratch("sdcard");
        let kernel: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let files = rpi4_files(
            kernel.clone(),
            b"\xd0\x0d\xfe\xedtree".to_vec(),
            b"ov".to_vec(),
            fake_firmware(),
        );
        let img = disk::build(&RPI4_SPEC, &files).unwrap();
        assert!(img == disk::build(&RPI4_SPEC, &files).unwrap(), "not reproducible");
        let path = dir.join("sd.img");
        util::write_atomic(&path, &img).unwrap();

        let names: Vec<&str> = files.keys().map(String::as_str).collect();
        let mut sorted = rpi4_names();
        sorted.sort();
        assert_eq!(names, sorted);
        disk::check_with_tools(&path, &RPI4_SPEC, &names).unwrap();
        assert_eq!(img.len(), 128 << 20, "QEMU wants a power-of-two SD card");
        let dump = tool(Command::new(sbin("sfdisk")).arg("--dump").arg(&path));
        assert!(
            dump.contains("start=        2048, size=      131072, type=c\n"),
            "{dump}"
        );
        assert!(
            dump.contains("start=      133120, size=      129024, type=c\n"),
            "{dump}"
        );
        let part = dir.join("part.img");
        std::fs::write(&part, &img[disk::part_offset() as usize..]).unwrap();
        let fsck = tool(Command::new(sbin("fsck.fat")).arg("-n").arg("-v").arg(&part));
        assert!(
            fsck.contains("32 bit entries") && fsck.contains(" 2048 hidden sectors"),
            "{fsck}"
        );
        let listing = tool(
            Command::new("mdir")
                .arg("-i")
                .arg(format!("{}@@{}", path.display(), disk::part_offset()))
                .arg("-b")
                .arg("-/")
                .arg("::"),
        );
        let mut names: Vec<&str> = listing.lines().collect();
        names.sort();
        assert_eq!(
            names,
            [
                "::/LICENCE.raspi-firmware",
                "::/bcm2711-rpi-4-b.dtb",
                "::/config.txt",
                "::/fixup4.dat",
                "::/kernel8.img",
                "::/overlays/",
                "::/overlays/disable-bt.dtbo",
                "::/start4.elf"
            ]
        );
        let out = dir.join("k8");
        disk::mcopy_out(&path, "kernel8.img", &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), kernel);
        disk::mcopy_out(&path, "config.txt", &out).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), CONFIG_TXT);
        // The data partition: its own volume, with the README only.
        let data = u64::from(RPI4_SPEC.data_start_lba()) * disk::SECTOR;
        let listing = tool(
            Command::new("mdir")
                .arg("-i")
                .arg(format!("{}@@{data}", path.display()))
                .arg("-/")
                .arg("::"),
        );
        assert!(
            listing.contains("KESTRELDATA") && listing.contains("README.txt"),
            "{listing}"
        );
        assert!(!listing.contains("kernel8"), "{listing}");
        disk::mcopy_out_at(&path, data, "README.txt", &out).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), DATA_README);
        let part = dir.join("data.img");
        std::fs::write(&part, &img[data as usize..]).unwrap();
        let fsck = tool(Command::new(sbin("fsck.fat")).arg("-n").arg("-v").arg(&part));
        assert!(fsck.contains(" 133120 hidden sectors"), "{fsck}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
