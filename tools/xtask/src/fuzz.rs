//! `cargo xtask fuzz fat [--time S]`: the FAT and partition readers under
//! libFuzzer (coverage-guided, via `libfuzzer-sys`), built with the
//! installed nightly toolchain and the sanitizer-coverage flags cargo-fuzz
//! uses (so cargo-fuzz itself is not needed), seeded with images
//! `mkfs.vfat` and mtools make: FAT16 and FAT32, files with long names,
//! directories, and one behind an MBR. Crashes land in
//! `target/fuzz/artifacts/fat/`; the corpus grows in
//! `target/fuzz/corpus/fat/`.

use crate::bail;
use crate::util::{self, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The targets there are.
pub const TARGETS: &[&str] = &["fat"];

/// The toolchain the fuzz target builds with (sanitizer coverage needs
/// nightly's `-Z` flags... and libFuzzer's `-Cpasses=sancov-module`).
const NIGHTLY: &str = "nightly";

const RUSTFLAGS: &str = "-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
     -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
     -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks";

/// Whether the nightly toolchain is installed (`rustup run nightly`).
pub fn available() -> bool {
    Command::new("rustup")
        .args(["run", NIGHTLY, "rustc", "--version"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn main(target: &str, seconds: u64) -> Result<()> {
    if !TARGETS.contains(&target) {
        bail!("fuzz: unknown target `{target}` (there is: {})", TARGETS.join(", "));
    }
    if !available() {
        bail!("fuzz: needs the `{NIGHTLY}` toolchain (rustup toolchain install {NIGHTLY})");
    }
    let root = util::root();
    let work = root.join("target").join("fuzz");
    let corpus = work.join("corpus").join(target);
    let artifacts = work.join("artifacts").join(target);
    for d in [&corpus, &artifacts] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    seeds(&corpus, &work.join("seeds"))?;
    let host = host_triple()?;
    let mut build = Command::new("rustup");
    build
        .args([
            "run",
            NIGHTLY,
            "cargo",
            "build",
            "--release",
            "--bin",
            target,
            "--target",
            &host,
        ])
        .arg("--manifest-path")
        .arg(root.join("formats/fat/fuzz/Cargo.toml"))
        .arg("--target-dir")
        .arg(work.join("build"))
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env("RUSTFLAGS", RUSTFLAGS);
    println!("xtask: {}", util::shown(&build));
    let status = build.status().map_err(|e| format!("cannot run rustup: {e}"))?;
    if !status.success() {
        bail!("fuzz: building the target failed ({status})");
    }
    let exe = work.join("build").join(&host).join("release").join(target);
    let mut run = Command::new(&exe);
    run.arg(&corpus)
        .arg(format!("-max_total_time={seconds}"))
        .arg("-max_len=1200000")
        .arg("-timeout=20")
        .arg("-rss_limit_mb=2048")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1");
    println!("xtask: {}", util::shown(&run));
    let status = run.status().map_err(|e| format!("{}: {e}", exe.display()))?;
    if !status.success() {
        bail!(
            "fuzz {target}: the fuzzer found a failure ({status}); the input is in {}",
            util::relative(&artifacts)
        );
    }
    println!("fuzz {target}: {seconds} s without a failure");
    Ok(())
}

fn host_triple() -> Result<String> {
    let out = Command::new("rustup")
        .args(["run", NIGHTLY, "rustc", "-vV"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .map_err(|e| format!("rustc -vV: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .ok_or_else(|| "rustc -vV: no host line".into())
}

/// Seed images into `corpus` (made in `scratch`): each cut after its last
/// non-zero byte (the target reads the rest as zeros).
fn seeds(corpus: &Path, scratch: &Path) -> Result<()> {
    std::fs::create_dir_all(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let specs: &[(&str, u64, &[&str])] = &[
        ("seed-fat16", 5, &["-F", "16", "-s", "1"]),
        ("seed-fat16-root", 9, &["-F", "16", "-s", "2", "-r", "64"]),
        ("seed-fat32", 34, &["-F", "32", "-s", "1"]),
    ];
    for (name, mib, args) in specs {
        let img = scratch.join(format!("{name}.img"));
        make(&img, *mib, args)?;
        let bytes = std::fs::read(&img).map_err(|e| format!("{}: {e}", img.display()))?;
        write_seed(&corpus.join(name), &bytes)?;
        if *name == "seed-fat16" {
            // The same volume behind an MBR at sector 63.
            let mut disk = vec![0u8; 63 * 512];
            disk[446 + 4] = 0x06;
            disk[446 + 8..446 + 12].copy_from_slice(&63u32.to_le_bytes());
            disk[446 + 12..446 + 16].copy_from_slice(&((bytes.len() / 512) as u32).to_le_bytes());
            disk[510] = 0x55;
            disk[511] = 0xaa;
            disk.extend_from_slice(&bytes);
            write_seed(&corpus.join("seed-mbr-fat16"), &disk)?;
        }
    }
    Ok(())
}

fn write_seed(path: &Path, bytes: &[u8]) -> Result<()> {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    std::fs::write(path, &bytes[..end.next_multiple_of(512).min(bytes.len())])
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// A `mib` MiB image from `mkfs.vfat ARGS`, with files and directories
/// (long names, a subdirectory, a multi-cluster file) from mtools.
fn make(img: &PathBuf, mib: u64, args: &[&str]) -> Result<()> {
    let f = std::fs::File::create(img).map_err(|e| format!("{}: {e}", img.display()))?;
    f.set_len(mib << 20).map_err(|e| format!("{}: {e}", img.display()))?;
    drop(f);
    util::output(Command::new(crate::disk::sbin_tool("mkfs.vfat")).args(args).arg(img))?;
    let file = img.with_extension("file");
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    std::fs::write(&file, &data).map_err(|e| format!("{}: {e}", file.display()))?;
    let mtools = |args: &[&str], extra: &[&Path]| {
        let mut c = Command::new(args[0]);
        c.env("MTOOLS_SKIP_CHECK", "1").args(&args[1..]).arg("-i").arg(img);
        for e in extra {
            c.arg(e);
        }
        c
    };
    util::output(mtools(&["mmd"], &[]).arg("::A Directory"))?;
    util::output(mtools(&["mcopy"], &[&file]).arg("::README.TXT"))?;
    util::output(mtools(&["mcopy"], &[&file]).arg("::A Directory/a long file name.data"))?;
    let _ = std::fs::remove_file(&file);
    Ok(())
}
