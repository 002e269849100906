//! `cargo xtask build`: the kernel ELF, then a raw Linux arm64 Image.

use crate::util::{self, Result};
use crate::{bail, note};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const KERNEL_TARGET: &str = "aarch64-unknown-none-softfloat";
/// Above this the image gets a warning (the foundation's size budget).
pub const SIZE_BUDGET: u64 = 128 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Release,
    Debug,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub profile: Profile,
    /// The ktest image (`--features ktest`).
    pub test_image: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            profile: Profile::Release,
            test_image: false,
        }
    }
}

impl Options {
    /// Parses `--release`, `--debug`, `--test-image`; returns the rest.
    pub fn parse(args: &[String]) -> (Options, Vec<String>) {
        let mut o = Options::default();
        let mut rest = Vec::new();
        for a in args {
            match a.as_str() {
                "--release" => o.profile = Profile::Release,
                "--debug" => o.profile = Profile::Debug,
                "--test-image" => o.test_image = true,
                _ => rest.push(a.clone()),
            }
        }
        (o, rest)
    }
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct Built {
    pub elf: PathBuf,
    pub img: PathBuf,
    pub header: ImageHeader,
    pub size: u64,
}

/// The fields of the Linux arm64 Image header we care about
/// (Documentation/arch/arm64/booting.rst).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    pub text_offset: u64,
    pub image_size: u64,
    pub flags: u64,
}

impl ImageHeader {
    /// Where QEMU's loader puts the image (and jumps) for RAM at `ram_base`:
    /// text_offset is honoured when image_size != 0, bumped by 2 MiB if it
    /// would overlap QEMU's 4 KiB boot stub; legacy images go to +512 KiB.
    pub fn qemu_entry(&self, ram_base: u64) -> u64 {
        let off = if self.image_size == 0 {
            0x8_0000
        } else if self.text_offset < 4096 {
            self.text_offset + 2 * 1024 * 1024
        } else {
            self.text_offset
        };
        ram_base + off
    }
}

/// Checks the first 64 bytes of a raw image for a valid Linux arm64 header.
pub fn check_image_header(img: &[u8]) -> Result<ImageHeader> {
    if img.len() < 64 {
        bail!(
            "image is only {} bytes: too short for a Linux arm64 Image header",
            img.len()
        );
    }
    if &img[56..60] != b"ARM\x64" {
        bail!(
            "no Linux arm64 Image magic (\"ARM\\x64\") at offset 56: found {:02x?}",
            &img[56..60]
        );
    }
    let le = |o: usize| u64::from_le_bytes(img[o..o + 8].try_into().unwrap());
    let h = ImageHeader {
        text_offset: le(8),
        image_size: le(16),
        flags: le(24),
    };
    if h.flags & 1 != 0 {
        bail!("Image header flags say big-endian kernel (flags={:#x})", h.flags);
    }
    if h.image_size != 0 && h.image_size < img.len() as u64 {
        bail!(
            "Image header image_size {:#x} is smaller than the file ({:#x} bytes)",
            h.image_size,
            img.len()
        );
    }
    Ok(h)
}

fn target_dir(test_image: bool) -> PathBuf {
    util::target_dir().join(if test_image { "kernel-test" } else { "kernel" })
}

pub fn out_dir() -> PathBuf {
    util::target_dir().join("kestrel")
}

/// Where the image of this flavour ends up.
pub fn image_path(test_image: bool) -> PathBuf {
    out_dir().join(if test_image { "kernel-test.img" } else { "kernel.img" })
}

pub fn llvm_objcopy() -> Result<PathBuf> {
    let (host, sysroot) = util::rustc_info()?;
    let p = sysroot.join("lib/rustlib").join(&host).join("bin/llvm-objcopy");
    if !p.is_file() {
        bail!("{} not found: the llvm-tools component is missing; run `rustup toolchain install` in the repository (it reads rust-toolchain.toml)", p.display());
    }
    Ok(p)
}

