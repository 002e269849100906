//! Link the kernel binary with the boot stub's linker script.
fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
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
