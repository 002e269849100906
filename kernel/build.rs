//! Link the kernel binary with the boot stub's linker script, and embed the
//! boot archive (`KESTREL_ARCHIVE`, a cpio newc file built by `cargo xtask`;
//! an empty archive when unset).
fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-env-changed=KESTREL_ARCHIVE");
    let archive = out.join("archive.cpio");
    match std::env::var("KESTREL_ARCHIVE") {
        Ok(path) if !path.is_empty() => {
            println!("cargo:rerun-if-changed={path}");
            std::fs::copy(&path, &archive).unwrap_or_else(|e| panic!("cannot read KESTREL_ARCHIVE {path}: {e}"));
        }
        _ => {
            // An archive with just the trailer.
            let trailer = format!("070701{}{:08x}{:08x}TRAILER!!!\0", "00000000".repeat(11), 11, 0);
            let mut bytes = trailer.into_bytes();
            while bytes.len() % 4 != 0 {
                bytes.push(0);
            }
            std::fs::write(&archive, bytes).expect("write empty archive");
        }
    }
    if target_os == "none" {
        let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        let script = std::path::Path::new(&manifest).join("../boot/link.ld");
        println!("cargo:rerun-if-changed={}", script.display());
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        // Pull in the entry stub even though nothing references `_start`.
        println!("cargo:rustc-link-arg-bins=--undefined=_start");
        println!("cargo:rustc-link-arg-bins=--no-pie");
    }
}