/// Builds the kernel ELF and converts it to a raw image.
pub fn build(opts: Options) -> Result<Built> {
    let tdir = target_dir(opts.test_image);
    let mut cmd = util::cargo();
    cmd.args(["build", "-p", "kernel", "--target", KERNEL_TARGET]);
    if opts.profile == Profile::Release {
        cmd.arg("--release");
    }
    if opts.test_image {
        cmd.args(["--features", "ktest"]);
    }
    cmd.arg("--target-dir").arg(&tdir);
    // The boot archive (init and the other user programs) that
    // kernel/build.rs embeds.
    cmd.env("KESTREL_ARCHIVE", crate::user::archive()?);
    note!("{}", util::shown(&cmd));
    util::run(&mut cmd)?;

    let profile_dir = match opts.profile {
        Profile::Release => "release",
        Profile::Debug => "debug",
    };
    let elf_in = tdir.join(KERNEL_TARGET).join(profile_dir).join("kernel");
    if !elf_in.is_file() {
        bail!("the build succeeded but {} does not exist", elf_in.display());
    }
    let out = out_dir();
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let stem = if opts.test_image { "kernel-test" } else { "kernel" };
    let elf = out.join(format!("{stem}.elf"));
    let img = out.join(format!("{stem}.img"));
    std::fs::copy(&elf_in, &elf).map_err(|e| format!("copy to {}: {e}", elf.display()))?;

    let objcopy = llvm_objcopy()?;
    let tmp = out.join(format!("{stem}.img.tmp"));
    util::run(Command::new(&objcopy).args(["-O", "binary"]).arg(&elf).arg(&tmp))?;
    let bytes = std::fs::read(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let header = check_image_header(&bytes).map_err(|e| format!("{}: {e}", elf.display()))?;
    std::fs::rename(&tmp, &img).map_err(|e| format!("{}: {e}", img.display()))?;
    let size = bytes.len() as u64;
    // The budget is the kernel's: the boot archive it carries does not count.
    let kernel = size.saturating_sub(section_size(&elf, ".archive")?);
    let kib = |b: u64| b as f64 / 1024.0;
    let what = format!(
        "{}: {size} bytes; the kernel without its boot archive {:.1} KiB",
        util::relative(&img),
        kib(kernel)
    );
    if kernel > SIZE_BUDGET {
        note!("warning: {what}, over the {} KiB budget", SIZE_BUDGET / 1024);
    } else {
        note!("{what} of {} KiB", SIZE_BUDGET / 1024);
    }
    Ok(Built { elf, img, header, size })
}

/// Size of the ELF section `name` (0 if absent), from the pinned
/// toolchain's `llvm-size -A`.
pub fn section_size(elf: &Path, name: &str) -> Result<u64> {
    let tool = llvm_objcopy()?.with_file_name("llvm-size");
    let out = Command::new(&tool)
        .arg("-A")
        .arg(elf)
        .output()
        .map_err(|e| format!("{}: {e}", tool.display()))?;
    Ok(parse_section_size(&String::from_utf8_lossy(&out.stdout), name))
}

/// The size column of section `name` in `llvm-size -A` output.
pub fn parse_section_size(llvm_size_a: &str, name: &str) -> u64 {
    llvm_size_a
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            (f.next()? == name).then(|| f.next()?.parse().ok())?
        })
        .next()
        .unwrap_or(0)
}

/// `cargo xtask build [--release|--debug] [--test-image]`
pub fn main(args: &[String]) -> Result<()> {
    let (opts, rest) = Options::parse(args);
    if let Some(a) = rest.first() {
        bail!("build: unknown argument `{a}` (expected --release, --debug, --test-image)");
    }
    crate::setup::ensure(crate::setup::Need::Build)?;
    let built = build(opts)?;
    let abs = std::fs::canonicalize(&built.img).unwrap_or(built.img);
    println!("{}", abs.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text_offset: u64, image_size: u64, flags: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        v[8..16].copy_from_slice(&text_offset.to_le_bytes());
        v[16..24].copy_from_slice(&image_size.to_le_bytes());
        v[24..32].copy_from_slice(&flags.to_le_bytes());
        v[56..60].copy_from_slice(b"ARM\x64");
        v
    }

    #[test]
    fn valid_header() {
        let h = check_image_header(&header(0, 0x20000, 0xa, 4096)).unwrap();
        assert_eq!(h.image_size, 0x20000);
        assert_eq!(h.qemu_entry(0x4000_0000), 0x4020_0000);
        let h = check_image_header(&header(0x8_0000, 0x20000, 0xa, 4096)).unwrap();
        assert_eq!(h.qemu_entry(0), 0x8_0000);
        let h = check_image_header(&header(0x123, 0, 0, 4096)).unwrap();
        assert_eq!(h.qemu_entry(0x4000_0000), 0x4008_0000);
    }

    #[test]
    fn invalid_headers() {
        assert!(check_image_header(&[0u8; 10]).unwrap_err().contains("too short"));
        let mut v = header(0, 0x2000, 0, 4096);
        v[59] = 0;
        assert!(check_image_header(&v).unwrap_err().contains("magic"));
        assert!(check_image_header(&header(0, 0x2000, 1, 4096))
            .unwrap_err()
            .contains("big-endian"));
        assert!(check_image_header(&header(0, 0x100, 0, 4096))
            .unwrap_err()
            .contains("image_size"));
    }

    #[test]
    fn options() {
        let args: Vec<String> = ["--debug", "--test-image", "x"].iter().map(|s| s.to_string()).collect();
        let (o, rest) = Options::parse(&args);
        assert_eq!(
            o,
            Options {
                profile: Profile::Debug,
                test_image: true
            }
        );
        assert_eq!(rest, ["x"]);
    }
}
