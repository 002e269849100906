//! Build script shared by every user program (`build = "../build.rs"`,
//! `"../../build.rs"` or `"../../user/build.rs"` in their Cargo.toml): link with user/link.ld as a
//! static, non-PIE executable. Only for the bare-metal target, so host
//! tools (clippy on the host, rust-analyzer) are unaffected.
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    // The script sits in user/: an ancestor of programs under user/, a
    // sibling of an ancestor for programs under drivers/ and servers/.
    let script = manifest
        .ancestors()
        .flat_map(|d| [d.join("link.ld"), d.join("user/link.ld")])
        .find(|p| p.is_file())
        .expect("user/link.ld not found above the package");
    println!("cargo:rerun-if-changed={}", script.display());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        println!("cargo:rustc-link-arg-bins=--no-pie");
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
        println!("cargo:rustc-link-arg-bins=--build-id=none");
    }
}
