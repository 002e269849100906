//! Host tests: images made by `mkfs.vfat` and mtools are read and written;
//! what this crate writes passes `fsck.fat -n` and reads back with mtools;
//! power cuts at every stage of a workload; hostile paths and images.

use super::*;
use crate::volume::FixedClock;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kestrel-fat-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tool(name: &str) -> PathBuf {
    for d in ["/usr/sbin", "/sbin", "/usr/bin"] {
        let p = Path::new(d).join(name);
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(name)
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh image of `mib` MiB formatted by mkfs.vfat with `args`.
fn mkfs(dir: &Path, mib: u64, args: &[&str]) -> PathBuf {
    let img = dir.join("disk.img");
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(mib << 20).unwrap();
    run(Command::new(tool("mkfs.vfat")).args(args).arg(&img));
    img
}

fn mcopy_in(img: &Path, name: &str, data: &[u8]) {
    let host = img.with_file_name("mcopy-in.tmp");
    std::fs::write(&host, data).unwrap();
    run(Command::new("mcopy")
        .args(["-o", "-i"])
        .arg(img)
        .arg(&host)
        .arg(format!("::{name}")));
}

fn mtype(img: &Path, name: &str) -> Vec<u8> {
    let out = Command::new("mtype")
        .arg("-i")
        .arg(img)
        .arg(format!("::{name}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mtype {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `fsck.fat -n`: the problems it reports (empty when clean).
fn fsck(img: &Path) -> Vec<String> {
    harness::fatcheck::fsck_report(img).unwrap()
}

fn mount(img: &Path) -> Volume<MemDisk> {
    let data = std::fs::read(img).unwrap();
    Volume::mount(MemDisk { data }, None, 4096, Box::new(FixedClock)).expect("mount")
}

fn save(v: &mut Volume<MemDisk>, img: &Path) {
    v.sync().unwrap();
    std::fs::write(img, &v.device().data).unwrap();
}

const RW: OpenFlags = OpenFlags {
    create: true,
    exclusive: false,
    truncate: true,
    directory: false,
};

fn read_all<D: BlockDevice>(v: &mut Volume<D>, dir: NodeId, path: &str) -> Result<Vec<u8>, Error> {
    let f = v.open(dir, path, OpenFlags::default())?;
    let mut out = vec![0u8; v.stat(f)?.size as usize];
    let n = v.read(f, 0, &mut out)?;
    out.truncate(n);
    v.close(f)?;
    Ok(out)
}

fn write_file<D: BlockDevice>(v: &mut Volume<D>, dir: NodeId, path: &str, data: &[u8]) -> Result<(), Error> {
    let f = v.open(dir, path, RW)?;
    let r = v.write(f, 0, data);
    v.close(f)?;
    r.map(drop)
}

fn names(v: &mut Volume<MemDisk>, dir: NodeId) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = 0;
    while let Some((e, next)) = v.read_dir(dir, cursor).unwrap() {
        out.push(e.name);
        cursor = next;
    }
    out
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8)
        .collect()
}

#[test]
fn names_and_aliases() {
    assert_eq!(dir::exact_short("README"), Some((*b"README     ", 0)));
    assert_eq!(
        dir::exact_short("notes.txt"),
        Some((*b"NOTES   TXT", dir::CASE_LOWER_BASE | dir::CASE_LOWER_EXT))
    );
    assert_eq!(dir::exact_short("Notes.txt"), None, "mixed case needs a long name");
    assert_eq!(dir::exact_short("a.b.c"), None);
    assert_eq!(dir::exact_short("toolongname"), None);
    assert_eq!(&dir::alias("My Long File.text", 1), b"MYLONG~1TEX");
    assert_eq!(&dir::alias(".hidden", 12), b"HIDDE~12   ");
    for bad in [
        "",
        ".",
        "..",
        "a/b",
        "a:b",
        "trailing.",
        "trailing ",
        "nul\0",
        &"x".repeat(256),
    ] {
        assert_eq!(dir::validate(bad), Err(Error::InvalidName), "{bad:?}");
    }
    dir::validate(&"x".repeat(255)).unwrap();
    let name = "A long name with ünïcode — and more than thirteen units.txt";
    let sum = dir::checksum(b"ALONGN~1TXT");
    let mut c = dir::LfnCollector::default();
    for e in dir::lfn_entries(name, sum) {
        c.feed(&e);
    }
    let mut short = [0u8; 32];
    short[..11].copy_from_slice(b"ALONGN~1TXT");
    assert_eq!(c.finish(&short).map(|x| x.0).as_deref(), Some(name));
    assert!(dir::same_name("ReadMe.TXT", "readme.txt"));
}

#[test]
fn paths_cannot_escape() {
    type V = Volume<MemDisk>;
    assert_eq!(V::components("a/./b//c"), Ok(vec!["a", "b", "c"]));
    assert_eq!(V::components("a/../b"), Ok(vec!["b"]));
    assert_eq!(V::components(""), Ok(vec![]));
    for bad in ["..", "../x", "a/../..", "/etc", "/", "a/b/../../../c"] {
        assert_eq!(V::components(bad), Err(Error::Escape), "{bad}");
    }
}

/// `within` sees a directory under every name a lookup finds it by: its
/// long name in any case, its short alias, through `.` and `..`; not a
/// neighbour, nor a path that only starts with the same letters.
#[test]
fn within_knows_every_name_of_an_entry() {
    let dir = scratch("within");
    let img = mkfs(&dir, 33, &["-F", "32"]);
    let mut v = mount(&img);
    let root = v.root();
    assert!(v.is_root(root));
    // Not there yet: by name only.
    assert_eq!(v.within(root, ".BUS/x", ".bus"), Ok(true));
    assert_eq!(v.within(root, "BUS~1", ".bus"), Ok(false));
    v.mkdir(root, ".bus").unwrap();
    write_file(&mut v, root, ".bus/pairings", b"secret").unwrap();
    v.mkdir(root, "other").unwrap();
    for p in [
        ".bus",
        ".BUS/pairings",
        "BUS~1",
        "bus~1/PAIRINGS",
        "./.bus",
        "other/../.bus/x",
        ".bus/",
    ] {
        assert_eq!(v.within(root, p, ".bus"), Ok(true), "{p}");
    }
    for p in ["", ".", "other", "other/.bus", ".bus2", ".bu", "pairings"] {
        assert_eq!(v.within(root, p, ".bus"), Ok(false), "{p}");
    }
    assert_eq!(v.within(root, "../.bus", ".bus"), Err(Error::Escape));
    let inner = v.open(root, ".bus", OpenFlags::default()).unwrap();
    assert!(!v.is_root(inner));
    assert_eq!(read_all(&mut v, root, "BUS~1/pairings").unwrap(), b"secret");
}

#[test]
fn reads_what_mtools_wrote_fat32_and_fat16() {
    for (args, mib) in [(&["-F", "32"][..], 64), (&["-F", "16"][..], 32)] {
        let dir = scratch(&format!("read-{}", args[1]));
        let img = mkfs(&dir, mib, args);
        let big = pattern(300_000, 7);
        mcopy_in(&img, "README", b"hello\n");
        mcopy_in(&img, "A Long File Name.markdown", &big);
        run(Command::new("mmd").arg("-i").arg(&img).arg("::Sub Dir"));
        mcopy_in(&img, "Sub Dir/inner.txt", b"inner\n");
        let mut v = mount(&img);
        let root = v.root();
        let mut n = names(&mut v, root);
        n.sort();
        assert_eq!(n, ["A Long File Name.markdown", "README", "Sub Dir"]);
        assert_eq!(read_all(&mut v, root, "README").unwrap(), b"hello\n");
        assert_eq!(read_all(&mut v, root, "a long file name.MARKDOWN").unwrap(), big);
        assert_eq!(read_all(&mut v, root, "Sub Dir/inner.txt").unwrap(), b"inner\n");
        assert_eq!(read_all(&mut v, root, "Sub Dir/../README").unwrap(), b"hello\n");
        assert_eq!(read_all(&mut v, root, "nope"), Err(Error::NotFound));
        assert_eq!(read_all(&mut v, root, "README/x"), Err(Error::NotADirectory));
        let st = v.statfs().unwrap();
        assert_eq!(st.fat32, args[1] == "32");
        v.close(root).unwrap();
        assert_eq!(v.open_nodes(), 0);
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn writes_pass_fsck_and_read_back_with_mtools() {
    for (args, mib) in [(&["-F", "32"][..], 64), (&["-F", "16"][..], 32)] {
        let dir = scratch(&format!("write-{}", args[1]));
        let img = mkfs(&dir, mib, args);
        let mut v = mount(&img);
        let root = v.root();
        let big = pattern(1_000_000, 3);
        write_file(&mut v, root, "notes.txt", b"short name, lower case\n").unwrap();
        write_file(&mut v, root, "A much longer name, with spaces.data", &big).unwrap();
        v.mkdir(root, "photos").unwrap();
        v.mkdir(root, "photos/2024 Summer").unwrap();
        for i in 0..40 {
            write_file(
                &mut v,
                root,
                &format!("photos/2024 Summer/picture number {i}.jpg"),
                &pattern(1000 + i * 37, i as u8),
            )
            .unwrap();
        }
        write_file(&mut v, root, "gone.txt", b"x").unwrap();
        v.unlink(root, "gone.txt").unwrap();
        v.mkdir(root, "empty").unwrap();
        v.rmdir(root, "empty").unwrap();
        v.rename(root, "notes.txt", root, "photos/Renamed Notes.txt").unwrap();
        v.rename(root, "photos/2024 Summer", root, "Summer").unwrap();
        // Truncate and extend.
        let f = v.open(root, "cut.bin", RW).unwrap();
        v.write(f, 0, &pattern(70_000, 9)).unwrap();
        v.set_len(f, 1234).unwrap();
        v.write(f, 5000, b"tail").unwrap();
        v.close(f).unwrap();
        v.close(root).unwrap();
        save(&mut v, &img);
        assert_eq!(fsck(&img), Vec::<String>::new());
        assert_eq!(mtype(&img, "A much longer name, with spaces.data"), big);
        assert_eq!(mtype(&img, "photos/Renamed Notes.txt"), b"short name, lower case\n");
        assert_eq!(mtype(&img, "Summer/picture number 39.jpg"), pattern(1000 + 39 * 37, 39));
        let mut cut = pattern(70_000, 9)[..1234].to_vec();
        cut.resize(5000, 0);
        cut.extend_from_slice(b"tail");
        assert_eq!(mtype(&img, "cut.bin"), cut);
        let listing = run(Command::new("mdir").args(["-b", "-i"]).arg(&img).arg("::/"));
        assert!(!listing.contains("gone.txt") && !listing.contains("empty"), "{listing}");
        // And it mounts again with the same contents.
        let mut v = mount(&img);
        let root = v.root();
        assert_eq!(
            read_all(&mut v, root, "Summer/picture number 7.jpg").unwrap(),
            pattern(1000 + 7 * 37, 7)
        );
        assert_eq!(v.rmdir(root, "Summer"), Err(Error::NotEmpty));
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Directory indexes stay what a fresh scan of the entries gives, through
/// creates (short names, long names, aliases of clashing long names, case
/// variants), removals, renames within and across directories, mkdir and
/// rmdir (a freed directory cluster reused), on FAT32 and FAT16's root;
/// and the volume stays one fsck.fat and mtools accept.
#[test]
fn indexes_agree_with_scans() {
    for (args, mib) in [(&["-F", "32"][..], 64), (&["-F", "16"][..], 32)] {
        let dir = scratch(&format!("index-{}", args[1]));
        let img = mkfs(&dir, mib, args);
        let mut v = mount(&img);
        let root = v.root();
        let mut rng = 0x1234_5678_9abc_def0u64 ^ mib;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let name = |k: u64| match k % 5 {
            0 => format!("f{k:04}"),
            1 => format!("A long file name number {k}.text"),
            2 => format!("LongPrefixSame{k}"),
            3 => format!("UPPER{}.TXT", k % 100),
            _ => format!("mixed Case {k}"),
        };
        let dirs = ["", "d1", "d1/d2"];
        v.mkdir(root, "d1").unwrap();
        v.mkdir(root, "d1/d2").unwrap();
        let mut live: Vec<(usize, String)> = Vec::new();
        for step in 0..600 {
            let d = dirs[next(3) as usize];
            let path = |n: &str| {
                if d.is_empty() {
                    n.to_string()
                } else {
                    format!("{d}/{n}")
                }
            };
            match next(10) {
                0..=4 => {
                    let n = name(next(400));
                    write_file(&mut v, root, &path(&n), n.as_bytes()).unwrap();
                    if !live.iter().any(|(i, m)| dirs[*i] == d && dir::same_name(m, &n)) {
                        live.push((dirs.iter().position(|x| *x == d).unwrap(), n));
                    }
                }
                5 | 6 if !live.is_empty() => {
                    let (i, n) = live.swap_remove(next(live.len() as u64) as usize);
                    let p = if dirs[i].is_empty() {
                        n.clone()
                    } else {
                        format!("{}/{n}", dirs[i])
                    };
                    v.unlink(root, &p).unwrap();
                }
                7 if !live.is_empty() => {
                    let k = next(live.len() as u64) as usize;
                    let (i, n) = live[k].clone();
                    let from = if dirs[i].is_empty() {
                        n.clone()
                    } else {
                        format!("{}/{n}", dirs[i])
                    };
                    let to_dir = next(3) as usize;
                    let to_name = if next(2) == 0 {
                        n.to_uppercase()
                    } else {
                        name(next(400))
                    };
                    let to = if dirs[to_dir].is_empty() {
                        to_name.clone()
                    } else {
                        format!("{}/{to_name}", dirs[to_dir])
                    };
                    v.rename(root, &from, root, &to).unwrap();
                    live.retain(|(j, m)| !(*j == to_dir && dir::same_name(m, &to_name)));
                    if let Some(k) = live.iter().position(|(j, m)| *j == i && *m == n) {
                        live.swap_remove(k);
                    }
                    live.push((to_dir, to_name));
                }
                8 => {
                    v.mkdir(root, "tmpdir").unwrap();
                    write_file(&mut v, root, "tmpdir/inside", b"x").unwrap();
                    v.unlink(root, "tmpdir/inside").unwrap();
                    v.rmdir(root, "tmpdir").unwrap();
                }
                _ => {
                    if next(4) == 0 {
                        v.drop_caches();
                    }
                }
            }
            v.check_indexes().unwrap_or_else(|e| panic!("step {step}: {e}"));
        }
        // Every live name is found, with its contents.
        for (i, n) in &live {
            let p = if dirs[*i].is_empty() {
                n.clone()
            } else {
                format!("{}/{n}", dirs[*i])
            };
            let got = read_all(&mut v, root, &p).unwrap_or_else(|e| panic!("{p}: {e:?}"));
            assert!(!got.is_empty(), "{p}");
        }
        assert!(v.check_indexes().unwrap() > 0, "directories were indexed");
        v.close(root).unwrap();
        save(&mut v, &img);
        assert_eq!(fsck(&img), Vec::<String>::new());
        let listing = run(Command::new("mdir").args(["-b", "-i"]).arg(&img).arg("::/d1/d2"));
        let want = live.iter().filter(|(i, _)| *i == 2).count();
        assert_eq!(listing.lines().count(), want, "{listing}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn operation_errors() {
    let dir = scratch("errors");
    let img = mkfs(&dir, 64, &["-F", "32"]);
    let mut v = mount(&img);
    let root = v.root();
    write_file(&mut v, root, "f", b"data").unwrap();
    v.mkdir(root, "d").unwrap();
    let excl = OpenFlags {
        create: true,
        exclusive: true,
        ..Default::default()
    };
    assert_eq!(v.open(root, "f", excl), Err(Error::Exists));
    assert_eq!(v.mkdir(root, "F"), Err(Error::Exists), "names ignore case");
    assert_eq!(v.open(root, "d", RW), Err(Error::IsADirectory));
    assert_eq!(v.unlink(root, "d"), Err(Error::IsADirectory));
    assert_eq!(v.rmdir(root, "f"), Err(Error::NotADirectory));
    assert_eq!(v.open(root, "bad:name", RW), Err(Error::InvalidName));
    assert_eq!(v.open(root, "../up", RW), Err(Error::Escape));
    assert_eq!(v.mkdir(root, "/abs"), Err(Error::Escape));
    assert_eq!(v.rename(root, "d", root, "d/inside"), Err(Error::Busy));
    assert_eq!(v.rename(root, "f", root, "d"), Err(Error::IsADirectory));
    let f = v.open(root, "f", OpenFlags::default()).unwrap();
    assert_eq!(v.unlink(root, "f"), Err(Error::Busy));
    assert_eq!(v.write(f, u32::MAX as u64, b"x"), Err(Error::TooLarge));
    let sub = v
        .open(
            root,
            "d",
            OpenFlags {
                directory: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        v.open(sub, "..", OpenFlags::default()),
        Err(Error::Escape),
        "a directory handle is a root"
    );
    write_file(&mut v, sub, "x", b"1").unwrap();
    assert_eq!(read_all(&mut v, root, "d/x").unwrap(), b"1");
    v.close(sub).unwrap();
    v.close(f).unwrap();
    v.close(root).unwrap();
    assert_eq!(v.open_nodes(), 0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn disk_full_is_no_space_and_stays_consistent() {
    let dir = scratch("full");
    let img = mkfs(&dir, 20, &["-F", "16", "-s", "4"]);
    let mut v = mount(&img);
    let root = v.root();
    let chunk = pattern(1 << 20, 1);
    let f = v.open(root, "fill", RW).unwrap();
    let mut off = 0u64;
    let err = loop {
        match v.write(f, off, &chunk) {
            Ok(n) => off += n as u64,
            Err(e) => break e,
        }
    };
    assert_eq!(err, Error::NoSpace);
    v.close(f).unwrap();
    v.close(root).unwrap();
    save(&mut v, &img);
    assert_eq!(fsck(&img), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(dir);
}

/// An MBR with one partition at 1 MiB, and a GPT with one at 2 MiB.
#[test]
fn partitions_mbr_and_gpt() {
    let dir = scratch("parts");
    let inner = mkfs(&dir, 40, &["-F", "32"]);
    mcopy_in(&inner, "HELLO.TXT", b"from a partition\n");
    let vol = std::fs::read(&inner).unwrap();
    // MBR
    let mut disk = vec![0u8; (1 << 20) + vol.len()];
    disk[1 << 20..].copy_from_slice(&vol);
    let e = &mut disk[446..462];
    e[4] = 0x0c;
    e[8..12].copy_from_slice(&2048u32.to_le_bytes());
    e[12..16].copy_from_slice(&((vol.len() / 512) as u32).to_le_bytes());
    disk[510] = 0x55;
    disk[511] = 0xaa;
    let mut v = Volume::mount(MemDisk { data: disk.clone() }, None, 256, Box::new(FixedClock)).unwrap();
    let root = v.root();
    assert_eq!(read_all(&mut v, root, "hello.txt").unwrap(), b"from a partition\n");
    assert_eq!(
        Volume::mount(MemDisk { data: disk }, Some(1), 256, Box::new(FixedClock)).err(),
        Some(Error::NotFound)
    );
    // GPT: protective MBR, header at 1, entries at 2.
    let start = 4096u64;
    let mut disk = vec![0u8; (start as usize * 512) + vol.len() + 512 * 34];
    disk[start as usize * 512..start as usize * 512 + vol.len()].copy_from_slice(&vol);
    let e = &mut disk[446..462];
    e[4] = 0xee;
    e[8..12].copy_from_slice(&1u32.to_le_bytes());
    e[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    disk[510] = 0x55;
    disk[511] = 0xaa;
    let h = &mut disk[512..1024];
    h[0..8].copy_from_slice(b"EFI PART");
    h[72..80].copy_from_slice(&2u64.to_le_bytes());
    h[80..84].copy_from_slice(&128u32.to_le_bytes());
    h[84..88].copy_from_slice(&128u32.to_le_bytes());
    let p = &mut disk[1024..1152];
    p[0..16].copy_from_slice(&[
        0xA2, 0xA0, 0xD0, 0xEB, 0xE5, 0xB9, 0x33, 0x44, 0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26, 0x99, 0xC7,
    ]);
    p[16] = 1;
    p[32..40].copy_from_slice(&start.to_le_bytes());
    p[40..48].copy_from_slice(&(start + vol.len() as u64 / 512 - 1).to_le_bytes());
    let mut v = Volume::mount(MemDisk { data: disk }, None, 256, Box::new(FixedClock)).unwrap();
    let root = v.root();
    assert_eq!(read_all(&mut v, root, "HELLO.TXT").unwrap(), b"from a partition\n");
    let _ = std::fs::remove_dir_all(dir);
}

/// Mutated boot sectors, partition tables, FATs and directories: every
/// one mounts or fails with an error, and no operation panics or loops.
#[test]
fn hostile_images_never_panic() {
    let dir = scratch("hostile");
    let img = mkfs(&dir, 5, &["-F", "16", "-s", "1"]);
    mcopy_in(&img, "A long name.txt", &pattern(5000, 1));
    run(Command::new("mmd").arg("-i").arg(&img).arg("::dir"));
    mcopy_in(&img, "dir/x", b"x");
    let base = std::fs::read(&img).unwrap();
    let mut seed = 0x1234_5678_u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // Interesting places: boot sector, FAT start, root directory.
    let v = mount(&img);
    let g = *v.geometry();
    let hot = [0u64, g.fat_start, g.root_start, g.data_start];
    for round in 0..200 {
        let mut data = base.clone();
        for _ in 0..1 + rnd() % 8 {
            let sector = hot[(rnd() % 4) as usize] + rnd() % 2;
            let at = (sector * 512 + rnd() % 512) as usize;
            data[at] = rnd() as u8;
        }
        if round % 50 == 0 {
            data[510] = 0; // not even a signature
        }
        crate::fuzz::exercise(&data);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A disk that stops writing after `budget` sector writes (a power cut):
/// what was written before is all the disk keeps. Writes go to an overlay
/// over a shared base image, so that a cut costs what it wrote.
struct CutDisk {
    base: std::rc::Rc<Vec<u8>>,
    overlay: std::collections::BTreeMap<u64, [u8; SECTOR]>,
    budget: u64,
    written: u64,
}

impl CutDisk {
    fn new(base: &std::rc::Rc<Vec<u8>>, budget: u64) -> CutDisk {
        CutDisk {
            base: base.clone(),
            overlay: Default::default(),
            budget,
            written: 0,
        }
    }
}

impl BlockDevice for CutDisk {
    fn sectors(&self) -> u64 {
        (self.base.len() / SECTOR) as u64
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Error> {
        for (k, s) in buf.chunks_mut(SECTOR).enumerate() {
            let l = lba + k as u64;
            match self.overlay.get(&l) {
                Some(d) => s.copy_from_slice(d),
                None => s.copy_from_slice(
                    self.base
                        .get(l as usize * SECTOR..(l as usize + 1) * SECTOR)
                        .ok_or(Error::Io)?,
                ),
            }
        }
        Ok(())
    }
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), Error> {
        // Sector by sector: a cut can fall inside a multi-sector request.
        for (k, s) in buf.chunks(SECTOR).enumerate() {
            if self.written >= self.budget {
                return Err(Error::Io);
            }
            self.written += 1;
            self.overlay.insert(lba + k as u64, s.try_into().unwrap());
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// What a file may hold after a cut: its contents at the last completed
/// sync, or any later version (`None`: removed or renamed away).
#[derive(Default, Clone, Debug)]
struct Model {
    versions: std::collections::BTreeMap<String, Vec<Option<Vec<u8>>>>,
}

impl Model {
    fn set(&mut self, name: &str, body: Option<Vec<u8>>) {
        self.versions
            .entry(name.into())
            .or_insert_with(|| vec![None])
            .push(body);
    }
    fn current(&self, name: &str) -> Option<Vec<u8>> {
        self.versions.get(name).and_then(|v| v.last().cloned().flatten())
    }
    /// A sync completed: only the current versions remain possible.
    fn synced(&mut self) {
        for v in self.versions.values_mut() {
            let last = v.pop().flatten();
            v.clear();
            v.push(last);
        }
    }
}

/// The workload: writes, appends, renames over files, truncations,
/// deletions and directories, with syncs. On a failed write (the cut) it
/// returns the model of what the disk may hold.
fn workload(v: &mut Volume<CutDisk>) -> Result<(), Model> {
    let mut m = Model::default();
    let root = v.root();
    macro_rules! t {
        ($e:expr) => {
            $e.map_err(|_| m.clone())?
        };
    }
    t!(v.mkdir(root, "logs"));
    for round in 0..12u8 {
        // Write a new version to a temporary name, sync, rename over.
        let body = pattern(700 + round as usize * 1900, round);
        m.set("settings.tmp", Some(body.clone()));
        t!(write_file(v, root, "settings.tmp", &body));
        t!(v.sync());
        m.synced();
        m.set("settings.tmp", None);
        m.set("settings.json", Some(body));
        t!(v.rename(root, "settings.tmp", root, "settings.json"));
        // Append to a log.
        let log = format!("logs/log number {}.txt", round % 3);
        let line = pattern(300 + round as usize * 50, round ^ 0x55);
        let mut body = m.current(&log).unwrap_or_default();
        body.extend_from_slice(&line);
        m.set(&log, Some(body));
        let f = t!(v.open(
            root,
            &log,
            OpenFlags {
                create: true,
                ..Default::default()
            }
        ));
        let size = t!(v.stat(f)).size;
        t!(v.write(f, size, &line));
        t!(v.close(f));
        if round % 3 == 2 {
            let name = format!("data{}.bin", round / 3);
            m.set(&name, Some(pattern(9000, round)));
            t!(write_file(v, root, &name, &pattern(9000, round)));
        }
        if round % 4 == 3 {
            let name = format!("data{}.bin", round / 4);
            if let Some(mut body) = m.current(&name) {
                body.truncate(100);
                m.set(&name, Some(body));
                let f = t!(v.open(root, &name, OpenFlags::default()));
                t!(v.set_len(f, 100));
                t!(v.close(f));
            }
            if round == 7 {
                m.set("data0.bin", None);
                t!(v.unlink(root, "data0.bin"));
            }
        }
        t!(v.sync());
        m.synced();
    }
    Ok(())
}

/// Power cuts: the workload is cut after every k-th sector write (well
/// over 100 cuts, spread over the whole run); after each cut the image
/// mounts, every file synced before the cut reads back (renamed files
/// under their old or new name), and `fsck.fat -n` finds at most lost
/// clusters, a stale free count, or a file whose chain outlasts its size.
#[test]
fn power_cuts() {
    use std::io::{Seek, SeekFrom, Write};
    let dir = scratch("cuts");
    let img = mkfs(&dir, 33, &["-F", "32", "-s", "1"]);
    let base = std::rc::Rc::new(std::fs::read(&img).unwrap());
    let full = {
        let mut v = Volume::mount(CutDisk::new(&base, u64::MAX), None, 512, Box::new(FixedClock)).unwrap();
        workload(&mut v).unwrap();
        v.device().written
    };
    let cut_img = dir.join("cut.img");
    std::fs::write(&cut_img, &base[..]).unwrap();
    let mut file = std::fs::OpenOptions::new().write(true).open(&cut_img).unwrap();
    let cuts = 120u64;
    let mut checked = 0;
    for k in 0..cuts {
        let budget = 1 + k * full / cuts;
        let mut v = Volume::mount(CutDisk::new(&base, budget), None, 512, Box::new(FixedClock)).unwrap();
        let model = match workload(&mut v) {
            Err(model) => model,
            Ok(()) => continue,
        };
        let overlay = core::mem::take(&mut v.device().overlay);
        for (lba, s) in &overlay {
            file.seek(SeekFrom::Start(lba * 512)).unwrap();
            file.write_all(s).unwrap();
        }
        let after = CutDisk {
            base: base.clone(),
            overlay: overlay.clone(),
            budget: 0,
            written: 0,
        };
        let mut v = Volume::mount(after, None, 512, Box::new(FixedClock))
            .unwrap_or_else(|e| panic!("cut at {budget}: mount: {e:?}"));
        let root = v.root();
        for (name, versions) in &model.versions {
            let got = read_all(&mut v, root, name).ok();
            assert!(
                versions.contains(&got),
                "cut at {budget}/{full}: {name}: {:?} bytes, possible {:?}",
                got.map(|g| g.len()),
                versions.iter().map(|v| v.as_ref().map(|b| b.len())).collect::<Vec<_>>()
            );
        }
        // Nothing worse than what a cut may leave (the harness's rule, which
        // the QEMU power-cut case uses too).
        if let Err(e) = harness::fatcheck::power_cut_damage(&cut_img) {
            panic!("cut at {budget}/{full}: {e}");
        }
        // Back to the base image for the next cut.
        for lba in overlay.keys() {
            file.seek(SeekFrom::Start(lba * 512)).unwrap();
            file.write_all(&base[*lba as usize * 512..(*lba as usize + 1) * 512])
                .unwrap();
        }
        checked += 1;
    }
    assert!(checked >= 100, "{checked} cuts checked");
    let _ = std::fs::remove_dir_all(dir);
}

/// A disk in memory that logs its reads, hands `read_each` its sectors in
/// pieces of 48 (as the file server passes each block request's shared
/// buffer), and fails reads from the second piece on while `fail` is set.
struct LoggingDisk {
    mem: MemDisk,
    reads: Vec<(u64, usize)>,
    fail: bool,
}

impl BlockDevice for LoggingDisk {
    fn sectors(&self) -> u64 {
        self.mem.sectors()
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.reads.push((lba, buf.len() / SECTOR));
        self.mem.read(lba, buf)
    }
    fn read_each(&mut self, lba: u64, n: usize, sink: &mut dyn FnMut(usize, &[u8])) -> Result<(), Error> {
        self.reads.push((lba, n));
        let mut k = 0;
        while k < n {
            if k > 0 && self.fail {
                return Err(Error::Io);
            }
            let m = 48.min(n - k);
            let mut piece = vec![0u8; m * SECTOR];
            self.mem.read(lba + k as u64, &mut piece)?;
            sink(k, &piece);
            k += m;
        }
        Ok(())
    }
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), Error> {
        self.mem.write(lba, buf)
    }
    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// Mounts `img` on a disk that records its reads (a 2,048-byte cache).
fn mount_logged(img: &Path) -> Volume<LoggingDisk> {
    let disk = LoggingDisk {
        mem: MemDisk {
            data: std::fs::read(img).unwrap(),
        },
        reads: Vec::new(),
        fail: false,
    };
    Volume::mount(disk, None, 2048, Box::new(FixedClock)).expect("mount")
}

#[test]
fn a_whole_disk_fat32_mount_takes_one_request() {
    let dir = scratch("mountreads");
    let img = mkfs(&dir, 64, &["-F", "32"]);
    let mut v = mount_logged(&img);
    // Sector 0 with the FSInfo sector and the FAT's start (the root
    // directory's chain) in one request.
    let reads = v.device().reads.clone();
    assert_eq!(reads.len(), 1, "reads at mount: {reads:?}");
    assert_eq!(reads[0].0, 0, "reads at mount: {reads:?}");
    // What it brought is cached: the root's chain and the free count need
    // no more reads; listing the root reads its cluster alone.
    let root = v.root();
    assert!(v.statfs().is_ok());
    assert!(v.read_dir(root, 0).unwrap().is_none());
    let g = *v.geometry();
    assert!(
        v.device().reads[1..]
            .iter()
            .all(|&(lba, _)| lba >= g.fat_start + g.fat_sectors),
        "reads: {:?}",
        v.device().reads
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cold_reads_take_few_requests_and_fill_the_cache_straight() {
    let dir = scratch("coldreads");
    let img = mkfs(&dir, 64, &["-F", "32"]);
    let data = pattern(256 << 10, 7);
    let mut v = mount(&img);
    let root = v.root();
    write_file(&mut v, root, "big.bin", &data).unwrap();
    save(&mut v, &img);
    let mut v = mount_logged(&img);
    // The boot sector is read once (by the partition probe, then used
    // by the mount: a whole-disk volume).
    let zero = v.device().reads.iter().filter(|&&(lba, _)| lba == 0).count();
    assert_eq!(zero, 1, "reads at mount: {:?}", v.device().reads);
    let root = v.root();
    let f = v.open(root, "big.bin", OpenFlags::default()).unwrap();
    v.device().reads.clear();
    let mut got = vec![0u8; data.len()];
    for (i, chunk) in got.chunks_mut(64 << 10).enumerate() {
        assert_eq!(v.read(f, (i * (64 << 10)) as u64, chunk).unwrap(), chunk.len());
    }
    assert!(got == data, "read back what was written");
    // 256 KiB in 64 KiB reads of a contiguous file: one 128-sector
    // request each (the read-ahead follows the extent), plus the FAT.
    let data_reads: Vec<_> = v.device().reads.iter().filter(|&&(_, n)| n > 1).copied().collect();
    assert_eq!(data_reads.len(), 4, "reads: {:?}", v.device().reads);
    assert!(data_reads.iter().all(|&(_, n)| n == 128), "reads: {data_reads:?}");

    // A read that fails part-way leaves nothing half-filled in the cache.
    v.drop_caches();
    v.device().fail = true;
    assert_eq!(v.read(f, 0, &mut got[..64 << 10]), Err(Error::Io));
    v.device().fail = false;
    got.fill(0);
    assert_eq!(v.read(f, 0, &mut got).unwrap(), data.len());
    assert!(got == data, "read back after a failed read");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ascii_fold_is_the_unicode_fold() {
    for b in 0u8..128 {
        let s = (b as char).to_string();
        let unicode: String = s.chars().flat_map(char::to_uppercase).collect();
        assert_eq!(crate::index::fold(&s), unicode);
    }
    assert_eq!(crate::index::fold("straße.txt"), "STRASSE.TXT");
}

#[test]
fn reads_at_any_offset_and_length_match() {
    let dir = scratch("oddreads");
    let img = mkfs(&dir, 64, &["-F", "32"]);
    let mut v = mount(&img);
    let root = v.root();
    // Two files written interleaved: their chains alternate runs.
    let a = pattern(38 * 8192, 3);
    let b = pattern(25 * 8192, 9);
    let fa = v.open(root, "a.bin", RW).unwrap();
    let fb = v.open(root, "b.bin", RW).unwrap();
    for k in 0..a.len() / 8192 {
        let r = k * 8192..(k + 1) * 8192;
        v.write(fa, r.start as u64, &a[r.clone()]).unwrap();
        if r.end <= b.len() {
            v.write(fb, r.start as u64, &b[r]).unwrap();
        }
    }
    v.sync().unwrap();
    for cold in [false, true] {
        if cold {
            v.drop_caches();
        }
        let mut got = Vec::new();
        let mut off = 0usize;
        let mut step = 1usize;
        while off < a.len() {
            let mut buf = vec![0u8; step];
            let n = v.read(fa, off as u64, &mut buf).unwrap();
            assert_eq!(n, step.min(a.len() - off));
            got.extend_from_slice(&buf[..n]);
            off += n;
            step = (step * 7 + 333) % 70_000 + 1;
        }
        assert!(got == a, "a.bin read back in odd pieces (cold: {cold})");
        // An empty read inside the file reads nothing (and fails nothing).
        assert_eq!(v.read(fa, 0, &mut []).unwrap(), 0);
        let mut all = vec![0u8; b.len() + 100];
        assert_eq!(v.read(fb, 0, &mut all).unwrap(), b.len());
        assert!(all[..b.len()] == b[..], "b.bin read back whole (cold: {cold})");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `read_to` hands out slices of the cache itself: what it gives, in
/// order, is the file, whatever the cache's layout (a small cache that
/// evicts while a file is read, chains of many fragments whose FAT is
/// followed in the middle of a read), and a run of sectors in
/// consecutive slots goes out in one piece.
#[test]
fn read_to_hands_runs_straight_from_the_cache() {
    let dir = scratch("readto");
    // One sector a cluster, so that two files written a cluster at a time
    // alternate clusters: more fragments than a node keeps extents for.
    let img = mkfs(&dir, 64, &["-F", "32", "-s", "1"]);
    let mut v = mount(&img);
    let root = v.root();
    let a = pattern(2100 * SECTOR + 77, 5);
    let b = pattern(2100 * SECTOR, 11);
    let fa = v.open(root, "a.bin", RW).unwrap();
    let fb = v.open(root, "b.bin", RW).unwrap();
    for k in 0..a.len().div_ceil(SECTOR) {
        let r = k * SECTOR..((k + 1) * SECTOR).min(a.len());
        v.write(fa, r.start as u64, &a[r.clone()]).unwrap();
        if r.end <= b.len() {
            v.write(fb, r.start as u64, &b[r]).unwrap();
        }
    }
    let c = pattern(200 << 10, 3);
    write_file(&mut v, root, "c.bin", &c).unwrap();
    save(&mut v, &img);

    // The smallest cache (256 sectors): reads evict as they go.
    let data = std::fs::read(&img).unwrap();
    let mut v = Volume::mount(MemDisk { data }, None, 1, Box::new(FixedClock)).expect("mount");
    let root = v.root();
    let fa = v.open(root, "a.bin", OpenFlags::default()).unwrap();
    for cold in [true, false] {
        let mut off = 0usize;
        let mut step = 1usize;
        let mut got = Vec::new();
        while off < a.len() {
            let mut pieces = 0;
            let n = v
                .read_to(fa, off as u64, step, &mut |bytes| {
                    assert!(!bytes.is_empty());
                    got.extend_from_slice(bytes);
                    pieces += 1;
                    Ok(())
                })
                .unwrap();
            assert_eq!(n, step.min(a.len() - off));
            assert_eq!(got.len(), off + n, "the pieces add up to the count");
            assert!(pieces >= 1);
            off += n;
            step = (step * 7 + 333) % 300_000 + 1;
        }
        assert!(got == a, "a.bin read back through read_to (cold: {cold})");
    }

    // A contiguous file read into new slots, then again: a 64 KiB read
    // is one piece.
    let data = std::fs::read(&img).unwrap();
    let mut v = Volume::mount(MemDisk { data }, None, 4096, Box::new(FixedClock)).expect("mount");
    let root = v.root();
    let fa = v.open(root, "a.bin", OpenFlags::default()).unwrap();
    let fc = v.open(root, "c.bin", OpenFlags::default()).unwrap();
    let mut buf = vec![0u8; 64 << 10];
    assert_eq!(v.read(fc, 0, &mut buf).unwrap(), buf.len());
    assert!(buf[..] == c[..64 << 10]);
    let mut pieces = Vec::new();
    let n = v
        .read_to(fc, 0, 64 << 10, &mut |bytes| {
            pieces.push(bytes.to_vec());
            Ok(())
        })
        .unwrap();
    assert_eq!(n, 64 << 10);
    assert_eq!(pieces.len(), 1, "one run of slots, one piece");
    assert!(pieces[0][..] == c[..64 << 10]);

    // A sink's error stops the read and comes back as it is.
    let mut calls = 0;
    let r = v.read_to(fa, 0, a.len(), &mut |_| {
        calls += 1;
        Err(Error::Busy)
    });
    assert_eq!(r, Err(Error::Busy));
    assert_eq!(calls, 1);
    let _ = std::fs::remove_dir_all(&dir);
}
