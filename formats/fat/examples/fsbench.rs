//! The file server's benchmark workload (`bench-fs`) on the host, on an
//! image in memory, for profiling the FAT engine alone (no IPC, no
//! driver): `valgrind --tool=callgrind --collect-atstart=no
//! --toggle-collect='fsbench::measure_this*' target/release/examples/fsbench
//! PHASE` counts the instructions of one phase. PHASE is one of `mount`,
//! `write`, `fsync`, `cold`, `cached`, `create`, `stat`, `statcold`,
//! `unlink`; the phases before it run first, uncounted.

use fat::volume::FixedClock;
use fat::{MemDisk, OpenFlags, Volume};
use std::process::Command;

const MIB: usize = 1 << 20;
const CHUNK: usize = 64 << 10;

#[inline(never)]
fn measure<T>(phase: &str, want: &str, f: impl FnOnce() -> T) -> T {
    if phase == want {
        measure_this(f)
    } else {
        f()
    }
}

#[inline(never)]
fn measure_this<T>(f: impl FnOnce() -> T) -> T {
    f()
}

fn main() {
    let want = std::env::args().nth(1).unwrap_or_default();
    let path = std::env::temp_dir().join(format!("fsbench-{}.img", std::process::id()));
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(64 << 20).unwrap();
    let ok = Command::new("/usr/sbin/mkfs.vfat")
        .args(["-F", "32"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(ok.status.success());
    let disk = MemDisk {
        data: std::fs::read(&path).unwrap(),
    };
    let _ = std::fs::remove_file(&path);
    let cache = MIB / fat::SECTOR;
    let mut v = measure("mount", &want, || {
        Volume::mount(disk, None, cache, Box::new(FixedClock)).unwrap()
    });
    let root = v.root();
    let create = OpenFlags {
        create: true,
        truncate: true,
        ..OpenFlags::default()
    };
    let big = v.open(root, "big", create).unwrap();
    let chunk = vec![0x5au8; CHUNK];
    measure("write", &want, || {
        for i in 0..16 * MIB / CHUNK {
            v.write(big, (i * CHUNK) as u64, &chunk).unwrap();
        }
    });
    measure("fsync", &want, || v.sync().unwrap());
    v.sync().unwrap();
    v.drop_caches();
    let mut buf = vec![0u8; CHUNK];
    measure("cold", &want, || {
        for i in 0..16 * MIB / CHUNK {
            v.read(big, (i * CHUNK) as u64, &mut buf).unwrap();
        }
    });
    let warm = v.open(root, "warm", create).unwrap();
    for i in 0..MIB / 2 / CHUNK {
        v.write(warm, (i * CHUNK) as u64, &chunk).unwrap();
    }
    for i in 0..MIB / 2 / CHUNK {
        v.read(warm, (i * CHUNK) as u64, &mut buf).unwrap();
    }
    measure("cached", &want, || {
        for i in 0..MIB / 2 / CHUNK {
            v.read(warm, (i * CHUNK) as u64, &mut buf).unwrap();
        }
    });
    v.mkdir(root, "small").unwrap();
    let small = v
        .open(
            root,
            "small",
            OpenFlags {
                directory: true,
                ..OpenFlags::default()
            },
        )
        .unwrap();
    let names: Vec<String> = (0..1000).map(|i| format!("f{i:04}")).collect();
    measure("create", &want, || {
        for n in &names {
            let id = v.open(small, n, create).unwrap();
            v.write(id, 0, &[b'x'; 64]).unwrap();
            v.close(id).unwrap();
        }
    });
    measure("stat", &want, || {
        for n in &names {
            assert_eq!(v.stat_path(small, n).unwrap().size, 64);
        }
    });
    v.sync().unwrap();
    v.drop_caches();
    measure("statcold", &want, || {
        for n in &names {
            assert_eq!(v.stat_path(small, n).unwrap().size, 64);
        }
    });
    measure("unlink", &want, || {
        for n in &names {
            v.unlink(small, n).unwrap();
        }
    });
    v.sync().unwrap();
}
